/**
 * Cache hits through the gateway take a short path (GatewayCore.cachedAnswer: no upstream call, no
 * promise). These tests hold it to the rules of the full path: the same answer as the call that
 * stored it, the `Mcp-Param-*` check still made, a rate-limited tenant still paying a token per
 * call. The upstream is an SDK server over loopback HTTP that counts what actually reaches it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';

import { toNodeHandler, type NodeIncomingMessageLike } from '@modelcontextprotocol/node';
import { createMcpHandler, fromJsonSchema, McpServer, type JsonSchemaType } from '@modelcontextprotocol/server';

import { parseConfigText } from '../src/config/index.js';
import { startGateway, type Gateway } from '../src/gateway/index.js';

const MODERN = '2026-07-28';
const ENVELOPE = {
  'io.modelcontextprotocol/protocolVersion': MODERN,
  'io.modelcontextprotocol/clientInfo': { name: 'cache-hits-test', version: '1.0.0' },
  'io.modelcontextprotocol/clientCapabilities': {},
};
const KEYS = { free: `free-${randomBytes(16).toString('hex')}`, metered: `metered-${randomBytes(16).toString('hex')}` };

let invocations = 0;
let upstream: { url: string; stop(): Promise<void> };
let gateway: Gateway;

async function startUpstream() {
  const handler = createMcpHandler(() => {
    const server = new McpServer({ name: 'geo', version: '1.0.0' });
    server.registerTool(
      'lookup',
      {
        description: 'A serial number per invocation; region is mirrored into Mcp-Param-Region',
        inputSchema: fromJsonSchema<{ region?: string }>({
          type: 'object',
          properties: { region: { type: 'string', 'x-mcp-header': 'Region' } },
        } as JsonSchemaType),
      },
      (args) =>
        Promise.resolve({ content: [{ type: 'text' as const, text: `${String(args.region)}#${++invocations}` }] }),
    );
    return server;
  });
  const node = toNodeHandler(handler);
  const server = http.createServer((req: IncomingMessage, res) => void node(req as NodeIncomingMessageLike, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    async stop() {
      await handler.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** One stateless 2026-07-28 `tools/call` of `lookup`; `headerRegion` overrides Mcp-Param-Region. */
async function lookup(key: string, region: string, headerRegion = region) {
  const response = await fetch(`${gateway.url}/mcp`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: `Bearer ${key}`,
      'mcp-protocol-version': MODERN,
      'mcp-method': 'tools/call',
      'mcp-name': 'lookup',
      'mcp-param-region': headerRegion,
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 7,
      method: 'tools/call',
      params: { name: 'lookup', arguments: { region }, _meta: ENVELOPE },
    }),
  });
  const body = (await response.json()) as {
    id: unknown;
    result?: { content: { text: string }[]; resultType?: string };
    error?: { code: number; message: string; data?: Record<string, unknown> };
  };
  return { status: response.status, ...body };
}

describe('cache hits through the gateway', () => {
  before(async () => {
    upstream = await startUpstream();
    const config = parseConfigText(
      `
upstreams:
  geo:
    server_url: ${upstream.url}
    cache:
      tools: [lookup]
auth:
  api_keys:
    free: { key: "\${FREE_KEY}", tenant: free }
    metered: { key: "\${METERED_KEY}", tenant: metered }
tenants:
  free: {}
  metered:
    rate_limit: { requests_per_second: 0.01, burst: 2 }
`,
      { env: { FREE_KEY: KEYS.free, METERED_KEY: KEYS.metered }, source: 'cache-hits.yaml' },
    );
    gateway = await startGateway({ port: 0, upstreams: config.upstreams, auth: config.auth, tenants: config.tenants });
  });

  after(async () => {
    await gateway?.close();
    await upstream?.stop();
  });

  test('a repeated call gets the stored answer, with its own id and the 2026-07-28 result type, and never reaches the upstream', async () => {
    const before = invocations;
    const first = await lookup(KEYS.free, 'eu');
    assert.equal(first.status, 200, JSON.stringify(first));
    const again = await lookup(KEYS.free, 'eu');
    assert.equal(again.status, 200, JSON.stringify(again));
    assert.equal(again.id, 7);
    assert.deepEqual(again.result, first.result);
    assert.equal(again.result?.resultType, 'complete');
    assert.equal(invocations, before + 1, 'the second call reached the upstream');
  });

  test('a cached call whose Mcp-Param-Region disagrees with its arguments is refused, not answered from the cache', async () => {
    const stored = await lookup(KEYS.free, 'us');
    assert.equal(stored.status, 200);
    const before = invocations;
    const mismatched = await lookup(KEYS.free, 'us', 'ap');
    assert.equal(mismatched.status, 400, JSON.stringify(mismatched));
    assert.equal(mismatched.result, undefined);
    assert.match(mismatched.error?.message ?? '', /Region/);
    assert.equal(invocations, before);
  });

  test("a rate-limited tenant's cache hits spend its tokens like any call", async () => {
    // Burst 2, refilled once in 100 s: a miss and a hit take both tokens; the next hit is refused.
    const miss = await lookup(KEYS.metered, 'eu');
    const hit = await lookup(KEYS.metered, 'eu');
    assert.equal(miss.status, 200, JSON.stringify(miss));
    assert.deepEqual(hit.result, miss.result);
    const refused = await lookup(KEYS.metered, 'eu');
    assert.equal(refused.result, undefined, 'a third call within the burst of 2 was answered');
    assert.equal(refused.error?.data?.['relayCode'], 'RELAY_RATE_LIMITED', JSON.stringify(refused));
  });
});
