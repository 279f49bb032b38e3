/**
 * Tenants' rules at the gateway: which upstreams and tools each tenant may see and use, how many
 * of its requests may be in flight, and how fast they may come.
 */
import type { ResolvedTenantConfig, ResolvedTenantsConfig } from '../config/index.js';
import { RelayErrorCode } from '../errors/index.js';
import type { AccessPolicy, Caller } from './core.js';
import type { GlobalRateLimiter } from './rate-limit.js';
import { RpcCode, RpcError } from './rpc.js';

export interface TenantPolicyOptions {
  /** Milliseconds on a monotonic scale, for the token buckets; only differences matter. Default `performance.now()`. */
  clock?: { now(): number } | undefined;
  /**
   * The buckets shared by every replica (in Redis). With it, a tenant's `rateLimit` holds across
   * replicas while Redis answers, and each replica's own bucket judges while it does not.
   */
  globalLimits?: GlobalRateLimiter | undefined;
}

type ToolRule = (upstream: string, name: string) => boolean;

/** Verdicts remembered per tenant before the memo starts over: a bound, not a tuning knob. */
const MAX_MEMO = 10_000;
/** Floating-point slack of the token bucket, in tokens (and ms for the retry hint). */
const SLACK = 1e-6;

interface Rate {
  readonly perMs: number;
  readonly burst: number;
  readonly requestsPerSecond: number;
}

interface TenantState {
  readonly name: string;
  readonly upstreams: ReadonlySet<string> | undefined;
  readonly tools: readonly ToolRule[] | undefined;
  /** `upstream \0 tool` → allowed; list filtering asks about every tool on every `tools/list`. */
  readonly memo: Map<string, boolean>;
  readonly maxConcurrent: number;
  readonly rate: Rate | undefined;
  inFlight: number;
  tokens: number;
  refilledAt: number;
}

/**
 * The {@link AccessPolicy} of `tenants:`. A caller whose tenant is not defined may see and do
 * nothing (the gateway defines the anonymous tenant when it admits anonymous callers).
 *
 * - `allowedUpstreams`: names; absent allows every upstream. Applies to tools, prompts and resources.
 * - `allowedTools`: rules matched against the tool's name *as its upstream names it* (not the
 *   gateway's namespaced `upstream__tool`, which changes when another upstream adds a tool of the
 *   same name): `tool` matches that tool on any allowed upstream, `upstream/tool` on that upstream
 *   only; `*` matches any run of characters and `?` one, in either part. The first `/` separates
 *   the two parts (upstream names have none). Absent allows every tool of the allowed upstreams.
 * - `maxConcurrent`: requests in flight at once; one more is refused immediately (-32003,
 *   `RELAY_QUOTA_EXCEEDED`) rather than queued, so a tenant cannot hold the gateway's memory.
 * - `rateLimit`: a token bucket of `burst` tokens refilled at `requestsPerSecond`; a request
 *   finding it empty is refused (-32003, `RELAY_RATE_LIMITED`, `retryAfterMs`). A refused request
 *   takes no token and no slot. With `globalLimits` the bucket is shared by every replica and
 *   `admit` answers with a promise for these tenants (one Redis round trip; see `rate-limit.ts`);
 *   for every other tenant it stays synchronous.
 */
export class TenantPolicy implements AccessPolicy {
  readonly #tenants = new Map<string, TenantState>();
  readonly #clock: { now(): number };
  readonly #global: GlobalRateLimiter | undefined;

  constructor(tenants: ResolvedTenantsConfig, options: TenantPolicyOptions = {}) {
    this.#clock = options.clock ?? { now: () => performance.now() };
    this.#global = options.globalLimits;
    const now = this.#clock.now();
    for (const name of Object.keys(tenants)) this.#tenants.set(name, tenantState(name, tenants[name]!, now));
  }

  /** Whether `tenant` is defined. */
  has(tenant: string): boolean {
    return this.#tenants.has(tenant);
  }

  /** Requests of `tenant` in flight now. */
  inFlight(tenant: string): number {
    return this.#tenants.get(tenant)?.inFlight ?? 0;
  }

  allows(caller: Caller, upstream: string, kind: 'tool' | 'prompt' | 'resource', name: string): boolean {
    const tenant = this.#tenants.get(caller.tenant);
    if (tenant === undefined) return false;
    if (tenant.upstreams !== undefined && !tenant.upstreams.has(upstream)) return false;
    const rules = tenant.tools;
    if (kind !== 'tool' || rules === undefined) return true;
    const key = `${upstream}\u0000${name}`;
    let allowed = tenant.memo.get(key);
    if (allowed === undefined) {
      allowed = rules.some((rule) => rule(upstream, name));
      if (tenant.memo.size >= MAX_MEMO) tenant.memo.clear();
      tenant.memo.set(key, allowed);
    }
    return allowed;
  }

