/**
 * The soak: the gateway (`mcp-relay serve`, a real child process) in front of the demo upstream
 * over stdio and over HTTP, with the memory cache, held at 80 % of its measured capacity for a
 * long time while its memory, file descriptors, sockets and child processes are sampled.
 *
 * 1. **Capacity**: a closed loop of `capacityConcurrency` workers over the mixed workload (below)
 *    for `capacityMs`, after a second's warm-up. The target rate is `share` of what it completed
 *    per second, so the load scales with the machine it runs on (and with what the neighbours
 *    leave of it).
 * 2. **Handle baseline**: the load's connections are closed and its sessions ended (DELETE); once
 *    the gateway's descriptor count has been still for 1.5 s, its fds, sockets and children are
 *    the baseline (connections to the HTTP upstream are counted apart: its pool keeps idle ones
 *    for seconds and bounds them by `connection_pool_size`, which is checked instead). Taken after the capacity run, so that every pool, child and lazily opened
 *    handle exists already: what is counted later is what load adds and does not give back.
 * 3. **Warm-up**, then **hold**: open-loop load at the target rate (calls started on schedule from
 *    the load generator's own process, whatever the answers take), first for `warmupMs`, then for
 *    `durationMs`, sampling the gateway every `sampleEveryMs`.
 * 4. **Handles after**: connections closed and sessions ended again; the gateway must come back
 *    to the baseline (fds no more than before, the same children) within `settleMs`.
 *
 * The workload: one call in turn to each target, every call `tools/call` of `echo`, every answer
 * checked: cached hits (16 repeated texts, stateless 2026-07-28 requests to the stdio upstream,
 * `cache.tools: [echo]`), misses that are then stored and later evicted (distinct texts over 2025
 * sessions to the same upstream; `cache_size` 256 keeps the cache full and evicting), and
 * pass-through calls to the HTTP upstream (not cached, distinct texts). A third each.
 *
 * **How RSS growth is measured, and from when.** From the start of the held window (after the
 * capacity run and the warm-up), not from a cold start: a fresh process grows while V8 compiles
 * the hot path, its heap grows to its working size, the cache fills up to `cache_size` and pools
 * and sessions open; that is paid once, whatever the run's length, and is not a leak. A leak grows
 * with the calls served, which is what comparing the start of the held window with its end sees.
 * And each end is read right after full garbage collections, a plain one and V8's "last resort"
 * one that also hands back the pages it keeps for reuse (the gateway runs with `--expose-gc` and
 * [gc-on-signal.ts](gc-on-signal.ts) preloaded, which says why those; SIGUSR2 asks for them), the
 * lowest of three readings a second apart: under load the gateway's raw RSS saws with V8's major
 * GC cycle (156-235 MiB in a trial run, a period over a minute), so two raw samples would say more
 * about where in that cycle they fell than about a leak. The lowest of three, because V8 hands the
 * pages a collection freed back to the system over the next moments (a trial: 187, 179, 169 MiB
 * after three collections a second apart, 43 MiB of heap in use each time); what stays after
 * several is what the process holds. The raw samples are reported too (peak, cold).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { startChildServer, type ChildServer } from './child.js';
import { processRssBytes } from './cpu.js';
import { processHandles, sampleProcess, type ProcessHandles, type ProcessSample } from './handles.js';
import { HttpLoadGenerator, type LoadTarget, type MixResult } from './http-load.js';
import { machineInfo, type MachineInfo } from './machine.js';
import { bytes, duration, opsPerSec } from './report.js';
import type { BudgetResult, SuiteResult } from './types.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(REPO, 'src/cli/main.ts');
const DEMO_MAIN = join(REPO, 'src/demo/main.ts');
const GC_PRELOAD = fileURLToPath(new URL('./gc-on-signal.ts', import.meta.url));
/** What `mcp-relay serve` prints before its URL (src/cli/serve.ts). */
const GATEWAY_PREFIX = 'mcp-relay gateway listening on';
/** What the demo server prints before its URL (src/demo/main.ts). */
const DEMO_PREFIX = 'MCP_DEMO_LISTENING';

