/**
 * The ceiling for an HTTP MCP endpoint on this machine: a bare `node:http` server that parses each
 * POSTed JSON-RPC request and answers `tools/call` of `echo` with its `text`, serialized by
 * `JSON.stringify`. No sessions, no routing, no validation beyond what the answer needs: the least
 * work any server must do per call, so no proxy can beat it.
 *
 * So that it can be sent the very requests a gateway is sent (a 2025 client's session header, a
 * 2026-07-28 client's `_meta` and `Mcp-*` headers), it answers `initialize` with a fixed
 * `Mcp-Session-Id` and a notification with 202; it reads no header and keeps no state.
 *
 *   node --import tsx bench/lib/ceiling-server.ts [--port N]
 *
 * Prints `CEILING_LISTENING <url>` once listening; exits on SIGTERM.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

import { startChildServer, type ChildServer } from './child.js';

export const CEILING_SERVER_PATH = fileURLToPath(import.meta.url);
export const CEILING_LISTENING_PREFIX = 'CEILING_LISTENING';

/** Starts the ceiling server in a child process; `url` is its endpoint. */
export function startCeilingServer(): Promise<ChildServer> {
  return startChildServer(
    process.execPath,
    ['--import', 'tsx', CEILING_SERVER_PATH, '--port', '0'],
    CEILING_LISTENING_PREFIX,
  );
}

const INITIALIZE_RESULT = {
  protocolVersion: '2025-06-18',
  capabilities: { tools: {} },
  serverInfo: { name: 'ceiling', version: '1.0.0' },
};

interface Request {
  id?: string | number;
  method?: string;
  params?: { arguments?: { text?: unknown } };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { port: { type: 'string' } } });
  process.once('SIGTERM', () => process.exit(0));
  process.once('SIGINT', () => process.exit(0));
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const request = JSON.parse(body) as Request;
      if (request.id === undefined) {
        res.writeHead(202).end();
        return;
      }
      if (request.method === 'initialize') {
        const init = JSON.stringify({ jsonrpc: '2.0', id: request.id, result: INITIALIZE_RESULT });
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'ceiling' }).end(init);
        return;
      }
      const reply = JSON.stringify({
        jsonrpc: '2.0',
        id: request.id,
        result: { content: [{ type: 'text', text: request.params?.arguments?.text }] },
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(reply) }).end(reply);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(Number(values.port ?? 0), '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${CEILING_LISTENING_PREFIX} http://127.0.0.1:${port}/mcp\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
