/**
 * What telemetry costs on the cached path: a cached tool call (`tool.execute` answered from
 * memory) with metrics on against the same call with metrics off, in the same process.
 *
 * Budget (the observability issue): ops/s with metrics on ≥ 0.95 × with metrics off.
 *
 * "On" is what a gateway runs: a telemetry instance watching the factory (the shared recorder
 * counting every `mcp-relay:call` event, which `factory.stats()` reads too; the prom-client
 * registry reading it when scraped; resource sampling and alert evaluation on their timers). "Off" is a
 * factory nobody observes: the call channel has no subscriber, so the hot path pays one
 * `hasSubscribers` read. Tracing is reported too, for information: it writes two spans per hit
 * and is off by default.
 *
 * The uncached path (the bare JSON-RPC upstream over HTTP, C=16) is measured the same way, for
 * information: there the telemetry's cost disappears into the upstream round trip.
 *
 * Each round measures off and on back to back (order alternating) and the ratio is the median of
 * the per-round ratios; the machine is shared and drifts.
 */
import diagnosticsChannel from 'node:diagnostics_channel';

import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';

import { CALL_CHANNEL } from '../../src/proxy/events.js';
import { createProxyFactory, type ProxyFactory } from '../../src/proxy/index.js';
import { createTelemetry, type Telemetry } from '../../src/telemetry/index.js';
import { startInProcessHttpFixture } from '../../test/fixtures/index.js';
import {
  atLeast,
  closedLoop,
  duration,
  median,
  opsPerSec,
  ratio,
  startBareHttpUpstream,
  timeIt,
  type BenchSuite,
  type BudgetResult,
  type ResultTable,
} from '../lib/index.js';

/** Measured window of one cached-path run, in ms. */
const HIT_WINDOW_MS = 600;
const HIT_WARMUP = 200_000;
/** Rounds per repeat: short runs, many of them, so drift lands on both sides alike. */
const ROUNDS_PER_REPEAT = 3;
const MISS_WINDOW_MS = 1000;
const MISS_CONCURRENCY = 16;
const LIMIT = 0.95;

type Mode = 'off' | 'on' | 'tracing';

async function withMode<T>(mode: Mode, factory: ProxyFactory, run: () => Promise<T>): Promise<T> {
  if (mode === 'off') {
    // Off means off: nothing subscribed, so the hot path pays one `hasSubscribers` read.
    if (diagnosticsChannel.hasSubscribers(CALL_CHANNEL))
      throw new Error('telemetry off, yet mcp-relay:call has a subscriber');
    return run();
  }
  const telemetry: Telemetry = createTelemetry({
    logger: { level: 'silent' },
    tracing: mode === 'tracing' ? { exporter: new InMemorySpanExporter() } : false,
  });
  telemetry.watch(factory).start();
  try {
    const result = await run();
    // A scrape and a summary (what factory.stats() reads), so the readers are exercised as a
    // gateway's are. (factory.stats() itself would keep recording after this mode ends.)
    await telemetry.scrape();
    if (telemetry.summary({ window: true }).total_operations === 0) throw new Error('telemetry on recorded nothing');
    return result;
  } finally {
    await telemetry.close();
  }
}

function hitOpsPerSec(factory: ProxyFactory, windowMs: number): () => Promise<number> {
  const tool = factory.createToolProxy('echo');
  const args = { text: 'cached' };
  return async () => {
    const result = await timeIt(() => tool.execute(args), { warmup: HIT_WARMUP, durationMs: windowMs, batch: 1000 });
    return result.opsPerSec;
  };
}

