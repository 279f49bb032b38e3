/**
 * The gateway (`mcp-relay serve`) over HTTP against the ceiling and the peers.
 *
 * Budgets (DESIGN.md, "Performance budgets", gateway rows; the issue's lower figures shown beside):
 * - cached call: ≥ 70 % of the ops/s of a bare `node:http` JSON-RPC server (the ceiling);
 * - pass-through, in front of a near-zero-cost stdio upstream: ≥ 4× the ops/s of the better of
 *   `supergateway` and `mcp-proxy` at 64 concurrent clients (the issue: ≥ 2× each), own CPU per
 *   call ≤ ¼ of theirs, ≤ 0.15 ms added P50 at C=1 over the upstream served directly (the issue:
 *   0.3 ms), memory per client session ≤ 1 MB.
 *
 * Every server runs in its own process, and so does the load ([lib/http-load.ts](../lib/http-load.ts)):
 * a closed loop of C workers, each with its own MCP session (2025 clients: `initialize` once, then
 * `tools/call` of `echo` in a loop; the gateway's stateless 2026-07-28 path as well), over one undici
 * Pool per server, every answer checked. Contenders:
 * - the ceiling ([lib/ceiling-server.ts](../lib/ceiling-server.ts)): `node:http`, `JSON.parse`,
 *   `JSON.stringify`, nothing else; sent bare JSON-RPC, and sent the very requests of each cached
 *   gateway contender (2025 session, 2026-07-28). The cached budget is judged against the latter:
 *   the load generator shares the two cores and spends more per call on MCP requests (headers,
 *   `_meta`, answer checks) than on bare ones, so a ceiling fed bare requests is partly measuring
 *   the load generator. Both ratios are reported;
 * - the upstream served directly: the bare responder over HTTP ([lib/bare-upstream.ts](../lib/bare-upstream.ts))
 *   and the demo server (built on the SDK) over HTTP, 2025 sessions;
 * - the gateway, built (`dist/cli/main.js`, compiled from the sources at the start of the suite,
 *   as `npm start` and the `mcp-relay` bin run it; see [lib/built.ts](../lib/built.ts)), in front
 *   of the bare responder over stdio: pass-through (`echo` is not cacheable,
 *   and each text is distinct) on 2025 sessions and on 2026-07-28; cached (`cache.tools: [echo]`,
 *   16 texts repeated, so all but 16 calls are hits) on both;
 * - `supergateway` (`--stateful`: one upstream process per session, as 2025 clients need) and
 *   `mcp-proxy` (one upstream process, a server object per session) in front of the same stdio
 *   responder, on 2025 sessions.
 * All servers run at once; in each round, at each concurrency, the contenders run one after another
 * in an order that rotates between rounds. Ratios are medians of per-round ratios.
 *
 * CPU per call is read from `/proc/<pid>/stat` over the measured window: "own" is the server's
 * process alone (for a proxy, without its upstream), "tree" includes its children. Memory per
 * session is the growth of the server's process tree's RSS while 64 sessions open (after a warmup),
 * divided by 64. Finally, a second gateway runs with `--cpu-prof` under pass-through load at C=64,
 * and the profile says where its time goes.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  atLeast,
  atMost,
  bareStdioCommand,
  builtCli,
  bytes,
  duration,
  freePort,
  HttpLoadGenerator,
  median,
  medianBy,
  micros,
  opsPerSec,
  processPeakRssBytes,
  processRssBytes,
  processTree,
  ratio,
  startBareHttpUpstream,
  startCeilingServer,
  startChildServer,
  startServerOnPort,
  summarizeCpuProfile,
  treePeakRssBytes,
  treeRssBytes,
  type BenchContext,
  type BenchSuite,
  type BudgetResult,
  type ChildServer,
  type HttpLoadResult,
  type LoadEra,
  type ProfileSummary,
  type ResultTable,
  type SuiteResult,
} from '../lib/index.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const DEMO_MAIN = join(REPO, 'src/demo/main.ts');
const SUPERGATEWAY_BIN = join(REPO, 'node_modules/supergateway/dist/index.js');
const MCP_PROXY_BIN = join(REPO, 'node_modules/mcp-proxy/dist/bin/mcp-proxy.mjs');
/** What `mcp-relay serve` prints before its URL (src/cli/serve.ts). */
const GATEWAY_PREFIX = 'mcp-relay gateway listening on';
/** What the demo server prints before its URL (src/demo/main.ts). */
const DEMO_PREFIX = 'MCP_DEMO_LISTENING';

