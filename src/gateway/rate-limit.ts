/**
 * Tenants' rate limits across replicas: one token bucket per tenant in Redis, shared by every
 * gateway process pointing at it, so that N replicas admit a tenant at its `rate_limit`, not at N
 * times it.
 *
 * How: each request of a rate-limited tenant runs one Lua script (EVALSHA; EVAL once per node
 * after a NOSCRIPT) that refills the bucket from the time elapsed, takes a token or says how long
 * until one is there, and stores the bucket back, atomically. Time is Redis's own (`TIME`), so the
 * replicas' clocks need not agree. An idle bucket expires once it would be full anyway. On a Redis
 * Cluster the bucket is one key, so one node owns a tenant.
 *
 * Why not leases (each replica taking a batch of tokens and spending them locally): leases save
 * the round trip but strand tokens in replicas that do not need them (a tenant whose traffic a
 * load balancer sends to one replica could be refused while others sit on its tokens), and either
 * over-admit or under-admit by up to one batch per replica. The script is exact: the sum admitted
 * over all replicas never exceeds `burst + rate × elapsed`. Its cost is one Redis round trip per
 * request of a rate-limited tenant (55-85 µs at P50 on loopback here: `npm run bench -- ratelimit`); tenants
 * without a `rate_limit` never wait for Redis.
 *
 * When Redis cannot answer (down, or slower than its `timeout`, even with the command sent), the request is judged by the
 * replica's own bucket instead, so calls keep succeeding at up to N × the limit across N replicas;
 * one warning is logged per outage, the connection retries with backoff, and the shared buckets
 * are used again as soon as Redis answers.
 */
import { createHash } from 'node:crypto';
import diagnosticsChannel from 'node:diagnostics_channel';

import { RedisConnection } from '../cache/index.js';
import type { ResolvedRedisConfig } from '../config/index.js';

/** The bucket script. KEYS[1] the bucket; ARGV[1] tokens per ms, ARGV[2] burst. Returns 0 (admitted) or the ms to wait. */
const TOKEN_BUCKET_SCRIPT = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if now > at then
  tokens = tokens + (now - at) * rate
  at = now
end
if tokens > burst then tokens = burst end
local wait = 0
-- Sums of fractional refills drift by ulps (0.999 + 0.001 < 1): judge with a little slack.
if tokens >= 1 - 1e-6 then
  tokens = math.max(0, tokens - 1)
else
  wait = math.max(1, math.ceil((1 - tokens) / rate - 1e-6))
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.17g', at))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate) + 1000)
return wait
`;

const TOKEN_BUCKET_SHA = createHash('sha1').update(TOKEN_BUCKET_SCRIPT).digest('hex');

/** Where the shared buckets report going down (`{ state: 'down', error }`) and coming back (`{ state: 'up' }`). */
export const RATE_LIMIT_CHANNEL = 'mcp-relay:gateway:rate-limit';
const channel = diagnosticsChannel.channel(RATE_LIMIT_CHANNEL);

export interface RateLimitStateEvent {
  state: 'down' | 'up';
  error?: string | undefined;
}

export interface GlobalRateLimiterOptions {
  redis: ResolvedRedisConfig;
  /** Where the one warning per outage goes. Default `process.emitWarning`. */
  logger?: { warn(message: string): void } | undefined;
  /** First reconnection delay, in ms (doubling, full jitter). Default 100. */
  reconnectBaseMs?: number | undefined;
  /** Longest reconnection delay, in ms. Default 2000. */
  reconnectMaxMs?: number | undefined;
  random?: (() => number) | undefined;
}

/** The tenants' shared token buckets in Redis (see the file comment). */
export class GlobalRateLimiter {
  readonly #redis: RedisConnection;
  readonly #prefix: string;
  readonly #logger: { warn(message: string): void };
  #closed = false;

  constructor(options: GlobalRateLimiterOptions) {
    this.#prefix = options.redis.prefix;
    this.#logger = options.logger ?? {
      warn: (message) => process.emitWarning(message, { code: 'MCP_RELAY_RATE_LIMIT' }),
    };
    this.#redis = new RedisConnection({
      target: options.redis,
      timeoutMs: options.redis.timeoutMs,
      reconnectBaseMs: options.reconnectBaseMs,
      reconnectMaxMs: options.reconnectMaxMs,
      random: options.random,
      onDown: (reason, wasUp) => {
        if (this.#closed) return;
        if (channel.hasSubscribers) channel.publish({ state: 'down', error: reason } satisfies RateLimitStateEvent);
        this.#logger.warn(
          `mcp-relay gateway: ${this.#redis.where} is ${wasUp ? 'unreachable' : 'not reachable'} (${reason}); ` +
            'tenant rate limits are enforced by each replica on its own until it is back (reconnecting with backoff)',
        );
      },
      onUp: () => {
        if (!this.#closed && channel.hasSubscribers) channel.publish({ state: 'up' } satisfies RateLimitStateEvent);
      },
    });
  }

  /** Whether the shared buckets can be asked now. */
  get connected(): boolean {
    return this.#redis.connected;
  }

  /** Resolves once Redis answers; rejects after `ms`. */
  ready(ms = 5000): Promise<void> {
    return this.#redis.ready(ms);
  }

  /**
   * Takes one token from `tenant`'s shared bucket (`perMs` tokens per ms, `burst` at most).
   * Resolves 0 when admitted, the ms until a token is there when not, and `undefined` when Redis
   * could not answer (the caller decides locally). Never rejects.
   */
  async take(tenant: string, perMs: number, burst: number): Promise<number | undefined> {
    if (!this.#redis.connected) return undefined;
    const options = { keys: [`${this.#prefix}rate:{${tenant}}`], arguments: [String(perMs), String(burst)] };
    const client = this.#redis.client;
    try {
      let reply: unknown;
      try {
        reply = await this.#redis.bounded(client.evalSha(TOKEN_BUCKET_SHA, options));
      } catch (error) {
        // The node has not seen the script yet (first use, a restart): EVAL also caches it there.
        if (!String((error as Error).message).startsWith('NOSCRIPT')) throw error;
        reply = await this.#redis.bounded(client.eval(TOKEN_BUCKET_SCRIPT, options));
      }
      return typeof reply === 'number' ? reply : Number(reply);
    } catch (error) {
      this.#redis.failed(error);
      return undefined;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#redis.close();
  }
}
