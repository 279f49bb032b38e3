/**
 * One telemetry instance: the factories it watches, their metrics registry, resource monitor,
 * alerts, logs and (optionally) traces. The gateway makes one for its upstreams; a library user
 * makes one with {@link createTelemetry} and `watch()`es the factories they want measured.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { request } from 'undici';

import { CACHE_CHANNELS, type CacheInvalidateEvent } from '../cache/index.js';
import { callTracing, type CallTraceContext } from '../proxy/events.js';
import type { ProxyFactory } from '../proxy/factory.js';
import { AlertEngine, type Alert, type AlertEngineOptions } from './alerts.js';
import { createLogger, requestContext, type Logger, type LoggerOptions } from './logger.js';
import { RelayMetrics, utilization, type RelayMetricsOptions } from './metrics.js';
import {
  acquireRecorder,
  addAdopter,
  byUpstream,
  mergedSeries,
  releaseRecorder,
  type FactoryRecorder,
} from './recorder.js';
import { ResourceMonitor, type ResourceMonitorOptions, type ResourceSample } from './resources.js';
import { summarizeRecorders, type PerformanceSummary } from './stats.js';
import { RelayTracing, type TracingOptions } from './tracing.js';

export interface AlertWebhookOptions {
  /** Where firing and resolved alerts are POSTed as JSON. */
  url: string;
  headers?: Readonly<Record<string, string>> | undefined;
  /** Per POST, in ms. Default 5000. */
  timeoutMs?: number | undefined;
}

export interface TelemetryOptions {
  /** The Prometheus registry's options. */
  metrics?: RelayMetricsOptions | undefined;
  /** Thresholds, window, minimum samples, webhook. `false`: no alerts. */
  alerts?: (AlertEngineOptions & { webhook?: AlertWebhookOptions | undefined }) | false | undefined;
  /** Resource sampling. `false`: none. */
  resources?: ResourceMonitorOptions | false | undefined;
  /** Traces; off unless given. */
  tracing?: TracingOptions | false | undefined;
  /** A pino logger, or options for one. Default: JSON at `info` on standard error. */
  logger?: Logger | LoggerOptions | undefined;
  /** Window of the recorders this instance starts (per factory), in ms. Default 60 000. */
  windowMs?: number | undefined;
  /**
   * Watch factories created later, as their first call is published, when this says so (the
   * gateway adopts the second, 2025 connection it makes to an upstream for 2025 callers).
   */
  adopt?: ((factory: ProxyFactory) => boolean) | undefined;
}

/** One upstream as the dashboard and `/alerts` see it. */
export interface UpstreamSnapshot {
  name: string;
  totals: PerformanceSummary;
  window: PerformanceSummary & { span_ms: number };
  pool: { size: number; inUse: number; queued: number; utilization: number };
  breaker: string | undefined;
  ejected: boolean;
  healthy: boolean | undefined;
}

/** One tool or prompt (or an upstream's other operations, `name: ''`). */
export interface SeriesSnapshot {
  upstream: string;
  method: string;
  name: string;
  totals: PerformanceSummary;
  window: PerformanceSummary & { span_ms: number };
}

export interface TelemetrySnapshot {
  /** Wall clock, ms since the epoch. */
  at: number;
  totals: PerformanceSummary;
  window: PerformanceSummary & { span_ms: number };
  upstreams: UpstreamSnapshot[];
  series: SeriesSnapshot[];
  resources: ResourceSample | undefined;
  alerts: { firing: Alert[]; recent: Alert[] };
}

export class Telemetry implements AsyncDisposable {
  readonly metrics: RelayMetrics;
  readonly alerts: AlertEngine | undefined;
  readonly resources: ResourceMonitor | undefined;
  readonly tracing: RelayTracing | undefined;
  readonly logger: Logger;
  readonly windowMs: number;
  readonly #watched = new Map<ProxyFactory, FactoryRecorder>();
  readonly #webhook: AlertWebhookOptions | undefined;
  readonly #onError: (message: unknown) => void;
  readonly #onRemoteInvalidation: (message: unknown) => void;
  readonly #pendingWebhooks = new Set<Promise<void>>();
  readonly #stopAdopting: (() => void) | undefined;
  #closed = false;

