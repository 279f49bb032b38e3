/**
 * The demo upstream, proven through the official SDK client over real stdio pipes and loopback
 * HTTP, in both protocol eras. Other suites rely on these behaviours, so each is asserted here.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createConnection } from 'node:net';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { Transport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import {
  CLIENT_CAPABILITIES_META_KEY,
  CLIENT_INFO_META_KEY,
  PROTOCOL_VERSION_META_KEY,
} from '@modelcontextprotocol/server';

import {
  DEMO_COUNTER_URI,
  DEMO_NOISE_LINE,
  DEMO_README_TEXT,
  DEMO_README_URI,
  startHttpFixture,
  startInProcessHttpFixture,
  stdioFixture,
} from './fixtures/index.js';
import type { HttpFixture, InProcessHttpFixture } from './fixtures/index.js';

const MODERN = '2026-07-28';
/** Guard against a hang, not a wait: every await below resolves on an event long before this. */
const EVENT_TIMEOUT_MS = 5_000;

type Negotiation = 'auto' | 'legacy';

function newClient(negotiation: Negotiation): Client {
  return new Client({ name: 'fixtures-test', version: '1.0.0' }, { versionNegotiation: { mode: negotiation } });
}

async function connect(transport: Transport, negotiation: Negotiation): Promise<Client> {
  const client = newClient(negotiation);
  await client.connect(transport);
  return client;
}

function httpTransport(url: string): StreamableHTTPClientTransport {
  return new StreamableHTTPClientTransport(new URL(url));
}

function stdioTransport(fixture: { command: string; args: string[] }): StdioClientTransport {
  return new StdioClientTransport({ ...fixture, stderr: 'ignore' });
}

function textOf(result: { content?: unknown }): string {
  const content = result.content as { type: string; text?: string }[];
  assert.equal(content[0]?.type, 'text');
  return content[0].text!;
}

/** Resolves with the params of the next notification `method` that `accept` approves. */
function nextNotification(client: Client, method: string, accept: (params: unknown) => boolean = () => true) {
  return new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${method} within ${EVENT_TIMEOUT_MS} ms`)), EVENT_TIMEOUT_MS);
    client.setNotificationHandler(method as 'notifications/tools/list_changed', (notification) => {
      const params = (notification.params ?? {}) as Record<string, unknown>;
      if (!accept(params)) return;
      clearTimeout(timer);
      client.removeNotificationHandler(method);
      resolve(params);
    });
  });
}

interface ProgressParams {
  progressToken: string | number;
  progress: number;
  total?: number;
}

/** Records the `notifications/progress` messages the transport delivers, before the client sees them. */
function captureProgress(transport: Transport): { seen: ProgressParams[]; restore(): void } {
  const seen: ProgressParams[] = [];
  const deliver = transport.onmessage!;
  transport.onmessage = (message, extra) => {
    if ('method' in message && message.method === 'notifications/progress')
      seen.push(message.params as unknown as ProgressParams);
    deliver(message, extra);
  };
  return { seen, restore: () => (transport.onmessage = deliver) };
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${EVENT_TIMEOUT_MS} ms`)), EVENT_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

interface Setup {
  label: string;
  era: 'modern' | 'legacy';
  negotiation: Negotiation;
  /** Whether the connection can carry server-initiated notifications (not 2025 stateless HTTP). */
  notifications: boolean;
  start(): Promise<{ transport: () => Transport; stop: () => Promise<void> }>;
}

const stdioSetup = (label: string, mode: 'auto' | 'legacy', negotiation: Negotiation, era: Setup['era']): Setup => ({
  label,
  era,
  negotiation,
  notifications: true,
  start: () => Promise.resolve({ transport: () => stdioTransport(stdioFixture({ mode })), stop: async () => {} }),
});

const httpSetup = (label: string, mode: 'modern' | 'legacy', negotiation: Negotiation, era: Setup['era']): Setup => ({
  label,
  era,
  negotiation,
  notifications: !(mode === 'modern' && era === 'legacy'),
  start: async () => {
    const fixture = await startHttpFixture({ mode });
    return { transport: () => httpTransport(fixture.url), stop: () => fixture.stop() };
  },
});

const SETUPS: Setup[] = [
  stdioSetup('stdio (both eras), auto-negotiating client', 'auto', 'auto', 'modern'),
  stdioSetup('stdio (both eras), 2025 client', 'auto', 'legacy', 'legacy'),
  stdioSetup('stdio (2025 only), auto-negotiating client', 'legacy', 'auto', 'legacy'),
  httpSetup('HTTP modern entry, auto-negotiating client', 'modern', 'auto', 'modern'),
  httpSetup('HTTP modern entry, 2025 client (stateless)', 'modern', 'legacy', 'legacy'),
  httpSetup('HTTP legacy sessions, 2025 client', 'legacy', 'legacy', 'legacy'),
  httpSetup('HTTP legacy sessions, auto-negotiating client', 'legacy', 'auto', 'legacy'),
];

