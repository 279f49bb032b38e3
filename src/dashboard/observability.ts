/**
 * The gateway's observability: one telemetry instance over its upstreams, and the routes that
 * expose it — `/metrics` (Prometheus), `/alerts` (JSON), `/` (the dashboard) and
 * `/dashboard/events` (its feed) — plus request ids and access logs.
 *
 * These routes name upstreams, tools and tenants, so by default they answer only clients on this
 * machine, and (against DNS rebinding) only under a loopback Host name. `telemetry.public: true`
 * serves them to everyone who can connect.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

import {
  ALERTS_DEFAULTS,
  TELEMETRY_DEFAULTS,
  type ResolvedAlertsConfig,
  type ResolvedAuthConfig,
  type ResolvedTelemetryConfig,
  type ResolvedUpstreamConfig,
} from '../config/index.js';
import type { ProxyFactory } from '../proxy/index.js';
import {
  createLogger,
  createTelemetry,
  DEFAULT_SECRET_HEADERS,
  requestContext,
  requestIdFrom,
  type Logger,
  type Telemetry,
  type TracingOptions,
} from '../telemetry/index.js';
import { DashboardFeed } from './feed.js';
import { DASHBOARD_HTML } from './page.js';

export interface ObservabilityOptions {
  upstreams: readonly ResolvedUpstreamConfig[];
  alerts?: ResolvedAlertsConfig | undefined;
  telemetry?: ResolvedTelemetryConfig | undefined;
  /** For the secrets to keep out of logs. */
  auth?: ResolvedAuthConfig | undefined;
  /** For the session secret to keep out of logs. */
  sessions?: { readonly secret?: string | undefined } | undefined;
  /** A pino logger; default one from `telemetry.logging`. */
  logger?: Logger | undefined;
  /** Between two dashboard snapshots, in ms. Default 1000. */
  dashboardIntervalMs?: number | undefined;
}

const LOOPBACK_ADDRESSES = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

export class Observability {
  readonly telemetry: Telemetry;
  readonly feed: DashboardFeed;
  readonly logger: Logger;
  readonly #config: ResolvedTelemetryConfig;
  #connections = 0;

