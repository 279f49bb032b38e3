import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, UnsecuredJWT, type JWTPayload } from 'jose';

import { startFromFlags } from '../src/cli/serve.js';
import { parseConfigText, resolveProxyConfig, type ResolvedAuthConfig } from '../src/config/index.js';
import { isRelayError, RelayErrorCode } from '../src/errors/index.js';
import {
  createAuthenticator,
  isLoopbackHost,
  startGateway,
  TenantPolicy,
  type Caller,
  type Gateway,
} from '../src/gateway/index.js';
import { startInProcessHttpFixture, type DemoState, type InProcessHttpFixture } from './fixtures/index.js';
import { startForwarder } from './helpers/forwarder.js';

type RpcBody = {
  error?: { code: number; message: string; data?: Record<string, unknown> };
  result?: Record<string, unknown>;
};

const ISSUER = 'https://issuer.test';
const AUDIENCE = 'mcp-relay';
const ACME_KEY = `acme-${randomBytes(16).toString('hex')}`;
const BETA_KEY = `beta-${randomBytes(16).toString('hex')}`;
const LIMITED_KEY = `limited-${randomBytes(16).toString('hex')}`;
const JWT_SECRET = randomBytes(32).toString('base64url');
const UPSTREAM_TOKEN = `upstream-${randomBytes(8).toString('hex')}`;

const MODERN_META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': {},
};

function hs256(claims: JWTPayload, options: { secret?: string; exp?: number | string; aud?: string } = {}) {
  return new SignJWT({ tenant: 'acme', ...claims })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(ISSUER)
    .setAudience(options.aud ?? AUDIENCE)
    .setSubject(typeof claims.sub === 'string' ? claims.sub : 'alice')
    .setIssuedAt()
    .setExpirationTime(options.exp ?? '5m')
    .sign(new TextEncoder().encode(options.secret ?? JWT_SECRET));
}

async function connect(
  url: string,
  headers: Record<string, string>,
  mode: 'auto' | 'legacy' = 'auto',
): Promise<Client> {
  const client = new Client({ name: 'auth-test', version: '1.0.0' }, { versionNegotiation: { mode } });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  return client;
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function post(url: string, message: Record<string, unknown>, headers: Record<string, string> = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: JSON.stringify(message),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as RpcBody) : undefined };
}

let nextId = 1;
/** A stateless 2026-07-28 request, as a raw POST. */
function modern(url: string, method: string, params: Record<string, unknown>, headers: Record<string, string>) {
  const name = typeof params['name'] === 'string' ? { 'mcp-name': params['name'] } : {};
  return post(
    url,
    { jsonrpc: '2.0', id: nextId++, method, params: { ...params, _meta: MODERN_META } },
    { 'mcp-protocol-version': '2026-07-28', 'mcp-method': method, ...name, ...headers },
  );
}

function textOf(result: unknown): string {
  return (result as { content: { text: string }[] }).content[0]!.text;
}

function toolNames(body: RpcBody | undefined): string[] {
  return ((body?.result?.['tools'] ?? []) as { name: string }[]).map((t) => t.name).sort();
}

/** Resolves when the demo upstream starts a call of `tool`. */
function started(state: DemoState, tool: string): Promise<void> {
  return new Promise((resolve) => {
    const listener = (name: string) => {
      if (name !== tool) return;
      state.events.off('call', listener);
      resolve();
    };
    state.events.on('call', listener);
  });
}

const calls = (state: DemoState, tool: string) => state.calls.get(tool) ?? 0;

let upstream: InProcessHttpFixture;
let other: InProcessHttpFixture;
let plainFront: Awaited<ReturnType<typeof startForwarder>>;
let forwardFront: Awaited<ReturnType<typeof startForwarder>>;
let dir: string;
let gateway: Gateway;
let mcp: string;
let clockMs = 0;

const ENV = {
  ACME_KEY,
  BETA_KEY,
  LIMITED_KEY,
  JWT_SECRET,
  UPSTREAM_TOKEN,
};

