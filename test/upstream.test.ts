import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { isRelayError, RelayErrorCode } from '../src/errors/index.js';
import type { StdioUpstream } from '../src/upstream/index.js';
import { createUpstream, type Upstream, type UpstreamOptions } from '../src/upstream/index.js';
import { startHttpFixture, startInProcessHttpFixture, stdioFixture } from './fixtures/index.js';
import { startForwarder } from './helpers/forwarder.js';

type Transport = UpstreamOptions['transport'];

function options(name: string, transport: Transport, extra: Partial<UpstreamOptions> = {}): UpstreamOptions {
  return {
    name,
    transport,
    connectionPoolSize: 16,
    timeoutMs: 15_000,
    maxResponseBytes: 64 * 1024 * 1024,
    protocol: 'auto',
    ...extra,
  };
}

function stdio(mode: 'auto' | 'legacy' = 'auto', extra: { noise?: boolean; latencyMs?: number } = {}): Transport {
  return { kind: 'stdio', ...stdioFixture({ mode, ...extra }), env: {} };
}

function http_(url: string, headers: Record<string, string> = {}, authToken?: string): Transport {
  return { kind: 'http', url, headers, ...(authToken ? { authToken } : {}) };
}

function textOf(result: unknown): string {
  return (result as { content: { text: string }[] }).content[0]!.text;
}

async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const httpModern = await startInProcessHttpFixture({ mode: 'modern' });
const httpLegacy = await startInProcessHttpFixture({ mode: 'legacy' });
after(async () => {
  await httpModern.stop();
  await httpLegacy.stop();
});

const variants: { label: string; transport: () => Transport; era: 'modern' | 'legacy'; version: RegExp }[] = [
  { label: 'stdio, 2026-07-28', transport: () => stdio('auto'), era: 'modern', version: /^2026-07-28$/ },
  { label: 'stdio, legacy 2025', transport: () => stdio('legacy'), era: 'legacy', version: /^2025-/ },
  { label: 'HTTP, 2026-07-28', transport: () => http_(httpModern.url), era: 'modern', version: /^2026-07-28$/ },
  { label: 'HTTP, legacy sessions', transport: () => http_(httpLegacy.url), era: 'legacy', version: /^2025-/ },
];