  constructor(factories: readonly ProxyFactory[], options: ObservabilityOptions) {
    const config = (this.#config = options.telemetry ?? TELEMETRY_DEFAULTS);
    const alerts = options.alerts ?? ALERTS_DEFAULTS;
    this.logger =
      options.logger ??
      createLogger({
        level: config.logging.level,
        secretHeaders: config.logging.redactHeaders,
        secrets: secretsOf(options, config),
      });
    // A factory made from one of these configs (the gateway's second, 2025 connection to an
    // upstream for 2025 callers shares its transport) reports as that upstream.
    const transports = new Set(factories.map((f) => f.config.transport));
    this.telemetry = createTelemetry({
      adopt: (factory) => transports.has(factory.config.transport),
      logger: this.logger,
      windowMs: alerts.windowMs,
      metrics: { defaultMetrics: config.defaultMetrics },
      resources: {
        intervalMs: config.resourceIntervalMs,
        connections: () => this.#connections,
        childProcesses: () => factories.reduce((n, f) => n + childProcesses(f), 0),
      },
      alerts: alerts.enabled
        ? {
            thresholds: alerts.thresholds,
            windowMs: alerts.windowMs,
            minSamples: alerts.minSamples,
            evaluateEveryMs: alerts.evaluateEveryMs,
            webhook: alerts.webhook,
          }
        : false,
      tracing: tracingOptions(config),
    });
    for (const factory of factories) this.telemetry.watch(factory);
    this.telemetry.start();
    this.feed = new DashboardFeed(this.telemetry, { intervalMs: options.dashboardIntervalMs });
  }

  /** Counts the server's open connections (for the resource monitor). */
  attach(server: Server): void {
    server.on('connection', (socket) => {
      this.#connections++;
      socket.once('close', () => this.#connections--);
    });
  }

  /**
   * Runs one request's handler: with request logging on, inside a request context (its id is
   * on every log line it causes and in the `x-request-id` response header) and with an access
   * log line when it finishes. Off, the handler runs as is.
   */
  run(req: IncomingMessage, res: ServerResponse, handler: (req: IncomingMessage, res: ServerResponse) => void): void {
    if (!this.#config.logging.requests) {
      handler(req, res);
      return;
    }
    const requestId = requestIdFrom(req.headers['x-request-id']);
    const started = performance.now();
    res.setHeader('x-request-id', requestId);
    res.once('finish', () => {
      const fields = {
        requestId,
        method: req.method,
        path: (req.url ?? '/').split('?', 1)[0],
        status: res.statusCode,
        ms: Math.round((performance.now() - started) * 100) / 100,
      };
      if (res.statusCode >= 500) this.logger.warn(fields, 'request failed');
      else this.logger.info(fields, 'request');
    });
    requestContext.run({ requestId }, handler, req, res);
  }

  /** Answers the observability routes; false for any other path. */
  handle(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    const route = ROUTES[path];
    if (route === undefined) return false;
    if (route === 'dashboard' || route === 'events' || route === 'snapshot') {
      if (!this.#config.dashboard) return false;
    } else if (route === 'metrics' && !this.#config.metrics) {
      return false;
    }
    if (!this.#config.public && !isLocal(req)) {
      res
        .writeHead(403, { 'content-type': 'text/plain' })
        .end(`forbidden: ${path} is served to clients on this machine only (telemetry.public: true serves everyone)\n`);
      return true;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return true;
    }
    switch (route) {
      case 'dashboard':
        res
          .writeHead(200, {
            'content-type': 'text/html; charset=utf-8',
            'cache-control': 'no-store',
            // Inline script and style only; the page fetches nothing but its own feed.
            'content-security-policy':
              "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
          })
          .end(DASHBOARD_HTML);
        return true;
      case 'events':
        this.feed.subscribe(res);
        return true;
      case 'snapshot':
        json(res, this.feed.snapshot());
        return true;
      case 'alerts': {
        const alerts = this.telemetry.alerts;
        json(res, {
          enabled: alerts !== undefined,
          thresholds: alerts?.thresholds,
          window_ms: alerts?.windowMs,
          min_samples: alerts?.minSamples,
          firing: alerts?.firing() ?? [],
          recent: alerts?.history() ?? [],
        });
        return true;
      }
      case 'metrics':
        this.telemetry.scrape().then(
          (text) => res.writeHead(200, { 'content-type': this.telemetry.metrics.contentType }).end(text),
          (error: unknown) => {
            this.logger.error({ err: error }, 'metrics scrape failed');
            res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics scrape failed\n');
          },
        );
        return true;
    }
  }

  async close(): Promise<void> {
    this.feed.close();
    await this.telemetry.close();
    this.logger.flush();
  }
}

const ROUTES: Record<string, 'dashboard' | 'events' | 'snapshot' | 'alerts' | 'metrics' | undefined> = {
  __proto__: null,
  '/': 'dashboard',
  '/dashboard': 'dashboard',
  '/dashboard/': 'dashboard',
  '/dashboard/events': 'events',
  '/dashboard/snapshot': 'snapshot',
  '/alerts': 'alerts',
  '/metrics': 'metrics',
} as unknown as Record<string, 'dashboard' | 'events' | 'snapshot' | 'alerts' | 'metrics' | undefined>;

function isLocal(req: IncomingMessage): boolean {
  if (!LOOPBACK_ADDRESSES.has(req.socket.remoteAddress ?? '')) return false;
  const host = (req.headers.host ?? '').toLowerCase();
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':', 1)[0]!;
  return LOOPBACK_HOSTS.has(name);
}

function json(res: ServerResponse, value: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(value));
}

function childProcesses(factory: ProxyFactory): number {
  const pids = (factory.upstream as { pids?: unknown }).pids;
  return Array.isArray(pids) ? pids.length : 0;
}

function tracingOptions(config: ResolvedTelemetryConfig): TracingOptions | false {
  const tracing = config.tracing;
  if (tracing.exporter === 'none') return false;
  return {
    exporter: tracing.exporter,
    endpoint: tracing.endpoint,
    headers: tracing.headers,
    serviceName: tracing.serviceName,
    sampleRatio: tracing.sampleRatio,
  };
}

/** Every secret value the configuration holds, to be removed from any log line that quotes one. */
export function secretsOf(options: ObservabilityOptions, config: ResolvedTelemetryConfig): string[] {
  const secretHeaders = new Set(
    [...DEFAULT_SECRET_HEADERS, ...config.logging.redactHeaders].map((h) => h.toLowerCase()),
  );
  const secrets: string[] = [];
  for (const upstream of options.upstreams) {
    const transport = upstream.transport;
    if (transport.kind !== 'http') continue;
    if (transport.authToken !== undefined) secrets.push(transport.authToken);
    for (const [name, value] of Object.entries(transport.headers)) {
      if (secretHeaders.has(name.toLowerCase())) secrets.push(value, value.replace(/^(Bearer|Basic)\s+/i, ''));
    }
  }
  for (const key of options.auth?.apiKeys ?? []) secrets.push(key.key);
  if (options.auth?.jwt?.secret !== undefined) secrets.push(options.auth.jwt.secret);
  if (options.sessions?.secret !== undefined) secrets.push(options.sessions.secret);
  for (const value of Object.values(options.alerts?.webhook?.headers ?? {})) {
    secrets.push(value, value.replace(/^(Bearer|Basic)\s+/i, ''));
  }
  for (const value of Object.values(config.tracing.headers)) secrets.push(value);
  return secrets;
}