const CONCURRENCIES = [1, 16, 64] as const;
/** Sessions (or stateless clients) per contender: the highest concurrency. */
const SLOTS = 64;
/** Measured window of one run, in ms; `--duration-ms` overrides it. */
const DEFAULT_WINDOW_MS = 2000;
/** Unmeasured load before each run, at its concurrency. */
const RUN_WARMUP_MS = 300;
/** Unmeasured load on each contender before the first round (the JIT settles, tsx has compiled). */
const FIRST_WARMUP_MS = 1000;
/** Load on each server before its memory baseline is read. */
const MEMORY_WARMUP_MS = 1000;
/** Distinct texts of the cached contenders: after the first 16 calls, every call is a hit. */
const CACHED_TEXTS = 16;
/** Measured window of each profiled run. */
const PROFILE_MS = 2500;

const CACHED_LIMIT = 0.7;
const PEER_LIMIT_DESIGN = 4;
const PEER_LIMIT_ISSUE = 2;
const CPU_LIMIT = 0.25;
const ADDED_P50_LIMIT_MS = 0.15;
const ADDED_P50_LIMIT_ISSUE_MS = 0.3;
const SESSION_LIMIT_MIB = 1;

type ServerId = 'ceiling' | 'bare-http' | 'demo-http' | 'gateway' | 'gateway-cached' | 'supergateway' | 'mcp-proxy';
type ContenderId =
  | 'ceiling'
  | 'ceiling-2025'
  | 'ceiling-2026'
  | 'bare-http'
  | 'demo-http'
  | 'gateway'
  | 'gateway-2026'
  | 'gateway-cached'
  | 'gateway-cached-2026'
  | 'supergateway'
  | 'mcp-proxy';

interface ServerSpec {
  id: ServerId;
  label: string;
  start(dir: string): Promise<ChildServer>;
}

interface ContenderSpec {
  id: ContenderId;
  label: string;
  server: ServerId;
  era: LoadEra;
  texts: 'distinct' | number;
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`;
}

/** The gateway's config file: one upstream, the bare responder over stdio. */
async function gatewayConfig(dir: string, name: string, cached: boolean): Promise<string> {
  const { command, args } = bareStdioCommand();
  const upstream: Record<string, unknown> = {
    command,
    args,
    // Up to 64 calls in flight, as the peers allow; with the default of 10 the rest would queue.
    connection_pool_size: SLOTS,
  };
  if (cached) upstream['cache'] = { tools: ['echo'] };
  const path = join(dir, `${name}.json`);
  await writeFile(path, JSON.stringify({ upstreams: { bare: upstream } }, null, 2));
  return path;
}

async function startGatewayProcess(dir: string, name: string, cached: boolean, nodeFlags: string[] = []) {
  const config = await gatewayConfig(dir, name, cached);
  return startChildServer(
    process.execPath,
    [...nodeFlags, builtCli(), 'serve', '--config', config, '--port', '0'],
    GATEWAY_PREFIX,
  );
}

function requireBin(path: string, pkg: string): string {
  if (!existsSync(path)) throw new Error(`${path} is missing: run \`npm install\` (${pkg} is a dev dependency)`);
  return path;
}

const SERVERS: ServerSpec[] = [
  { id: 'ceiling', label: 'ceiling: bare node:http JSON-RPC', start: () => startCeilingServer() },
  { id: 'bare-http', label: 'bare responder over HTTP', start: () => startBareHttpUpstream() },
  {
    id: 'demo-http',
    label: 'demo server (SDK) over HTTP',
    start: () =>
      startChildServer(
        process.execPath,
        ['--import', 'tsx', DEMO_MAIN, '--transport', 'http', '--mode', 'legacy', '--port', '0'],
        DEMO_PREFIX,
      ),
  },
  { id: 'gateway', label: 'mcp-relay gateway', start: (dir) => startGatewayProcess(dir, 'gateway', false) },
  {
    id: 'gateway-cached',
    label: 'mcp-relay gateway, echo cached',
    start: (dir) => startGatewayProcess(dir, 'gateway-cached', true),
  },
  {
    id: 'supergateway',
    label: 'supergateway 4.0.0',
    async start() {
      const port = await freePort();
      const { command, args } = bareStdioCommand();
      return startServerOnPort(
        process.execPath,
        [
          requireBin(SUPERGATEWAY_BIN, 'supergateway'),
          '--stdio',
          [command, ...args].map(shellQuote).join(' '),
          '--outputTransport',
          'streamableHttp',
          '--stateful',
          '--port',
          String(port),
          '--logLevel',
          'none',
        ],
        port,
        `http://127.0.0.1:${port}/mcp`,
      );
    },
  },
  {
    id: 'mcp-proxy',
    label: 'mcp-proxy 6.7.19',
    async start() {
      const port = await freePort();
      const { command, args } = bareStdioCommand();
      return startServerOnPort(
        process.execPath,
        [
          requireBin(MCP_PROXY_BIN, 'mcp-proxy'),
          '--port',
          String(port),
          '--host',
          '127.0.0.1',
          '--server',
          'stream',
          '--no-eventStore',
          '--',
          command,
          ...args,
        ],
        port,
        `http://127.0.0.1:${port}/mcp`,
      );
    },
  },
];

