/**
 * The `alerts:` and `telemetry:` sections: the thresholds the gateway alerts on (the seed's
 * `ALERT_THRESHOLDS` as defaults, in the seed's own names), and what it measures and exposes
 * (metrics, dashboard, logs, traces). Keys as in the file (snake_case); the resolved form is
 * camelCase with units in the names.
 */
import * as z from 'zod';

import { duration, MAX_TIMER_MS } from './duration.js';

const ratio = (what: string) =>
  z.union(
    [
      z
        .number({ error: `expected ${what} from 0 to 1, or false to turn the rule off` })
        .min(0)
        .max(1),
      z.literal(false),
    ],
    {
      error: `expected ${what} from 0 to 1, or false to turn the rule off`,
    },
  );

const latency = z.union([z.number().positive(), z.literal(false)], {
  error: 'expected a latency in ms greater than 0, or false to turn the rule off',
});

/** The seed's `ALERT_THRESHOLDS`, as it writes them. */
export const ALERT_THRESHOLD_DEFAULTS = Object.freeze({
  high_latency: Object.freeze({ p95_ms: 500, p99_ms: 1000 }),
  low_cache_hit_rate: 0.7,
  high_error_rate: 0.05,
  connection_pool_exhaustion: 0.9,
  memory_usage: 0.8,
});

export const alertThresholdsShape = {
  high_latency: z
    .strictObject(
      {
        p95_ms: latency
          .optional()
          .meta({ description: 'Alert when P95 latency over the window is above this, in ms. Default 500.' }),
        p99_ms: latency
          .optional()
          .meta({ description: 'Alert when P99 latency over the window is above this, in ms. Default 1000.' }),
      },
      { error: 'expected a map with p95_ms and/or p99_ms' },
    )
    .optional()
    .meta({
      description: 'Latency thresholds per upstream, in ms (the seed: P95 500, P99 1000). false turns one off.',
    }),
  low_cache_hit_rate: ratio('a hit rate').optional().meta({
    description:
      'Alert when the cache hit rate over the window falls below this (0-1), counted among operations the cache was asked to answer. Default 0.7.',
  }),
  high_error_rate: ratio('an error rate').optional().meta({
    description:
      "Alert when the share of operations that failed (not a tool's own isError result) over the window is above this (0-1). Default 0.05.",
  }),
  connection_pool_exhaustion: ratio('a share of the pool')
    .optional()
    .meta({ description: "Alert when this share of an upstream's connection pool is in use (0-1). Default 0.9." }),
  memory_usage: ratio('a share of memory').optional().meta({
    description:
      "Alert when memory in use is above this share (0-1): of the container's cgroup limit when there is one, else of the machine. Default 0.8.",
  }),
};

export const alertWebhookShape = {
  url: z
    .url({ error: 'expected an http(s) URL' })
    .meta({ description: 'Where firing and resolved alerts are POSTed as JSON.' }),
  headers: z
    .record(z.string(), z.string({ error: 'expected a string' }), { error: 'expected a map of header name to value' })
    .optional()
    .meta({ description: 'Sent with every POST (e.g. a token: write ${ENV_VAR}). Their values never appear in logs.' }),
  timeout: duration({ minMs: 1, maxMs: MAX_TIMER_MS })
    .optional()
    .meta({ description: 'How long one POST may take. Default 5 s.', default: 5 }),
};

export const alertsSectionShape = {
  enabled: z
    .boolean({ error: 'expected true or false' })
    .optional()
    .meta({ description: 'Evaluate alerts. Default true.', default: true }),
  thresholds: z
    .strictObject(alertThresholdsShape, {
      error: 'expected a map of thresholds (high_latency, low_cache_hit_rate, ...)',
    })
    .optional()
    .meta({ description: "The seed's ALERT_THRESHOLDS; each defaults to the seed's value." }),
  window: duration({ minMs: 1000, maxMs: 60 * 60_000 })
    .optional()
    .meta({ description: 'The sliding window latency and rates are judged over. Default 60 s.', default: 60 }),
  min_samples: z
    .int({ error: 'expected an integer of at least 1' })
    .min(1, { error: 'expected an integer of at least 1' })
    .optional()
    .meta({
      description:
        'Operations the window must hold before a latency or rate alert may fire; with fewer, a firing one resolves. Default 20.',
      default: 20,
    }),
  evaluate_every: duration({ minMs: 100, maxMs: MAX_TIMER_MS })
    .optional()
    .meta({ description: 'How often alerts are evaluated. Default 5 s.', default: 5 }),
  webhook: z
    .strictObject(alertWebhookShape, { error: 'expected a map with url (and headers, timeout)' })
    .optional()
    .meta({ description: 'POST each firing and resolved alert as JSON here. Failures are logged, never retried.' }),
};

