/**
 * Legacy (2025) sessions that any replica serves: three `mcp-relay serve` processes sharing one
 * session secret and one Redis. A session opened on one continues on the others (the official SDK
 * client, its requests spread across replicas as a round-robin load balancer would); a forged id
 * and another caller's id are refused with 404 wherever they land; a DELETE reaches every replica.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { DEMO_README_TEXT, DEMO_README_URI, stdioFixture } from './fixtures/index.js';
import { removeRedisKeys } from './helpers/redis.js';
import { startReplicas, type Replicas } from './helpers/replicas.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
const PREFIX = `test-sessions-${randomUUID()}:`;
const SECRET = `replica-secret-${randomUUID()}`;
const ACME_KEY = `acme-key-${randomUUID()}`;
const BETA_KEY = `beta-key-${randomUUID()}`;

let replicas: Replicas;

before(async () => {
  replicas = await startReplicas({
    count: 3,
    config: {
      upstreams: { demo: stdioFixture() },
      server: { sessions: { secret: '${SESSION_SECRET}' } },
      redis: { url: REDIS_URL, prefix: PREFIX },
      auth: {
        api_keys: { acme: { key: '${ACME_KEY}', tenant: 'acme' }, beta: { key: '${BETA_KEY}', tenant: 'beta' } },
      },
      tenants: { acme: {}, beta: {} },
    },
    env: { SESSION_SECRET: SECRET, ACME_KEY, BETA_KEY },
  });
});

after(async () => {
  await replicas?.close();
  await removeRedisKeys(REDIS_URL, `${PREFIX}*`);
});

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/**
 * A fetch that sends each request to the next replica in turn (POSTs and GETs each in their own
 * turn), whatever URL the client aimed at: what a round-robin load balancer without sticky
 * sessions does. It records where each went.
 */
function roundRobin(urls: readonly string[]): { fetch: typeof fetch; served: Map<string, number> } {
  const next = new Map<string, number>();
  const served = new Map<string, number>();
  return {
    served,
    fetch: (input, init) => {
      const target = new URL(input instanceof Request ? input.url : input.toString());
      const method = init?.method ?? 'GET';
      const turn = next.get(method) ?? 0;
      next.set(method, turn + 1);
      const replica = new URL(urls[turn % urls.length]!);
      target.host = replica.host;
      served.set(`${method} ${replica.host}`, (served.get(`${method} ${replica.host}`) ?? 0) + 1);
      return fetch(target, init);
    },
  };
}

