/**
 * One measurement of bench/suites/telemetry.ts in a process of its own: the cached tool call's
 * ops/s with telemetry `off`, `on` or `tracing`. A fresh process per measurement, because in one
 * process the JIT's history decides more than the telemetry does: code optimized while nobody
 * listened deoptimizes when someone starts to, and the other way round.
 *
 *   node --import tsx bench/lib/telemetry-child.ts <off|on|tracing> <window ms>
 *
 * Prints one JSON line: `{ "mode": ..., "opsPerSec": ..., "recorded": ... }`, ops/s being the
 * fastest of five equal windows of the measured time.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { fileURLToPath } from 'node:url';

import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';

import { timeIt } from '../../src/bench/timing.js';
import { CALL_CHANNEL } from '../../src/proxy/events.js';
import { createProxyFactory } from '../../src/proxy/index.js';
import { createTelemetry } from '../../src/telemetry/index.js';
import { startInProcessHttpFixture } from '../../test/fixtures/index.js';

export const TELEMETRY_CHILD_PATH = fileURLToPath(import.meta.url);
export type TelemetryMode = 'off' | 'on' | 'tracing';

/** Calls before measuring: the hit path is optimized by then. */
const WARMUP = 300_000;
/** Windows the measured time is cut into; the fastest counts. */
const WINDOWS = 5;

async function main(): Promise<void> {
  const mode = process.argv[2] as TelemetryMode;
  const windowMs = Number(process.argv[3] ?? 1000);
  if (!['off', 'on', 'tracing'].includes(mode)) throw new Error(`mode must be off, on or tracing, got '${mode}'`);
  const fixture = await startInProcessHttpFixture({ mode: 'modern' });
  const factory = await createProxyFactory({ name: 'demo', serverUrl: fixture.url, cache: { tools: ['echo'] } });
  const tool = factory.createToolProxy('echo');
  const args = { text: 'cached' };
  await tool.execute(args);
  // "On" is what a gateway runs: the recorder (which factory.stats() reads too), the prom-client
  // registry, resource sampling and alert evaluation on their timers. "Off": nothing subscribed.
  const telemetry =
    mode === 'off'
      ? undefined
      : createTelemetry({
          logger: { level: 'silent' },
          tracing: mode === 'tracing' ? { exporter: new InMemorySpanExporter() } : false,
        });
  telemetry?.watch(factory).start();
  if (mode === 'off' && diagnosticsChannel.hasSubscribers(CALL_CHANNEL)) {
    throw new Error('telemetry off, yet mcp-relay:call has a subscriber');
  }
  // The fastest of a few short windows: neighbours on a shared machine only ever slow a window
  // down, so the best one is the closest to what the code itself costs (for off and on alike).
  let best = 0;
  for (let w = 0; w < WINDOWS; w++) {
    const result = await timeIt(() => tool.execute(args), {
      warmup: w === 0 ? WARMUP : 10_000,
      durationMs: windowMs / WINDOWS,
      batch: 1000,
    });
    best = Math.max(best, result.opsPerSec);
  }
  let recorded = 0;
  if (telemetry !== undefined) {
    // Exercise the readers as a gateway's scrape does, and check the calls were counted.
    await telemetry.scrape();
    recorded = telemetry.summary({ window: false }).total_operations;
    await telemetry.close();
  }
  await factory.close();
  await fixture.stop();
  process.stdout.write(`${JSON.stringify({ mode, opsPerSec: best, recorded })}\n`);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main();
}
