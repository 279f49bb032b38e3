/**
 * The response cache in front of real demo servers (both revisions over HTTP, and stdio): what is
 * cached, for how long, for whom, and when it is dropped. Time is an injected clock: no sleeping.
 */
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';

import { MAX_CACHE_TTL_MS } from '@modelcontextprotocol/client';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import { toNodeHandler } from '@modelcontextprotocol/node';
import type { NodeIncomingMessageLike } from '@modelcontextprotocol/node';

import {
  CACHE_CHANNELS,
  CachePolicy,
  canonicalJson,
  cacheKey,
  ResponseCache,
  type CacheInvalidateEvent,
  type CacheStoreEvent,
} from '../src/cache/index.js';
import { createProxyFactory, type ProxyConfig, type ProxyFactoryOptions } from '../src/index.js';
import {
  DEMO_COUNTER_URI,
  DEMO_README_URI,
  startInProcessHttpFixture,
  stdioFixture,
  type InProcessHttpFixture,
} from './fixtures/index.js';
import { nextEvent } from './helpers/events.js';

const modern = await startInProcessHttpFixture({ mode: 'modern' });
const legacy = await startInProcessHttpFixture({ mode: 'legacy' });
after(async () => {
  await modern.stop();
  await legacy.stop();
});

const fixtures = { modern, legacy } as const;

/** A clock the test moves by hand. */
function fakeClock(start = 1_000_000) {
  let now = start;
  return {
    now: () => now,
    advance(ms: number) {
      now += ms;
    },
  };
}

function calls(fixture: InProcessHttpFixture, tool: string): number {
  return fixture.state.calls.get(tool) ?? 0;
}

function textOf(result: { content: unknown[] }): string {
  return (result.content[0] as { text: string }).text;
}

async function factoryFor(
  fixture: InProcessHttpFixture,
  config: Partial<ProxyConfig> = {},
  options?: ProxyFactoryOptions,
) {
  return createProxyFactory({ serverUrl: fixture.url, maxRetries: 0, ...config } as ProxyConfig, options);
}

