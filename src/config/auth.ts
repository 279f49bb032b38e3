/**
 * The `auth:` section: how the gateway establishes who is calling. API keys and JWTs map each
 * caller to a tenant (the `tenants:` section says what a tenant may do) and an identity (a key id
 * or a token's `sub`). Keys as in the file (snake_case); the resolved form is camelCase.
 */
import { isAbsolute, resolve as resolvePath } from 'node:path';

import * as z from 'zod';

import { duration } from './duration.js';

/** JWT signature algorithms the gateway verifies. */
export const JWT_ALGORITHMS = ['HS256', 'RS256'] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

/** A tenant's name: in `tenants:`, in API keys, in a token's tenant claim, in metrics. */
export const TENANT_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const TENANT_EXPECTATION = "expected a tenant name of 1 to 64 letters, digits, '_', '.' or '-'";
export const tenantNameSchema = z
  .string({ error: TENANT_EXPECTATION })
  .regex(TENANT_NAME_PATTERN, { error: TENANT_EXPECTATION });

/** The shortest API key accepted: anything shorter is guessable. */
export const MIN_API_KEY_LENGTH = 16;
/** RFC 7518 §3.2: an HS256 key must be at least as long as the hash output, 256 bits. */
export const MIN_HS256_SECRET_LENGTH = 32;
/** The largest clock skew one may allow when checking `exp` and `nbf`. */
const MAX_CLOCK_TOLERANCE_MS = 5 * 60_000;

export const AUTH_DEFAULTS = Object.freeze({
  allowAnonymous: false,
  anonymousTenant: 'default',
  tenantClaim: 'tenant',
  /** Seconds, as a user would write it. */
  clockTolerance: 30,
});

const KEY_ID_EXPECTATION = "expected a key id of 1 to 64 letters, digits, '_', '.' or '-'";
const keyIdSchema = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: KEY_ID_EXPECTATION });

function text(what: string, min = 1) {
  const expected = `expected ${what}`;
  return z.string({ error: expected }).min(min, { error: expected });
}

const stringOrList = (what: string) =>
  z.union([text(what), z.array(text(what), { error: `expected ${what} or a list of them` }).min(1)], {
    error: `expected ${what} or a list of them`,
  });

/** One entry of `auth.api_keys`. */
export const apiKeyEntryShape = {
  key: text(
    `an API key of at least ${MIN_API_KEY_LENGTH} characters (write \${ENV_VAR} rather than the key itself)`,
    MIN_API_KEY_LENGTH,
  ).meta({
    description: `The key callers present (Authorization: Bearer <key>, or X-API-Key: <key>); at least ${MIN_API_KEY_LENGTH} characters. Write \${ENV_VAR} rather than the key itself.`,
  }),
  tenant: tenantNameSchema.meta({
    description: 'The tenant of the callers holding this key; defined under tenants.',
  }),
};

const apiKeySchema = z.strictObject(apiKeyEntryShape, { error: 'expected a map with key and tenant' });

/** `auth.jwt`: one issuer's tokens, verified with a shared secret, a public key or a JWKS file. */
export const jwtSectionShape = {
  algorithm: z
    .enum(JWT_ALGORITHMS, { error: `expected one of ${JWT_ALGORITHMS.map((a) => `"${a}"`).join(', ')}` })
    .meta({
      description:
        'Signature algorithm tokens must use; tokens signed otherwise (or with "none") are refused. HS256 needs secret; RS256 needs public_key_file or jwks_file.',
    }),
  secret: text(`a secret of at least ${MIN_HS256_SECRET_LENGTH} characters`, MIN_HS256_SECRET_LENGTH)
    .optional()
    .meta({
      description: `HS256: the shared secret, at least ${MIN_HS256_SECRET_LENGTH} characters (RFC 7518: 256 bits). Write \${ENV_VAR} rather than the secret itself.`,
    }),
  public_key_file: text('a file path (non-empty string)').optional().meta({
    description:
      "RS256: a PEM file holding the issuer's RSA public key (SPKI or certificate). Relative to the config file's directory.",
  }),
  jwks_file: text('a file path (non-empty string)').optional().meta({
    description:
      "RS256: a JSON Web Key Set file ({ keys: [...] }); a token's kid picks the key. Relative to the config file's directory.",
  }),
  issuer: stringOrList('an issuer (non-empty string)')
    .optional()
    .meta({ description: 'The iss a token must carry (one of them, if a list). Default: iss is not checked.' }),
  audience: stringOrList('an audience (non-empty string)')
    .optional()
    .meta({ description: 'The aud a token must carry (one of them, if a list). Default: aud is not checked.' }),
  tenant_claim: text('a claim name (non-empty string)').optional().meta({
    description: "The claim naming the caller's tenant (a top-level claim; a string). Default tenant.",
    default: AUTH_DEFAULTS.tenantClaim,
  }),
  clock_tolerance: duration({ maxMs: MAX_CLOCK_TOLERANCE_MS }).optional().meta({
    description:
      'Clock skew allowed when checking exp and nbf, at most 5 minutes. Default 30 s. Tokens must carry exp and sub.',
    default: AUTH_DEFAULTS.clockTolerance,
    unit: 's, or ms/s/m/h',
  }),
};

const NO_VALUE = { noValue: true } as const;

