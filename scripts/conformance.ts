/**
 * The official MCP conformance suite (`@modelcontextprotocol/conformance`, server mode) against the
 * gateway, judged against the same upstream served directly:
 *
 *   node --import tsx scripts/conformance.ts [--revision 2025-11-25] [--revision 2026-07-28] [--out DIR]
 *     [--deadline-ms N]
 *
 * 1. starts the scenario upstream (test/fixtures/conformance-upstream.ts) on a free loopback port;
 * 2. runs the suite directly against it, once per revision (`--requirements <revision>`: exactly
 *    what that revision requires, plus its not-scored scenarios, each at its own wire version);
 * 3. starts the gateway (`mcp-relay serve --config <generated yaml> --port 0`) fronting it;
 * 4. runs the suite against the gateway's `/mcp`;
 * 5. prints a table (revision, scenario, direct, through the gateway) and exits 1 when a scenario
 *    that passed directly does not pass through the gateway: a check failed, or a check that
 *    succeeded directly did not succeed (a scenario that silently runs fewer checks is not a pass),
 *    unless the suite graded the gateway's other branch INFO and OPTIONAL_DIFFERENCES names it.
 *
 * The suite needs Node >= 22; it runs under `npx -y -p node@<pinned> -p <suite>@<pinned>` while the
 * upstream and the gateway run on this Node. Exit 2: the run itself could not happen (npx could not
 * fetch Node or the suite, a process did not start, a step or the whole run timed out: see
 * `--deadline-ms`, default 5 min). Everything listens on 127.0.0.1, and every process started here
 * is stopped by its pid (process group) before exit. Results go to `--out` (default
 * `test-artifacts/conformance`): checks.json per scenario and run, suite output, server logs, and
 * summary.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** Exact versions: the suite's verdicts change between releases, so a bump is a deliberate change. */
export const SUITE_PACKAGE = '@modelcontextprotocol/conformance@0.2.0-alpha.12';
export const NODE_PACKAGE = 'node@24.21.0';
export const REVISIONS = ['2025-11-25', '2026-07-28'] as const;
export type Revision = (typeof REVISIONS)[number];

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const UPSTREAM_ENTRY = join(ROOT, 'test/fixtures/conformance-upstream.ts');
const CLI_ENTRY = join(ROOT, 'src/cli/main.ts');
const UPSTREAM_PREFIX = 'CONFORMANCE_UPSTREAM_LISTENING ';
const GATEWAY_PREFIX = 'mcp-relay gateway listening on ';

const START_TIMEOUT_MS = 30_000;
/** The whole run's default deadline (`--deadline-ms`). */
const DEFAULT_DEADLINE_MS = 300_000;
/** npx may have to download Node and the suite on the first run. */
const PREFLIGHT_TIMEOUT_MS = 120_000;
const SUITE_TIMEOUT_MS = 150_000;
/** Per-scenario timeout handed to the suite (its default is 30 s). */
const SCENARIO_TIMEOUT_MS = 20_000;

type CheckStatus = 'SUCCESS' | 'FAILURE' | 'WARNING' | 'SKIPPED' | 'INFO';
interface Check {
  id: string;
  status: CheckStatus;
  errorMessage?: string;
}

export interface ScenarioResult {
  scenario: string;
  passed: number;
  failed: number;
  /** Ids of the checks that succeeded. */
  succeeded: string[];
  /** `id: message` of the checks that failed. */
  failures: string[];
  /** Ids of the INFO checks: what the scenario reports without judging (e.g. an optional branch taken). */
  info: string[];
}

/**
 * Where the gateway takes another branch the spec allows and the suite itself grades INFO, not
 * SUCCESS: the row passes as `optional`, with the reason, only while the gateway's run fails
 * nothing and reports exactly `infoCheck`. An entry that stops being needed fails the run.
 */
export interface OptionalDifference {
  revision: Revision;
  scenario: string;
  infoCheck: string;
  reason: string;
}

export const OPTIONAL_DIFFERENCES: readonly OptionalDifference[] = [
  {
    revision: '2025-11-25',
    scenario: 'server-sse-multiple-streams',
    infoCheck: 'server-sse-streams-functional',
    reason:
      'the gateway answers tools/list with JSON where the upstream streams SSE; the suite: "Server returned JSON for all requests - SSE streaming is optional"',
  },
  {
    revision: '2025-11-25',
    scenario: 'server-sse-polling',
    infoCheck: 'server-sse-content-type',
    reason:
      'the gateway answers a call with JSON when nothing streams before the result, and never closes its own streams for the client to poll (SEP-1699 polling is a MAY); the suite: "priming event tests not applicable"',
  },
];