/** `connection_pool_size` of the HTTP upstream: the most connections the gateway may hold to it. */
const HTTP_POOL = 16;
/** Connections (2025 sessions, 2026-07-28 clients) the load generator opens per target. */
const SLOTS = 8;

/** The pass criteria (issue 8, "Soak"). */
export const SOAK_LIMITS = Object.freeze({
  /** RSS growth over the held window, as a share of its start. */
  rssGrowth: 0.1,
  /** Failed calls over all calls of the held window: about none. */
  errorRate: 0.001,
  /** Calls completed per second over the target rate. */
  achieved: 0.95,
});

export interface SoakOptions {
  /** How long the load is held at the target rate, in ms. Default 600,000 (10 minutes). */
  durationMs?: number | undefined;
  /** Load at the target rate before the held window, in ms. Default a tenth of `durationMs`, 5-60 s. */
  warmupMs?: number | undefined;
  /** Closed-loop capacity run, in ms (after 1 s unmeasured). Default 5000. */
  capacityMs?: number | undefined;
  /** Workers of the capacity run. Default 16. */
  capacityConcurrency?: number | undefined;
  /** Target rate as a share of the measured capacity. Default 0.8. */
  share?: number | undefined;
  /** Sampling period of the gateway's RSS and handles, in ms. Default 5000. */
  sampleEveryMs?: number | undefined;
  /** Period of the post-GC memory readings between the two ends of the held window, in ms. Default 60,000. */
  gcEveryMs?: number | undefined;
  /** Longest wait for the handles to come back to the baseline once load stops, in ms. Default 20,000. */
  settleMs?: number | undefined;
  /** Also an HTTP upstream (the demo over HTTP, pass-through). Default true. */
  http?: boolean | undefined;
  /** Progress lines. Default: none. */
  log?: ((line: string) => void) | undefined;
}

/** {@link SoakOptions} with every default filled in. */
export interface ResolvedSoakOptions {
  durationMs: number;
  warmupMs: number;
  capacityMs: number;
  capacityConcurrency: number;
  share: number;
  sampleEveryMs: number;
  gcEveryMs: number;
  settleMs: number;
  http: boolean;
}

/** `process.memoryUsage()` of the gateway right after a full GC, `atMs` after the held window began. */
export interface CollectedMemory {
  atMs: number;
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  /** The heap pages V8 counts as its own (`v8.getHeapStatistics().total_physical_size`). */
  heapPhysical: number;
}

export interface SoakReport {
  machine: MachineInfo;
  /** 1-minute load average when the held window ended (`machine.loadAverage` is at the start). */
  loadAverageEnd: number;
  options: ResolvedSoakOptions;
  wallMs: number;
  targets: string[];
  /** The closed-loop run the target rate comes from. */
  capacity: MixResult;
  /** Calls per second held: `share` × capacity. */
  targetRate: number;
  warmup: MixResult;
  hold: MixResult;
  /** The gateway's RSS right after it started, before any load (for scale only). */
  coldRssBytes: number;
  /** Every sample, with its phase. */
  samples: (ProcessSample & { phase: 'warmup' | 'hold' })[];
  /** Post-GC readings: three at the start of the held window, one every `gcEveryMs`, three at its end. */
  collected: CollectedMemory[];
  rss: {
    /** Post-GC RSS at the start of the held window (lowest of three readings). */
    start: number;
    /** Post-GC RSS at its end (lowest of three). */
    end: number;
    /** (end − start) / start. */
    growth: number;
    /** Post-GC heap in use at the start and end (lowest of three), for where growth would come from. */
    heapStart: number;
    heapEnd: number;
    /** Highest raw sample, GC cycle included. */
    peak: number;
  };
  handles: {
    baseline: ProcessHandles;
    /** Most seen during the held window. */
    peak: ProcessHandles;
    after: ProcessHandles;
    /** How long after load stopped `after` was read, in ms. */
    settledAfterMs: number;
  };
  /** Failed over all calls of the held window. */
  errorRate: number;
  /** Achieved calls per second over the target rate. */
  achievedShare: number;
  criteria: BudgetResult[];
  pass: boolean;
}

