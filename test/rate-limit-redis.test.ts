/**
 * Tenants' rate limits shared through Redis: several TenantPolicy instances (what several gateway
 * replicas hold), each with its own GlobalRateLimiter and Redis connection, admit a tenant at its
 * limit together; tenants without a limit never wait for Redis; and when a test-owned
 * redis-server is stopped each falls back to its own bucket (calls keep being admitted, one
 * warning), then shares again once it is restarted.
 *
 * Redis: 127.0.0.1:6379 (or REDIS_URL) with a prefix of this run, removed afterwards, else a
 * redis-server this file starts; the outage test always starts and kills its own.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import diagnosticsChannel from 'node:diagnostics_channel';
import { after, before, describe, test } from 'node:test';

import { Writable } from 'node:stream';

import { createClient } from 'redis';

import {
  resolveProxyConfig,
  resolveRedisSection,
  TELEMETRY_DEFAULTS,
  type ResolvedTenantsConfig,
} from '../src/config/index.js';
import { demoUpstreamConfig } from '../src/demo/index.js';
import { createLogger } from '../src/telemetry/index.js';
import {
  GlobalRateLimiter,
  RATE_LIMIT_CHANNEL,
  startGateway,
  TenantPolicy,
  type Caller,
  type RateLimitStateEvent,
} from '../src/gateway/index.js';
import { redisAnswers, removeRedisKeys, startOwnRedis, type OwnRedis } from './helpers/redis.js';
import type { RpcError } from '../src/gateway/rpc.js';

const prefix = `mcp-relay-test:${randomUUID()}:`;
let sharedUrl: string;
let ownShared: OwnRedis | undefined;

before(async () => {
  const candidate = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
  if (await redisAnswers(candidate)) {
    sharedUrl = candidate;
  } else {
    ownShared = await startOwnRedis();
    sharedUrl = ownShared.url;
  }
});

after(async () => {
  if (sharedUrl !== undefined) await removeRedisKeys(sharedUrl, `${prefix}*`);
  await ownShared?.stop();
});

const caller = (tenant: string): Caller => ({ tenant, identity: 'x' });
const MODERN_META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'rate-limit-test', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': {},
};

interface Replica {
  policy: TenantPolicy;
  limiter: GlobalRateLimiter;
  warnings: string[];
}

/** What one gateway replica holds: its policy, and its own connection to the shared buckets. */
async function replica(url: string, tenants: ResolvedTenantsConfig, keyPrefix: string): Promise<Replica> {
  const warnings: string[] = [];
  const limiter = new GlobalRateLimiter({
    // A generous deadline: on a loaded machine a 250 ms answer is not an outage to count.
    redis: resolveRedisSection({ url, prefix: keyPrefix, timeout: 2000 }, 'unused'),
    logger: { warn: (message) => warnings.push(message) },
    reconnectMaxMs: 200,
  });
  await limiter.ready();
  return { policy: new TenantPolicy(tenants, { globalLimits: limiter }), limiter, warnings };
}

/** Admits one request of `tenant`: true, or false with the refusal checked to be RELAY_RATE_LIMITED. */
async function tryAdmit(policy: TenantPolicy, tenant: string): Promise<boolean> {
  try {
    const release = await policy.admit(caller(tenant));
    release();
    return true;
  } catch (error) {
    const rpc = error as RpcError;
    const data = rpc.data as { relayCode?: unknown; retryAfterMs?: unknown } | undefined;
    assert.equal(rpc.code, -32003, String(error));
    assert.equal(data?.relayCode, 'RELAY_RATE_LIMITED');
    const retryAfterMs = data?.retryAfterMs;
    assert.ok(typeof retryAfterMs === 'number' && retryAfterMs >= 1, `retryAfterMs ${String(retryAfterMs)}`);
    return false;
  }
}

/** Resolves after `count` state events of the shared buckets (every limiter of this process). */
function events(state: RateLimitStateEvent['state'], count: number): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    const listener = (message: unknown): void => {
      if ((message as RateLimitStateEvent).state !== state || ++seen < count) return;
      diagnosticsChannel.unsubscribe(RATE_LIMIT_CHANNEL, listener);
      resolve();
    };
    diagnosticsChannel.subscribe(RATE_LIMIT_CHANNEL, listener);
  });
}

/** Waits (bounded) until `check` holds, polling every 10 ms. */
async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

