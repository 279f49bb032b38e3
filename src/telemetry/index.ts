/**
 * The telemetry layer's public face (the `mcp-relay/telemetry` subpath): metrics (prom-client),
 * the seed's performance and resource summaries, alerts, logs (pino) and traces (OpenTelemetry),
 * all fed by the events the proxy publishes on `node:diagnostics_channel`. The hot path does not
 * import this layer.
 */
export { createTelemetry, Telemetry } from './telemetry.js';
export type {
  AlertWebhookOptions,
  SeriesSnapshot,
  TelemetryOptions,
  TelemetrySnapshot,
  UpstreamSnapshot,
} from './telemetry.js';
export {
  AlertEngine,
  SEED_ALERT_THRESHOLDS,
  type Alert,
  type AlertEngineOptions,
  type AlertEvents,
  type AlertRule,
  type AlertSource,
  type AlertThresholds,
} from './alerts.js';
export { RelayMetrics, RESILIENCE_CHANNELS, type MetricsSource, type RelayMetricsOptions } from './metrics.js';
export {
  ResourceMonitor,
  type ResourceMonitorOptions,
  type ResourceSample,
  type ResourceSummary,
} from './resources.js';
export {
  createLogger,
  DEFAULT_SECRET_HEADERS,
  REDACTED,
  requestContext,
  requestIdFrom,
  type Logger,
  type LoggerOptions,
} from './logger.js';
export { OtlpJsonSpanExporter, RelayTracing, traceparentOf, type TracingOptions } from './tracing.js';
export {
  factoryStats,
  recorderStats,
  summarize,
  summarizeRecorders,
  type PerformanceSummary,
  type ProxyStats,
} from './stats.js';
export {
  acquireRecorder,
  CallCounts,
  CallSeries,
  FactoryRecorder,
  recorderOf,
  releaseRecorder,
  type RecorderOptions,
  type SeriesFilter,
} from './recorder.js';
export { bucketOf, bucketValue, percentileOf, PROM_BUCKETS_MS } from './histogram.js';
