/**
 * The replica harness (test/helpers/replicas.ts) that scale-out tests stand on: it starts real
 * `mcp-relay serve` processes from one config, each answers MCP on its own port, and kill/close end
 * them by pid with nothing left running.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { stdioFixture } from './fixtures/index.js';
import { startReplicas } from './helpers/replicas.js';

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('three replicas from one config each answer initialize and tools/list, and close() ends them all', async () => {
  const replicas = await startReplicas({ count: 3, config: { upstreams: { demo: stdioFixture() } } });
  try {
    assert.equal(new Set(replicas.urls).size, 3);
    assert.equal(new Set(replicas.pids).size, 3);
    for (const url of replicas.urls) {
      const client = new Client({ name: 'harness', version: '1' }, { versionNegotiation: { mode: 'legacy' } });
      await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp`)));
      try {
        const { tools } = await client.listTools();
        assert.ok(
          tools.some((tool) => tool.name === 'echo'),
          `no echo tool at ${url}: ${tools.map((t) => t.name).join(', ')}`,
        );
      } finally {
        await client.close();
      }
    }
  } finally {
    await replicas.close();
  }
  for (const pid of replicas.pids) assert.equal(running(pid), false, `replica ${pid} still running`);
});

test('kill(i) ends one replica by pid while the others keep serving', async () => {
  const replicas = await startReplicas({
    count: 2,
    config: 'upstreams:\n  demo: { command: node }\n',
    extra: { upstreams: { demo: stdioFixture() } },
  });
  try {
    const ended = await replicas.kill(0, 'SIGKILL');
    assert.equal(ended, 'SIGKILL');
    assert.equal(replicas.alive(0), false);
    assert.equal(running(replicas.pids[0]!), false);
    await assert.rejects(fetch(`${replicas.urls[0]}/mcp`, { method: 'POST' }));
    const client = new Client({ name: 'harness', version: '1' }, { versionNegotiation: { mode: 'auto' } });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${replicas.urls[1]}/mcp`)));
    try {
      const result = await client.callTool({ name: 'echo', arguments: { text: 'still here' } });
      assert.notEqual(result.isError, true);
      assert.match(JSON.stringify(result.content), /still here/);
    } finally {
      await client.close();
    }
    assert.match(replicas.output(1), /listening on/);
  } finally {
    await replicas.close();
  }
  for (const pid of replicas.pids) assert.equal(running(pid), false, `replica ${pid} still running`);
});

test('SIGTERM with server.drain_delay: /readyz answers 503 while a call in flight finishes, then the process exits 0', async () => {
  const replicas = await startReplicas({
    count: 1,
    config: { server: { drain_delay: '1500ms', drain_timeout: '10s' }, upstreams: { demo: stdioFixture() } },
  });
  try {
    const client = new Client({ name: 'harness', version: '1' }, { versionNegotiation: { mode: 'auto' } });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${replicas.urls[0]}/mcp`)));
    const slow = client.callTool({ name: 'slow', arguments: { ms: 1000 } });
    // The call is in flight before the signal.
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal((await fetch(`${replicas.urls[0]}/readyz`)).status, 200);
    const ended = replicas.kill(0, 'SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const ready = await fetch(`${replicas.urls[0]}/readyz`);
    assert.equal(ready.status, 503);
    assert.equal(((await ready.json()) as { draining: boolean }).draining, true);
    const result = await slow;
    assert.notEqual(result.isError, true);
    await client.close().catch(() => undefined);
    assert.equal(await ended, 0);
  } finally {
    await replicas.close();
  }
});
