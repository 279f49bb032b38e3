import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { parseConfigText, resolveProxyConfig } from '../src/config/index.js';
import { startGateway, type Gateway } from '../src/gateway/index.js';
import { startInProcessHttpFixture, stdioFixture, type InProcessHttpFixture } from './fixtures/index.js';

type Mode = 'auto' | 'legacy';
type RpcBody = { error: { code: number; message: string }; result: unknown };

const MODERN_META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': {},
};

async function connect(url: string, mode: Mode): Promise<Client> {
  const client = new Client({ name: 'gateway-test', version: '1.0.0' }, { versionNegotiation: { mode } });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

function textOf(result: unknown): string {
  return (result as { content: { text: string }[] }).content[0]!.text;
}

async function post(url: string, body: string, headers: Record<string, string> = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body,
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as RpcBody) : undefined };
}

async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

let modern: InProcessHttpFixture;
let legacy: InProcessHttpFixture;
let gateway: Gateway;

before(async () => {
  modern = await startInProcessHttpFixture({ mode: 'modern' });
  legacy = await startInProcessHttpFixture({ mode: 'legacy' });
  gateway = await startGateway({
    port: 0,
    upstreams: [
      resolveProxyConfig({ name: 'local', ...stdioFixture() }),
      resolveProxyConfig({ name: 'modern', serverUrl: modern.url }),
      resolveProxyConfig({ name: 'legacy', serverUrl: legacy.url }),
    ],
  });
});

after(async () => {
  await gateway.close();
  await modern.stop();
  await legacy.stop();
});

for (const mode of ['auto', 'legacy'] as const) {
  const revision = mode === 'auto' ? '2026-07-28' : '2025-11-25';
  describe(`through the gateway, a ${revision} client`, () => {
    let client: Client;
    before(async () => {
      client = await connect(`${gateway.url}/mcp`, mode);
    });
    after(async () => {
      await client.close();
    });

    test('negotiates the revision with the gateway', () => {
      assert.equal(client.getNegotiatedProtocolVersion(), revision);
      assert.equal(client.getServerVersion()?.name, 'mcp-relay');
    });

    test('sees every upstream tool, colliding names prefixed with the upstream', async () => {
      const names = (await client.listTools()).tools.map((t) => t.name);
      for (const upstream of ['local', 'modern', 'legacy']) {
        for (const tool of ['echo', 'add', 'counter'])
          assert.ok(names.includes(`${upstream}__${tool}`), `${upstream}__${tool}`);
      }
      assert.ok(names.every((n) => n.length <= 64));
    });

    for (const upstream of ['local', 'modern', 'legacy']) {
      test(`calls a tool, reads a resource and gets a prompt on the ${upstream} upstream`, async () => {
        assert.equal(
          textOf(await client.callTool({ name: `${upstream}__echo`, arguments: { text: upstream } })),
          upstream,
        );
        const prompt = await client.getPrompt({ name: `${upstream}__greet`, arguments: { name: 'Ada' } });
        assert.match(JSON.stringify(prompt.messages), /Ada/);
      });
    }

    test('reads a resource by URI and a templated resource', async () => {
      const readme = await client.readResource({ uri: 'demo://static/readme' });
      assert.equal(readme.contents[0]?.uri, 'demo://static/readme');
      const item = await client.readResource({ uri: 'demo://items/42' });
      assert.match(JSON.stringify(item.contents), /42/);
    });

    test('relays progress notifications to the client', async () => {
      const updates: number[] = [];
      const result = await client.callTool(
        { name: 'legacy__slow', arguments: { ms: 300, steps: 3 } },
        { onprogress: (p) => updates.push(p.progress) },
      );
      assert.match(textOf(result), /slept/);
      assert.deepEqual(updates, [1, 2, 3]);
    });

    test("a tool's isError result passes through as a result", async () => {
      const result = await client.callTool({ name: 'modern__fail', arguments: { message: 'nope' } });
      assert.equal(result.isError, true);
    });

    test('an unknown tool is a JSON-RPC error, not a crash', async () => {
      await assert.rejects(client.callTool({ name: 'no_such_tool', arguments: {} }), /Unknown tool: no_such_tool/);
    });

    test('cancelling a call reaches the upstream', async () => {
      const cancelled = new Promise<string>((resolve) => modern.state.events.once('cancelled', resolve));
      const started = new Promise<string>((resolve) => modern.state.events.once('call', resolve));
      const controller = new AbortController();
      const call = client.callTool({ name: 'modern__slow', arguments: { ms: 10_000 } }, { signal: controller.signal });
      await started;
      controller.abort();
      await assert.rejects(call);
      assert.equal(await cancelled, 'slow');
    });
  });
}

