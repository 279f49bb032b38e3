/**
 * Inbound authentication: establishes the {@link Caller} of each HTTP request from an API key or
 * a JWT, or refuses it. A refusal is an {@link RpcError} whose `data.httpStatus` is 401 (no,
 * malformed, invalid or expired credentials) or 403 (a valid token whose tenant is not admitted);
 * the HTTP inbound answers with that status. Messages name what was wrong, never the credential.
 */
import { createHash, createPublicKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';

import {
  createLocalJWKSet,
  errors as joseErrors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyOptions,
} from 'jose';

import {
  MIN_API_KEY_LENGTH,
  MIN_HS256_SECRET_LENGTH,
  TENANT_NAME_PATTERN,
  type ResolvedAuthConfig,
  type ResolvedJwtConfig,
} from '../config/index.js';
import { RelayError, RelayErrorCode } from '../errors/index.js';
import type { Caller } from './core.js';
import { RpcCode, RpcError } from './rpc.js';

/** What `HttpInboundOptions.authenticate` takes: the request's caller, or a refusal. */
export type Authenticator = (req: IncomingMessage) => Promise<Caller>;

export interface AuthenticatorOptions {
  /**
   * The tenants callers may belong to (those defined under `tenants:`). A token naming another is
   * refused with 403; an API key naming another fails construction. Default: any tenant whose
   * name is valid.
   */
  tenants?: Iterable<string> | undefined;
  /** Wall-clock milliseconds since the epoch, for `exp` and `nbf`. Default `Date.now`. */
  now?: (() => number) | undefined;
}

/** The identity of callers admitted without credentials. */
export const ANONYMOUS_IDENTITY = 'anonymous';

interface StoredKey {
  readonly id: string;
  readonly tenant: string;
  readonly digest: Buffer;
}

type VerifyJwt = (token: string, options: JWTVerifyOptions) => Promise<JWTPayload>;

/** Three base64url segments: the compact JWS serialization. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

/**
 * Builds the authenticator for `HttpInboundOptions.authenticate`. Validates the configuration
 * once (key files read and parsed, API keys long enough and distinct, their tenants known) and
 * throws `RelayError(RELAY_INVALID_CONFIG)` naming the field otherwise.
 *
 * Credentials: `Authorization: Bearer <api key or JWT>`, or `X-API-Key: <api key>`. API keys are
 * compared in constant time (SHA-256 of both, `timingSafeEqual`, every key compared). JWTs must be
 * signed with the configured algorithm and carry `exp` and `sub`; `iss` and `aud` are checked when
 * configured, `exp` and `nbf` with `clockToleranceMs` of slack.
 */
export function createAuthenticator(config: ResolvedAuthConfig, options: AuthenticatorOptions = {}): Authenticator {
  const known = options.tenants === undefined ? undefined : new Set(options.tenants);
  const now = options.now ?? Date.now;
  const keys = storeKeys(config, known);
  const jwt = config.jwt;
  const verify = jwt === undefined ? undefined : jwtVerifier(jwt);
  const verifyOptions: JWTVerifyOptions | undefined =
    jwt === undefined
      ? undefined
      : {
          algorithms: [jwt.algorithm],
          requiredClaims: ['exp', 'sub'],
          clockTolerance: jwt.clockToleranceMs / 1000,
          ...(jwt.issuer === undefined ? {} : { issuer: [...jwt.issuer] }),
          ...(jwt.audience === undefined ? {} : { audience: [...jwt.audience] }),
        };
  if (keys.length === 0 && verify === undefined && !config.allowAnonymous) {
    throw new RelayError(
      RelayErrorCode.InvalidConfig,
      'auth: expected api_keys, jwt or allow_anonymous: true; with none of them no caller could connect',
    );
  }
  const anonymous: Caller = Object.freeze({ tenant: config.anonymousTenant, identity: ANONYMOUS_IDENTITY });

  const admitTenant = (tenant: unknown, claim: string): string => {
    if (typeof tenant !== 'string' || tenant === '')
      throw forbidden(`the token carries no "${claim}" claim naming its tenant`);
    if (known === undefined ? !TENANT_NAME_PATTERN.test(tenant) : !known.has(tenant))
      throw forbidden(`tenant '${truncate(tenant)}' is not configured on this gateway`);
    return tenant;
  };

  return async (req) => {
    const credential = credentialOf(req);
    if (credential === undefined) {
      if (config.allowAnonymous) return anonymous;
      throw unauthenticated(
        'missing credentials: send Authorization: Bearer <token>' + (keys.length > 0 ? ' or X-API-Key: <key>' : ''),
      );
    }
    const key = matchKey(keys, credential.value);
    if (key !== undefined) return { tenant: key.tenant, identity: key.id, token: credential.value };
    if (verify === undefined || credential.header !== 'authorization' || !JWT_SHAPE.test(credential.value)) {
      throw unauthenticated(keys.length > 0 ? 'invalid credentials: unknown API key' : 'invalid credentials');
    }
    let payload: JWTPayload;
    try {
      payload = await verify(credential.value, { ...verifyOptions, currentDate: new Date(now()) });
    } catch (error) {
      throw unauthenticated(`invalid token: ${describeJoseError(error, jwt!)}`);
    }
    if (typeof payload.sub !== 'string' || payload.sub === '')
      throw unauthenticated('invalid token: "sub" must be a string');
    const tenant = admitTenant(payload[jwt!.tenantClaim], jwt!.tenantClaim);
    return { tenant, identity: payload.sub, token: credential.value };
  };
}

/**
 * Whether `host` is a loopback address: `localhost`, `::1`, or any of 127.0.0.0/8 (also written
 * as an IPv4-mapped IPv6 address).
 */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const lower = bare.toLowerCase();
  if (lower === 'localhost' || lower === '::1') return true;
  const v4 = lower.startsWith('::ffff:') ? lower.slice(7) : lower;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/**
 * Refuses to expose a gateway that anyone could use: beyond loopback, callers must authenticate.
 * Throws `RelayError(RELAY_INVALID_CONFIG)`.
 */
export function checkExposure(host: string, auth: ResolvedAuthConfig | undefined): void {
  if (isLoopbackHost(host)) return;
  if (auth === undefined) {
    throw new RelayError(
      RelayErrorCode.InvalidConfig,
      `the gateway would listen on '${host}', which is not a loopback address, with no auth section: anyone who can reach it could use every upstream. Configure auth (api_keys or jwt) to serve beyond this machine, or listen on 127.0.0.1 (anonymous access, allow_anonymous, is allowed on loopback only)`,
    );
  }
  if (auth.allowAnonymous) {
    throw new RelayError(
      RelayErrorCode.InvalidConfig,
      `auth.allow_anonymous: true is allowed only on a loopback address, and the gateway would listen on '${host}'; remove allow_anonymous (callers then need an API key or a JWT) or listen on 127.0.0.1`,
    );
  }
}

function storeKeys(config: ResolvedAuthConfig, known: ReadonlySet<string> | undefined): StoredKey[] {
  const byDigest = new Map<string, string>();
  return config.apiKeys.map(({ id, key, tenant }) => {
    const field = `auth.api_keys.${id}`;
    if (key.length < MIN_API_KEY_LENGTH) {
      throw new RelayError(
        RelayErrorCode.InvalidConfig,
        `${field}.key: expected an API key of at least ${MIN_API_KEY_LENGTH} characters, got [redacted]`,
      );
    }
    if (known !== undefined && !known.has(tenant)) {
      throw new RelayError(
        RelayErrorCode.InvalidConfig,
        `${field}.tenant: expected a tenant defined under tenants (${known.size === 0 ? 'none is defined' : [...known].join(', ')}), got "${tenant}"`,
      );
    }
    const digest = sha256(key);
    const twin = byDigest.get(digest.toString('hex'));
    if (twin !== undefined) {
      throw new RelayError(
        RelayErrorCode.InvalidConfig,
        `${field}.key: expected a key of its own, got the same key as auth.api_keys.${twin}`,
      );
    }
    byDigest.set(digest.toString('hex'), id);
    return { id, tenant, digest };
  });
}

/**
 * The key whose SHA-256 equals the credential's, comparing with every key so that the time taken
 * does not say which one (or whether any) matched. Hashing first makes the lengths equal and
 * keeps the key's length from leaking too.
 */
function matchKey(keys: readonly StoredKey[], presented: string): StoredKey | undefined {
  if (keys.length === 0) return undefined;
  const digest = sha256(presented);
  let found: StoredKey | undefined;
  for (const key of keys) {
    if (timingSafeEqual(digest, key.digest) && found === undefined) found = key;
  }
  return found;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function jwtVerifier(jwt: ResolvedJwtConfig): VerifyJwt {
  if (jwt.algorithm === 'HS256') {
    if (jwt.secret === undefined || Buffer.byteLength(jwt.secret, 'utf8') < MIN_HS256_SECRET_LENGTH) {
      throw new RelayError(
        RelayErrorCode.InvalidConfig,
        `auth.jwt.secret: expected a secret of at least ${MIN_HS256_SECRET_LENGTH} bytes for HS256, got ${jwt.secret === undefined ? 'nothing' : '[redacted]'}`,
      );
    }
    const secret = new TextEncoder().encode(jwt.secret);
    return async (token, options) => (await jwtVerify(token, secret, options)).payload;
  }
  if (jwt.jwksFile !== undefined && jwt.publicKeyFile === undefined) {
    const jwks = createLocalJWKSet(readJwks(jwt.jwksFile));
    return async (token, options) => (await jwtVerify(token, jwks, options)).payload;
  }
  if (jwt.publicKeyFile !== undefined && jwt.jwksFile === undefined) {
    const key = readPublicKey(jwt.publicKeyFile);
    return async (token, options) => (await jwtVerify(token, key, options)).payload;
  }
  throw new RelayError(
    RelayErrorCode.InvalidConfig,
    'auth.jwt: expected exactly one of public_key_file or jwks_file for RS256',
  );
}

function readKeyFile(field: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new RelayError(RelayErrorCode.InvalidConfig, `${field}: cannot read ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

function readPublicKey(path: string): KeyObject {
  const field = 'auth.jwt.public_key_file';
  const pem = readKeyFile(field, path);
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (error) {
    throw new RelayError(
      RelayErrorCode.InvalidConfig,
      `${field}: expected a PEM public key (-----BEGIN PUBLIC KEY----- or a certificate) in ${path}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new RelayError(
      RelayErrorCode.InvalidConfig,
      `${field}: expected an RSA public key for RS256 in ${path}, got a ${key.asymmetricKeyType ?? 'different'} key`,
    );
  }
  return key;
}

function readJwks(path: string): JSONWebKeySet {
  const field = 'auth.jwt.jwks_file';
  const text = readKeyFile(field, path);
  let jwks: unknown;
  try {
    jwks = JSON.parse(text);
  } catch (error) {
    throw new RelayError(
      RelayErrorCode.InvalidConfig,
      `${field}: ${path} is not valid JSON: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  const keys = (jwks as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new RelayError(
      RelayErrorCode.InvalidConfig,
      `${field}: expected a JSON Web Key Set ({ "keys": [ ... ] } with at least one key) in ${path}`,
    );
  }
  if (keys.some((key) => typeof key === 'object' && key !== null && 'd' in key)) {
    throw new RelayError(
      RelayErrorCode.InvalidConfig,
      `${field}: ${path} holds a private key; give the gateway the public keys only`,
    );
  }
  return jwks as JSONWebKeySet;
}

function credentialOf(req: IncomingMessage): { value: string; header: 'authorization' | 'x-api-key' } | undefined {
  const authorization = req.headers.authorization;
  if (authorization !== undefined) {
    const match = BEARER.exec(authorization);
    if (!match) throw unauthenticated('malformed Authorization header: expected "Bearer <token>"');
    return { value: match[1]!, header: 'authorization' };
  }
  const apiKey = req.headers['x-api-key'];
  if (apiKey !== undefined) {
    if (typeof apiKey !== 'string' || apiKey.trim() === '') throw unauthenticated('malformed X-API-Key header');
    return { value: apiKey.trim(), header: 'x-api-key' };
  }
  return undefined;
}

/** Why jose refused a token, in words that never include the token. */
function describeJoseError(error: unknown, jwt: ResolvedJwtConfig): string {
  if (error instanceof joseErrors.JWTExpired) return 'the token has expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.reason === 'missing') return `the token has no "${error.claim}" claim`;
    if (error.claim === 'nbf') return 'the token is not valid yet ("nbf")';
    return `the token's "${error.claim}" claim is not the one expected`;
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return `the token is not signed with ${jwt.algorithm}`;
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'the signature does not verify';
  if (error instanceof joseErrors.JWKSNoMatchingKey) return 'no key of the JWKS matches the token (kid, alg)';
  if (error instanceof joseErrors.JWKSMultipleMatchingKeys)
    return 'several keys of the JWKS match; the token needs a kid';
  if (error instanceof joseErrors.JWSInvalid || error instanceof joseErrors.JWTInvalid) return 'malformed token';
  return 'the token could not be verified';
}

function truncate(text: string): string {
  return text.length > 64 ? `${text.slice(0, 61)}...` : text;
}

function unauthenticated(message: string): RpcError {
  return new RpcError(RpcCode.Refused, `Unauthorized: ${message}`, {
    httpStatus: 401,
    relayCode: RelayErrorCode.Unauthenticated,
  });
}

function forbidden(message: string): RpcError {
  return new RpcError(RpcCode.Refused, `Forbidden: ${message}`, {
    httpStatus: 403,
    relayCode: RelayErrorCode.Forbidden,
  });
}
