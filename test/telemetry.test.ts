/**
 * Telemetry against real demo servers: hits counted (not guessed), the seed's summary from
 * `factory.stats()`, the Prometheus registry, events of the other layers, and traces with
 * `traceparent` carried upstream. Windows run on an injected clock: no sleeping.
 */
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';

import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';

import { CALL_CHANNEL, type CallEvent } from '../src/proxy/events.js';
import { createProxyFactory, type ProxyConfig } from '../src/index.js';
import { createTelemetry, RESILIENCE_CHANNELS } from '../src/telemetry/index.js';
import { answer as bareAnswer } from '../bench/lib/bare-upstream.js';
import { startInProcessHttpFixture } from './fixtures/index.js';

const demo = await startInProcessHttpFixture({ mode: 'modern' });
after(() => demo.stop());

function fakeClock(start = 1_000_000) {
  let now = start;
  return {
    now: () => now,
    advance(ms: number) {
      now += ms;
    },
  };
}

const silent = { level: 'silent' } as const;

function config(overrides: Partial<ProxyConfig> = {}): ProxyConfig {
  return {
    name: 'demo',
    serverUrl: demo.url,
    maxRetries: 0,
    cache: { tools: ['echo', 'add'] },
    ...overrides,
  } as ProxyConfig;
}

