/**
 * Sealed legacy session ids (src/gateway/sessions.ts) on their own, with an injected clock, and
 * two in-process gateways without Redis: what a shared secret makes portable, and what stays per
 * process (a DELETE, a session under another secret).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { resolveProxyConfig, SESSIONS_DEFAULTS } from '../src/config/index.js';
import { SessionSeal, sessionChannels, startGateway, type Gateway } from '../src/gateway/index.js';
import { startInProcessHttpFixture, type InProcessHttpFixture } from './fixtures/index.js';
import { startOwnRedis, type OwnRedis } from './helpers/redis.js';

const SECRET = 'a-test-secret-that-is-long-enough-0123';
const ALICE = { tenant: 'acme', identity: 'alice' };

describe('SessionSeal', () => {
  test('an id opens to its version, scope and issue time, and is visible ASCII and unique', () => {
    let now = 1_764_000_000_000;
    const seal = new SessionSeal({ secret: SECRET, maxAgeMs: 60_000, now: () => now });
    const ids = new Set<string>();
    for (const scope of [undefined, 'demo', 'a.b-c_d']) {
      const { id, issuedAt } = seal.seal(ALICE, '2025-06-18', scope);
      assert.equal(issuedAt, now);
      assert.match(id, /^[\x21-\x7e]+$/);
      assert.ok(id.length < 160, `${id.length} characters`);
      assert.deepEqual(seal.open(id, ALICE), { version: '2025-06-18', scope, issuedAt: now });
      ids.add(id);
      now += 1;
    }
    for (let i = 0; i < 100; i++) ids.add(seal.seal(ALICE, '2025-11-25', undefined).id);
    assert.equal(ids.size, 103);
  });

  test('another caller, another secret or any altered character does not open it', () => {
    const seal = new SessionSeal({ secret: SECRET, maxAgeMs: 60_000 });
    const { id } = seal.seal(ALICE, '2025-11-25', 'demo');
    assert.equal(seal.open(id, { tenant: 'acme', identity: 'bob' }), undefined);
    assert.equal(seal.open(id, { tenant: 'beta', identity: 'alice' }), undefined);
    // Length-prefixed: moving characters between tenant and identity is another caller.
    assert.equal(seal.open(id, { tenant: 'acmea', identity: 'lice' }), undefined);
    assert.equal(seal.open(id, undefined), undefined);
    assert.equal(new SessionSeal({ secret: `${SECRET}x`, maxAgeMs: 60_000 }).open(id, ALICE), undefined);
    assert.equal(new SessionSeal({ maxAgeMs: 60_000 }).open(id, ALICE), undefined);
    // Every position, every other base64url character: the MAC's last character has spare bits,
    // and only one spelling of an id may open (a DELETE is recorded by id).
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.';
    for (let i = 0; i < id.length; i++) {
      for (const c of alphabet) {
        if (c === id[i]) continue;
        const altered = id.slice(0, i) + c + id.slice(i + 1);
        assert.equal(seal.open(altered, ALICE), undefined, `altered at ${i}: ${altered}`);
      }
    }
    const anonymous = seal.seal(undefined, '2025-11-25', undefined).id;
    assert.ok(seal.open(anonymous, undefined));
    assert.equal(seal.open(anonymous, ALICE), undefined);
    for (const junk of ['', '1.', '1....', `1.${'.'.repeat(600)}`, 'not-a-session'])
      assert.equal(seal.open(junk, ALICE), undefined);
  });

  test('an id opens until max age, not from then on', () => {
    let now = 5_000_000;
    const seal = new SessionSeal({ secret: SECRET, maxAgeMs: 60_000, now: () => now });
    const { id } = seal.seal(ALICE, '2025-11-25', undefined);
    now += 59_999;
    assert.ok(seal.open(id, ALICE));
    assert.equal(seal.expired(5_000_000), false);
    now += 1;
    assert.equal(seal.open(id, ALICE), undefined);
    assert.equal(seal.expired(5_000_000), true);
  });

  test('a max age that is not a positive number is refused at construction', () => {
    assert.throws(() => new SessionSeal({ maxAgeMs: 0 }), /maxAgeMs: expected a positive number/);
  });
});

async function rpc(url: string, body: object, session?: string, method = 'POST'): Promise<Response> {
  return fetch(`${url}/mcp`, {
    method,
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2025-11-25',
      ...(session === undefined ? {} : { 'mcp-session-id': session }),
    },
    ...(method === 'POST' ? { body: JSON.stringify(body) } : {}),
  });
}

async function open(url: string): Promise<string> {
  const response = await rpc(url, {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  });
  await response.body?.cancel();
  return response.headers.get('mcp-session-id')!;
}

async function ping(url: string, session: string): Promise<number> {
  const response = await rpc(url, { jsonrpc: '2.0', id: 2, method: 'ping' }, session);
  await response.body?.cancel();
  return response.status;
}

async function remove(url: string, session: string): Promise<number> {
  const response = await rpc(url, {}, session, 'DELETE');
  await response.body?.cancel();
  return response.status;
}

describe('two gateways without Redis', () => {
  let upstream: InProcessHttpFixture;
  let shared: [Gateway, Gateway];
  let other: Gateway;

  before(async () => {
    upstream = await startInProcessHttpFixture({ mode: 'modern' });
    const start = (secret: string) =>
      startGateway({
        port: 0,
        upstreams: [resolveProxyConfig({ name: 'demo', serverUrl: upstream.url })],
        sessions: { ...SESSIONS_DEFAULTS, secret },
      });
    shared = [await start(SECRET), await start(SECRET)];
    other = await start(`${SECRET}-other`);
  });

  after(async () => {
    await Promise.all([...shared, other].map((gateway) => gateway.close()));
    await upstream.stop();
  });

  test('a session continues on the gateway sharing the secret, and is unknown to one with another', async () => {
    const session = await open(shared[0].url);
    assert.equal(await ping(shared[1].url, session), 200);
    assert.equal(await ping(shared[0].url, session), 200);
    assert.equal(await ping(other.url, session), 404);
  });

  test('only the first request on a gateway verifies the id; later ones find the session in memory', async () => {
    const session = await open(shared[0].url);
    const verified: string[] = [];
    const adopted = () => verified.push('adopted');
    const refused = () => verified.push('refused');
    sessionChannels.adopted.subscribe(adopted);
    sessionChannels.refused.subscribe(refused);
    try {
      for (let i = 0; i < 20; i++) assert.equal(await ping(shared[1].url, session), 200);
      assert.deepEqual(verified, ['adopted'], 'verified once, on the first request to the second gateway');
      for (let i = 0; i < 20; i++) assert.equal(await ping(shared[0].url, session), 200);
      assert.deepEqual(verified, ['adopted'], 'never on the gateway that issued it');
      assert.equal(await ping(shared[1].url, `${session.slice(0, -1)}!`), 404);
      assert.deepEqual(verified, ['adopted', 'refused']);
    } finally {
      sessionChannels.adopted.unsubscribe(adopted);
      sessionChannels.refused.unsubscribe(refused);
    }
  });

  test('a DELETE ends the session on its gateway for good; the other one still serves it (no Redis)', async () => {
    const session = await open(shared[0].url);
    assert.equal(await remove(shared[0].url, session), 200);
    // Not taken up again on the gateway that deleted it, though the id itself is still valid...
    assert.equal(await ping(shared[0].url, session), 404);
    // ...which is why without Redis a DELETE does not reach the other replicas.
    assert.equal(await ping(shared[1].url, session), 200);
  });
});

describe('two gateways on a Redis that stops', () => {
  let upstream: InProcessHttpFixture;
  let redis: OwnRedis;
  let gateways: [Gateway, Gateway];

  before(async () => {
    upstream = await startInProcessHttpFixture({ mode: 'modern' });
    redis = await startOwnRedis();
    const start = () =>
      startGateway({
        port: 0,
        upstreams: [resolveProxyConfig({ name: 'demo', serverUrl: upstream.url })],
        sessions: { ...SESSIONS_DEFAULTS, secret: SECRET },
        redis: { url: redis.url, prefix: 'sessions-test:', timeoutMs: 250 },
      });
    gateways = [await start(), await start()];
  });

  after(async () => {
    await Promise.all(gateways.map((gateway) => gateway.close()));
    await redis.stop();
    await upstream.stop();
  });

  test('sessions keep working without it: taken up unchecked, a DELETE holds on its own gateway', async () => {
    const [a, b] = gateways;
    const before = await open(a.url);
    assert.equal(await remove(a.url, before), 200);
    assert.equal(await ping(b.url, before), 404, 'with Redis up, the deletion was recorded for the other gateway');

    await redis.stop();
    const session = await open(a.url);
    assert.equal(await ping(b.url, session), 200, 'taken up without the deletion check');
    assert.equal(await remove(a.url, session), 200);
    assert.equal(await ping(a.url, session), 404);
    assert.equal(await ping(b.url, session), 200, 'the deletion could not reach it');
    // The deletion recorded while Redis was up is still honoured locally by both.
    assert.equal(await ping(a.url, before), 404);
    assert.equal(await ping(b.url, before), 404);
  });
});
