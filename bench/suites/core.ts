/**
 * The library's uncached path against the bare SDK client on the same server.
 *
 * Budget (DESIGN.md, "library, cache miss"): at most 5 % slower than the bare SDK client, at
 * concurrency 1 and 64. Checked as relay ÷ SDK: ops/s ≥ 0.95 and P50 ≤ 1.05. P99 is reported and
 * any scenario where the relay is worse on any figure is stated in the findings.
 *
 * Each contender calls the `echo` tool with a distinct text per call (so no cache can answer) and
 * checks that the answer is its own text: a wrong or failed answer is an error, never throughput,
 * and any error fails the budget. Four upstreams:
 * - the demo server (built with the SDK) over HTTP 2026-07-28, in a child process shared by both
 *   contenders, and over stdio, one child per contender. Its CPU per call (in the tables: over HTTP
 *   it builds a server per request) caps throughput and hides most of a client's own cost;
 * - the bare JSON-RPC responder (`bench/lib/bare-upstream.ts`) over HTTP and stdio, which costs
 *   almost nothing, so what shows is the client's own cost.
 * Both contenders negotiate 2026-07-28 (checked) and run in this process; the other is idle while
 * one is measured, and the order alternates between rounds. Ratios are the median of the per-round
 * ratios (the two runs of a round are back to back).
 */
import { Client, StreamableHTTPClientTransport, type CallToolResult } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';

import { createProxyFactory, type ProxyFactory } from '../../src/proxy/index.js';
import { StdioUpstream } from '../../src/upstream/index.js';
import { startHttpFixture, stdioFixture } from '../../test/fixtures/index.js';
import {
  atLeast,
  atMost,
  bareStdioCommand,
  bytes,
  closedLoop,
  duration,
  median,
  medianBy,
  micros,
  opsPerSec,
  ratio,
  selfPeakRssBytes,
  startBareHttpUpstream,
  treePeakRssBytes,
  type BenchContext,
  type BenchSuite,
  type BudgetResult,
  type LoadResult,
  type ResultTable,
  type SuiteResult,
} from '../lib/index.js';

const CONCURRENCIES = [1, 64] as const;
/** Measured window of one round, in ms. 48 windows in all: the suite stays near a minute. */
const DEFAULT_WINDOW_MS = 1000;
/**
 * Unmeasured load on each contender (and its upstream) before any round: the demo server, loaded
 * through tsx, runs several times slower until its JIT has settled, and whoever went first would pay.
 */
const UPSTREAM_WARMUP_MS = 1000;
/** Unmeasured load before a contender's first round at a concurrency, and before each later round. */
const FIRST_WARMUP_MS = 300;
const ROUND_WARMUP_MS = 100;
const MODERN = '2026-07-28';
/** "At most 5 % slower". */
const OPS_LIMIT = 0.95;
const P50_LIMIT = 1.05;
/**
 * The relay's pool is sized to the highest concurrency so that both contenders may have 64 calls
 * on the wire at once, as the SDK client (global undici agent, unbounded per origin) does. With the
 * default of 10, calls 11-64 would wait in the relay's admission queue: a configuration choice, not
 * the cost of the path.
 */
const POOL_SIZE = 64;

type ContenderName = 'relay' | 'sdk';
type Defer = (cleanup: () => unknown) => void;

interface Contender {
  name: ContenderName;
  /** Calls `echo` and returns the text of the answer. */
  echo(text: string): Promise<string>;
  /** Root pid of this contender's upstream process (the shared one for HTTP). */
  upstreamPid: number;
}

interface Upstream {
  id: string;
  label: string;
  /** Starts the server(s) and connects both contenders; registers their cleanup with `defer`. */
  start(defer: Defer): Promise<[Contender, Contender]>;
}

function textOf(result: CallToolResult): string {
  if (result.isError === true) throw new Error(`echo returned isError: ${JSON.stringify(result.content)}`);
  const first = result.content[0];
  if (first?.type !== 'text') throw new Error(`echo returned no text: ${JSON.stringify(result.content)}`);
  return first.text;
}