/** The options with their defaults; throws, naming the option, on a value that cannot run. */
export function resolveSoakOptions(options: SoakOptions): ResolvedSoakOptions {
  const durationMs = positive('durationMs', options.durationMs ?? 600_000);
  const resolved: ResolvedSoakOptions = {
    durationMs,
    warmupMs: nonNegative('warmupMs', options.warmupMs ?? Math.min(60_000, Math.max(5000, durationMs / 10))),
    capacityMs: positive('capacityMs', options.capacityMs ?? 5000),
    capacityConcurrency: positive('capacityConcurrency', options.capacityConcurrency ?? 16),
    share: options.share ?? 0.8,
    sampleEveryMs: positive('sampleEveryMs', options.sampleEveryMs ?? 5000),
    gcEveryMs: positive('gcEveryMs', options.gcEveryMs ?? 60_000),
    settleMs: positive('settleMs', options.settleMs ?? 20_000),
    http: options.http ?? true,
  };
  if (!(resolved.share > 0 && resolved.share <= 1)) {
    throw new Error(`soak: share must be above 0 and at most 1, got ${resolved.share}`);
  }
  if (resolved.durationMs < Math.max(10_000, resolved.sampleEveryMs * 6)) {
    throw new Error(
      `soak: durationMs (${resolved.durationMs}) must be at least 10 s and hold at least 6 samples of sampleEveryMs (${resolved.sampleEveryMs})`,
    );
  }
  return resolved;
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new Error(`soak: ${name} must be a positive number, got ${value}`);
  return value;
}

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) throw new Error(`soak: ${name} must be 0 or more, got ${value}`);
  return value;
}

/** The gateway's config: the demo over stdio (echo cached) and, optionally, over HTTP (not cached). */
async function writeConfig(dir: string, httpUrl: string | undefined): Promise<string> {
  const upstreams: Record<string, unknown> = {
    demo: {
      command: process.execPath,
      args: ['--import', 'tsx', DEMO_MAIN, '--transport', 'stdio'],
      cache: { tools: ['echo'] },
      // Small enough that the misses fill it during the capacity run: the held window then evicts
      // an entry for every one it stores, which is where a cache leaks if it leaks.
      cache_size: 256,
      connection_pool_size: 64,
    },
  };
  if (httpUrl !== undefined) upstreams['demo-http'] = { server_url: httpUrl, connection_pool_size: HTTP_POOL };
  const path = join(dir, 'soak.json');
  await writeFile(path, JSON.stringify({ upstreams }, null, 2));
  return path;
}

