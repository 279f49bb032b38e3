/**
 * `npm run soak [-- --duration 10m] [--warmup D] [--capacity D] [--sample D] [--no-http] [--record]`
 *
 * Holds the gateway at 80 % of its measured capacity (bench/lib/soak.ts says how), prints the
 * figures and the verdicts, writes the raw figures to `bench/results/soak-<date>.json`
 * (gitignored) and, with `--record`, the `soak` section of `bench/RESULTS.md`. Exits 1 when a
 * criterion fails, 2 when the soak could not run.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { parseDuration } from '../src/config/index.js';
import { renderConsole, renderSection, updateResultsFile, writeJson } from './lib/report.js';
import { resolveSoakOptions, runSoak, soakSuiteResult, type SoakOptions } from './lib/soak.js';

const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));

const USAGE = `usage: npm run soak -- [--duration D] [--warmup D] [--capacity D] [--sample D] [--no-http] [--record]
  --duration D   how long to hold 80 % of capacity (default 10m); D is seconds or '90s', '10m', '500ms'
  --warmup D     load at the target rate before the held window (default a tenth of --duration, 5s-60s)
  --capacity D   closed-loop capacity run (default 5s)
  --sample D     sampling period of the gateway's RSS, fds and children (default 5s)
  --no-http      the stdio upstream only (default: also the demo over HTTP)
  --record       write the 'soak' section of bench/RESULTS.md`;

const DESCRIPTION =
  'The gateway held at 80 % of its measured capacity (cached, uncached and pass-through calls) while its RSS, file descriptors and child processes are sampled: `npm run soak`.';

/** A command line that cannot run: its message and the usage are printed, without a stack. */
class UsageError extends Error {}

function parseCommandLine(started: number): { help: boolean; record: boolean; options: SoakOptions } {
  try {
    const { values } = parseArgs({
      options: {
        duration: { type: 'string' },
        warmup: { type: 'string' },
        capacity: { type: 'string' },
        sample: { type: 'string' },
        'no-http': { type: 'boolean', default: false },
        record: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    const ms = (flag: string, value: string | undefined) =>
      value === undefined ? undefined : parseDuration(value, `--${flag}`, { minMs: 1 });
    const options: SoakOptions = {
      durationMs: ms('duration', values.duration),
      warmupMs: ms('warmup', values.warmup),
      capacityMs: ms('capacity', values.capacity),
      sampleEveryMs: ms('sample', values.sample),
      http: !values['no-http'],
      log: (line) => process.stderr.write(`[soak ${((performance.now() - started) / 1000).toFixed(1)} s] ${line}\n`),
    };
    resolveSoakOptions(options);
    return { help: values.help, record: values.record, options };
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

async function main(): Promise<number> {
  const started = performance.now();
  const { help, record, options } = parseCommandLine(started);
  if (help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const report = await runSoak(options);
  const result = soakSuiteResult(report);
  process.stdout.write(`${renderConsole('soak', result)}\n`);
  const failed = report.criteria.filter((c) => !c.pass);
  process.stdout.write(
    `\nsoak: ${report.criteria.length - failed.length} of ${report.criteria.length} criteria pass, ${(report.wallMs / 1000).toFixed(1)} s\n`,
  );
  const jsonPath = join(BENCH_DIR, 'results', `soak-${report.machine.date.replaceAll(':', '-')}.json`);
  await writeJson(jsonPath, report);
  process.stdout.write(`wrote ${jsonPath}\n`);
  if (record) {
    const resultsFile = join(BENCH_DIR, 'RESULTS.md');
    await updateResultsFile(
      resultsFile,
      'soak',
      renderSection({
        name: 'soak',
        description: DESCRIPTION,
        machine: report.machine,
        wallMs: report.wallMs,
        repeats: 1,
        result,
      }),
    );
    process.stdout.write(`wrote the 'soak' section of ${resultsFile}\n`);
  }
  return failed.length === 0 ? 0 : 1;
}

try {
  process.exitCode = await main();
} catch (error) {
  process.stderr.write(
    error instanceof UsageError
      ? `${error.message}\n${USAGE}\n`
      : `${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 2;
}
