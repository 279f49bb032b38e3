/**
 * The one subscriber of `mcp-relay:call`: counts and times every operation of the factories
 * someone watches (for `factory.stats()`, a metrics registry, alerts, the dashboard), once per
 * event however many of those read it.
 *
 * Per event the work is a map lookup, a few increments and a `Math.log2`: a cache hit costs well
 * under a microsecond and the telemetry budget is 5 % of it (bench/suites/telemetry.ts). Nothing
 * is formatted, sorted or allocated; readers (a scrape, `stats()`, the alert engine) do the rest.
 *
 * Counts are kept since recording began and in a sliding window of slices (default 12 × 5 s). The
 * current slice follows the factory's clock (its `now` option, read through its cache): read on
 * every event that is not a fresh hit and on every read, never on a hit itself.
 */
import diagnosticsChannel from 'node:diagnostics_channel';

import { CALL_CHANNEL, type CallEvent } from '../proxy/events.js';
import type { ProxyFactory } from '../proxy/factory.js';
import { BUCKETS, bucketOf, PROM_BUCKETS_MS, promBucketOf } from './histogram.js';

/** Counters of a set of operations. */
export class CallCounts {
  calls = 0;
  /** Outcome `error`: thrown (transport, timeout, protocol, pool). */
  errors = 0;
  /** Outcome `tool_error`: the tool's own `isError: true` result. */
  toolErrors = 0;
  timeouts = 0;
  hits = 0;
  staleHits = 0;
  misses = 0;
  /** Calls that did not consult the cache. */
  uncached = 0;
  sumMs = 0;

  add(event: CallEvent): void {
    this.calls++;
    this.sumMs += event.durationMs;
    switch (event.cache) {
      case 'hit':
        this.hits++;
        return; // a fresh hit is always `ok`
      case 'stale':
        this.staleHits++;
        break;
      case 'miss':
        this.misses++;
        break;
      default:
        this.uncached++;
    }
    if (event.outcome === 'error') {
      this.errors++;
      if (event.errorCode === 'RELAY_TIMEOUT') this.timeouts++;
    } else if (event.outcome === 'tool_error') {
      this.toolErrors++;
    }
  }

  merge(other: CallCounts): void {
    this.calls += other.calls;
    this.errors += other.errors;
    this.toolErrors += other.toolErrors;
    this.timeouts += other.timeouts;
    this.hits += other.hits;
    this.staleHits += other.staleHits;
    this.misses += other.misses;
    this.uncached += other.uncached;
    this.sumMs += other.sumMs;
  }

  /** Takes `other` away (for counts derived as a remainder). */
  subtract(other: CallCounts): void {
    this.calls -= other.calls;
    this.errors -= other.errors;
    this.toolErrors -= other.toolErrors;
    this.timeouts -= other.timeouts;
    this.hits -= other.hits;
    this.staleHits -= other.staleHits;
    this.misses -= other.misses;
    this.uncached -= other.uncached;
    this.sumMs -= other.sumMs;
  }

  reset(): void {
    this.calls = this.errors = this.toolErrors = this.timeouts = 0;
    this.hits = this.staleHits = this.misses = this.uncached = 0;
    this.sumMs = 0;
  }
}

/** One slice of the sliding window: counts and latencies of the operations in it. */
class Slice extends CallCounts {
  epoch = -1;
  readonly histogram = new Uint32Array(BUCKETS);

  restart(epoch: number): void {
    this.epoch = epoch;
    this.reset();
    this.histogram.fill(0);
  }
}

/** The operations of one method and name (tool or prompt; `''` for the rest) of one factory. */
export class CallSeries {
  readonly method: string;
  readonly name: string;
  readonly total = new CallCounts();
  /** Since recording began, on the fine scale (see `histogram.ts`). */
  readonly histogram = new Uint32Array(BUCKETS);
  /** Since recording began, per Prometheus bucket (`PROM_BUCKETS_MS`, then +Inf); not cumulative. */
  readonly promBuckets = new Float64Array(PROM_BUCKETS_MS.length + 1);
  /** Errors by `RelayError` code. */
  readonly errorCodes = new Map<string, number>();
  /**
   * Per named tenant. Calls without a tenant (`''`, the common case) are not counted here: they
   * are `total` less these, worked out when read (see {@link mergedSeries}), one update less per hit.
   */
  readonly tenants = new Map<string, CallCounts>();
  readonly slices: Slice[];
  /** The bucket of the latest duration: untimed hits repeat it (see `CallClock`). */
  lastMs = Number.NaN;
  lastBucket = 0;
  lastPromBucket = 0;
  #tenantName: string | undefined;
  #tenant: CallCounts | undefined;

