/**
 * A gateway replica SIGKILLed mid-stream: two `mcp-relay serve` processes from one config, in
 * front of one sessionful HTTP upstream (and each with a stdio upstream of its own). Long `slow`
 * calls stream progress (SSE) from replica A while both replicas carry steady load; A is killed.
 * A's streams end at once with their transport closed (raw client) or a rejected call (the SDK
 * client), never a hang; B keeps serving every call; counter never runs twice; A's stdio upstream
 * is not left orphaned; and B returns to its baseline.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

import { startHttpFixture, stdioFixture } from './fixtures/index.js';
import {
  assertAllEnded,
  assertBaseline,
  counterViolations,
  firstFailures,
  isRunning,
  mixedCall,
  quietResources,
  readLedger,
  RpcClient,
  runLoad,
  sigkill,
  summarize,
  untilServing,
  waitForChildren,
  type CallOutcome,
} from './helpers/faults.js';
import { startReplicas } from './helpers/replicas.js';

const DEADLINE_MS = 30_000;
const WORKERS = 8;
const STREAMS = 4;
/** The SDK client's own request timeout for its call on the replica that is killed. */
const SDK_TIMEOUT_MS = 8000;

const dir = mkdtempSync(join(tmpdir(), 'mcp-relay-faults-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a replica SIGKILLed mid-stream: its streams end at once, the other replica serves every call, counter never runs twice, nothing is orphaned', async (t) => {
  const ledger = join(dir, 'replica.ledger');
  const web = await startHttpFixture({ mode: 'legacy', ledger });
  const pipe = stdioFixture({ ledger: join(dir, 'pipe.ledger') });
  const bounds = { timeout: '6s', max_retries: 1, retry_delay: '50ms', connection_pool_size: 16 };
  const replicas = await startReplicas({
    count: 2,
    config: {
      upstreams: {
        web: { server_url: web.url, ...bounds },
        pipe: { command: pipe.command, args: pipe.args, ...bounds },
      },
      telemetry: { logging: { level: 'error' } },
    },
  });
  try {
    const [a, b] = [replicas.pids[0]!, replicas.pids[1]!];
    let by = 0;
    const nextBy = () => ++by;
    const load = (client: RpcClient) => (i: number) => {
      const call = mixedCall(i, nextBy);
      return { ...call, send: () => client.callTool(call.tool, call.args, { deadlineMs: DEADLINE_MS }) };
    };
    const warm = [];
    for (const url of replicas.urls) {
      const warmClient = new RpcClient(`${url}/mcp/web`);
      warm.push(...(await runLoad({ total: 60, workers: WORKERS, call: load(warmClient) })));
      await warmClient.close();
      // The stdio upstream of each replica starts with it: wait for it, it is what must not be orphaned.
      await untilServing(`${url}/mcp/pipe`, 'echo', { text: 'up' });
    }
    assert.equal(summarize(warm), 'result 120', firstFailures(warm));
    const [aChild] = await waitForChildren(a, 1);
    await waitForChildren(b, 1);
    const baseline = await quietResources(b);

    // Replica A: long streaming calls (raw and SDK), and steady load beside them.
    const streamClient = new RpcClient(`${replicas.urls[0]}/mcp/web`, STREAMS);
    let streaming = 0;
    let allStreaming: () => void = () => undefined;
    const streamsStarted = new Promise<void>((resolve) => (allStreaming = resolve));
    const onStarted = () => {
      if (++streaming === STREAMS) allStreaming();
    };
    const streams: Promise<CallOutcome>[] = Array.from({ length: STREAMS }, () =>
      streamClient.callTool('slow', { ms: 20_000, steps: 200 }, { deadlineMs: DEADLINE_MS, progress: true, onStarted }),
    );
    // The SDK client: its transport reports the broken stream at once (onerror), but the SDK does
    // not fail a request whose stream broke; the call ends at its own request timeout.
    const sdk = new Client({ name: 'faults-sdk', version: '1.0.0' }, { versionNegotiation: { mode: 'legacy' } });
    await sdk.connect(new StreamableHTTPClientTransport(new URL(`${replicas.urls[0]}/mcp/web`)));
    let sdkBroken = Infinity;
    sdk.onerror = (error) => {
      if (/SSE stream disconnected/.test(String(error))) sdkBroken = Math.min(sdkBroken, performance.now());
    };
    let sdkProgress = 0;
    let sdkStreaming: () => void = () => undefined;
    const sdkStarted = new Promise<void>((resolve) => (sdkStreaming = resolve));
    const sdkCall = sdk
      .callTool(
        { name: 'slow', arguments: { ms: 20_000, steps: 200 } },
        {
          timeout: SDK_TIMEOUT_MS,
          onprogress: () => {
            if (++sdkProgress === 1) sdkStreaming();
          },
        },
      )
      .then(
        () => ({ ok: true as const, at: performance.now(), error: undefined }),
        (error: unknown) => ({ ok: false as const, at: performance.now(), error }),
      );

    const aClient = new RpcClient(`${replicas.urls[0]}/mcp/web`);
    const bClient = new RpcClient(`${replicas.urls[1]}/mcp/web`);
    let killedAt = Infinity;
    let stopped = false;
    const onA = runLoad({
      total: () => !stopped && performance.now() < killedAt,
      workers: WORKERS,
      call: load(aClient),
    });
    const onB = runLoad({
      total: (i) => i < 300 || (!stopped && i < 3000),
      workers: WORKERS,
      call: load(bClient),
    });
    await Promise.all([streamsStarted, sdkStarted]);
    killedAt = performance.now();
    sigkill(a);
    const ended = await Promise.all(streams);
    const sdkEnded = await sdkCall;
    stopped = true;
    const [aRecords, bRecords] = await Promise.all([onA, onB]);
    await Promise.all([streamClient.close(), aClient.close(), bClient.close(), sdk.close().catch(() => undefined)]);
    t.diagnostic(`replica A: ${summarize(aRecords)}; replica B: ${summarize(bRecords)}`);

    // A's streams: their transport closed as A died, long before the 20 s the tool would take.
    for (const outcome of ended) {
      assert.equal(outcome.kind, 'transport', JSON.stringify(outcome));
      assert.ok(outcome.ms < 15_000, `a stream on the killed replica ended after ${Math.round(outcome.ms)} ms`);
    }
    assert.ok(sdkBroken - killedAt < 5000, 'the SDK transport reported the broken stream at once');
    assert.equal(sdkEnded.ok, false, 'the SDK client’s call on the killed replica failed');
    assert.match(String(sdkEnded.error), /timed out/i);
    assert.ok(
      sdkEnded.at - killedAt < SDK_TIMEOUT_MS + 5000,
      `the SDK call ended ${Math.round(sdkEnded.at - killedAt)} ms after the kill`,
    );
    t.diagnostic(`replica A's failures: ${firstFailures(aRecords)}`);

    assertAllEnded(aRecords, DEADLINE_MS);
    assertAllEnded(bRecords, DEADLINE_MS);
    for (const { outcome } of aRecords) assert.ok(outcome.kind === 'result' || outcome.kind === 'transport');
    assert.equal(summarize(bRecords), `result ${bRecords.length}`, firstFailures(bRecords));
    assert.deepEqual(counterViolations([...warm, ...aRecords, ...bRecords], readLedger(ledger)), []);

    // A's own stdio upstream saw its stdin close and ended: no orphan left behind.
    const gone = await (async () => {
      for (let i = 0; i < 100 && isRunning(aChild!); i++) await new Promise((resolve) => setTimeout(resolve, 100));
      return !isRunning(aChild!);
    })();
    assert.ok(gone, `the killed replica's stdio upstream (pid ${aChild}) still runs 10 s after it`);
    await assertBaseline(b, baseline, 1);
  } finally {
    await replicas.close();
    await web.stop();
  }
});
