/**
 * `npm run bench [-- [suite ...] [--repeats N] [--duration-ms N] [--dry-run] [--list]]`
 *
 * Runs every suite in `bench/suites/` (or the named ones), prints their tables, writes each run's
 * raw figures to `bench/results/<suite>-<date>.json` (gitignored) and replaces the suite's section
 * of `bench/RESULTS.md` (committed). Exits 1 when a suite fails or misses a budget, after writing.
 */
import { readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

import { machineInfo } from './lib/machine.js';
import { renderConsole, renderSection, updateResultsFile, writeJson } from './lib/report.js';
import type { BenchContext, BenchSuite } from './lib/types.js';

const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));
const SUITES_DIR = join(BENCH_DIR, 'suites');
const RESULTS_DIR = join(BENCH_DIR, 'results');
const RESULTS_FILE = join(BENCH_DIR, 'RESULTS.md');

const USAGE = `usage: npm run bench -- [suite ...] [--repeats N] [--duration-ms N] [--dry-run] [--list]
  suite           run only these suites (default: all in bench/suites/)
  --repeats N     repeat each measurement N times and report the median (default 3)
  --duration-ms N measurement window of one repeat, in ms (default: each suite's own)
  --dry-run       print the results without writing bench/RESULTS.md or bench/results/
  --list          list the suites and exit`;

async function discoverSuites(): Promise<BenchSuite[]> {
  const files = (await readdir(SUITES_DIR)).filter((file) => file.endsWith('.ts')).sort();
  const suites: BenchSuite[] = [];
  for (const file of files) {
    const module = (await import(pathToFileURL(join(SUITES_DIR, file)).href)) as { suite?: BenchSuite };
    const suite = module.suite;
    if (suite === undefined || typeof suite.run !== 'function' || typeof suite.name !== 'string') {
      throw new Error(`bench/suites/${file} must export \`const suite: BenchSuite = { name, description, run }\``);
    }
    if (suite.name !== basename(file, '.ts')) {
      throw new Error(`bench/suites/${file} exports suite '${suite.name}'; name it after its file`);
    }
    suites.push(suite);
  }
  return suites;
}

function positiveInteger(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 1) {
    throw new Error(`--${flag} must be a positive integer, got '${value}'\n${USAGE}`);
  }
  return parsed;
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      repeats: { type: 'string' },
      'duration-ms': { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const repeats = positiveInteger('repeats', values.repeats) ?? 3;
  const durationMs = positiveInteger('duration-ms', values['duration-ms']);

  const suites = await discoverSuites();
  if (values.list) {
    for (const suite of suites) process.stdout.write(`${suite.name.padEnd(12)} ${suite.description}\n`);
    return 0;
  }
  const unknown = positionals.filter((name) => !suites.some((suite) => suite.name === name));
  if (unknown.length > 0) {
    throw new Error(`no suite named ${unknown.join(', ')}; available: ${suites.map((s) => s.name).join(', ')}`);
  }
  const selected = positionals.length === 0 ? suites : suites.filter((suite) => positionals.includes(suite.name));

  let failed = false;
  for (const suite of selected) {
    const machine = machineInfo();
    const cleanups: (() => unknown)[] = [];
    const ctx: BenchContext = {
      repeats,
      durationMs,
      log: (message) => process.stderr.write(`[${suite.name}] ${message}\n`),
      defer: (cleanup) => cleanups.push(cleanup),
    };
    ctx.log(`${suite.description} (${repeats} repeats)`);
    const started = performance.now();
    let result;
    try {
      result = await suite.run(ctx);
    } catch (error) {
      failed = true;
      process.stderr.write(
        `[${suite.name}] FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
      continue;
    } finally {
      for (const cleanup of cleanups.reverse()) {
        try {
          await cleanup();
        } catch (error) {
          process.stderr.write(`[${suite.name}] cleanup failed: ${String(error)}\n`);
        }
      }
    }
    const wallMs = performance.now() - started;
    process.stdout.write(`${renderConsole(suite.name, result)}\n`);
    const misses = result.budgets.filter((budget) => !budget.pass);
    if (misses.length > 0) failed = true;
    process.stdout.write(
      `\n${suite.name}: ${result.budgets.length - misses.length} of ${result.budgets.length} budgets pass, ${(wallMs / 1000).toFixed(1)} s\n`,
    );

    if (values['dry-run']) continue;
    const jsonPath = join(RESULTS_DIR, `${suite.name}-${machine.date.replaceAll(':', '-')}.json`);
    await writeJson(jsonPath, { suite: suite.name, description: suite.description, machine, repeats, wallMs, result });
    await updateResultsFile(
      RESULTS_FILE,
      suite.name,
      renderSection({ name: suite.name, description: suite.description, machine, wallMs, repeats, result }),
    );
    process.stdout.write(`wrote ${jsonPath} and the '${suite.name}' section of ${RESULTS_FILE}\n`);
  }
  return failed ? 1 : 0;
}

try {
  process.exitCode = await main();
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 2;
}