  constructor(method: string, name: string, slices: number) {
    this.method = method;
    this.name = name;
    this.slices = Array.from({ length: slices }, () => new Slice());
  }

  tenant(name: string): CallCounts {
    if (name === this.#tenantName) return this.#tenant!;
    // The gateway keys a `forward_auth` upstream's cache by `tenant\0identity`: count the tenant,
    // not one series per caller.
    const separator = name.indexOf('\u0000');
    const tenant = separator === -1 ? name : name.slice(0, separator);
    let counts = this.tenants.get(tenant);
    if (counts === undefined) {
      counts = new CallCounts();
      this.tenants.set(tenant, counts);
    }
    this.#tenantName = name;
    this.#tenant = counts;
    return counts;
  }
}

/** Which operations a reader wants: all of a factory's, or one method, or one method and name. */
export interface SeriesFilter {
  method?: string | undefined;
  name?: string | undefined;
}

export interface RecorderOptions {
  /** Length of the sliding window, in ms. Default 60 000. */
  windowMs?: number | undefined;
  /** Slices the window is kept in; the window moves one slice at a time. Default 12. */
  slices?: number | undefined;
}

/** What one factory's operations add up to, since recording began and over the window. */
export class FactoryRecorder {
  readonly factory: ProxyFactory;
  readonly windowMs: number;
  readonly sliceMs: number;
  /** On the factory's clock, in ms. */
  readonly startedAt: number;
  readonly #series = new Map<string, CallSeries>();
  readonly #slices: number;
  readonly #now: () => number;
  #last: CallSeries | undefined;
  #epoch = 0;
  #slot = 0;

  constructor(factory: ProxyFactory, options: RecorderOptions = {}) {
    const windowMs = options.windowMs ?? 60_000;
    const slices = options.slices ?? 12;
    if (!Number.isFinite(windowMs) || windowMs < slices) {
      throw new RangeError(`recorder windowMs must be at least ${slices} ms (one per slice), got ${windowMs}`);
    }
    this.factory = factory;
    this.windowMs = windowMs;
    this.#slices = slices;
    this.sliceMs = windowMs / slices;
    const cache = factory.cache;
    this.#now = cache === undefined ? Date.now : () => cache.now();
    this.startedAt = this.#now();
    this.sync();
  }

  /** The factory's clock, in ms. */
  now(): number {
    return this.#now();
  }

  /** Moves the window to the clock's current slice. */
  sync(): number {
    const now = this.#now();
    const epoch = Math.floor(now / this.sliceMs);
    if (epoch !== this.#epoch) {
      this.#epoch = epoch;
      this.#slot = epoch % this.#slices;
    }
    return now;
  }

