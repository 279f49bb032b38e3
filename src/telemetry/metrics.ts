/**
 * The Prometheus registry of one telemetry instance (prom-client). Call counts and latencies are
 * read from the recorders when scraped, never written per call: the hot path publishes events and
 * the recorder adds them up (see `recorder.ts`). Pool, cache size and resource gauges are read at
 * scrape too. Only the rare events (cache stores and evictions, breaker changes, ejections,
 * retries) update prom-client counters as they happen.
 */
import diagnosticsChannel from 'node:diagnostics_channel';

import { collectDefaultMetrics, Counter, Gauge, Registry, type Metric } from 'prom-client';

import { CACHE_CHANNELS, type CacheEvictEvent, type CacheInvalidateEvent, type CacheL2Event } from '../cache/index.js';
import type { CacheStoreEvent } from '../cache/index.js';
import type { ProxyFactory } from '../proxy/factory.js';
import { PROM_BUCKETS_MS } from './histogram.js';
import { byUpstream, mergedSeries, type CallCounts, type FactoryRecorder } from './recorder.js';
import type { ResourceSample } from './resources.js';

/** Channels of the balancing and resilience layers, by name: subscribed without importing them. */
export const RESILIENCE_CHANNELS = {
  breaker: 'mcp-relay:resilience:breaker',
  retry: 'mcp-relay:resilience:retry',
  health: 'mcp-relay:balance:health',
} as const;

/** What the registry reads when scraped. */
export interface MetricsSource {
  recorders(): Iterable<FactoryRecorder>;
  resources(): ResourceSample | undefined;
  firingAlerts(): Iterable<{ rule: string; upstream?: string | undefined }>;
}

interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

type MetricKind = 'counter' | 'gauge' | 'histogram';

/**
 * A metric whose samples are computed when scraped. prom-client's own classes hold their values;
 * this one asks `collect` each time, in the shape the registry reads (`get()`).
 */
class CollectedMetric {
  readonly name: string;
  readonly help: string;
  readonly type: MetricKind;
  readonly aggregator = 'sum';
  readonly #collect: () => Sample[];

  constructor(name: string, help: string, type: MetricKind, collect: () => Sample[]) {
    this.name = name;
    this.help = help;
    this.type = type;
    this.#collect = collect;
  }

  get(): Promise<{ name: string; help: string; type: MetricKind; values: Sample[]; aggregator: string }> {
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      values: this.#collect(),
      aggregator: this.aggregator,
    });
  }

  reset(): void {}
}

export interface RelayMetricsOptions {
  /** Prefix of every metric name. Default `mcp_relay_`. */
  prefix?: string | undefined;
  /** Also export prom-client's default process and Node.js metrics (`process_*`, `nodejs_*`). Default true. */
  defaultMetrics?: boolean | undefined;
}

/** The registry and the subscriptions feeding its event counters; `close()` unsubscribes. */
export class RelayMetrics {
  readonly registry = new Registry();
  readonly #unsubscribe: (() => void)[] = [];
  readonly #breakers = new Map<string, string>();
  readonly #ejectedUntil = new Map<string, number>();
  readonly #healthy = new Map<string, boolean>();