for (const variant of variants) {
  describe(`upstream over ${variant.label}`, () => {
    let upstream: Upstream;
    test('negotiates the expected revision and reports the server', async () => {
      upstream = createUpstream(options('u', variant.transport()));
      const info = await upstream.connect();
      assert.equal(info.era, variant.era);
      assert.match(info.protocolVersion, variant.version);
      assert.equal(info.serverInfo?.name, 'mcp-relay-demo');
      assert.ok(info.capabilities?.tools, 'the server announced tools');
    });

    test('calls a tool, reads a resource and gets a prompt', async () => {
      assert.equal(
        textOf(await upstream.request('tools/call', { name: 'echo', arguments: { text: 'hello' } })),
        'hello',
      );
      const read = (await upstream.request('resources/read', { uri: 'demo://static/readme' })) as {
        contents: { text: string }[];
      };
      assert.match(read.contents[0]!.text, /demo/i);
      const prompt = (await upstream.request('prompts/get', { name: 'greet', arguments: { name: 'Ada' } })) as {
        messages: { content: { text: string } }[];
      };
      assert.match(prompt.messages[0]!.content.text, /Ada/);
    });

    test('a JSON-RPC error answer rejects with RELAY_UPSTREAM_ERROR carrying the code', async () => {
      await assert.rejects(upstream.request('no/such/method', {}), (error: unknown) => {
        assert.ok(isRelayError(error, RelayErrorCode.UpstreamError));
        assert.equal(error.rpcCode, -32601);
        return true;
      });
    });

    test('delivers progress notifications to the caller and resets the deadline', async () => {
      const updates: number[] = [];
      // 3 steps of 150 ms against a 250 ms deadline: only progress keeps the call alive.
      const result = await upstream.request(
        'tools/call',
        { name: 'slow', arguments: { ms: 450, steps: 3 } },
        { timeoutMs: 250, onProgress: (update) => updates.push(update.progress) },
      );
      assert.equal((result as { isError?: boolean }).isError ?? false, false);
      assert.ok(updates.length >= 2, `got ${updates.length} progress updates`);
      assert.deepEqual(
        updates,
        [...updates].sort((a, b) => a - b),
      );
    });

    test('a silent call fails with RELAY_TIMEOUT at its deadline and the next call works', async () => {
      const started = performance.now();
      await assert.rejects(
        upstream.request('tools/call', { name: 'slow', arguments: { ms: 5000 } }, { timeoutMs: 200 }),
        (error: unknown) => isRelayError(error, RelayErrorCode.Timeout) && /200 ms/.test(error.message),
      );
      assert.ok(performance.now() - started < 2000);
      assert.equal(
        textOf(await upstream.request('tools/call', { name: 'echo', arguments: { text: 'after' } })),
        'after',
      );
    });

    test('an aborted call rejects with RELAY_ABORTED', async () => {
      const controller = new AbortController();
      const call = upstream.request(
        'tools/call',
        { name: 'slow', arguments: { ms: 5000 } },
        { signal: controller.signal },
      );
      setTimeout(() => controller.abort(), 50);
      await assert.rejects(call, (error: unknown) => isRelayError(error, RelayErrorCode.Aborted));
    });

    test('returns a 10 MB result whole', async () => {
      const result = await upstream.request('tools/call', { name: 'big', arguments: { kb: 10 * 1024 } });
      assert.equal(textOf(result).length, 10 * 1024 * 1024);
    });

    test('200 concurrent calls each receive their own response', async () => {
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          upstream.request('tools/call', { name: 'echo', arguments: { text: `c${i}` } }),
        ),
      );
      results.forEach((result, i) => assert.equal(textOf(result), `c${i}`));
    });

    test('close() is idempotent and later calls fail with RELAY_CLOSED', async () => {
      await upstream.close();
      await upstream.close();
      await assert.rejects(upstream.request('ping', undefined), (error: unknown) =>
        isRelayError(error, RelayErrorCode.Closed),
      );
    });
  });
}

describe('cancellation reaches the upstream', () => {
  for (const mode of ['modern', 'legacy'] as const) {
    test(`HTTP ${mode}: the server's handler sees the abort`, async () => {
      const fixture = await startInProcessHttpFixture({ mode });
      const upstream = createUpstream(options('cancel', http_(fixture.url)));
      try {
        await upstream.connect();
        const cancelled = new Promise<string>((resolve) => fixture.state.events.once('cancelled', resolve));
        const started = new Promise<string>((resolve) => fixture.state.events.once('call', resolve));
        const controller = new AbortController();
        const call = upstream.request(
          'tools/call',
          { name: 'slow', arguments: { ms: 10_000 } },
          { signal: controller.signal },
        );
        await started;
        controller.abort();
        await assert.rejects(call, (error: unknown) => isRelayError(error, RelayErrorCode.Aborted));
        assert.equal(await cancelled, 'slow');
      } finally {
        await upstream.close();
        await fixture.stop();
      }
    });
  }
});

