/**
 * Alerts end to end: a slow demo upstream fires the P95 alert through the gateway, which logs it,
 * lists it at /alerts and POSTs it to a webhook; it resolves once the upstream is fast again. The
 * rules' window, minimum sample count and thresholds on an injected clock. No sleeping: tests wait
 * for the engine's events.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

import { parseConfigText, resolveAlertsSection, resolveProxyConfig, TELEMETRY_DEFAULTS } from '../src/config/index.js';
import { startGateway } from '../src/gateway/index.js';
import { createProxyFactory } from '../src/index.js';
import { AlertEngine, createLogger, SEED_ALERT_THRESHOLDS, type Alert } from '../src/telemetry/index.js';
import { acquireRecorder, releaseRecorder } from '../src/telemetry/recorder.js';
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

/** The next transition of one alert (others, such as pool use under a burst, are ignored). */
function next(engine: AlertEngine, status: 'firing' | 'resolved', id: string): Promise<Alert> {
  return new Promise((resolve) => {
    const listener = (alert: Alert): void => {
      if (alert.id !== id) return;
      engine.off(status, listener);
      resolve(alert);
    };
    engine.on(status, listener);
  });
}

/** A pino destination that keeps every line. */
function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, stream };
}

describe('the alerts config', () => {
  test("defaults are the seed's ALERT_THRESHOLDS; each may be changed or turned off", () => {
    const defaults = resolveAlertsSection(undefined);
    assert.deepEqual({ ...defaults.thresholds }, { ...SEED_ALERT_THRESHOLDS });
    assert.equal(defaults.windowMs, 60_000);
    assert.equal(defaults.minSamples, 20);
    const config = parseConfigText(
      `
upstreams: { demo: { server_url: "http://127.0.0.1:1/mcp" } }
alerts:
  thresholds:
    high_latency: { p95_ms: 250, p99_ms: false }
    low_cache_hit_rate: false
  window: 30s
  min_samples: 5
  webhook: { url: "https://hooks.example.com/x", headers: { Authorization: "Bearer abc" }, timeout: 2 }
telemetry:
  logging: { level: warn, requests: true, redact_headers: [x-upstream-key] }
  tracing: { exporter: otlp }
`,
      { format: 'yaml' },
    );
    const alerts = config.alerts!;
    assert.equal(alerts.thresholds.p95Ms, 250);
    assert.equal(alerts.thresholds.p99Ms, false);
    assert.equal(alerts.thresholds.minCacheHitRate, false);
    assert.equal(alerts.thresholds.maxErrorRate, 0.05);
    assert.equal(alerts.windowMs, 30_000);
    assert.equal(alerts.minSamples, 5);
    assert.deepEqual(alerts.webhook, {
      url: 'https://hooks.example.com/x',
      headers: { Authorization: 'Bearer abc' },
      timeoutMs: 2000,
    });
    assert.equal(config.telemetry!.logging.level, 'warn');
    assert.deepEqual(config.telemetry!.logging.redactHeaders, ['x-upstream-key']);
    assert.equal(config.telemetry!.tracing.exporter, 'otlp');
    assert.equal(config.telemetry!.public, false);
    assert.equal(TELEMETRY_DEFAULTS.tracing.exporter, 'none');
  });

  test('a bad threshold fails naming the field and what was expected', () => {
    assert.throws(
      () =>
        parseConfigText(
          'upstreams: { demo: { server_url: "http://127.0.0.1:1/mcp" } }\nalerts: { thresholds: { high_error_rate: 5 } }',
          { format: 'yaml' },
        ),
      /alerts\.thresholds\.high_error_rate: expected an error rate from 0 to 1, or false/,
    );
  });
});

describe('rules over a window', () => {
  test('fires only with min_samples in the window, and resolves as the slow calls leave it', async () => {
    const clock = fakeClock();
    demo.state.latencyMs = 150;
    await using factory = await createProxyFactory(
      { name: 'demo', serverUrl: demo.url, maxRetries: 0 },
      { now: clock.now },
    );
    const recorder = acquireRecorder(factory, { windowMs: 10_000 });
    try {
      const engine = new AlertEngine(
        { recorders: () => [recorder], resources: () => undefined },
        {
          thresholds: { p95Ms: 80, p99Ms: false, minCacheHitRate: false, maxPoolUtilization: false },
          windowMs: 10_000,
          minSamples: 4,
          now: clock.now,
        },
      );
      const echo = factory.createToolProxy('echo');
      for (let i = 0; i < 3; i++) await echo.execute({ text: `slow ${i}` });
      assert.deepEqual(engine.evaluate(), [], 'three slow calls are fewer than min_samples');
      await echo.execute({ text: 'slow 3' });
      const [fired] = engine.evaluate();
      assert.equal(fired?.id, 'high_latency_p95:demo');
      assert.equal(fired.status, 'firing');
      assert.equal(fired.samples, 4);
      assert.ok(fired.value > 80, `P95 ${fired.value} ms`);
      assert.match(
        fired.message,
        /upstream 'demo': P95 latency \d+ ms over the last 10 s \(4 operations\), threshold 80 ms/,
      );
      assert.deepEqual(engine.evaluate(), [], 'still firing: no transition');
      assert.equal(engine.firing().length, 1);

      demo.state.latencyMs = 0;
      clock.advance(11_000);
      for (let i = 0; i < 4; i++) await echo.execute({ text: `fast ${i}` });
      const [resolved] = engine.evaluate();
      assert.equal(resolved?.status, 'resolved');
      assert.ok(resolved.value < 80, `P95 ${resolved.value} ms`);
      assert.equal(resolved.resolvedAt, clock.now());
      assert.deepEqual(
        engine.history().map((a) => a.status),
        ['resolved', 'firing'],
      );
      assert.equal(engine.firing().length, 0);
    } finally {
      demo.state.latencyMs = 0;
      releaseRecorder(factory);
    }
  });

  test('error rate, hit rate and pool use judged per upstream', async () => {
    const clock = fakeClock();
    await using factory = await createProxyFactory(
      { name: 'demo', serverUrl: demo.url, maxRetries: 0, cache: { tools: ['echo'] } },
      { now: clock.now },
    );
    const recorder = acquireRecorder(factory);
    try {
      const engine = new AlertEngine(
        { recorders: () => [recorder], resources: () => ({ memoryRatio: 0.95 }) as never },
        { thresholds: { p95Ms: false, p99Ms: false }, minSamples: 4, now: clock.now },
      );
      const echo = factory.createToolProxy('echo');
      for (let i = 0; i < 4; i++) await echo.execute({ text: `${i}` }); // 4 misses: hit rate 0
      await assert.rejects(factory.request('no/such/method', {}));
      const fired = engine
        .evaluate()
        .map((a) => a.id)
        .sort();
      assert.deepEqual(fired, ['high_error_rate:demo', 'low_cache_hit_rate:demo', 'memory_usage']);
    } finally {
      releaseRecorder(factory);
    }
  });
});

