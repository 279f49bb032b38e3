import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Implementation } from '@modelcontextprotocol/client';
import type {
  ResolvedAlertsConfig,
  ResolvedAuthConfig,
  ResolvedBalanceConfig,
  ResolvedRedisConfig,
  ResolvedSessionsConfig,
  ResolvedTelemetryConfig,
  ResolvedTenantsConfig,
  ResolvedUpstreamConfig,
} from '../config/index.js';
import type { CacheLogger } from '../cache/index.js';
import { Observability } from '../dashboard/index.js';
import { RelayError, RelayErrorCode } from '../errors/index.js';
import { createProxyFactory, ProxyManager } from '../proxy/index.js';
import type { Logger, Telemetry } from '../telemetry/index.js';
import type { GatewayUpstream, Namespacing } from './catalog.js';
import { checkExposure, createAuthenticator, type Authenticator } from './auth.js';
import { GatewayCore, type AccessPolicy } from './core.js';
import { HttpInbound, writeError } from './http.js';
import { RpcCode, RpcError, toRpcError } from './rpc.js';
import { GlobalRateLimiter } from './rate-limit.js';
import { SessionTombstones } from './session-tombstones.js';
import { SessionSeal } from './sessions.js';
import { TenantPolicy } from './tenants.js';

export interface GatewayOptions {
  upstreams: readonly ResolvedUpstreamConfig[];
  /** Balance groups: each group's upstreams are served as one upstream named after the group. */
  balance?: ResolvedBalanceConfig | undefined;
  /** Default `127.0.0.1`: only this machine can connect unless told otherwise. */
  host?: string | undefined;
  /** Default 8080; 0 picks a free port. */
  port?: number | undefined;
  /** Largest request body, in bytes. Default 4 MiB. */
  maxBodyBytes?: number | undefined;
  /**
   * How long a client may take to send the request line and headers, in ms; a slower one (slow
   * loris) gets 408 and its connection closed. Default 10 000.
   */
  headersTimeoutMs?: number | undefined;
  /**
   * How long a client may take to send a whole request, body included, in ms (the answer is not
   * timed: long calls and streams are unaffected). Raised to `headersTimeoutMs` if lower. Default 30 000.
   */
  requestTimeoutMs?: number | undefined;
  /** Browser origins allowed besides loopback ones. */
  allowedOrigins?: readonly string[] | undefined;
  /** Default `on_collision`. */
  namespacing?: Namespacing | undefined;
  /** Default `__`. */
  separator?: string | undefined;
  /** Items per page of an aggregated list. Default 500. */
  pageSize?: number | undefined;
  serverInfo?: Implementation | undefined;
  instructions?: string | undefined;
  /** A legacy session unused this long is dropped from memory, in ms. Default `sessions.idleMs`, else 30 min. */
  sessionIdleMs?: number | undefined;
  /**
   * Legacy sessions: the secret replicas share (without it, a random key per process), their
   * absolute lifetime and idle timeout.
   */
  sessions?: ResolvedSessionsConfig | undefined;
  /** On close, how long /readyz reports false before the listener closes, in ms. Default 0. */
  drainDelayMs?: number | undefined;
  /** On close, how long in-flight calls may run to completion before they are cut, in ms. Default 10 000. */
  drainTimeoutMs?: number | undefined;
  /**
   * Who may call: API keys, JWT, anonymous callers. Without it the gateway serves anonymous
   * callers, and refuses to start on a host that is not a loopback address.
   */
  auth?: ResolvedAuthConfig | undefined;
  /**
   * Tenants' rules (allowed upstreams and tools, concurrency, rate). With it, callers' tenants must
   * be defined here (the anonymous tenant is added, unrestricted, when not). Without it, any tenant
   * an API key or token names is served without limits.
   */
  tenants?: ResolvedTenantsConfig | undefined;
  /** Monotonic milliseconds for the tenants' token buckets. Default `performance.now()`. */
  clock?: { now(): number } | undefined;
  /**
   * The Redis the replicas share: with it, tenants' rate limits hold across every replica (see
   * `rate-limit.ts`), and a legacy session's DELETE reaches every replica (`session-tombstones.ts`).
   * Without it each replica enforces rate limits on its own, and a DELETE holds on its replica only.
   */
  redis?: ResolvedRedisConfig | undefined;
  /** Alert thresholds, window and webhook. Default: the seed's `ALERT_THRESHOLDS`. */
  alerts?: ResolvedAlertsConfig | undefined;
  /** Metrics, dashboard, logs and traces. Default: all served, logs at `info`, no traces. */
  telemetry?: ResolvedTelemetryConfig | undefined;
  /** A pino logger for the gateway's logs. Default: one from `telemetry.logging`, on standard error. */
  logger?: Logger | undefined;
  /** Between two dashboard snapshots, in ms. Default 1000. */
  dashboardIntervalMs?: number | undefined;
}