describe('HTTP headers', () => {
  test('auth_token is sent as a bearer token and configured headers on every request', async () => {
    const forwarder = await startForwarder(httpModern.url);
    const upstream = createUpstream(options('auth', http_(forwarder.url, { 'X-Tenant-ID': 'tenant_a' }, 's3cret')));
    try {
      await upstream.request('tools/call', { name: 'echo', arguments: { text: 'x' } });
      assert.ok(forwarder.seen.length >= 2, 'handshake and call both went through the forwarder');
      for (const headers of forwarder.seen) {
        assert.equal(headers['authorization'], 'Bearer s3cret');
        assert.equal(headers['x-tenant-id'], 'tenant_a');
      }
      const call = forwarder.seen.at(-1)!;
      assert.equal(call['mcp-method'], 'tools/call');
      assert.equal(call['mcp-name'], 'echo');
      assert.equal(call['mcp-protocol-version'], '2026-07-28');
    } finally {
      await upstream.close();
      await forwarder.stop();
    }
  });

  test('a legacy session the server forgot (404) is re-initialized once and the call replayed', async () => {
    const first = await startInProcessHttpFixture({ mode: 'legacy' });
    const second = await startInProcessHttpFixture({ mode: 'legacy' });
    const forwarder = await startForwarder(first.url);
    const upstream = createUpstream(options('session', http_(forwarder.url)));
    try {
      assert.equal(textOf(await upstream.request('tools/call', { name: 'counter', arguments: {} })), '1');
      const sessionBefore = forwarder.seen.at(-1)!['mcp-session-id'];
      assert.ok(sessionBefore, 'the legacy call carried a session id');
      forwarder.retarget(second.url); // the new server has never heard of that session
      assert.equal(textOf(await upstream.request('tools/call', { name: 'counter', arguments: {} })), '1');
      const sessionAfter = forwarder.seen.at(-1)!['mcp-session-id'];
      assert.ok(sessionAfter && sessionAfter !== sessionBefore, 'a new session was opened');
      assert.equal(second.state.counter, 1, 'the replay ran exactly once on the new server');
      assert.equal(first.state.counter, 1);
    } finally {
      await upstream.close();
      await forwarder.stop();
      await first.stop();
      await second.stop();
    }
  });
});

describe('failures', () => {
  test('an HTTP upstream that does not exist fails with RELAY_UPSTREAM_UNAVAILABLE within the timeout', async () => {
    const port = await freePort();
    const upstream = createUpstream(options('missing', http_(`http://127.0.0.1:${port}/mcp`), { timeoutMs: 3000 }));
    const started = performance.now();
    await assert.rejects(upstream.request('ping', undefined), (error: unknown) => {
      assert.ok(isRelayError(error, RelayErrorCode.UpstreamUnavailable));
      assert.match(error.message, /ECONNREFUSED/);
      assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
      assert.equal(error.notSent, true);
      return true;
    });
    assert.ok(performance.now() - started < 3000);
    await upstream.close();
  });

  test('a stdio command that does not exist fails with a clear error', async () => {
    const upstream = createUpstream(
      options('nocmd', { kind: 'stdio', command: 'mcp-relay-no-such-command', args: [], env: {} }),
    );
    await assert.rejects(upstream.request('ping', undefined), (error: unknown) => {
      assert.ok(isRelayError(error, RelayErrorCode.UpstreamUnavailable));
      assert.match(error.message, /mcp-relay-no-such-command/);
      assert.match(error.message, /ENOENT/);
      return true;
    });
    await upstream.close();
  });

  test('a stdio server that crashes mid-call: an error, no hang, and the pool serves the next call', async () => {
    const upstream = createUpstream(options('crashy', stdio('auto'))) as StdioUpstream;
    try {
      await upstream.connect();
      const [pid] = upstream.pids;
      await assert.rejects(
        upstream.request('tools/call', { name: 'crash', arguments: { mode: 'exit' } }),
        (error: unknown) => {
          assert.ok(isRelayError(error, RelayErrorCode.UpstreamUnavailable));
          assert.match(error.message, /exited/);
          return true;
        },
      );
      assert.equal(textOf(await upstream.request('tools/call', { name: 'echo', arguments: { text: 'back' } })), 'back');
      assert.notEqual(upstream.pids[0], pid, 'a new process serves');
    } finally {
      await upstream.close();
    }
  });

  test('an HTTP server process that dies mid-call: an error, no hang', async () => {
    const fixture = await startHttpFixture({ mode: 'modern' });
    const upstream = createUpstream(options('dies', http_(fixture.url)));
    try {
      await upstream.connect();
      await assert.rejects(
        upstream.request('tools/call', { name: 'crash', arguments: { mode: 'exit' } }),
        (error: unknown) => isRelayError(error, RelayErrorCode.UpstreamUnavailable),
      );
    } finally {
      await upstream.close();
      await fixture.stop();
    }
  });

  test('an HTTP connection dropped mid-call: an error, and the pool serves the next call', async () => {
    const upstream = createUpstream(options('drop', http_(httpModern.url)));
    try {
      await assert.rejects(
        upstream.request('tools/call', { name: 'crash', arguments: { mode: 'drop' } }),
        (error: unknown) => isRelayError(error, RelayErrorCode.UpstreamUnavailable) && error.notSent === false,
      );
      assert.equal(textOf(await upstream.request('tools/call', { name: 'echo', arguments: { text: 'next' } })), 'next');
    } finally {
      await upstream.close();
    }
  });

  test('a stdio server that writes garbage to stdout is still understood', async () => {
    const upstream = createUpstream(options('noisy', stdio('auto', { noise: true })));
    try {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          upstream.request('tools/call', { name: 'echo', arguments: { text: `n${i}` } }),
        ),
      );
      results.forEach((result, i) => assert.equal(textOf(result), `n${i}`));
    } finally {
      await upstream.close();
    }
  });

  for (const [label, transport] of [
    ['stdio', () => stdio('auto')],
    ['HTTP', () => http_(httpModern.url)],
  ] as const) {
    test(`${label}: a response over max_response_bytes fails with RELAY_RESPONSE_TOO_LARGE and the next call works`, async () => {
      const upstream = createUpstream(options('limit', transport(), { maxResponseBytes: 256 * 1024 }));
      try {
        await assert.rejects(
          upstream.request('tools/call', { name: 'big', arguments: { kb: 1024 } }),
          (error: unknown) =>
            isRelayError(error, RelayErrorCode.ResponseTooLarge) && /262144 bytes/.test(error.message),
        );
        assert.equal(textOf(await upstream.request('tools/call', { name: 'echo', arguments: { text: 'ok' } })), 'ok');
      } finally {
        await upstream.close();
      }
    });
  }

  test('a full pool with a full queue fails fast with RELAY_POOL_EXHAUSTED naming the sizes', async () => {
    const upstream = createUpstream(options('tiny', http_(httpModern.url), { connectionPoolSize: 1, maxQueue: 1 }));
    try {
      const slow = upstream.request('tools/call', { name: 'slow', arguments: { ms: 300 } });
      const queued = upstream.request('tools/call', { name: 'echo', arguments: { text: 'q' } });
      await assert.rejects(
        upstream.request('tools/call', { name: 'echo', arguments: { text: 'x' } }),
        (error: unknown) => {
          assert.ok(isRelayError(error, RelayErrorCode.PoolExhausted));
          assert.match(error.message, /pool size 1/);
          assert.match(error.message, /1 queued of at most 1/);
          return true;
        },
      );
      await slow;
      assert.equal(textOf(await queued), 'q');
    } finally {
      await upstream.close();
    }
  });
});

