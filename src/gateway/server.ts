import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Implementation } from '@modelcontextprotocol/client';
import type { ResolvedUpstreamConfig } from '../config/index.js';
import { createProxyFactory } from '../proxy/index.js';
import type { GatewayUpstream, Namespacing } from './catalog.js';
import { GatewayCore } from './core.js';
import { HttpInbound, writeError } from './http.js';
import { RpcCode, RpcError } from './rpc.js';

export interface GatewayOptions {
  upstreams: readonly ResolvedUpstreamConfig[];
  /** Default `127.0.0.1`: only this machine can connect unless told otherwise. */
  host?: string | undefined;
  /** Default 8080; 0 picks a free port. */
  port?: number | undefined;
  /** Largest request body, in bytes. Default 4 MiB. */
  maxBodyBytes?: number | undefined;
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
  /** A legacy session unused this long is dropped, in ms. Default 30 min. */
  sessionIdleMs?: number | undefined;
}

export interface Gateway extends AsyncDisposable {
  /** `http://host:port` (the MCP endpoint is `${url}/mcp`). */
  readonly url: string;
  readonly address: AddressInfo;
  readonly core: GatewayCore;
  readonly server: Server;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

/** The protocol core over the configured upstreams, for any inbound transport (HTTP, stdio). */
export async function createGatewayCore(
  options: Pick<GatewayOptions, 'upstreams' | 'namespacing' | 'separator' | 'pageSize' | 'serverInfo' | 'instructions'>,
): Promise<GatewayCore> {
  const upstreams: GatewayUpstream[] = await Promise.all(
    options.upstreams.map(async (config) => ({ name: config.name, factory: await createProxyFactory(config) })),
  );
  return new GatewayCore(upstreams, {
    namespacing: options.namespacing ?? 'on_collision',
    separator: options.separator ?? '__',
    pageSize: options.pageSize ?? 500,
    serverInfo: options.serverInfo ?? { name: 'mcp-relay', version: '0.1.0' },
    instructions: options.instructions,
  });
}

/**
 * `mcp-relay serve`: one MCP endpoint in front of many upstreams. `/mcp` serves the aggregate,
 * `/mcp/<name>` one upstream; `/healthz` and `/readyz` for orchestrators.
 */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const host = options.host ?? '127.0.0.1';
  const core = await createGatewayCore(options);
  const upstreams = core.catalog.upstreams;
  const inbound = new HttpInbound(core, {
    maxBodyBytes: options.maxBodyBytes ?? 4 * 1024 * 1024,
    allowedOrigins: options.allowedOrigins ?? [],
    loopbackOnly: LOOPBACK.has(host),
    sessionIdleMs: options.sessionIdleMs ?? 30 * 60_000,
    keepAliveMs: 15_000,
  });
  let draining = false;

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    if (path === '/mcp' || path === '/mcp/') {
      inbound.handle(req, res, undefined);
      return;
    }
    if (path.startsWith('/mcp/')) {
      const scope = core.upstream(decodeURIComponent(path.slice(5)));
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
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: the MCP endpoint is /mcp\n');
  });
  server.on('clientError', (_error, socket) => {
    // Malformed HTTP (oversized headers, garbage): answer 400 and move on; never crash.
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 0;

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
      draining = true;
      inbound.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 2000).unref();
      });
      await core.close();
    })());

  return {
    url: `http://${urlHost}:${address.port}`,
    address,
    core,
    server,
    close,
    [Symbol.asyncDispose]: close,
  };
}
