/**
 * The seed's `MCPPerformanceMonitor.get_performance_summary()`, exact: operations counted from the
 * proxy's own call events (a cache hit is a hit because the cache answered, not because the call
 * was fast), over a sliding window and since recording began.
 */
import type { ProxyFactory } from '../proxy/factory.js';
import { BUCKETS, percentileOf } from './histogram.js';
import {
  acquireRecorder,
  CallCounts,
  releaseRecorder,
  type FactoryRecorder,
  type RecorderOptions,
  type SeriesFilter,
} from './recorder.js';

/** The seed's summary fields (snake_case, as the seed spells them), plus the counts behind them. */
export interface PerformanceSummary {
  total_operations: number;
  /** Operations that returned a result (a tool's `isError` result included). */
  successful_operations: number;
  /** Operations that threw: transport, timeout, protocol, pool exhaustion. */
  errors: number;
  /** Results with `isError: true`: the tool's own failure, not the relay's. */
  tool_errors: number;
  timeouts: number;
  /** Fresh hits and stale hits: answered by the cache. */
  cache_hits: number;
  stale_hits: number;
  cache_misses: number;
  avg_latency_ms: number;
  p50_latency_ms: number;
  p95_latency_ms: number;
  p99_latency_ms: number;
  /**
   * Hits (stale ones included) ÷ the operations that consulted the cache, counted. 0 when none
   * did. Operations the cache may not answer (tools with side effects, `cache: 'bypass'`) are
   * not in it.
   */
  cache_hit_rate: number;
  operations_per_second: number;
  /** `errors` ÷ `total_operations`; tool errors are results and not in it. */
  error_rate: number;
}

/** What {@link ProxyFactory.stats} returns: since recording began (the top level) and over the window. */
export interface ProxyStats extends PerformanceSummary {
  /** How long recording has run, in ms (on the factory's clock). */
  elapsed_ms: number;
  window: PerformanceSummary & {
    /** The time the window covers, in ms: its length, or less just after recording began. */
    window_ms: number;
  };
}

/** Summarises counts and a fine histogram over `spanMs`. */
export function summarize(counts: CallCounts, histogram: ArrayLike<number>, spanMs: number): PerformanceSummary {
  const total = counts.calls;
  const lookups = counts.hits + counts.staleHits + counts.misses;
  return {
    total_operations: total,
    successful_operations: total - counts.errors,
    errors: counts.errors,
    tool_errors: counts.toolErrors,
    timeouts: counts.timeouts,
    cache_hits: counts.hits + counts.staleHits,
    stale_hits: counts.staleHits,
    cache_misses: counts.misses,
    avg_latency_ms: total === 0 ? 0 : counts.sumMs / total,
    p50_latency_ms: percentileOf(histogram, 50, total),
    p95_latency_ms: percentileOf(histogram, 95, total),
    p99_latency_ms: percentileOf(histogram, 99, total),
    cache_hit_rate: lookups === 0 ? 0 : (counts.hits + counts.staleHits) / lookups,
    operations_per_second: spanMs <= 0 ? 0 : (total * 1000) / spanMs,
    error_rate: total === 0 ? 0 : counts.errors / total,
  };
}

/** One or more recorders summarised together (a gateway's upstreams; one factory). */
export function summarizeRecorders(
  recorders: Iterable<FactoryRecorder>,
  options: { window: boolean; windowMs?: number | undefined; filter?: SeriesFilter | undefined },
): PerformanceSummary & { span_ms: number } {
  const counts = new CallCounts();
  const histogram = new Float64Array(BUCKETS);
  let spanMs = 0;
  for (const recorder of recorders) {
    recorder.collect(counts, histogram, options);
    const span = options.window ? recorder.windowSpanMs(options.windowMs) : recorder.now() - recorder.startedAt;
    spanMs = Math.max(spanMs, span);
  }
  return { ...summarize(counts, histogram, spanMs), span_ms: spanMs };
}

/** The {@link ProxyStats} of one recorder. */
export function recorderStats(recorder: FactoryRecorder): ProxyStats {
  const { span_ms: elapsed, ...since } = summarizeRecorders([recorder], { window: false });
  const { span_ms: windowMs, ...window } = summarizeRecorders([recorder], { window: true });
  return { ...since, elapsed_ms: elapsed, window: { ...window, window_ms: windowMs } };
}

// -----------------------------------------------------------------------------------------------
// `factory.stats()`: one recorder hold per factory, taken at creation (`stats: true`) or on the
// first `stats()`, given back when the factory closes.

const statsHolds = new WeakSet<ProxyFactory>();

/** Starts recording `factory` for its `stats()` (idempotent). */
export function watchStats(factory: ProxyFactory, options?: RecorderOptions): FactoryRecorder {
  const recorder = acquireRecorder(factory, options);
  if (statsHolds.has(factory)) releaseRecorder(factory);
  else statsHolds.add(factory);
  return recorder;
}

/** Stops recording `factory` for `stats()` (when the factory closes). */
export function unwatchStats(factory: ProxyFactory): void {
  if (!statsHolds.delete(factory)) return;
  releaseRecorder(factory);
}

/** `factory.stats()`. */
export function factoryStats(factory: ProxyFactory): ProxyStats {
  return recorderStats(watchStats(factory));
}