const CONTENDERS: ContenderSpec[] = [
  { id: 'ceiling', label: 'ceiling (bare node:http)', server: 'ceiling', era: 'raw', texts: 'distinct' },
  // The ceiling sent the very requests each cached gateway contender is sent: the load generator's
  // own CPU per call (headers, `_meta`, answer checks) then weighs the same on both sides of the ratio.
  {
    id: 'ceiling-2025',
    label: 'ceiling, 2025 session requests',
    server: 'ceiling',
    era: 'legacy',
    texts: 'distinct',
  },
  {
    id: 'ceiling-2026',
    label: 'ceiling, 2026-07-28 requests',
    server: 'ceiling',
    era: 'modern',
    texts: 'distinct',
  },
  {
    id: 'bare-http',
    label: 'upstream direct: bare responder, HTTP',
    server: 'bare-http',
    era: 'raw',
    texts: 'distinct',
  },
  {
    id: 'demo-http',
    label: 'upstream direct: demo (SDK), HTTP',
    server: 'demo-http',
    era: 'legacy',
    texts: 'distinct',
  },
  { id: 'gateway', label: 'gateway pass-through, 2025 session', server: 'gateway', era: 'legacy', texts: 'distinct' },
  {
    id: 'gateway-2026',
    label: 'gateway pass-through, 2026-07-28',
    server: 'gateway',
    era: 'modern',
    texts: 'distinct',
  },
  {
    id: 'gateway-cached',
    label: 'gateway cached, 2025 session',
    server: 'gateway-cached',
    era: 'legacy',
    texts: CACHED_TEXTS,
  },
  {
    id: 'gateway-cached-2026',
    label: 'gateway cached, 2026-07-28',
    server: 'gateway-cached',
    era: 'modern',
    texts: CACHED_TEXTS,
  },
  { id: 'supergateway', label: 'supergateway, 2025 session', server: 'supergateway', era: 'legacy', texts: 'distinct' },
  { id: 'mcp-proxy', label: 'mcp-proxy, 2025 session', server: 'mcp-proxy', era: 'legacy', texts: 'distinct' },
];

const PEERS = ['supergateway', 'mcp-proxy'] as const satisfies readonly ContenderId[];

interface ServerFigures {
  id: ServerId;
  label: string;
  pid: number;
  /** Sessions opened for the memory figure (0: the server has no sessions). */
  sessions: number;
  /** Tree and own RSS before and after opening the sessions, after a warmup. */
  rssBefore: { tree: number; own: number };
  rssAfter: { tree: number; own: number };
  /** Time to open the sessions (with one checked call each), in ms. */
  openMs: number;
  peak: { tree: number; own: number };
  processes: number;
}

/** results[contender][concurrency] = one result per round. */
type Results = Record<ContenderId, Record<number, HttpLoadResult[]>>;

interface Measured {
  servers: Record<ServerId, ServerFigures>;
  results: Results;
  warmupErrors: number;
  profiles: Profiled[];
  profileError: string | undefined;
}

function logRun(ctx: BenchContext, contender: ContenderSpec, result: HttpLoadResult, prefix = ''): void {
  ctx.log(
    `  ${prefix}${contender.id.padEnd(19)} C=${String(result.concurrency).padEnd(2)} ` +
      `${opsPerSec(result.opsPerSec).padStart(7)} ops/s P50 ${duration(result.latency.p50)} P99 ${duration(result.latency.p99)} ` +
      `own ${micros(result.ownCpuMicrosPerOp)} tree ${micros(result.treeCpuMicrosPerOp)} load ${micros(result.loadCpuMicrosPerOp)}` +
      (result.errors > 0 ? ` ERRORS ${result.errors}: ${result.firstError}` : ''),
  );
}