function relayYaml(urls: { plain: string; forward: string; other: string }, auth: string): string {
  return `
upstreams:
  plain:
    server_url: ${urls.plain}
    auth_token: \${UPSTREAM_TOKEN}
    cache:
      tools: [counter_value]
  fwd:
    server_url: ${urls.forward}
    auth_token: \${UPSTREAM_TOKEN}
    forward_auth: true
    cache:
      tools: [counter_value]
  other:
    server_url: ${urls.other}
auth:
${auth}
tenants:
  acme: {}
  beta:
    allowed_upstreams: [plain]
    allowed_tools: [echo, counter_value, 'sl?w']
    max_concurrent: 1
  limited:
    rate_limit: { requests_per_second: 1, burst: 2 }
`;
}

before(async () => {
  upstream = await startInProcessHttpFixture({ mode: 'modern' });
  other = await startInProcessHttpFixture({ mode: 'legacy' });
  plainFront = await startForwarder(upstream.url);
  forwardFront = await startForwarder(upstream.url);
  dir = await mkdtemp(join(tmpdir(), 'relay-auth-'));
  const config = parseConfigText(
    relayYaml(
      { plain: plainFront.url, forward: forwardFront.url, other: other.url },
      `  api_keys:
    acme-ci: { key: "\${ACME_KEY}", tenant: acme }
    beta-ci: { key: "\${BETA_KEY}", tenant: beta }
    limited-ci: { key: "\${LIMITED_KEY}", tenant: limited }
  jwt:
    algorithm: HS256
    secret: \${JWT_SECRET}
    issuer: ${ISSUER}
    audience: ${AUDIENCE}`,
    ),
    { env: ENV, source: 'relay.yaml' },
  );
  gateway = await startGateway({
    port: 0,
    upstreams: config.upstreams,
    auth: config.auth,
    tenants: config.tenants,
    clock: { now: () => clockMs },
  });
  mcp = `${gateway.url}/mcp`;
});

