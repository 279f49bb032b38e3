/**
 * Three gateway replicas (real `mcp-relay serve` processes, test/helpers/replicas.ts) sharing one
 * Redis, and then the same three tests on a three-node Redis Cluster started from `redis-server`
 * binaries; clients spread over the replicas as a load balancer would:
 *
 * - an entry cached through one replica is a hit through the other two (the shared upstream, an
 *   HTTP fixture in this process, counts its calls);
 * - an invalidation made on one replica reaches the other two within 100 ms of its publication:
 *   each replica has its own stdio upstream `local`, so a `tools/list_changed` from replica 0's
 *   is seen by replica 0 alone, and only Redis pub/sub can tell the others (their debug log
 *   lines date when each applied it; the test's own subscriber dates the publication);
 * - a tenant's rate limit holds across the replicas: at most burst + rate × elapsed admitted in
 *   all, where each replica alone would admit a burst of its own.
 *
 * Redis: 127.0.0.1:6379 (or REDIS_URL) under a prefix of this run, removed afterwards, else a
 * redis-server this file starts; the cluster is always this file's own.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { createClient } from 'redis';

import { RedisConnection } from '../src/cache/index.js';
import type { RedisTarget } from '../src/config/index.js';
import { startInProcessHttpFixture, stdioFixture } from './fixtures/index.js';
import { startRedisCluster, type RedisClusterHandle } from './helpers/redis-cluster.js';
import { redisAnswers, removeRedisKeys, startOwnRedis, type OwnRedis } from './helpers/redis.js';
import { startReplicas, type Replicas } from './helpers/replicas.js';

const fixture = await startInProcessHttpFixture({ mode: 'modern' });
const LIMITED_KEY = `limited-${randomUUID()}`;
const MODERN_META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'replicas-test', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': {},
};
/** How far the shared bucket may be exceeded: none (the script is exact), but one token may refill between the last two requests. */
const RATE_SLACK = 1;
const RATE = { requests_per_second: 1, burst: 10 };

after(async () => {
  await fixture.stop();
});

interface RpcBody {
  result?: Record<string, unknown>;
  error?: { code: number; message: string; data?: Record<string, unknown> };
}

let nextId = 1;

/** One 2026-07-28 request to a replica's /mcp. */
async function call(
  base: string,
  method: string,
  params: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<RpcBody> {
  const name = typeof params['name'] === 'string' ? { 'mcp-name': params['name'] } : {};
  const response = await fetch(`${base}/mcp`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': method,
      ...name,
      ...headers,
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params: { ...params, _meta: MODERN_META } }),
  });
  const text = await response.text();
  assert.ok(text !== '', `empty answer (HTTP ${response.status})`);
  return JSON.parse(text) as RpcBody;
}

