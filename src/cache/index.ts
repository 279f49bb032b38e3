/**
 * The cache layer's public face (the `mcp-relay/cache` subpath): the response cache with its
 * memory and Redis tiers, the policy that decides what may be cached, the key functions, the
 * events, and a Redis-backed `ResponseCacheStore` for plain SDK clients.
 */
import type { ResolvedUpstreamConfig } from '../config/index.js';
import { CachePolicy, CACHEABLE_METHODS } from './policy.js';
import { RedisTier } from './redis-tier.js';
import { ResponseCache } from './response-cache.js';
import type { CacheCategory, CacheLogger, Clock } from './types.js';

export {
  ResponseCache,
  toMatchers,
  type FetchRequest,
  type ProgressListener,
  type ResponseCacheOptions,
} from './response-cache.js';
export {
  CachePolicy,
  CACHEABLE_METHODS,
  DEFAULT_CATEGORY_TTL_MS,
  matchesToolRule,
  type CachePolicyOptions,
  type ToolCacheRule,
  type ToolVerdict,
} from './policy.js';
export { RedisTier, type RedisTierOptions } from './redis-tier.js';
export { RedisConnection, type RedisConnectionOptions } from './redis-connection.js';
export { RedisResponseCacheStore, type RedisResponseCacheStoreOptions } from './sdk-store.js';
export { cacheKey, cacheTag, canonicalJson, keyPrefix, privateKey } from './key.js';
export { freezeAndMeasure } from './freeze.js';
export {
  CACHE_CHANNELS,
  cacheChannels,
  type CacheEvictEvent,
  type CacheHitEvent,
  type CacheInvalidateEvent,
  type CacheL2Event,
  type CacheMissEvent,
  type CacheStoreEvent,
  type CacheWarningEvent,
} from './events.js';
export type { CacheMatcher, RemoteInvalidation, SharedEntry, SharedTier } from './shared-tier.js';
export {
  CACHE_CATEGORIES,
  type CacheCategory,
  type CacheCategoryStats,
  type CacheLogger,
  type CacheMode,
  type CacheStats,
  type Clock,
  type InvalidateOptions,
  type StoreDecision,
} from './types.js';

const CATEGORY_OF: ReadonlyMap<string, CacheCategory> = new Map(Object.entries(CACHEABLE_METHODS));

/** The category of a cacheable method; `undefined` for a method that is never cached. */
export function categoryOf(method: string): CacheCategory | undefined {
  return CATEGORY_OF.get(method);
}

/** The policy of one upstream's config: TTLs per category, tool rules, `trust_annotations`, `stale_ttl`. */
export function cachePolicyFromConfig(config: ResolvedUpstreamConfig): CachePolicy {
  return new CachePolicy({
    ttlMs: config.cache.ttlMs,
    staleTtlMs: config.staleTtlMs,
    tools:
      config.cache.tools === '*' ? '*' : config.cache.tools.map((rule) => ({ name: rule.name, ttlMs: rule.ttlMs })),
    trustAnnotations: config.trustAnnotations,
  });
}

/** The cache one upstream's config describes: `cache_size`, `cache_max_bytes`, and Redis when `cache.redis` is set. */
export function createResponseCache(
  config: ResolvedUpstreamConfig,
  options: { now?: Clock | undefined; logger?: CacheLogger | undefined } = {},
): ResponseCache {
  const redis = config.cache.redis;
  return new ResponseCache({
    maxEntries: config.cacheSize,
    maxBytes: config.cacheMaxBytes,
    now: options.now,
    logger: options.logger,
    l2:
      redis === undefined
        ? undefined
        : new RedisTier({
            url: redis.url,
            cluster: redis.cluster,
            prefix: redis.prefix,
            timeoutMs: redis.timeoutMs,
            logger: options.logger,
            now: options.now,
          }),
  });
}