after(async () => {
  await gateway.close();
  await plainFront.stop();
  await forwardFront.stop();
  await upstream.stop();
  await other.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('authentication', () => {
  test('a request without credentials gets 401 with WWW-Authenticate and RELAY_UNAUTHENTICATED', async () => {
    const { status, headers, body } = await modern(mcp, 'tools/list', {}, {});
    assert.equal(status, 401);
    assert.match(headers.get('www-authenticate') ?? '', /^Bearer /);
    assert.equal(body?.error?.data?.['relayCode'], 'RELAY_UNAUTHENTICATED');
    assert.match(body?.error?.message ?? '', /missing credentials/);
  });

  test('unknown keys, malformed headers, bad signatures, expired, unsigned and misaddressed tokens all get 401', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const now = Math.floor(Date.now() / 1000);
    const refused: [string, Record<string, string>][] = [
      ['an unknown API key as Bearer', bearer(`nope-${randomBytes(16).toString('hex')}`)],
      ['an unknown X-API-Key', { 'x-api-key': `nope-${randomBytes(16).toString('hex')}` }],
      ['a Basic header', { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }],
      ['an empty Bearer', { authorization: 'Bearer ' }],
      ['a token signed with another secret', bearer(await hs256({}, { secret: randomBytes(32).toString('hex') }))],
      ['an expired token', bearer(await hs256({}, { exp: now - 3600 }))],
      ['a token for another audience', bearer(await hs256({}, { aud: 'someone-else' }))],
      ['an unsigned token (alg none)', bearer(new UnsecuredJWT({ tenant: 'acme', sub: 'x', exp: now + 60 }).encode())],
      [
        'an RS256 token where HS256 is configured',
        bearer(
          await new SignJWT({ tenant: 'acme' })
            .setProtectedHeader({ alg: 'RS256' })
            .setIssuer(ISSUER)
            .setAudience(AUDIENCE)
            .setSubject('mallory')
            .setExpirationTime('5m')
            .sign(privateKey),
        ),
      ],
      [
        'a token without exp',
        bearer(
          await new SignJWT({ tenant: 'acme' })
            .setProtectedHeader({ alg: 'HS256' })
            .setIssuer(ISSUER)
            .setAudience(AUDIENCE)
            .setSubject('alice')
            .sign(new TextEncoder().encode(JWT_SECRET)),
        ),
      ],
    ];
    for (const [what, headers] of refused) {
      const { status, body } = await modern(mcp, 'tools/list', {}, headers);
      assert.equal(status, 401, what);
      assert.equal(body?.error?.data?.['relayCode'], 'RELAY_UNAUTHENTICATED', what);
      const credential = Object.values(headers)[0]!.replace(/^\w+ /, '');
      if (credential.length > 0) assert.ok(!body.error.message.includes(credential), `${what}: message leaks it`);
    }
    const expired = await modern(mcp, 'tools/list', {}, bearer(await hs256({}, { exp: now - 3600 })));
    assert.match(expired.body?.error?.message ?? '', /expired/);
  });

  test('the official client is refused without a valid credential', async () => {
    await assert.rejects(connect(mcp, {}));
    await assert.rejects(connect(mcp, bearer(await hs256({}, { secret: 'x'.repeat(40) }))));
  });

  test('a valid token whose tenant is not configured gets 403, as does one without a tenant claim', async () => {
    const unknown = await modern(mcp, 'tools/list', {}, bearer(await hs256({ tenant: 'globex' })));
    assert.equal(unknown.status, 403);
    assert.equal(unknown.body?.error?.data?.['relayCode'], 'RELAY_FORBIDDEN');
    assert.match(unknown.body?.error?.message ?? '', /globex/);
    const none = await modern(mcp, 'tools/list', {}, bearer(await hs256({ tenant: undefined })));
    assert.equal(none.status, 403);
    // A tenant named like an Object.prototype member is no tenant either.
    const proto = await modern(mcp, 'tools/list', {}, bearer(await hs256({ tenant: 'constructor' })));
    assert.equal(proto.status, 403);
  });

  for (const mode of ['auto', 'legacy'] as const) {
    test(`the official client (${mode === 'auto' ? '2026-07-28' : '2025'}) gets in with an API key as Bearer or X-API-Key, and with an HS256 token`, async () => {
      for (const headers of [bearer(ACME_KEY), { 'x-api-key': ACME_KEY }, bearer(await hs256({ sub: 'alice' }))]) {
        const client = await connect(mcp, headers, mode);
        try {
          const result = await client.callTool({ name: 'plain__echo', arguments: { text: 'hi' } });
          assert.equal(textOf(result), 'hi');
        } finally {
          await client.close();
        }
      }
    });
  }
});

describe('RS256 with a PEM public key, and a JWKS file', () => {
  let pemGateway: Gateway;
  let jwksGateway: Gateway;
  let signingKey: CryptoKey;
  let jwksKey: CryptoKey;

  before(async () => {
    const pem = await generateKeyPair('RS256', { extractable: true });
    const jwks = await generateKeyPair('RS256', { extractable: true });
    signingKey = pem.privateKey;
    jwksKey = jwks.privateKey;
    await writeFile(join(dir, 'issuer.pem'), await exportSPKI(pem.publicKey));
    const jwk = { ...(await exportJWK(jwks.publicKey)), kid: 'key-1', alg: 'RS256', use: 'sig' };
    await writeFile(join(dir, 'jwks.json'), JSON.stringify({ keys: [jwk] }));
    const start = async (source: string) => {
      const config = parseConfigText(
        `
upstreams:
  other: { server_url: ${other.url} }
auth:
  jwt:
    algorithm: RS256
    ${source}
    audience: [${AUDIENCE}, other-audience]
tenants:
  acme: {}
`,
        { env: ENV, baseDir: dir },
      );
      return startGateway({ port: 0, upstreams: config.upstreams, auth: config.auth, tenants: config.tenants });
    };
    pemGateway = await start('public_key_file: issuer.pem');
    jwksGateway = await start('jwks_file: ./jwks.json');
  });

  after(async () => {
    await pemGateway.close();
    await jwksGateway.close();
  });

  function rs256(key: CryptoKey, kid?: string) {
    return new SignJWT({ tenant: 'acme' })
      .setProtectedHeader({ alg: 'RS256', ...(kid === undefined ? {} : { kid }) })
      .setAudience(AUDIENCE)
      .setSubject('bob')
      .setExpirationTime('5m')
      .sign(key);
  }

  test('accepts tokens signed with the key in the PEM file, refuses others', async () => {
    const client = await connect(`${pemGateway.url}/mcp`, bearer(await rs256(signingKey)));
    try {
      assert.ok((await client.listTools()).tools.some((t) => t.name === 'echo'));
    } finally {
      await client.close();
    }
    const wrong = await modern(`${pemGateway.url}/mcp`, 'tools/list', {}, bearer(await rs256(jwksKey)));
    assert.equal(wrong.status, 401);
  });

  test('accepts tokens whose kid names a key of the JWKS file, refuses others', async () => {
    const client = await connect(`${jwksGateway.url}/mcp`, bearer(await rs256(jwksKey, 'key-1')), 'legacy');
    try {
      assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'jwks' } })), 'jwks');
    } finally {
      await client.close();
    }
    for (const token of [await rs256(signingKey, 'key-1'), await rs256(jwksKey, 'key-2')]) {
      const { status } = await modern(`${jwksGateway.url}/mcp`, 'tools/list', {}, bearer(token));
      assert.equal(status, 401);
    }
  });
});