void describe('what is cached', () => {
  for (const era of ['modern', 'legacy'] as const) {
    const fixture = fixtures[era];

    void test(`${era}: the counter tool is never answered from cache unless cache.tools lists it`, async () => {
      await using factory = await factoryFor(fixture, { cache: { tools: ['add', 'echo'] }, trustAnnotations: true });
      const counter = factory.createToolProxy('counter');
      const before = calls(fixture, 'counter');
      const first = await counter.execute({});
      const second = await counter.execute({});
      assert.equal(calls(fixture, 'counter'), before + 2);
      assert.equal(Number(textOf(second)), Number(textOf(first)) + 1);

      await using listed = await factoryFor(fixture, { cache: { tools: ['count*'] } });
      const value = await listed.createToolProxy('counter').execute({ by: 0 });
      assert.deepEqual(await listed.createToolProxy('counter').execute({ by: 0 }), value);
      assert.equal(calls(fixture, 'counter'), before + 3, 'the operator listed it: the second call is a hit');
    });

    void test(`${era}: a tool the upstream annotates readOnlyHint is cached only when trust_annotations is on`, async () => {
      await using untrusted = await factoryFor(fixture);
      const before = calls(fixture, 'add');
      await untrusted.createToolProxy('add').execute({ a: 1, b: 2 });
      await untrusted.createToolProxy('add').execute({ a: 1, b: 2 });
      assert.equal(calls(fixture, 'add'), before + 2);

      await using trusted = await factoryFor(fixture, { trustAnnotations: true });
      await trusted.createToolProxy('add').execute({ a: 1, b: 2 });
      await trusted.createToolProxy('add').execute({ a: 1, b: 2 });
      assert.equal(calls(fixture, 'add'), before + 3);
      const counterBefore = calls(fixture, 'counter');
      await trusted.createToolProxy('counter').execute({ by: 0 });
      await trusted.createToolProxy('counter').execute({ by: 0 });
      assert.equal(calls(fixture, 'counter'), counterBefore + 2, 'counter is annotated readOnlyHint: false');
    });
  }

  void test('an isError result is never cached, even for a listed tool', async () => {
    await using factory = await factoryFor(modern, { cache: { tools: ['fail'] } });
    const before = calls(modern, 'fail');
    const first = await factory.createToolProxy('fail').execute({ message: 'no' });
    assert.equal(first.isError, true);
    await factory.createToolProxy('fail').execute({ message: 'no' });
    assert.equal(calls(modern, 'fail'), before + 2);
    assert.equal(factory.cache!.stats().entries, 0);
  });

  void test('a JSON-RPC error is never cached', async () => {
    await using factory = await factoryFor(modern, { cache: { tools: ['*'] } });
    const reader = factory.createResourceProxy('demo://nowhere/at-all');
    await assert.rejects(reader.read(), { code: 'RELAY_UPSTREAM_ERROR' });
    await assert.rejects(reader.read(), { code: 'RELAY_UPSTREAM_ERROR' });
    assert.equal(factory.cache!.stats().byCategory.resources.entries, 0);
  });

  void test('enable_caching: false turns the cache off entirely', async () => {
    await using factory = await factoryFor(modern, { enableCaching: false, cache: { tools: '*' } });
    assert.equal(factory.cache, undefined);
    const before = calls(modern, 'add');
    await factory.createToolProxy('add').execute({ a: 1, b: 1 });
    await factory.createToolProxy('add').execute({ a: 1, b: 1 });
    assert.equal(calls(modern, 'add'), before + 2);
  });

  void test('lists, resources/read and prompts/get are cached by default (2025: no hints, config decides)', async () => {
    await using factory = await factoryFor(legacy);
    const tools = await factory.listTools();
    assert.equal(await factory.listTools().then((again) => again.length), tools.length);
    const readme = await factory.createResourceProxy(DEMO_README_URI).read();
    assert.equal(await factory.createResourceProxy(DEMO_README_URI).read(), readme);
    const prompt = await factory.createPromptProxy('greet').get({ name: 'Ada' });
    assert.equal(await factory.createPromptProxy('greet').get({ name: 'Ada' }), prompt);
    const stats = factory.cache!.stats();
    assert.equal(stats.byCategory.metadata.hits, 1);
    assert.equal(stats.byCategory.resources.hits, 1);
    assert.equal(stats.byCategory.prompts.hits, 1);
  });

  void test('per call: bypass neither reads nor writes, refresh always asks and stores', async () => {
    await using factory = await factoryFor(modern, { cache: { tools: ['add'] } });
    const add = factory.createToolProxy('add');
    const before = calls(modern, 'add');
    await add.execute({ a: 5, b: 5 }, { cache: 'bypass' });
    assert.equal(factory.cache!.stats().entries, 0);
    const stored = await add.execute({ a: 5, b: 5 });
    const refreshed = await add.execute({ a: 5, b: 5 }, { cache: 'refresh' });
    assert.notEqual(refreshed, stored);
    assert.equal(await add.execute({ a: 5, b: 5 }), refreshed);
    assert.equal(calls(modern, 'add'), before + 3);
  });
});

void describe('server hints (2026-07-28), read as the SDK client reads them', () => {
  const policy = new CachePolicy({
    ttlMs: { tools: 300_000, resources: 300_000, prompts: 600_000, metadata: 900_000 },
    staleTtlMs: 5000,
    tools: [],
    trustAnnotations: false,
  });

  void test('ttlMs caps the TTL; 0, negative and absent (on a hint-bearing method) mean immediately stale', () => {
    assert.deepEqual(
      policy.decide('resources/read', { contents: [], ttlMs: 60_000, cacheScope: 'public' }, true, 300_000),
      {
        ttlMs: 60_000,
        staleTtlMs: 0,
        shared: true,
      },
    );
    assert.equal(
      policy.decide('resources/read', { contents: [], ttlMs: 0, cacheScope: 'public' }, true, 300_000),
      undefined,
    );
    assert.equal(
      policy.decide('resources/read', { contents: [], ttlMs: -5, cacheScope: 'public' }, true, 300_000),
      undefined,
    );
    assert.equal(policy.decide('tools/list', { tools: [], cacheScope: 'public' }, true, 300_000), undefined);
    assert.equal(
      policy.decide('resources/read', { contents: [], ttlMs: MAX_CACHE_TTL_MS * 10 }, true, Number.MAX_SAFE_INTEGER)
        ?.ttlMs,
      MAX_CACHE_TTL_MS,
      'a server cannot pin an entry beyond the SDK cap',
    );
  });

  void test('cacheScope other than public, absent included, is private', () => {
    assert.equal(policy.decide('tools/list', { tools: [], ttlMs: 1000 }, true, 300_000)?.shared, false);
    assert.equal(
      policy.decide('tools/list', { tools: [], ttlMs: 1000, cacheScope: 'private' }, true, 300_000)?.shared,
      false,
    );
  });

  void test('without hints (2025, tools/call, prompts/get) the config decides and stale-while-revalidate applies', () => {
    assert.deepEqual(policy.decide('tools/list', { tools: [] }, false, 900_000), {
      ttlMs: 900_000,
      staleTtlMs: 5000,
      shared: true,
    });
    assert.deepEqual(policy.decide('prompts/get', { messages: [] }, true, 600_000), {
      ttlMs: 600_000,
      staleTtlMs: 5000,
      shared: true,
    });
  });

  void test('isError, input-required and task results are never stored', () => {
    assert.equal(policy.decide('tools/call', { content: [], isError: true }, false, 1000), undefined);
    assert.equal(
      policy.decide('tools/call', { resultType: 'input_required', inputRequests: {} }, true, 1000),
      undefined,
    );
    assert.equal(policy.decide('tools/call', { task: { taskId: 't' } }, false, 1000), undefined);
  });

  void test("modern: the readme's public 60 s hint caps a 300 s config TTL; the counter resource (ttlMs 0) is never stored", async () => {
    const clock = fakeClock();
    await using factory = await factoryFor(modern, {}, { now: clock.now });
    const readme = factory.createResourceProxy(DEMO_README_URI);
    const first = await readme.read();
    clock.advance(59_000);
    assert.equal(await readme.read(), first);
    clock.advance(2000);
    assert.notEqual(await readme.read(), first, 'past the server ttlMs it is asked again');
    await factory.createResourceProxy(DEMO_COUNTER_URI).read();
    await factory.createResourceProxy(DEMO_COUNTER_URI).read();
    assert.equal(factory.cache!.stats().byCategory.resources.entries, 1, 'only the readme is held');
  });
});

