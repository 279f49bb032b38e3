/**
 * The cache's shared tier on a real Redis: entries served across processes, invalidation fanned
 * out over pub/sub, private entries kept home, an outage survived without a failed call, and the
 * Redis-backed ResponseCacheStore under a plain SDK client.
 *
 * Redis: `REDIS_URL` or redis://127.0.0.1:6379 when it answers (a random key prefix per run,
 * removed afterwards), else a redis-server this file starts. The outage test always starts and
 * kills its own. Without `redis-server` (and no Redis answering) these tests fail, naming
 * scripts/ensure-redis.sh: they never pass by skipping.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import { toNodeHandler, type NodeIncomingMessageLike } from '@modelcontextprotocol/node';
import { createClient } from 'redis';

import {
  CACHE_CHANNELS,
  RedisResponseCacheStore,
  type CacheInvalidateEvent,
  type CacheL2Event,
} from '../src/cache/index.js';
import { createProxyFactory, type ProxyConfig, type ProxyFactoryOptions } from '../src/index.js';
import { DEMO_README_URI, startInProcessHttpFixture } from './fixtures/index.js';
import {
  redisAnswers as answers,
  removeRedisKeys as removeKeys,
  startOwnRedis,
  type OwnRedis,
} from './helpers/redis.js';
import { nextEvent } from './helpers/events.js';

const fixture = await startInProcessHttpFixture({ mode: 'modern' });
const prefix = `mcp-relay-test:${randomUUID()}:`;
let sharedUrl: string;
let ownShared: OwnRedis | undefined;

before(async () => {
  const candidate = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
  if (await answers(candidate)) {
    sharedUrl = candidate;
  } else {
    ownShared = await startOwnRedis();
    sharedUrl = ownShared.url;
  }
});

after(async () => {
  await fixture.stop();
  if (sharedUrl !== undefined) await removeKeys(sharedUrl, `${prefix}*`);
  await ownShared?.stop();
});

function calls(tool: string): number {
  return fixture.state.calls.get(tool) ?? 0;
}

/** A factory with its own cache and its own Redis connections: what one process of a deployment has. */
async function processLike(url: string, config: Partial<ProxyConfig> = {}, options?: ProxyFactoryOptions) {
  const ready = nextEvent<CacheL2Event>(CACHE_CHANNELS.l2, (event) => event.state === 'up');
  const factory = await createProxyFactory(
    {
      serverUrl: fixture.url,
      name: 'demo',
      maxRetries: 0,
      // A second, not the default 250 ms: on a loaded machine a slow answer would count as an
      // outage and add a warning that the outage tests count. The SIGSTOP test sets its own.
      cache: { tools: ['add', 'big'], redis: { url, prefix, timeout: 1 } },
      ...config,
    } as ProxyConfig,
    options,
  );
  await ready;
  return factory;
}

void describe('shared tier', () => {
  void test('two processes sharing one Redis serve each other’s entries', async () => {
    await using a = await processLike(sharedUrl);
    await using b = await processLike(sharedUrl);
    const before = calls('add');
    const fromA = await a.createToolProxy('add').execute({ a: 40, b: 2 });
    await a.cache!.flush();
    const fromB = await b.createToolProxy('add').execute({ b: 2, a: 40 });
    assert.equal(calls('add'), before + 1, 'B was served from Redis');
    assert.deepEqual(fromB, fromA);
    assert.ok(Object.isFrozen(fromB));
    assert.equal(b.cache!.stats().byCategory.tools.l2Hits, 1);
    await b.createToolProxy('add').execute({ a: 40, b: 2 });
    assert.equal(b.cache!.stats().byCategory.tools.hits, 2, 'then from its own memory');
  });

  void test('an invalidation in one process reaches the other within 100 ms', async () => {
    await using a = await processLike(sharedUrl);
    await using b = await processLike(sharedUrl);
    await a.createToolProxy('add').execute({ a: 1, b: 1 });
    await a.cache!.flush();
    await b.createToolProxy('add').execute({ a: 1, b: 1 });
    const before = calls('add');
    const seen = nextEvent<CacheInvalidateEvent>(CACHE_CHANNELS.invalidate, (event) => event.source === 'remote');
    const started = performance.now();
    a.cache!.invalidate({ tool: 'add' });
    await seen;
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 100, `took ${elapsed.toFixed(1)} ms`);
    await b.createToolProxy('add').execute({ a: 1, b: 1 });
    assert.equal(calls('add'), before + 1, 'B asked the upstream: the entry is gone from its memory and from Redis');
  });

  void test('private entries never leave the process', async () => {
    const server = await startPrivateHintServer();
    const redis = createClient({ url: sharedUrl });
    await redis.connect();
    try {
      const privatePrefix = `${prefix}private:`;
      const ready = nextEvent<CacheL2Event>(CACHE_CHANNELS.l2, (event) => event.state === 'up');
      await using factory = await createProxyFactory(
        { serverUrl: server.url, maxRetries: 0, cache: { redis: { url: sharedUrl, prefix: privatePrefix } } },
        { identity: 'alice' },
      );
      await ready;
      await factory.createResourceProxy('secret://inbox').read();
      await factory.createResourceProxy('public://notice').read();
      await factory.cache!.flush();
      assert.equal(factory.cache!.stats().byCategory.resources.entries, 2);
      const keys: string[] = [];
      for await (const batch of redis.scanIterator({ MATCH: `${privatePrefix}e:*` })) keys.push(...batch);
      assert.equal(keys.length, 1, 'only the public resource is in Redis');
      const stored = await redis.get(keys[0]!);
      assert.match(stored!, /public notice/);
    } finally {
      await redis.close();
      await server.stop();
    }
  });
});

