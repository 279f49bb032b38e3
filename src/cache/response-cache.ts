/**
 * The response cache: memory first (`lru-cache`, bounded by entries and by bytes), then an optional
 * shared tier (Redis), then the upstream, with concurrent identical misses sharing one upstream
 * call.
 *
 * The hit path ({@link ResponseCache.get}) is one or two map lookups, a clock read and a counter:
 * no allocation, no closure, no clone. Entries are deep-frozen once when stored, so the object a
 * hit returns is the stored one and no caller can change what the next receives.
 *
 * TTL bookkeeping is ours, not lru-cache's: the clock is injected (tests run TTL and
 * stale-while-revalidate without sleeping) and a hit reads it once.
 */
import { LRUCache } from 'lru-cache';

import { RelayError, RelayErrorCode } from '../errors/index.js';
import { cacheChannels } from './events.js';
import { freezeAndMeasure } from './freeze.js';
import { isPrivateKey, parseTag, privateKey } from './key.js';
import { matchesTag, type CacheMatcher, type RemoteInvalidation, type SharedTier } from './shared-tier.js';
import {
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

export interface ResponseCacheOptions {
  /** Most entries held in memory (`cache_size`); 0 holds none. */
  maxEntries: number;
  /** Most bytes held in memory (`cache_max_bytes`), by the estimated JSON size of the entries. */
  maxBytes: number;
  /** The shared tier (see `RedisTier`); omitted, the cache is memory only. */
  l2?: SharedTier | undefined;
  /** Milliseconds; default `Date.now`. */
  now?: Clock | undefined;
  /** Default: `process.emitWarning`. */
  logger?: CacheLogger | undefined;
}

/** Progress of an upstream call, fanned out to every caller sharing it. */
export type ProgressListener = (update: {
  progress: number;
  total?: number | undefined;
  message?: string | undefined;
}) => void;

/** One cacheable request that missed memory. */
export interface FetchRequest {
  /** From `cacheKey()`: tenant, group, method, name and canonical arguments. */
  key: string;
  /** From `cacheTag()`: what invalidation addresses. */
  tag: string;
  /** The caller's identity, for entries the server marks private; `''` when there is none. */
  identity: string;
  category: CacheCategory;
  /** `'refresh'` skips the stored entry (memory and shared tier) and always asks the upstream. */
  mode: Exclude<CacheMode, 'bypass'>;
  signal?: AbortSignal | undefined;
  onProgress?: ProgressListener | undefined;
  /** Asks the upstream. `signal` aborts only when every caller sharing the call has gone. */
  load(signal: AbortSignal, onProgress: ProgressListener | undefined): Promise<unknown>;
  /** The policy's verdict on a result; `undefined` keeps it out of the cache. */
  decide(result: unknown): StoreDecision | undefined;
  /** Runs before a result is stored (e.g. subscribing to its updates); a failure does not prevent storing. */
  beforeStore?: ((decision: StoreDecision) => Promise<void> | undefined) | undefined;
  /**
   * Set by {@link ResponseCache.fetch} once it answers: a stale entry (`stale`), the shared tier
   * (`hit`), or an upstream call, its own or one it joined (`miss`). For the caller's call event.
   */
  served?: 'hit' | 'stale' | 'miss' | undefined;
}

interface Entry {
  readonly value: unknown;
  readonly expiresAt: number;
  readonly staleUntil: number;
  readonly size: number;
  readonly tag: string;
  readonly category: CacheCategory;
}

interface MutableStats {
  hits: number;
  l2Hits: number;
  staleHits: number;
  misses: number;
  evictions: number;
  entries: number;
  bytes: number;
}

/** One upstream call shared by every caller that asked for the same key while it ran. */
class Flight {
  readonly tag: string;
  readonly controller = new AbortController();
  readonly listeners = new Set<ProgressListener>();
  promise!: Promise<unknown>;
  waiters = 0;
  /** An invalidation arrived while the call ran: its answer may predate the change, so it is not stored. */
  invalidated = false;
  fromL2 = false;
  background = false;

  constructor(tag: string) {
    this.tag = tag;
  }

  readonly progress: ProgressListener = (update) => {
    for (const listener of this.listeners) {
      try {
        listener(update);
      } catch {
        // A caller's progress callback failing is its own problem.
      }
    }
  };
}

export class ResponseCache {
  readonly #lru: LRUCache<string, Entry> | undefined;
  readonly #maxBytes: number;
  /** Tag → keys of the entries under it, so invalidation never scans the whole cache. */
  readonly #tags = new Map<string, Set<string>>();
  readonly #flights = new Map<string, Flight>();
  readonly #stats: Record<CacheCategory, MutableStats>;
  readonly #now: Clock;
  readonly #l2: SharedTier | undefined;
  readonly logger: CacheLogger;
  /** Private entries held; while 0 a miss skips the second probe. */
  #privateEntries = 0;
  #closed = false;

  constructor(options: ResponseCacheOptions) {
    checkCount('maxEntries', options.maxEntries);
    checkCount('maxBytes', options.maxBytes);
    this.#maxBytes = options.maxBytes;
    this.#now = options.now ?? Date.now;
    this.logger = options.logger ?? { warn: (message) => process.emitWarning(message, { code: 'MCP_RELAY_CACHE' }) };
    this.#stats = {
      tools: emptyStats(),
      resources: emptyStats(),
      prompts: emptyStats(),
      metadata: emptyStats(),
    };
    if (options.maxEntries > 0 && options.maxBytes > 0) {
      this.#lru = new LRUCache<string, Entry>({
        max: options.maxEntries,
        maxSize: options.maxBytes,
        sizeCalculation: (entry) => Math.max(1, entry.size),
        dispose: (entry, key, reason) => this.#disposed(entry, key, reason),
      });
    }
    this.#l2 = options.l2;
    this.#l2?.onRemoteInvalidation((invalidation) => this.#applyRemote(invalidation));
  }

  /** The injected clock, for callers that compute deadlines on the same scale. */
  now(): number {
    return this.#now();
  }

  /**
   * The fresh value stored for `key` (shared within its tenant, or private to `identity`), or
   * `undefined` when there is none or it is stale: then call {@link fetch}. Counts the hit.
   */
  get(key: string, identity: string, category: CacheCategory): unknown {
    const lru = this.#lru;
    if (lru === undefined) return undefined;
    const now = this.#now();
    let entry = lru.get(key);
    if (entry === undefined || entry.expiresAt <= now) {
      if (this.#privateEntries === 0) return undefined;
      entry = lru.get(privateKey(key, identity));
      if (entry === undefined || entry.expiresAt <= now) return undefined;
    }
    this.#stats[category].hits++;
    if (cacheChannels.hit.hasSubscribers) cacheChannels.hit.publish({ category, tier: 'l1', stale: false });
    return entry.value;
  }

  /**
   * A request that {@link get} could not answer: serves a stale entry within its stale window
   * (revalidating it in the background), else joins the identical call already in flight, else
   * reads the shared tier, else asks the upstream and stores what the policy allows.
   */
  async fetch(request: FetchRequest): Promise<unknown> {
    const stats = this.#stats[request.category];
    if (request.mode !== 'refresh') {
      const stale = this.#staleEntry(request.key, request.identity);
      if (stale !== undefined) {
        stats.staleHits++;
        request.served = 'stale';
        if (cacheChannels.hit.hasSubscribers) {
          cacheChannels.hit.publish({ category: request.category, tier: 'l1', stale: true });
        }
        this.#revalidate(request);
        return stale.value;
      }
    }
    const flightKey = request.identity === '' ? request.key : privateKey(request.key, request.identity);
    let flight = this.#flights.get(flightKey);
    if (flight === undefined) flight = this.#start(flightKey, request, false);
    const value = await this.#wait(flight, request.signal, request.onProgress);
    request.served = flight.fromL2 ? 'hit' : 'miss';
    if (flight.fromL2) {
      stats.hits++;
      stats.l2Hits++;
      if (cacheChannels.hit.hasSubscribers)
        cacheChannels.hit.publish({ category: request.category, tier: 'l2', stale: false });
    } else {
      stats.misses++;
      if (cacheChannels.miss.hasSubscribers) cacheChannels.miss.publish({ category: request.category });
    }
    return value;
  }

  /**
   * Drops matching entries here, in the shared tier and, through it, in every process sharing it.
   * Calls in flight for them are not stored when they finish. Returns the entries dropped here.
   */
  invalidate(options: InvalidateOptions): number {
    return this.#invalidate(toMatchers(options), 'api', true);
  }

  /** Drops every entry: here, in the shared tier, and in every process sharing it. */
  clear(): void {
    this.#clearLocal();
    this.#l2?.invalidate({ kind: 'clear' });
    if (cacheChannels.invalidate.hasSubscribers) cacheChannels.invalidate.publish({ source: 'api', entries: -1 });
  }

  /** Drops what an upstream notification made stale (a list change, a resource update). */
  invalidateFromNotification(matcher: CacheMatcher): number {
    return this.#invalidate([matcher], 'notification', true);
  }

  stats(): CacheStats {
    const byCategory = {} as Record<CacheCategory, CacheCategoryStats>;
    const total = emptyStats();
    for (const category of CACHE_CATEGORIES) {
      const s = this.#stats[category];
      byCategory[category] = withRate({ ...s });
      for (const field of Object.keys(total) as (keyof MutableStats)[]) total[field] += s[field];
    }
    return {
      ...withRate(total),
      byCategory,
      l2: { configured: this.#l2 !== undefined, connected: this.#l2?.connected ?? false },
    };
  }

  /** Resolves once every write and invalidation sent to the shared tier has been answered. */
  async flush(): Promise<void> {
    await this.#l2?.flush();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#l2?.close();
  }

  // -------------------------------------------------------------------------------------------

  #staleEntry(key: string, identity: string): Entry | undefined {
    const lru = this.#lru;
    if (lru === undefined) return undefined;
    const now = this.#now();
    const candidates = [lru.get(key), this.#privateEntries === 0 ? undefined : lru.get(privateKey(key, identity))];
    for (const entry of candidates) {
      if (entry !== undefined && entry.expiresAt <= now && now < entry.staleUntil) return entry;
    }
    return undefined;
  }

  #revalidate(request: FetchRequest): void {
    const flightKey = request.identity === '' ? request.key : privateKey(request.key, request.identity);
    if (this.#flights.has(flightKey)) return;
    // Nobody waits for a background revalidation; its failure leaves the stale entry to expire.
    this.#start(flightKey, { ...request, mode: 'refresh', signal: undefined, onProgress: undefined }, true);
  }

  #start(flightKey: string, request: FetchRequest, background: boolean): Flight {
    const flight = new Flight(request.tag);
    flight.background = background;
    if (request.onProgress !== undefined) flight.listeners.add(request.onProgress);
    this.#flights.set(flightKey, flight);
    flight.promise = this.#run(flight, request).finally(() => {
      if (this.#flights.get(flightKey) === flight) this.#flights.delete(flightKey);
    });
    // Waiters get its failure through their own awaits. When the last one left before it failed
    // (its signal was already aborted, so it never attached to this promise), nobody else would:
    // an unhandled rejection that would end the process.
    flight.promise.catch(() => undefined);
    return flight;
  }

  async #wait(
    flight: Flight,
    signal: AbortSignal | undefined,
    onProgress: ProgressListener | undefined,
  ): Promise<unknown> {
    flight.waiters++;
    if (onProgress !== undefined) flight.listeners.add(onProgress);
    try {
      return signal === undefined ? await flight.promise : await raceAbort(flight.promise, signal);
    } catch (error) {
      if (signal?.aborted) {
        flight.waiters--;
        // The upstream call is cancelled only when nobody is left waiting for it.
        if (flight.waiters === 0 && !flight.background) flight.controller.abort(signal.reason);
      }
      throw error;
    } finally {
      if (onProgress !== undefined) flight.listeners.delete(onProgress);
    }
  }

  async #run(flight: Flight, request: FetchRequest): Promise<unknown> {
    const l2 = this.#l2;
    if (l2 !== undefined && request.mode !== 'refresh' && l2.connected && this.#lru !== undefined) {
      const shared = await l2.get(request.key, request.tag);
      if (shared !== undefined && shared.expiresAt > this.#now()) {
        const size = freezeAndMeasure(shared.value);
        if (!flight.invalidated) {
          this.#put(request.key, {
            value: shared.value,
            expiresAt: shared.expiresAt,
            staleUntil: shared.staleUntil,
            size,
            tag: request.tag,
            category: request.category,
          });
        }
        flight.fromL2 = true;
        return shared.value;
      }
    }
    const result = await request.load(
      flight.controller.signal,
      flight.listeners.size > 0 ? flight.progress : undefined,
    );
    if (typeof result !== 'object' || result === null) return result;
    // Frozen even when not stored: callers sharing a flight share the object.
    const size = freezeAndMeasure(result);
    const decision = this.#lru === undefined ? undefined : request.decide(result);
    if (decision === undefined || flight.invalidated || size > this.#maxBytes) return result;
    if (request.beforeStore !== undefined) {
      try {
        await request.beforeStore(decision);
      } catch {
        // Without an update subscription the TTL still bounds staleness.
      }
      if (flight.invalidated) return result;
    }
    const now = this.#now();
    const entry: Entry = {
      value: result,
      expiresAt: now + decision.ttlMs,
      staleUntil: now + decision.ttlMs + decision.staleTtlMs,
      size,
      tag: request.tag,
      category: request.category,
    };
    if (decision.shared) {
      // A server that flips a key's scope must not leave the other slot shadowing the new answer.
      if (this.#privateEntries > 0) this.#lru?.delete(privateKey(request.key, request.identity));
      this.#put(request.key, entry);
      this.#l2?.set(request.key, request.tag, entry);
    } else {
      this.#lru?.delete(request.key);
      this.#put(privateKey(request.key, request.identity), entry);
    }
    if (cacheChannels.store.hasSubscribers) {
      cacheChannels.store.publish({
        category: request.category,
        bytes: size,
        ttlMs: decision.ttlMs,
        shared: decision.shared,
      });
    }
    return result;
  }

  #put(key: string, entry: Entry): void {
    const lru = this.#lru;
    if (lru === undefined) return;
    lru.set(key, entry);
    if (!lru.has(key)) return;
    const stats = this.#stats[entry.category];
    stats.entries++;
    stats.bytes += entry.size;
    if (isPrivateKey(key)) this.#privateEntries++;
    let keys = this.#tags.get(entry.tag);
    if (keys === undefined) {
      keys = new Set();
      this.#tags.set(entry.tag, keys);
    }
    keys.add(key);
  }

  #disposed(entry: Entry, key: string, reason: LRUCache.DisposeReason): void {
    const stats = this.#stats[entry.category];
    stats.entries--;
    stats.bytes -= entry.size;
    if (isPrivateKey(key)) this.#privateEntries--;
    if (reason === 'evict') {
      stats.evictions++;
      if (cacheChannels.evict.hasSubscribers)
        cacheChannels.evict.publish({ category: entry.category, bytes: entry.size });
    }
    // Replaced under the same key: the tag (a function of the key) still holds it.
    if (reason === 'set') return;
    const keys = this.#tags.get(entry.tag);
    if (keys !== undefined) {
      keys.delete(key);
      if (keys.size === 0) this.#tags.delete(entry.tag);
    }
  }

  #invalidate(
    matchers: readonly CacheMatcher[],
    source: 'api' | 'notification' | 'remote',
    propagate: boolean,
  ): number {
    if (matchers.length === 0) return 0;
    let dropped = 0;
    for (const matcher of matchers) {
      for (const flight of this.#flights.values()) {
        const { group, method, name } = parseTag(flight.tag);
        if (matchesTag(matcher, group, method, name)) flight.invalidated = true;
      }
      const lru = this.#lru;
      if (lru !== undefined) {
        for (const [tag, keys] of this.#tags) {
          const { group, method, name } = parseTag(tag);
          if (!matchesTag(matcher, group, method, name)) continue;
          for (const key of [...keys]) if (lru.delete(key)) dropped++;
        }
      }
      if (cacheChannels.invalidate.hasSubscribers) {
        cacheChannels.invalidate.publish({
          source,
          group: matcher.group,
          method: matcher.method,
          name: matcher.name,
          prefix: matcher.prefix,
          entries: dropped,
        });
      }
    }
    if (propagate) this.#l2?.invalidate({ kind: 'match', matchers });
    return dropped;
  }

  #clearLocal(): void {
    for (const flight of this.#flights.values()) flight.invalidated = true;
    this.#lru?.clear();
    this.#tags.clear();
  }

  #applyRemote(invalidation: RemoteInvalidation): void {
    if (invalidation.kind === 'clear') {
      this.#clearLocal();
      if (cacheChannels.invalidate.hasSubscribers) cacheChannels.invalidate.publish({ source: 'remote', entries: -1 });
    } else {
      this.#invalidate(invalidation.matchers, 'remote', false);
    }
  }
}