describe('through the gateway', () => {
  test('a slow upstream fires the P95 alert: logged, at /alerts, POSTed; it resolves when the upstream recovers', async () => {
    const posts: { status: string; alert: Alert }[] = [];
    const hook = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        posts.push(JSON.parse(body));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    const log = capture();
    const gateway = await startGateway({
      port: 0,
      upstreams: [resolveProxyConfig({ name: 'demo', serverUrl: demo.url, maxRetries: 0 })],
      alerts: {
        ...resolveAlertsSection({
          thresholds: { high_latency: { p95_ms: 150, p99_ms: false }, connection_pool_exhaustion: false },
          min_samples: 8,
        }),
        evaluateEveryMs: 50,
        webhook: { url: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`, headers: {}, timeoutMs: 2000 },
      },
      logger: createLogger({ level: 'info', destination: log.stream }),
    });
    const client = new Client({ name: 'alerts-test', version: '1.0.0' });
    try {
      await client.connect(new StreamableHTTPClientTransport(new URL(`${gateway.url}/mcp`)));
      const alerts = gateway.telemetry.alerts!;
      demo.state.latencyMs = 300;
      const firing = next(alerts, 'firing', 'high_latency_p95:demo');
      await Promise.all(
        Array.from({ length: 8 }, (_, i) => client.callTool({ name: 'echo', arguments: { text: `slow ${i}` } })),
      );
      const fired = await firing;
      assert.equal(fired.id, 'high_latency_p95:demo');

      const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
      assert.match(metrics, /^mcp_relay_alert_firing\{alert="high_latency_p95",upstream="demo"\} 1$/m);
      assert.match(metrics, /^mcp_relay_calls_total\{upstream="demo",method="tools\/call",name="echo",tenant=""\} 8$/m);
      // Against DNS rebinding: the observability routes answer loopback Host names only.
      const rebound = await new Promise<number>((resolve, reject) => {
        const req = http.get(`${gateway.url}/alerts`, { headers: { host: 'evil.example.com' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
      });
      assert.equal(rebound, 403);
      const listed = (await (await fetch(`${gateway.url}/alerts`)).json()) as { firing: Alert[] };
      assert.deepEqual(
        listed.firing.map((a) => a.id),
        ['high_latency_p95:demo'],
      );

      // Recovered: fast calls until the slow ones are under 5 % of the window and the alert resolves.
      demo.state.latencyMs = 0;
      let recovered = false;
      const resolved = next(alerts, 'resolved', 'high_latency_p95:demo').finally(() => (recovered = true));
      for (let i = 0; !recovered; i++) await client.callTool({ name: 'echo', arguments: { text: `fast ${i}` } });
      const ended = await resolved;
      assert.equal(ended.id, 'high_latency_p95:demo');
      assert.ok(ended.value <= 150, `P95 ${ended.value} ms after recovery`);
      assert.ok((ended.samples ?? 0) >= 8 * 20, `resolved on ${ended.samples} operations, not for want of samples`);

      await gateway.telemetry.flush();
      assert.deepEqual(
        posts.filter((p) => p.alert.id === 'high_latency_p95:demo').map((p) => p.status),
        ['firing', 'resolved'],
      );
      const messages = log.lines.map((line) => String(line['msg']));
      assert.ok(messages.some((m) => m.startsWith("alert firing: upstream 'demo': P95 latency")));
      assert.ok(messages.some((m) => m.startsWith("alert resolved: upstream 'demo': P95 latency")));
      const after = (await (await fetch(`${gateway.url}/alerts`)).json()) as { firing: Alert[]; recent: Alert[] };
      assert.equal(after.firing.filter((a) => a.id === 'high_latency_p95:demo').length, 0);
      assert.equal(after.recent[0]?.status, 'resolved');
    } finally {
      demo.state.latencyMs = 0;
      await client.close();
      await gateway.close();
      await new Promise<void>((resolve) => hook.close(() => resolve()));
    }
  });
});