  constructor(options: TelemetryOptions = {}) {
    this.windowMs = options.windowMs ?? 60_000;
    this.logger = isLogger(options.logger) ? options.logger : createLogger(options.logger);
    const source = {
      recorders: () => this.#watched.values(),
      resources: () => this.resources?.latest(),
      firingAlerts: () => this.alerts?.firing() ?? [],
    };
    this.metrics = new RelayMetrics(source, options.metrics);
    this.resources = options.resources === false ? undefined : new ResourceMonitor(options.resources);
    if (options.alerts !== false) {
      const { webhook, ...engine } = options.alerts ?? {};
      this.#webhook = webhook;
      this.alerts = new AlertEngine(source, { windowMs: this.windowMs, ...engine });
      this.alerts.on('firing', (alert) => this.#onAlert(alert));
      this.alerts.on('resolved', (alert) => this.#onAlert(alert));
    }
    this.tracing =
      options.tracing === undefined || options.tracing === false ? undefined : new RelayTracing(options.tracing);
    // Failed operations are logged as they fail (never hits: those cannot fail). The error channel
    // of the call TracingChannel fires only for operations that threw.
    this.#onError = (message) => {
      const ctx = message as CallTraceContext;
      if (!this.#watched.has(ctx.factory)) return;
      const error = ctx.error as { code?: unknown; message?: unknown } | undefined;
      this.logger.warn(
        {
          requestId: requestContext.getStore()?.requestId,
          upstream: ctx.upstream,
          method: ctx.method,
          name: ctx.name === '' ? undefined : ctx.name,
          tenant: ctx.tenant === '' ? undefined : ctx.tenant,
          code: typeof error?.code === 'string' ? error.code : 'RELAY_UNKNOWN',
        },
        typeof error?.message === 'string' ? error.message : 'operation failed',
      );
    };
    callTracing.error.subscribe(this.#onError);
    // When another replica's invalidation arrived (over Redis pub/sub), at debug level: how fast
    // invalidations spread across replicas can be read off the logs' timestamps.
    this.#onRemoteInvalidation = (message) => {
      const event = message as CacheInvalidateEvent;
      if (event.source !== 'remote' || !this.logger.isLevelEnabled('debug')) return;
      const { group, method, name, prefix, entries } = event;
      this.logger.debug({ group, method, name, prefix, entries }, 'cache invalidated by another process');
    };
    diagnosticsChannel.subscribe(CACHE_CHANNELS.invalidate, this.#onRemoteInvalidation);
    const adopt = options.adopt;
    this.#stopAdopting =
      adopt === undefined
        ? undefined
        : addAdopter((factory) => {
            if (this.#closed || !adopt(factory)) return false;
            this.watch(factory);
            return true;
          });
  }

  /** Starts resource sampling and alert evaluation (both on unref'd timers). */
  start(): this {
    this.resources?.start();
    this.resources?.sample();
    this.alerts?.start();
    return this;
  }

  /** Records `factory`'s operations from now on (idempotent). */
  watch(factory: ProxyFactory): this {
    if (this.#closed || this.#watched.has(factory)) return this;
    this.#watched.set(factory, acquireRecorder(factory, { windowMs: this.windowMs }));
    return this;
  }

  unwatch(factory: ProxyFactory): void {
    if (!this.#watched.delete(factory)) return;
    releaseRecorder(factory);
  }

  /** The factories watched. */
  factories(): ProxyFactory[] {
    return [...this.#watched.keys()];
  }

  /** Prometheus exposition text. */
  scrape(): Promise<string> {
    return this.metrics.metrics();
  }

  /**
   * The seed's summary over every watched factory, or those of one upstream: since recording
   * began (`window: false`) or over the window.
   */
  summary(options: { window: boolean; upstream?: string | undefined }): PerformanceSummary & { span_ms: number } {
    const recorders = [...this.#watched.values()].filter(
      (r) => options.upstream === undefined || r.factory.config.name === options.upstream,
    );
    return summarizeRecorders(recorders, { window: options.window, windowMs: this.windowMs });
  }

  /** Everything the dashboard shows, now. An upstream's factories report as one. */
  snapshot(): TelemetrySnapshot {
    const recorders = [...this.#watched.values()];
    const windowed = { window: true, windowMs: this.windowMs };
    const upstreams: UpstreamSnapshot[] = [];
    const series: SeriesSnapshot[] = [];
    for (const [name, group] of byUpstream(recorders)) {
      const factories = group.map((r) => r.factory);
      const pool = { size: 0, inUse: 0, queued: 0, utilization: utilization(factories) };
      for (const factory of factories) {
        pool.size += factory.upstream.load.capacity;
        pool.inUse += factory.upstream.load.inFlight;
        pool.queued += factory.upstream.load.queued;
      }
      upstreams.push({
        name,
        totals: summarizeRecorders(group, { window: false }),
        window: summarizeRecorders(group, windowed),
        pool,
        breaker: this.metrics.breakerState(name),
        ejected: this.metrics.isEjected(name),
        healthy: this.metrics.isHealthy(name),
      });
      for (const s of mergedSeries(group)) {
        const filter = { method: s.method, name: s.name };
        series.push({
          upstream: name,
          method: s.method,
          name: s.name,
          totals: summarizeRecorders(group, { window: false, filter }),
          window: summarizeRecorders(group, { ...windowed, filter }),
        });
      }
    }
    return {
      at: Date.now(),
      totals: summarizeRecorders(recorders, { window: false }),
      window: summarizeRecorders(recorders, windowed),
      upstreams,
      series,
      resources: this.resources?.latest(),
      alerts: { firing: this.alerts?.firing() ?? [], recent: this.alerts?.history() ?? [] },
    };
  }

  /** Resolves once every webhook POST under way has finished. */
  async flush(): Promise<void> {
    await Promise.all([...this.#pendingWebhooks]);
    await this.tracing?.flush();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    callTracing.error.unsubscribe(this.#onError);
    diagnosticsChannel.unsubscribe(CACHE_CHANNELS.invalidate, this.#onRemoteInvalidation);
    this.#stopAdopting?.();
    this.alerts?.stop();
    this.resources?.stop();
    for (const factory of [...this.#watched.keys()]) this.unwatch(factory);
    this.metrics.close();
    await this.flush();
    await this.tracing?.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #onAlert(alert: Alert): void {
    const fields = {
      alert: alert.id,
      rule: alert.rule,
      upstream: alert.upstream,
      value: alert.value,
      threshold: alert.threshold,
    };
    if (alert.status === 'firing') this.logger.warn(fields, `alert firing: ${alert.message}`);
    else this.logger.info(fields, `alert resolved: ${alert.message}`);
    const webhook = this.#webhook;
    if (webhook === undefined) return;
    const posted = this.#post(webhook, alert).finally(() => this.#pendingWebhooks.delete(posted));
    this.#pendingWebhooks.add(posted);
  }

  async #post(webhook: AlertWebhookOptions, alert: Alert): Promise<void> {
    const timeoutMs = webhook.timeoutMs ?? 5000;
    try {
      const response = await request(webhook.url, {
        method: 'POST',
        headers: { ...webhook.headers, 'content-type': 'application/json' },
        body: JSON.stringify({ source: 'mcp-relay', status: alert.status, alert }),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: AbortSignal.timeout(timeoutMs),
      });
      await response.body.dump();
      if (response.statusCode >= 300) {
        this.logger.warn(
          { alert: alert.id, status: response.statusCode },
          `alert webhook answered HTTP ${response.statusCode}`,
        );
      }
    } catch (error) {
      this.logger.warn(
        { alert: alert.id },
        `alert webhook failed: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }
}

/** A telemetry instance; call `start()` to sample resources and evaluate alerts. */
export function createTelemetry(options?: TelemetryOptions): Telemetry {
  return new Telemetry(options);
}

function isLogger(value: Logger | LoggerOptions | undefined): value is Logger {
  return typeof (value as Logger | undefined)?.child === 'function';
}