/** Invalidation options as matchers: `tool`, `uri` and `prefix` each select; `group` narrows them all. */
export function toMatchers(options: InvalidateOptions): CacheMatcher[] {
  const { group, method } = options;
  const matchers: CacheMatcher[] = [];
  if (options.tool !== undefined) matchers.push({ group, method: 'tools/call', name: options.tool });
  if (options.uri !== undefined) matchers.push({ group, method: 'resources/read', name: options.uri });
  if (options.prefix !== undefined) matchers.push({ group, method, prefix: options.prefix });
  if (matchers.length === 0 && (group !== undefined || method !== undefined)) matchers.push({ group, method });
  return matchers;
}

function emptyStats(): MutableStats {
  return { hits: 0, l2Hits: 0, staleHits: 0, misses: 0, evictions: 0, entries: 0, bytes: 0 };
}

function withRate(stats: MutableStats): CacheCategoryStats {
  const served = stats.hits + stats.staleHits;
  const total = served + stats.misses;
  return { ...stats, hitRate: total === 0 ? 0 : served / total };
}

function checkCount(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RelayError(
      RelayErrorCode.InvalidConfig,
      `ResponseCache option ${name} must be a non-negative integer, got ${String(value)}`,
    );
  }
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: Error) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

function abortError(signal: AbortSignal): RelayError {
  return new RelayError(
    RelayErrorCode.Aborted,
    'the call was aborted by the caller while waiting for a shared upstream call',
    {
      cause: signal.reason,
    },
  );
}