void describe('keys and partitions', () => {
  void test('argument key order does not matter, at any depth', async () => {
    assert.equal(
      canonicalJson({ b: { y: [1, { d: 1, c: 2 }], x: 1 }, a: 1 }),
      canonicalJson({ a: 1, b: { x: 1, y: [1, { c: 2, d: 1 }] } }),
    );
    assert.equal(canonicalJson({ b: 1, 10: 'x', 9: 'y' }), '{"9":"y","10":"x","b":1}');
    assert.notEqual(canonicalJson({ a: [1, 2] }), canonicalJson({ a: [2, 1] }), 'array order is meaningful');
    assert.notEqual(cacheKey('t', 'g', 'tools/call', 'a|b', {}), cacheKey('t', 'g|a', 'tools/call', 'b', {}));

    await using factory = await factoryFor(modern, { cache: { tools: ['add'] } });
    const before = calls(modern, 'add');
    const first = await factory.createToolProxy('add').execute({ a: 3, b: 4 });
    assert.equal(await factory.createToolProxy('add').execute({ b: 4, a: 3 }), first);
    assert.equal(calls(modern, 'add'), before + 1);
  });

  void test('two tenants never see each other’s entries (per call and per factory, on one shared cache)', async () => {
    await using factory = await factoryFor(modern, { name: 'tenants', cache: { tools: ['add'] } });
    const add = factory.createToolProxy('add');
    const before = calls(modern, 'add');
    await add.execute({ a: 7, b: 7 }, { tenant: 'acme' });
    await add.execute({ a: 7, b: 7 }, { tenant: 'globex' });
    assert.equal(calls(modern, 'add'), before + 2);
    await add.execute({ a: 7, b: 7 }, { tenant: 'acme' });
    assert.equal(calls(modern, 'add'), before + 2);

    const shared = factory.cache!;
    await using tenantA = await factoryFor(
      modern,
      { name: factory.config.name, cache: { tools: ['add'] } },
      { cache: shared, tenant: 'acme' },
    );
    await using tenantB = await factoryFor(
      modern,
      { name: factory.config.name, cache: { tools: ['add'] } },
      { cache: shared, tenant: 'initech' },
    );
    await tenantA.createToolProxy('add').execute({ a: 7, b: 7 });
    assert.equal(calls(modern, 'add'), before + 2, "factory tenant 'acme' hits the per-call 'acme' entry");
    await tenantB.createToolProxy('add').execute({ a: 7, b: 7 });
    assert.equal(calls(modern, 'add'), before + 3, "'initech' has its own partition");
  });

  void test("cacheScope 'private' keys the entry by caller identity", async () => {
    const server = await startPrivateHintServer();
    try {
      await using factory = await createProxyFactory({ serverUrl: server.url, maxRetries: 0 }, { identity: 'alice' });
      const secret = factory.createResourceProxy('secret://inbox');
      const alice = await secret.read();
      assert.equal(await secret.read(), alice);
      assert.equal(server.reads(), 1);
      const bob = await secret.read({ identity: 'bob' });
      assert.equal(server.reads(), 2, "bob is not served alice's private entry");
      assert.notEqual(bob, alice);
      assert.equal(await secret.read({ identity: 'bob' }), bob);
      assert.equal(await secret.read(), alice);
      assert.equal(server.reads(), 2);
    } finally {
      await server.stop();
    }
  });
});