describe('aggregation', () => {
  test('/mcp/<name> serves one upstream with its own names', async () => {
    const client = await connect(`${gateway.url}/mcp/modern`, 'auto');
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(names.includes('echo') && !names.some((n) => n.includes('__')));
      assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'one' } })), 'one');
    } finally {
      await client.close();
    }
  });

  test('pagination: upstream pages are walked and the aggregate is re-cursored over 3 pages', async () => {
    const paged = await startInProcessHttpFixture({ mode: 'legacy', pageSize: 3 });
    const small = await startGateway({
      port: 0,
      pageSize: 4,
      upstreams: [resolveProxyConfig({ name: 'paged', serverUrl: paged.url })],
    });
    try {
      const pages: string[][] = [];
      let cursor: string | undefined;
      do {
        // Raw 2026-07-28 requests: the SDK client would walk the pages for us and hide them.
        const { body } = await post(
          `${small.url}/mcp`,
          JSON.stringify({
            jsonrpc: '2.0',
            id: pages.length + 1,
            method: 'tools/list',
            params: { ...(cursor === undefined ? {} : { cursor }), _meta: MODERN_META },
          }),
          { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/list' },
        );
        const page = body?.result as { tools: { name: string }[]; nextCursor?: string };
        pages.push(page.tools.map((t) => t.name));
        cursor = page.nextCursor;
      } while (cursor !== undefined);
      const all = pages.flat();
      assert.ok(pages.length >= 3, `got ${pages.length} pages`);
      assert.ok(pages.slice(0, -1).every((p) => p.length === 4));
      assert.equal(new Set(all).size, all.length);
      assert.ok(all.includes('echo') && all.includes('toggle_extra_tool'));
    } finally {
      await small.close();
      await paged.stop();
    }
  });

  test('an upstream that is down is left out of lists; the others serve and /readyz names it', async () => {
    const port = await freePort();
    const partial = await startGateway({
      port: 0,
      upstreams: [
        resolveProxyConfig({ name: 'up', serverUrl: modern.url }),
        resolveProxyConfig({ name: 'down', serverUrl: `http://127.0.0.1:${port}/mcp`, timeout: 2, maxRetries: 0 }),
      ],
    });
    const client = await connect(`${partial.url}/mcp`, 'auto');
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(names.includes('echo'), 'the live upstream is listed unprefixed: no collision');
      assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'alive' } })), 'alive');
      const ready = (await (await fetch(`${partial.url}/readyz`)).json()) as { failing: Record<string, string> };
      assert.match(ready.failing['down'] ?? '', /ECONNREFUSED/);
    } finally {
      await client.close();
      await partial.close();
    }
  });

  test("a legacy upstream's tools/list_changed reaches a 2025 client and the list is refreshed", async () => {
    const client = await connect(`${gateway.url}/mcp`, 'legacy');
    try {
      const changed = new Promise<void>((resolve) =>
        client.setNotificationHandler('notifications/tools/list_changed', () => resolve()),
      );
      // The GET stream must be open before the change; the first list call proves the session is live.
      await client.listTools();
      const before = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(!before.includes('legacy__extra') && !before.includes('extra'));
      await client.callTool({ name: 'legacy__toggle_extra_tool', arguments: {} });
      await changed;
      const after = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(after.includes('extra'), `extra tool listed: ${after.join(',')}`);
      await client.callTool({ name: 'legacy__toggle_extra_tool', arguments: {} });
    } finally {
      await client.close();
    }
  });
});

