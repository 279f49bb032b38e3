/**
 * Deleted sessions, recorded in Redis so that every replica refuses them. A sealed id (see
 * `sessions.ts`) stays valid until its max age wherever it is presented; a client's DELETE must
 * therefore be remembered somewhere all replicas look: a key per deleted id (expiring when the id
 * would have anyway) for replicas that have not seen the session yet, and a message on a channel
 * for those that hold it now and drop it at once.
 *
 * Availability as in the cache's Redis tier: no offline queue, a deadline per command, reconnection
 * with exponential backoff and full jitter, one warning per outage. While Redis is away a replica
 * adopts sessions without the check (a call must not fail because Redis did) and a DELETE is
 * per replica; when the subscription comes back, the held sessions are checked again.
 *
 * Layout under `prefix`: `deleted:<id>` (value `1`, PX = the id's remaining lifetime); channel
 * `deleted` (message: the id).
 */
import { createClient } from 'redis';

export interface SessionTombstonesOptions {
  /** `redis://` or `rediss://` URL. */
  url: string;
  /** Prefix of the keys and the channel. */
  prefix: string;
  /** Longest wait for one command, in ms, before going on without it. */
  timeoutMs: number;
  /** Warnings (Redis unreachable). Default `process.emitWarning`. */
  warn?: ((message: string) => void) | undefined;
  /** Default `Math.random`; used for reconnection jitter. */
  random?: (() => number) | undefined;
}

type Client = ReturnType<typeof createClient>;

const RECONNECT_BASE_MS = 100;
const RECONNECT_MAX_MS = 2000;

export class SessionTombstones {
  readonly #prefix: string;
  readonly #channel: string;
  readonly #client: Client;
  readonly #subscriber: Client;
  readonly #warn: (message: string) => void;
  readonly #safeUrl: string;
  #onDeleted: ((id: string) => void) | undefined;
  #onResubscribed: (() => void) | undefined;
  #down = false;
  #subscribed = false;
  #subscriberLost = false;
  #closed = false;

  constructor(options: SessionTombstonesOptions) {
    this.#prefix = options.prefix;
    this.#channel = `${options.prefix}deleted`;
    this.#warn = options.warn ?? ((message) => process.emitWarning(message, { code: 'MCP_RELAY_SESSIONS' }));
    this.#safeUrl = redactPassword(options.url);
    const random = options.random ?? Math.random;
    this.#client = createClient({
      url: options.url,
      disableOfflineQueue: true,
      commandOptions: { timeout: options.timeoutMs },
      socket: {
        connectTimeout: Math.max(options.timeoutMs, 1000),
        reconnectStrategy: (retries) =>
          this.#closed ? false : Math.round(random() * Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** retries)),
      },
    });
    this.#subscriber = this.#client.duplicate();
    this.#client.on('error', (error: Error) => this.#failed(error));
    this.#client.on('ready', () => {
      this.#down = false;
    });
    this.#subscriber.on('error', () => {
      if (this.#subscribed) this.#subscriberLost = true;
      this.#subscribed = false;
    });
    this.#subscriber.on('ready', () => {
      this.#subscribed = true;
      if (this.#subscriberLost) {
        // Deletions published while we were not listening are lost: the holder re-checks.
        this.#subscriberLost = false;
        this.#onResubscribed?.();
      }
    });
    this.#client.connect().catch((error: unknown) => this.#failed(error));
    this.#subscriber
      .connect()
      .then(() => this.#subscriber.subscribe(this.#channel, (id) => this.#onDeleted?.(id)))
      .catch(() => undefined);
  }

  /**
   * `deleted(id)` for each session another replica deletes; `resubscribed()` after the channel
   * was lost and is back (held sessions should be checked with {@link isDeleted}).
   */
  listen(deleted: (id: string) => void, resubscribed: () => void): void {
    this.#onDeleted = deleted;
    this.#onResubscribed = resubscribed;
  }

  /** Resolves once both connections are ready (tests, start-up checks); rejects after `ms`. */
  async ready(ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(this.#client.isReady && this.#subscribed)) {
      if (Date.now() > deadline) throw new Error(`Redis at ${this.#safeUrl} was not ready within ${ms} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Records `id` as deleted for `ttlMs` and tells every replica; false when Redis did not take it. */
  async record(id: string, ttlMs: number): Promise<boolean> {
    if (!this.#client.isReady || ttlMs <= 0) return false;
    try {
      await this.#client
        .multi()
        .set(`${this.#prefix}deleted:${id}`, '1', { expiration: { type: 'PX', value: Math.ceil(ttlMs) } })
        .publish(this.#channel, id)
        .exec();
      this.#down = false;
      return true;
    } catch (error) {
      this.#failed(error);
      return false;
    }
  }

  /** Whether `id` was deleted; false when Redis cannot say (unreachable, or slower than the timeout). */
  async isDeleted(id: string): Promise<boolean> {
    if (!this.#client.isReady) return false;
    try {
      const deleted = (await this.#client.exists(`${this.#prefix}deleted:${id}`)) === 1;
      this.#down = false;
      return deleted;
    } catch (error) {
      this.#failed(error);
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([closeClient(this.#subscriber), closeClient(this.#client)]);
  }

  #failed(error: unknown): void {
    if (this.#closed || this.#down) return;
    this.#down = true;
    const reason = error instanceof Error ? error.message : String(error);
    this.#warn(
      `mcp-relay sessions: Redis at ${this.#safeUrl} is not reachable (${reason}); sessions are taken over ` +
        'without checking for deletion, and a DELETE ends a session on its own replica only, until it is back',
    );
  }
}

async function closeClient(client: Client): Promise<void> {
  if (client.isReady) await client.close().catch(() => client.destroy());
  else if (client.isOpen) client.destroy();
}

function redactPassword(url: string): string {
  if (!URL.canParse(url)) return url;
  const parsed = new URL(url);
  if (parsed.password !== '') parsed.password = 'redacted';
  return parsed.href;
}