describe('tenants', () => {
  test('a tenant sees only its allowed upstreams and tools, and cannot call the others', async () => {
    const all = toolNames((await modern(mcp, 'tools/list', {}, bearer(ACME_KEY))).body);
    for (const name of ['plain__echo', 'plain__add', 'fwd__echo', 'other__echo']) assert.ok(all.includes(name), name);

    const client = await connect(mcp, bearer(BETA_KEY));
    try {
      const seen = (await client.listTools()).tools.map((t) => t.name).sort();
      assert.deepEqual(seen, ['plain__counter_value', 'plain__echo', 'plain__slow']);
      const prompts = (await client.listPrompts()).prompts.map((p) => p.name);
      assert.ok(prompts.length > 0 && prompts.every((name) => name.startsWith('plain__')), prompts.join());
      assert.equal(textOf(await client.callTool({ name: 'plain__echo', arguments: { text: 'ok' } })), 'ok');
    } finally {
      await client.close();
    }
    for (const name of ['plain__add', 'fwd__echo', 'other__echo']) {
      const before = calls(upstream.state, 'add') + calls(other.state, 'echo');
      const { body } = await modern(
        mcp,
        'tools/call',
        { name, arguments: { a: 1, b: 2, text: 'x' } },
        bearer(BETA_KEY),
      );
      assert.equal(body?.error?.code, -32602, name);
      assert.match(body?.error?.message ?? '', /Unknown tool/);
      assert.equal(calls(upstream.state, 'add') + calls(other.state, 'echo'), before, `${name} reached an upstream`);
    }
  });

  test('beyond max_concurrent a request is refused at once with -32003 RELAY_QUOTA_EXCEEDED, and admitted again after', async () => {
    const client = await connect(mcp, bearer(BETA_KEY));
    try {
      const running = started(upstream.state, 'slow');
      const slow = client.callTool({ name: 'plain__slow', arguments: { ms: 300 } });
      await running;
      const { body } = await modern(mcp, 'tools/list', {}, bearer(BETA_KEY));
      assert.equal(body?.error?.code, -32003);
      assert.equal(body?.error?.data?.['relayCode'], 'RELAY_QUOTA_EXCEEDED');
      assert.match(body?.error?.message ?? '', /max_concurrent 1/);
      // Another tenant is not affected.
      assert.ok((await modern(mcp, 'tools/list', {}, bearer(ACME_KEY))).body?.result);
      assert.match(textOf(await slow), /slept/);
      assert.ok((await modern(mcp, 'tools/list', {}, bearer(BETA_KEY))).body?.result);
    } finally {
      await client.close();
    }
  });

  test('over its rate limit a tenant is refused with RELAY_RATE_LIMITED and retryAfterMs, and recovers as tokens refill', async () => {
    const list = () => modern(mcp, 'tools/list', {}, bearer(LIMITED_KEY));
    clockMs += 60_000; // a quiet spell: the bucket is full (burst 2)
    assert.ok((await list()).body?.result);
    assert.ok((await list()).body?.result);
    const refused = (await list()).body?.error;
    assert.equal(refused?.code, -32003);
    assert.equal(refused?.data?.['relayCode'], 'RELAY_RATE_LIMITED');
    assert.equal(refused?.data?.['retryAfterMs'], 1000);
    clockMs += 999;
    assert.equal((await list()).body?.error?.data?.['retryAfterMs'], 1);
    clockMs += 1;
    assert.ok((await list()).body?.result);
    assert.equal((await list()).body?.error?.data?.['relayCode'], 'RELAY_RATE_LIMITED');
  });

  test('a legacy session opened by one caller is 404 for every other caller', async () => {
    const init = await post(
      mcp,
      {
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
      },
      bearer(ACME_KEY),
    );
    assert.equal(init.status, 200);
    const session = init.headers.get('mcp-session-id')!;
    const list = (headers: Record<string, string>) =>
      post(
        mcp,
        { jsonrpc: '2.0', id: 2, method: 'tools/list' },
        {
          'mcp-session-id': session,
          'mcp-protocol-version': '2025-06-18',
          ...headers,
        },
      );
    assert.equal((await list(bearer(BETA_KEY))).status, 404);
    // Same tenant, another identity (a token's subject): still not the owner.
    assert.equal((await list(bearer(await hs256({ sub: 'alice' })))).status, 404);
    const owner = await list({ 'x-api-key': ACME_KEY });
    assert.equal(owner.status, 200);
    assert.ok(toolNames(owner.body).includes('plain__echo'));
  });

  test('two tenants never share a cached entry', async () => {
    const callAs = (key: string) =>
      modern(mcp, 'tools/call', { name: 'plain__counter_value', arguments: {} }, bearer(key));
    const before = calls(upstream.state, 'counter_value');
    assert.ok((await callAs(ACME_KEY)).body?.result);
    assert.ok((await callAs(ACME_KEY)).body?.result);
    assert.equal(calls(upstream.state, 'counter_value'), before + 1, "acme's second call is answered from cache");
    assert.ok((await callAs(BETA_KEY)).body?.result);
    assert.equal(calls(upstream.state, 'counter_value'), before + 2, "beta's identical call reaches the upstream");
    assert.ok((await callAs(BETA_KEY)).body?.result);
    assert.equal(calls(upstream.state, 'counter_value'), before + 2, 'and is then cached for beta');
  });
});