describe('hardening at the edge', () => {
  const mcp = () => `${gateway.url}/mcp`;

  test('malformed JSON gets -32700 with status 400', async () => {
    const { status, body } = await post(mcp(), '{"jsonrpc":"2.0", bad');
    assert.equal(status, 400);
    assert.equal(body?.error.code, -32700);
  });

  test('a wrong content type gets 415 with a JSON-RPC error', async () => {
    const response = await fetch(mcp(), { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hi' });
    assert.equal(response.status, 415);
    assert.equal(((await response.json()) as RpcBody).error.code, -32600);
  });

  test('an oversized body gets 413 with a JSON-RPC error', async () => {
    const small = await startGateway({
      port: 0,
      maxBodyBytes: 1024,
      upstreams: [resolveProxyConfig({ serverUrl: modern.url })],
    });
    try {
      const { status, body } = await post(`${small.url}/mcp`, JSON.stringify({ pad: 'x'.repeat(4096) }));
      assert.equal(status, 413);
      assert.match(body?.error.message ?? '', /1024 bytes/);
    } finally {
      await small.close();
    }
  });

  test('an unknown method gets -32601', async () => {
    const init = await post(
      mcp(),
      JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
      }),
    );
    assert.equal(init.status, 200);
    const response = await fetch(mcp(), {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2025-06-18',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'no/such/method', params: {} }),
    });
    // Without the session header the request is refused; with it, the method is unknown.
    assert.equal(response.status, 400);
    const sessionId = (
      await fetch(mcp(), {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
        }),
      })
    ).headers.get('mcp-session-id')!;
    const unknown = await post(mcp(), JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'no/such/method' }), {
      'mcp-session-id': sessionId,
      'mcp-protocol-version': '2025-06-18',
    });
    assert.equal(unknown.body?.error.code, -32601);
  });

  test('a JSON-RPC batch is refused with -32600', async () => {
    const { status, body } = await post(mcp(), JSON.stringify([{ jsonrpc: '2.0', id: 1, method: 'ping' }]));
    assert.equal(status, 400);
    assert.equal(body?.error.code, -32600);
  });

  test('an unknown session id gets 404, a GET without a session 405', async () => {
    const { status } = await post(mcp(), JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }), {
      'mcp-session-id': 'not-a-session',
      'mcp-protocol-version': '2025-06-18',
    });
    assert.equal(status, 404);
    const get = await fetch(mcp(), { headers: { accept: 'text/event-stream' } });
    assert.equal(get.status, 405);
  });

  test('a foreign Origin is refused with 403 (DNS rebinding)', async () => {
    const { status, body } = await post(mcp(), JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }), {
      origin: 'https://evil.example',
    });
    assert.equal(status, 403);
    assert.match(body?.error.message ?? '', /evil\.example/);
  });

  test('a non-loopback Host header is refused on a loopback gateway', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(
        `${gateway.url}/mcp`,
        { method: 'POST', headers: { host: 'attacker.example', 'content-type': 'application/json' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end('{}');
    });
    assert.equal(status, 403);
  });

  test('the gateway still serves after all of the above', async () => {
    const client = await connect(mcp(), 'auto');
    try {
      assert.equal(
        textOf(await client.callTool({ name: 'local__echo', arguments: { text: 'still here' } })),
        'still here',
      );
    } finally {
      await client.close();
    }
  });
});

