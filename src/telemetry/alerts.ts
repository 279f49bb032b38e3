/**
 * Alerts from thresholds: the seed's `ALERT_THRESHOLDS` as defaults, evaluated per upstream over a
 * sliding window with a minimum sample count (so that three slow calls at midnight do not page
 * anyone), on an interval. Each rule and upstream is one alert that moves between `firing` and
 * `resolved`; transitions are emitted as events (the telemetry logs them and posts them to a
 * webhook) and kept for `/alerts` and the dashboard.
 */
import { EventEmitter } from 'node:events';

import { utilization } from './metrics.js';
import { byUpstream, type FactoryRecorder } from './recorder.js';
import type { ResourceSample } from './resources.js';
import { summarizeRecorders } from './stats.js';

/** The seed's `ALERT_THRESHOLDS`, in our names. `false` turns a rule off. */
export interface AlertThresholds {
  /** P95 latency above this, in ms. Seed: 500. */
  p95Ms: number | false;
  /** P99 latency above this, in ms. Seed: 1000. */
  p99Ms: number | false;
  /** Cache hit rate below this (0-1), among operations the cache was asked to answer. Seed: 0.7. */
  minCacheHitRate: number | false;
  /** Error rate above this (0-1). Seed: 0.05. */
  maxErrorRate: number | false;
  /** Pool use above this (0-1): calls holding a slot ÷ pool size. Seed: 0.9. */
  maxPoolUtilization: number | false;
  /** Memory use above this (0-1): of the cgroup limit, else of the machine. Seed: 0.8. */
  maxMemoryUsage: number | false;
}

/** The seed's values. */
export const SEED_ALERT_THRESHOLDS: Readonly<AlertThresholds> = Object.freeze({
  p95Ms: 500,
  p99Ms: 1000,
  minCacheHitRate: 0.7,
  maxErrorRate: 0.05,
  maxPoolUtilization: 0.9,
  maxMemoryUsage: 0.8,
});

export type AlertRule =
  | 'high_latency_p95'
  | 'high_latency_p99'
  | 'low_cache_hit_rate'
  | 'high_error_rate'
  | 'connection_pool_exhaustion'
  | 'memory_usage';

export interface Alert {
  /** `rule` or `rule:upstream`: stable across transitions. */
  id: string;
  rule: AlertRule;
  /** The upstream it concerns; absent for process-wide rules (memory). */
  upstream?: string | undefined;
  status: 'firing' | 'resolved';
  /** The measured value when it last changed state (ms for latency, 0-1 for rates). */
  value: number;
  threshold: number;
  /** Operations in the window behind the value (latency, rates). */
  samples?: number | undefined;
  /** Wall clock (ms since the epoch) when it began firing. */
  firedAt: number;
  resolvedAt?: number | undefined;
  message: string;
}

export interface AlertEngineOptions {
  thresholds?: Partial<AlertThresholds> | undefined;
  /** Window the latency and rate rules look at, in ms. Default 60 000 (capped by the recorders' windows). */
  windowMs?: number | undefined;
  /** Operations the window must hold before a latency or rate rule may fire. Default 20. */
  minSamples?: number | undefined;
  /** Evaluation interval, in ms, once started. Default 5000. */
  evaluateEveryMs?: number | undefined;
  /** Transitions kept for {@link AlertEngine.history}. Default 100. */
  keep?: number | undefined;
  /** Wall clock for `firedAt` / `resolvedAt`, in ms. Default `Date.now`. */
  now?: (() => number) | undefined;
}

export interface AlertSource {
  recorders(): Iterable<FactoryRecorder>;
  resources(): ResourceSample | undefined;
}

export interface AlertEvents {
  firing: [alert: Alert];
  resolved: [alert: Alert];
}

interface Verdict {
  rule: AlertRule;
  upstream?: string | undefined;
  /** Undefined: not enough samples to judge, which resolves a firing alert. */
  value: number | undefined;
  threshold: number;
  samples?: number | undefined;
  breached: boolean;
  describe(value: number): string;
}