async function measure(ctx: BenchContext, dir: string, windowMs: number): Promise<Measured> {
  const load = HttpLoadGenerator.start();
  ctx.defer(() => load.stop());
  const started = new Map<ServerId, ChildServer>();
  const servers = {} as Record<ServerId, ServerFigures>;

  // Start every server, warm it up, then open its sessions and see what they cost in memory.
  for (const spec of SERVERS) {
    ctx.log(`starting ${spec.label}`);
    const server = await spec.start(dir);
    ctx.defer(() => server.stop());
    started.set(spec.id, server);
    const contenders = CONTENDERS.filter((c) => c.server === spec.id);
    const sessionful = contenders.find((c) => c.era === 'legacy');
    const first = sessionful ?? contenders[0]!;
    const warm = `${spec.id}:warm`;
    await load.open({ name: warm, url: server.url, era: first.era, slots: 4, texts: first.texts });
    await load.run(warm, { concurrency: 4, durationMs: MEMORY_WARMUP_MS, warmupMs: 0 });
    await load.closeTarget(warm);
    const rssBefore = { tree: treeRssBytes(server.pid), own: processRssBytes(server.pid) };
    let openMs = 0;
    for (const contender of sessionful ? [sessionful] : []) {
      openMs = (
        await load.open({ name: contender.id, url: server.url, era: 'legacy', slots: SLOTS, texts: contender.texts })
      ).ms;
    }
    const rssAfter = { tree: treeRssBytes(server.pid), own: processRssBytes(server.pid) };
    for (const contender of contenders.filter((c) => c !== sessionful)) {
      await load.open({
        name: contender.id,
        url: server.url,
        era: contender.era,
        slots: SLOTS,
        texts: contender.texts,
      });
    }
    servers[spec.id] = {
      id: spec.id,
      label: spec.label,
      pid: server.pid,
      sessions: sessionful ? SLOTS : 0,
      rssBefore,
      rssAfter,
      openMs,
      peak: { tree: 0, own: 0 },
      processes: processTree(server.pid).length,
    };
    ctx.log(
      `  ${spec.id}: ${servers[spec.id].processes} processes` +
        (sessionful
          ? `, ${SLOTS} sessions opened in ${duration(openMs)}, tree RSS ${bytes(rssBefore.tree)} → ${bytes(rssAfter.tree)}`
          : ''),
    );
  }

  let warmupErrors = 0;
  ctx.log('warming up every contender');
  for (const contender of CONTENDERS) {
    const warm = await load.run(contender.id, { concurrency: 16, durationMs: FIRST_WARMUP_MS, warmupMs: 0 });
    warmupErrors += warm.errors;
    logRun(ctx, contender, warm, 'warmup ');
  }

  const results = {} as Results;
  for (const contender of CONTENDERS) results[contender.id] = { 1: [], 16: [], 64: [] };
  for (let round = 0; round < ctx.repeats; round++) {
    ctx.log(`round ${round + 1} of ${ctx.repeats}`);
    for (const concurrency of CONCURRENCIES) {
      const shift = (round * 3) % CONTENDERS.length;
      const order = [...CONTENDERS.slice(shift), ...CONTENDERS.slice(0, shift)];
      for (const contender of order) {
        const result = await load.run(contender.id, {
          concurrency,
          durationMs: windowMs,
          warmupMs: RUN_WARMUP_MS,
          meterPid: servers[contender.server].pid,
        });
        warmupErrors += result.warmupErrors;
        results[contender.id][concurrency]!.push(result);
        logRun(ctx, contender, result);
      }
    }
  }

  for (const figures of Object.values(servers)) {
    figures.peak = { tree: treePeakRssBytes(figures.pid), own: processPeakRssBytes(figures.pid) };
    figures.processes = processTree(figures.pid).length;
  }
  for (const contender of CONTENDERS) await load.closeTarget(contender.id);
  // The peers hold a process per session or more: stop everything before profiling.
  for (const server of started.values()) await server.stop();

  let profiles: Profiled[] = [];
  let profileError: string | undefined;
  try {
    profiles = await profileGateways(ctx, load, dir);
  } catch (error) {
    profileError = error instanceof Error ? error.message : String(error);
    ctx.log(`profile failed: ${profileError}`);
  }
  return { servers, results, warmupErrors, profiles, profileError };
}

interface ProfileSpec {
  id: string;
  title: string;
  cached: boolean;
  era: LoadEra;
  texts: 'distinct' | number;
  concurrencies: number[];
}

/** What is profiled: pass-through at C=64 and C=1 (one process, two windows), cached at C=64. */
const PROFILES: ProfileSpec[] = [
  {
    id: 'pass-through',
    title: 'pass-through, 2025 sessions',
    cached: false,
    era: 'legacy',
    texts: 'distinct',
    concurrencies: [64, 1],
  },
  { id: 'cached', title: 'cached, 2026-07-28', cached: true, era: 'modern', texts: CACHED_TEXTS, concurrencies: [64] },
];

interface Profiled {
  title: string;
  concurrency: number;
  run: HttpLoadResult;
  summary: ProfileSummary;
}