void describe('time, with an injected clock', () => {
  void test('an entry expires after its TTL (per tool, per category)', async () => {
    const clock = fakeClock();
    await using factory = await factoryFor(
      modern,
      { cache: { tools: ['add', { name: 'echo', ttl: '2s' }], ttl: { tools: 10 } } },
      { now: clock.now },
    );
    const before = { add: calls(modern, 'add'), echo: calls(modern, 'echo') };
    await factory.createToolProxy('add').execute({ a: 1, b: 9 });
    await factory.createToolProxy('echo').execute({ text: 'hi' });
    clock.advance(1999);
    await factory.createToolProxy('add').execute({ a: 1, b: 9 });
    await factory.createToolProxy('echo').execute({ text: 'hi' });
    assert.deepEqual([calls(modern, 'add'), calls(modern, 'echo')], [before.add + 1, before.echo + 1]);
    clock.advance(1);
    await factory.createToolProxy('echo').execute({ text: 'hi' });
    assert.equal(calls(modern, 'echo'), before.echo + 2, 'echo has its own 2 s TTL');
    clock.advance(8000);
    await factory.createToolProxy('add').execute({ a: 1, b: 9 });
    assert.equal(calls(modern, 'add'), before.add + 2, 'add expires at the tools category TTL of 10 s');
  });

  void test('stale-while-revalidate serves the stale entry at once and refreshes it in the background', async () => {
    const clock = fakeClock();
    await using factory = await factoryFor(
      modern,
      { cache: { tools: ['counter_value'], ttl: { tools: 10 } }, staleTtl: 30 },
      { now: clock.now },
    );
    const value = factory.createToolProxy('counter_value');
    const before = calls(modern, 'counter_value');
    const first = await value.execute({});
    clock.advance(15_000);
    const stored = nextEvent<CacheStoreEvent>(CACHE_CHANNELS.store, (event) => event.category === 'tools');
    const stale = await value.execute({});
    assert.equal(stale, first, 'the stale entry, without waiting for the upstream');
    await stored;
    assert.equal(calls(modern, 'counter_value'), before + 2, 'one background refresh');
    const fresh = await value.execute({});
    assert.notEqual(fresh, first);
    assert.equal(calls(modern, 'counter_value'), before + 2);
    assert.equal(factory.cache!.stats().byCategory.tools.staleHits, 1);
    clock.advance(45_000);
    await value.execute({});
    assert.equal(calls(modern, 'counter_value'), before + 3, 'past the stale window it is a plain miss');
  });
});