export interface Row {
  revision: Revision;
  scenario: string;
  direct: ScenarioResult | undefined;
  gateway: ScenarioResult | undefined;
  /**
   * `pass`: passed directly and through the gateway; `optional`: through the gateway the suite saw
   * an allowed other branch (see {@link OPTIONAL_DIFFERENCES}); `regression`: passed directly only;
   * `n/a`: failed directly.
   */
  verdict: 'pass' | 'optional' | 'regression' | 'n/a';
  /** Why a regression is one: failed checks, or checks that succeeded directly but not here. */
  reasons: string[];
}

export class RunError extends Error {}

/** A process started here, in its own process group so that stopping it stops its children (npx). */
interface Started {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  stop(): Promise<void>;
}

const started = new Set<Started>();
/** Set once the run is being stopped (deadline, signal): nothing new is started after that. */
let runStopping = false;

function start(
  command: string,
  args: readonly string[],
  options: { cwd?: string; stdout: 'pipe' | number; stderr?: number },
): Started {
  if (runStopping) throw new RunError('the run is being stopped');
  const child = spawn(command, args, {
    cwd: options.cwd ?? ROOT,
    stdio: ['ignore', options.stdout, options.stderr ?? (options.stdout === 'pipe' ? 'inherit' : options.stdout)],
    detached: true,
    env: {
      ...process.env,
      npm_config_update_notifier: 'false',
      npm_config_fund: 'false',
      npm_config_audit: 'false',
      npm_config_loglevel: 'error',
    },
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(null));
  });
  let stopping: Promise<void> | undefined;
  const handle: Started = {
    child,
    exited,
    stop: () =>
      (stopping ??= (async () => {
        started.delete(handle);
        const pid = child.pid;
        if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
        signalGroup(pid, 'SIGTERM');
        const done = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
        if (!done) {
          signalGroup(pid, 'SIGKILL');
          await exited;
        }
        // The leader may exit before its children (npx → npm → node): sweep the group once more.
        signalGroup(pid, 'SIGKILL');
      })()),
  };
  started.add(handle);
  return handle;
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

async function stopAll(): Promise<void> {
  await Promise.all([...started].map((s) => s.stop()));
}

/** Stops the run from anywhere (deadline, signal): no new process, every started one stopped, exit. */
function abort(code: number, message?: string): void {
  if (message !== undefined) process.stderr.write(`conformance: ${message}\n`);
  runStopping = true;
  void stopAll().then(() => process.exit(code));
}

/** Starts a server process (its stderr to `logFile`) and resolves with the URL it prints after `prefix`. */
async function startServer(name: string, command: string, args: readonly string[], prefix: string, logFile: string) {
  const log = openSync(logFile, 'w');
  let server: Started;
  try {
    server = start(command, args, { stdout: 'pipe', stderr: log });
  } finally {
    closeSync(log);
  }
  const lines = createInterface({ input: server.child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new RunError(`${name} did not print '${prefix}<url>' within ${START_TIMEOUT_MS} ms`)),
      START_TIMEOUT_MS,
    );
    lines.on('line', (line) => {
      if (!line.startsWith(prefix)) return;
      clearTimeout(timer);
      resolve(line.slice(prefix.length).trim());
    });
    void server.exited.then((code) => {
      clearTimeout(timer);
      reject(new RunError(`${name} exited (code ${code}) before listening`));
    });
  });
  // Keep draining stdout so the child never blocks on a full pipe.
  lines.on('line', () => undefined);
  return { server, url };
}

/** Runs a command under `npx -y -p node@… -p suite@…`, output to `logFile`, within `timeoutMs`. */
async function npxRun(args: readonly string[], logFile: string, timeoutMs: number): Promise<number | null> {
  const log = openSync(logFile, 'w');
  try {
    const run = start('npx', ['-y', '-p', NODE_PACKAGE, '-p', SUITE_PACKAGE, '--', ...args], {
      stdout: log,
      cwd: join(logFile, '..'),
    });
    const code = await Promise.race([run.exited, sleep(timeoutMs).then(() => 'timeout' as const)]);
    await run.stop();
    if (code === 'timeout')
      throw new RunError(`'${args.join(' ')}' did not finish within ${timeoutMs} ms (${logFile})`);
    return code;
  } finally {
    closeSync(log);
  }
}