describe('forward_auth', () => {
  test("the caller's token never reaches an upstream without forward_auth; with it, it replaces auth_token", async () => {
    const token = await hs256({ sub: 'alice' });
    const client = await connect(mcp, bearer(token));
    try {
      plainFront.seen.length = 0;
      forwardFront.seen.length = 0;
      assert.equal(textOf(await client.callTool({ name: 'plain__echo', arguments: { text: 'a' } })), 'a');
      assert.equal(textOf(await client.callTool({ name: 'fwd__echo', arguments: { text: 'b' } })), 'b');
    } finally {
      await client.close();
    }
    assert.ok(plainFront.seen.length > 0);
    for (const headers of plainFront.seen) assert.equal(headers['authorization'], `Bearer ${UPSTREAM_TOKEN}`);
    assert.ok(!JSON.stringify(plainFront.seen).includes(token), 'the token went upstream');
    assert.equal(forwardFront.seen.at(-1)?.['authorization'], `Bearer ${token}`);
    assert.equal(forwardFront.seen.at(-1)?.['mcp-name'], 'echo');
    const authorizations = forwardFront.seen.flatMap((h) => h['authorization'] ?? []);
    assert.ok(
      authorizations.every((value) => value === `Bearer ${token}` || value === `Bearer ${UPSTREAM_TOKEN}`),
      'one Authorization header, never both',
    );
  });

  test('under forward_auth cached answers are kept per caller, even within a tenant', async () => {
    const callAs = (headers: Record<string, string>) =>
      modern(mcp, 'tools/call', { name: 'fwd__counter_value', arguments: {} }, headers);
    const before = calls(upstream.state, 'counter_value');
    const alice = bearer(await hs256({ sub: 'alice-2' }));
    assert.ok((await callAs(alice)).body?.result);
    assert.ok((await callAs(alice)).body?.result);
    assert.equal(calls(upstream.state, 'counter_value'), before + 1);
    assert.ok((await callAs(bearer(ACME_KEY))).body?.result);
    assert.equal(calls(upstream.state, 'counter_value'), before + 2, 'another acme caller reached the upstream');
  });
});