void describe('invalidation', () => {
  for (const era of ['modern', 'legacy'] as const) {
    const fixture = fixtures[era];

    void test(`${era}: notifications/tools/list_changed drops the cached tool list`, async () => {
      await using factory = await factoryFor(fixture);
      const count = (await factory.listTools()).length;
      assert.equal((await factory.listTools()).length, count);
      const dropped = nextEvent<CacheInvalidateEvent>(
        CACHE_CHANNELS.invalidate,
        (event) =>
          event.source === 'notification' && event.method === 'tools/list' && event.group === factory.config.name,
      );
      await factory.createToolProxy('toggle_extra_tool').execute({});
      await dropped;
      const after = await factory.listTools();
      assert.notEqual(after.length, count);
      await factory.createToolProxy('toggle_extra_tool').execute({});
    });
  }

  void test('legacy: notifications/resources/updated drops that URI (the relay subscribed to it)', async () => {
    await using factory = await factoryFor(legacy, { cache: { tools: [] } });
    const counterResource = factory.createResourceProxy(DEMO_COUNTER_URI);
    const before = (await counterResource.read()).contents[0];
    assert.equal((await counterResource.read()).contents[0], before, 'cached: 2025 carries no hints');
    const dropped = nextEvent<CacheInvalidateEvent>(
      CACHE_CHANNELS.invalidate,
      (event) =>
        event.source === 'notification' && event.name === DEMO_COUNTER_URI && event.group === factory.config.name,
    );
    await factory.createToolProxy('counter').execute({});
    await dropped;
    const after = (await counterResource.read()).contents[0] as { text: string };
    assert.equal(Number(after.text), Number((before as { text: string }).text) + 1);
  });

  void test('stdio (both eras spoken by one process): list_changed arrives on the listen stream and invalidates', async () => {
    const { command, args } = stdioFixture();
    await using factory = await createProxyFactory({ command, args, maxRetries: 0 });
    const count = (await factory.listTools()).length;
    const dropped = nextEvent<CacheInvalidateEvent>(
      CACHE_CHANNELS.invalidate,
      (event) => event.method === 'tools/list' && event.group === factory.config.name,
    );
    await factory.createToolProxy('toggle_extra_tool').execute({});
    await dropped;
    assert.equal((await factory.listTools()).length, count + 1);
  });

  void test('invalidate({ tool, uri, prefix }) and clear() drop what they name', async () => {
    await using factory = await factoryFor(legacy, { cache: { tools: ['add', 'echo'] } });
    const cache = factory.cache!;
    await factory.createToolProxy('add').execute({ a: 1, b: 1 });
    await factory.createToolProxy('add').execute({ a: 2, b: 2 });
    await factory.createToolProxy('echo').execute({ text: 'x' });
    await factory.createResourceProxy('demo://items/1').read();
    await factory.createResourceProxy('demo://items/2').read();
    await factory.createResourceProxy(DEMO_README_URI).read();
    assert.equal(cache.stats().entries, 6);
    assert.equal(cache.invalidate({ tool: 'add' }), 2);
    assert.equal(cache.invalidate({ uri: DEMO_README_URI }), 1);
    assert.equal(cache.invalidate({ prefix: 'demo://items/' }), 2);
    assert.equal(cache.stats().entries, 1);
    cache.clear();
    assert.equal(cache.stats().entries, 0);
    const before = calls(legacy, 'echo');
    await factory.createToolProxy('echo').execute({ text: 'x' });
    assert.equal(calls(legacy, 'echo'), before + 1);
  });
});

void describe('single-flight, bounds and isolation', () => {
  void test('100 concurrent identical misses reach the upstream once', async () => {
    const fixture = await startInProcessHttpFixture({ mode: 'modern', latencyMs: 50 });
    try {
      await using factory = await factoryFor(fixture, { cache: { tools: ['add'] } });
      const add = factory.createToolProxy('add');
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, i) => add.execute(i % 2 ? { a: 1, b: 2 } : { b: 2, a: 1 })),
      );
      assert.equal(calls(fixture, 'add'), 1);
      assert.ok(results.every((result) => result === results[0]));
    } finally {
      await fixture.stop();
    }
  });

  void test('a caller aborting a shared miss does not fail the others', async () => {
    const fixture = await startInProcessHttpFixture({ mode: 'modern', latencyMs: 100 });
    try {
      await using factory = await factoryFor(fixture, { cache: { tools: ['add'] } });
      const add = factory.createToolProxy('add');
      const controller = new AbortController();
      const aborted = add.execute({ a: 1, b: 1 }, { signal: controller.signal });
      const other = add.execute({ a: 1, b: 1 });
      controller.abort();
      await assert.rejects(aborted, { code: 'RELAY_ABORTED' });
      assert.equal(textOf(await other), '2');
      assert.equal(calls(fixture, 'add'), 1);
    } finally {
      await fixture.stop();
    }
  });

  void test('the byte bound holds with big results, evicting the least recently used', async () => {
    await using factory = await factoryFor(modern, { cache: { tools: ['big'] }, cacheMaxBytes: 100 * 1024 });
    const big = factory.createToolProxy('big');
    for (let kb = 30; kb < 36; kb++) await big.execute({ kb });
    const stats = factory.cache!.stats();
    assert.ok(stats.bytes <= 100 * 1024, `held ${stats.bytes} bytes`);
    assert.ok(stats.evictions >= 3, `evicted ${stats.evictions}`);
    assert.equal(stats.entries, 6 - stats.evictions);
    await big.execute({ kb: 200 });
    assert.ok(factory.cache!.stats().bytes <= 100 * 1024, 'a result larger than the bound is not stored');
  });

  void test('the entry bound (cache_size) holds', async () => {
    await using factory = await factoryFor(modern, { cache: { tools: ['add'] }, cacheSize: 3 });
    for (let i = 0; i < 10; i++) await factory.createToolProxy('add').execute({ a: i, b: 0 });
    assert.equal(factory.cache!.stats().entries, 3);
    assert.equal(factory.cache!.stats().evictions, 7);
  });

  void test('mutating a returned result does not change the next hit', async () => {
    await using factory = await factoryFor(modern, { cache: { tools: ['add'] } });
    const first = await factory.createToolProxy('add').execute({ a: 20, b: 22 });
    assert.throws(() => {
      (first.content[0] as { text: string }).text = 'tampered';
    }, TypeError);
    assert.throws(() => {
      first.content.push({ type: 'text', text: 'more' });
    }, TypeError);
    const second = await factory.createToolProxy('add').execute({ a: 20, b: 22 });
    assert.equal(textOf(second), '42');
    assert.equal(second.content.length, 1);
  });
});

