/**
 * The cache's instrumentation, published on `node:diagnostics_channel` (the undici convention):
 * telemetry subscribes, the hot path imports no metrics library and formats nothing. Each publish
 * is guarded by `hasSubscribers`, so an unobserved cache pays one property read per event.
 */
import diagnosticsChannel from 'node:diagnostics_channel';

import type { CacheCategory } from './types.js';

/** A hit: served from memory (`l1`) or from Redis (`l2`); `stale` when served past its TTL under stale-while-revalidate. */
export interface CacheHitEvent {
  category: CacheCategory;
  tier: 'l1' | 'l2';
  stale: boolean;
}
export interface CacheMissEvent {
  category: CacheCategory;
}
/** An entry stored in memory (and in Redis when `shared` and an L2 is configured). */
export interface CacheStoreEvent {
  category: CacheCategory;
  bytes: number;
  ttlMs: number;
  shared: boolean;
}
/** An entry removed to respect `cache_size` or `cache_max_bytes`. */
export interface CacheEvictEvent {
  category: CacheCategory;
  bytes: number;
}
/** Entries dropped by a notification, the API, or an invalidation received from another process. */
export interface CacheInvalidateEvent {
  source: 'notification' | 'api' | 'remote';
  group?: string | undefined;
  method?: string | undefined;
  name?: string | undefined;
  prefix?: string | undefined;
  entries: number;
}
/** The shared tier became unreachable (`down`) or usable again (`up`). */
export interface CacheL2Event {
  state: 'down' | 'up';
  error?: string | undefined;
}
/** A condition an operator should know about (e.g. `cache.tools: "*"` caching tools that are not read-only). */
export interface CacheWarningEvent {
  message: string;
}

export const cacheChannels = {
  hit: diagnosticsChannel.channel('mcp-relay:cache:hit'),
  miss: diagnosticsChannel.channel('mcp-relay:cache:miss'),
  store: diagnosticsChannel.channel('mcp-relay:cache:store'),
  evict: diagnosticsChannel.channel('mcp-relay:cache:evict'),
  invalidate: diagnosticsChannel.channel('mcp-relay:cache:invalidate'),
  l2: diagnosticsChannel.channel('mcp-relay:cache:l2'),
  warning: diagnosticsChannel.channel('mcp-relay:cache:warning'),
} as const;

/** The channel names, for subscribers: `diagnostics_channel.subscribe(CACHE_CHANNELS.hit, ...)`. */
export const CACHE_CHANNELS = {
  hit: 'mcp-relay:cache:hit',
  miss: 'mcp-relay:cache:miss',
  store: 'mcp-relay:cache:store',
  evict: 'mcp-relay:cache:evict',
  invalidate: 'mcp-relay:cache:invalidate',
  l2: 'mcp-relay:cache:l2',
  warning: 'mcp-relay:cache:warning',
} as const;