void describe('demo upstream', { concurrency: true }, () => {
  for (const setup of SETUPS) {
    void describe(setup.label, { concurrency: 1 }, () => {
      let client: Client;
      let transport: Transport;
      let stop: () => Promise<void>;

      before(async () => {
        const started = await setup.start();
        stop = started.stop;
        transport = started.transport();
        client = await connect(transport, setup.negotiation);
      });
      after(async () => {
        await client?.close();
        await stop?.();
      });

      void test(`negotiates the ${setup.era} era`, () => {
        assert.equal(client.getProtocolEra(), setup.era);
        assert.equal(client.getServerVersion()?.name, 'mcp-relay-demo');
        assert.equal(client.getServerCapabilities()?.resources?.subscribe, true);
      });

      void test('lists every demo tool, with add annotated read-only', async () => {
        const { tools } = await client.listTools();
        const names = tools.map((tool) => tool.name);
        for (const name of [
          'echo',
          'add',
          'counter',
          'counter_value',
          'slow',
          'fail',
          'crash',
          'big',
          'set_latency',
          'toggle_extra_tool',
          'ask',
          'sample',
        ]) {
          assert.ok(names.includes(name), `tools/list lacks ${name}: ${names.join(', ')}`);
        }
        assert.equal(tools.find((tool) => tool.name === 'add')?.annotations?.readOnlyHint, true);
      });

      void test('echo returns its text', async () => {
        assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'héllo' } })), 'héllo');
      });

      void test('add returns the sum as text and as structuredContent', async () => {
        const result = await client.callTool({ name: 'add', arguments: { a: 2, b: 40 } });
        assert.equal(textOf(result), '42');
        assert.deepEqual(result.structuredContent, { sum: 42 });
      });

      void test('counter increments a shared count that counter_value reads without changing it', async () => {
        const before = Number(textOf(await client.callTool({ name: 'counter_value', arguments: {} })));
        assert.equal(textOf(await client.callTool({ name: 'counter', arguments: {} })), String(before + 1));
        assert.equal(textOf(await client.callTool({ name: 'counter', arguments: { by: 5 } })), String(before + 6));
        assert.equal(textOf(await client.callTool({ name: 'counter_value', arguments: {} })), String(before + 6));
        assert.equal(textOf(await client.callTool({ name: 'counter_value', arguments: {} })), String(before + 6));
      });

      void test('fail returns isError with the message', async () => {
        const result = await client.callTool({ name: 'fail', arguments: { message: 'boom' } });
        assert.equal(result.isError, true);
        assert.equal(textOf(result), 'boom');
      });

      void test('big returns exactly kb * 1024 characters', async () => {
        assert.equal(textOf(await client.callTool({ name: 'big', arguments: { kb: 300 } })).length, 300 * 1024);
      });

      void test('resources: lists and reads the readme, a templated item and the counter', async () => {
        const { resources } = await client.listResources();
        const uris = resources.map((resource) => resource.uri);
        for (const uri of [DEMO_README_URI, DEMO_COUNTER_URI, 'demo://items/1']) assert.ok(uris.includes(uri), uri);
        const { resourceTemplates } = await client.listResourceTemplates();
        assert.deepEqual(
          resourceTemplates.map((template) => template.uriTemplate),
          ['demo://items/{id}'],
        );

        const readme = await client.readResource({ uri: DEMO_README_URI });
        assert.equal((readme.contents[0] as { text: string }).text, DEMO_README_TEXT);
        const item = await client.readResource({ uri: 'demo://items/xyz' });
        assert.deepEqual(JSON.parse((item.contents[0] as { text: string }).text), { id: 'xyz', name: 'item xyz' });
        const count = textOf(await client.callTool({ name: 'counter_value', arguments: {} }));
        const counter = await client.readResource({ uri: DEMO_COUNTER_URI });
        assert.equal((counter.contents[0] as { text: string }).text, count);
      });

      void test('prompts: greet and summarize return messages with their arguments', async () => {
        const { prompts } = await client.listPrompts();
        assert.deepEqual(prompts.map((prompt) => prompt.name).sort(), ['greet', 'summarize']);
        const greet = await client.getPrompt({ name: 'greet', arguments: { name: 'Ada' } });
        assert.match((greet.messages[0]?.content as { text: string }).text, /Ada/);
        const summary = await client.getPrompt({ name: 'summarize', arguments: { text: 'long text', style: 'terse' } });
        assert.match((summary.messages[0]?.content as { text: string }).text, /terse style:\n\nlong text$/);
      });

      void test('slow sends one progress notification per step on the wire, then answers', async () => {
        // Observed on the transport, not through `onprogress`: the SDK client dispatches
        // notifications a microtask late but settles responses at once, so a progress notification
        // read in the same chunk as the response is dropped as "unknown token".
        const progress = captureProgress(transport);
        try {
          const result = await client.callTool(
            { name: 'slow', arguments: { ms: 30, steps: 3 } },
            { onprogress: () => {} },
          );
          assert.equal(textOf(result), 'slept 30 ms');
          assert.deepEqual(
            progress.seen.map(({ progress: step, total }) => [step, total]),
            [
              [1, 3],
              [2, 3],
              [3, 3],
            ],
          );
          assert.equal(new Set(progress.seen.map(({ progressToken }) => progressToken)).size, 1);
        } finally {
          progress.restore();
        }
      });

      if (setup.notifications) {
        void test('toggle_extra_tool emits notifications/tools/list_changed and the extra tool appears, then goes', async () => {
          const subscription = setup.era === 'modern' ? await client.listen({ toolsListChanged: true }) : undefined;
          try {
            let changed = nextNotification(client, 'notifications/tools/list_changed');
            assert.equal(
              textOf(await client.callTool({ name: 'toggle_extra_tool', arguments: {} })),
              'extra tool added',
            );
            await changed;
            let names = (await client.listTools()).tools.map((tool) => tool.name);
            assert.ok(names.includes('extra'), names.join(', '));
            assert.equal(textOf(await client.callTool({ name: 'extra', arguments: {} })), 'extra');

            changed = nextNotification(client, 'notifications/tools/list_changed');
            assert.equal(
              textOf(await client.callTool({ name: 'toggle_extra_tool', arguments: {} })),
              'extra tool removed',
            );
            await changed;
            names = (await client.listTools()).tools.map((tool) => tool.name);
            assert.ok(!names.includes('extra'), names.join(', '));
          } finally {
            await subscription?.close();
          }
        });

        void test('counter emits notifications/resources/updated to subscribers of the counter resource', async () => {
          let subscription;
          if (setup.era === 'modern') subscription = await client.listen({ resourceSubscriptions: [DEMO_COUNTER_URI] });
          else await client.subscribeResource({ uri: DEMO_COUNTER_URI });
          try {
            const updated = nextNotification(client, 'notifications/resources/updated');
            const count = textOf(await client.callTool({ name: 'counter', arguments: {} }));
            assert.equal((await updated)['uri'], DEMO_COUNTER_URI);
            const read = await client.readResource({ uri: DEMO_COUNTER_URI });
            assert.equal((read.contents[0] as { text: string }).text, count);
          } finally {
            if (subscription) await subscription.close();
            else await client.unsubscribeResource({ uri: DEMO_COUNTER_URI });
          }
        });
      }
    });
  }

  void describe('in-process HTTP fixture', { concurrency: 1 }, () => {
    for (const mode of ['modern', 'legacy'] as const) {
      const negotiation: Negotiation = mode === 'modern' ? 'auto' : 'legacy';

      void test(`${mode}: latencyMs delays every answer and set_latency changes it at runtime`, async () => {
        const fixture = await startInProcessHttpFixture({ mode, latencyMs: 150 });
        const client = await connect(httpTransport(fixture.url), negotiation);
        try {
          let start = performance.now();
          await client.callTool({ name: 'echo', arguments: { text: 'x' } });
          assert.ok(performance.now() - start >= 140, `answered in ${performance.now() - start} ms`);
          start = performance.now();
          await client.readResource({ uri: DEMO_COUNTER_URI });
          assert.ok(performance.now() - start >= 140, `read in ${performance.now() - start} ms`);

          await client.callTool({ name: 'set_latency', arguments: { ms: 0 } });
          assert.equal(fixture.state.latencyMs, 0);
          fixture.state.latencyMs = 400;
          start = performance.now();
          await client.getPrompt({ name: 'greet', arguments: { name: 'x' } });
          assert.ok(performance.now() - start >= 390, `prompt in ${performance.now() - start} ms`);
        } finally {
          await client.close();
          await fixture.stop();
        }
      });

      void test(`${mode}: slow stops early when the caller cancels`, async () => {
        const fixture = await startInProcessHttpFixture({ mode });
        const client = await connect(httpTransport(fixture.url), negotiation);
        try {
          const controller = new AbortController();
          const started = once(fixture.state.events, 'call');
          const cancelled = once(fixture.state.events, 'cancelled');
          const call = client.callTool({ name: 'slow', arguments: { ms: 60_000 } }, { signal: controller.signal });
          assert.deepEqual(await withTimeout(started, 'slow started'), ['slow']);
          controller.abort();
          await assert.rejects(call);
          assert.deepEqual(await withTimeout(cancelled, 'slow cancelled'), ['slow']);
        } finally {
          await client.close();
          await fixture.stop();
        }
      });

      void test(`${mode}: crash drop destroys the connection without an answer, and the server keeps serving`, async () => {
        const fixture = await startInProcessHttpFixture({ mode });
        const client = await connect(httpTransport(fixture.url), negotiation);
        try {
          await assert.rejects(client.callTool({ name: 'crash', arguments: { mode: 'drop' } }));
          assert.equal(fixture.state.calls.get('crash'), 1);
          const again = await connect(httpTransport(fixture.url), negotiation);
          assert.equal(textOf(await again.callTool({ name: 'echo', arguments: { text: 'alive' } })), 'alive');
          await again.close();
        } finally {
          await client.close();
          await fixture.stop();
        }
      });

      void test(`${mode}: pageSize paginates the list results behind an opaque cursor`, async () => {
        const fixture = await startInProcessHttpFixture({ mode, pageSize: 4 });
        const client = await connect(httpTransport(fixture.url), negotiation);
        try {
          const first = await client.request({ method: 'tools/list', params: {} });
          assert.equal(first.tools.length, 4);
          assert.equal(typeof first.nextCursor, 'string');
          const second = await client.listTools({ cursor: first.nextCursor! });
          assert.equal(second.tools.length, 4);
          const all = await client.listTools();
          assert.equal(all.tools.length, 12, 'ten tools plus ask and sample');
          assert.deepEqual(
            [...first.tools, ...second.tools].map((tool) => tool.name),
            all.tools.slice(0, 8).map((tool) => tool.name),
          );
          await assert.rejects(client.listTools({ cursor: 'not-a-cursor' }), /invalid cursor/);
          assert.equal((await client.listResources()).resources.length, 5);
        } finally {
          await client.close();
          await fixture.stop();
        }
      });
    }
  });

  void describe('wire details', { concurrency: 1 }, () => {
    let modern: InProcessHttpFixture;
    let legacy: InProcessHttpFixture;
    before(async () => {
      [modern, legacy] = await Promise.all([
        startInProcessHttpFixture({ mode: 'modern' }),
        startInProcessHttpFixture({ mode: 'legacy' }),
      ]);
    });
    after(async () => {
      await Promise.all([modern.stop(), legacy.stop()]);
    });

    async function modernCall(method: string, params: Record<string, unknown> = {}) {
      const response = await fetch(modern.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-protocol-version': MODERN,
          'mcp-method': method,
          // 2026-07-28: tools/call, resources/read and prompts/get also name their target in a header.
          ...(typeof params['uri'] === 'string' ? { 'mcp-name': params['uri'] } : {}),
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method,
          params: {
            ...params,
            _meta: {
              [PROTOCOL_VERSION_META_KEY]: MODERN,
              [CLIENT_INFO_META_KEY]: { name: 'raw', version: '1' },
              [CLIENT_CAPABILITIES_META_KEY]: {},
            },
          },
        }),
      });
      assert.equal(response.status, 200, await response.clone().text());
      return ((await response.json()) as { result: Record<string, unknown> }).result;
    }

    void test('2026-07-28 cache hints: lists and the readme are public for 60 s, the counter is private and immediately stale', async () => {
      for (const method of ['tools/list', 'prompts/list', 'resources/list', 'resources/templates/list']) {
        const result = await modernCall(method);
        assert.deepEqual([result['ttlMs'], result['cacheScope']], [60_000, 'public'], method);
      }
      const readme = await modernCall('resources/read', { uri: DEMO_README_URI });
      assert.deepEqual([readme['ttlMs'], readme['cacheScope']], [60_000, 'public']);
      const counter = await modernCall('resources/read', { uri: DEMO_COUNTER_URI });
      assert.deepEqual([counter['ttlMs'], counter['cacheScope']], [0, 'private']);
    });

    void test('the modern entry answers a 2025 GET (session stream) with 405: it holds no sessions', async () => {
      const response = await fetch(modern.url, { headers: { accept: 'text/event-stream' } });
      await response.body?.cancel();
      assert.equal(response.status, 405);
    });

    void test('legacy sessions: unknown session 404, GET opens the stream, DELETE ends the session', async () => {
      const unknown = await fetch(legacy.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-session-id': 'no-such-session',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
      });
      await unknown.body?.cancel();
      assert.equal(unknown.status, 404);

      const transport = httpTransport(legacy.url);
      const client = await connect(transport, 'legacy');
      const sessionId = transport.sessionId!;
      assert.ok(sessionId);
      const stream = await fetch(legacy.url, {
        headers: { accept: 'text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
      });
      assert.equal(stream.status, 409, 'the SDK client already holds the one GET stream a session allows');
      await stream.body?.cancel();

      const deleted = await fetch(legacy.url, {
        method: 'DELETE',
        headers: { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
      });
      assert.equal(deleted.status, 200);
      await assert.rejects(client.callTool({ name: 'echo', arguments: { text: 'x' } }));
      await client.close();
    });

    void test('stop() resolves while a client holds a session stream open, and the port then refuses connections', async () => {
      const fixture = await startInProcessHttpFixture({ mode: 'legacy' });
      const transport = httpTransport(fixture.url);
      const client = await connect(transport, 'legacy');
      const closed = new Promise<void>((resolve) => {
        client.onclose = resolve;
      });
      await fixture.stop();
      await fixture.stop();
      const { port } = new URL(fixture.url);
      const socket = createConnection({ host: '127.0.0.1', port: Number(port) });
      const [error] = (await once(socket, 'error')) as [NodeJS.ErrnoException];
      assert.equal(error.code, 'ECONNREFUSED');
      await client.close();
      await closed;
    });
  });

  void describe('processes', { concurrency: 1 }, () => {
    let fixture: HttpFixture;
    after(async () => fixture?.stop());

    void test('crash exit kills the HTTP child mid-call with exit code 1', async () => {
      fixture = await startHttpFixture({ mode: 'modern' });
      const client = await connect(httpTransport(fixture.url), 'auto');
      const exited = once(fixture.child, 'exit');
      await assert.rejects(client.callTool({ name: 'crash', arguments: {} }));
      assert.deepEqual(await withTimeout(exited, 'child exit'), [1, null]);
      await fixture.stop();
      await client.close();
    });

    void test('crash exit over stdio closes the connection', async () => {
      const transport = stdioTransport(stdioFixture({ mode: 'legacy' }));
      const client = await connect(transport, 'legacy');
      const closed = new Promise<void>((resolve) => {
        client.onclose = resolve;
      });
      await assert.rejects(client.callTool({ name: 'crash', arguments: { mode: 'exit' } }));
      await withTimeout(closed, 'stdio close');
    });

    void test('crash drop over stdio is a tool error, not a crash', async () => {
      const client = await connect(stdioTransport(stdioFixture({ mode: 'legacy' })), 'legacy');
      try {
        const result = await client.callTool({ name: 'crash', arguments: { mode: 'drop' } });
        assert.equal(result.isError, true);
        assert.match(textOf(result), /needs the HTTP transport/);
      } finally {
        await client.close();
      }
    });

    void test('the HTTP child exits with code 0 on SIGTERM, and stop() is idempotent', async () => {
      const child = await startHttpFixture({ mode: 'legacy' });
      const exited = once(child.child, 'exit');
      await Promise.all([child.stop(), child.stop()]);
      await child.stop();
      assert.deepEqual(await exited, [0, null]);
    });

    void test('the stdio child exits with code 0 when its stdin closes', async () => {
      const { command, args } = stdioFixture();
      const child = spawn(command, args, { stdio: ['pipe', 'ignore', 'ignore'] });
      const exited = once(child, 'exit');
      child.stdin.end();
      assert.deepEqual(await withTimeout(exited, 'stdio child exit'), [0, null]);
    });

    void test('noise mode writes a non-JSON line to stdout before every response', async () => {
      const { command, args } = stdioFixture({ mode: 'legacy', noise: true });
      const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'ignore'] });
      const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
      child.stdin.write(
        `${JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
        })}\n`,
      );
      assert.equal((await lines.next()).value, DEMO_NOISE_LINE);
      const response = JSON.parse((await lines.next()).value as string) as { id: number; result: unknown };
      assert.equal(response.id, 1);
      assert.ok(response.result);
      const exited = once(child, 'exit');
      child.stdin.end();
      assert.deepEqual(await withTimeout(exited, 'noise child exit'), [0, null]);
    });
  });
});