  admit(caller: Caller): (() => void) | Promise<() => void> {
    const tenant = this.#admissible(caller);
    const rate = tenant.rate;
    const global = this.#global;
    if (rate !== undefined && global?.connected === true) return this.#admitGlobally(tenant, rate, global);
    return this.#admitLocally(tenant);
  }

  admitsFreely(caller: Caller): boolean {
    const tenant = this.#tenants.get(caller.tenant);
    return tenant !== undefined && tenant.rate === undefined && tenant.inFlight < tenant.maxConcurrent;
  }

  /** The caller's tenant, if it is configured and has a concurrency slot free; else throws. */
  #admissible(caller: Caller): TenantState {
    const tenant = this.#tenants.get(caller.tenant);
    if (tenant === undefined) {
      throw new RpcError(RpcCode.Refused, `Forbidden: tenant '${caller.tenant}' is not configured on this gateway`, {
        relayCode: RelayErrorCode.Forbidden,
        tenant: caller.tenant,
      });
    }
    if (tenant.inFlight >= tenant.maxConcurrent) {
      throw new RpcError(
        RpcCode.Refused,
        `tenant '${tenant.name}' already has ${tenant.inFlight} requests in flight (max_concurrent ${tenant.maxConcurrent}); retry when one has finished`,
        { relayCode: RelayErrorCode.QuotaExceeded, tenant: tenant.name, maxConcurrent: tenant.maxConcurrent },
      );
    }
    return tenant;
  }

  /** A token from this replica's own bucket (if the tenant has a rate) and a concurrency slot. */
  #admitLocally(tenant: TenantState): () => void {
    if (tenant.rate !== undefined) this.#takeLocal(tenant, tenant.rate);
    tenant.inFlight++;
    return releaser(tenant);
  }

  /** The shared bucket decides; the slot is held while it is asked, so `max_concurrent` holds meanwhile. */
  async #admitGlobally(tenant: TenantState, rate: Rate, global: GlobalRateLimiter): Promise<() => void> {
    tenant.inFlight++;
    const waitMs = await global.take(tenant.name, rate.perMs, rate.burst);
    try {
      if (waitMs === undefined) this.#takeLocal(tenant, rate);
      else if (waitMs > 0) throw rateLimited(tenant, rate, waitMs);
    } catch (error) {
      tenant.inFlight--;
      throw error;
    }
    return releaser(tenant);
  }

  /** This replica's own bucket: takes a token or throws `RELAY_RATE_LIMITED`. */
  #takeLocal(tenant: TenantState, rate: Rate): void {
    const now = this.#clock.now();
    tenant.tokens = Math.min(rate.burst, tenant.tokens + Math.max(0, now - tenant.refilledAt) * rate.perMs);
    tenant.refilledAt = now;
    // Sums of fractional refills drift by ulps (0.999 + 0.001 < 1): judge with a little slack.
    if (tenant.tokens < 1 - SLACK) {
      throw rateLimited(tenant, rate, Math.max(1, Math.ceil((1 - tenant.tokens) / rate.perMs - SLACK)));
    }
    tenant.tokens = Math.max(0, tenant.tokens - 1);
  }
}

function releaser(tenant: TenantState): () => void {
  let released = false;
  return () => {
    if (released) return;
    released = true;
    tenant.inFlight--;
  };
}

function rateLimited(tenant: TenantState, rate: Rate, retryAfterMs: number): RpcError {
  return new RpcError(
    RpcCode.Refused,
    `tenant '${tenant.name}' is over its rate limit of ${rate.requestsPerSecond} requests/s (burst ${rate.burst}); retry in ${retryAfterMs} ms`,
    { relayCode: RelayErrorCode.RateLimited, tenant: tenant.name, retryAfterMs },
  );
}

function tenantState(name: string, config: ResolvedTenantConfig, now: number): TenantState {
  const rate = config.rateLimit;
  return {
    name,
    upstreams: config.allowedUpstreams === undefined ? undefined : new Set(config.allowedUpstreams),
    tools: config.allowedTools?.map(compileToolRule),
    memo: new Map(),
    maxConcurrent: config.maxConcurrent ?? Number.POSITIVE_INFINITY,
    rate:
      rate === undefined
        ? undefined
        : { perMs: rate.requestsPerSecond / 1000, burst: rate.burst, requestsPerSecond: rate.requestsPerSecond },
    inFlight: 0,
    tokens: rate?.burst ?? 0,
    refilledAt: now,
  };
}

/** `tool`, or `upstream/tool`; either part a glob. */
export function compileToolRule(rule: string): ToolRule {
  const slash = rule.indexOf('/');
  if (slash === -1) {
    const tool = glob(rule);
    return (_upstream, name) => tool.test(name);
  }
  const upstream = glob(rule.slice(0, slash));
  const tool = glob(rule.slice(slash + 1));
  return (upstreamName, name) => upstream.test(upstreamName) && tool.test(name);
}

function glob(pattern: string): RegExp {
  const source = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${source}$`, 's');
}