/** The value of one sample line of the exposition text, e.g. `mcp_relay_calls_total{...}`. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const ok = Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`));
    if (ok) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('counting, not guessing', () => {
  test('after N calls with K hits, stats() and the metrics say exactly K/N', async () => {
    await using factory = await createProxyFactory(config(), { stats: true });
    await using telemetry = createTelemetry({ logger: silent, resources: false, alerts: false });
    telemetry.watch(factory);
    const echo = factory.createToolProxy('echo');
    // 7 distinct texts (misses), each asked again 1-3 times (hits): N = 7 + 13 = 20, K = 13.
    const repeats = [1, 2, 3, 1, 2, 3, 1];
    let n = 0;
    let k = 0;
    for (const [i, times] of repeats.entries()) {
      await echo.execute({ text: `t${i}` });
      n++;
      for (let j = 0; j < times; j++) {
        await echo.execute({ text: `t${i}` });
        n++;
        k++;
      }
    }
    assert.equal(n, 20);
    assert.equal(k, 13);
    const stats = factory.stats();
    assert.equal(stats.total_operations, n);
    assert.equal(stats.cache_hits, k);
    assert.equal(stats.cache_misses, n - k);
    assert.equal(stats.cache_hit_rate, k / n);
    assert.equal(stats.window.cache_hit_rate, k / n);
    assert.equal(stats.errors, 0);
    assert.equal(stats.error_rate, 0);
    assert.ok(stats.p50_latency_ms > 0 && stats.p50_latency_ms <= stats.p95_latency_ms);
    assert.ok(stats.p95_latency_ms <= stats.p99_latency_ms);
    assert.ok(stats.operations_per_second > 0);
    // The cache agrees with the events it never published per upstream.
    assert.equal(factory.cache!.stats().hits, k);

    const text = await telemetry.scrape();
    const labels = { upstream: 'demo', method: 'tools/call', name: 'echo' };
    assert.equal(sample(text, 'mcp_relay_cache_requests_total', { ...labels, result: 'hit' }), k);
    assert.equal(sample(text, 'mcp_relay_cache_requests_total', { ...labels, result: 'miss' }), n - k);
    assert.equal(sample(text, 'mcp_relay_calls_total', labels), n);
    assert.equal(sample(text, 'mcp_relay_call_duration_seconds_count', labels), n);
    assert.equal(sample(text, 'mcp_relay_call_duration_seconds_bucket', { ...labels, le: '+Inf' }), n);
    const summary = telemetry.summary({ window: true });
    assert.equal(summary.cache_hit_rate, k / n);
  });

  test('errors, tool errors, timeouts and uncached calls are told apart', async () => {
    await using factory = await createProxyFactory(config({ cache: { tools: ['echo'] } }), { stats: true });
    await factory.createToolProxy('fail').execute({ message: 'no' }); // tool error, not cacheable
    await factory.createToolProxy('counter').execute({}); // side effect: never cached
    await assert.rejects(factory.createToolProxy('slow').execute({ ms: 2000 }, { timeout: 50 }), {
      code: 'RELAY_TIMEOUT',
    });
    await assert.rejects(factory.request('no/such/method', {}));
    const stats = factory.stats();
    assert.equal(stats.total_operations, 4);
    assert.equal(stats.tool_errors, 1);
    assert.equal(stats.errors, 2);
    assert.equal(stats.timeouts, 1);
    assert.equal(stats.error_rate, 0.5);
    assert.equal(stats.cache_hits + stats.cache_misses, 0);
    assert.equal(stats.cache_hit_rate, 0);
  });

  test('one event per operation, with its tenant and cache result', async () => {
    await using factory = await createProxyFactory(config(), { tenant: 'acme' });
    const events: CallEvent[] = [];
    const listener = (message: unknown) => events.push({ ...(message as CallEvent) });
    diagnosticsChannel.subscribe(CALL_CHANNEL, listener);
    try {
      const add = factory.createToolProxy('add');
      await add.execute({ a: 1, b: 2 });
      await add.execute({ b: 2, a: 1 }, { tenant: 'acme' });
      await add.execute({ a: 1, b: 2 }, { tenant: 'other' });
      await factory.listTools();
      await factory.listTools();
    } finally {
      diagnosticsChannel.unsubscribe(CALL_CHANNEL, listener);
    }
    assert.deepEqual(
      events.map((e) => [e.method, e.name, e.tenant, e.cache, e.outcome]),
      [
        ['tools/call', 'add', 'acme', 'miss', 'ok'],
        ['tools/call', 'add', 'acme', 'hit', 'ok'],
        ['tools/call', 'add', 'other', 'miss', 'ok'],
        ['tools/list', '', 'acme', 'miss', 'ok'],
        ['tools/list', '', 'acme', 'hit', 'ok'],
      ],
    );
    assert.ok(events.every((e) => e.upstream === 'demo' && e.factory === factory && e.durationMs >= 0));
  });

  test('the window forgets what is older than it; since-start does not', async () => {
    const clock = fakeClock();
    await using factory = await createProxyFactory(config(), { now: clock.now, stats: true });
    const echo = factory.createToolProxy('echo');
    await echo.execute({ text: 'a' });
    await echo.execute({ text: 'a' });
    clock.advance(61_000);
    await echo.execute({ text: 'b' });
    const stats = factory.stats();
    assert.equal(stats.total_operations, 3);
    assert.equal(stats.cache_hits, 1);
    assert.equal(stats.window.total_operations, 1);
    assert.equal(stats.window.cache_hits, 0);
    assert.equal(stats.window.cache_hit_rate, 0);
  });
});

describe('the registry', () => {
  test('pool, cache size, events of the cache and of the resilience layers are exported', async () => {
    await using factory = await createProxyFactory(config({ cacheSize: 2 }));
    await using telemetry = createTelemetry({ logger: silent, alerts: false, resources: { intervalMs: 1000 } });
    telemetry.watch(factory).start();
    const echo = factory.createToolProxy('echo');
    for (const text of ['a', 'b', 'c', 'd']) await echo.execute({ text }); // 2 evictions at cache_size 2
    // The balancing and resilience layers publish on these channels; the names are the contract.
    diagnosticsChannel.channel(RESILIENCE_CHANNELS.breaker).publish({ upstream: 'demo', from: 'closed', to: 'open' });
    diagnosticsChannel
      .channel(RESILIENCE_CHANNELS.health)
      .publish({ kind: 'ejected', upstream: 'demo', forMs: 60_000 });
    diagnosticsChannel
      .channel(RESILIENCE_CHANNELS.retry)
      .publish({ upstream: 'demo', method: 'tools/call', attempt: 1 });
    const text = await telemetry.scrape();
    assert.equal(sample(text, 'mcp_relay_cache_evictions_total', { category: 'tools' }), 2);
    assert.equal(sample(text, 'mcp_relay_cache_stores_total', { category: 'tools' }), 4);
    assert.equal(sample(text, 'mcp_relay_cache_entries', { upstream: 'demo' }), 2);
    assert.equal(sample(text, 'mcp_relay_pool_size', { upstream: 'demo' }), 10);
    assert.equal(sample(text, 'mcp_relay_pool_in_use', { upstream: 'demo' }), 0);
    assert.equal(sample(text, 'mcp_relay_breaker_state', { upstream: 'demo', state: 'open' }), 1);
    assert.equal(sample(text, 'mcp_relay_breaker_state', { upstream: 'demo', state: 'closed' }), 0);
    assert.equal(sample(text, 'mcp_relay_ejections_total', { upstream: 'demo' }), 1);
    assert.equal(sample(text, 'mcp_relay_upstream_ejected', { upstream: 'demo' }), 1);
    assert.equal(sample(text, 'mcp_relay_retries_total', { upstream: 'demo', method: 'tools/call' }), 1);
    assert.ok((sample(text, 'mcp_relay_memory_usage_ratio', {}) ?? -1) > 0);
    assert.match(text, /^process_cpu_user_seconds_total /m);
    const snapshot = telemetry.snapshot();
    assert.equal(snapshot.upstreams[0]?.breaker, 'open');
    assert.equal(snapshot.upstreams[0]?.ejected, true);
  });

  test('a resource sample and the seed summary', async () => {
    await using telemetry = createTelemetry({
      logger: silent,
      alerts: false,
      resources: { childProcesses: () => 3, connections: () => 2 },
    });
    const first = telemetry.resources!.sample();
    assert.ok(first.rssBytes > 0 && first.memoryRatio > 0 && first.memoryRatio <= 1);
    assert.equal(first.childProcesses, 3);
    const summary = telemetry.resources!.summary();
    assert.equal(summary.samples, 1);
    assert.equal(summary.peak_connections, 2);
  });
});

describe('traces', () => {
  test('a call, its cache lookup and each upstream attempt; traceparent travels in _meta', async () => {
    const bodies: { method?: string; params?: { _meta?: Record<string, unknown> } }[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        bodies.push(JSON.parse(body));
        const reply = bareAnswer(body);
        if (reply === undefined) res.writeHead(202).end();
        else res.writeHead(200, { 'content-type': 'application/json' }).end(reply);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
    const exporter = new InMemorySpanExporter();
    try {
      await using telemetry = createTelemetry({
        logger: silent,
        alerts: false,
        resources: false,
        tracing: { exporter, immediate: true },
      });
      await using factory = await createProxyFactory({
        name: 'bare',
        serverUrl: url,
        maxRetries: 0,
        cache: { tools: ['echo'] },
      });
      telemetry.watch(factory);
      const echo = factory.createToolProxy('echo');
      await echo.execute({ text: 'x' });
      await echo.execute({ text: 'x' });
      await telemetry.flush();
      const spans = exporter.getFinishedSpans();
      const byName = (name: string) => spans.filter((s) => s.name === name);
      const calls = byName('tools/call echo');
      assert.equal(calls.length, 2);
      const [miss, hit] = [
        calls.find((s) => s.attributes['mcp_relay.cache.result'] === 'miss'),
        calls.find((s) => s.attributes['mcp_relay.cache.result'] === 'hit'),
      ];
      assert.ok(miss && hit);
      const attempts = byName('upstream tools/call');
      assert.equal(attempts.length, 1);
      assert.equal(attempts[0]!.parentSpanContext?.spanId, miss.spanContext().spanId);
      const lookups = byName('cache lookup');
      assert.equal(lookups.length, 2);
      assert.ok(lookups.some((s) => s.parentSpanContext?.spanId === miss.spanContext().spanId));
      assert.ok(lookups.some((s) => s.parentSpanContext?.spanId === hit.spanContext().spanId));
      const sent = bodies.find((b) => b.method === 'tools/call');
      const sc = attempts[0]!.spanContext();
      assert.equal(sent?.params?._meta?.['traceparent'], `00-${sc.traceId}-${sc.spanId}-01`);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