/** Polls until `done(handles)` or `maxMs`; returns the last reading and when it was taken. */
async function settle(
  pid: number,
  pooledPorts: readonly number[],
  maxMs: number,
  done: (now: ProcessHandles, history: readonly ProcessHandles[]) => boolean,
): Promise<{ handles: ProcessHandles; afterMs: number }> {
  const started = performance.now();
  const history: ProcessHandles[] = [];
  for (;;) {
    const now = processHandles(pid, pooledPorts);
    history.push(now);
    const afterMs = performance.now() - started;
    if (done(now, history) || afterMs >= maxMs) return { handles: now, afterMs };
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Still: the same fd count in the last `n` readings (500 ms apart). */
function still(history: readonly ProcessHandles[], n: number): boolean {
  if (history.length < n) return false;
  const last = history.slice(-n);
  return last.every((h) => h.fds === last[0]!.fds && h.children === last[0]!.children);
}

/** When to read post-GC memory, in ms from the start of the held window: 0, 1, 2 s, every `everyMs`, the last 3 s. */
function gcSchedule(durationMs: number, everyMs: number): number[] {
  const times = [0, 1000, 2000];
  for (let at = everyMs; at < durationMs - 5000; at += everyMs) times.push(at);
  times.push(durationMs - 3000, durationMs - 2000, durationMs - 1000);
  return times;
}

/** Asks the gateway for a full GC (SIGUSR2) and returns its memory right after; `seen` lines are old. */
async function collectedMemory(pid: number, report: string, seen: number): Promise<Omit<CollectedMemory, 'atMs'>> {
  process.kill(pid, 'SIGUSR2');
  const deadline = performance.now() + 10_000;
  for (;;) {
    const lines = (await readFile(report, 'utf8')).split('\n').filter((line) => line !== '');
    if (lines.length > seen) return JSON.parse(lines[seen]!) as Omit<CollectedMemory, 'atMs'>;
    if (performance.now() > deadline) throw new Error(`soak: the gateway (pid ${pid}) did not report a GC in 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Runs the soak and returns its figures and verdicts; every process it started is stopped. */
export async function runSoak(options: SoakOptions = {}): Promise<SoakReport> {
  const opts = resolveSoakOptions(options);
  const log = options.log ?? (() => undefined);
  const machine = machineInfo();
  const wallStart = performance.now();
  const dir = await mkdtemp(join(tmpdir(), 'mcp-relay-soak-'));
  const cleanups: (() => Promise<void>)[] = [async () => rm(dir, { recursive: true, force: true })];
  try {
    let upstream: ChildServer | undefined;
    if (opts.http) {
      upstream = await startChildServer(
        process.execPath,
        ['--import', 'tsx', DEMO_MAIN, '--transport', 'http', '--mode', 'modern', '--port', '0'],
        DEMO_PREFIX,
      );
      cleanups.push(() => upstream!.stop());
    }
    const config = await writeConfig(dir, upstream?.url);
    const gcReport = join(dir, 'gc.jsonl');
    await writeFile(gcReport, '');
    const gateway = await startChildServer(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', '--import', GC_PRELOAD, CLI, 'serve', '--config', config, '--port', '0'],
      GATEWAY_PREFIX,
      { env: { ...process.env, MCP_RELAY_GC_REPORT: gcReport } },
    );
    cleanups.push(() => gateway.stop());
    const coldRssBytes = processRssBytes(gateway.pid);
    const pooledPorts = upstream === undefined ? [] : [Number(new URL(upstream.url).port)];
    const base = gateway.url.replace(/\/mcp$/, '');
    log(`gateway pid ${gateway.pid} at ${gateway.url}, cold RSS ${bytes(coldRssBytes)}`);

    const load = HttpLoadGenerator.start();
    cleanups.push(() => load.stop());
    const specs: LoadTarget[] = [
      { name: 'hits', url: `${base}/mcp/demo`, era: 'modern', slots: SLOTS, texts: 16 },
      { name: 'misses', url: `${base}/mcp/demo`, era: 'legacy', slots: SLOTS, texts: 'distinct' },
    ];
    if (opts.http)
      specs.push({ name: 'http', url: `${base}/mcp/demo-http`, era: 'modern', slots: SLOTS, texts: 'distinct' });
    const names = specs.map((spec) => spec.name);
    const openAll = () => Promise.all(specs.map((spec) => load.open(spec)));
    const closeAll = () => Promise.all(names.map((name) => load.closeTarget(name, { endSessions: true })));

    await openAll();
    await load.mix({ targets: names, concurrency: opts.capacityConcurrency, durationMs: 1000 });
    const capacity = await load.mix({
      targets: names,
      concurrency: opts.capacityConcurrency,
      durationMs: opts.capacityMs,
    });
    const targetRate = capacity.opsPerSec * opts.share;
    log(
      `capacity ${opsPerSec(capacity.opsPerSec)} calls/s at C=${opts.capacityConcurrency} (${capacity.errors} failed); ` +
        `target ${opsPerSec(targetRate)} calls/s`,
    );
    if (capacity.ops === 0) throw new Error(`soak: no call succeeded in the capacity run: ${capacity.firstError}`);

    await closeAll();
    // Still for a second and a half. The connections to the HTTP upstream are counted apart
    // (`pooled`): its pool keeps idle ones for seconds (keep-alive), bounded by connection_pool_size.
    const baseline = (await settle(gateway.pid, pooledPorts, opts.settleMs, (_, history) => still(history, 4))).handles;
    log(
      `idle baseline: ${baseline.fds} fds (${baseline.sockets} sockets, ${baseline.pipes} pipes), ${baseline.children} children`,
    );
    await openAll();

    const samples: SoakReport['samples'] = [];
    let phase: 'warmup' | 'hold' = 'warmup';
    const sampler = setInterval(() => {
      const sample = sampleProcess(gateway.pid, performance.now() - wallStart, pooledPorts);
      samples.push({ ...sample, phase });
      if (phase === 'hold') {
        log(
          `  ${duration(sample.atMs)}: RSS ${bytes(sample.rssBytes)}, ${sample.fds} fds, ${sample.sockets} sockets, ${sample.children} children, ${sample.pooled} upstream connections`,
        );
      }
    }, opts.sampleEveryMs);
    const collected: CollectedMemory[] = [];
    const timers: NodeJS.Timeout[] = [];
    let reading = Promise.resolve();
    let warmup: MixResult;
    let hold: MixResult;
    try {
      log(`warm-up: ${duration(opts.warmupMs)} at ${opsPerSec(targetRate)} calls/s`);
      warmup = await load.mix({ targets: names, rate: targetRate, durationMs: opts.warmupMs });
      phase = 'hold';
      log(`hold: ${duration(opts.durationMs)} at ${opsPerSec(targetRate)} calls/s`);
      const holdStart = performance.now();
      for (const atMs of gcSchedule(opts.durationMs, opts.gcEveryMs)) {
        timers.push(
          setTimeout(() => {
            reading = reading.then(async () => {
              const memory = await collectedMemory(gateway.pid, gcReport, collected.length);
              collected.push({ atMs: performance.now() - holdStart, ...memory });
              log(`  after a full GC: RSS ${bytes(memory.rss)}, heap used ${bytes(memory.heapUsed)}`);
            });
          }, atMs),
        );
      }
      hold = await load.mix({ targets: names, rate: targetRate, durationMs: opts.durationMs, intervalMs: 10_000 });
    } finally {
      clearInterval(sampler);
      for (const timer of timers) clearTimeout(timer);
    }
    await reading;
    const loadAverageEnd = loadavg()[0] ?? 0;

    await closeAll();
    const { handles: after, afterMs: settledAfterMs } = await settle(
      gateway.pid,
      pooledPorts,
      opts.settleMs,
      (now, history) => now.fds <= baseline.fds && now.children === baseline.children && still(history, 3),
    );
    log(`after: ${after.fds} fds (${after.sockets} sockets), ${after.children} children, ${duration(settledAfterMs)}`);

    const held = samples.filter((s) => s.phase === 'hold');
    if (collected.length < 6) throw new Error(`soak: ${collected.length} post-GC readings, expected at least 6`);
    const first = collected.slice(0, 3);
    const last = collected.slice(-3);
    const rssStart = Math.min(...first.map((m) => m.rss));
    const rssEnd = Math.min(...last.map((m) => m.rss));
    const rss = {
      start: rssStart,
      end: rssEnd,
      growth: (rssEnd - rssStart) / rssStart,
      heapStart: Math.min(...first.map((m) => m.heapUsed)),
      heapEnd: Math.min(...last.map((m) => m.heapUsed)),
      peak: Math.max(...samples.map((s) => s.rssBytes)),
    };
    const peak: ProcessHandles = {
      fds: Math.max(...held.map((s) => s.fds)),
      sockets: Math.max(...held.map((s) => s.sockets)),
      pipes: Math.max(...held.map((s) => s.pipes)),
      children: Math.max(...held.map((s) => s.children)),
      pooled: Math.max(...held.map((s) => s.pooled)),
    };
    const calls = hold.ops + hold.errors;
    const errorRate = calls === 0 ? 1 : hold.errors / calls;
    const achievedShare = hold.opsPerSec / targetRate;
    const criteria = soakCriteria({
      rss,
      baseline,
      after,
      peak,
      errors: hold.errors,
      errorRate,
      achievedShare,
      held,
      http: opts.http,
    });
    return {
      machine,
      loadAverageEnd,
      options: opts,
      wallMs: performance.now() - wallStart,
      targets: names,
      capacity,
      targetRate,
      warmup,
      hold,
      coldRssBytes,
      samples,
      collected,
      rss,
      handles: { baseline, peak, after, settledAfterMs },
      errorRate,
      achievedShare,
      criteria,
      pass: criteria.every((c) => c.pass),
    };
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  }
}

function soakCriteria(input: {
  rss: SoakReport['rss'];
  baseline: ProcessHandles;
  after: ProcessHandles;
  peak: ProcessHandles;
  http: boolean;
  errors: number;
  errorRate: number;
  achievedShare: number;
  held: readonly ProcessSample[];
}): BudgetResult[] {
  const { rss, baseline, after } = input;
  const check = (name: string, budget: string, measured: number, pass: boolean, unit?: string): BudgetResult => ({
    name,
    budget,
    measured,
    pass: pass && Number.isFinite(measured),
    ...(unit === undefined ? {} : { unit }),
  });
  const fdsLeaked = after.fds - baseline.fds;
  const childrenChanged = after.children - baseline.children;
  return [
    check(
      `RSS growth over the held window, after a full GC (${bytes(rss.start)} → ${bytes(rss.end)})`,
      `≤ ${SOAK_LIMITS.rssGrowth * 100} %`,
      rss.growth * 100,
      rss.growth <= SOAK_LIMITS.rssGrowth,
      '%',
    ),
    check(
      `fds after load, over the idle baseline (${baseline.fds} → ${after.fds})`,
      '≤ 0',
      fdsLeaked,
      fdsLeaked <= 0,
      'fds',
    ),
    check(
      `child processes after load, against the baseline (${baseline.children} → ${after.children})`,
      '= 0',
      childrenChanged,
      childrenChanged === 0 && input.held.every((s) => s.children === baseline.children),
      'processes',
    ),
    ...(input.http
      ? [
          check(
            `connections to the HTTP upstream, most seen (connection_pool_size ${HTTP_POOL})`,
            `≤ ${HTTP_POOL}`,
            Math.max(input.peak.pooled, after.pooled),
            Math.max(input.peak.pooled, after.pooled) <= HTTP_POOL,
            'connections',
          ),
        ]
      : []),
    check(
      `failed calls in the held window (${input.errors})`,
      `≤ ${SOAK_LIMITS.errorRate * 100} %`,
      input.errorRate * 100,
      input.errorRate <= SOAK_LIMITS.errorRate,
      '%',
    ),
    check(
      'achieved rate / target rate',
      `≥ ${SOAK_LIMITS.achieved}`,
      input.achievedShare,
      input.achievedShare >= SOAK_LIMITS.achieved,
    ),
  ];
}

/** The report in the form `bench/lib/report.ts` renders (console and the RESULTS.md section). */
export function soakSuiteResult(report: SoakReport): SuiteResult {
  const { capacity, warmup, hold, rss, handles } = report;
  const minutes = (ms: number) => `${(ms / 60_000).toFixed(ms % 60_000 === 0 ? 0 : 1)} min`;
  const held = report.samples.filter((s) => s.phase === 'hold');
  const rates = hold.series.slice(0, Math.floor(report.options.durationMs / 10_000)).map((b) => b.ops / 10);
  const counts = (h: ProcessHandles | undefined) =>
    h === undefined
      ? ['', '', '', '', '']
      : [String(h.fds), String(h.sockets), String(h.pipes), String(h.children), String(h.pooled)];
  return {
    baseline:
      `the same gateway process: its capacity measured first (closed loop, C=${report.options.capacityConcurrency}), ` +
      `its RSS at the start of the held window, its handles when idle after the capacity run`,
    tables: [
      {
        title: 'Load',
        columns: ['phase', 'calls/s', 'target', 'correct calls', 'failed', 'P50', 'P99', 'max', 'late starts'],
        rows: [
          [
            `capacity (closed loop, C=${report.options.capacityConcurrency}, ${duration(report.options.capacityMs)})`,
            opsPerSec(capacity.opsPerSec),
            '–',
            String(capacity.ops),
            String(capacity.errors),
            duration(capacity.latency.p50),
            duration(capacity.latency.p99),
            duration(capacity.latency.max),
            '–',
          ],
          ...[
            [`warm-up (${duration(report.options.warmupMs)})`, warmup] as const,
            [`held (${minutes(report.options.durationMs)})`, hold] as const,
          ].map(([label, run]) => [
            label,
            opsPerSec(run.opsPerSec),
            opsPerSec(report.targetRate),
            String(run.ops),
            String(run.errors),
            duration(run.latency.p50),
            duration(run.latency.p99),
            duration(run.latency.max),
            String(run.lateStarts),
          ]),
        ],
        note:
          `Open loop from a separate process (calls started on schedule; latency from each call's scheduled start). ` +
          `Workload: a third each of ${report.targets.join(', ')} (see bench/lib/soak.ts). ` +
          `Held window, calls/s per 10 s: min ${opsPerSec(Math.min(...rates))}, max ${opsPerSec(Math.max(...rates))}.`,
      },
      {
        title: 'Gateway process',
        columns: ['reading', 'RSS', 'heap used', 'fds', 'sockets', 'pipes', 'children', 'upstream conns'],
        rows: [
          ['cold (just started)', bytes(report.coldRssBytes), '', ...counts(undefined)],
          ['idle baseline (after the capacity run)', '', '', ...counts(handles.baseline)],
          ['held window start (after a full GC)', bytes(rss.start), bytes(rss.heapStart), ...counts(held[0])],
          ['held window end (after a full GC)', bytes(rss.end), bytes(rss.heapEnd), ...counts(held.at(-1))],
          ['peak during load (raw samples)', bytes(rss.peak), '', ...counts(handles.peak)],
          [`idle after load (${duration(handles.settledAfterMs)} after it stopped)`, '', '', ...counts(handles.after)],
        ],
        note: `Handles sampled every ${duration(report.options.sampleEveryMs)} from /proc/<pid> (${held.length} samples in the held window; start and end rows show the first and last); memory after a full GC is the lowest of three readings a second apart. 1-min load average ${report.machine.loadAverage.toFixed(2)} at the start, ${report.loadAverageEnd.toFixed(2)} at the end of the held window.`,
      },
    ],
    budgets: report.criteria,
    notes: [
      'RSS growth is measured from the start of the held window (after the capacity run and the warm-up), not from a cold start: a fresh process grows while V8 compiles the hot path, the heap grows to its working size, the cache fills and pools open; that is paid once and is not a leak.',
      `Both ends are read right after a full GC (SIGUSR2 to a preloaded handler; gateway run with --expose-gc): under load the raw RSS saws with V8's major GC cycle (here up to ${bytes(rss.peak)}), so raw samples would compare points of that cycle rather than what the process holds.`,
      `Post-GC RSS through the held window: ${report.collected.map((m) => `${duration(m.atMs)} ${bytes(m.rss)}`).join(', ')}.`,
    ],
    data: report,
  };
}
