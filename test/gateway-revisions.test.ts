/**
 * What each revision requires of the gateway as a server, found by the conformance suite
 * (test/conformance.test.ts) and pinned here without it: 2026-07-28's HTTP statuses and header
 * checks, and 2025 callers served through an upstream the gateway speaks 2026-07-28 to: their
 * resource subscriptions, and the requests such an upstream sends them mid-call.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { resolveProxyConfig } from '../src/config/index.js';
import { startGateway, type Gateway } from '../src/gateway/index.js';
import { DEMO_COUNTER_URI, startInProcessHttpFixture, type InProcessHttpFixture } from './fixtures/index.js';

const ENVELOPE = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': {},
};

let upstream: InProcessHttpFixture;
let gateway: Gateway;
let endpoint: string;

before(async () => {
  upstream = await startInProcessHttpFixture({ mode: 'modern' });
  gateway = await startGateway({ port: 0, upstreams: [resolveProxyConfig({ name: 'demo', serverUrl: upstream.url })] });
  endpoint = `${gateway.url}/mcp`;
});

after(async () => {
  await gateway.close();
  await upstream.stop();
});

async function post(
  method: string,
  params: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: { result?: unknown; error?: { code: number; data?: unknown } } }> {
  const response = await fetch(endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': method,
      ...headers,
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: { ...params, _meta: ENVELOPE } }),
  });
  return { status: response.status, body: (await response.json()) as never };
}

describe('a 2026-07-28 caller', () => {
  for (const method of ['ping', 'logging/setLevel', 'resources/subscribe', 'unknown/method']) {
    test(`gets 404 and -32601 for ${method}`, async () => {
      const { status, body } = await post(method, method === 'resources/subscribe' ? { uri: DEMO_COUNTER_URI } : {});
      assert.equal(status, 404);
      assert.equal(body.error?.code, -32601);
    });
  }

  test('naming an unsupported version gets 400 and -32022 with the supported ones', async () => {
    const response = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'mcp-protocol-version': 'v9', 'mcp-method': 'server/discover' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 7,
        method: 'server/discover',
        params: { _meta: { ...ENVELOPE, 'io.modelcontextprotocol/protocolVersion': 'v9' } },
      }),
    });
    assert.equal(response.status, 400);
    const body = (await response.json()) as { id: number; error: { code: number; data: unknown } };
    assert.equal(body.id, 7);
    assert.equal(body.error.code, -32022);
    assert.deepEqual(body.error.data, { supported: ['2026-07-28'], requested: 'v9' });
  });

  test('without Mcp-Method, or with an Mcp-Name naming another tool, gets 400 and -32020', async () => {
    const missing = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'mcp-protocol-version': '2026-07-28' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: ENVELOPE } }),
    });
    assert.equal(missing.status, 400);
    assert.equal(((await missing.json()) as { error: { code: number } }).error.code, -32020);
    const other = await post('tools/call', { name: 'echo', arguments: { text: 'x' } }, { 'mcp-name': 'add' });
    assert.equal(other.status, 400);
    assert.equal(other.body.error?.code, -32020);
    const spaced = await post('tools/call', { name: 'echo', arguments: { text: 'x' } }, { 'mcp-name': '  echo ' });
    assert.equal(spaced.status, 200);
  });
});

describe('a 2026-07-28 caller listening', () => {
  test('hears of updates to the resources its subscriptions/listen stream names', async () => {
    const client = new Client({ name: 'listener', version: '1' }, { versionNegotiation: { mode: 'auto' } });
    await client.connect(new StreamableHTTPClientTransport(new URL(endpoint)));
    const updated = new Promise<string>((resolve) => {
      client.setNotificationHandler('notifications/resources/updated', (notification) => {
        resolve(notification.params.uri);
      });
    });
    const subscription = await client.listen({ resourceSubscriptions: [DEMO_COUNTER_URI] });
    try {
      // The gateway asks the upstream for the URI's updates in the background.
      await new Promise((resolve) => setTimeout(resolve, 300));
      await client.callTool({ name: 'counter', arguments: { by: 1 } });
      assert.equal(
        await Promise.race([updated, new Promise((resolve) => setTimeout(() => resolve('timeout'), 5000))]),
        DEMO_COUNTER_URI,
      );
    } finally {
      await subscription.close();
      await client.close();
    }
  });
});

describe('a 2025-11-25 caller of an upstream spoken to in 2026-07-28', () => {
  test('subscribes to a resource and hears of its updates', async () => {
    const client = new Client({ name: 'subscriber', version: '1' }, { versionNegotiation: { mode: 'legacy' } });
    await client.connect(new StreamableHTTPClientTransport(new URL(endpoint)));
    try {
      const updated = new Promise<string>((resolve) => {
        client.setNotificationHandler('notifications/resources/updated', (notification) => {
          resolve(notification.params.uri);
        });
      });
      assert.deepEqual(await client.subscribeResource({ uri: DEMO_COUNTER_URI }), {});
      await client.callTool({ name: 'counter', arguments: { by: 1 } });
      assert.equal(
        await Promise.race([updated, new Promise((resolve) => setTimeout(() => resolve('timeout'), 5000))]),
        DEMO_COUNTER_URI,
      );
      assert.deepEqual(await client.unsubscribeResource({ uri: DEMO_COUNTER_URI }), {});
    } finally {
      await client.close();
    }
  });
});

describe('a 2025-11-25 caller of an upstream that serves both revisions', () => {
  let child: ChildProcess;
  let both: Gateway;

  before(async () => {
    // The conformance suite's upstream: 2025 sessions and 2026-07-28 on one endpoint.
    child = spawn(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(new URL('./fixtures/conformance-upstream.ts', import.meta.url))],
      {
        stdio: ['ignore', 'pipe', 'ignore'],
        env: { ...process.env, CONFORMANCE_UPSTREAM_QUIET: '1' },
      },
    );
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`the upstream exited (${code})`)));
    });
    const url = line.split(' ')[1]!;
    both = await startGateway({ port: 0, upstreams: [resolveProxyConfig({ name: 'both', serverUrl: url })] });
    await both.core.warmUp();
  });

  after(async () => {
    await both?.close();
    child?.kill('SIGTERM');
  });

  test('answers the sampling and elicitation it asks for mid-call, though the gateway speaks 2026-07-28 to it', async () => {
    assert.equal(both.core.catalog.upstreams[0]!.factory.upstream.info?.era, 'modern');
    const client = new Client(
      { name: 'asker', version: '1' },
      { capabilities: { elicitation: { form: {} }, sampling: {} }, versionNegotiation: { mode: 'legacy' } },
    );
    client.setRequestHandler('elicitation/create', () =>
      Promise.resolve({ action: 'accept', content: { response: 'teal' } }),
    );
    client.setRequestHandler('sampling/createMessage', () =>
      Promise.resolve({ role: 'assistant', content: { type: 'text', text: 'forty-two' }, model: 'test-model' }),
    );
    await client.connect(new StreamableHTTPClientTransport(new URL(`${both.url}/mcp`)));
    try {
      const sampled = await client.callTool({ name: 'test_sampling', arguments: { prompt: 'the answer?' } });
      assert.deepEqual(sampled.content, [{ type: 'text', text: 'LLM response: forty-two' }]);
      const asked = await client.callTool({ name: 'test_elicitation', arguments: { message: 'favourite colour?' } });
      assert.deepEqual(asked.content, [
        { type: 'text', text: 'User response: action=accept, content={"response":"teal"}' },
      ]);
    } finally {
      await client.close();
    }
  });

  test('gets the result of a call whose stream the upstream closed mid-call (resumed with Last-Event-ID)', async () => {
    const client = new Client({ name: 'poller', version: '1' }, { versionNegotiation: { mode: 'legacy' } });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${both.url}/mcp`)));
    try {
      const result = await client.callTool({ name: 'test_reconnection', arguments: {} });
      assert.match(JSON.stringify(result.content), /Reconnection test completed successfully/);
    } finally {
      await client.close();
    }
  });
});