export class AlertEngine extends EventEmitter<AlertEvents> {
  readonly thresholds: Readonly<AlertThresholds>;
  readonly windowMs: number;
  readonly minSamples: number;
  readonly evaluateEveryMs: number;
  readonly #source: AlertSource;
  readonly #keep: number;
  readonly #now: () => number;
  readonly #firing = new Map<string, Alert>();
  readonly #history: Alert[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(source: AlertSource, options: AlertEngineOptions = {}) {
    super();
    this.#source = source;
    this.thresholds = Object.freeze({ ...SEED_ALERT_THRESHOLDS, ...options.thresholds });
    this.windowMs = options.windowMs ?? 60_000;
    this.minSamples = options.minSamples ?? 20;
    this.evaluateEveryMs = options.evaluateEveryMs ?? 5000;
    this.#keep = options.keep ?? 100;
    this.#now = options.now ?? Date.now;
    if (!(this.windowMs > 0)) throw new RangeError(`AlertEngine windowMs must be positive, got ${this.windowMs}`);
    if (!Number.isInteger(this.minSamples) || this.minSamples < 1) {
      throw new RangeError(`AlertEngine minSamples must be an integer of at least 1, got ${this.minSamples}`);
    }
  }

  /** Evaluates on the interval; the timer does not keep the process alive. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.evaluate(), this.evaluateEveryMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Evaluates every rule now; returns the alerts that changed state (and emits them). */
  evaluate(): Alert[] {
    const changed: Alert[] = [];
    const seen = new Set<string>();
    for (const verdict of this.#verdicts()) {
      const id = verdict.upstream === undefined ? verdict.rule : `${verdict.rule}:${verdict.upstream}`;
      seen.add(id);
      const current = this.#firing.get(id);
      if (verdict.breached && current === undefined) {
        const alert: Alert = {
          id,
          rule: verdict.rule,
          upstream: verdict.upstream,
          status: 'firing',
          value: verdict.value!,
          threshold: verdict.threshold,
          samples: verdict.samples,
          firedAt: this.#now(),
          message: verdict.describe(verdict.value!),
        };
        this.#firing.set(id, alert);
        changed.push(alert);
      } else if (verdict.breached && current !== undefined) {
        current.value = verdict.value!;
        current.samples = verdict.samples;
        current.message = verdict.describe(verdict.value!);
      } else if (!verdict.breached && current !== undefined) {
        changed.push(this.#resolve(current, verdict));
      }
    }
    // An upstream that went away (or a rule turned off) cannot keep an alert firing.
    for (const [id, alert] of this.#firing) {
      if (!seen.has(id)) changed.push(this.#resolve(alert, undefined));
    }
    for (const alert of changed) {
      this.#history.unshift({ ...alert });
      if (this.#history.length > this.#keep) this.#history.pop();
      this.emit(alert.status, { ...alert });
    }
    return changed;
  }

  /** Alerts firing now. */
  firing(): Alert[] {
    return [...this.#firing.values()].map((alert) => ({ ...alert }));
  }

  /** Recent transitions, newest first. */
  history(): Alert[] {
    return this.#history.map((alert) => ({ ...alert }));
  }

  #resolve(alert: Alert, verdict: Verdict | undefined): Alert {
    this.#firing.delete(alert.id);
    const value = verdict?.value;
    return {
      ...alert,
      status: 'resolved',
      value: value ?? alert.value,
      samples: verdict?.samples,
      resolvedAt: this.#now(),
      message:
        verdict === undefined
          ? `${alert.message}: resolved (no longer evaluated)`
          : value === undefined
            ? `${describeScope(alert.upstream)}${RULE_LABEL[alert.rule]}: resolved, fewer than ${this.minSamples} operations in the last ${seconds(this.windowMs)}`
            : `${verdict.describe(value)}: resolved`,
    };
  }

  *#verdicts(): Generator<Verdict> {
    const t = this.thresholds;
    const window = `the last ${seconds(this.windowMs)}`;
    for (const [upstream, group] of byUpstream(this.#source.recorders())) {
      const factories = group.map((r) => r.factory);
      const scope = describeScope(upstream);
      const summary = summarizeRecorders(group, { window: true, windowMs: this.windowMs });
      const calls = summary.total_operations;
      const enough = calls >= this.minSamples;
      // The three "too high" rules differ only in their metric and wording.
      const tooHigh = (
        rule: 'high_latency_p95' | 'high_latency_p99' | 'high_error_rate',
        threshold: number,
        metric: number,
        describe: (v: number) => string,
      ): Verdict => {
        const value = enough ? metric : undefined;
        return {
          rule,
          upstream,
          value,
          threshold,
          samples: calls,
          breached: value !== undefined && value > threshold,
          describe,
        };
      };
      const over = `over ${window} (${calls} operations), threshold`;
      if (t.p95Ms !== false) {
        const threshold = t.p95Ms;
        yield tooHigh(
          'high_latency_p95',
          threshold,
          summary.p95_latency_ms,
          (v) => `${scope}P95 latency ${ms(v)} ${over} ${ms(threshold)}`,
        );
      }
      if (t.p99Ms !== false) {
        const threshold = t.p99Ms;
        yield tooHigh(
          'high_latency_p99',
          threshold,
          summary.p99_latency_ms,
          (v) => `${scope}P99 latency ${ms(v)} ${over} ${ms(threshold)}`,
        );
      }
      if (t.maxErrorRate !== false) {
        const threshold = t.maxErrorRate;
        yield tooHigh(
          'high_error_rate',
          threshold,
          summary.error_rate,
          (v) => `${scope}error rate ${percent(v)} ${over} ${percent(threshold)}`,
        );
      }
      if (t.minCacheHitRate !== false && factories.some((f) => f.cache !== undefined)) {
        const threshold = t.minCacheHitRate;
        const lookups = summary.cache_hits + summary.cache_misses;
        const value = lookups >= this.minSamples ? summary.cache_hit_rate : undefined;
        yield {
          rule: 'low_cache_hit_rate',
          upstream,
          value,
          threshold,
          samples: lookups,
          breached: value !== undefined && value < threshold,
          describe: (v) =>
            `${scope}cache hit rate ${percent(v)} over ${window} (${lookups} cacheable operations), threshold ${percent(threshold)}`,
        };
      }
      if (t.maxPoolUtilization !== false) {
        const threshold = t.maxPoolUtilization;
        const load = { inFlight: 0, queued: 0, capacity: 0 };
        for (const factory of factories) {
          load.inFlight += factory.upstream.load.inFlight;
          load.queued += factory.upstream.load.queued;
          load.capacity += factory.upstream.load.capacity;
        }
        const value = utilization(factories);
        yield {
          rule: 'connection_pool_exhaustion',
          upstream,
          value,
          threshold,
          breached: value > threshold,
          describe: (v) =>
            `${scope}connection pool ${percent(v)} in use (${load.inFlight} of ${load.capacity}, ${load.queued} queued), threshold ${percent(threshold)}`,
        };
      }
    }
    const resources = this.#source.resources();
    if (t.maxMemoryUsage !== false && resources !== undefined) {
      const threshold = t.maxMemoryUsage;
      yield {
        rule: 'memory_usage',
        value: resources.memoryRatio,
        threshold,
        breached: resources.memoryRatio > threshold,
        describe: (v) => `memory ${percent(v)} in use, threshold ${percent(threshold)}`,
      };
    }
  }
}

const RULE_LABEL: Record<AlertRule, string> = {
  high_latency_p95: 'P95 latency',
  high_latency_p99: 'P99 latency',
  low_cache_hit_rate: 'cache hit rate',
  high_error_rate: 'error rate',
  connection_pool_exhaustion: 'connection pool',
  memory_usage: 'memory',
};

function describeScope(upstream: string | undefined): string {
  return upstream === undefined ? '' : `upstream '${upstream}': `;
}

function ms(value: number): string {
  return `${value < 10 ? value.toFixed(2) : Math.round(value)} ms`;
}

function percent(value: number): string {
  return `${(value * 100).toFixed(1)} %`;
}

function seconds(value: number): string {
  return `${Math.round(value / 100) / 10} s`;
}