/** Gateways under `--cpu-prof`; where their CPU goes in each measured window. */
async function profileGateways(ctx: BenchContext, load: HttpLoadGenerator, dir: string): Promise<Profiled[]> {
  const profiled: Profiled[] = [];
  for (const spec of PROFILES) {
    const profileDir = join(dir, `profile-${spec.id}`);
    ctx.log(`profiling the gateway: ${spec.title}, C=${spec.concurrencies.join(' and C=')}, ${PROFILE_MS} ms each`);
    const server = await startGatewayProcess(dir, `gateway-profiled-${spec.id}`, spec.cached, [
      '--cpu-prof',
      '--cpu-prof-dir',
      profileDir,
    ]);
    ctx.defer(() => server.stop());
    const name = `profile-${spec.id}`;
    await load.open({ name, url: server.url, era: spec.era, slots: SLOTS, texts: spec.texts });
    const runs: HttpLoadResult[] = [];
    for (const concurrency of spec.concurrencies) {
      const run = await load.run(name, {
        concurrency,
        durationMs: PROFILE_MS,
        warmupMs: FIRST_WARMUP_MS,
        meterPid: server.pid,
      });
      ctx.log(
        `  profiled ${spec.id} C=${concurrency}: ${opsPerSec(run.opsPerSec)} ops/s, own CPU ${micros(run.ownCpuMicrosPerOp)}/call`,
      );
      runs.push(run);
    }
    await load.closeTarget(name);
    await server.stop();
    const files = (await readdir(profileDir)).filter((file) => file.endsWith('.cpuprofile'));
    if (files.length === 0) throw new Error('the gateway wrote no .cpuprofile (did it exit cleanly?)');
    for (const run of runs) {
      const [fromMicros, toMicros] = run.windowMonotonicMicros;
      profiled.push({
        title: spec.title,
        concurrency: run.concurrency,
        run,
        summary: await summarizeCpuProfile(join(profileDir, files[0]!), { window: { fromMicros, toMicros } }),
      });
    }
  }
  return profiled;
}

// ---------------------------------------------------------------------------------------------
// Summary

const OPS = (r: HttpLoadResult) => r.opsPerSec;
const P50 = (r: HttpLoadResult) => r.latency.p50;
const P99 = (r: HttpLoadResult) => r.latency.p99;
const OWN = (r: HttpLoadResult) => r.ownCpuMicrosPerOp;
const TREE = (r: HttpLoadResult) => r.treeCpuMicrosPerOp;
const LOAD = (r: HttpLoadResult) => r.loadCpuMicrosPerOp;

function pct(share: number): string {
  return `${(share * 100).toFixed(1)} %`;
}

function mib(value: number): string {
  return `${(value / 2 ** 20).toFixed(2)} MiB`;
}