void describe('rate limits shared through Redis', () => {
  void test('three replicas admit a tenant at most burst + rate × elapsed together, and refuse the rest with RELAY_RATE_LIMITED', async () => {
    const tenants = { t: { rateLimit: { requestsPerSecond: 2, burst: 10 } } };
    const replicas = await Promise.all([1, 2, 3].map(() => replica(sharedUrl, tenants, `${prefix}a:`)));
    try {
      const started = performance.now();
      let admitted = 0;
      for (let i = 0; i < 60; i++) if (await tryAdmit(replicas[i % 3]!.policy, 't')) admitted++;
      const elapsedS = (performance.now() - started) / 1000;
      // Each replica alone would admit 10 at once: 30. Shared, the bucket allows burst plus what
      // refilled meanwhile (2/s); +1 for a token refilling exactly at the end.
      const bound = 10 + Math.ceil(elapsedS * 2) + 1;
      assert.ok(admitted >= 10, `the burst was admitted (${admitted})`);
      assert.ok(admitted <= bound, `admitted ${admitted} over ${elapsedS.toFixed(2)} s, at most ${bound}`);
      assert.ok(replicas.every((r) => r.warnings.length === 0));
    } finally {
      await Promise.all(replicas.map((r) => r.limiter.close()));
    }
  });

  void test('a tenant without rate_limit is admitted synchronously, never waiting for Redis; a limited one asks it', async () => {
    const r = await replica(
      sharedUrl,
      { free: {}, limited: { rateLimit: { requestsPerSecond: 100, burst: 100 } } },
      `${prefix}b:`,
    );
    try {
      const free = r.policy.admit(caller('free'));
      assert.equal(typeof free, 'function');
      (free as () => void)();
      const limited = r.policy.admit(caller('limited'));
      assert.ok(limited instanceof Promise);
      (await limited)();
    } finally {
      await r.limiter.close();
    }
  });

  void test('a Redis stopped: each replica admits by its own bucket with one warning; restarted: the bucket is shared again', async () => {
    const redis = await startOwnRedis();
    const tenants = { t: { rateLimit: { requestsPerSecond: 0.01, burst: 5 } } };
    let a: Replica | undefined;
    let b: Replica | undefined;
    let restarted: OwnRedis | undefined;
    try {
      a = await replica(redis.url, tenants, `${prefix}c:`);
      b = await replica(redis.url, tenants, `${prefix}c:`);
      const admittedBy = async (r: Replica, n: number) => {
        let admitted = 0;
        for (let i = 0; i < n; i++) if (await tryAdmit(r.policy, 't')) admitted++;
        return admitted;
      };
      assert.equal(await admittedBy(a, 5), 5);
      assert.equal(await admittedBy(b, 3), 0, 'shared: A emptied the bucket B uses');

      const downs = events('down', 2);
      await redis.stop();
      await downs;
      const [ra, rb] = [a, b];
      // The claim is each replica's own state, not the count of events on a process-wide channel
      // (once in CI, after two 'down' events one replica still read as connected).
      await until(() => !ra.limiter.connected && !rb.limiter.connected, 'both replicas to see Redis down');
      // Local buckets (never used while shared) hold the full burst: requests keep being admitted.
      assert.equal(await admittedBy(a, 8), 5, "A's own bucket admits its burst, then refuses");
      assert.equal(await admittedBy(b, 8), 5, "B's own bucket too");
      assert.equal(a.warnings.length, 1, a.warnings.join('\n'));
      assert.equal(b.warnings.length, 1, b.warnings.join('\n'));
      assert.match(a.warnings[0]!, /Redis at redis:\/\/127\.0\.0\.1:\d+\/? is unreachable .*enforced by each replica/);

      const ups = events('up', 2);
      restarted = await startOwnRedis(redis.port);
      await ups;
      await until(() => ra.limiter.connected && rb.limiter.connected, 'both replicas to reconnect');
      // The restarted Redis has a full shared bucket again (no persistence): 5 across A and B.
      const together = (await admittedBy(a, 3)) + (await admittedBy(b, 6));
      assert.equal(together, 5, 'shared again: A and B together admitted one burst');
      assert.equal(a.warnings.length + b.warnings.length, 2, 'still one warning each');
    } finally {
      await a?.limiter.close();
      await b?.limiter.close();
      await restarted?.stop();
      await redis.stop();
    }
  });
});

