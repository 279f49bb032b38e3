/**
 * An upstream that accepts connections and never answers, under load, through a real
 * `mcp-relay serve` process: a TCP black hole in front of one of two upstreams of a balance group
 * swallows every byte (open connections go silent, new ones are accepted and ignored), then
 * forwards again. Every call ends with a result or a clear error by its deadline; the breaker of
 * the silent upstream opens and, once it answers again, closes; its pool is not held for good (its
 * calls succeed again, nothing left in use); counter never runs twice; the gateway's fds and
 * memory return to their baseline.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

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
  startBlackHole,
  summarize,
} from './helpers/faults.js';
import { startReplicas } from './helpers/replicas.js';

/** Past the gateway's worst case: two attempts of 1.5 s, backoff, a breaker probe. */
const DEADLINE_MS = 20_000;
const WORKERS = 12;

const dir = mkdtempSync(join(tmpdir(), 'mcp-relay-faults-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('an upstream that accepts connections and never answers: calls end by their deadline with a clear error, its breaker opens, and once it answers again it serves from a pool that was never exhausted', async (t) => {
  const ledger = join(dir, 'hang.ledger');
  const [stuckServer, spareServer] = await Promise.all([
    startHttpFixture({ mode: 'legacy', ledger }),
    startHttpFixture({ mode: 'legacy', ledger }),
  ]);
  const hole = await startBlackHole(stuckServer.url);
  const upstream = {
    timeout: '1500ms',
    max_retries: 1,
    retry_delay: '50ms',
    connection_pool_size: 4,
    // `add` is annotated read-only and idempotent: a call cut off by the deadline may run again elsewhere.
    trust_annotations: true,
  };
  const replicas = await startReplicas({
    count: 1,
    config: {
      upstreams: { stuck: { server_url: hole.url, ...upstream }, spare: { server_url: spareServer.url, ...upstream } },
      balance: {
        strategy: 'round_robin',
        groups: { pair: ['stuck', 'spare'] },
        health: false,
        // The breaker, not ejection, is what this test proves.
        ejection: { failures: 1000 },
        breaker: { failures: 3, cooldown: '1s', max: '2s' },
      },
      telemetry: { logging: { level: 'error' } },
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

    const warmClient = new RpcClient(`${base}/mcp/pair`);
    const warm = await runLoad({ total: 60, workers: WORKERS, call: load(warmClient) });
    await warmClient.close();
    assert.equal(summarize(warm), 'result 60', firstFailures(warm));
    const baseline = await quietResources(gateway);

    const client = new RpcClient(`${base}/mcp/pair`);
    const counted = load(client);
    let started = 0;
    let healedAt = Infinity;
    let opened = false;
    let fault: Promise<void> | undefined;
    const records = await runLoad({
      total: (i) => i < healedAt + 200,
      workers: WORKERS,
      call: (i) => {
        started = i + 1;
        return counted(i);
      },
      onSettled: (n) => {
        if (n !== 100) return;
        hole.swallow();
        fault = (async () => {
          try {
            opened = await eventually(
              async () => (await metric(base, 'mcp_relay_breaker_state', { upstream: 'stuck', state: 'open' })) === 1,
              20_000,
            );
            // Silent a while longer: half-open probes time out and reopen it.
            await new Promise((resolve) => setTimeout(resolve, 2000));
            hole.restore();
            const closed = await eventually(
              async () => (await metric(base, 'mcp_relay_breaker_state', { upstream: 'stuck', state: 'closed' })) === 1,
              20_000,
            );
            assert.ok(closed, 'the breaker closed once the upstream answered again');
          } finally {
            healedAt = started;
          }
        })();
        fault.catch(() => undefined); // awaited after the load, which must not stop on it
      },
    });
    await fault;
    await client.close();
    t.diagnostic(`under the black hole: ${summarize(records)}; healed by call ${healedAt}`);

    assert.ok(opened, 'the breaker of the silent upstream opened');
    assertAllEnded(records, DEADLINE_MS);
    const failed = records.filter((r) => r.outcome.kind !== 'result');
    for (const { outcome } of failed) {
      assert.ok(
        outcome.kind === 'error' &&
          (outcome.relayCode === 'RELAY_TIMEOUT' || outcome.relayCode === 'RELAY_UPSTREAM_UNAVAILABLE'),
        firstFailures(failed),
      );
    }
    assert.ok(
      failed.some((r) => r.outcome.kind === 'error' && r.outcome.relayCode === 'RELAY_TIMEOUT'),
      'calls on the silent upstream hit their deadline',
    );
    const afterHeal = records.slice(healedAt);
    assert.equal(summarize(afterHeal), `result ${afterHeal.length}`, firstFailures(afterHeal));

    const runs = readLedger(ledger);
    assert.deepEqual(counterViolations([...warm, ...records], runs), []);
    // The healed upstream serves again: its pool was not left exhausted by the calls it swallowed.
    const stuckRuns = runs.totals.get(stuckServer.pid) ?? 0;
    const served = new RpcClient(`${base}/mcp/pair`);
    const more = await runLoad({ total: 30, workers: 8, call: load(served) });
    await served.close();
    assert.equal(summarize(more), 'result 30', firstFailures(more));
    assert.ok(
      (readLedger(ledger).totals.get(stuckServer.pid) ?? 0) > stuckRuns,
      'the healed upstream ran counter calls',
    );
    assert.equal(await metric(base, 'mcp_relay_pool_in_use', { upstream: 'pair' }), 0, 'no pool slot left in use');

    await assertBaseline(gateway, baseline, 0);
  } finally {
    await replicas.close();
    await hole.stop();
    await Promise.all([stuckServer.stop(), spareServer.stop()]);
  }
});