  record(event: CallEvent): void {
    if (event.cache === 'hit') {
      this.#recordHit(event);
      return;
    }
    this.sync();
    const method = event.method;
    const name = method === 'tools/call' || method === 'prompts/get' ? event.name : '';
    let series = this.#last;
    if (series === undefined || series.method !== method || series.name !== name) {
      series = this.#seriesFor(method, name);
      this.#last = series;
    }
    const ms = event.durationMs;
    const bucket = bucketOf(ms);
    series.total.add(event);
    series.histogram[bucket]!++;
    series.promBuckets[promBucketOf(ms)]!++;
    const slice = series.slices[this.#slot]!;
    if (slice.epoch !== this.#epoch) slice.restart(this.#epoch);
    slice.add(event);
    slice.histogram[bucket]!++;
    if (event.tenant !== '') series.tenant(event.tenant).add(event);
    if (event.outcome === 'error') {
      const code = event.errorCode ?? 'RELAY_UNKNOWN';
      series.errorCodes.set(code, (series.errorCodes.get(code) ?? 0) + 1);
    }
  }

  /**
   * A fresh hit, the event of the cached path: the same counts as `record`, written out so that a
   * hit costs a few increments (the telemetry budget on that path is 5 %).
   */
  #recordHit(event: CallEvent): void {
    const method = event.method;
    const name = method === 'tools/call' || method === 'prompts/get' ? event.name : '';
    let series = this.#last;
    if (series === undefined || series.method !== method || series.name !== name) {
      series = this.#seriesFor(method, name);
      this.#last = series;
    }
    const ms = event.durationMs;
    if (ms !== series.lastMs) {
      series.lastMs = ms;
      series.lastBucket = bucketOf(ms);
      series.lastPromBucket = promBucketOf(ms);
    }
    const bucket = series.lastBucket;
    const total = series.total;
    total.calls++;
    total.hits++;
    total.sumMs += ms;
    series.histogram[bucket]!++;
    series.promBuckets[series.lastPromBucket]!++;
    const slice = series.slices[this.#slot]!;
    if (slice.epoch !== this.#epoch) slice.restart(this.#epoch);
    slice.calls++;
    slice.hits++;
    slice.sumMs += ms;
    slice.histogram[bucket]!++;
    if (event.tenant !== '') {
      const tenant = series.tenant(event.tenant);
      tenant.calls++;
      tenant.hits++;
      tenant.sumMs += ms;
    }
  }

  /** Every series recorded so far. */
  series(): IterableIterator<CallSeries> {
    return this.#series.values();
  }

  /**
   * Adds the matching series' counts and latencies since recording began (`window` false) or over
   * the last `windowMs` (at most the recorder's window) into `counts` and `histogram`.
   */
  collect(
    counts: CallCounts,
    histogram: Float64Array,
    options: { window: boolean; windowMs?: number | undefined; filter?: SeriesFilter | undefined },
  ): void {
    const filter = options.filter;
    if (options.window) this.sync();
    const oldest = this.#epoch - Math.max(1, Math.ceil((options.windowMs ?? this.windowMs) / this.sliceMs)) + 1;
    for (const series of this.#series.values()) {
      if (filter?.method !== undefined && series.method !== filter.method) continue;
      if (filter?.name !== undefined && series.name !== filter.name) continue;
      if (!options.window) {
        counts.merge(series.total);
        for (let i = 0; i < BUCKETS; i++) histogram[i]! += series.histogram[i]!;
        continue;
      }
      for (const slice of series.slices) {
        if (slice.epoch < oldest || slice.epoch > this.#epoch) continue;
        counts.merge(slice);
        const from = slice.histogram;
        for (let i = 0; i < BUCKETS; i++) histogram[i]! += from[i]!;
      }
    }
  }

  /** How much time the window covers now, in ms: less than `windowMs` just after recording began. */
  windowSpanMs(windowMs = this.windowMs): number {
    const now = this.sync();
    const slices = Math.max(1, Math.ceil(Math.min(windowMs, this.windowMs) / this.sliceMs));
    const covered = (slices - 1) * this.sliceMs + (now - this.#epoch * this.sliceMs);
    return Math.max(1, Math.min(covered, now - this.startedAt));
  }

  #seriesFor(method: string, name: string): CallSeries {
    const key = `${method}\u0000${name}`;
    let series = this.#series.get(key);
    if (series === undefined) {
      series = new CallSeries(method, name, this.#slices);
      this.#series.set(key, series);
    }
    return series;
  }
}

// -----------------------------------------------------------------------------------------------
// The dispatcher: one subscription for the process, routing each event to its factory's recorder.

const recorders = new Map<ProxyFactory, { recorder: FactoryRecorder; holders: number }>();
/** Asked about a factory nobody records yet; one that takes it acquires its recorder and says so. */
const adopters = new Set<(factory: ProxyFactory) => boolean>();
let subscribed = false;

/** The factory of the latest event and its recorder: a run of calls to one factory skips the map. */
let lastFactory: ProxyFactory | undefined;
let lastRecorder: FactoryRecorder | undefined;

function onCall(message: unknown): void {
  const event = message as CallEvent;
  if (event.factory === lastFactory) {
    lastRecorder!.record(event);
    return;
  }
  const entry = recorders.get(event.factory);
  if (entry !== undefined) {
    lastFactory = event.factory;
    lastRecorder = entry.recorder;
    entry.recorder.record(event);
    return;
  }
  if (adopters.size === 0) return;
  for (const adopt of adopters) {
    if (adopt(event.factory)) {
      recorders.get(event.factory)?.recorder.record(event);
      return;
    }
  }
}

function updateSubscription(): void {
  const wanted = recorders.size > 0 || adopters.size > 0;
  if (wanted && !subscribed) diagnosticsChannel.subscribe(CALL_CHANNEL, onCall);
  else if (!wanted && subscribed) diagnosticsChannel.unsubscribe(CALL_CHANNEL, onCall);
  subscribed = wanted;
}

/**
 * Calls `adopt` with each factory that publishes a call and has no recorder: a factory created
 * after the watching began (e.g. the gateway's second connection to an upstream for 2025
 * callers). `adopt` returns true once it has acquired the factory's recorder. Returns the removal.
 */
export function addAdopter(adopt: (factory: ProxyFactory) => boolean): () => void {
  adopters.add(adopt);
  updateSubscription();
  return () => {
    adopters.delete(adopt);
    updateSubscription();
  };
}

/**
 * The recorder of `factory`, created (and recording from now on) if nobody holds it yet. Each
 * acquire needs one {@link releaseRecorder}; the last release stops recording, and with no
 * recorder left the channel is unsubscribed, so unobserved factories pay nothing again.
 * `options` apply when this call creates the recorder.
 */
export function acquireRecorder(factory: ProxyFactory, options?: RecorderOptions): FactoryRecorder {
  let entry = recorders.get(factory);
  if (entry === undefined) {
    entry = { recorder: new FactoryRecorder(factory, options), holders: 0 };
    recorders.set(factory, entry);
    updateSubscription();
  }
  entry.holders++;
  return entry.recorder;
}

export function releaseRecorder(factory: ProxyFactory): void {
  const entry = recorders.get(factory);
  if (entry === undefined) return;
  if (--entry.holders > 0) return;
  recorders.delete(factory);
  if (lastFactory === factory) lastFactory = lastRecorder = undefined;
  updateSubscription();
}

/** The recorder of `factory` when someone holds one. */
export function recorderOf(factory: ProxyFactory): FactoryRecorder | undefined {
  return recorders.get(factory)?.recorder;
}

// -----------------------------------------------------------------------------------------------
// Readers: several factories may serve one upstream (the gateway's second, 2025 connection to an
// upstream it speaks 2026-07-28 to); they report as one.

/** The recorders by upstream name, in first-seen order. */
export function byUpstream(recorders: Iterable<FactoryRecorder>): Map<string, FactoryRecorder[]> {
  const groups = new Map<string, FactoryRecorder[]>();
  for (const recorder of recorders) {
    const name = recorder.factory.config.name;
    const group = groups.get(name);
    if (group === undefined) groups.set(name, [recorder]);
    else group.push(recorder);
  }
  return groups;
}

/** One upstream's operations of one method and name, added up over its factories; `tenants` includes `''`. */
export interface MergedSeries {
  upstream: string;
  method: string;
  name: string;
  total: CallCounts;
  promBuckets: Float64Array;
  errorCodes: Map<string, number>;
  tenants: Map<string, CallCounts>;
}

export function mergedSeries(recorders: Iterable<FactoryRecorder>): MergedSeries[] {
  const merged = new Map<string, MergedSeries>();
  for (const recorder of recorders) {
    const upstream = recorder.factory.config.name;
    for (const series of recorder.series()) {
      const key = `${upstream}\u0000${series.method}\u0000${series.name}`;
      let into = merged.get(key);
      if (into === undefined) {
        into = {
          upstream,
          method: series.method,
          name: series.name,
          total: new CallCounts(),
          promBuckets: new Float64Array(PROM_BUCKETS_MS.length + 1),
          errorCodes: new Map(),
          tenants: new Map(),
        };
        merged.set(key, into);
      }
      into.total.merge(series.total);
      for (let i = 0; i < into.promBuckets.length; i++) into.promBuckets[i]! += series.promBuckets[i]!;
      for (const [code, n] of series.errorCodes) into.errorCodes.set(code, (into.errorCodes.get(code) ?? 0) + n);
      const untenanted = new CallCounts();
      untenanted.merge(series.total);
      for (const [tenant, counts] of series.tenants) {
        untenanted.subtract(counts);
        let t = into.tenants.get(tenant);
        if (t === undefined) {
          t = new CallCounts();
          into.tenants.set(tenant, t);
        }
        t.merge(counts);
      }
      if (untenanted.calls > 0) {
        const t = into.tenants.get('');
        if (t === undefined) into.tenants.set('', untenanted);
        else t.merge(untenanted);
      }
    }
  }
  return [...merged.values()];
}
