/**
 * Timing: a micro-benchmark loop (warmup, then N iterations or a duration) and a closed-loop load
 * generator (C workers, each issuing its next call as soon as the last one returns). Shipped with
 * the package for `mcp-relay bench`; `bench/lib/timing.ts` adds CPU metering of child process
 * trees for the repository's own suites.
 */
import { Samples, summarize, type LatencySummary } from './stats.js';

/** Meters CPU over a window: `stop()` returns µs per label since `start()`, with `self` for this process. */
export interface CpuMeterLike {
  start(): void;
  stop(): Record<string, number>;
}

/** This process's CPU time (user + system), from `process.cpuUsage`. */
export class SelfCpuMeter implements CpuMeterLike {
  #start = 0;

  start(): void {
    const { user, system } = process.cpuUsage();
    this.#start = user + system;
  }

  stop(): Record<string, number> {
    const { user, system } = process.cpuUsage();
    return { self: user + system - this.#start };
  }
}

export interface TimeOptions {
  /** Calls before measuring, to let the JIT settle. Default 1000. */
  warmup?: number;
  /** Measured calls. Ignored when `durationMs` is set. Default 10,000. */
  iterations?: number;
  /** Measure for this long instead of a fixed count, in ms. */
  durationMs?: number;
  /**
   * Calls per timed sample; each sample is the batch's mean. Default 1. Reading the clock costs
   * ~50 ns, so sub-microsecond calls (a cache hit) need batches for a true ops/s; their
   * percentiles are then of batch means, which hides single slow calls.
   */
  batch?: number;
  /** CPU meter over the measured calls. Default {@link SelfCpuMeter}. */
  meter?: CpuMeterLike;
}

export interface TimeResult {
  latency: LatencySummary;
  opsPerSec: number;
  /** CPU µs of this process per call. */
  cpuMicrosPerOp: number;
}

/** Times one call at a time (concurrency 1, no overlap): for in-process work such as a cache hit. */
export async function timeIt(fn: (i: number) => unknown, options: TimeOptions = {}): Promise<TimeResult> {
  const warmup = options.warmup ?? 1000;
  const batch = Math.max(1, Math.floor(options.batch ?? 1));
  for (let i = 0; i < warmup; i++) await fn(i);
  const samples = new Samples();
  const meter = options.meter ?? new SelfCpuMeter();
  const started = performance.now();
  const deadline = options.durationMs === undefined ? Infinity : started + options.durationMs;
  const iterations = options.durationMs === undefined ? (options.iterations ?? 10_000) : Infinity;
  let calls = 0;
  meter.start();
  while (calls < iterations) {
    const t0 = performance.now();
    for (let j = 0; j < batch; j++) await fn(calls + j);
    const t1 = performance.now();
    calls += batch;
    samples.push((t1 - t0) / batch);
    if (t1 >= deadline) break;
  }
  const elapsed = performance.now() - started;
  const cpu = meter.stop();
  return {
    latency: summarize(samples.view()),
    opsPerSec: (calls * 1000) / elapsed,
    cpuMicrosPerOp: cpu['self']! / calls,
  };
}

export interface LoadOptions {
  /** Workers, each with one call in flight. */
  concurrency: number;
  /** Measured window, in ms. */
  durationMs: number;
  /** Unmeasured run at the same concurrency first, in ms. Default 0. */
  warmupMs?: number;
  /** CPU meter over the window. Default {@link SelfCpuMeter} (bench/lib's also meters child process trees). */
  meter?: CpuMeterLike;
  /** Called with the share of the measured window elapsed (0-1), about ten times a second. */
  onProgress?: (fraction: number) => void;
}

export interface LoadResult {
  concurrency: number;
  /** Calls that completed correctly inside the window. */
  ops: number;
  /** Calls that threw (including a wrong answer, which the op must turn into a throw). */
  errors: number;
  firstError: string | undefined;
  elapsedMs: number;
  opsPerSec: number;
  /** Latency of the correct calls, in ms. */
  latency: LatencySummary;
  /** CPU µs per correct call: `self` for this process, plus one entry per tree the meter covers. */
  cpuMicrosPerOp: Record<string, number>;
}

/**
 * Closed-loop load: `concurrency` workers each call `op(seq)` back to back until the window ends.
 * `seq` is unique across workers, so an op can send a distinct argument (defeating any cache) and
 * check that the answer is its own. An op that throws counts as an error, never as throughput.
 */
export async function closedLoop(op: (seq: number) => Promise<void>, options: LoadOptions): Promise<LoadResult> {
  let seq = 0;
  if (options.warmupMs !== undefined && options.warmupMs > 0) {
    const until = performance.now() + options.warmupMs;
    const warm = async (): Promise<void> => {
      while (performance.now() < until) await op(seq++).catch(() => undefined);
    };
    await Promise.all(Array.from({ length: options.concurrency }, warm));
  }

  const samples = new Samples();
  let errors = 0;
  let firstError: string | undefined;
  const meter = options.meter ?? new SelfCpuMeter();
  meter.start();
  const started = performance.now();
  const deadline = started + options.durationMs;
  const onProgress = options.onProgress;
  const ticker =
    onProgress === undefined
      ? undefined
      : setInterval(() => onProgress(Math.min(1, (performance.now() - started) / options.durationMs)), 100);
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        await op(seq++);
        samples.push(performance.now() - t0);
      } catch (error) {
        errors++;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  if (ticker !== undefined) clearInterval(ticker);
  onProgress?.(1);
  // Calls still in flight at the deadline finish late; the window closes with the last of them.
  const elapsedMs = performance.now() - started;
  const cpu = meter.stop();
  const ops = samples.length;
  const cpuMicrosPerOp: Record<string, number> = {};
  for (const [label, micros] of Object.entries(cpu)) cpuMicrosPerOp[label] = ops > 0 ? micros / ops : Number.NaN;
  return {
    concurrency: options.concurrency,
    ops,
    errors,
    firstError,
    elapsedMs,
    opsPerSec: (ops * 1000) / elapsedMs,
    latency: summarize(samples.view()),
    cpuMicrosPerOp,
  };
}

/**
 * Runs a measurement `times` times, one after another, and returns every result: take the median
 * with `medianBy`. `round` lets a caller alternate the order of contenders between rounds, so a
 * slow drift of the machine does not always land on the same one.
 */
export async function repeated<T>(times: number, run: (round: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  for (let round = 0; round < times; round++) results.push(await run(round));
  return results;
}