describe('close() leaves nothing behind', () => {
  test('no child process, socket or timer survives close()', async () => {
    const before = new Set(process.getActiveResourcesInfo());
    const countBefore = process.getActiveResourcesInfo().length;
    const upstreams = [
      createUpstream(options('a', stdio('auto'), { processes: 2 })),
      createUpstream(options('b', http_(httpModern.url))),
      createUpstream(options('c', http_(httpLegacy.url))),
    ];
    await Promise.all(
      upstreams.map((u) =>
        Promise.all(
          Array.from({ length: 8 }, () => u.request('tools/call', { name: 'echo', arguments: { text: 'x' } })),
        ),
      ),
    );
    const pids = (upstreams[0] as StdioUpstream).pids;
    assert.equal(pids.length, 2, 'both processes of the stdio pool ran');
    await Promise.all(upstreams.map((u) => u.close()));
    for (const pid of pids) assert.equal(alive(pid), false, `process ${pid} is gone`);
    // Sockets close on the next turns of the loop; give them those turns, not a sleep.
    for (let i = 0; i < 20 && process.getActiveResourcesInfo().length > countBefore; i++) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    const leaked = process.getActiveResourcesInfo().filter((r) => !before.has(r));
    assert.ok(process.getActiveResourcesInfo().length <= countBefore, `left behind: ${leaked.join(', ')}`);
  });
});
