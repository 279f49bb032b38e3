/**
 * The shared tier on Redis (node-redis): entries written through with their TTL, invalidations
 * fanned out over pub/sub to every process sharing the Redis.
 *
 * Availability: the cache must never be why a call fails. Commands are not queued while Redis is
 * away (`disableOfflineQueue`) and each has a deadline (`timeoutMs`), so a dead Redis costs a call
 * nothing but a skipped lookup; the client reconnects with exponential backoff and full jitter.
 * One warning per outage goes to the logger (and an event to `mcp-relay:cache:l2`).
 *
 * Correctness across an outage: invalidations made while Redis was away are queued and replayed
 * (deleted, then published) when it is back; and since this process may have missed other
 * processes' invalidations meanwhile, it drops its own memory tier on reconnecting.
 *
 * Layout under `prefix`, with `<t>` the sha1 of the entry's tag: `e:{<t>}<sha1 of key>` the entry
 * (JSON, PX = its remaining lifetime, stale window included); `t:{<t>}` the set of the entry keys
 * under that tag; `tags` the set of tags (for prefix invalidation); channel `invalidate`.
 *
 * Redis Cluster: a command or transaction may only touch keys of one hash slot. The `{<t>}` hash
 * tag puts an entry in its tag set's slot, so that writing an entry and indexing it is one
 * transaction and invalidating a tag is one UNLINK, while different tags spread over the cluster.
 * `tags` lives in a slot of its own and is written by separate commands: an entry whose tag is
 * missing from it is still dropped by exact invalidations, and by prefix ones after its TTL at the
 * latest. `clear` scans every master and unlinks key by key.
 */
import { createHash, randomUUID } from 'node:crypto';

import { MAX_CACHE_TTL_MS } from '@modelcontextprotocol/client';

import type { RedisTarget } from '../config/index.js';
import { RelayError, RelayErrorCode } from '../errors/index.js';
import { cacheChannels } from './events.js';
import { parseTag } from './key.js';
import { RedisConnection, redact } from './redis-connection.js';
import {
  matchesTag,
  type CacheMatcher,
  type RemoteInvalidation,
  type SharedEntry,
  type SharedTier,
} from './shared-tier.js';
import { CACHE_CATEGORIES, type CacheCategory, type CacheLogger, type Clock } from './types.js';

export interface RedisTierOptions {
  /** `redis://` or `rediss://` URL of one server; or give `cluster`. */
  url?: string | undefined;
  /** The `redis://` or `rediss://` URLs of some nodes of a Redis Cluster (7+), instead of `url`. */
  cluster?: readonly string[] | undefined;
  /** Prefix of every key and channel. Default `'mcp-relay:cache:'`. */
  prefix?: string | undefined;
  /** Longest wait for one command, in ms, before going on without it. Default 250. */
  timeoutMs?: number | undefined;
  /** First reconnection delay, in ms; doubles per attempt, with full jitter. Default 100. */
  reconnectBaseMs?: number | undefined;
  /** Longest reconnection delay, in ms. Default 2000. */
  reconnectMaxMs?: number | undefined;
  /** Default `process.emitWarning`. */
  logger?: CacheLogger | undefined;
  /** Default `Date.now`. Entries carry absolute deadlines, so processes sharing a Redis should share a clock. */
  now?: Clock | undefined;
  /** Default `Math.random`; used for reconnection jitter. */
  random?: (() => number) | undefined;
}

/** Invalidations kept while Redis is away; beyond it the replay becomes one `clear`. */
const MAX_PENDING_INVALIDATIONS = 1000;
const TAG_SET_TTL_MS = MAX_CACHE_TTL_MS * 2;
/** On close, the longest wait for writes in flight to be answered, in ms. */
const CLOSE_FLUSH_MS = 2000;

export class RedisTier implements SharedTier {
  readonly #prefix: string;
  readonly #channel: string;
  readonly #tagsKey: string;
  readonly #redis: RedisConnection;
  readonly #logger: CacheLogger;
  readonly #now: Clock;
  readonly #origin = randomUUID();
  readonly #listeners = new Set<(invalidation: RemoteInvalidation) => void>();
  #pending: RemoteInvalidation[] = [];
  /** Writes and invalidations not yet answered, for {@link flush}. */
  readonly #inFlight = new Set<Promise<unknown>>();
  #closed = false;

