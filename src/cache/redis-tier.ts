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
 * Layout under `prefix`: `e:<sha1 of key>` the entry (JSON, PX = its remaining lifetime, stale
 * window included); `t:<sha1 of tag>` a set of the entry keys under a tag; `tags` the set of tags
 * (for prefix invalidation); channel `invalidate`.
 */
import { createHash, randomUUID } from 'node:crypto';

import { MAX_CACHE_TTL_MS } from '@modelcontextprotocol/client';
import { createClient } from 'redis';

import { RelayError, RelayErrorCode } from '../errors/index.js';
import { cacheChannels } from './events.js';
import { parseTag } from './key.js';
import {
  matchesTag,
  type CacheMatcher,
  type RemoteInvalidation,
  type SharedEntry,
  type SharedTier,
} from './shared-tier.js';
import { CACHE_CATEGORIES, type CacheCategory, type CacheLogger, type Clock } from './types.js';

export interface RedisTierOptions {
  /** `redis://` or `rediss://` URL. */
  url: string;
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

type Client = ReturnType<typeof createClient>;

export class RedisTier implements SharedTier {
  readonly #prefix: string;
  readonly #channel: string;
  readonly #tagsKey: string;
  readonly #client: Client;
  readonly #subscriber: Client;
  readonly #logger: CacheLogger;
  readonly #now: Clock;
  readonly #origin = randomUUID();
  readonly #safeUrl: string;
  readonly #listeners = new Set<(invalidation: RemoteInvalidation) => void>();
  #pending: RemoteInvalidation[] = [];
  /** Writes and invalidations not yet answered, for {@link flush}. */
  readonly #inFlight = new Set<Promise<unknown>>();
  #state: 'connecting' | 'up' | 'down' = 'connecting';
  #subscriberReady = false;
  #subscriberWasDown = false;
  #closed = false;