async function initialize(url: string, key: string, version = '2025-11-25'): Promise<string> {
  const response = await fetch(`${url}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...bearer(key) },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: version, capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    }),
  });
  assert.equal(response.status, 200);
  await response.body?.cancel();
  const id = response.headers.get('mcp-session-id');
  assert.ok(id !== null);
  return id;
}

async function listTools(url: string, key: string, session: string): Promise<number> {
  const response = await fetch(`${url}/mcp`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-session-id': session,
      'mcp-protocol-version': '2025-11-25',
      ...bearer(key),
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
  });
  const body = (await response.json()) as { result?: { tools: unknown[] }; error?: { code: number; message: string } };
  if (response.status === 404) assert.deepEqual([body.error?.code, body.error?.message], [-32001, 'Session not found']);
  else assert.ok(body.result?.tools.length, JSON.stringify(body));
  return response.status;
}

describe('a legacy session opened on one replica', () => {
  for (const version of ['2025-11-25', '2025-06-18']) {
    test(`continues on the other two (${version}, SDK client, requests round-robin across replicas)`, async () => {
      const spread = roundRobin(replicas.urls);
      const client = new Client(
        { name: 'roaming', version: '1' },
        { versionNegotiation: { mode: 'legacy' }, supportedProtocolVersions: [version] },
      );
      const transport = new StreamableHTTPClientTransport(new URL(`${replicas.urls[0]}/mcp`), {
        fetch: spread.fetch,
        requestInit: { headers: bearer(ACME_KEY) },
      });
      await client.connect(transport);
      try {
        assert.equal(client.getNegotiatedProtocolVersion(), version);
        const session = transport.sessionId;
        assert.ok(session !== undefined && /^[\x21-\x7e]+$/.test(session), `session id ${session}`);
        for (let round = 0; round < 2; round++) {
          const { tools } = await client.listTools();
          assert.ok(tools.some((tool) => tool.name === 'echo'));
          const echoed = await client.callTool({ name: 'echo', arguments: { text: `round ${round}` } });
          assert.deepEqual(echoed.content, [{ type: 'text', text: `round ${round}` }]);
          const read = await client.readResource({ uri: DEMO_README_URI });
          assert.deepEqual(read.contents, [{ uri: DEMO_README_URI, mimeType: 'text/plain', text: DEMO_README_TEXT }]);
        }
        assert.equal(transport.sessionId, session, 'the session id never changed');
        // Every replica answered POSTs of this one session.
        for (const url of replicas.urls) {
          const posts = spread.served.get(`POST ${new URL(url).host}`) ?? 0;
          assert.ok(posts >= 2, `replica ${url} served ${posts} POSTs: ${JSON.stringify([...spread.served])}`);
        }
      } finally {
        await client.close();
      }
    });
  }

  test('is refused (404) with a forged or altered id, on the replica that issued it and on the others', async () => {
    const session = await initialize(replicas.urls[0]!, ACME_KEY);
    const lastChar = session.at(-1) === 'A' ? 'B' : 'A';
    const altered = session.slice(0, -1) + lastChar;
    const [, issuedAt, nonce, version] = session.split('.');
    const forged = `1.${issuedAt}.${nonce}.${version}.${Buffer.from('demo').toString('base64url')}.${'x'.repeat(43)}`;
    for (const url of replicas.urls) {
      for (const id of [altered, forged, randomUUID(), 'x'.repeat(2000)])
        assert.equal(await listTools(url, ACME_KEY, id), 404, `${id.slice(0, 40)} at ${url}`);
    }
    assert.equal(await listTools(replicas.urls[2]!, ACME_KEY, session), 200);
  });

  test("is refused (404) to another tenant's caller, whether the replica holds it or not", async () => {
    const session = await initialize(replicas.urls[0]!, ACME_KEY);
    assert.equal(await listTools(replicas.urls[1]!, ACME_KEY, session), 200); // replica 1 holds it now
    for (const url of replicas.urls) assert.equal(await listTools(url, BETA_KEY, session), 404, url);
    assert.equal(await listTools(replicas.urls[2]!, ACME_KEY, session), 200);
  });

  test('is refused on every replica once deleted on one (Redis), held or not', async () => {
    const session = await initialize(replicas.urls[0]!, ACME_KEY);
    assert.equal(await listTools(replicas.urls[1]!, ACME_KEY, session), 200); // replica 1 holds it too
    const deleted = await fetch(`${replicas.urls[0]}/mcp`, {
      method: 'DELETE',
      headers: { 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25', ...bearer(ACME_KEY) },
    });
    assert.equal(deleted.status, 200);
    // Replica 2 never saw the session: the recorded deletion is checked before it adopts.
    assert.equal(await listTools(replicas.urls[2]!, ACME_KEY, session), 404);
    assert.equal(await listTools(replicas.urls[0]!, ACME_KEY, session), 404);
    // Replica 1 held it: the deletion reaches it over pub/sub, a moment after the DELETE answered.
    const deadline = Date.now() + 20_000;
    let status = await listTools(replicas.urls[1]!, ACME_KEY, session);
    while (status !== 404 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      status = await listTools(replicas.urls[1]!, ACME_KEY, session);
    }
    assert.equal(status, 404);
  });

  // Last: it kills replica 0.
  test('outlives the replica that opened it (SIGKILL): the others carry it on', async () => {
    let targets = [replicas.urls[0]!];
    let turn = 0;
    const client = new Client({ name: 'survivor', version: '1' }, { versionNegotiation: { mode: 'legacy' } });
    const transport = new StreamableHTTPClientTransport(new URL(`${replicas.urls[0]}/mcp`), {
      fetch: (input, init) => {
        const target = new URL(input instanceof Request ? input.url : input.toString());
        target.host = new URL(targets[turn++ % targets.length]!).host;
        return fetch(target, init);
      },
      requestInit: { headers: bearer(ACME_KEY) },
    });
    await client.connect(transport);
    try {
      const session = transport.sessionId;
      assert.notEqual((await client.callTool({ name: 'echo', arguments: { text: 'before' } })).isError, true);
      assert.equal(await replicas.kill(0, 'SIGKILL'), 'SIGKILL');
      targets = [replicas.urls[1]!, replicas.urls[2]!];
      for (let i = 0; i < 4; i++) {
        const echoed = await client.callTool({ name: 'echo', arguments: { text: `after ${i}` } });
        assert.deepEqual(echoed.content, [{ type: 'text', text: `after ${i}` }]);
      }
      assert.equal(transport.sessionId, session);
    } finally {
      await client.close();
    }
  });
});