void describe('a stalled Redis', () => {
  void test('a Redis that accepted the command and stalls (CLIENT PAUSE) does not hold the request: the local bucket decides after the timeout', async () => {
    const redis = await startOwnRedis();
    const warnings: string[] = [];
    const limiter = new GlobalRateLimiter({
      redis: resolveRedisSection({ url: redis.url, prefix: `${prefix}d:`, timeout: 100 }, 'unused'),
      logger: { warn: (message) => warnings.push(message) },
    });
    const sleeper = createClient({ url: redis.url });
    sleeper.on('error', () => undefined);
    try {
      await limiter.ready();
      await sleeper.connect();
      const policy = new TenantPolicy(
        { t: { rateLimit: { requestsPerSecond: 1, burst: 5 } } },
        { globalLimits: limiter },
      );
      (await policy.admit(caller('t')))();
      // Redis holds every command it receives for 3 s, the way a long script or a stall would.
      await sleeper.sendCommand(['CLIENT', 'PAUSE', '3000', 'ALL']);
      const started = performance.now();
      (await policy.admit(caller('t')))();
      const waitedMs = performance.now() - started;
      assert.ok(waitedMs < 2000, `admitted after ${waitedMs.toFixed(0)} ms, not after the 3 s stall`);
      assert.equal(warnings.length, 1, warnings.join('\n'));
      assert.match(warnings[0]!, /did not answer within 100 ms/);
      const up = events('up', 1);
      await up;
      assert.ok(limiter.connected, 'shared again once Redis answers');
    } finally {
      await limiter.close();
      await sleeper.close().catch(() => undefined);
      await redis.stop();
    }
  });
});

void describe('through a gateway', () => {
  void test('Redis stopped mid-use: the tenant keeps being served under its local limit, one warning in the log, global again after a restart', async () => {
    const redis = await startOwnRedis();
    const lines: string[] = [];
    const logger = createLogger({
      level: 'warn',
      destination: new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(...chunk.toString().split('\n').filter(Boolean));
          done();
        },
      }),
    });
    const key = `key-${randomUUID()}`;
    let restarted: OwnRedis | undefined;
    const up = events('up', 1);
    const gateway = await startGateway({
      port: 0,
      upstreams: [resolveProxyConfig(demoUpstreamConfig())],
      auth: { apiKeys: [{ id: 'k', key, tenant: 't' }], allowAnonymous: false, anonymousTenant: 'default' },
      tenants: { t: { rateLimit: { requestsPerSecond: 0.01, burst: 5 } } },
      redis: resolveRedisSection({ url: redis.url, prefix: `${prefix}gw:`, timeout: 2000 }, 'unused'),
      logger,
      telemetry: { ...TELEMETRY_DEFAULTS, logging: { ...TELEMETRY_DEFAULTS.logging, requests: false } },
    });
    try {
      await up;
      const warnings = () => lines.filter((line) => line.includes('tenant rate limits are enforced by each replica'));
      /** Requests until the first refusal (at most 8); every refusal checked to be RELAY_RATE_LIMITED. */
      const servedBeforeRefusal = async (): Promise<number> => {
        for (let served = 0; served < 8; served++) {
          const response = await fetch(`${gateway.url}/mcp`, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              accept: 'application/json, text/event-stream',
              authorization: `Bearer ${key}`,
              'mcp-protocol-version': '2026-07-28',
              'mcp-method': 'tools/list',
            },
            body: JSON.stringify({ jsonrpc: '2.0', id: served, method: 'tools/list', params: { _meta: MODERN_META } }),
          });
          const body = (await response.json()) as {
            result?: unknown;
            error?: { code: number; data?: { relayCode?: string } };
          };
          if (body.result !== undefined) continue;
          assert.equal(body.error?.code, -32003, JSON.stringify(body));
          assert.equal(body.error?.data?.relayCode, 'RELAY_RATE_LIMITED');
          return served;
        }
        return 8;
      };
      assert.equal(await servedBeforeRefusal(), 5, 'the shared bucket: burst 5');

      const down = events('down', 1);
      await redis.stop();
      await down;
      assert.equal(
        await servedBeforeRefusal(),
        5,
        'Redis down: served by the replica’s own bucket (burst 5), no failure',
      );
      assert.equal(warnings().length, 1, lines.join('\n'));

      const back = events('up', 1);
      restarted = await startOwnRedis(redis.port);
      await back;
      assert.equal(await servedBeforeRefusal(), 5, 'shared again: the restarted Redis’s bucket');
      assert.equal(warnings().length, 1, 'still one warning');
    } finally {
      await gateway.close();
      await restarted?.stop();
      await redis.stop();
    }
  });
});