  constructor(options: RedisTierOptions) {
    if (!URL.canParse(options.url) || !/^rediss?:$/.test(new URL(options.url).protocol)) {
      throw new RelayError(
        RelayErrorCode.InvalidConfig,
        `cache.redis.url must be a redis:// or rediss:// URL, got ${JSON.stringify(redact(options.url))}`,
      );
    }
    this.#prefix = options.prefix ?? 'mcp-relay:cache:';
    this.#channel = `${this.#prefix}invalidate`;
    this.#tagsKey = `${this.#prefix}tags`;
    this.#logger = options.logger ?? { warn: (message) => process.emitWarning(message, { code: 'MCP_RELAY_CACHE' }) };
    this.#now = options.now ?? Date.now;
    this.#safeUrl = redact(options.url);
    const timeoutMs = options.timeoutMs ?? 250;
    const base = options.reconnectBaseMs ?? 100;
    const max = options.reconnectMaxMs ?? 2000;
    const random = options.random ?? Math.random;
    this.#client = createClient({
      url: options.url,
      disableOfflineQueue: true,
      commandOptions: { timeout: timeoutMs },
      socket: {
        connectTimeout: Math.max(timeoutMs, 1000),
        // Exponential backoff with full jitter, so that many processes do not reconnect in step.
        reconnectStrategy: (retries) =>
          this.#closed ? false : Math.round(random() * Math.min(max, base * 2 ** retries)),
      },
    });
    this.#subscriber = this.#client.duplicate();
    this.#client.on('error', (error: Error) => this.#down(error));
    this.#client.on('ready', () => this.#up());
    this.#subscriber.on('error', () => {
      if (this.#subscriberReady) this.#subscriberWasDown = true;
      this.#subscriberReady = false;
    });
    this.#subscriber.on('ready', () => this.#subscriberUp());
    this.#client.connect().catch((error: unknown) => this.#down(error));
    this.#subscriber
      .connect()
      .then(() =>
        this.#subscriber.subscribe(this.#channel, (message) => {
          this.#onMessage(message);
        }),
      )
      .catch(() => undefined);
  }

  get connected(): boolean {
    return this.#state === 'up' && this.#client.isReady;
  }

  /** Resolves once both connections are ready (for tests and start-up checks); rejects after `ms`. */
  async ready(ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(this.connected && this.#subscriberReady)) {
      if (Date.now() > deadline) throw new Error(`Redis at ${this.#safeUrl} was not ready within ${ms} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  async get(key: string): Promise<SharedEntry | undefined> {
    if (!this.connected) return undefined;
    let text: string | null;
    try {
      text = await this.#client.get(this.#entryKey(key));
    } catch (error) {
      this.#down(error);
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
    const entryKey = this.#entryKey(key);
    const tagKey = this.#tagKey(tag);
    // The value is serialized once, inside the envelope, never re-encoded as a string.
    const payload = `{"e":${entry.expiresAt},"s":${entry.staleUntil},"c":"${entry.category}","v":${JSON.stringify(entry.value)}}`;
    this.#track(
      this.#client
        .multi()
        .set(entryKey, payload, { expiration: { type: 'PX', value: ttl } })
        .sAdd(tagKey, entryKey)
        .pExpire(tagKey, TAG_SET_TTL_MS)
        .sAdd(this.#tagsKey, tag)
        .exec()
        .catch((error: unknown) => this.#down(error)),
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
        this.#down(error);
      }),
    );
  }

  onRemoteInvalidation(listener: (invalidation: RemoteInvalidation) => void): void {
    this.#listeners.add(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.flush();
    this.#closed = true;
    await Promise.allSettled([closeClient(this.#subscriber), closeClient(this.#client)]);
  }

  // -------------------------------------------------------------------------------------------

  #track(promise: Promise<unknown>): void {
    this.#inFlight.add(promise);
    void promise.finally(() => this.#inFlight.delete(promise));
  }

  #entryKey(key: string): string {
    return `${this.#prefix}e:${createHash('sha1').update(key).digest('base64url')}`;
  }

  #tagKey(tag: string): string {
    return `${this.#prefix}t:${createHash('sha1').update(tag).digest('base64url')}`;
  }

  async #deleteAndPublish(invalidation: RemoteInvalidation): Promise<void> {
    if (invalidation.kind === 'clear') {
      const keys: string[] = [];
      for await (const batch of this.#client.scanIterator({ MATCH: `${this.#prefix}*`, COUNT: 500 }))
        keys.push(...batch);
      for (let i = 0; i < keys.length; i += 500) await this.#client.unlink(keys.slice(i, i + 500));
    } else {
      for (const matcher of invalidation.matchers) await this.#deleteMatching(matcher);
    }
    await this.#client.publish(this.#channel, JSON.stringify({ o: this.#origin, i: invalidation }));
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
      const all = await this.#client.sMembers(this.#tagsKey);
      tags = all.filter((tag) => {
        const { group, method, name } = parseTag(tag);
        return matchesTag(matcher, group, method, name);
      });
    }
    for (const tag of tags) {
      const tagKey = this.#tagKey(tag);
      const keys = await this.#client.sMembers(tagKey);
      await this.#client
        .multi()
        .unlink([...keys, tagKey])
        .sRem(this.#tagsKey, tag)
        .exec();
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

  #down(error: unknown): void {
    if (this.#closed || this.#state === 'down') return;
    const wasUp = this.#state === 'up';
    this.#state = 'down';
    const reason = describe(error);
    if (cacheChannels.l2.hasSubscribers) cacheChannels.l2.publish({ state: 'down', error: reason });
    this.#logger.warn(
      `mcp-relay cache: Redis at ${this.#safeUrl} is ${wasUp ? 'unreachable' : 'not reachable'} (${reason}); ` +
        'serving from memory only and reconnecting with backoff',
    );
  }

  #up(): void {
    if (this.#closed) return;
    const wasDown = this.#state === 'down';
    this.#state = 'up';
    if (cacheChannels.l2.hasSubscribers) cacheChannels.l2.publish({ state: 'up' });
    if (wasDown && this.#pending.length > 0) {
      const pending = this.#pending;
      this.#pending = [];
      for (const invalidation of pending) this.invalidate(invalidation);
    }
  }

  #subscriberUp(): void {
    this.#subscriberReady = true;
    if (this.#subscriberWasDown) {
      this.#subscriberWasDown = false;
      // Invalidations published while we were not listening are lost: forget what we hold.
      this.#notify({ kind: 'clear' });
    }
  }
}

async function closeClient(client: Client): Promise<void> {
  if (client.isReady) {
    await client.close().catch(() => client.destroy());
  } else if (client.isOpen) {
    client.destroy();
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}

function redact(url: string): string {
  if (!URL.canParse(url)) return url;
  const parsed = new URL(url);
  if (parsed.password !== '') parsed.password = 'redacted';
  return parsed.href;
}