async function relayContender(
  defer: Defer,
  config: Parameters<typeof createProxyFactory>[0],
  sharedPid?: number,
): Promise<Contender> {
  const factory: ProxyFactory = await createProxyFactory(config);
  defer(() => factory.close());
  const report = await factory.validateConnection();
  if (!report.healthy) throw new Error(`relay could not connect: ${report.error?.message}`);
  if (report.protocolVersion !== MODERN) throw new Error(`relay negotiated ${report.protocolVersion}, not ${MODERN}`);
  const upstream = factory.upstream;
  const upstreamPid = upstream instanceof StdioUpstream ? upstream.pids[0] : sharedPid;
  if (upstreamPid === undefined) throw new Error('relay: no upstream process to meter');
  const tool = factory.createToolProxy('echo');
  return { name: 'relay', upstreamPid, echo: async (text) => textOf(await tool.execute({ text })) };
}

async function sdkContender(
  defer: Defer,
  transport: StreamableHTTPClientTransport | StdioClientTransport,
  sharedPid?: number,
): Promise<Contender> {
  const client = new Client({ name: 'bench-sdk', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
  defer(() => client.close());
  await client.connect(transport);
  const version = client.getNegotiatedProtocolVersion();
  if (version !== MODERN) throw new Error(`SDK client negotiated ${version}, not ${MODERN}`);
  const upstreamPid = transport instanceof StdioClientTransport ? (transport.pid ?? undefined) : sharedPid;
  if (upstreamPid === undefined) throw new Error('SDK client: no upstream process to meter');
  return {
    name: 'sdk',
    upstreamPid,
    echo: async (text) => textOf(await client.callTool({ name: 'echo', arguments: { text } })),
  };
}

const UPSTREAMS: Upstream[] = [
  {
    id: 'demo-http',
    label: 'demo server (SDK), HTTP',
    async start(defer) {
      const server = await startHttpFixture({ mode: 'modern' });
      defer(() => server.stop());
      return [
        await relayContender(
          defer,
          { name: 'demo-http', serverUrl: server.url, connectionPoolSize: POOL_SIZE },
          server.pid,
        ),
        await sdkContender(defer, new StreamableHTTPClientTransport(new URL(server.url)), server.pid),
      ];
    },
  },
  {
    id: 'demo-stdio',
    label: 'demo server (SDK), stdio',
    async start(defer) {
      return [
        await relayContender(defer, {
          name: 'demo-stdio',
          ...stdioFixture(),
          connectionPoolSize: POOL_SIZE,
        }),
        await sdkContender(defer, new StdioClientTransport({ ...stdioFixture(), stderr: 'inherit' })),
      ];
    },
  },
  {
    id: 'bare-http',
    label: 'bare responder, HTTP',
    async start(defer) {
      const server = await startBareHttpUpstream();
      defer(() => server.stop());
      return [
        await relayContender(
          defer,
          { name: 'bare-http', serverUrl: server.url, connectionPoolSize: POOL_SIZE },
          server.pid,
        ),
        await sdkContender(defer, new StreamableHTTPClientTransport(new URL(server.url)), server.pid),
      ];
    },
  },
  {
    id: 'bare-stdio',
    label: 'bare responder, stdio',
    async start(defer) {
      return [
        await relayContender(defer, {
          name: 'bare-stdio',
          ...bareStdioCommand(),
          connectionPoolSize: POOL_SIZE,
        }),
        await sdkContender(defer, new StdioClientTransport({ ...bareStdioCommand(), stderr: 'inherit' })),
      ];
    },
  },
];

/** One round: both contenders measured back to back. */
interface Round {
  relay: LoadResult;
  sdk: LoadResult;
}

interface Scenario {
  upstream: string;
  label: string;
  concurrency: number;
  rounds: Round[];
  upstreamPeakRssBytes: Record<ContenderName, number>;
}

async function measure(
  ctx: BenchContext,
  contender: Contender,
  concurrency: number,
  windowMs: number,
  warmupMs: number,
  label = '',
): Promise<LoadResult> {
  const op = async (seq: number): Promise<void> => {
    const text = `bench-${seq}`;
    const answer = await contender.echo(text);
    if (answer !== text) throw new Error(`${contender.name} got '${answer}' back for '${text}'`);
  };
  const result = await closedLoop(op, {
    concurrency,
    durationMs: windowMs,
    warmupMs,
    trees: { upstream: contender.upstreamPid },
  });
  ctx.log(
    `  ${label}${contender.name.padEnd(5)} C=${String(concurrency).padEnd(2)} ${opsPerSec(result.opsPerSec).padStart(7)} ops/s ` +
      `P50 ${duration(result.latency.p50)} P99 ${duration(result.latency.p99)} ` +
      `own CPU ${micros(result.cpuMicrosPerOp['self']!)}/call` +
      (result.errors > 0 ? ` ERRORS ${result.errors}: ${result.firstError}` : ''),
  );
  return result;
}

async function runUpstream(ctx: BenchContext, upstream: Upstream, windowMs: number): Promise<Scenario[]> {
  ctx.log(`${upstream.label}: starting`);
  // Each upstream's processes live only while it is measured; the runner's own cleanup is the backstop.
  const cleanups: (() => unknown)[] = [];
  const defer: Defer = (cleanup) => {
    cleanups.push(cleanup);
    ctx.defer(cleanup);
  };
  try {
    return await measureUpstream(ctx, upstream, windowMs, await upstream.start(defer));
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
}

async function measureUpstream(
  ctx: BenchContext,
  upstream: Upstream,
  windowMs: number,
  [relay, sdk]: [Contender, Contender],
): Promise<Scenario[]> {
  // A first answer from each, before any timing: the benchmark must measure correct calls.
  for (const contender of [relay, sdk]) {
    const answer = await contender.echo('hello');
    if (answer !== 'hello') throw new Error(`${upstream.label}: ${contender.name} echoed '${answer}'`);
  }
  for (const contender of [relay, sdk]) {
    const warm = await measure(ctx, contender, 8, UPSTREAM_WARMUP_MS, 0, 'warmup ');
    if (warm.errors > 0)
      throw new Error(`${upstream.label}: ${contender.name} failed while warming up: ${warm.firstError}`);
  }
  const scenarios: Scenario[] = [];
  for (const concurrency of CONCURRENCIES) {
    const rounds: Round[] = [];
    for (let round = 0; round < ctx.repeats; round++) {
      const warmupMs = round === 0 ? FIRST_WARMUP_MS : ROUND_WARMUP_MS;
      const order = round % 2 === 0 ? [relay, sdk] : [sdk, relay];
      const results = {} as Round;
      for (const contender of order)
        results[contender.name] = await measure(ctx, contender, concurrency, windowMs, warmupMs);
      rounds.push(results);
    }
    scenarios.push({
      upstream: upstream.id,
      label: upstream.label,
      concurrency,
      rounds,
      upstreamPeakRssBytes: { relay: treePeakRssBytes(relay.upstreamPid), sdk: treePeakRssBytes(sdk.upstreamPid) },
    });
  }
  return scenarios;
}

/** Median over rounds of relay ÷ SDK for one figure. */
function pairedRatio(rounds: readonly Round[], pick: (result: LoadResult) => number): number {
  return median(rounds.map((round) => pick(round.relay) / pick(round.sdk)));
}

const OPS = (r: LoadResult) => r.opsPerSec;
const P50 = (r: LoadResult) => r.latency.p50;
const P99 = (r: LoadResult) => r.latency.p99;
const OWN_CPU = (r: LoadResult) => r.cpuMicrosPerOp['self']!;
const UPSTREAM_CPU = (r: LoadResult) => r.cpuMicrosPerOp['upstream']!;

function errorsOf(rounds: readonly Round[]): string | undefined {
  const parts: string[] = [];
  for (const name of ['relay', 'sdk'] as const) {
    const errors = rounds.reduce((sum, round) => sum + round[name].errors, 0);
    const first = rounds.find((round) => round[name].firstError !== undefined)?.[name].firstError;
    if (errors > 0) parts.push(`${name}: ${errors} failed calls, e.g. ${first}`);
  }
  return parts.length > 0 ? parts.join('; ') : undefined;
}

function summarize(scenarios: readonly Scenario[]): SuiteResult {
  const ratioTable: ResultTable = {
    title: 'Relay ÷ SDK client (the relay is worse where ops/s is below 1, or another column above 1)',
    columns: ['upstream', 'C', 'ops/s', 'P50', 'P99', 'own CPU/call', 'upstream CPU/call'],
    rows: [],
    note:
      'Median over rounds of the ratio of two back-to-back runs. "own CPU" is this process (load generator + client) ' +
      'per correct call, from process.cpuUsage; "upstream CPU" is the server process tree, from /proc/<pid>/stat.',
  };
  const absoluteTable: ResultTable = {
    title: 'Absolute figures, for scale only (medians of the rounds)',
    columns: ['upstream', 'C', 'client', 'ops/s', 'P50', 'P99', 'own CPU/call', 'upstream CPU/call', 'failed calls'],
    rows: [],
  };
  const budgets: BudgetResult[] = [];
  const slower: string[] = [];
  for (const scenario of scenarios) {
    const { rounds, concurrency: c } = scenario;
    const ops = pairedRatio(rounds, OPS);
    const p50 = pairedRatio(rounds, P50);
    const p99 = pairedRatio(rounds, P99);
    const ownCpu = pairedRatio(rounds, OWN_CPU);
    ratioTable.rows.push([
      scenario.label,
      String(c),
      ratio(ops),
      ratio(p50),
      ratio(p99),
      ratio(ownCpu),
      ratio(pairedRatio(rounds, UPSTREAM_CPU)),
    ]);
    for (const name of ['relay', 'sdk'] as const) {
      const results = rounds.map((round) => round[name]);
      absoluteTable.rows.push([
        scenario.label,
        String(c),
        name === 'relay' ? 'relay' : 'SDK client',
        opsPerSec(medianBy(results, OPS)),
        duration(medianBy(results, P50)),
        duration(medianBy(results, P99)),
        micros(medianBy(results, OWN_CPU)),
        micros(medianBy(results, UPSTREAM_CPU)),
        String(results.reduce((sum, r) => sum + r.errors, 0)),
      ]);
    }
    const errors = errorsOf(rounds);
    budgets.push(atLeast(`${scenario.label}, C=${c}: relay/SDK ops/s`, ops, OPS_LIMIT, errors));
    budgets.push(atMost(`${scenario.label}, C=${c}: relay/SDK P50`, p50, P50_LIMIT, errors));
    const worse = [
      ...(ops < 1
        ? [
            `${ratio(ops)} its ops/s (${opsPerSec(medianBy(rounds, (r) => OPS(r.relay)))} vs ${opsPerSec(medianBy(rounds, (r) => OPS(r.sdk)))})`,
          ]
        : []),
      ...(p50 > 1
        ? [
            `${ratio(p50)} its P50 (${duration(medianBy(rounds, (r) => P50(r.relay)))} vs ${duration(medianBy(rounds, (r) => P50(r.sdk)))})`,
          ]
        : []),
      ...(p99 > 1
        ? [
            `${ratio(p99)} its P99 (${duration(medianBy(rounds, (r) => P99(r.relay)))} vs ${duration(medianBy(rounds, (r) => P99(r.sdk)))})`,
          ]
        : []),
    ];
    if (worse.length > 0) {
      slower.push(
        `**${scenario.label}, C=${c}: the relay is slower than the SDK client** — ${worse.join(', ')}; ` +
          `its own CPU per call is ${ratio(ownCpu)} the SDK client's ` +
          `(${micros(medianBy(rounds, (r) => OWN_CPU(r.relay)))} vs ${micros(medianBy(rounds, (r) => OWN_CPU(r.sdk)))}).`,
      );
    }
  }
  const notes = [
    ...slower,
    ...(slower.length === 0
      ? ['The relay is at least as fast as the SDK client in every scenario (ops/s and P50).']
      : []),
    `Relay config: \`connectionPoolSize: ${POOL_SIZE}\` (so both contenders can have 64 calls on the wire), ` +
      'everything else default: caching on (`echo` has no `readOnlyHint`, so the policy sends every call upstream; the texts are distinct anyway), retries on, 30 s timeout. SDK client: `versionNegotiation: auto`, ' +
      'default options. Both negotiated 2026-07-28.',
    'Budgets are checked on ops/s and P50; P99 is reported, not budgeted: on 2 shared cores it follows GC pauses and ' +
      'the scheduler more than the code.',
    `Peak RSS of this process over the run: ${bytes(selfPeakRssBytes())}.`,
  ];
  return {
    baseline:
      'the bare SDK client (`Client.callTool`) against the same upstream, measured in the same run, round by round.',
    tables: [ratioTable, absoluteTable],
    budgets,
    notes,
    data: scenarios,
  };
}

export const suite: BenchSuite = {
  name: 'core',
  description:
    'Library uncached tool call (`createProxyFactory(...).createToolProxy(...).execute`) vs the bare SDK client on the same upstream, C=1 and C=64.',
  async run(ctx) {
    const windowMs = ctx.durationMs ?? DEFAULT_WINDOW_MS;
    const scenarios: Scenario[] = [];
    for (const upstream of UPSTREAMS) scenarios.push(...(await runUpstream(ctx, upstream, windowMs)));
    return summarize(scenarios);
  },
};