describe('anonymous callers and exposure', () => {
  const upstreams = () => [resolveProxyConfig({ name: 'other', serverUrl: other.url })];
  const anonymous: ResolvedAuthConfig = {
    apiKeys: [{ id: 'ops', key: ACME_KEY, tenant: 'acme' }],
    allowAnonymous: true,
    anonymousTenant: 'guests',
  };

  test('with allow_anonymous on loopback, a caller without credentials is served as the anonymous tenant; a bad credential is still refused', async () => {
    const guestGateway = await startGateway({
      port: 0,
      upstreams: upstreams(),
      auth: anonymous,
      tenants: { acme: {}, guests: { allowedTools: ['echo'] } },
    });
    try {
      const client = await connect(`${guestGateway.url}/mcp`, {});
      try {
        assert.deepEqual(
          (await client.listTools()).tools.map((t) => t.name),
          ['echo'],
        );
      } finally {
        await client.close();
      }
      const bad = await modern(`${guestGateway.url}/mcp`, 'tools/list', {}, bearer('not-a-key-not-a-key'));
      assert.equal(bad.status, 401);
      const ops = await modern(`${guestGateway.url}/mcp`, 'tools/list', {}, bearer(ACME_KEY));
      assert.ok(toolNames(ops.body).length > 1);
    } finally {
      await guestGateway.close();
    }
  });

  test('a gateway on a non-loopback host refuses to start without auth, and with allow_anonymous', async () => {
    await assert.rejects(startGateway({ host: '0.0.0.0', port: 0, upstreams: upstreams() }), (error) => {
      assert.ok(isRelayError(error, RelayErrorCode.InvalidConfig));
      assert.match(error.message, /'0\.0\.0\.0'.*not a loopback address.*Configure auth/s);
      return true;
    });
    await assert.rejects(
      startGateway({ host: '0.0.0.0', port: 0, upstreams: upstreams(), auth: anonymous, tenants: { acme: {} } }),
      (error) => {
        assert.ok(isRelayError(error, RelayErrorCode.InvalidConfig));
        assert.match(error.message, /auth\.allow_anonymous.*loopback/);
        return true;
      },
    );
  });

  test('mcp-relay serve refuses a config whose server.host is not loopback when it allows anonymous callers', async () => {
    const file = join(dir, 'exposed.yaml');
    await writeFile(
      file,
      `server: { host: 0.0.0.0, port: 0 }
upstreams:
  other: { server_url: ${other.url} }
auth:
  allow_anonymous: true
`,
    );
    await assert.rejects(startFromFlags({ config: file }), /allow_anonymous: true is allowed only on a loopback/);
    // The flag wins over the file: on loopback the same config serves.
    const { gateway: local } = await startFromFlags({ config: file, host: '127.0.0.1' });
    await local.close();
  });

  test('loopback means localhost, ::1 and 127.0.0.0/8, nothing else', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1'])
      assert.ok(isLoopbackHost(host), host);
    for (const host of ['0.0.0.0', '::', '192.168.1.2', 'example.com', '128.0.0.1', 'localhost.example.com'])
      assert.ok(!isLoopbackHost(host), host);
  });
});

