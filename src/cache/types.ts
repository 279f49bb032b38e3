/** What a cached response is, for TTL defaults and statistics: the seed's four categories. */
export type CacheCategory = 'tools' | 'resources' | 'prompts' | 'metadata';

export const CACHE_CATEGORIES: readonly CacheCategory[] = Object.freeze(['tools', 'resources', 'prompts', 'metadata']);

/**
 * Per call: `'default'` serves a fresh entry and stores a cacheable result; `'bypass'` neither reads
 * nor writes the cache; `'refresh'` always asks the upstream and stores the answer.
 */
export type CacheMode = 'default' | 'bypass' | 'refresh';

/** Milliseconds on some monotonic-enough scale; `Date.now` by default. Injected so tests need no sleeping. */
export type Clock = () => number;

/** Where the cache writes its few log lines (a Redis outage, `cache.tools: "*"`). Default: `process.emitWarning`. */
export interface CacheLogger {
  warn(message: string): void;
}

/** How long and how widely one result may be reused, decided by the policy when it arrives. */
export interface StoreDecision {
  /** Fresh for this long, in ms; > 0. */
  ttlMs: number;
  /** Served stale (and revalidated in the background) for this much longer, in ms. */
  staleTtlMs: number;
  /**
   * `true`: one entry for the tenant, eligible for the shared tier. `false` (the server said
   * `cacheScope: 'private'`): keyed by the caller's identity and kept in this process.
   */
  shared: boolean;
}

/** Statistics of one category (or of all). `hitRate` is `(hits + staleHits) / (hits + staleHits + misses)`, 0 when idle. */
export interface CacheCategoryStats {
  hits: number;
  /** Hits served from the shared tier (Redis); included in `hits`. */
  l2Hits: number;
  staleHits: number;
  misses: number;
  /** Entries removed to respect the entry or byte bound (not expiry, not invalidation). */
  evictions: number;
  entries: number;
  bytes: number;
  hitRate: number;
}

export interface CacheStats extends CacheCategoryStats {
  byCategory: Record<CacheCategory, CacheCategoryStats>;
  /** Whether a shared tier is configured, and whether it is usable right now. */
  l2: { configured: boolean; connected: boolean };
}

/** What {@link ResponseCache.invalidate} drops. Fields combine with AND; `{}` drops nothing (use `clear()`). */
export interface InvalidateOptions {
  /** Only entries of this upstream group. Default: every group. */
  group?: string | undefined;
  /** Only entries of this method (e.g. `'tools/list'`). */
  method?: string | undefined;
  /** The cached calls of this tool. */
  tool?: string | undefined;
  /** The cached reads of this resource URI. */
  uri?: string | undefined;
  /** Every tool call, prompt and resource read whose name or URI starts with this. */
  prefix?: string | undefined;
}