describe('server-to-client requests on a 2025 session', () => {
  test('elicitation and sampling from a legacy upstream round-trip through the gateway to the client', async () => {
    const client = new Client(
      { name: 'asker', version: '1.0.0' },
      { capabilities: { elicitation: { form: {} }, sampling: {} } },
    );
    client.setRequestHandler('elicitation/create', (request) => {
      assert.match(JSON.stringify(request.params), /favourite colour/);
      return Promise.resolve({ action: 'accept', content: { answer: 'teal' } });
    });
    client.setRequestHandler('sampling/createMessage', () =>
      Promise.resolve({ role: 'assistant', content: { type: 'text', text: 'forty-two' }, model: 'test-model' }),
    );
    await client.connect(new StreamableHTTPClientTransport(new URL(`${gateway.url}/mcp`)));
    try {
      const asked = await client.callTool({ name: 'legacy__ask', arguments: { question: 'favourite colour?' } });
      assert.equal(textOf(asked), 'answer: teal');
      const sampled = await client.callTool({ name: 'legacy__sample', arguments: { prompt: 'the answer?' } });
      assert.equal(textOf(sampled), 'model said: forty-two');
    } finally {
      await client.close();
    }
  });
});

describe('graceful shutdown', () => {
  test('close() turns /readyz false, lets an in-flight call finish, then stops', async () => {
    const draining = await startGateway({
      port: 0,
      drainDelayMs: 200,
      upstreams: [resolveProxyConfig({ name: 'm', serverUrl: modern.url })],
    });
    const client = await connect(`${draining.url}/mcp`, 'auto');
    const started = new Promise<string>((resolve) => modern.state.events.once('call', resolve));
    const call = client.callTool({ name: 'slow', arguments: { ms: 500 } });
    await started;
    const closing = draining.close();
    const ready = await fetch(`${draining.url}/readyz`);
    assert.equal(ready.status, 503);
    assert.equal(((await ready.json()) as { draining: boolean }).draining, true);
    assert.match(textOf(await call), /slept 500 ms/);
    await closing;
    await assert.rejects(fetch(`${draining.url}/healthz`), 'the listener is closed');
    await client.close().catch(() => {});
  });
});

describe('balance groups', () => {
  test('a group of redundant upstreams is served as one upstream, every call balanced, and survives losing a member', async () => {
    const first = await startInProcessHttpFixture({ mode: 'modern' });
    const second = await startInProcessHttpFixture({ mode: 'modern' });
    const config = parseConfigText(
      [
        'upstreams:',
        `  search-a: { server_url: '${first.url}', max_retries: 2, retry_delay: 1ms }`,
        `  search-b: { server_url: '${second.url}', max_retries: 2, retry_delay: 1ms }`,
        `  local: { command: '${process.execPath}', args: ${JSON.stringify(stdioFixture().args)} }`,
        'balance:',
        '  strategy: round_robin',
        '  groups:',
        '    search: [search-a, search-b]',
      ].join('\n'),
    );
    const balanced = await startGateway({ port: 0, upstreams: config.upstreams, balance: config.balance });
    const client = await connect(`${balanced.url}/mcp`, 'auto');
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(names.includes('search__echo') && names.includes('local__echo'), names.join(','));
      assert.ok(!names.some((n) => n.startsWith('search-a') || n.startsWith('search-b')), 'members are not listed');
      for (let i = 0; i < 20; i++) {
        assert.equal(textOf(await client.callTool({ name: 'search__add', arguments: { a: i, b: 1 } })), String(i + 1));
      }
      const served = [first, second].map((f) => f.state.calls.get('add') ?? 0);
      assert.ok(served[0]! >= 5 && served[1]! >= 5, `round robin spread the calls: ${served.join(' / ')}`);
      await second.stop();
      for (let i = 0; i < 10; i++) {
        assert.equal(
          textOf(await client.callTool({ name: 'search__echo', arguments: { text: `after ${i}` } })),
          `after ${i}`,
        );
      }
    } finally {
      await client.close();
      await balanced.close();
      await first.stop();
      await second.stop();
    }
  });
});
