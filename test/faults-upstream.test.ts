/**
 * Upstream faults under load, through a real `mcp-relay serve` process: a stdio upstream's process
 * SIGKILLed (found among the gateway's children in /proc), and a sessionful 2025 HTTP upstream
 * SIGKILLed then restarted on its port (its sessions gone). And an upstream that is down when the
 * gateway starts and comes up later. Steady concurrent load of raw
 * JSON-RPC calls (`counter`, `add`, `echo`) runs through each fault. For every fault: every call
 * ends with a result or a clear JSON-RPC error before its deadline; the non-idempotent `counter`
 * never runs twice for one call (the ledger fixture records each run, across processes); and the
 * gateway's file descriptors, child processes and memory return to their baseline.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

import { resolveProxyConfig } from '../src/config/index.js';
import { startGateway } from '../src/gateway/index.js';
import {
  startHttpFixture,
  startInProcessHttpFixture,
  stdioFixture,
  type HttpFixture,
  type InProcessHttpFixture,
} from './fixtures/index.js';
import {
  assertAllEnded,
  assertBaseline,
  counterViolations,
  describeResources,
  firstFailures,
  mixedCall,
  quietResources,
  readLedger,
  resourcesWhen,
  resultText,
  RpcClient,
  runLoad,
  sigkill,
  summarize,
  untilServing,
  waitForChildren,
  waitForExit,
} from './helpers/faults.js';
import { freePort } from './helpers/redis.js';
import { startReplicas } from './helpers/replicas.js';

/**
 * Every call must end by then. The gateway's own worst case is two attempts of 6 s for the tool
 * list (a call needs its route) and two for the call itself, plus backoffs: about 25 s.
 */
const DEADLINE_MS = 30_000;
const WORKERS = 12;
/**
 * Upstream settings that bound a call: 6 s per attempt (a stdio child run through tsx can take
 * seconds to start on a loaded machine), 1 retry where the call surely never ran.
 */
const BOUNDS = { timeout: '6s', max_retries: 1, retry_delay: '50ms', connection_pool_size: 16 };