function summarize(measured: Measured): SuiteResult {
  const { results, servers } = measured;
  const runs = (id: ContenderId, c: number) => results[id][c]!;
  const med = (id: ContenderId, c: number, pick: (r: HttpLoadResult) => number) => medianBy(runs(id, c), pick);
  /** Median over rounds of a ÷ b, each round's pair measured in the same round at the same C. */
  const paired = (a: ContenderId, b: ContenderId, c: number, pick: (r: HttpLoadResult) => number) =>
    median(runs(a, c).map((r, i) => pick(r) / pick(runs(b, c)[i]!)));
  /** Median over rounds of a − b. */
  const pairedDiff = (a: ContenderId, b: ContenderId, c: number, pick: (r: HttpLoadResult) => number) =>
    median(runs(a, c).map((r, i) => pick(r) - pick(runs(b, c)[i]!)));
  const errorsOf = (...ids: ContenderId[]): string | undefined => {
    const parts: string[] = [];
    for (const id of ids) {
      const all = CONCURRENCIES.flatMap((c) => runs(id, c));
      const errors = all.reduce((sum, r) => sum + r.errors, 0);
      if (errors > 0) parts.push(`${id}: ${errors} failed calls, e.g. ${all.find((r) => r.firstError)?.firstError}`);
    }
    return parts.length > 0 ? parts.join('; ') : undefined;
  };

  // The better peer: the higher ops/s at C=64. The cheaper peer: the lower own CPU per call.
  const betterPeer = PEERS.reduce((a, b) => (med(a, 64, OPS) >= med(b, 64, OPS) ? a : b));
  const cheaperPeer = (c: number) => PEERS.reduce((a, b) => (med(a, c, OWN) <= med(b, c, OWN) ? a : b));

  const budgets: BudgetResult[] = [];
  for (const [cached, ceiling, label] of [
    ['gateway-cached', 'ceiling-2025', '2025 session'],
    ['gateway-cached-2026', 'ceiling-2026', '2026-07-28'],
  ] as const) {
    budgets.push(
      atLeast(
        `cached (${label}) / ceiling sent the same requests, ops/s, C=64`,
        paired(cached, ceiling, 64, OPS),
        CACHED_LIMIT,
        errorsOf(cached, ceiling),
      ),
    );
  }
  budgets.push(
    atLeast(
      `pass-through / better peer (${betterPeer}) ops/s, C=64 (DESIGN)`,
      paired('gateway', betterPeer, 64, OPS),
      PEER_LIMIT_DESIGN,
      errorsOf('gateway', betterPeer),
    ),
  );
  for (const peer of PEERS) {
    budgets.push(
      atLeast(
        `pass-through / ${peer} ops/s, C=64 (issue)`,
        paired('gateway', peer, 64, OPS),
        PEER_LIMIT_ISSUE,
        errorsOf('gateway', peer),
      ),
    );
  }
  for (const c of [1, 64]) {
    const peer = cheaperPeer(c);
    budgets.push(
      atMost(
        `pass-through own CPU/call / ${peer}'s, C=${c}`,
        paired('gateway', peer, c, OWN),
        CPU_LIMIT,
        errorsOf('gateway', peer),
      ),
    );
  }
  const addedP50 = pairedDiff('gateway', 'bare-http', 1, P50);
  budgets.push(
    atMost(
      'added P50 over the upstream direct, C=1 (DESIGN)',
      addedP50,
      ADDED_P50_LIMIT_MS,
      errorsOf('gateway', 'bare-http'),
      'ms',
    ),
  );
  budgets.push(
    atMost(
      'added P50 over the upstream direct, C=1 (issue)',
      addedP50,
      ADDED_P50_LIMIT_ISSUE_MS,
      errorsOf('gateway', 'bare-http'),
      'ms',
    ),
  );
  const perSession = (figures: ServerFigures, which: 'tree' | 'own') =>
    figures.sessions > 0 ? (figures.rssAfter[which] - figures.rssBefore[which]) / figures.sessions : Number.NaN;
  budgets.push(
    atMost(
      'memory per client session',
      perSession(servers.gateway, 'tree') / 2 ** 20,
      SESSION_LIMIT_MIB,
      undefined,
      'MiB',
    ),
  );

  const ratioTable: ResultTable = {
    title: 'Ratios (median over rounds of the ratio of runs in the same round)',
    columns: ['ratio', 'C=1', 'C=16', 'C=64'],
    rows: [],
    note:
      '"pass-through" is the gateway on 2025 sessions in front of the bare responder over stdio, as the peers are measured. ' +
      '"own CPU" is the server process alone (for a proxy: without its upstream), from /proc/<pid>/stat over the measured window.',
  };
  const row = (label: string, cell: (c: number) => string) =>
    ratioTable.rows.push([label, ...CONCURRENCIES.map((c) => cell(c))]);
  row('cached (2025) / ceiling (same requests), ops/s', (c) => ratio(paired('gateway-cached', 'ceiling-2025', c, OPS)));
  row('cached (2026) / ceiling (same requests), ops/s', (c) =>
    ratio(paired('gateway-cached-2026', 'ceiling-2026', c, OPS)),
  );
  row('cached (2025) / ceiling (bare JSON-RPC requests), ops/s', (c) =>
    ratio(paired('gateway-cached', 'ceiling', c, OPS)),
  );
  row('cached (2026) / ceiling (bare JSON-RPC requests), ops/s', (c) =>
    ratio(paired('gateway-cached-2026', 'ceiling', c, OPS)),
  );
  row('cached (2026), own CPU per call / ceiling (same requests)', (c) =>
    ratio(paired('gateway-cached-2026', 'ceiling-2026', c, OWN)),
  );
  for (const peer of PEERS) {
    row(`pass-through / ${peer}, ops/s`, (c) => ratio(paired('gateway', peer, c, OPS)));
  }
  for (const peer of PEERS) {
    row(`pass-through (2026) / ${peer}, ops/s`, (c) => ratio(paired('gateway-2026', peer, c, OPS)));
  }
  for (const peer of PEERS) {
    row(`pass-through / ${peer}, own CPU per call`, (c) => ratio(paired('gateway', peer, c, OWN)));
  }
  for (const peer of PEERS) {
    row(`pass-through / ${peer}, P50`, (c) => ratio(paired('gateway', peer, c, P50)));
  }
  row('pass-through / upstream direct (bare, HTTP), ops/s', (c) => ratio(paired('gateway', 'bare-http', c, OPS)));
  row('pass-through / ceiling, ops/s', (c) => ratio(paired('gateway', 'ceiling', c, OPS)));
  row('pass-through, added P50 over upstream direct', (c) => duration(pairedDiff('gateway', 'bare-http', c, P50)));
  row('pass-through (2026), added P50 over upstream direct', (c) =>
    duration(pairedDiff('gateway-2026', 'bare-http', c, P50)),
  );
  row('bare upstream direct / ceiling, ops/s', (c) => ratio(paired('bare-http', 'ceiling', c, OPS)));

  const absoluteTable: ResultTable = {
    title: 'Absolute figures, for scale only (medians of the rounds)',
    columns: ['contender', 'C', 'ops/s', 'P50', 'P99', 'own CPU/call', 'tree CPU/call', 'load gen CPU/call', 'failed'],
    rows: [],
    note:
      '"tree" adds the server\'s children (a proxy\'s upstream processes). "load gen" is the separate load-generator process ' +
      '(undici, answer checks) per call: on 2 cores it competes with the server, so it caps the fastest contenders.',
  };
  for (const contender of CONTENDERS) {
    for (const c of CONCURRENCIES) {
      absoluteTable.rows.push([
        contender.label,
        String(c),
        opsPerSec(med(contender.id, c, OPS)),
        duration(med(contender.id, c, P50)),
        duration(med(contender.id, c, P99)),
        micros(med(contender.id, c, OWN)),
        micros(med(contender.id, c, TREE)),
        micros(med(contender.id, c, LOAD)),
        String(runs(contender.id, c).reduce((sum, r) => sum + r.errors, 0)),
      ]);
    }
  }

  const memoryTable: ResultTable = {
    title: 'Memory of each server',
    columns: [
      'server',
      'processes',
      'RSS before sessions (tree)',
      'per session (tree)',
      'per session (own)',
      'peak RSS (tree)',
      'peak RSS (own)',
    ],
    rows: Object.values(servers).map((figures) => [
      figures.label,
      String(figures.processes),
      bytes(figures.rssBefore.tree),
      figures.sessions > 0 ? mib(perSession(figures, 'tree')) : 'no sessions',
      figures.sessions > 0 ? mib(perSession(figures, 'own')) : 'no sessions',
      bytes(figures.peak.tree),
      bytes(figures.peak.own),
    ]),
    note:
      `Per session: growth of the RSS while ${SLOTS} 2025 sessions open (after a ${MEMORY_WARMUP_MS} ms warmup on 4 sessions), ÷ ${SLOTS}. ` +
      'A figure near zero or below it means the sessions cost less than the RSS moves by itself (the heap shrinking after a GC). ' +
      'Peak: VmHWM at the end of the run, summed over the live processes of the tree.',
  };

  const tables = [ratioTable, absoluteTable, memoryTable];
  for (const profiled of measured.profiles) tables.push(profileTable(profiled));

  const notes = findings(measured, budgets, { betterPeer, addedP50, perSession: perSession(servers.gateway, 'tree') });
  return {
    baseline:
      'the ceiling (a bare `node:http` JSON-RPC server), the bare responder served directly over HTTP, and the peers ' +
      '(`supergateway`, `mcp-proxy`) in front of the same stdio responder, all measured in the same rounds.',
    tables,
    budgets,
    notes,
    data: measured,
  };
}

