/**
 * Deleted sessions, recorded in the Redis the replicas share (the top-level `redis:` section) so
 * that every replica refuses them. A sealed id (see `sessions.ts`) stays valid until its max age
 * wherever it is presented; a client's DELETE must therefore be remembered where all replicas
 * look: a key per deleted id (expiring when the id would have anyway) for replicas that have not
 * seen the session yet, and a message on a channel for those that hold it now and drop it at once.
 *
 * Availability as for the rest of the shared state (`RedisConnection`): no offline queue, a
 * deadline per command, reconnection with backoff, one warning per outage. While Redis is away a
 * replica takes sessions up without the check (a call must not fail because Redis did) and a
 * DELETE holds on its own replica only; when the subscription comes back after a gap, the held
 * sessions are checked again.
 *
 * Layout under `prefix`: `sessions:deleted:<id>` (value `1`, PX = the id's remaining lifetime);
 * channel `sessions:deleted` (message: the id).
 */
import { RedisConnection } from '../cache/index.js';
import type { ResolvedRedisConfig } from '../config/index.js';

export interface SessionTombstonesOptions {
  /** The Redis (server or cluster), key prefix and command deadline the replicas share. */
  redis: ResolvedRedisConfig;
  /** Warnings (Redis unreachable). Default `process.emitWarning`. */
  warn?: ((message: string) => void) | undefined;
}

export class SessionTombstones {
  readonly #keyPrefix: string;
  readonly #channel: string;
  readonly #redis: RedisConnection;
  #onDeleted: ((id: string) => void) | undefined;
  #onGap: (() => void) | undefined;

  constructor(options: SessionTombstonesOptions) {
    this.#keyPrefix = `${options.redis.prefix}sessions:deleted:`;
    this.#channel = `${options.redis.prefix}sessions:deleted`;
    const warn = options.warn ?? ((message) => process.emitWarning(message, { code: 'MCP_RELAY_SESSIONS' }));
    this.#redis = new RedisConnection({
      target: options.redis,
      timeoutMs: options.redis.timeoutMs,
      onDown: (reason) =>
        warn(
          `mcp-relay sessions: ${this.#redis.where} is not reachable (${reason}); sessions are taken over ` +
            'without checking for deletion, and a DELETE ends a session on its own replica only, until it is back',
        ),
      onGap: () => this.#onGap?.(),
    });
    this.#redis.subscribe(this.#channel, (id) => this.#onDeleted?.(id));
  }

  /**
   * `deleted(id)` for each session a replica deletes (this one included); `gap()` after the
   * channel was lost and is back (held sessions should then be checked with {@link isDeleted}).
   */
  listen(deleted: (id: string) => void, gap: () => void): void {
    this.#onDeleted = deleted;
    this.#onGap = gap;
  }

  /** Resolves once connected and subscribed (tests, start-up checks); rejects after `ms`. */
  ready(ms = 5000): Promise<void> {
    return this.#redis.ready(ms);
  }

  /** Records `id` as deleted for `ttlMs` and tells every replica; false when Redis did not take it. */
  async record(id: string, ttlMs: number): Promise<boolean> {
    if (!this.#redis.connected || ttlMs <= 0) return false;
    try {
      // Two commands, not MULTI: on a cluster the key and the channel may sit on different shards.
      await this.#redis.bounded(
        this.#redis.client.set(`${this.#keyPrefix}${id}`, '1', {
          expiration: { type: 'PX', value: Math.ceil(ttlMs) },
        }),
      );
      await this.#redis.bounded(this.#redis.publish(this.#channel, id));
      return true;
    } catch (error) {
      this.#redis.failed(error);
      return false;
    }
  }

  /** Whether `id` was deleted; false when Redis cannot say (unreachable, or slower than its timeout). */
  async isDeleted(id: string): Promise<boolean> {
    if (!this.#redis.connected) return false;
    try {
      return (await this.#redis.bounded(this.#redis.client.exists(`${this.#keyPrefix}${id}`))) === 1;
    } catch (error) {
      this.#redis.failed(error);
      return false;
    }
  }

  close(): Promise<void> {
    return this.#redis.close();
  }
}