export const suite: BenchSuite = {
  name: 'telemetry',
  description:
    'Cost of telemetry (metrics, stats, alerts, resource sampling) on the cached path: ops/s with it on against off.',
  async run(ctx) {
    const fixture = await startInProcessHttpFixture({ mode: 'modern' });
    ctx.defer(() => fixture.stop());
    const factory = await createProxyFactory({ name: 'demo', serverUrl: fixture.url, cache: { tools: ['echo'] } });
    ctx.defer(() => factory.close());
    await factory.createToolProxy('echo').execute({ text: 'cached' });
    const windowMs = ctx.durationMs ?? HIT_WINDOW_MS;
    const measure = hitOpsPerSec(factory, windowMs);

    const runs: Record<Mode, number[]> = { off: [], on: [], tracing: [] };
    const ratios: Record<'on' | 'tracing', number[]> = { on: [], tracing: [] };
    const rounds = ctx.repeats * ROUNDS_PER_REPEAT;
    for (let round = 0; round < rounds; round++) {
      const order: Mode[] = round % 2 === 0 ? ['off', 'on'] : ['on', 'off'];
      const got: Partial<Record<Mode, number>> = {};
      for (const mode of order) got[mode] = await withMode(mode, factory, measure);
      runs.off.push(got.off!);
      runs.on.push(got.on!);
      ratios.on.push(got.on! / got.off!);
      ctx.log(`cached round ${round + 1}/${rounds}: off ${opsPerSec(got.off!)}, on ${opsPerSec(got.on!)} ops/s`);
    }
    // Tracing, for information: fewer rounds, it is far off the budget by design.
    for (let round = 0; round < ctx.repeats; round++) {
      const off = await withMode('off', factory, measure);
      const tracing = await withMode('tracing', factory, measure);
      runs.tracing.push(tracing);
      ratios.tracing.push(tracing / off);
    }

    // The uncached path against the near-zero-cost upstream, for information.
    const bare = await startBareHttpUpstream();
    ctx.defer(() => bare.stop());
    const uncached = await createProxyFactory({
      name: 'bare',
      serverUrl: bare.url,
      connectionPoolSize: MISS_CONCURRENCY,
      maxRetries: 0,
    });
    ctx.defer(() => uncached.close());
    const echo = uncached.createToolProxy('echo');
    const missRatios: number[] = [];
    const missOps: Record<'off' | 'on', number[]> = { off: [], on: [] };
    for (let round = 0; round < ctx.repeats; round++) {
      const order: ('off' | 'on')[] = round % 2 === 0 ? ['off', 'on'] : ['on', 'off'];
      const got: Partial<Record<'off' | 'on', number>> = {};
      for (const mode of order) {
        const result = await withMode(mode, uncached, () =>
          closedLoop(
            async (seq) => {
              await echo.execute({ text: `m${seq}` });
            },
            { concurrency: MISS_CONCURRENCY, durationMs: MISS_WINDOW_MS, warmupMs: 200 },
          ),
        );
        if (result.errors > 0) throw new Error(`uncached path: ${result.errors} failed calls (${result.firstError})`);
        got[mode] = result.opsPerSec;
      }
      missOps.off.push(got.off!);
      missOps.on.push(got.on!);
      missRatios.push(got.on! / got.off!);
    }

    const cachedRatio = median(ratios.on);
    const budgets: BudgetResult[] = [atLeast('cached tool call: ops/s with telemetry on ÷ off', cachedRatio, LIMIT)];
    const tables: ResultTable[] = [
      {
        title: 'Telemetry on ÷ off (ops/s; below 1: telemetry costs that share)',
        columns: ['path', 'off ops/s', 'on ops/s', 'on ÷ off', 'cost per call'],
        rows: [
          [
            'cached tool call (memory hit)',
            opsPerSec(median(runs.off)),
            opsPerSec(median(runs.on)),
            ratio(cachedRatio),
            duration(1000 / median(runs.on) - 1000 / median(runs.off)),
          ],
          [
            'cached tool call, tracing on too',
            opsPerSec(median(runs.off)),
            opsPerSec(median(runs.tracing)),
            ratio(median(ratios.tracing)),
            duration(1000 / median(runs.tracing) - 1000 / median(runs.off)),
          ],
          [
            `uncached (bare HTTP upstream), C=${MISS_CONCURRENCY}`,
            opsPerSec(median(missOps.off)),
            opsPerSec(median(missOps.on)),
            ratio(median(missRatios)),
            duration(1000 / median(missOps.on) - 1000 / median(missOps.off)),
          ],
        ],
        note: `Median of ${rounds} rounds (cached) and ${ctx.repeats} (tracing, uncached); each round measures off and on back to back, order alternating. "cost per call" is the difference of the mean times per call (noisy: it is the difference of two noisy figures).`,
      },
    ];
    return {
      baseline:
        'the same factory and call with nobody observing it (no subscriber on mcp-relay:call), measured in the same round',
      tables,
      budgets,
      notes: [
        `Per-round on ÷ off on the cached path ranged ${ratio(Math.min(...ratios.on))} to ${ratio(Math.max(...ratios.on))}: the spread of this machine is larger than the cost measured, which is why the budget is checked on the median of many short rounds.`,
        'A hit is timed on one call in 16 (two clock reads would cost about 8 % of a hit); the others carry the latest timed duration, so hit counts are exact and hit latency is sampled.',
        'Tracing writes two spans per hit and is off by default; its row is for information and has no budget.',
      ],
      data: { runs, ratios, missOps, missRatios, windowMs },
    };
  },
};