const dir = mkdtempSync(join(tmpdir(), 'mcp-relay-faults-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a stdio upstream process SIGKILLed under load: calls end by their deadline, counter never runs twice, the gateway respawns it and returns to its baseline', async (t) => {
  const ledger = join(dir, 'stdio.ledger');
  const { command, args } = stdioFixture({ ledger });
  const replicas = await startReplicas({
    count: 1,
    config: {
      upstreams: { pipe: { command, args, processes: 2, ...BOUNDS } },
      telemetry: { logging: { level: 'error' } },
    },
  });
  try {
    const gateway = replicas.pids[0]!;
    const endpoint = `${replicas.urls[0]}/mcp/pipe`;
    let by = 0;
    const nextBy = () => ++by;
    const load = (client: RpcClient) => (i: number) => {
      const call = mixedCall(i, nextBy);
      return { ...call, send: () => client.callTool(call.tool, call.args, { deadlineMs: DEADLINE_MS }) };
    };

    await untilServing(endpoint, 'echo', { text: 'up' });
    const warmClient = new RpcClient(endpoint);
    const warm = await runLoad({ total: 90, workers: WORKERS, call: load(warmClient) });
    await warmClient.close();
    assert.equal(summarize(warm), 'result 90', firstFailures(warm));
    const upstreams = await waitForChildren(gateway, 2);
    const baseline = await quietResources(gateway);

    const client = new RpcClient(endpoint);
    const victim = upstreams[0]!;
    const counted = load(client);
    let started = 0;
    /** The index of the first call started once the pool has a new process in the killed one's slot. */
    let refilledAt = Infinity;
    let refilled: Promise<void> | undefined;
    const records = await runLoad({
      total: (i) => i < Math.max(600, refilledAt + 300),
      workers: WORKERS,
      call: (i) => {
        started = i + 1;
        return counted(i);
      },
      onSettled: (n) => {
        if (n !== 150) return;
        sigkill(victim);
        refilled = (async () => {
          try {
            await waitForExit(victim);
            const now = await resourcesWhen(
              gateway,
              (r) => r.children.length === 2 && !r.children.includes(victim),
              20_000,
            );
            assert.ok(!now.children.includes(victim) && now.children.length === 2, describeResources(now, baseline));
          } finally {
            // The load ends either way: 300 more calls, and a failure above is thrown by `await refilled`.
            refilledAt = started;
          }
        })();
        refilled.catch(() => undefined); // awaited after the load, which must not stop on it
      },
    });
    await refilled;
    await client.close();
    t.diagnostic(`under the kill: ${summarize(records)}; the slot was refilled by call ${refilledAt}`);

    assertAllEnded(records, DEADLINE_MS);
    const failed = records.filter((r) => r.outcome.kind !== 'result');
    for (const { outcome } of failed) {
      assert.equal(outcome.kind === 'error' && outcome.relayCode, 'RELAY_UPSTREAM_UNAVAILABLE', firstFailures(failed));
    }
    // Calls on the killed process fail (their outcome unknown); once its slot is refilled, none does.
    const afterRefill = records.slice(refilledAt);
    assert.equal(summarize(afterRefill), `result ${afterRefill.length}`, firstFailures(afterRefill));

    const all = [...warm, ...records];
    const runs = readLedger(ledger);
    assert.deepEqual(counterViolations(all, runs), []);
    const after = await assertBaseline(gateway, baseline, 2);

    // Each process has its own counter: what one reports is the sum of its runs in the ledger.
    const check = new RpcClient(endpoint);
    const value = await check.callTool('counter_value', {}, { deadlineMs: DEADLINE_MS });
    await check.close();
    const live = after.children.map((pid) => String(runs.totals.get(pid) ?? 0));
    assert.ok(
      live.includes(resultText(value) ?? ''),
      `counter_value ${resultText(value)} is one of ${live.join(', ')}`,
    );
  } finally {
    await replicas.close();
  }
});

test('a sessionful HTTP upstream SIGKILLed, then restarted on its port: clear errors while it is down, sessions renewed transparently after, counter never runs twice', async (t) => {
  const ledger = join(dir, 'http.ledger');
  let web: HttpFixture = await startHttpFixture({ mode: 'legacy', ledger });
  const port = Number(new URL(web.url).port);
  const replicas = await startReplicas({
    count: 1,
    config: { upstreams: { web: { server_url: web.url, ...BOUNDS } }, telemetry: { logging: { level: 'error' } } },
  });
  try {
    const gateway = replicas.pids[0]!;
    const endpoint = `${replicas.urls[0]}/mcp/web`;
    let by = 0;
    const nextBy = () => ++by;
    const load = (client: RpcClient) => (i: number) => {
      const call = mixedCall(i, nextBy);
      return { ...call, send: () => client.callTool(call.tool, call.args, { deadlineMs: DEADLINE_MS }) };
    };

    const warmClient = new RpcClient(endpoint);
    const warm = await runLoad({ total: 90, workers: WORKERS, call: load(warmClient) });
    await warmClient.close();
    assert.equal(summarize(warm), 'result 90', firstFailures(warm));
    const baseline = await quietResources(gateway);

    const client = new RpcClient(endpoint);
    const first = web;
    let started = 0;
    const counted = load(client);
    let restarted: Promise<void> | undefined;
    /** The index of the first call started once the restarted upstream listens. */
    let restartedAt = Infinity;
    const records = await runLoad({
      // Until 300 calls have started after the restart.
      total: (i) => i < restartedAt + 300,
      workers: WORKERS,
      call: (i) => {
        started = i + 1;
        return counted(i);
      },
      onSettled: (n) => {
        if (n !== 150) return;
        sigkill(first.pid);
        restarted = (async () => {
          try {
            await waitForExit(first.pid);
            // A while down under load, then back on the same port with none of its sessions.
            await new Promise((resolve) => setTimeout(resolve, 500));
            web = await startHttpFixture({ mode: 'legacy', ledger, port });
          } finally {
            // The load ends either way: 300 more calls, and a failure above is thrown by `await restarted`.
            restartedAt = started;
          }
        })();
        restarted.catch(() => undefined); // awaited after the load, which must not stop on it
      },
    });
    await restarted;
    await client.close();
    t.diagnostic(`under the kill and restart: ${summarize(records)}`);

    assertAllEnded(records, DEADLINE_MS);
    for (const { outcome } of records) {
      if (outcome.kind === 'error')
        assert.equal(outcome.relayCode, 'RELAY_UPSTREAM_UNAVAILABLE', outcome.error.message);
      else assert.equal(outcome.kind, 'result', JSON.stringify(outcome));
    }
    assert.ok(
      records.some((r) => r.outcome.kind === 'error'),
      'calls failed while the upstream was down (it was really killed)',
    );
    const afterRestart = records.slice(restartedAt);
    assert.equal(summarize(afterRestart), `result ${afterRestart.length}`, firstFailures(afterRestart));

    const runs = readLedger(ledger);
    assert.deepEqual(counterViolations([...warm, ...records], runs), []);
    assert.equal(runs.starts.length, 2);
    const check = new RpcClient(endpoint);
    const value = await check.callTool('counter_value', {}, { deadlineMs: DEADLINE_MS });
    await check.close();
    assert.equal(resultText(value), String(runs.totals.get(web.pid) ?? 0), 'the restarted counter counts its own runs');
    await assertBaseline(gateway, baseline, 0);
  } finally {
    await replicas.close();
    await web.stop();
  }
});

test('an upstream down when the gateway starts: the other serves at once, and its tools are routed as soon as it is up', async () => {
  const live = await startInProcessHttpFixture({ mode: 'legacy' });
  const port = await freePort();
  const gateway = await startGateway({
    port: 0,
    namespacing: 'always',
    upstreams: [
      resolveProxyConfig({ name: 'live', serverUrl: live.url, maxRetries: 0 }),
      resolveProxyConfig({ name: 'late', serverUrl: `http://127.0.0.1:${port}/mcp`, maxRetries: 0, timeout: 2 }),
    ],
  });
  const client = new RpcClient(`${gateway.url}/mcp`);
  let late: InProcessHttpFixture | undefined;
  try {
    const first = await client.callTool('live__echo', { text: 'served' }, { deadlineMs: DEADLINE_MS });
    assert.equal(resultText(first), 'served', JSON.stringify(first));
    const missing = await client.callTool('late__echo', { text: 'x' }, { deadlineMs: DEADLINE_MS });
    assert.equal(missing.kind, 'error', JSON.stringify(missing));
    assert.match(
      missing.kind === 'error' ? missing.error.message : '',
      /Unknown tool: late__echo \(not listed: upstream 'late' failed: .*ECONNREFUSED/,
    );

    late = await startInProcessHttpFixture({ mode: 'legacy', port });
    // Its list is asked for again at most once a second: within a few seconds its tools are served.
    let outcome = await client.callTool('late__echo', { text: 'back' }, { deadlineMs: DEADLINE_MS });
    for (let i = 0; i < 50 && resultText(outcome) !== 'back'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      outcome = await client.callTool('late__echo', { text: 'back' }, { deadlineMs: DEADLINE_MS });
    }
    assert.equal(resultText(outcome), 'back', JSON.stringify(outcome));
    assert.equal(late.state.calls.get('echo'), 1, 'the call reached the upstream that came up');
  } finally {
    await client.close();
    await gateway.close();
    await Promise.all([live.stop(), late?.stop()]);
  }
});
