/**
 * Redis stopped and started under load, through a real `mcp-relay serve` process: the gateway's
 * shared cache tier (cache.redis) and its global rate limits (the top-level redis section) use a
 * redis-server this test starts, SIGKILLs by pid mid-load and starts again on the same port. Calls
 * keep succeeding throughout (memory and local buckets carry them), each part that uses Redis
 * warns once, the shared tier comes back, counter never runs twice, and the gateway's fds and
 * memory return to their baseline.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test, type TestContext } from 'node:test';

import { startHttpFixture } from './fixtures/index.js';
import {
  assertAllEnded,
  assertBaseline,
  counterViolations,
  eventually,
  firstFailures,
  metric,
  mixedCall,
  quietResources,
  readLedger,
  RpcClient,
  runLoad,
  summarize,
} from './helpers/faults.js';
import { startOwnRedis, type OwnRedis } from './helpers/redis.js';
import { startReplicas } from './helpers/replicas.js';

const DEADLINE_MS = 30_000;
const WORKERS = 12;

const dir = mkdtempSync(join(tmpdir(), 'mcp-relay-faults-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('Redis SIGKILLed and restarted on its port under load: every call succeeds, one warning per part that uses it, the shared tier comes back, counter never runs twice', (t) =>
  outageUnderLoad(t, 'kill'));

test('Redis frozen (SIGSTOP) under load, then resumed: every call succeeds, at most one warning per part that uses it, the shared tier is up after, counter never runs twice', (t) =>
  outageUnderLoad(t, 'freeze'));

/**
 * The Redis outage: `kill` SIGKILLs the redis-server and starts a new one on its port (connections
 * reset, then refused, then an empty Redis); `freeze` SIGSTOPs it and SIGCONTs it later
 * (connections stay open and nothing answers: the nastier fault, bounded only by timeouts).
 */
async function outageUnderLoad(t: TestContext, fault: 'kill' | 'freeze'): Promise<void> {
  const ledger = join(dir, `redis-${fault}.ledger`);
  let redis: OwnRedis = await startOwnRedis();
  const web = await startHttpFixture({ mode: 'legacy', ledger });
  const prefix = `mcp-relay-faults:${randomUUID()}:`;
  const replicas = await startReplicas({
    count: 1,
    config: {
      upstreams: {
        web: {
          server_url: web.url,
          timeout: '6s',
          max_retries: 1,
          retry_delay: '50ms',
          connection_pool_size: 16,
          // Every add is a miss (distinct arguments): each one asks Redis, then stores there.
          cache: { tools: ['add'], redis: { url: redis.url, prefix } },
        },
      },
      redis: { url: redis.url },
      tenants: { default: { rate_limit: { requests_per_second: 100_000, burst: 100_000 } } },
      telemetry: { logging: { level: 'warn' } },
    },
  });
  try {
    const gateway = replicas.pids[0]!;
    const base = replicas.urls[0]!;
    let by = 0;
    const nextBy = () => ++by;
    const load = (client: RpcClient) => (i: number) => {
      const call = mixedCall(i, nextBy);
      return { ...call, send: () => client.callTool(call.tool, call.args, { deadlineMs: DEADLINE_MS }) };
    };
    const l2Up = async (value: number) => (await metric(base, 'mcp_relay_cache_l2_up')) === value;

    const warmClient = new RpcClient(`${base}/mcp/web`);
    const warm = await runLoad({ total: 90, workers: WORKERS, call: load(warmClient) });
    await warmClient.close();
    assert.equal(summarize(warm), 'result 90', firstFailures(warm));
    assert.ok(await eventually(() => l2Up(1), 10_000), 'the shared tier is up before the fault');
    const baseline = await quietResources(gateway);

    const client = new RpcClient(`${base}/mcp/web`);
    const counted = load(client);
    let started = 0;
    let backAt = Infinity;
    let wentDown = false;
    let injected: Promise<void> | undefined;
    const records = await runLoad({
      total: (i) => i < backAt + 300,
      workers: WORKERS,
      call: (i) => {
        started = i + 1;
        return counted(i);
      },
      onSettled: (n) => {
        if (n !== 150) return;
        injected = (async () => {
          try {
            if (fault === 'kill') {
              const port = redis.port;
              await redis.stop(); // SIGKILL by pid
              wentDown = await eventually(() => l2Up(0), 20_000);
              // Down a while under load, then back on the same port, empty.
              await new Promise((resolve) => setTimeout(resolve, 1000));
              redis = await startOwnRedis(port);
            } else {
              process.kill(redis.pid, 'SIGSTOP');
              // Frozen a while under load: long enough for every command timeout to pass.
              await new Promise((resolve) => setTimeout(resolve, 3000));
              process.kill(redis.pid, 'SIGCONT');
            }
            assert.ok(await eventually(() => l2Up(1), 20_000), 'the shared tier is up after the outage');
          } finally {
            backAt = started;
          }
        })();
        injected.catch(() => undefined); // awaited after the load, which must not stop on it
      },
    });
    await injected;
    await client.close();
    t.diagnostic(`through the Redis outage: ${summarize(records)}; back by call ${backAt}`);

    if (fault === 'kill') assert.ok(wentDown, 'the gateway saw Redis go down');
    assertAllEnded(records, DEADLINE_MS);
    assert.equal(summarize(records), `result ${records.length}`, firstFailures(records));
    assert.deepEqual(counterViolations([...warm, ...records], readLedger(ledger)), []);
    const check = new RpcClient(`${base}/mcp/web`);
    const value = await check.callTool('counter_value', {}, { deadlineMs: DEADLINE_MS });
    await check.close();
    const runs = readLedger(ledger);
    assert.equal(
      value.kind === 'result' ? (value.result['content'] as { text: string }[])[0]!.text : JSON.stringify(value),
      String(runs.totals.get(web.pid) ?? 0),
      'counter_value equals the runs the ledger saw',
    );
    // One warning per part of the gateway that uses Redis (cache tier, rate limits, …), not one per call.
    const warnings = new Map<string, number>();
    for (const line of replicas.output(0).split('\n')) {
      const match = /(mcp-relay [a-z ]+): Redis at \S+ is (?:unreachable|not reachable)/.exec(line);
      if (match) warnings.set(match[1]!, (warnings.get(match[1]!) ?? 0) + 1);
    }
    t.diagnostic(`Redis warnings: ${[...warnings].map(([part, n]) => `${part} ×${n}`).join(', ')}`);
    if (fault === 'kill') assert.ok(warnings.size > 0, `the outage was logged: ${replicas.output(0)}`);
    for (const [part, count] of warnings) assert.equal(count, 1, `${part} warned ${count} times`);
    await assertBaseline(gateway, baseline, 0);
  } finally {
    await replicas.close();
    await web.stop();
    await redis.stop();
  }
}