describe('config', () => {
  const base = `upstreams:\n  u: { server_url: http://127.0.0.1:1/mcp }\n`;
  const problems = (text: string, env: Record<string, string> = {}) => {
    try {
      parseConfigText(base + text, { env, source: 'relay.yaml' });
    } catch (error) {
      assert.ok(isRelayError(error, RelayErrorCode.InvalidConfig));
      return error.message;
    }
    assert.fail('expected the config to be refused');
  };

  test('a key naming an undefined tenant, a short key and an unknown upstream are named with what was expected', () => {
    const short = problems(`auth:\n  api_keys:\n    ci: { key: "\${SHORT}", tenant: acme }\ntenants: { acme: {} }\n`, {
      SHORT: 'short-secret',
    });
    assert.match(short, /auth\.api_keys\.ci\.key: expected an API key of at least 16 characters.*got \[redacted\]/);
    assert.ok(!short.includes('short-secret'), 'the key is redacted');
    const message = problems(
      `auth:
  api_keys:
    ops: { key: "${ACME_KEY}", tenant: nobody }
tenants:
  acme: { allowed_upstreams: [u, nope] }
`,
    );
    assert.match(
      message,
      /auth\.api_keys\.ops\.tenant: expected a tenant defined under tenants \(defined: acme\), got "nobody"/,
    );
    assert.match(message, /tenants\.acme\.allowed_upstreams\[1\]: expected the name of an upstream \(u\), got "nope"/);
  });

  test('jwt needs the key source its algorithm uses, a long enough secret, and tenants to admit', () => {
    assert.match(problems(`auth:\n  jwt: { algorithm: HS256 }\n`), /auth\.jwt\.secret: expected secret for HS256/);
    assert.match(
      problems(`auth:\n  jwt: { algorithm: RS256, public_key_file: a.pem, jwks_file: b.json }\ntenants: { a: {} }\n`),
      /expected exactly one of public_key_file or jwks_file for RS256, got both/,
    );
    const short = problems(`auth:\n  jwt: { algorithm: HS256, secret: "\${S}" }\ntenants: { a: {} }\n`, { S: 'tiny' });
    assert.match(short, /auth\.jwt\.secret: expected a secret of at least 32 characters, got \[redacted\]/);
    assert.ok(!short.includes('tiny'));
    assert.match(
      problems(`auth:\n  jwt: { algorithm: HS256, secret: "${JWT_SECRET}" }\n`),
      /tenants: expected at least one tenant/,
    );
    assert.match(problems(`auth: {}\n`), /auth: expected api_keys, jwt or allow_anonymous: true/);
  });

  test('tenant rules are checked: rate_limit, max_concurrent, names', () => {
    const message = problems(`tenants:
  "bad name": {}
  t:
    max_concurrent: 0
    rate_limit: { requests_per_second: 0 }
    allowed_tools: [""]
`);
    assert.match(message, /tenants\["bad name"\]: expected a tenant name/);
    assert.match(message, /tenants\.t\.max_concurrent: expected an integer from 1/);
    assert.match(
      message,
      /tenants\.t\.rate_limit\.requests_per_second: expected a number of requests per second above 0/,
    );
    assert.match(message, /tenants\.t\.allowed_tools\[0\]: expected a tool name or glob/);
  });

  test('forward_auth is an HTTP upstream field', () => {
    assert.match(
      problems(`  s: { command: node, forward_auth: true }\n`),
      /upstreams\.s\.forward_auth: expected no forward_auth on a stdio upstream/,
    );
  });
});