  constructor(options: RedisTierOptions) {
    this.#prefix = options.prefix ?? 'mcp-relay:cache:';
    this.#channel = `${this.#prefix}invalidate`;
    this.#tagsKey = `${this.#prefix}tags`;
    this.#logger = options.logger ?? { warn: (message) => process.emitWarning(message, { code: 'MCP_RELAY_CACHE' }) };
    this.#now = options.now ?? Date.now;
    this.#redis = new RedisConnection({
      target: redisTarget(options),
      timeoutMs: options.timeoutMs,
      reconnectBaseMs: options.reconnectBaseMs,
      reconnectMaxMs: options.reconnectMaxMs,
      random: options.random,
      onDown: (reason, wasUp) => this.#down(reason, wasUp),
      onUp: (recovered) => this.#up(recovered),
      // Invalidations published while we were not listening are lost: forget what we hold.
      onGap: () => this.#notify({ kind: 'clear' }),
    });
    this.#redis.subscribe(this.#channel, (message) => this.#onMessage(message));
  }

  get connected(): boolean {
    return this.#redis.connected;
  }

  /** Resolves once both connections are ready (for tests and start-up checks); rejects after `ms`. */
  ready(ms = 5000): Promise<void> {
    return this.#redis.ready(ms);
  }

  async get(key: string, tag: string): Promise<SharedEntry | undefined> {
    if (!this.connected) return undefined;
    let text: string | null;
    try {
      text = await this.#redis.bounded(this.#redis.client.get(this.#entryKey(key, tag)));
    } catch (error) {
      this.#redis.failed(error);
      return undefined;
    }
    if (text === null) return undefined;
    try {
      const parsed = JSON.parse(text) as { e: number; s: number; c: CacheCategory; v: unknown };
      if (typeof parsed.e !== 'number' || !CACHE_CATEGORIES.includes(parsed.c)) return undefined;
      return { value: parsed.v, expiresAt: parsed.e, staleUntil: parsed.s, category: parsed.c };
    } catch {
      return undefined;
    }
  }

  set(key: string, tag: string, entry: SharedEntry): void {
    if (!this.connected) return;
    const ttl = Math.ceil(entry.staleUntil - this.#now());
    if (ttl <= 0) return;
    const entryKey = this.#entryKey(key, tag);
    const tagKey = this.#tagKey(tag);
    // The value is serialized once, inside the envelope, never re-encoded as a string.
    const payload = `{"e":${entry.expiresAt},"s":${entry.staleUntil},"c":"${entry.category}","v":${JSON.stringify(entry.value)}}`;
    const client = this.#redis.client;
    // The tag is listed first: an entry must never exist unlisted (prefix invalidation finds it there).
    this.#track(client.sAdd(this.#tagsKey, tag).catch((error: unknown) => this.#redis.failed(error)));
    this.#track(
      client
        .multi()
        .set(entryKey, payload, { expiration: { type: 'PX', value: ttl } })
        .sAdd(tagKey, entryKey)
        .pExpire(tagKey, TAG_SET_TTL_MS)
        .exec()
        .catch((error: unknown) => this.#redis.failed(error)),
    );
  }

  async flush(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  invalidate(invalidation: RemoteInvalidation): void {
    if (!this.connected) {
      this.#queue(invalidation);
      return;
    }
    this.#track(
      this.#deleteAndPublish(invalidation).catch((error: unknown) => {
        this.#queue(invalidation);
        this.#redis.failed(error);
      }),
    );
  }

  onRemoteInvalidation(listener: (invalidation: RemoteInvalidation) => void): void {
    this.#listeners.add(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    // Writes still unanswered after a while will not be: closing must not wait on them for good.
    await this.#redis.bounded(this.flush(), CLOSE_FLUSH_MS).catch(() => undefined);
    this.#closed = true;
    await this.#redis.close();
  }

  // -------------------------------------------------------------------------------------------

  #track(promise: Promise<unknown>): void {
    this.#inFlight.add(promise);
    void promise.finally(() => this.#inFlight.delete(promise));
  }

  #entryKey(key: string, tag: string): string {
    return `${this.#prefix}e:{${sha1(tag)}}${sha1(key)}`;
  }

  #tagKey(tag: string): string {
    return `${this.#prefix}t:{${sha1(tag)}}`;
  }

  async #deleteAndPublish(invalidation: RemoteInvalidation): Promise<void> {
    if (invalidation.kind === 'clear') {
      // SCAN sees one node's keys; keys of different slots cannot share an UNLINK on a cluster.
      // One UNLINK a key, pipelined by the client.
      for (const node of await this.#redis.nodes()) {
        for await (const batch of node.scanIterator({ MATCH: `${escapeGlob(this.#prefix)}*`, COUNT: 500 })) {
          await Promise.all(this.#redis.isCluster ? batch.map((key) => node.unlink(key)) : [node.unlink(batch)]);
        }
      }
    } else {
      for (const matcher of invalidation.matchers) await this.#deleteMatching(matcher);
    }
    await this.#redis.publish(this.#channel, JSON.stringify({ o: this.#origin, i: invalidation }));
  }

  async #deleteMatching(matcher: CacheMatcher): Promise<void> {
    let tags: string[];
    if (
      matcher.group !== undefined &&
      matcher.method !== undefined &&
      matcher.name !== undefined &&
      matcher.prefix === undefined
    ) {
      tags = [`${matcher.group}\u0000${matcher.method}\u0000${matcher.name}`];
    } else {
      const all = await this.#redis.client.sMembers(this.#tagsKey);
      tags = all.filter((tag) => {
        const { group, method, name } = parseTag(tag);
        return matchesTag(matcher, group, method, name);
      });
    }
    const client = this.#redis.client;
    for (const tag of tags) {
      const tagKey = this.#tagKey(tag);
      // The tag set and its entries share a slot (see the layout above); `tags` has its own.
      const keys = await client.sMembers(tagKey);
      await client.unlink([tagKey, ...keys]);
      await client.sRem(this.#tagsKey, tag);
    }
  }

  #onMessage(message: string): void {
    let parsed: { o?: unknown; i?: RemoteInvalidation };
    try {
      parsed = JSON.parse(message) as typeof parsed;
    } catch {
      return;
    }
    if (parsed.o === this.#origin || parsed.i === undefined) return;
    this.#notify(parsed.i);
  }

  #notify(invalidation: RemoteInvalidation): void {
    for (const listener of this.#listeners) {
      try {
        listener(invalidation);
      } catch {
        // A listener's failure is its own.
      }
    }
  }

  #queue(invalidation: RemoteInvalidation): void {
    if (this.#pending.length >= MAX_PENDING_INVALIDATIONS || invalidation.kind === 'clear') {
      this.#pending = [{ kind: 'clear' }];
    } else if (this.#pending[0]?.kind !== 'clear') {
      this.#pending.push(invalidation);
    }
  }

  #down(reason: string, wasUp: boolean): void {
    if (this.#closed) return;
    if (cacheChannels.l2.hasSubscribers) cacheChannels.l2.publish({ state: 'down', error: reason });
    this.#logger.warn(
      `mcp-relay cache: ${this.#redis.where} is ${wasUp ? 'unreachable' : 'not reachable'} (${reason}); ` +
        'serving from memory only and reconnecting with backoff',
    );
  }

  #up(recovered: boolean): void {
    if (this.#closed) return;
    if (cacheChannels.l2.hasSubscribers) cacheChannels.l2.publish({ state: 'up' });
    if (recovered && this.#pending.length > 0) {
      const pending = this.#pending;
      this.#pending = [];
      for (const invalidation of pending) this.invalidate(invalidation);
    }
  }
}

function sha1(text: string): string {
  return createHash('sha1').update(text).digest('base64url');
}

/** `prefix` as a literal in a SCAN pattern. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

function redisTarget(options: RedisTierOptions): RedisTarget {
  const { url, cluster } = options;
  const valid = (value: string) => URL.canParse(value) && /^rediss?:$/.test(new URL(value).protocol);
  if (cluster !== undefined && url === undefined) {
    const bad = cluster.find((node) => !valid(node));
    if (cluster.length > 0 && bad === undefined) return { cluster };
    throw new RelayError(
      RelayErrorCode.InvalidConfig,
      `cache.redis.cluster must be a list of redis:// or rediss:// URLs, got ${JSON.stringify(cluster.map(redact))}`,
    );
  }
  if (url !== undefined && cluster === undefined && valid(url)) return { url };
  throw new RelayError(
    RelayErrorCode.InvalidConfig,
    url !== undefined && cluster !== undefined
      ? 'cache.redis: expected either url (one Redis server) or cluster (Redis Cluster nodes), not both'
      : `cache.redis.url must be a redis:// or rediss:// URL, got ${JSON.stringify(url === undefined ? url : redact(url))}`,
  );
}