/** Node >= 22 and the suite, through npx: fails the run (exit 2) with the reason when unavailable. */
async function preflight(out: string): Promise<void> {
  const logFile = join(out, 'preflight.log');
  const code = await npxRun(['sh', '-c', 'node --version && conformance --version'], logFile, PREFLIGHT_TIMEOUT_MS);
  const output = await readFile(logFile, 'utf8');
  const version = /^v(\d+)\./m.exec(output);
  if (code !== 0 || version === null || Number(version[1]) < 22) {
    throw new RunError(
      `cannot run the conformance suite: 'npx -y -p ${NODE_PACKAGE} -p ${SUITE_PACKAGE}' failed (exit ${code}).` +
        ` The suite needs Node >= 22 fetched by npx from the npm registry.\n${output.trim()}`,
    );
  }
}

const RESULT_DIR = /^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/;

/** Runs the suite for one revision against `url`; the scenarios it ran, by name. */
async function runSuite(url: string, revision: Revision, dir: string): Promise<Map<string, ScenarioResult>> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const logFile = join(dir, 'suite.log');
  await npxRun(
    [
      'conformance',
      'server',
      '--url',
      url,
      '--requirements',
      revision,
      '--timeout',
      String(SCENARIO_TIMEOUT_MS),
      '-o',
      dir,
    ],
    logFile,
    SUITE_TIMEOUT_MS,
  );
  const results = new Map<string, ScenarioResult>();
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const match = entry.isDirectory() ? RESULT_DIR.exec(entry.name) : null;
    if (!match) continue;
    const scenario = match[1]!;
    let checks: Check[];
    try {
      checks = JSON.parse(await readFile(join(dir, entry.name, 'checks.json'), 'utf8')) as Check[];
    } catch {
      checks = [{ id: 'checks.json', status: 'FAILURE', errorMessage: 'no readable checks.json' }];
    }
    const succeeded = checks.filter((c) => c.status === 'SUCCESS').map((c) => c.id);
    const failures = checks
      .filter((c) => c.status === 'FAILURE')
      .map((c) => `${c.id}: ${(c.errorMessage ?? '').slice(0, 300)}`);
    const info = checks.filter((c) => c.status === 'INFO').map((c) => c.id);
    results.set(scenario, { scenario, passed: succeeded.length, failed: failures.length, succeeded, failures, info });
  }
  if (results.size === 0) throw new RunError(`the suite ran no scenario against ${url} (see ${logFile})`);
  return results;
}

function passes(result: ScenarioResult | undefined): result is ScenarioResult {
  return result !== undefined && result.failed === 0 && result.passed > 0;
}

/** Compares the gateway's results with the direct ones, scenario by scenario. */
export function compare(
  revision: Revision,
  direct: Map<string, ScenarioResult>,
  gateway: Map<string, ScenarioResult>,
): Row[] {
  const rows: Row[] = [];
  for (const scenario of new Set([...direct.keys(), ...gateway.keys()])) {
    const d = direct.get(scenario);
    const g = gateway.get(scenario);
    if (!passes(d)) {
      rows.push({ revision, scenario, direct: d, gateway: g, verdict: 'n/a', reasons: [] });
      continue;
    }
    const reasons: string[] = [];
    if (g === undefined) reasons.push('not run through the gateway');
    else {
      reasons.push(...g.failures);
      const seen = new Set(g.succeeded);
      const missing = [...new Set(d.succeeded)].filter((id) => !seen.has(id));
      if (missing.length > 0) reasons.push(`succeeded directly but not through the gateway: ${missing.join(', ')}`);
    }
    const optional = OPTIONAL_DIFFERENCES.find((o) => o.revision === revision && o.scenario === scenario);
    if (reasons.length > 0 && optional && g !== undefined && g.failed === 0 && g.info.includes(optional.infoCheck)) {
      rows.push({ revision, scenario, direct: d, gateway: g, verdict: 'optional', reasons: [optional.reason] });
      continue;
    }
    rows.push({ revision, scenario, direct: d, gateway: g, verdict: reasons.length ? 'regression' : 'pass', reasons });
  }
  return rows;
}

function cell(result: ScenarioResult | undefined): string {
  if (result === undefined) return '-';
  const word = result.failed > 0 ? 'FAIL' : result.passed > 0 ? 'pass' : 'empty';
  return `${word} ${result.passed}/${result.passed + result.failed}`;
}