void describe('Redis outage', () => {
  void test('a test-owned redis-server killed mid-load: zero failed calls, one warning, and L2 resumes after a restart', async () => {
    const redis = await startOwnRedis();
    const warnings: string[] = [];
    const factory = await processLike(redis.url, {}, { logger: { warn: (message) => warnings.push(message) } });
    try {
      const add = factory.createToolProxy('add');
      let done = 0;
      let killed: Promise<void> | undefined;
      const failures: unknown[] = [];
      const worker = async (id: number): Promise<void> => {
        for (let i = 0; i < 40; i++) {
          try {
            await add.execute({ a: id, b: i % 15 });
          } catch (error) {
            failures.push(error);
          }
          if (++done === 120) killed = redis.stop();
        }
      };
      const down = nextEvent<CacheL2Event>(CACHE_CHANNELS.l2, (event) => event.state === 'down');
      await Promise.all(Array.from({ length: 8 }, (_, id) => worker(id)));
      await killed;
      await down;
      assert.deepEqual(failures, []);
      assert.equal(done, 320);
      assert.equal(warnings.length, 1, warnings.join('\n'));
      assert.match(warnings[0]!, /Redis at redis:\/\/127\.0\.0\.1:\d+\/? is unreachable .*serving from memory only/);
      // Calls go on with memory alone while it is away.
      const before = calls('add');
      await add.execute({ a: 1000, b: 1 });
      await add.execute({ a: 1000, b: 1 });
      assert.equal(calls('add'), before + 1);

      const up = nextEvent<CacheL2Event>(CACHE_CHANNELS.l2, (event) => event.state === 'up');
      const restarted = await startOwnRedis(redis.port);
      try {
        await up;
        await using other = await processLike(restarted.url);
        // 'up' says the command connection is back; the first write after it can still race the
        // reconnection (seen once in ~10 runs on Node 24). The claim is that L2 resumes: give it
        // a few distinct entries, ~1 s at most, and require one to be served from Redis.
        let resumedAt = -1;
        for (let attempt = 0; attempt < 20 && resumedAt < 0; attempt++) {
          await add.execute({ a: 2000 + attempt, b: 1 });
          await factory.cache!.flush();
          const calledBefore = calls('add');
          await other.createToolProxy('add').execute({ a: 2000 + attempt, b: 1 });
          if (calls('add') === calledBefore) resumedAt = attempt;
          else await new Promise((resolve) => setTimeout(resolve, 50));
        }
        assert.ok(resumedAt >= 0, 'an entry written after the restart was served from the restarted Redis');
        assert.equal(warnings.length, 1);
      } finally {
        await factory.close();
        await restarted.stop();
      }
    } finally {
      await factory.close();
      await redis.stop();
    }
  });
});

void describe('Redis that stops answering', () => {
  void test('a redis-server frozen with SIGSTOP holds no call: lookups give up after the timeout, the call goes upstream, and L2 resumes after SIGCONT', async () => {
    const redis = await startOwnRedis();
    const warnings: string[] = [];
    const factory = await processLike(
      redis.url,
      { cache: { tools: ['add', 'big'], redis: { url: redis.url, prefix, timeout: 0.2 } } },
      { logger: { warn: (message) => warnings.push(message) } },
    );
    try {
      const add = factory.createToolProxy('add');
      await add.execute({ a: 3000, b: 1 });
      await factory.cache!.flush();
      // The connection stays open and the commands are written, but nothing answers: node-redis
      // times out a command only until it is written, so only the tier's own deadline frees them.
      process.kill(redis.pid, 'SIGSTOP');
      const started = performance.now();
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          Promise.race([
            add.execute({ a: 3100 + i, b: 1 }),
            new Promise((_, reject) => setTimeout(() => reject(new Error('call held by a silent Redis')), 10_000)),
          ]),
        ),
      );
      const elapsedMs = performance.now() - started;
      assert.deepEqual(
        results.map((r) => (r as { structuredContent?: { sum?: number } }).structuredContent?.sum),
        Array.from({ length: 8 }, (_, i) => 3101 + i),
      );
      assert.ok(elapsedMs < 10_000, `calls took ${elapsedMs} ms`);
      assert.equal(warnings.length, 1, warnings.join('\n'));

      const up = nextEvent<CacheL2Event>(CACHE_CHANNELS.l2, (event) => event.state === 'up');
      process.kill(redis.pid, 'SIGCONT');
      await up;
      await using other = await processLike(redis.url);
      let resumed = false;
      for (let attempt = 0; attempt < 20 && !resumed; attempt++) {
        await add.execute({ a: 3200 + attempt, b: 1 });
        await factory.cache!.flush();
        const calledBefore = calls('add');
        await other.createToolProxy('add').execute({ a: 3200 + attempt, b: 1 });
        resumed = calls('add') === calledBefore;
        if (!resumed) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.ok(resumed, 'an entry written after SIGCONT was served from Redis');
    } finally {
      process.kill(redis.pid, 'SIGCONT');
      await factory.close();
      await redis.stop();
    }
  });
});