export interface Gateway extends AsyncDisposable {
  /** `http://host:port` (the MCP endpoint is `${url}/mcp`). */
  readonly url: string;
  readonly address: AddressInfo;
  readonly core: GatewayCore;
  readonly server: Server;
  /** Metrics, alerts, resources and logs of this gateway (`/metrics`, `/alerts`, the dashboard at `/`). */
  readonly telemetry: Telemetry;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

/** The protocol core over the configured upstreams, for any inbound transport (HTTP, stdio). */
export async function createGatewayCore(
  options: Pick<
    GatewayOptions,
    'upstreams' | 'namespacing' | 'separator' | 'pageSize' | 'serverInfo' | 'instructions' | 'balance'
  > & {
    /** Tenants' rules; without it every caller may do everything. */
    policy?: AccessPolicy | undefined;
    /** Where the upstreams' caches warn (a Redis outage). Default `process.emitWarning`. */
    cacheLogger?: CacheLogger | undefined;
  },
): Promise<GatewayCore> {
  // Upstreams named in a balance group are served as that group: one upstream to callers, every
  // call balanced over its members (fastest by default), with breakers, ejection and retries.
  const groups = options.balance?.groups.filter((g) => g.name !== 'default') ?? [];
  const grouped = new Set(groups.flatMap((g) => g.upstreams));
  const manager =
    groups.length > 0 && options.balance
      ? ProxyManager.fromConfig({
          upstreams: options.upstreams.filter((u) => grouped.has(u.name)),
          balance: options.balance,
        })
      : undefined;
  const upstreams: GatewayUpstream[] = [
    ...(await Promise.all(
      options.upstreams
        .filter((config) => !grouped.has(config.name))
        .map(async (config) => ({
          name: config.name,
          factory: await createProxyFactory(config, { logger: options.cacheLogger }),
        })),
    )),
    ...groups.map((group) => ({ name: group.name, factory: manager!.getFactory(group.name) })),
  ];
  return new GatewayCore(upstreams, {
    onClose: manager ? () => manager.close() : undefined,
    namespacing: options.namespacing ?? 'on_collision',
    separator: options.separator ?? '__',
    pageSize: options.pageSize ?? 500,
    serverInfo: options.serverInfo ?? { name: 'mcp-relay', version: '0.1.0' },
    instructions: options.instructions,
    policy: options.policy,
  });
}

/**
 * `mcp-relay serve`: one MCP endpoint in front of many upstreams. `/mcp` serves the aggregate,
 * `/mcp/<name>` one upstream; `/healthz` and `/readyz` for orchestrators; `/metrics`, `/alerts`
 * and the live dashboard at `/` (see `../dashboard/observability.ts`).
 */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const host = options.host ?? '127.0.0.1';
  // The limiter's one warning per Redis outage goes to the gateway's log, which exists only later.
  const log: { warn?: (message: string) => void } = {};
  const warn = (message: string) => (log.warn ? log.warn(message) : process.emitWarning(message));
  const access = accessControl(options, host, warn);
  // The caches' warnings (a Redis outage) go to the same JSON log.
  const core = await createGatewayCore({ ...options, policy: access.policy, cacheLogger: { warn } }).catch(
    async (error: unknown) => {
      await access.globalLimits?.close();
      throw error;
    },
  );
  const upstreams = core.catalog.upstreams;
  const observability = new Observability(
    upstreams.map((u) => u.factory),
    options,
  );
  log.warn = (message) => observability.logger.warn(message);
  const sessions = options.sessions;
  const tombstones =
    options.redis === undefined
      ? undefined
      : new SessionTombstones({ redis: options.redis, warn: (message) => observability.logger.warn(message) });
  // A DELETE answered before Redis is connected would not be recorded: give it a moment (one
  // second at most; an unreachable Redis has already been warned about and sessions go on).
  await tombstones?.ready(1000).catch(() => undefined);
  const inbound = new HttpInbound(core, {
    maxBodyBytes: options.maxBodyBytes ?? 4 * 1024 * 1024,
    allowedOrigins: options.allowedOrigins ?? [],
    loopbackOnly: LOOPBACK.has(host),
    sessionIdleMs: options.sessionIdleMs ?? sessions?.idleMs ?? 30 * 60_000,
    keepAliveMs: 15_000,
    authenticate: access.authenticate,
    seal: new SessionSeal({ secret: sessions?.secret, maxAgeMs: sessions?.maxAgeMs ?? 24 * 3_600_000 }),
    tombstones,
  });
  let draining = false;

