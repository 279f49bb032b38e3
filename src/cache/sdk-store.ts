/**
 * A Redis-backed `ResponseCacheStore` for any MCP SDK v2 `Client`: pass it as
 * `new Client(info, { responseCacheStore })` and every client pointing at the same Redis shares one
 * response cache (the lists and `resources/read` answers the SDK caches under the server's hints).
 *
 * The store is the "dumb string carrier" the SDK asks for: it persists `value`, `expiresAt` and
 * `scope` verbatim and owns the `stamp` counter (one `INCR`, so stamps stay monotonic across
 * processes). Freshness, partitions (server identity × principal) and the public/private gate stay
 * the SDK's. A failing Redis makes these methods reject, which the SDK reports to `onerror` and
 * treats as a miss: the request still goes to the server.
 */
import type { CacheEntry, CacheKey, CacheScope, ResponseCacheStore } from '@modelcontextprotocol/client';
import { MAX_CACHE_TTL_MS } from '@modelcontextprotocol/client';
import { createClient } from 'redis';

export interface RedisResponseCacheStoreOptions {
  /** `redis://` or `rediss://` URL; the store opens (and closes) its own connection. */
  url: string;
  /** Prefix of every key. Default `'mcp-relay:sdk-cache:'`. */
  prefix?: string | undefined;
  /** Longest wait for one command, in ms. Default 250. */
  timeoutMs?: number | undefined;
}

type Client = ReturnType<typeof createClient>;

interface StoredEntry {
  value: string;
  stamp: number;
  expiresAt?: number;
  scope?: CacheScope;
}

export class RedisResponseCacheStore implements ResponseCacheStore {
  readonly #client: Client;
  readonly #prefix: string;
  readonly #connecting: Promise<unknown>;

  constructor(options: RedisResponseCacheStoreOptions) {
    this.#prefix = options.prefix ?? 'mcp-relay:sdk-cache:';
    this.#client = createClient({
      url: options.url,
      disableOfflineQueue: true,
      commandOptions: { timeout: options.timeoutMs ?? 250 },
      socket: { reconnectStrategy: (retries) => Math.min(2000, 100 * 2 ** retries) },
    });
    // Errors surface through the rejected commands; the event only keeps node from crashing.
    this.#client.on('error', () => undefined);
    this.#connecting = this.#client.connect().catch(() => undefined);
  }

  async get(key: CacheKey): Promise<CacheEntry | undefined> {
    await this.#connecting;
    const text = await this.#client.get(this.#key(key.method, key));
    if (text === null) return undefined;
    const stored = JSON.parse(text) as StoredEntry;
    return {
      value: stored.value,
      stamp: stored.stamp,
      ...(stored.expiresAt === undefined ? {} : { expiresAt: stored.expiresAt }),
      ...(stored.scope === undefined ? {} : { scope: stored.scope }),
    };
  }

  async set(key: CacheKey, entry: { value: string; expiresAt?: number; scope?: CacheScope }): Promise<number> {
    await this.#connecting;
    const stamp = await this.#client.incr(`${this.#prefix}stamp`);
    const stored: StoredEntry = { value: entry.value, stamp };
    if (entry.expiresAt !== undefined) stored.expiresAt = entry.expiresAt;
    if (entry.scope !== undefined) stored.scope = entry.scope;
    // A fresh entry lives as long as it is fresh. One already stale (the SDK stores `tools/list`
    // with ttl 0 to keep its tool index) is kept as long as the SDK lets a server pin one.
    const remaining = entry.expiresAt === undefined ? 0 : entry.expiresAt - Date.now();
    const px = remaining > 0 ? Math.ceil(remaining) : MAX_CACHE_TTL_MS;
    await this.#client.set(this.#key(key.method, key), JSON.stringify(stored), {
      expiration: { type: 'PX', value: px },
    });
    return stamp;
  }

  async delete(key: CacheKey): Promise<void> {
    await this.#connecting;
    await this.#client.unlink(this.#key(key.method, key));
  }

  async evict(method: string): Promise<void> {
    await this.#deleteMatching(`${escapeGlob(this.#prefix)}m:${escapeGlob(method)}|*`);
  }

  async clear(): Promise<void> {
    await this.#deleteMatching(`${escapeGlob(this.#prefix)}m:*`);
  }

  async close(): Promise<void> {
    await this.#connecting;
    if (this.#client.isReady) await this.#client.close().catch(() => this.#client.destroy());
    else if (this.#client.isOpen) this.#client.destroy();
  }

  /** Same shape as the SDK's in-memory key: method, then the JSON pair (collision-free) of partition and params. */
  #key(method: string, key: CacheKey): string {
    return `${this.#prefix}m:${method}|${JSON.stringify([key.partition ?? '', key.params ?? ''])}`;
  }

  async #deleteMatching(pattern: string): Promise<void> {
    await this.#connecting;
    for await (const keys of this.#client.scanIterator({ MATCH: pattern, COUNT: 500 })) {
      if (keys.length > 0) await this.#client.unlink(keys);
    }
  }
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
