/**
 * A near-zero-cost MCP upstream for benchmarks: a bare JSON-RPC responder over stdio
 * (newline-delimited JSON) or `node:http`, with no SDK, no schema validation and no sessions.
 *
 * An SDK-built server spends about 0.5 ms of CPU per call, which caps any proxy in front of it near
 * 2,000 calls/s on the bench machine; against this one, what shows is the proxy's own cost.
 *
 * It answers exactly what a client needs to connect and call `echo`, in both eras:
 * - 2026-07-28: `server/discover` (what the SDK client's negotiation probe validates:
 *   `supportedVersions`, `capabilities`, `resultType`; `serverInfo` travels in `_meta`);
 * - 2025: `initialize` (the client's requested version is echoed back), `notifications/initialized`;
 * - both: `ping`, `tools/list` and `tools/call` of `echo`, whose result is its `text` argument.
 * Anything else is a JSON-RPC "method not found".
 *
 *   node --import tsx bench/lib/bare-upstream.ts --transport stdio|http [--port N]
 *
 * http prints `BARE_UPSTREAM_LISTENING <url>` once listening. Both exit on SIGTERM; stdio also when
 * stdin ends.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

import { startChildServer, type ChildServer } from './child.js';

export const BARE_UPSTREAM_PATH = fileURLToPath(import.meta.url);
export const BARE_LISTENING_PREFIX = 'BARE_UPSTREAM_LISTENING';

const MODERN_VERSION = '2026-07-28';
const SERVER_INFO = { name: 'bare-upstream', version: '1.0.0' };
const SERVER_INFO_META = { 'io.modelcontextprotocol/serverInfo': SERVER_INFO };
const ECHO_TOOL = {
  name: 'echo',
  description: 'Returns its text unchanged.',
  inputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
};

/** `{ command, args }` that serves the bare upstream over stdio. */
export function bareStdioCommand(): { command: string; args: string[] } {
  return { command: process.execPath, args: ['--import', 'tsx', BARE_UPSTREAM_PATH, '--transport', 'stdio'] };
}

/** Starts the bare upstream over HTTP in a child process; `url` is its endpoint. */
export function startBareHttpUpstream(): Promise<ChildServer> {
  return startChildServer(
    process.execPath,
    ['--import', 'tsx', BARE_UPSTREAM_PATH, '--transport', 'http', '--port', '0'],
    BARE_LISTENING_PREFIX,
  );
}

/** The serialized answer to one message, or undefined for a notification (no answer). */
export function answer(text: string): string | undefined {
  let message: { id?: unknown; method?: unknown; params?: Record<string, unknown> };
  try {
    message = JSON.parse(text) as typeof message;
  } catch {
    return '{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}';
  }
  const { id, method, params } = message;
  if (id === undefined) return undefined;
  const head = `{"jsonrpc":"2.0","id":${JSON.stringify(id)},`;
  switch (method) {
    case 'tools/call': {
      const args = params?.['arguments'] as { text?: unknown } | undefined;
      if (params?.['name'] !== 'echo' || typeof args?.text !== 'string') {
        return `${head}"error":{"code":-32602,"message":"only tool 'echo' with a string 'text' exists"}}`;
      }
      return `${head}"result":{"content":[{"type":"text","text":${JSON.stringify(args.text)}}],"resultType":"complete"}}`;
    }
    case 'server/discover':
      return (
        head +
        `"result":${JSON.stringify({
          supportedVersions: [MODERN_VERSION],
          capabilities: { tools: {} },
          resultType: 'complete',
          _meta: SERVER_INFO_META,
        })}}`
      );
    case 'initialize': {
      const requested = params?.['protocolVersion'];
      return (
        head +
        `"result":${JSON.stringify({
          protocolVersion: typeof requested === 'string' ? requested : '2025-06-18',
          capabilities: { tools: {} },
          serverInfo: SERVER_INFO,
        })}}`
      );
    }
    case 'ping':
      return `${head}"result":{}}`;
    case 'tools/list':
      return `${head}"result":${JSON.stringify({ tools: [ECHO_TOOL], resultType: 'complete' })}}`;
    default:
      return `${head}"error":{"code":-32601,"message":"Method not found"}}`;
  }
}

/** Newline-delimited JSON on stdin/stdout; the answers to one chunk go out in one write. */
export function serveStdio(): void {
  let pending = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    const text = pending + chunk;
    let out = '';
    let start = 0;
    let newline = text.indexOf('\n', start);
    while (newline !== -1) {
      if (newline > start) {
        const reply = answer(text.slice(start, newline));
        if (reply !== undefined) out += reply + '\n';
      }
      start = newline + 1;
      newline = text.indexOf('\n', start);
    }
    pending = text.slice(start);
    if (out) process.stdout.write(out);
  });
  process.stdin.on('end', () => process.exit(0));
}

/** One POST, one JSON answer (202 for a notification); GET and DELETE are 405 as on a stateless server. */
export async function serveHttp(port: number): Promise<string> {
  const server = createServer((req, res) => {
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST' }).end();
      return;
    }
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const reply = answer(body);
      if (reply === undefined) {
        res.writeHead(202).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(reply) }).end(reply);
    });
  });
  // The load generator keeps its connections between measurement rounds.
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const address = server.address() as AddressInfo;
  return `http://127.0.0.1:${address.port}/mcp`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { transport: { type: 'string' }, port: { type: 'string' } } });
  process.once('SIGTERM', () => process.exit(0));
  process.once('SIGINT', () => process.exit(0));
  if (values.transport === 'stdio') {
    serveStdio();
  } else if (values.transport === 'http') {
    const url = await serveHttp(Number(values.port ?? 0));
    process.stdout.write(`${BARE_LISTENING_PREFIX} ${url}\n`);
  } else {
    process.stderr.write('usage: bare-upstream.ts --transport stdio|http [--port N]\n');
    process.exit(2);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