void describe('warming, stats and warnings', () => {
  void test('warm() fills the cache and never calls a tool that may not be cached', async () => {
    await using factory = await factoryFor(modern, { cache: { tools: ['add'] } });
    const counterBefore = calls(modern, 'counter');
    const report = await factory.warm([
      { tool: 'add', arguments: { a: 100, b: 1 } },
      { tool: 'counter' },
      { uri: DEMO_README_URI },
      { list: 'tools' },
      { prompt: 'nope' },
    ]);
    assert.equal(report.warmed, 3);
    assert.deepEqual(report.skipped, [{ tool: 'counter' }]);
    assert.equal(report.failed.length, 1);
    assert.equal(calls(modern, 'counter'), counterBefore);
    const addBefore = calls(modern, 'add');
    await factory.createToolProxy('add').execute({ a: 100, b: 1 });
    assert.equal(calls(modern, 'add'), addBefore);
  });

  void test('stats count hits, misses and hit rate per category, and events are published', async () => {
    const hits: unknown[] = [];
    const onHit = (message: unknown): void => {
      hits.push(message);
    };
    diagnosticsChannel.subscribe(CACHE_CHANNELS.hit, onHit);
    try {
      await using factory = await factoryFor(modern, { cache: { tools: ['add'] } });
      for (let i = 0; i < 4; i++) await factory.createToolProxy('add').execute({ a: 0, b: 0 });
      const tools = factory.cache!.stats().byCategory.tools;
      assert.deepEqual([tools.hits, tools.misses, tools.entries, tools.hitRate], [3, 1, 1, 0.75]);
      assert.ok(hits.length >= 3);
      assert.deepEqual(hits.at(-1), { category: 'tools', tier: 'l1', stale: false });
    } finally {
      diagnosticsChannel.unsubscribe(CACHE_CHANNELS.hit, onHit);
    }
  });

  void test('cache.tools "*" warns once at start, naming the tools not annotated read-only', async () => {
    let warn!: (message: string) => void;
    const warned = new Promise<string>((resolve) => (warn = resolve));
    await using factory = await factoryFor(modern, { cache: { tools: '*' } }, { logger: { warn } });
    const message = await warned;
    for (const tool of ['counter', 'fail', 'set_latency', 'toggle_extra_tool'])
      assert.match(message, new RegExp(`\\b${tool}\\b`));
    assert.doesNotMatch(message, /\badd\b/);
    const before = calls(modern, 'counter');
    await factory.createToolProxy('counter').execute({ by: 0 });
    await factory.createToolProxy('counter').execute({ by: 0 });
    assert.equal(calls(modern, 'counter'), before + 1, '"*" caches every tool, as the operator asked');
  });

  void test('the cache rejects a bad bound at construction, naming it', () => {
    assert.throws(
      () => new ResponseCache({ maxEntries: -1, maxBytes: 10 }),
      /maxEntries must be a non-negative integer, got -1/,
    );
  });
});

/** A 2026-07-28 server whose one resource carries `cacheScope: 'private'`, counting its reads. */
async function startPrivateHintServer() {
  let reads = 0;
  const entry = createMcpHandler(() => {
    const server = new McpServer({ name: 'private-hints', version: '1.0.0' }, { capabilities: { resources: {} } });
    server.registerResource(
      'inbox',
      'secret://inbox',
      { mimeType: 'text/plain', cacheHint: { ttlMs: 60_000, cacheScope: 'private' } },
      (uri) => {
        reads++;
        return { contents: [{ uri: uri.href, text: `read #${reads}` }] };
      },
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
    reads: () => reads,
    async stop() {
      await entry.close();
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    },
  };
}