export function formatTable(rows: readonly Row[]): string {
  const header = ['revision', 'scenario', 'direct', 'through gateway', 'verdict'];
  const body = rows.map((r) => [
    r.revision,
    r.scenario,
    cell(r.direct),
    cell(r.gateway),
    r.verdict === 'n/a'
      ? 'n/a (fails directly)'
      : r.verdict === 'pass'
        ? 'ok'
        : r.verdict === 'optional'
          ? 'ok (optional branch, below)'
          : 'REGRESSION',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (row: string[]) =>
    row
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      revision: { type: 'string', multiple: true },
      out: { type: 'string' },
      'deadline-ms': { type: 'string' },
    },
    strict: true,
  });
  const deadlineMs = Number(values['deadline-ms'] ?? DEFAULT_DEADLINE_MS);
  if (!Number.isInteger(deadlineMs) || deadlineMs <= 0)
    throw new RunError('--deadline-ms: expected a positive integer');
  // The whole run, whatever step it is in: past it, everything started here is stopped.
  setTimeout(() => abort(2, `the run did not finish within --deadline-ms ${deadlineMs}`), deadlineMs).unref();
  const revisions = (values.revision ?? [...REVISIONS]).map((r) => {
    if (!(REVISIONS as readonly string[]).includes(r))
      throw new RunError(`--revision: expected one of ${REVISIONS.join(', ')}, got '${r}'`);
    return r as Revision;
  });
  const out = resolve(values.out ?? join(ROOT, 'test-artifacts/conformance'));
  await mkdir(out, { recursive: true });

  await preflight(out);
  const { url: upstreamUrl } = await startServer(
    'the scenario upstream',
    process.execPath,
    ['--import', 'tsx', UPSTREAM_ENTRY],
    UPSTREAM_PREFIX,
    join(out, 'upstream.log'),
  );
  process.stdout.write(`scenario upstream: ${upstreamUrl}\n`);

  const direct = new Map<Revision, Map<string, ScenarioResult>>();
  for (const revision of revisions)
    direct.set(revision, await runSuite(upstreamUrl, revision, join(out, `direct-${revision}`)));

  const config = join(out, 'gateway.yaml');
  await writeFile(
    config,
    `# Generated by scripts/conformance.ts\nupstreams:\n  everything:\n    server_url: ${upstreamUrl}\n`,
  );
  const { url: gatewayUrl } = await startServer(
    'the gateway',
    process.execPath,
    ['--import', 'tsx', CLI_ENTRY, 'serve', '--config', config, '--port', '0'],
    GATEWAY_PREFIX,
    join(out, 'gateway.log'),
  );
  process.stdout.write(`gateway: ${gatewayUrl}\n\n`);

  const rows: Row[] = [];
  for (const revision of revisions) {
    const through = await runSuite(gatewayUrl, revision, join(out, `gateway-${revision}`));
    rows.push(...compare(revision, direct.get(revision)!, through));
  }
  await stopAll();

  process.stdout.write(formatTable(rows) + '\n');
  const regressions = rows.filter((r) => r.verdict === 'regression');
  for (const row of regressions) {
    process.stdout.write(`\n${row.revision} ${row.scenario}: passes directly, not through the gateway\n`);
    for (const reason of row.reasons) process.stdout.write(`  - ${reason}\n`);
  }
  for (const row of rows.filter((r) => r.verdict === 'optional')) {
    process.stdout.write(`\n${row.revision} ${row.scenario}: optional branch: ${row.reasons.join('; ')}\n`);
  }
  const stale = OPTIONAL_DIFFERENCES.filter(
    (o) =>
      revisions.includes(o.revision) &&
      !rows.some((r) => r.revision === o.revision && r.scenario === o.scenario && r.verdict === 'optional'),
  );
  for (const entry of stale) {
    process.stdout.write(
      `\nstale OPTIONAL_DIFFERENCES entry ${entry.revision} ${entry.scenario}: no longer needed, remove it\n`,
    );
  }
  const compared = rows.filter((r) => r.verdict !== 'n/a').length;
  process.stdout.write(
    `\n${compared - regressions.length}/${compared} scenarios that pass directly also pass through the gateway` +
      ` (${rows.filter((r) => r.verdict === 'optional').length} by an optional branch;` +
      ` ${rows.length - compared} fail directly and are not compared)\n`,
  );
  await writeFile(
    join(out, 'summary.json'),
    JSON.stringify({ suite: SUITE_PACKAGE, node: NODE_PACKAGE, rows }, null, 2),
  );
  return regressions.length === 0 && stale.length === 0 ? 0 : 1;
}

const onSignal = () => abort(130);
process.once('SIGINT', onSignal);
process.once('SIGTERM', onSignal);

void main()
  .then(
    (code) => code,
    (error: unknown) => {
      process.stderr.write(`conformance: ${error instanceof Error ? error.message : String(error)}\n`);
      return 2;
    },
  )
  .then(async (code) => {
    await stopAll();
    process.exit(code);
  });
