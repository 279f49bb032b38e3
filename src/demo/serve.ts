/**
 * Serving entries of the demo server: stdio (both eras, or 2025 only) and Streamable HTTP on
 * `node:http` (the 2026-07-28 per-request entry, or classic 2025 sessions).
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

import { NodeStreamableHTTPServerTransport, toNodeHandler } from '@modelcontextprotocol/node';
import type { NodeIncomingMessageLike } from '@modelcontextprotocol/node';
import { createMcpHandler } from '@modelcontextprotocol/server';
import type { JSONRPCMessage, McpServer } from '@modelcontextprotocol/server';
import { serveStdio, StdioServerTransport } from '@modelcontextprotocol/server/stdio';

import { RelayError, RelayErrorCode } from '../errors/index.js';
import { createDemoServer, createDemoState, demoHttpRequestScope } from './server.js';
import type { DemoOptions, DemoState } from './server.js';

/** What `main.ts --transport http` prints once listening: this prefix, one space, the URL, a newline. */
export const DEMO_LISTENING_PREFIX = 'MCP_DEMO_LISTENING';

/** The line `noise` mode writes to stdout before every response: not JSON, not even close. */
export const DEMO_NOISE_LINE = '<<demo noise: this line is not JSON-RPC>>';

/** Options shared by both entries: the demo options, or an existing state to serve. */
export interface DemoServeOptions extends DemoOptions {
  /** Serve this state instead of creating one from the other options (tests read it directly). */
  state?: DemoState;
  /** Out-of-band errors of the SDK entry (reporting only). Default: ignored. */
  onerror?: (error: Error) => void;
}

export interface DemoStdioOptions extends DemoServeOptions {
  /**
   * Serve only the 2025 revisions, through a plain `StdioServerTransport`; a `server/discover`
   * probe is answered "method not found". Default `false`: `serveStdio` with `legacy: 'serve'`,
   * i.e. both eras.
   */
  legacyOnly?: boolean;
  /** Write {@link DEMO_NOISE_LINE} to stdout before every response. Default `false`. */
  noise?: boolean;
}

export interface DemoStdioHandle {
  readonly state: DemoState;
  close(): Promise<void>;
}

/** A stdout transport that writes a garbage line before each response, to test a reader's robustness. */
class NoisyStdioServerTransport extends StdioServerTransport {
  override async send(message: JSONRPCMessage): Promise<void> {
    if ('id' in message && ('result' in message || 'error' in message)) process.stdout.write(`${DEMO_NOISE_LINE}\n`);
    return super.send(message);
  }
}

/** Serves the demo on this process's stdin/stdout. */
export async function serveDemoStdio(options: DemoStdioOptions = {}): Promise<DemoStdioHandle> {
  const state = options.state ?? createDemoState(options);
  const transport = options.noise === true ? new NoisyStdioServerTransport() : new StdioServerTransport();
  if (options.legacyOnly === true) {
    const server = createDemoServer(state, { era: 'legacy', longLived: true });
    if (options.onerror) server.server.onerror = options.onerror;
    await server.connect(transport);
    return { state, close: () => server.close() };
  }
  const handle = serveStdio((ctx) => createDemoServer(state, { ...ctx, longLived: true }), {
    legacy: 'serve',
    transport,
    ...(options.onerror ? { onerror: options.onerror } : {}),
  });
  return { state, close: () => handle.close() };
}

export interface DemoHttpOptions extends DemoServeOptions {
  /**
   * `'modern'`: `createMcpHandler`, the 2026-07-28 per-request entry, which also answers 2025
   * clients statelessly (no sessions, GET/DELETE answered 405). `'legacy'`: classic sessionful
   * 2025 Streamable HTTP (`Mcp-Session-Id`, the GET SSE stream, DELETE, 404 for an unknown
   * session); 2026-07-28 requests are refused like any non-initialize request without a session.
   */
  mode: 'modern' | 'legacy';
  /** Default `'127.0.0.1'`. */
  host?: string;
  /** Default `0`: a free port. */
  port?: number;
}

export interface DemoHttpHandle {
  /** The endpoint, `http://<host>:<port>/mcp`. */
  readonly url: string;
  readonly state: DemoState;
  /** Closes every session, stream and socket; resolves when the listener is closed. Idempotent. */
  close(): Promise<void>;
}

type NodeHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/** Serves the demo over Streamable HTTP at `/mcp`. */
export async function serveDemoHttp(options: DemoHttpOptions): Promise<DemoHttpHandle> {
  const { mode } = options;
  if (mode !== 'modern' && mode !== 'legacy') {
    throw new RelayError(
      RelayErrorCode.InvalidConfig,
      `demo http mode must be 'modern' or 'legacy', got '${String(mode)}'`,
    );
  }
  const host = options.host ?? '127.0.0.1';
  const state = options.state ?? createDemoState(options);
  const onerror = options.onerror ?? (() => undefined);

  let handle: NodeHandler;
  let closeEntry: () => Promise<void>;
  if (mode === 'modern') {
    // The factory runs once per request; everything durable is in `state`, events on `state.bus`.
    const entry = createMcpHandler((ctx) => createDemoServer(state, { ...ctx, longLived: false }), {
      bus: state.bus,
      onerror,
    });
    const nodeHandler = toNodeHandler(entry, { onerror });
    // IncomingMessage's `method?: string | undefined` trips exactOptionalPropertyTypes against the
    // SDK's structural `method?: string`; the shapes agree at runtime.
    handle = (req, res) => nodeHandler(req as NodeIncomingMessageLike, res);
    closeEntry = () => entry.close();
  } else {
    const sessions = createLegacySessions(state, onerror);
    handle = sessions.handle;
    closeEntry = sessions.close;
  }

  const sockets = new Set<Socket>();
  const httpServer = createServer((req, res) => {
    if (new URL(req.url ?? '/', 'http://localhost').pathname !== '/mcp') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; the MCP endpoint is /mcp\n');
      return;
    }
    const scope = { drop: () => req.socket.destroy() };
    demoHttpRequestScope.run(scope, () => {
      handle(req, res).catch((error: unknown) => {
        onerror(error instanceof Error ? error : new Error(String(error)));
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
    });
  });
  httpServer.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(options.port ?? 0, host, () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const { port } = httpServer.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/mcp`;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const closed = new Promise<void>((resolve) => httpServer.close(() => resolve()));
      await closeEntry().catch(onerror);
      for (const socket of sockets) socket.destroy();
      await closed;
    })();
    return closing;
  };
  return { url, state, close };
}

interface LegacySession {
  readonly transport: NodeStreamableHTTPServerTransport;
  readonly server: McpServer;
}

/** Classic 2025 sessionful Streamable HTTP: one transport and one server instance per session. */
function createLegacySessions(
  state: DemoState,
  onerror: (error: Error) => void,
): { handle: NodeHandler; close: () => Promise<void> } {
  const sessions = new Map<string, LegacySession>();
  let closed = false;

  const handle: NodeHandler = async (req, res) => {
    const header = req.headers['mcp-session-id'];
    const sessionId = Array.isArray(header) ? header[0] : header;
    if (closed) {
      writeJsonRpcError(res, 503, -32000, 'Server is shutting down');
      return;
    }
    if (sessionId !== undefined) {
      const session = sessions.get(sessionId);
      if (session === undefined) {
        writeJsonRpcError(res, 404, -32001, 'Session not found');
        return;
      }
      await session.transport.handleRequest(req, res);
      return;
    }
    if (req.method !== 'POST') {
      writeJsonRpcError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required');
      return;
    }
    // No session yet: only `initialize` is valid, which the transport itself checks (400 otherwise).
    const transport: NodeStreamableHTTPServerTransport = new NodeStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, { transport, server });
      },
      onsessionclosed: (id) => {
        sessions.delete(id);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId !== undefined) sessions.delete(transport.sessionId);
    };
    const server = createDemoServer(state, { era: 'legacy', longLived: true });
    server.server.onerror = onerror;
    await server.connect(transport);
    await transport.handleRequest(req, res);
    if (transport.sessionId === undefined || !sessions.has(transport.sessionId)) await server.close();
  };

  const close = async (): Promise<void> => {
    closed = true;
    const open = [...sessions.values()];
    sessions.clear();
    await Promise.all(open.map((session) => session.server.close().catch(onerror)));
  };
  return { handle, close };
}

function writeJsonRpcError(res: ServerResponse, status: number, code: number, message: string): void {
  res
    .writeHead(status, { 'content-type': 'application/json' })
    .end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}