function profileTable({ title, concurrency, run, summary }: Profiled): ResultTable {
  const rows: string[][] = [];
  for (const layer of summary.layers.filter((l) => l.share >= 0.005)) {
    rows.push(['by src/ layer (nearest src/ frame on the stack)', layer.name, pct(layer.share)]);
  }
  for (const kind of summary.categories.slice(0, 6))
    rows.push(['by kind of code (self time)', kind.name, pct(kind.share)]);
  for (const fn of summary.srcTop.slice(0, 6)) {
    rows.push(['src/ function, with the non-src/ code it calls', fn.name, pct(fn.share)]);
  }
  for (const fn of summary.inclusiveTop.slice(0, 10)) {
    rows.push(['function, inclusive (anywhere on the stack)', fn.name, pct(fn.share)]);
  }
  for (const fn of summary.selfTop.slice(0, 6)) rows.push(['function (self time)', fn.name, pct(fn.share)]);
  return {
    title: `Where the gateway's CPU goes: ${title}, C=${concurrency} (\`node --cpu-prof\`)`,
    columns: ['view', 'where', 'share of busy time'],
    rows,
    note:
      `Samples of the ${duration(summary.durationMs)} window only; ${pct(summary.busyShare)} of them busy ` +
      `(${micros((summary.busyShare * summary.durationMs * 1000) / run.ops)} of busy wall time per call, against ` +
      `${micros(run.ownCpuMicrosPerOp)} of CPU from /proc: the difference is time preempted, mostly inside the write system calls). ` +
      `Under the profiler: ${opsPerSec(run.opsPerSec)} ops/s.`,
  };
}