export const alertsSectionSchema = z.strictObject(alertsSectionShape, {
  error: 'expected a map of alert settings (thresholds, window, min_samples, webhook)',
});
export type AlertsSection = z.output<typeof alertsSectionSchema>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const TRACE_EXPORTERS = ['none', 'console', 'otlp', 'global'] as const;

export const loggingShape = {
  level: z
    .enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.map((l) => `"${l}"`).join(', ')}` })
    .optional()
    .meta({ description: 'pino log level; logs are JSON lines on standard error. Default "info".', default: 'info' }),
  requests: z.boolean({ error: 'expected true or false' }).optional().meta({
    description: 'One line per HTTP request (request id, method, path, status, duration). Default false.',
    default: false,
  }),
  redact_headers: z.array(z.string().min(1), { error: 'expected a list of header names' }).optional().meta({
    description:
      'Header names whose values are never logged, besides authorization, proxy-authorization, cookie, set-cookie and x-api-key. Every configured token, key and secret header value is also removed from every line.',
  }),
};

export const tracingShape = {
  exporter: z
    .enum(TRACE_EXPORTERS, { error: `expected one of ${TRACE_EXPORTERS.map((e) => `"${e}"`).join(', ')}` })
    .optional()
    .meta({
      description:
        'Where OpenTelemetry spans go: "none" (default: no tracing), "console", "otlp" (OTLP/HTTP JSON to endpoint), or "global" (the OpenTelemetry API\'s registered provider).',
      default: 'none',
    }),
  endpoint: z
    .url({ error: 'expected an http(s) URL' })
    .optional()
    .meta({ description: 'OTLP/HTTP traces endpoint. Default http://127.0.0.1:4318/v1/traces.' }),
  headers: z
    .record(z.string(), z.string(), { error: 'expected a map of header name to value' })
    .optional()
    .meta({ description: 'Sent with every OTLP request.' }),
  service_name: z.string().min(1).optional().meta({ description: 'service.name of the spans. Default "mcp-relay".' }),
  sample_ratio: z
    .number({ error: 'expected a number from 0 to 1' })
    .min(0)
    .max(1)
    .optional()
    .meta({ description: 'Share of operations traced (0-1). Default 1.', default: 1 }),
};

export const telemetrySectionShape = {
  metrics: z
    .boolean({ error: 'expected true or false' })
    .optional()
    .meta({ description: 'Serve Prometheus metrics at /metrics. Default true.', default: true }),
  default_metrics: z
    .boolean({ error: 'expected true or false' })
    .optional()
    .meta({ description: "Include prom-client's process_* and nodejs_* metrics. Default true.", default: true }),
  dashboard: z.boolean({ error: 'expected true or false' }).optional().meta({
    description: 'Serve the live dashboard at / (and its feed at /dashboard/events). Default true.',
    default: true,
  }),
  public: z.boolean({ error: 'expected true or false' }).optional().meta({
    description:
      'Serve /metrics, /alerts and the dashboard to clients on other machines too. Default false: only to clients on this machine (loopback), since they name upstreams, tools and tenants. Use it behind your own access control, e.g. for a Prometheus scraper.',
    default: false,
  }),
  resource_interval: duration({ minMs: 100, maxMs: MAX_TIMER_MS }).optional().meta({
    description: 'How often CPU, memory, event-loop delay, connections and child processes are sampled. Default 1 s.',
    default: 1,
  }),
  logging: z
    .strictObject(loggingShape, { error: 'expected a map of logging settings (level, requests, redact_headers)' })
    .optional()
    .meta({ description: 'JSON logs (pino).' }),
  tracing: z
    .strictObject(tracingShape, { error: 'expected a map of tracing settings (exporter, endpoint, ...)' })
    .optional()
    .meta({
      description:
        'OpenTelemetry spans for each operation, its cache lookup and each upstream attempt; off by default.',
    }),
};

export const telemetrySectionSchema = z.strictObject(telemetrySectionShape, {
  error: 'expected a map of telemetry settings (metrics, dashboard, logging, tracing)',
});
export type TelemetrySection = z.output<typeof telemetrySectionSchema>;

export interface ResolvedAlertThresholds {
  readonly p95Ms: number | false;
  readonly p99Ms: number | false;
  readonly minCacheHitRate: number | false;
  readonly maxErrorRate: number | false;
  readonly maxPoolUtilization: number | false;
  readonly maxMemoryUsage: number | false;
}

/** The `alerts:` section resolved, with the seed's defaults. */
export interface ResolvedAlertsConfig {
  readonly enabled: boolean;
  readonly thresholds: ResolvedAlertThresholds;
  readonly windowMs: number;
  readonly minSamples: number;
  readonly evaluateEveryMs: number;
  readonly webhook?:
    | { readonly url: string; readonly headers: Readonly<Record<string, string>>; readonly timeoutMs: number }
    | undefined;
}

/** The `telemetry:` section resolved. */
export interface ResolvedTelemetryConfig {
  readonly metrics: boolean;
  readonly defaultMetrics: boolean;
  readonly dashboard: boolean;
  readonly public: boolean;
  readonly resourceIntervalMs: number;
  readonly logging: {
    readonly level: (typeof LOG_LEVELS)[number];
    readonly requests: boolean;
    readonly redactHeaders: readonly string[];
  };
  readonly tracing: {
    readonly exporter: (typeof TRACE_EXPORTERS)[number];
    readonly endpoint: string;
    readonly headers: Readonly<Record<string, string>>;
    readonly serviceName: string;
    readonly sampleRatio: number;
  };
}

export function resolveAlertsSection(section: AlertsSection | undefined): ResolvedAlertsConfig {
  const t = section?.thresholds;
  const d = ALERT_THRESHOLD_DEFAULTS;
  const webhook = section?.webhook;
  return Object.freeze({
    enabled: section?.enabled ?? true,
    thresholds: Object.freeze({
      p95Ms: t?.high_latency?.p95_ms ?? d.high_latency.p95_ms,
      p99Ms: t?.high_latency?.p99_ms ?? d.high_latency.p99_ms,
      minCacheHitRate: t?.low_cache_hit_rate ?? d.low_cache_hit_rate,
      maxErrorRate: t?.high_error_rate ?? d.high_error_rate,
      maxPoolUtilization: t?.connection_pool_exhaustion ?? d.connection_pool_exhaustion,
      maxMemoryUsage: t?.memory_usage ?? d.memory_usage,
    }),
    windowMs: section?.window ?? 60_000,
    minSamples: section?.min_samples ?? 20,
    evaluateEveryMs: section?.evaluate_every ?? 5000,
    ...(webhook === undefined
      ? {}
      : {
          webhook: Object.freeze({
            url: webhook.url,
            headers: Object.freeze({ ...webhook.headers }),
            timeoutMs: webhook.timeout ?? 5000,
          }),
        }),
  });
}

export function resolveTelemetrySection(section: TelemetrySection | undefined): ResolvedTelemetryConfig {
  return Object.freeze({
    metrics: section?.metrics ?? true,
    defaultMetrics: section?.default_metrics ?? true,
    dashboard: section?.dashboard ?? true,
    public: section?.public ?? false,
    resourceIntervalMs: section?.resource_interval ?? 1000,
    logging: Object.freeze({
      level: section?.logging?.level ?? 'info',
      requests: section?.logging?.requests ?? false,
      redactHeaders: Object.freeze([...(section?.logging?.redact_headers ?? [])]),
    }),
    tracing: Object.freeze({
      exporter: section?.tracing?.exporter ?? 'none',
      endpoint: section?.tracing?.endpoint ?? 'http://127.0.0.1:4318/v1/traces',
      headers: Object.freeze({ ...section?.tracing?.headers }),
      serviceName: section?.tracing?.service_name ?? 'mcp-relay',
      sampleRatio: section?.tracing?.sample_ratio ?? 1,
    }),
  });
}

export const ALERTS_DEFAULTS: ResolvedAlertsConfig = resolveAlertsSection(undefined);
export const TELEMETRY_DEFAULTS: ResolvedTelemetryConfig = resolveTelemetrySection(undefined);
