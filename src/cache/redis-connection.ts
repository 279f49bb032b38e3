/**
 * One logical connection to Redis for state the relay shares between processes: a single server
 * (node-redis `createClient`) or a Redis Cluster (`createCluster`, topology discovered from the
 * given nodes). The cache's shared tier and the gateway's global rate limits both sit on it.
 *
 * Availability is the caller's to decide, this class only says whether Redis is usable now:
 * commands are never queued while it is away (`disableOfflineQueue`), each has a deadline
 * (`timeoutMs`), and `connected` turns false on the first failure (`onDown`, once per outage) and
 * true again once it answers (`onUp`). A single server reconnects by itself with exponential
 * backoff and full jitter and says so with `ready`. A cluster's node clients reconnect the same
 * way, but a node coming back is not announced (node-redis emits `node-ready` once per client),
 * a cluster that could not be discovered at start is not retried, and a command that timed out on
 * a live connection is followed by no event at all: so while down, this class probes with PING
 * (every master of a cluster) on the same backoff, re-running discovery when it never succeeded,
 * and declares Redis up when all answer.
 *
 * Pub/sub: a single server gets a second connection (a subscriber cannot send commands); a
 * cluster uses sharded pub/sub (`SSUBSCRIBE`/`SPUBLISH`, Redis 7+), so a message travels only
 * within the shard that owns the channel instead of being broadcast over the whole cluster bus.
 * Messages published while the subscriber was away are lost: `onGap` says when that may have
 * happened, so that the caller can forget what those messages would have invalidated.
 */
import { createClient, createCluster } from 'redis';

import type { RedisTarget } from '../config/index.js';

type Single = ReturnType<typeof createClient>;
type Cluster = ReturnType<typeof createCluster>;

export interface RedisConnectionOptions {
  /** One server (`url`) or the seed nodes of a cluster (`cluster`). */
  target: RedisTarget;
  /** Longest wait for one command, in ms. Default 250. */
  timeoutMs?: number | undefined;
  /** First reconnection (and probe) delay, in ms; doubles per attempt, with full jitter. Default 100. */
  reconnectBaseMs?: number | undefined;
  /** Longest reconnection (and probe) delay, in ms. Default 2000. */
  reconnectMaxMs?: number | undefined;
  /** Default `Math.random`; used for jitter. */
  random?: (() => number) | undefined;
  /** Redis became unusable: once per outage, with the reason; `wasUp` false when it never answered. */
  onDown?: ((reason: string, wasUp: boolean) => void) | undefined;
  /** Redis is usable again (also on the first connection). */
  onUp?: ((recovered: boolean) => void) | undefined;
  /** The subscription was interrupted: messages may have been missed. */
  onGap?: (() => void) | undefined;
}

export class RedisConnection {
  /** The client: commands go here (on a cluster, routed by their first key). */
  readonly client: Single | Cluster;
  readonly isCluster: boolean;
  /** Where, for messages: `Redis at <url>` or `Redis Cluster at <seed urls>`, passwords redacted. */
  readonly where: string;
  readonly #single: Single | undefined;
  readonly #cluster: Cluster | undefined;
  readonly #options: RedisConnectionOptions;
  readonly #random: () => number;
  readonly #base: number;
  readonly #max: number;
  readonly #timeoutMs: number;
  #subscriber: Single | undefined;
  #subscribed: { channel: string; listener: (message: string) => void } | undefined;
  #subscriberReady = false;
  #subscriberWasDown = false;
  #state: 'connecting' | 'up' | 'down' = 'connecting';
  #clusterOpen = false;
  #probeTimer: NodeJS.Timeout | undefined;
  #probeAttempt = 0;
  #closed = false;