  constructor(source: MetricsSource, options: RelayMetricsOptions = {}) {
    const p = options.prefix ?? 'mcp_relay_';
    const registry = this.registry;
    const add = (name: string, help: string, type: MetricKind, collect: () => Sample[]) =>
      registry.registerMetric(new CollectedMetric(p + name, help, type, collect) as unknown as Metric);

    // --- calls, from the recorders (an upstream's factories added up) ---------------------------
    const perSeries = (pick: (counts: CallCounts) => number, byTenant: boolean) => (): Sample[] => {
      const samples: Sample[] = [];
      for (const series of mergedSeries(source.recorders())) {
        const labels = { upstream: series.upstream, method: series.method, name: series.name };
        if (!byTenant) {
          samples.push({ labels, value: pick(series.total) });
          continue;
        }
        for (const [tenant, counts] of series.tenants)
          samples.push({ labels: { ...labels, tenant }, value: pick(counts) });
      }
      return samples;
    };
    add(
      'call_duration_seconds',
      'Latency of operations through the relay (cache hits included), by upstream, method and tool or prompt name.',
      'histogram',
      () => {
        const samples: Sample[] = [];
        for (const series of mergedSeries(source.recorders())) {
          const base = { upstream: series.upstream, method: series.method, name: series.name };
          let cumulative = 0;
          PROM_BUCKETS_MS.forEach((bound, i) => {
            cumulative += series.promBuckets[i]!;
            samples.push({
              metricName: `${p}call_duration_seconds_bucket`,
              labels: { ...base, le: bound / 1000 },
              value: cumulative,
            });
          });
          cumulative += series.promBuckets[PROM_BUCKETS_MS.length]!;
          samples.push({
            metricName: `${p}call_duration_seconds_bucket`,
            labels: { ...base, le: '+Inf' },
            value: cumulative,
          });
          samples.push({ metricName: `${p}call_duration_seconds_sum`, labels: base, value: series.total.sumMs / 1000 });
          samples.push({ metricName: `${p}call_duration_seconds_count`, labels: base, value: series.total.calls });
        }
        return samples;
      },
    );
    add(
      'calls_total',
      'Operations through the relay, by upstream, method, name and tenant.',
      'counter',
      perSeries((c) => c.calls, true),
    );
    add(
      'call_errors_total',
      'Operations that failed with an error (not a tool error result), by tenant.',
      'counter',
      perSeries((c) => c.errors, true),
    );
    add('call_errors_by_code_total', 'Operations that failed with an error, by RelayError code.', 'counter', () =>
      mergedSeries(source.recorders()).flatMap((series) =>
        [...series.errorCodes].map(([code, value]) => ({
          labels: { upstream: series.upstream, method: series.method, name: series.name, code },
          value,
        })),
      ),
    );
    add(
      'call_tool_errors_total',
      "Tool results with isError: true (the tool's own failure), by tenant.",
      'counter',
      perSeries((c) => c.toolErrors, true),
    );
    add(
      'call_timeouts_total',
      'Operations that failed with RELAY_TIMEOUT, by tenant.',
      'counter',
      perSeries((c) => c.timeouts, true),
    );
    add(
      'cache_requests_total',
      'Operations the cache was asked to answer, by result: hit (memory or Redis), stale (served while revalidating) or miss; counted, not inferred from latency.',
      'counter',
      () => {
        const samples: Sample[] = [];
        for (const series of mergedSeries(source.recorders())) {
          for (const [tenant, counts] of series.tenants) {
            if (counts.hits + counts.staleHits + counts.misses === 0) continue;
            const labels = { upstream: series.upstream, method: series.method, name: series.name, tenant };
            samples.push({ labels: { ...labels, result: 'hit' }, value: counts.hits });
            samples.push({ labels: { ...labels, result: 'stale' }, value: counts.staleHits });
            samples.push({ labels: { ...labels, result: 'miss' }, value: counts.misses });
          }
        }
        return samples;
      },
    );

    // --- cache size, pools, from the factories (an upstream's factories added up) ---------------
    const perFactory = (pick: (factory: ProxyFactory) => number | undefined) => (): Sample[] => {
      const samples: Sample[] = [];
      for (const [upstream, group] of byUpstream(source.recorders())) {
        let value: number | undefined;
        for (const recorder of group) {
          const v = pick(recorder.factory);
          if (v !== undefined) value = (value ?? 0) + v;
        }
        if (value !== undefined) samples.push({ labels: { upstream }, value });
      }
      return samples;
    };
    add(
      'cache_entries',
      'Entries in the memory tier of the cache.',
      'gauge',
      perFactory((f) => f.cache?.stats().entries),
    );
    add(
      'cache_bytes',
      'Estimated bytes held in the memory tier of the cache.',
      'gauge',
      perFactory((f) => f.cache?.stats().bytes),
    );
    add(
      'pool_size',
      'Connection pool capacity: HTTP connections or stdio in-flight slots.',
      'gauge',
      perFactory((f) => f.upstream.load.capacity),
    );
    add(
      'pool_in_use',
      'Calls holding a pool slot.',
      'gauge',
      perFactory((f) => f.upstream.load.inFlight),
    );
    add(
      'pool_queued',
      'Calls waiting for a free pool slot.',
      'gauge',
      perFactory((f) => f.upstream.load.queued),
    );
    add('pool_utilization', 'pool_in_use / pool_size (0-1).', 'gauge', () =>
      [...byUpstream(source.recorders())].map(([upstream, group]) => ({
        labels: { upstream },
        value: utilization(group.map((r) => r.factory)),
      })),
    );

    // --- cache events (process-wide: the events do not name their cache) ----------------------
    const stored = new Counter({
      name: `${p}cache_stores_total`,
      help: 'Responses stored in the cache, by category.',
      labelNames: ['category'],
      registers: [registry],
    });
    const storedBytes = new Counter({
      name: `${p}cache_stored_bytes_total`,
      help: 'Bytes of responses stored in the cache, by category.',
      labelNames: ['category'],
      registers: [registry],
    });
    const evicted = new Counter({
      name: `${p}cache_evictions_total`,
      help: 'Entries evicted to respect cache_size or cache_max_bytes, by category.',
      labelNames: ['category'],
      registers: [registry],
    });
    const evictedBytes = new Counter({
      name: `${p}cache_evicted_bytes_total`,
      help: 'Bytes evicted, by category.',
      labelNames: ['category'],
      registers: [registry],
    });
    const invalidated = new Counter({
      name: `${p}cache_invalidated_entries_total`,
      help: 'Entries dropped by invalidation, by source (notification, api, remote).',
      labelNames: ['source'],
      registers: [registry],
    });
    const l2Up = new Gauge({
      name: `${p}cache_l2_up`,
      help: '1 while the shared (Redis) tier is reachable, 0 while it is down; absent without one.',
      registers: [registry],
    });
    this.#on(CACHE_CHANNELS.store, (e: CacheStoreEvent) => {
      stored.inc({ category: e.category });
      storedBytes.inc({ category: e.category }, e.bytes);
    });
    this.#on(CACHE_CHANNELS.evict, (e: CacheEvictEvent) => {
      evicted.inc({ category: e.category });
      evictedBytes.inc({ category: e.category }, e.bytes);
    });
    this.#on(CACHE_CHANNELS.invalidate, (e: CacheInvalidateEvent) => {
      if (e.entries > 0) invalidated.inc({ source: e.source }, e.entries);
    });
    this.#on(CACHE_CHANNELS.l2, (e: CacheL2Event) => l2Up.set(e.state === 'up' ? 1 : 0));

    // --- breakers, ejections, retries (published by src/resilience and src/balance) -------------
    const breakerChanges = new Counter({
      name: `${p}breaker_transitions_total`,
      help: 'Circuit breaker state changes, by upstream and new state.',
      labelNames: ['upstream', 'state'],
      registers: [registry],
    });
    const ejections = new Counter({
      name: `${p}ejections_total`,
      help: 'Upstreams ejected by outlier detection.',
      labelNames: ['upstream'],
      registers: [registry],
    });
    const retries = new Counter({
      name: `${p}retries_total`,
      help: 'Retried upstream attempts, by upstream and method.',
      labelNames: ['upstream', 'method'],
      registers: [registry],
    });
    this.#on(RESILIENCE_CHANNELS.breaker, (e: { upstream: string; to: string }) => {
      this.#breakers.set(e.upstream, e.to);
      breakerChanges.inc({ upstream: e.upstream, state: e.to });
    });
    this.#on(RESILIENCE_CHANNELS.health, (e: { kind: string; upstream: string; forMs?: number; healthy?: boolean }) => {
      if (e.kind === 'ejected') {
        ejections.inc({ upstream: e.upstream });
        this.#ejectedUntil.set(e.upstream, performance.now() + (e.forMs ?? 0));
      } else if (e.kind === 'health' && typeof e.healthy === 'boolean') {
        this.#healthy.set(e.upstream, e.healthy);
      }
    });
    this.#on(RESILIENCE_CHANNELS.retry, (e: { upstream: string; method: string }) => {
      retries.inc({ upstream: e.upstream, method: e.method });
    });
    add(
      'breaker_state',
      'Circuit breaker state per upstream: 1 on the current state (closed, half-open, open).',
      'gauge',
      () =>
        [...this.#breakers].flatMap(([upstream, current]) =>
          ['closed', 'half-open', 'open'].map((state) => ({
            labels: { upstream, state },
            value: state === current ? 1 : 0,
          })),
        ),
    );
    add('upstream_ejected', '1 while outlier detection keeps the upstream ejected.', 'gauge', () => {
      const now = performance.now();
      return [...this.#ejectedUntil].map(([upstream, until]) => ({ labels: { upstream }, value: now < until ? 1 : 0 }));
    });
    add('upstream_healthy', 'Active health probes: 1 healthy, 0 down.', 'gauge', () =>
      [...this.#healthy].map(([upstream, healthy]) => ({ labels: { upstream }, value: healthy ? 1 : 0 })),
    );

    // --- resources and alerts ---------------------------------------------------------------------
    const resource = (pick: (sample: ResourceSample) => number | undefined) => (): Sample[] => {
      const sample = source.resources();
      const value = sample === undefined ? undefined : pick(sample);
      return value === undefined || !Number.isFinite(value) ? [] : [{ labels: {}, value }];
    };
    add(
      'process_cpu_ratio',
      'CPU time of this process over the last sampling interval, per wall time (1 = one core busy).',
      'gauge',
      resource((s) => s.processCpu),
    );
    add(
      'system_cpu_ratio',
      'Busy share of all CPUs over the last sampling interval (0-1).',
      'gauge',
      resource((s) => s.systemCpu),
    );
    add(
      'memory_usage_ratio',
      'Memory in use: of the cgroup limit when there is one, else of the machine (0-1).',
      'gauge',
      resource((s) => s.memoryRatio),
    );
    add(
      'event_loop_delay_p99_seconds',
      'P99 event-loop delay over the last sampling interval.',
      'gauge',
      resource((s) => s.eventLoopDelayP99Ms / 1000),
    );
    add(
      'open_connections',
      'Inbound connections open to the gateway.',
      'gauge',
      resource((s) => s.openConnections),
    );
    add(
      'child_processes',
      'Child processes of stdio upstreams.',
      'gauge',
      resource((s) => s.childProcesses),
    );
    add('alert_firing', '1 for each alert that is firing.', 'gauge', () =>
      [...source.firingAlerts()].map((alert) => ({
        labels: { alert: alert.rule, upstream: alert.upstream ?? '' },
        value: 1,
      })),
    );

    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  }

  /** The exposition text of every metric. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  /** The breaker state of an upstream as last published; undefined before any change. */
  breakerState(upstream: string): string | undefined {
    return this.#breakers.get(upstream);
  }

  /** Whether outlier detection keeps the upstream ejected now. */
  isEjected(upstream: string): boolean {
    return performance.now() < (this.#ejectedUntil.get(upstream) ?? 0);
  }

  /** What active probes last said; undefined without probes. */
  isHealthy(upstream: string): boolean | undefined {
    return this.#healthy.get(upstream);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  close(): void {
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    this.#unsubscribe.length = 0;
  }

  #on<T>(name: string, listener: (event: T) => void): void {
    const wrapped = (message: unknown): void => listener(message as T);
    diagnosticsChannel.subscribe(name, wrapped);
    this.#unsubscribe.push(() => diagnosticsChannel.unsubscribe(name, wrapped));
  }
}

/** Calls holding a pool slot ÷ pool size (0-1), over one upstream's factories. */
export function utilization(factories: readonly ProxyFactory[]): number {
  let inFlight = 0;
  let capacity = 0;
  for (const factory of factories) {
    const load = factory.upstream.load;
    inFlight += load.inFlight;
    capacity += load.capacity;
  }
  return capacity > 0 ? inFlight / capacity : 0;
}