/** The sum of a counter's samples on a replica's /metrics whose labels include `labels`. */
async function metric(base: string, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) || !line.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** When (epoch ms, the log line's `time`) a replica applied each invalidation another one published. */
function remoteInvalidations(output: string): number[] {
  const times: number[] = [];
  for (const line of output.split('\n')) {
    if (!line.includes('cache invalidated by another process')) continue;
    times.push((JSON.parse(line) as { time: number }).time);
  }
  return times;
}

/** Waits (bounded) until `check` holds. */
async function until(check: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

interface Backend {
  name: string;
  start(): Promise<{ target: RedisTarget; nodes: string[] }>;
  stop(): Promise<void>;
}

const prefix = `mcp-relay-test:${randomUUID()}:`;
let ownShared: OwnRedis | undefined;
let sharedUrl: string | undefined;
let cluster: RedisClusterHandle | undefined;

const backends: Backend[] = [
  {
    name: 'one Redis',
    async start() {
      const candidate = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
      if (await redisAnswers(candidate)) sharedUrl = candidate;
      else sharedUrl = (ownShared = await startOwnRedis()).url;
      return { target: { url: sharedUrl }, nodes: [sharedUrl] };
    },
    async stop() {
      if (sharedUrl !== undefined) await removeRedisKeys(sharedUrl, `${prefix}*`);
      await ownShared?.stop();
    },
  },
  {
    name: 'a three-node Redis Cluster',
    async start() {
      cluster = await startRedisCluster();
      return { target: { cluster: [...cluster.urls] }, nodes: [...cluster.urls] };
    },
    async stop() {
      await cluster?.stop();
    },
  },
];

/** Keys under `pattern` on every node. */
async function keysOn(nodes: readonly string[], pattern: string): Promise<string[]> {
  const keys: string[] = [];
  for (const url of nodes) {
    const client = createClient({ url });
    client.on('error', () => undefined);
    await client.connect();
    for await (const batch of client.scanIterator({ MATCH: pattern, COUNT: 500 })) keys.push(...batch);
    await client.close();
  }
  return keys;
}

for (const backend of backends) {
  void describe(`three replicas on ${backend.name}`, () => {
    let replicas: Replicas;
    let nodes: string[];
    let target: RedisTarget;
    const cachePrefix = `${prefix}${backend.name.length}:cache:`;

    before(
      async () => {
        const started = await backend.start();
        nodes = started.nodes;
        target = started.target;
        replicas = await startReplicas({
          count: 3,
          config: {
            upstreams: {
              shared: { server_url: fixture.url, max_retries: 0, cache: { tools: ['add'] } },
              local: stdioFixture(),
            },
            defaults: { cache: { redis: { ...started.target, prefix: cachePrefix } } },
            redis: { ...started.target, prefix: `${prefix}${backend.name.length}:gateway:` },
            auth: { api_keys: { limited: { key: LIMITED_KEY, tenant: 'limited' } }, allow_anonymous: true },
            tenants: { limited: { rate_limit: RATE } },
            telemetry: { logging: { requests: false, level: 'debug' } },
          },
        });
      },
      { timeout: 180_000 },
    );

    after(
      async () => {
        await replicas?.close();
        await backend.stop();
      },
      { timeout: 60_000 },
    );

    void test('an invalidation on one replica reaches the other two within 100 ms', async (t) => {
      // The test listens on the invalidation channel too: the moment Redis fans the message out is
      // the event; each replica logs (at debug level, with its timestamp) when it applied it.
      const published: number[] = [];
      const listener = new RedisConnection({ target });
      listener.subscribe(`${cachePrefix}invalidate`, () => published.push(Date.now()));
      try {
        await listener.ready();
        // Every replica lists tools: each caches its own upstream `local`'s list in memory.
        for (const url of replicas.urls) assert.ok((await call(url, 'tools/list')).result?.['tools']);
        const logged = (i: number) => remoteInvalidations(replicas.output(i));
        const before = [1, 2].map((i) => logged(i).length);
        // Replica 0's own stdio upstream announces tools/list_changed; 1 and 2 hear of it only through Redis.
        const requested = Date.now();
        const toggled = await call(replicas.urls[0]!, 'tools/call', {
          name: 'local__toggle_extra_tool',
          arguments: {},
        });
        assert.match(JSON.stringify(toggled.result), /extra tool added/);
        await until(() => Promise.resolve(published.length > 0), 'the invalidation on the Redis channel');
        await until(
          () => Promise.resolve([1, 2].every((i, k) => logged(i).length > before[k]!)),
          'both other replicas to log the invalidation they received',
        );
        const event = published[0]!;
        const reached = [1, 2].map((i, k) => logged(i)[before[k]!]! - event);
        const figures = `${reached.join(' and ')} ms after Redis published it (${event - requested} ms after the toggle was sent)`;
        t.diagnostic(`reached the other replicas ${figures}`);
        for (const ms of reached) assert.ok(ms < 100, `reached the other replicas ${figures}`);
        assert.ok(
          (await metric(replicas.urls[1]!, 'mcp_relay_cache_invalidated_entries_total', 'source="remote"')) >= 1,
          'replica 1 dropped its entry',
        );
      } finally {
        await listener.close();
      }
    });

    void test('an entry cached through one replica is a hit through the other two', async () => {
      const [first, ...others] = replicas.urls as [string, ...string[]];
      const args = { a: 41, b: nextId };
      const before = fixture.state.calls.get('add') ?? 0;
      const answer = await call(first, 'tools/call', { name: 'shared__add', arguments: args });
      assert.equal(answer.result?.['isError'], undefined, JSON.stringify(answer));
      assert.equal(fixture.state.calls.get('add'), before + 1);
      // The write to Redis follows the answer: wait for the entry to be there, not for a time.
      await until(async () => (await keysOn(nodes, `${cachePrefix}e:*`)).length > 0, 'the entry in Redis');
      for (const url of others) {
        const again = await call(url, 'tools/call', { name: 'shared__add', arguments: { b: args.b, a: args.a } });
        assert.deepEqual(again.result?.['content'], answer.result?.['content']);
      }
      assert.equal(fixture.state.calls.get('add'), before + 1, 'the other replicas were answered from Redis');
      for (const url of others) {
        assert.ok((await metric(url, 'mcp_relay_cache_requests_total', 'result="hit"')) >= 1, `a hit on ${url}`);
      }
    });

    void test('a tenant rate limit holds across the three replicas', async (t) => {
      const auth = { authorization: `Bearer ${LIMITED_KEY}` };
      const started = performance.now();
      let admitted = 0;
      let refused = 0;
      for (let i = 0; i < 45; i++) {
        const body = await call(replicas.urls[i % 3]!, 'tools/list', {}, auth);
        if (body.result !== undefined) {
          admitted++;
          continue;
        }
        assert.equal(body.error?.code, -32003, JSON.stringify(body));
        assert.equal(body.error?.data?.['relayCode'], 'RELAY_RATE_LIMITED');
        assert.ok(Number(body.error?.data?.['retryAfterMs']) >= 1);
        refused++;
      }
      const elapsedS = (performance.now() - started) / 1000;
      const bound = RATE.burst + Math.ceil(elapsedS * RATE.requests_per_second) + RATE_SLACK;
      t.diagnostic(`admitted ${admitted} of 45 across 3 replicas in ${elapsedS.toFixed(2)} s (bound ${bound})`);
      assert.ok(admitted >= RATE.burst, `the burst was admitted (${admitted})`);
      assert.ok(
        admitted <= bound,
        `admitted ${admitted} across 3 replicas in ${elapsedS.toFixed(2)} s; the shared bucket allows ${bound} (each replica alone would have admitted ${RATE.burst})`,
      );
      assert.equal(admitted + refused, 45);
    });
  });
}