function findings(
  measured: Measured,
  budgets: readonly BudgetResult[],
  figures: { betterPeer: string; addedP50: number; perSession: number },
): string[] {
  const { results } = measured;
  const med = (id: ContenderId, c: number, pick: (r: HttpLoadResult) => number) => medianBy(results[id][c]!, pick);
  const notes: string[] = [];
  for (const budget of budgets) {
    if (budget.pass) continue;
    notes.push(
      `**Budget missed: ${budget.name}** — ${budget.unit ? `${budget.measured.toFixed(3)} ${budget.unit}` : ratio(budget.measured)}, budget ${budget.budget}` +
        (budget.detail ? ` (${budget.detail})` : '') +
        '.',
    );
  }
  notes.push(
    `At C=64: gateway pass-through ${opsPerSec(med('gateway', 64, OPS))} ops/s (own CPU ${micros(med('gateway', 64, OWN))}/call), ` +
      `supergateway ${opsPerSec(med('supergateway', 64, OPS))} (${micros(med('supergateway', 64, OWN))}), ` +
      `mcp-proxy ${opsPerSec(med('mcp-proxy', 64, OPS))} (${micros(med('mcp-proxy', 64, OWN))}), ` +
      `cached ${opsPerSec(med('gateway-cached', 64, OPS))} / ${opsPerSec(med('gateway-cached-2026', 64, OPS))} (2025 / 2026), ` +
      `ceiling ${opsPerSec(med('ceiling', 64, OPS))}, bare upstream direct ${opsPerSec(med('bare-http', 64, OPS))}. ` +
      `Better peer at C=64: ${figures.betterPeer}.`,
  );
  notes.push(
    `At C=1: P50 gateway ${duration(med('gateway', 1, P50))} vs bare upstream direct ${duration(med('bare-http', 1, P50))} ` +
      `(added ${duration(figures.addedP50)}); gateway own CPU ${micros(med('gateway', 1, OWN))}/call vs supergateway ` +
      `${micros(med('supergateway', 1, OWN))} and mcp-proxy ${micros(med('mcp-proxy', 1, OWN))}.`,
  );
  const sg = measured.servers.supergateway;
  notes.push(
    `Memory per 2025 session: gateway ${mib(figures.perSession)}; supergateway ` +
      `${mib((sg.rssAfter.tree - sg.rssBefore.tree) / sg.sessions)} (a shell and an upstream process per session: ` +
      `${sg.processes} processes at the end, for ${sg.sessions} sessions and the warmup's 4); mcp-proxy ` +
      `${mib((measured.servers['mcp-proxy'].rssAfter.tree - measured.servers['mcp-proxy'].rssBefore.tree) / SLOTS)}.`,
  );
  for (const { title, concurrency, summary } of measured.profiles) {
    const layers = summary.layers.filter((l) => l.share >= 0.01).map((l) => `${l.name} ${pct(l.share)}`);
    const heaviest = summary.srcTop.slice(0, 3).map((fn) => `${fn.name} ${pct(fn.share)}`);
    const self = summary.selfTop.slice(0, 3).map((fn) => `${fn.name} ${pct(fn.share)}`);
    notes.push(
      `Gateway CPU profile, ${title}, C=${concurrency}: by layer ${layers.join(', ')}; heaviest src/ functions ${heaviest.join('; ')}; ` +
        `heaviest self time ${self.join('; ')}.`,
    );
  }
  if (measured.profileError) notes.push(`The CPU profile of the gateway failed: ${measured.profileError}.`);
  if (measured.warmupErrors > 0) {
    notes.push(`${measured.warmupErrors} calls failed during unmeasured warmups (not counted in the figures).`);
  }
  notes.push(
    'Configurations: gateway `mcp-relay serve --config` with one stdio upstream (`connection_pool_size: 64`, 1 process, everything else default; ' +
      `the cached one adds \`cache: { tools: [echo] }\`, ${CACHED_TEXTS} texts repeated); supergateway \`--stdio … --outputTransport streamableHttp ` +
      '--stateful --logLevel none` (its stateless mode spawns an upstream per request; 2025 sessions need `--stateful`); mcp-proxy ' +
      '`--server stream --no-eventStore -- …` (no SSE endpoint, no resumability store: its fastest request/response setup). ' +
      'All upstreams are `bench/lib/bare-upstream.ts --transport stdio` under tsx; every server runs under Node with tsx where it is TypeScript.',
  );
  return notes;
}

export const suite: BenchSuite = {
  name: 'gateway',
  description:
    'Gateway over HTTP (`mcp-relay serve`): cached vs a bare node:http ceiling; pass-through vs supergateway and mcp-proxy in front of the same stdio upstream, C=1/16/64, load from a separate process.',
  async run(ctx) {
    const windowMs = ctx.durationMs ?? DEFAULT_WINDOW_MS;
    const dir = await mkdtemp(join(tmpdir(), 'mcp-relay-bench-gateway-'));
    ctx.defer(() => rm(dir, { recursive: true, force: true }));
    return summarize(await measure(ctx, dir, windowMs));
  },
};