describe('units', () => {
  const caller = (tenant: string, identity = 'x'): Caller => ({ tenant, identity });
  /** Without shared (Redis) buckets admit decides synchronously: no promise, no tick. */
  const admit = (policy: TenantPolicy, tenant: string): (() => void) => {
    const release = policy.admit(caller(tenant));
    assert.equal(typeof release, 'function');
    return release as () => void;
  };

  test('the token bucket refills at requests_per_second up to burst, and refused requests take nothing', () => {
    let now = 0;
    const policy = new TenantPolicy(
      { t: { rateLimit: { requestsPerSecond: 2, burst: 3 }, maxConcurrent: 10 } },
      { clock: { now: () => now } },
    );
    for (let i = 0; i < 3; i++) admit(policy, 't')();
    assert.throws(() => admit(policy, 't'), {
      code: -32003,
      data: { relayCode: 'RELAY_RATE_LIMITED', tenant: 't', retryAfterMs: 500 },
    });
    now += 250;
    assert.throws(() => admit(policy, 't'), {
      data: { relayCode: 'RELAY_RATE_LIMITED', tenant: 't', retryAfterMs: 250 },
    });
    now += 250;
    admit(policy, 't')();
    now += 60_000;
    for (let i = 0; i < 3; i++) admit(policy, 't')();
    assert.throws(() => admit(policy, 't'));
  });

  test('the concurrency slot is released once, however often release is called', () => {
    const policy = new TenantPolicy({ t: { maxConcurrent: 1 } });
    const release = admit(policy, 't');
    assert.throws(() => admit(policy, 't'), {
      data: { relayCode: 'RELAY_QUOTA_EXCEEDED', tenant: 't', maxConcurrent: 1 },
    });
    release();
    release();
    assert.equal(policy.inFlight('t'), 0);
    const again = admit(policy, 't');
    assert.throws(() => admit(policy, 't'));
    again();
  });

  test("tool rules match the upstream's own tool name, with or without an upstream part, as globs", () => {
    const policy = new TenantPolicy({
      t: { allowedUpstreams: ['docs', 'web'], allowedTools: ['search', 'docs/read_*', '*/get?'] },
    });
    const allows = (upstream: string, name: string, kind: 'tool' | 'prompt' | 'resource' = 'tool') =>
      policy.allows(caller('t'), upstream, kind, name);
    assert.ok(allows('docs', 'search') && allows('web', 'search'));
    assert.ok(allows('docs', 'read_page') && !allows('web', 'read_page'));
    assert.ok(allows('web', 'getx') && !allows('web', 'getxy'));
    assert.ok(!allows('files', 'search'), 'an upstream not allowed');
    assert.ok(allows('docs', 'greet', 'prompt') && !allows('files', 'greet', 'prompt'));
    assert.ok(!policy.allows(caller('unknown'), 'docs', 'tool', 'search'), 'an undefined tenant may do nothing');
    assert.throws(() => policy.admit(caller('unknown')), { data: { relayCode: 'RELAY_FORBIDDEN', tenant: 'unknown' } });
  });

  test('API keys are refused at construction when short, shared or of an undefined tenant', () => {
    const auth = (apiKeys: ResolvedAuthConfig['apiKeys']): ResolvedAuthConfig => ({
      apiKeys,
      allowAnonymous: false,
      anonymousTenant: 'default',
    });
    assert.throws(() => createAuthenticator(auth([{ id: 'a', key: 'short', tenant: 't' }])), /at least 16/);
    assert.throws(
      () =>
        createAuthenticator(
          auth([
            { id: 'a', key: ACME_KEY, tenant: 't' },
            { id: 'b', key: ACME_KEY, tenant: 't' },
          ]),
        ),
      /auth\.api_keys\.b\.key: expected a key of its own, got the same key as auth\.api_keys\.a/,
    );
    assert.throws(
      () => createAuthenticator(auth([{ id: 'a', key: ACME_KEY, tenant: 't' }]), { tenants: ['u'] }),
      /auth\.api_keys\.a\.tenant: expected a tenant defined under tenants \(u\), got "t"/,
    );
  });

  test('a key file that is missing or not a public key fails at construction, naming the field', async () => {
    const jwt = (source: Partial<NonNullable<ResolvedAuthConfig['jwt']>>): ResolvedAuthConfig => ({
      apiKeys: [],
      allowAnonymous: false,
      anonymousTenant: 'default',
      jwt: { algorithm: 'RS256', tenantClaim: 'tenant', clockToleranceMs: 0, ...source },
    });
    assert.throws(
      () => createAuthenticator(jwt({ publicKeyFile: join(dir, 'missing.pem') })),
      /auth\.jwt\.public_key_file: cannot read/,
    );
    await writeFile(join(dir, 'garbage.pem'), 'not a key');
    assert.throws(
      () => createAuthenticator(jwt({ publicKeyFile: join(dir, 'garbage.pem') })),
      /expected a PEM public key/,
    );
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    await writeFile(join(dir, 'private.json'), JSON.stringify({ keys: [await exportJWK(privateKey)] }));
    assert.throws(() => createAuthenticator(jwt({ jwksFile: join(dir, 'private.json') })), /holds a private key/);
  });

  test('expiry is judged on the injected clock, with clock_tolerance of slack', async () => {
    const authenticate = createAuthenticator(
      {
        apiKeys: [],
        allowAnonymous: false,
        anonymousTenant: 'default',
        jwt: { algorithm: 'HS256', secret: JWT_SECRET, tenantClaim: 'tenant', clockToleranceMs: 30_000 },
      },
      { tenants: ['acme'], now: () => Date.now() + 5 * 60_000 + 20_000 },
    );
    const request = (token: string) => ({ headers: { authorization: `Bearer ${token}` } }) as http.IncomingMessage;
    const caller = await authenticate(request(await hs256({ sub: 'carol' }, { exp: '5m' })));
    assert.deepEqual({ tenant: caller.tenant, identity: caller.identity }, { tenant: 'acme', identity: 'carol' });
    await assert.rejects(authenticate(request(await hs256({ sub: 'carol' }, { exp: '4m' }))), {
      data: { httpStatus: 401, relayCode: 'RELAY_UNAUTHENTICATED' },
    });
  });
});