void describe('two OS processes sharing one Redis', () => {
  test("a process serves another process's entry, and sees its invalidation within 100 ms", async () => {
    const peer = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        fileURLToPath(new URL('./helpers/redis-peer.ts', import.meta.url)),
        fixture.url,
        sharedUrl,
        prefix + 'procs:',
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const lines = createInterface({ input: peer.stdout });
    const iterator = lines[Symbol.asyncIterator]();
    const next = async () => {
      const line = String((await iterator.next()).value);
      return line;
    };
    const exited = new Promise((resolve) => peer.once('exit', resolve));
    try {
      assert.equal(await next(), 'ready');
      const before = calls('add');
      peer.stdin.write('call\n');
      assert.equal(await next(), 'miss', 'the other process asked the upstream and stored the answer');
      assert.equal(calls('add'), before + 1);

      const here = await processLike(sharedUrl, {
        cache: { tools: ['add'], redis: { url: sharedUrl, prefix: prefix + 'procs:' } },
      });
      try {
        await here.createToolProxy('add').execute({ a: 1, b: 2 });
        assert.equal(calls('add'), before + 1, "this process was answered from the other process's entry");
        assert.equal(here.cache!.stats().l2Hits, 1);

        here.cache!.invalidate({ tool: 'add' });
        await new Promise((resolve) => setTimeout(resolve, 100)); // the budget under test, not a wait for an event
        peer.stdin.write('call\n');
        assert.equal(await next(), 'miss', 'the invalidation reached the other process within 100 ms');
        assert.equal(calls('add'), before + 2);
      } finally {
        await here.close();
      }
    } finally {
      peer.stdin.write('exit\n');
      await exited;
    }
  });
});

void describe('RedisResponseCacheStore', () => {
  void test('two plain SDK clients share resources/read and tools/list answers through Redis', async () => {
    const store = new RedisResponseCacheStore({ url: sharedUrl, prefix: `${prefix}sdk:` });
    const requests: string[] = [];
    const countingFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
      if (typeof init?.body === 'string') {
        const method = (JSON.parse(init.body) as { method?: string }).method;
        if (method !== undefined) requests.push(method);
      }
      return fetch(input, init);
    };
    const connect = async (): Promise<Client> => {
      // SDK 2.4's client drops ttlMs/cacheScope from a result before its cache reads them, so every
      // result counts as hint-less; defaultCacheTtlMs is what makes them fresh for a minute.
      const client = new Client(
        { name: 'sdk-client', version: '1.0.0' },
        { responseCacheStore: store, defaultCacheTtlMs: 60_000 },
      );
      await client.connect(new StreamableHTTPClientTransport(new URL(fixture.url), { fetch: countingFetch }));
      return client;
    };
    const first = await connect();
    const second = await connect();
    try {
      const readme = await first.readResource({ uri: DEMO_README_URI });
      const tools = await first.listTools();
      const count = (method: string): number => requests.filter((m) => m === method).length;
      assert.equal(count('resources/read'), 1);
      assert.deepEqual(await second.readResource({ uri: DEMO_README_URI }), readme);
      assert.deepEqual((await second.listTools()).tools.length, tools.tools.length);
      assert.equal(count('resources/read'), 1, 'the second client was served from Redis');
      assert.equal(count('tools/list'), 1);
      await store.evict('resources/read');
      await second.readResource({ uri: DEMO_README_URI });
      assert.equal(count('resources/read'), 2, 'evict(method) empties it');
    } finally {
      await first.close();
      await second.close();
      await store.clear();
      await store.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------

/** A 2026-07-28 server with one private and one public resource (60 s hints each). */
async function startPrivateHintServer() {
  const entry = createMcpHandler(() => {
    const server = new McpServer({ name: 'private-hints', version: '1.0.0' }, { capabilities: { resources: {} } });
    server.registerResource(
      'inbox',
      'secret://inbox',
      { cacheHint: { ttlMs: 60_000, cacheScope: 'private' } },
      (uri) => ({
        contents: [{ uri: uri.href, text: 'private mail' }],
      }),
    );
    server.registerResource(
      'notice',
      'public://notice',
      { cacheHint: { ttlMs: 60_000, cacheScope: 'public' } },
      (uri) => ({
        contents: [{ uri: uri.href, text: 'public notice' }],
      }),
    );
    return server;
  });
  const handler = toNodeHandler(entry);
  const httpServer = http.createServer((req, res) => {
    void handler(req as NodeIncomingMessageLike, res);
  });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const { port } = httpServer.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    async stop() {
      await entry.close();
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    },
  };
}
