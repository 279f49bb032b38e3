/**
 * The cache's shared tier on a three-node Redis Cluster started by this file from `redis-server`
 * binaries: entries spread over the nodes (no CROSSSLOT error on any write or invalidation), are
 * served across processes, and invalidations (exact, by prefix, clear) reach the other process
 * over sharded pub/sub.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { createClient } from 'redis';

import { CACHE_CHANNELS, type CacheInvalidateEvent, type CacheL2Event } from '../src/cache/index.js';
import { createProxyFactory, type ProxyFactory } from '../src/index.js';
import { startInProcessHttpFixture } from './fixtures/index.js';
import { startRedisCluster, type RedisClusterHandle } from './helpers/redis-cluster.js';
import { nextEvent } from './helpers/events.js';

const fixture = await startInProcessHttpFixture({ mode: 'modern' });
let cluster: RedisClusterHandle;

before(async () => {
  cluster = await startRedisCluster();
});

after(async () => {
  await fixture.stop();
  await cluster?.stop();
});

function calls(tool: string): number {
  return fixture.state.calls.get(tool) ?? 0;
}

/** A factory with its own cache and cluster connections: what one process of a deployment has. */
async function processLike(prefix: string, warnings: string[] = []): Promise<ProxyFactory> {
  const ready = nextEvent<CacheL2Event>(CACHE_CHANNELS.l2, (event) => event.state === 'up');
  const factory = await createProxyFactory(
    {
      serverUrl: fixture.url,
      name: 'demo',
      maxRetries: 0,
      cache: { tools: ['add', 'echo'], redis: { cluster: [...cluster.urls], prefix } },
    },
    { logger: { warn: (message) => warnings.push(message) } },
  );
  await ready;
  return factory;
}

/** Keys under `prefix` on each node, by node URL. */
async function keysPerNode(prefix: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const url of cluster.urls) {
    const client = createClient({ url });
    client.on('error', () => undefined);
    await client.connect();
    const keys: string[] = [];
    for await (const batch of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) keys.push(...batch);
    out.set(url, keys);
    await client.close();
  }
  return out;
}

/** Waits (bounded) until `check` holds, polling every 10 ms. */
async function until(check: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

void describe('cache on a three-node Redis Cluster', () => {
  void test('entries spread over the nodes and are served across processes, without a CROSSSLOT error', async () => {
    const warnings: string[] = [];
    await using a = await processLike('spread:', warnings);
    await using b = await processLike('spread:', warnings);
    const before = calls('add');
    for (let i = 0; i < 12; i++) await a.createToolProxy('add').execute({ a: i, b: 1 });
    for (let i = 0; i < 12; i++) await a.createToolProxy('echo').execute({ text: `t${i}` });
    await a.cache!.flush();
    assert.equal(calls('add'), before + 12);
    for (let i = 0; i < 12; i++) await b.createToolProxy('add').execute({ a: i, b: 1 });
    assert.equal(calls('add'), before + 12, 'B was served every entry from the cluster');
    assert.equal(b.cache!.stats().l2Hits, 12);
    const perNode = await keysPerNode('spread:');
    const holding = [...perNode.values()].filter((keys) => keys.some((k) => k.startsWith('spread:e:'))).length;
    assert.ok(holding >= 2, `entries of two tags live on ${holding} node(s): tags spread over the cluster`);
    assert.deepEqual(warnings, [], 'no command failed (a CROSSSLOT error would mark the tier down and warn)');
  });

  void test('an exact invalidation, a prefix invalidation and a clear reach the other process over sharded pub/sub', async () => {
    const warnings: string[] = [];
    await using a = await processLike('inval:', warnings);
    await using b = await processLike('inval:', warnings);
    const add = (f: ProxyFactory) => f.createToolProxy('add').execute({ a: 5, b: 5 });
    const echo = (f: ProxyFactory) => f.createToolProxy('echo').execute({ text: 'x' });
    await add(a);
    await echo(a);
    await a.cache!.flush();
    await add(b);
    await echo(b);
    assert.equal(b.cache!.stats().entries, 2);

    let seen = nextEvent<CacheInvalidateEvent>(CACHE_CHANNELS.invalidate, (e) => e.source === 'remote');
    a.cache!.invalidate({ tool: 'add' });
    await seen;
    await until(() => b.cache!.stats().byCategory.tools.entries === 1, "B's add entry dropped");
    const before = calls('add');
    await add(b);
    assert.equal(calls('add'), before + 1, 'the entry is gone from B and from the cluster');

    await b.cache!.flush();
    seen = nextEvent<CacheInvalidateEvent>(CACHE_CHANNELS.invalidate, (e) => e.source === 'remote');
    a.cache!.invalidate({ prefix: 'ec' });
    await seen;
    const echoes = calls('echo');
    await echo(a);
    await echo(b);
    assert.equal(calls('echo'), echoes + 1, 'the prefix invalidation dropped echo everywhere; A refilled it for B');

    await a.cache!.flush();
    await b.cache!.flush();
    seen = nextEvent<CacheInvalidateEvent>(CACHE_CHANNELS.invalidate, (e) => e.source === 'remote');
    a.cache!.clear();
    await seen;
    await a.cache!.flush();
    const left = [...(await keysPerNode('inval:')).values()].flat().filter((k) => k.startsWith('inval:e:'));
    assert.deepEqual(left, [], 'clear removed the entries from every node');
    assert.equal(b.cache!.stats().entries, 0);
    assert.deepEqual(warnings, []);
  });
});