  constructor(options: RedisConnectionOptions) {
    this.#options = options;
    this.#random = options.random ?? Math.random;
    this.#base = options.reconnectBaseMs ?? 100;
    this.#max = options.reconnectMaxMs ?? 2000;
    const timeoutMs = (this.#timeoutMs = options.timeoutMs ?? 250);
    const socket = {
      connectTimeout: Math.max(timeoutMs, 1000),
      // Exponential backoff with full jitter, so that many processes do not reconnect in step.
      reconnectStrategy: (retries: number) => (this.#closed ? false : this.#backoff(retries)),
    };
    const target = options.target;
    if (target.cluster !== undefined) {
      this.isCluster = true;
      this.where = `Redis Cluster at ${target.cluster.map(redact).join(', ')}`;
      const first = new URL(target.cluster[0]!);
      const cluster = createCluster({
        rootNodes: target.cluster.map((url) => ({ url })),
        // Discovered nodes get these: the seed URL's credentials and TLS apply to every node.
        defaults: {
          disableOfflineQueue: true,
          ...(first.username === '' ? {} : { username: decodeURIComponent(first.username) }),
          ...(first.password === '' ? {} : { password: decodeURIComponent(first.password) }),
          socket: { ...socket, ...(first.protocol === 'rediss:' ? { tls: true as const } : {}) },
        },
        commandOptions: { timeout: timeoutMs },
      });
      // Without listeners an 'error' event would throw; each is a reason to consider Redis down.
      cluster.on('error', (error: Error) => this.#down(error));
      cluster.on('node-error', (error: Error) => {
        if (this.#subscribed !== undefined) this.#subscriberWasDown = true;
        this.#down(error);
      });
      cluster.on('sharded-shannel-moved-error', () => {
        this.#subscriberWasDown = true;
      });
      this.client = this.#cluster = cluster;
      this.#connectCluster();
    } else {
      this.isCluster = false;
      this.where = `Redis at ${redact(target.url)}`;
      const client = createClient({
        url: target.url,
        disableOfflineQueue: true,
        commandOptions: { timeout: timeoutMs },
        socket,
      });
      client.on('error', (error: Error) => this.#down(error));
      client.on('ready', () => this.#up());
      this.client = this.#single = client;
      client.connect().catch((error: unknown) => this.#down(error));
    }
  }

  /** Whether commands can be sent now; when false, callers skip Redis rather than wait for it. */
  get connected(): boolean {
    if (this.#state !== 'up') return false;
    return this.#single === undefined || this.#single.isReady;
  }

  /** Whether the subscription is established (always true without one). */
  get subscribed(): boolean {
    return this.#subscribed === undefined || this.#subscriberReady;
  }

  /** Resolves once connected (and subscribed, when there is a subscription); rejects after `ms`. */
  async ready(ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(this.connected && this.subscribed)) {
      if (Date.now() > deadline) throw new Error(`${this.where} was not ready within ${ms} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /**
   * `command`, or a rejection once `timeoutMs` has passed. node-redis times out a command only
   * until it is written (5.9): one written to a connection that died without a word stays pending
   * for good, and a cache lookup or a rate-limit check waiting on it would hold its call for good.
   */
  bounded<T>(command: Promise<T>, ms = this.#timeoutMs): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      // Timers run before I/O in an event-loop turn: after a long block (a loaded machine), an
      // answer that did come in time is still unread when the timer fires. Deciding in the check
      // phase, after this turn's I/O, reads it first.
      timer = setTimeout(() => {
        setImmediate(() => reject(new Error(`${this.where} did not answer within ${ms} ms`)));
      }, ms);
    });
    return Promise.race([command, expired]).finally(() => clearTimeout(timer));
  }

  /** A command failed: Redis is down until it answers again. */
  failed(error: unknown): void {
    this.#down(error);
  }

  /** Listens to `channel` (one subscription per connection). */
  subscribe(channel: string, listener: (message: string) => void): void {
    this.#subscribed = { channel, listener };
    if (this.#cluster !== undefined) {
      if (this.#clusterOpen) this.#subscribeCluster();
      return;
    }
    const subscriber = this.#single!.duplicate();
    this.#subscriber = subscriber;
    subscriber.on('error', () => {
      if (this.#subscriberReady) this.#subscriberWasDown = true;
      this.#subscriberReady = false;
    });
    subscriber.on('ready', () => {
      this.#subscriberReady = true;
      if (this.#subscriberWasDown) {
        this.#subscriberWasDown = false;
        this.#options.onGap?.();
      }
    });
    subscriber
      .connect()
      .then(() => subscriber.subscribe(channel, listener))
      .catch(() => undefined);
  }

  /** Publishes on the channel (sharded on a cluster). */
  async publish(channel: string, message: string): Promise<void> {
    if (this.#cluster !== undefined) await this.#cluster.sPublish(channel, message);
    else await this.#single!.publish(channel, message);
  }

  /**
   * Every node a key may live on, for commands that must visit them all (SCAN): the masters of a
   * cluster, or the one server.
   */
  async nodes(): Promise<Single[]> {
    const cluster = this.#cluster;
    if (cluster === undefined) return [this.#single!];
    return Promise.all(cluster.masters.map(async (master) => cluster.nodeClient(master)));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#probeTimer);
    if (this.#cluster !== undefined) {
      if (this.#cluster.isOpen) await this.#cluster.close().catch(() => this.#cluster!.destroy());
      return;
    }
    await Promise.allSettled([closeClient(this.#subscriber), closeClient(this.#single)]);
  }

  // -------------------------------------------------------------------------------------------

  #backoff(attempt: number): number {
    return Math.round(this.#random() * Math.min(this.#max, this.#base * 2 ** attempt));
  }

  #connectCluster(): void {
    const cluster = this.#cluster!;
    cluster.connect().then(
      () => {
        if (this.#closed) return;
        this.#clusterOpen = true;
        if (this.#subscribed !== undefined) this.#subscribeCluster();
        this.#up();
      },
      (error: unknown) => {
        this.#down(error);
        this.#scheduleProbe();
      },
    );
  }

  #subscribeCluster(): void {
    const { channel, listener } = this.#subscribed!;
    this.#cluster!.sSubscribe(channel, listener).then(
      () => {
        this.#subscriberReady = true;
      },
      () => {
        // The shard's master is away: the probe retries once the cluster answers again.
        this.#subscriberReady = false;
      },
    );
  }

  #scheduleProbe(): void {
    if (this.#closed || this.#probeTimer !== undefined) return;
    const delay = Math.max(1, this.#backoff(this.#probeAttempt++));
    this.#probeTimer = setTimeout(() => {
      this.#probeTimer = undefined;
      void this.#probe();
    }, delay);
    this.#probeTimer.unref();
  }

  async #probe(): Promise<void> {
    if (this.#closed || this.#state === 'up') return;
    if (this.#cluster !== undefined && !this.#clusterOpen) {
      this.#connectCluster();
      return;
    }
    try {
      const nodes = await this.bounded(this.nodes());
      if (nodes.length === 0) throw new Error('the cluster has no masters');
      await this.bounded(Promise.all(nodes.map((node) => node.ping())));
    } catch {
      this.#recycleSilent();
      this.#scheduleProbe();
      return;
    }
    if (this.#subscribed !== undefined && this.#cluster !== undefined && !this.#subscriberReady) {
      this.#subscribeCluster();
    }
    this.#up();
  }

  /**
   * A single server's connection that says it is ready yet did not answer a PING in time is
   * replaced: its socket may be talking to nobody (seen after Redis restarts under load), and
   * destroying it also fails every command still waiting on it. node-redis reconnects a destroyed
   * client only when asked.
   */
  #recycleSilent(): void {
    const client = this.#single;
    if (client === undefined || this.#closed || !client.isReady) return;
    client.destroy();
    client.connect().catch((error: unknown) => this.#down(error));
  }

  #down(error: unknown): void {
    if (this.#closed) return;
    // A command can fail on a connection that stays up (a timeout while Redis is busy): no
    // 'ready' event will follow, so probe until it answers. A cluster never discovered retries
    // discovery from #connectCluster's own failure path.
    if (this.#cluster === undefined || this.#clusterOpen) this.#scheduleProbe();
    if (this.#state === 'down') return;
    const wasUp = this.#state === 'up';
    this.#state = 'down';
    this.#options.onDown?.(describe(error), wasUp);
  }

  #up(): void {
    if (this.#closed) return;
    this.#probeAttempt = 0;
    const recovered = this.#state === 'down';
    this.#state = 'up';
    this.#options.onUp?.(recovered);
    if (this.#cluster !== undefined && recovered && this.#subscriberWasDown) {
      // A node (maybe the subscriber's) was away: messages for us may be lost.
      this.#subscriberWasDown = false;
      this.#options.onGap?.();
    }
  }
}

async function closeClient(client: Single | undefined): Promise<void> {
  if (client === undefined) return;
  if (client.isReady) {
    await client.close().catch(() => client.destroy());
  } else if (client.isOpen) {
    client.destroy();
  }
}

/** An error in one line, with its code when the message lacks it. */
export function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}

/** The URL with its password replaced, for messages. */
export function redact(url: string): string {
  if (!URL.canParse(url)) return url;
  const parsed = new URL(url);
  if (parsed.password !== '') parsed.password = 'redacted';
  return parsed.href;
}