  const route = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    if (path === '/mcp' || path === '/mcp/') {
      inbound.handle(req, res, undefined);
      return;
    }
    if (path.startsWith('/mcp/')) {
      const name = decodePathSegment(path.slice(5));
      const scope = name === undefined ? undefined : core.upstream(name);
      if (!scope) {
        writeError(res, 404, null, new RpcError(RpcCode.InvalidRequest, `No upstream named '${path.slice(5)}'`));
        return;
      }
      inbound.handle(req, res, scope);
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok' }));
      return;
    }
    if (path === '/readyz') {
      const failures = core.catalog.failures();
      const ready = !draining && Object.keys(failures).length < upstreams.length;
      res
        .writeHead(ready ? 200 : 503, { 'content-type': 'application/json' })
        .end(JSON.stringify({ ready, draining, failing: failures }));
      return;
    }
    if (observability.handle(req, res, path)) return;
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: the MCP endpoint is /mcp\n');
  };
  const headersTimeout = options.headersTimeoutMs ?? 10_000;
  const requestTimeout = Math.max(options.requestTimeoutMs ?? 30_000, headersTimeout);
  const server = createServer(
    {
      headersTimeout,
      requestTimeout,
      // Node looks for expired requests only this often (default every 30 s, which would let a
      // slow-loris client hold its connection up to 30 s past the timeout).
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 4))),
    },
    (req, res) => {
      try {
        observability.run(req, res, route);
      } catch (error) {
        // A bug must cost one request, not the process and every caller's connection with it.
        observability.logger.error({ err: error, path: req.url }, 'request handler threw');
        writeError(res, 500, null, toRpcError(error));
      }
    },
  );
  observability.attach(server);
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    // Malformed HTTP (garbage, oversized headers) and clients too slow to send their request:
    // answer with the status that says which, close, and move on; never crash.
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const status =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? '431 Request Header Fields Too Large'
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? '408 Request Timeout'
          : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    // A client that ignores the close and keeps sending must not keep the socket: give it a second.
    const linger = setTimeout(() => socket.destroy(), 1000).unref();
    socket.once('close', () => clearTimeout(linger));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8080, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  void core.warmUp();
  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      // Graceful: /readyz turns false, no new connections, in-flight calls finish (bounded), then
      // streams and sessions end and the upstreams close.
      draining = true;
      // Keep answering (with /readyz false) long enough for a load balancer to notice.
      if (options.drainDelayMs) await new Promise((resolve) => setTimeout(resolve, options.drainDelayMs));
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await inbound.drain(options.drainTimeoutMs ?? 10_000);
      inbound.close();
      server.closeAllConnections();
      await closed;
      await core.close();
      await access.globalLimits?.close();
      await tombstones?.close();
      await observability.close();
    })());

  return {
    url: `http://${urlHost}:${address.port}`,
    address,
    core,
    server,
    telemetry: observability.telemetry,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** A percent-decoded path segment, or undefined when it is malformed (`%ZZ`, a cut UTF-8 sequence). */
function decodePathSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** The anonymous-only auth of a gateway without an `auth` section (loopback only). */
const ANONYMOUS_AUTH: ResolvedAuthConfig = Object.freeze({
  apiKeys: Object.freeze([]),
  allowAnonymous: true,
  anonymousTenant: 'default',
});

/**
 * The authenticator and tenant policy, checked before any upstream starts. Without `auth` and
 * `tenants` there is neither: every caller may do everything (on loopback only).
 */
function accessControl(
  options: GatewayOptions,
  host: string,
  warn: (message: string) => void,
): {
  authenticate: Authenticator | undefined;
  policy: TenantPolicy | undefined;
  globalLimits?: GlobalRateLimiter | undefined;
} {
  checkExposure(host, options.auth);
  const tenants = options.tenants;
  if (options.auth === undefined && tenants === undefined) return { authenticate: undefined, policy: undefined };
  const auth = options.auth ?? ANONYMOUS_AUTH;
  const authenticate = createAuthenticator(auth, { tenants: tenants === undefined ? undefined : Object.keys(tenants) });
  if (tenants === undefined) return { authenticate, policy: undefined };
  const names = new Set(options.upstreams.map((u) => u.name));
  for (const [tenant, rules] of Object.entries(tenants)) {
    const unknown = rules.allowedUpstreams?.find((name) => !names.has(name));
    if (unknown !== undefined) {
      throw new RelayError(
        RelayErrorCode.InvalidConfig,
        `tenants.${tenant}.allowed_upstreams: expected the name of an upstream (${[...names].join(', ')}), got "${unknown}"`,
      );
    }
  }
  const defined: Record<string, ResolvedTenantsConfig[string]> = Object.assign(Object.create(null) as object, tenants);
  if (auth.allowAnonymous && !Object.hasOwn(tenants, auth.anonymousTenant)) defined[auth.anonymousTenant] = {};
  // Shared buckets only where a tenant has a rate limit: nobody else needs a Redis connection.
  const limited = Object.values(tenants).some((rules) => rules.rateLimit !== undefined);
  const globalLimits =
    options.redis !== undefined && limited
      ? new GlobalRateLimiter({ redis: options.redis, logger: { warn } })
      : undefined;
  return { authenticate, policy: new TenantPolicy(defined, { clock: options.clock, globalLimits }), globalLimits };
}