const jwtSectionSchema = z
  .strictObject(jwtSectionShape, { error: 'expected a map with algorithm and secret, public_key_file or jwks_file' })
  .superRefine((jwt, ctx) => {
    const sources = (['secret', 'public_key_file', 'jwks_file'] as const).filter((key) => jwt[key] !== undefined);
    if (jwt.algorithm === 'HS256') {
      if (jwt.secret === undefined)
        ctx.addIssue({ code: 'custom', path: ['secret'], message: 'expected secret for HS256', params: NO_VALUE });
      for (const key of sources.filter((k) => k !== 'secret'))
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `expected no ${key} with HS256 (it verifies with secret)`,
          params: NO_VALUE,
        });
    } else if (jwt.algorithm === 'RS256') {
      if (jwt.secret !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['secret'],
          message: 'expected no secret with RS256 (it verifies with public_key_file or jwks_file)',
          params: NO_VALUE,
        });
      const files = sources.filter((k) => k !== 'secret');
      if (files.length !== 1)
        ctx.addIssue({
          code: 'custom',
          path: files.length === 0 ? [] : ['jwks_file'],
          message: `expected exactly one of public_key_file or jwks_file for RS256, got ${files.length === 0 ? 'neither' : 'both'}`,
          params: NO_VALUE,
        });
    }
  });

export const authSectionShape = {
  api_keys: z
    .record(keyIdSchema, apiKeySchema, { error: 'expected a map of key id to { key, tenant }' })
    .optional()
    .meta({
      description:
        "API keys by key id: { key, tenant }. The key id is the caller's identity in logs, metrics and private cache entries; the key itself is never logged or forwarded.",
    }),
  jwt: jwtSectionSchema.optional().meta({
    description:
      'JSON Web Tokens (Authorization: Bearer <jwt>): algorithm (HS256 or RS256), secret | public_key_file | jwks_file, issuer, audience, tenant_claim, clock_tolerance. The tenant comes from tenant_claim, the identity from sub.',
  }),
  allow_anonymous: z.boolean({ error: 'expected true or false' }).optional().meta({
    description:
      'Serve callers that present no credentials, as anonymous_tenant. Only when the gateway listens on a loopback address: it refuses to start otherwise. A bad credential is refused all the same. Default false.',
    default: AUTH_DEFAULTS.allowAnonymous,
  }),
  anonymous_tenant: tenantNameSchema.optional().meta({
    description: 'Tenant of anonymous callers. Its rules apply when it is defined under tenants. Default default.',
    default: AUTH_DEFAULTS.anonymousTenant,
  }),
};

export const authSectionSchema = z
  .strictObject(authSectionShape, { error: 'expected a map of auth settings (api_keys, jwt, allow_anonymous, ...)' })
  .superRefine((auth, ctx) => {
    const keys = auth.api_keys === undefined ? 0 : Object.keys(auth.api_keys).length;
    if (keys === 0 && auth.jwt === undefined && auth.allow_anonymous !== true) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: 'expected api_keys, jwt or allow_anonymous: true; with none of them no caller could connect',
        params: NO_VALUE,
      });
    }
  });

export type AuthSection = z.output<typeof authSectionSchema>;

export interface ResolvedApiKey {
  /** The key id: the caller's identity. */
  readonly id: string;
  readonly key: string;
  readonly tenant: string;
}

export interface ResolvedJwtConfig {
  readonly algorithm: JwtAlgorithm;
  /** HS256. */
  readonly secret?: string;
  /** RS256: a PEM public key; absolute when the config came from a file. */
  readonly publicKeyFile?: string;
  /** RS256: a JWKS file; absolute when the config came from a file. */
  readonly jwksFile?: string;
  readonly issuer?: readonly string[];
  readonly audience?: readonly string[];
  readonly tenantClaim: string;
  readonly clockToleranceMs: number;
}

/** The `auth:` section resolved, with the defaults applied. */
export interface ResolvedAuthConfig {
  readonly apiKeys: readonly ResolvedApiKey[];
  readonly jwt?: ResolvedJwtConfig;
  readonly allowAnonymous: boolean;
  readonly anonymousTenant: string;
}

/** `baseDir` resolves relative key file paths (a file's own directory). */
export function resolveAuthSection(section: AuthSection, baseDir?: string): ResolvedAuthConfig {
  const path = (file: string) => (baseDir === undefined || isAbsolute(file) ? file : resolvePath(baseDir, file));
  const list = (value: string | string[] | undefined) =>
    value === undefined ? undefined : Object.freeze(typeof value === 'string' ? [value] : [...value]);
  const jwt = section.jwt;
  return Object.freeze({
    apiKeys: Object.freeze(
      Object.entries(section.api_keys ?? {}).map(([id, entry]) =>
        Object.freeze({ id, key: entry.key, tenant: entry.tenant }),
      ),
    ),
    ...(jwt === undefined
      ? {}
      : {
          jwt: Object.freeze({
            algorithm: jwt.algorithm,
            ...(jwt.secret === undefined ? {} : { secret: jwt.secret }),
            ...(jwt.public_key_file === undefined ? {} : { publicKeyFile: path(jwt.public_key_file) }),
            ...(jwt.jwks_file === undefined ? {} : { jwksFile: path(jwt.jwks_file) }),
            ...(jwt.issuer === undefined ? {} : { issuer: list(jwt.issuer)! }),
            ...(jwt.audience === undefined ? {} : { audience: list(jwt.audience)! }),
            tenantClaim: jwt.tenant_claim ?? AUTH_DEFAULTS.tenantClaim,
            clockToleranceMs: jwt.clock_tolerance ?? AUTH_DEFAULTS.clockTolerance * 1000,
          }),
        }),
    allowAnonymous: section.allow_anonymous ?? AUTH_DEFAULTS.allowAnonymous,
    anonymousTenant: section.anonymous_tenant ?? AUTH_DEFAULTS.anonymousTenant,
  });
}
