import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { createProxyFactory, isRelayError, RelayErrorCode } from '../src/index.js';
import type { StdioUpstream } from '../src/upstream/index.js';
import { startInProcessHttpFixture, stdioFixture } from './fixtures/index.js';

const modern = await startInProcessHttpFixture({ mode: 'modern' });
const legacy = await startInProcessHttpFixture({ mode: 'legacy', pageSize: 3 });
after(async () => {
  await modern.stop();
  await legacy.stop();
});

function textOf(result: { content: unknown[] }): string {
  return (result.content[0] as { text: string }).text;
}

/**
 * A real HTTP front for a fixture that misbehaves on purpose for tools/call: it answers 503 to the
 * first `unavailable` calls without forwarding them, and cuts the connection after forwarding when
 * `cutAfterForward` is set (the call ran upstream, but its answer never arrives).
 */
async function startFaultyFront(target: string, faults: { unavailable?: number; cutAfterForward?: boolean }) {
  const url = new URL(target);
  let unavailable = faults.unavailable ?? 0;
  const calls = { received: 0, forwarded: 0 };
  const server = http.createServer((req, res) => {
    const isCall = req.headers['mcp-method'] === 'tools/call' || req.headers['mcp-session-id'] !== undefined;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const toolCall = isCall && body.includes('"tools/call"');
      if (toolCall) calls.received++;
      if (toolCall && unavailable > 0) {
        unavailable--;
        res.writeHead(503, { 'content-type': 'text/plain' }).end('busy');
        return;
      }
      if (toolCall) calls.forwarded++;
      const forward = http.request(
        {
          host: url.hostname,
          port: url.port,
          path: req.url,
          method: req.method,
          headers: { ...req.headers, host: url.host },
        },
        (response) => {
          if (toolCall && faults.cutAfterForward) {
            response.resume();
            response.on('end', () => res.socket?.destroy());
            return;
          }
          res.writeHead(response.statusCode ?? 502, response.headers);
          response.pipe(res);
        },
      );
      forward.on('error', () => res.destroy());
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    calls,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('validateConnection()', () => {
  for (const [label, config] of [
    ['stdio', () => ({ name: 'demo', ...stdioFixture() })],
    ['HTTP 2026-07-28', () => ({ serverUrl: modern.url })],
    ['HTTP legacy', () => ({ serverUrl: legacy.url })],
  ] as const) {
    test(`${label}: reports healthy with the revision and server info`, async () => {
      await using factory = await createProxyFactory(config());
      const report = await factory.validateConnection();
      assert.equal(report.healthy, true);
      assert.equal(report.serverInfo?.name, 'mcp-relay-demo');
      assert.match(report.protocolVersion ?? '', /^20\d\d-\d\d-\d\d$/);
      assert.ok(report.latencyMs >= 0 && report.latencyMs < 5000);
      assert.equal(report.error, undefined);
    });
  }

  test('an unreachable server is reported unhealthy with a code, without throwing', async () => {
    const probe = http.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    await using factory = await createProxyFactory({ serverUrl: `http://127.0.0.1:${port}/mcp`, timeout: 2 });
    const report = await factory.validateConnection();
    assert.equal(report.healthy, false);
    assert.equal(report.error?.code, RelayErrorCode.UpstreamUnavailable);
    assert.match(report.error?.message ?? '', /ECONNREFUSED/);
  });
});

describe('retries', () => {
  test('a 503 before any body is retried (it surely never ran) and the call succeeds', async () => {
    const front = await startFaultyFront(modern.url, { unavailable: 2 });
    try {
      await using factory = await createProxyFactory({ serverUrl: front.url, maxRetries: 3, retryDelay: '1ms' });
      const before = modern.state.counter;
      const result = await factory.createToolProxy('counter').execute({});
      assert.equal(front.calls.received, 3, 'two refusals and one success');
      assert.equal(modern.state.counter, before + 1, 'the side effect happened exactly once');
      assert.equal(textOf(result), String(before + 1));
    } finally {
      await front.stop();
    }
  });

  test('max_retries bounds the attempts, then the error surfaces', async () => {
    const front = await startFaultyFront(modern.url, { unavailable: 10 });
    try {
      await using factory = await createProxyFactory({ serverUrl: front.url, maxRetries: 2, retryDelay: '1ms' });
      await assert.rejects(factory.createToolProxy('echo').execute({ text: 'x' }), (error: unknown) =>
        isRelayError(error, RelayErrorCode.UpstreamUnavailable),
      );
      assert.equal(front.calls.received, 3, 'one attempt and two retries');
    } finally {
      await front.stop();
    }
  });

  test('a call whose connection dropped after it reached the server is never retried', async () => {
    const front = await startFaultyFront(modern.url, { cutAfterForward: true });
    try {
      await using factory = await createProxyFactory({ serverUrl: front.url, maxRetries: 3, retryDelay: '1ms' });
      const before = modern.state.counter;
      await assert.rejects(factory.createToolProxy('counter').execute({}), (error: unknown) => {
        assert.ok(isRelayError(error, RelayErrorCode.UpstreamUnavailable));
        assert.equal(error.notSent, false);
        return true;
      });
      assert.equal(front.calls.forwarded, 1, 'sent once');
      assert.equal(modern.state.counter, before + 1, 'the counter ran exactly once');
    } finally {
      await front.stop();
    }
  });
});

describe('lists', () => {
  test('listTools walks every page of a paginated server', async () => {
    await using factory = await createProxyFactory({ serverUrl: legacy.url });
    const tools = await factory.listTools();
    const names = tools.map((t) => t.name);
    assert.ok(names.length > 6, `more than two pages of 3: got ${names.length}`);
    assert.equal(new Set(names).size, names.length, 'no tool listed twice');
    for (const expected of ['echo', 'add', 'counter', 'big']) assert.ok(names.includes(expected), expected);
  });

  test('resources, templates and prompts are listed', async () => {
    await using factory = await createProxyFactory({ serverUrl: modern.url });
    const resources = await factory.listResources();
    assert.ok(resources.some((r) => r.uri === 'demo://static/readme'));
    const templates = await factory.listResourceTemplates();
    assert.ok(templates.some((t) => t.uriTemplate === 'demo://items/{id}'));
    const prompts = await factory.listPrompts();
    assert.deepEqual(prompts.map((p) => p.name).sort(), ['greet', 'summarize']);
  });
});

describe('lifecycle', () => {
  test('await using closes the pool: the stdio processes exit', async () => {
    let pids: number[];
    {
      await using factory = await createProxyFactory({ name: 'demo', ...stdioFixture(), processes: 2 });
      await factory.createToolProxy('echo').execute({ text: 'x' });
      pids = (factory.upstream as StdioUpstream).pids;
      assert.equal(pids.length, 2);
    }
    for (const pid of pids) {
      assert.throws(() => process.kill(pid, 0), 'the process is gone');
    }
  });

  test('a closed factory refuses calls with RELAY_CLOSED', async () => {
    const factory = await createProxyFactory({ serverUrl: modern.url });
    await factory.close();
    await assert.rejects(factory.createToolProxy('echo').execute({ text: 'x' }), (error: unknown) =>
      isRelayError(error, RelayErrorCode.Closed),
    );
  });
});
