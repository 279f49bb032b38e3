/**
 * The `tenants:` section: what each tenant may reach and how much of the gateway it may use.
 * Callers get their tenant from `auth:` (an API key's tenant, a token's tenant claim). Keys as in
 * the file (snake_case); the resolved form is camelCase.
 */
import * as z from 'zod';

import { tenantNameSchema, type AuthSection } from './auth.js';

const MAX_RATE = 1_000_000;

function int(min: number, max: number) {
  const expected = `expected an integer from ${min} to ${max}`;
  return z.int({ error: expected }).min(min, { error: expected }).max(max, { error: expected });
}

/** `tenants.<name>.rate_limit`: a token bucket. */
export const rateLimitShape = {
  requests_per_second: z
    .number({ error: `expected a number of requests per second above 0 and at most ${MAX_RATE}` })
    .gt(0, { error: `expected a number of requests per second above 0 and at most ${MAX_RATE}` })
    .max(MAX_RATE, { error: `expected a number of requests per second above 0 and at most ${MAX_RATE}` })
    .meta({
      description: 'Sustained rate: tokens added to the bucket per second (0.5 is one every 2 s).',
      unit: '1/s',
    }),
  burst: int(1, MAX_RATE).optional().meta({
    description:
      'Bucket size: how many requests may arrive at once after a quiet spell. Default: requests_per_second rounded up.',
    unit: 'requests',
  }),
};

export const tenantEntryShape = {
  allowed_upstreams: z
    .array(z.string({ error: 'expected an upstream name' }).min(1, { error: 'expected an upstream name' }), {
      error: 'expected a list of upstream names',
    })
    .optional()
    .meta({
      description:
        'Upstreams whose tools, prompts and resources this tenant may see and use, by name. Default: all. An empty list allows none.',
    }),
  allowed_tools: z
    .array(z.string({ error: 'expected a tool name or glob' }).min(1, { error: 'expected a tool name or glob' }), {
      error: 'expected a list of tool names or globs',
    })
    .optional()
    .meta({
      description:
        "Tools this tenant may see and call, named as their upstream names them: `search` (that tool on any allowed upstream), `docs/search` (on upstream docs only), globs with `*` and `?` (`docs/*`, `*/read_*`). Rules use the upstream's own tool name, not the gateway's namespaced one (`docs__search`), so they hold however names are prefixed. Applies to tools only; prompts and resources follow allowed_upstreams. Default: every tool of the allowed upstreams. An empty list allows none.",
    }),
  max_concurrent: int(1, MAX_RATE).optional().meta({
    description:
      'Most requests of this tenant in flight at once; one more is refused at once with -32003 (data.relayCode RELAY_QUOTA_EXCEEDED). Default: no limit.',
    unit: 'requests',
  }),
  rate_limit: z
    .strictObject(rateLimitShape, { error: 'expected a map with requests_per_second (and optionally burst)' })
    .optional()
    .meta({
      description:
        "Token bucket over all of this tenant's requests: { requests_per_second, burst }. A request finding the bucket empty is refused with -32003 (data.relayCode RELAY_RATE_LIMITED, data.retryAfterMs). Default: no limit.",
    }),
};

export const tenantsSectionSchema = z.record(
  tenantNameSchema,
  z.strictObject(tenantEntryShape, {
    error: 'expected a map of tenant settings (allowed_upstreams, allowed_tools, max_concurrent, rate_limit)',
  }),
  { error: 'expected a map of tenant name to its settings' },
);

export type TenantsSection = z.output<typeof tenantsSectionSchema>;

/** One tenant's rules, resolved. An absent list allows everything; an empty one nothing. */
export interface ResolvedTenantConfig {
  readonly allowedUpstreams?: readonly string[];
  readonly allowedTools?: readonly string[];
  readonly maxConcurrent?: number;
  readonly rateLimit?: { readonly requestsPerSecond: number; readonly burst: number };
}

/** Tenants by name. A null-prototype object: a tenant named `constructor` is only what config says. */
export type ResolvedTenantsConfig = Readonly<Record<string, ResolvedTenantConfig>>;

export function resolveTenantsSection(section: TenantsSection): ResolvedTenantsConfig {
  const out = Object.create(null) as Record<string, ResolvedTenantConfig>;
  for (const [name, entry] of Object.entries(section)) {
    const rate = entry.rate_limit;
    out[name] = Object.freeze({
      ...(entry.allowed_upstreams === undefined
        ? {}
        : { allowedUpstreams: Object.freeze([...entry.allowed_upstreams]) }),
      ...(entry.allowed_tools === undefined ? {} : { allowedTools: Object.freeze([...entry.allowed_tools]) }),
      ...(entry.max_concurrent === undefined ? {} : { maxConcurrent: entry.max_concurrent }),
      ...(rate === undefined
        ? {}
        : {
            rateLimit: Object.freeze({
              requestsPerSecond: rate.requests_per_second,
              burst: rate.burst ?? Math.max(1, Math.ceil(rate.requests_per_second)),
            }),
          }),
    });
  }
  return Object.freeze(out);
}

/** A problem that needs more than one section to see; `path` as the file spells it. */
export interface AccessIssue {
  readonly path: readonly PropertyKey[];
  /** Complete: names the value itself where that is not a secret. */
  readonly message: string;
}

/**
 * Cross-references of `auth:` and `tenants:`: every API key names a defined tenant, tokens have
 * tenants to be admitted to, and tenants name upstreams that exist.
 */
export function accessIssues(
  auth: AuthSection | undefined,
  tenants: TenantsSection | undefined,
  upstreamNames: readonly string[],
): AccessIssue[] {
  const issues: AccessIssue[] = [];
  const defined = Object.keys(tenants ?? {});
  const known = new Set(defined);
  const listed = defined.length === 0 ? 'none is defined' : `defined: ${defined.join(', ')}`;
  for (const [id, entry] of Object.entries(auth?.api_keys ?? {})) {
    if (!known.has(entry.tenant)) {
      issues.push({
        path: ['auth', 'api_keys', id, 'tenant'],
        message: `expected a tenant defined under tenants (${listed}), got "${entry.tenant}"`,
      });
    }
  }
  if (auth?.jwt !== undefined && defined.length === 0) {
    issues.push({
      path: ['tenants'],
      message: `expected at least one tenant: tokens name theirs in the "${auth.jwt.tenant_claim ?? 'tenant'}" claim, and only tenants defined here are admitted`,
    });
  }
  const upstreams = new Set(upstreamNames);
  for (const [name, entry] of Object.entries(tenants ?? {})) {
    entry.allowed_upstreams?.forEach((upstream, index) => {
      if (!upstreams.has(upstream)) {
        issues.push({
          path: ['tenants', name, 'allowed_upstreams', index],
          message: `expected the name of an upstream (${upstreamNames.join(', ')}), got "${upstream}"`,
        });
      }
    });
  }
  return issues;
}
