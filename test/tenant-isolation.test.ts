/**
 * Tenant isolation under concurrency: two tenants, two callers (API keys) each, hammering one
 * gateway with hundreds of interleaved calls over both eras (2026-07-28 stateless and 2025
 * sessions), against two SDK-built upstreams:
 *
 * - `mark` (forward_auth): sees each caller's own API key and answers with the caller it saw
 *   (`whoami`), or holds a call until the test lets it go (`hold`), counting per tenant what is in
 *   flight. Its answers are cached per caller (forward_auth), so a result served to the wrong
 *   caller would carry someone else's marker.
 * - `serial`: cannot tell callers apart; every answer carries a serial number unique to one
 *   upstream invocation (`mint`, cached by config; `mint_fresh`, not cached; a resource marked
 *   `cacheScope: 'private'` and one marked `public`). An invocation runs for one tenant's (or one
 *   caller's) cache miss, so the same serial reaching two tenants is a cross-tenant result.
 *
 * Tenant alpha has `max_concurrent: 4`; tenant beta a rate limit of 20/s (burst 10).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { toNodeHandler, type NodeIncomingMessageLike } from '@modelcontextprotocol/node';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import * as z from 'zod';

import { parseConfigText } from '../src/config/index.js';
import { startGateway, type Gateway } from '../src/gateway/index.js';

type TenantName = 'alpha' | 'beta';

interface CallerSpec {
  id: string;
  tenant: TenantName;
  key: string;
  era: 'modern' | 'legacy';
}

const CALLERS: readonly CallerSpec[] = [
  { id: 'alpha-1', tenant: 'alpha', key: `alpha-1-${randomBytes(16).toString('hex')}`, era: 'modern' },
  { id: 'alpha-2', tenant: 'alpha', key: `alpha-2-${randomBytes(16).toString('hex')}`, era: 'legacy' },
  { id: 'beta-1', tenant: 'beta', key: `beta-1-${randomBytes(16).toString('hex')}`, era: 'modern' },
  { id: 'beta-2', tenant: 'beta', key: `beta-2-${randomBytes(16).toString('hex')}`, era: 'legacy' },
];
const callerByKey = new Map(CALLERS.map((c) => [c.key, c]));

const ALPHA_MAX_CONCURRENT = 4;
const BETA_RATE = { requestsPerSecond: 20, burst: 10 };

// ---------------------------------------------------------------------------------------------
// Upstreams

async function listen(handler: ReturnType<typeof createMcpHandler>) {
  const node = toNodeHandler(handler);
  const server = http.createServer((req: IncomingMessage, res) => void node(req as NodeIncomingMessageLike, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    async stop() {
      await handler.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const text = (value: string) => ({ content: [{ type: 'text' as const, text: value }] });

/** The upstream that knows who calls: the caller's API key arrives with forward_auth. */
function markUpstream() {
  const holding = { alpha: 0, beta: 0 };
  const mostHeld = { alpha: 0, beta: 0 };
  const events = new EventEmitter();
  let release!: () => void;
  let released = new Promise<void>((resolve) => (release = resolve));
  const handler = createMcpHandler((ctx) => {
    const token = ctx.requestInfo?.headers.get('authorization')?.replace(/^Bearer /, '');
    const caller = token === undefined ? undefined : callerByKey.get(token);
    const server = new McpServer({ name: 'mark', version: '1.0.0' }, { capabilities: { tools: {} } });
    server.registerTool('whoami', { inputSchema: z.object({ n: z.number().int() }) }, ({ n }) =>
      text(`${caller?.id ?? 'nobody'}:${n}`),
    );
    server.registerTool('hold', { inputSchema: z.object({}) }, async () => {
      if (caller === undefined) return text('nobody:held');
      holding[caller.tenant]++;
      mostHeld[caller.tenant] = Math.max(mostHeld[caller.tenant], holding[caller.tenant]);
      events.emit('held');
      try {
        await released;
      } finally {
        holding[caller.tenant]--;
      }
      return text(`${caller.id}:held`);
    });
    return server;
  });
  return {
    handler,
    holding,
    mostHeld,
    /** Resolves once `count` calls of `tenant` are held at once. */
    held(tenant: TenantName, count: number): Promise<void> {
      return new Promise((resolve) => {
        const check = () => {
          if (holding[tenant] < count) return;
          events.off('held', check);
          resolve();
        };
        events.on('held', check);
        check();
      });
    },
    /** Lets every held call answer; later ones are held again. */
    releaseAll(): void {
      release();
      released = new Promise<void>((resolve) => (release = resolve));
    },
  };
}

/** The upstream that cannot tell callers apart: every answer carries a serial of its own. */
function serialUpstream() {
  let serial = 0;
  const invocations = { mint: 0, mint_fresh: 0, inbox: 0, notice: 0 };
  const handler = createMcpHandler(() => {
    const server = new McpServer({ name: 'serial', version: '1.0.0' }, { capabilities: { tools: {}, resources: {} } });
    server.registerTool('mint', { inputSchema: z.object({ k: z.number().int() }) }, ({ k }) => {
      invocations.mint++;
      return text(`mint-${k}-#${++serial}`);
    });
    server.registerTool('mint_fresh', { inputSchema: z.object({ k: z.number().int() }) }, ({ k }) => {
      invocations.mint_fresh++;
      return text(`fresh-${k}-#${++serial}`);
    });
    server.registerResource(
      'inbox',
      'secret://inbox',
      { mimeType: 'text/plain', cacheHint: { ttlMs: 300_000, cacheScope: 'private' } },
      (uri) => {
        invocations.inbox++;
        return { contents: [{ uri: uri.href, text: `inbox-#${++serial}` }] };
      },
    );
    server.registerResource(
      'notice',
      'public://notice',
      { mimeType: 'text/plain', cacheHint: { ttlMs: 300_000, cacheScope: 'public' } },
      (uri) => {
        invocations.notice++;
        return { contents: [{ uri: uri.href, text: `notice-#${++serial}` }] };
      },
    );
    return server;
  });
  return { handler, invocations };
}

// ---------------------------------------------------------------------------------------------
// Callers: raw JSON-RPC over HTTP, in either era

interface RpcError {
  code: number;
  message: string;
  data?: Record<string, unknown>;
}
type Outcome = { ok: true; text: string } | { ok: false; error: RpcError };

const MODERN_META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'isolation', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': {},
};

class Caller {
  readonly spec: CallerSpec;
  readonly #url: string;
  #session: string | undefined;
  #nextId = 1;

  constructor(spec: CallerSpec, url: string) {
    this.spec = spec;
    this.#url = url;
  }

  async open(): Promise<void> {
    if (this.spec.era !== 'legacy') return;
    const init = await this.#post(
      {
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'isolation', version: '1' } },
      },
      {},
    );
    assert.equal(init.status, 200, `${this.spec.id}: initialize answered ${init.status}: ${init.body}`);
    this.#session = init.session;
    assert.ok(this.#session, `${this.spec.id}: initialize gave no session id`);
    const initialized = await this.#post(
      { jsonrpc: '2.0', method: 'notifications/initialized' },
      this.#legacyHeaders(),
    );
    assert.ok(initialized.status === 202 || initialized.status === 200);
  }

  async close(): Promise<void> {
    if (this.#session === undefined) return;
    await fetch(this.#url, { method: 'DELETE', headers: { ...this.#auth(), ...this.#legacyHeaders() } });
    this.#session = undefined;
  }

  callTool(name: string, args: Record<string, unknown>): Promise<Outcome> {
    return this.#request('tools/call', { name, arguments: args }, name);
  }

  readResource(uri: string): Promise<Outcome> {
    return this.#request('resources/read', { uri }, uri);
  }

  async #request(method: string, params: Record<string, unknown>, name: string): Promise<Outcome> {
    const id = this.#nextId++;
    const modern = this.spec.era === 'modern';
    const response = await this.#post(
      { jsonrpc: '2.0', id, method, params: modern ? { ...params, _meta: MODERN_META } : params },
      modern ? { 'mcp-protocol-version': '2026-07-28', 'mcp-method': method, 'mcp-name': name } : this.#legacyHeaders(),
    );
    const message = messageWithId(response.body, response.contentType, id);
    if (message['error'] !== undefined) return { ok: false, error: message['error'] as RpcError };
    const result = message['result'] as {
      content?: { text?: string }[];
      contents?: { text?: string }[];
      isError?: boolean;
    };
    const value = (result.content ?? result.contents)?.[0]?.text;
    assert.ok(result.isError !== true && typeof value === 'string', `${this.spec.id}: ${JSON.stringify(result)}`);
    return { ok: true, text: value };
  }

  #auth(): Record<string, string> {
    return { authorization: `Bearer ${this.spec.key}` };
  }

  #legacyHeaders(): Record<string, string> {
    return this.#session === undefined ? {} : { 'mcp-session-id': this.#session, 'mcp-protocol-version': '2025-06-18' };
  }

  async #post(message: Record<string, unknown>, headers: Record<string, string>) {
    const response = await fetch(this.#url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        ...this.#auth(),
        ...headers,
      },
      body: JSON.stringify(message),
    });
    return {
      status: response.status,
      contentType: response.headers.get('content-type'),
      session: response.headers.get('mcp-session-id') ?? undefined,
      body: await response.text(),
    };
  }
}

/** The JSON-RPC message with this id, from a JSON or an SSE body. */
function messageWithId(body: string, contentType: string | null, id: number): Record<string, unknown> {
  const messages = contentType?.startsWith('text/event-stream')
    ? body
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => JSON.parse(line.slice(5)) as Record<string, unknown>)
    : [JSON.parse(body) as Record<string, unknown>];
  const message = messages.find((m) => m['id'] === id);
  assert.ok(message, `no answer with id ${id} in: ${body.slice(0, 300)}`);
  return message;
}

/** What one caller got, per kind of call. */
interface Seen {
  whoami: string[];
  mint: Map<number, string[]>;
  fresh: string[];
  inbox: string[];
  notice: string[];
}

/** What refused calls said, per tenant: relayCode and the tenant the refusal named. */
type Refusals = Record<TenantName, { relayCode: unknown; tenant: unknown }[]>;

function newRefusals(): Refusals {
  return { alpha: [], beta: [] };
}

/**
 * A call that is retried while its tenant's quota or rate limit refuses it (each refusal
 * recorded), so that every call ends with an answer whose content can be checked.
 */
async function persist(caller: Caller, refusals: Refusals, call: () => Promise<Outcome>): Promise<string> {
  for (let attempt = 0; attempt < 2000; attempt++) {
    const outcome = await call();
    if (outcome.ok) return outcome.text;
    const { error } = outcome;
    assert.equal(error.code, -32003, `${caller.spec.id}: unexpected error ${JSON.stringify(error)}`);
    refusals[caller.spec.tenant].push({ relayCode: error.data?.['relayCode'], tenant: error.data?.['tenant'] });
    const retryAfterMs = error.data?.['retryAfterMs'];
    await sleep(typeof retryAfterMs === 'number' ? retryAfterMs : 2);
  }
  throw new Error(`${caller.spec.id}: still refused after 2000 attempts`);
}

/** Runs `count` tasks with at most `width` at once. */
async function pooled(count: number, width: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

function assertOwnRefusals(refusals: Refusals): void {
  for (const r of refusals.alpha) assert.deepEqual(r, { relayCode: 'RELAY_QUOTA_EXCEEDED', tenant: 'alpha' });
  for (const r of refusals.beta) assert.deepEqual(r, { relayCode: 'RELAY_RATE_LIMITED', tenant: 'beta' });
}

// ---------------------------------------------------------------------------------------------

let mark: ReturnType<typeof markUpstream>;
let serial: ReturnType<typeof serialUpstream>;
let markServer: Awaited<ReturnType<typeof listen>>;
let serialServer: Awaited<ReturnType<typeof listen>>;
let gateway: Gateway;
let callers: Caller[];

const of = (tenant: TenantName) => callers.filter((c) => c.spec.tenant === tenant);

before(async () => {
  mark = markUpstream();
  serial = serialUpstream();
  markServer = await listen(mark.handler);
  serialServer = await listen(serial.handler);
  const env = Object.fromEntries(CALLERS.map((c) => [c.id.replace('-', '_').toUpperCase(), c.key]));
  const config = parseConfigText(
    `
upstreams:
  mark:
    server_url: ${markServer.url}
    forward_auth: true
    connection_pool_size: 64
    cache:
      tools: [whoami]
  serial:
    server_url: ${serialServer.url}
    connection_pool_size: 64
    cache:
      tools: [mint]
auth:
  api_keys:
${CALLERS.map((c) => `    ${c.id}: { key: "\${${c.id.replace('-', '_').toUpperCase()}}", tenant: ${c.tenant} }`).join('\n')}
tenants:
  alpha:
    max_concurrent: ${ALPHA_MAX_CONCURRENT}
  beta:
    rate_limit: { requests_per_second: ${BETA_RATE.requestsPerSecond}, burst: ${BETA_RATE.burst} }
`,
    { env, source: 'isolation.yaml' },
  );
  gateway = await startGateway({
    port: 0,
    upstreams: config.upstreams,
    auth: config.auth,
    tenants: config.tenants,
  });
  callers = CALLERS.map((spec) => new Caller(spec, `${gateway.url}/mcp`));
  for (const caller of callers) await caller.open();
});

after(async () => {
  mark?.releaseAll();
  for (const caller of callers ?? []) await caller.close().catch(() => undefined);
  await gateway?.close();
  await markServer?.stop();
  await serialServer?.stop();
});

describe('tenant isolation under concurrency', () => {
  test('hundreds of interleaved calls on the same keys: every result is the caller’s own, every refusal its own tenant’s', async () => {
    const refusals = newRefusals();
    /** caller id → what it got, per kind of call. */
    const seen = new Map<string, Seen>();
    for (const c of callers) seen.set(c.spec.id, { whoami: [], mint: new Map(), fresh: [], inbox: [], notice: [] });
    const PER_CALLER = 75;
    const KEYS = 8;
    // Every caller walks the same keys in the same order, four workers each: the same cache keys
    // are asked for by both tenants at the same moments, across both eras.
    await Promise.all(
      callers.map((caller) =>
        pooled(PER_CALLER, 4, async (i) => {
          const mine = seen.get(caller.spec.id)!;
          const k = i % KEYS;
          switch (i % 5) {
            case 0:
              mine.whoami.push(`${k}=${await persist(caller, refusals, () => caller.callTool('whoami', { n: k }))}`);
              break;
            case 1: {
              const value = await persist(caller, refusals, () => caller.callTool('mint', { k }));
              mine.mint.set(k, [...(mine.mint.get(k) ?? []), value]);
              break;
            }
            case 2:
              mine.fresh.push(await persist(caller, refusals, () => caller.callTool('mint_fresh', { k })));
              break;
            case 3:
              mine.inbox.push(await persist(caller, refusals, () => caller.readResource('secret://inbox')));
              break;
            default:
              mine.notice.push(await persist(caller, refusals, () => caller.readResource('public://notice')));
          }
        }),
      ),
    );

    // whoami is answered per caller (forward_auth): each answer names the caller who asked.
    for (const [id, mine] of seen) {
      assert.equal(mine.whoami.length, PER_CALLER / 5);
      for (const entry of mine.whoami) {
        const [k, answer] = entry.split('=');
        assert.equal(answer, `${id}:${k}`, `${id} was answered for someone else`);
      }
    }
    // An upstream invocation serves one tenant's miss: no serial reaches both tenants.
    const serials = (tenant: TenantName, pick: (m: Seen) => string[]) =>
      new Set(of(tenant).flatMap((c) => pick(seen.get(c.spec.id)!)));
    const kinds: [string, (m: Seen) => string[]][] = [
      ['mint', (m) => [...m.mint.values()].flat()],
      ['mint_fresh', (m) => m.fresh],
      ['private resource', (m) => m.inbox],
      ['public resource', (m) => m.notice],
    ];
    for (const [label, pick] of kinds) {
      const alpha = serials('alpha', pick);
      const beta = serials('beta', pick);
      const shared = [...alpha].filter((value) => beta.has(value));
      assert.deepEqual(shared, [], `${label}: these results reached both tenants`);
      assert.ok(alpha.size > 0 && beta.size > 0, label);
    }
    // A private entry is the caller's own, even within its tenant.
    const inboxes = callers.map((c) => new Set(seen.get(c.spec.id)!.inbox));
    for (let a = 0; a < inboxes.length; a++) {
      for (let b = a + 1; b < inboxes.length; b++) {
        const both = [...inboxes[a]!].filter((value) => inboxes[b]!.has(value));
        assert.deepEqual(both, [], `${callers[a]!.spec.id} and ${callers[b]!.spec.id} shared a private entry`);
      }
    }
    // Refusals came, and each named the refused caller's own tenant and its own limit.
    assertOwnRefusals(refusals);
    assert.ok(refusals.alpha.length + refusals.beta.length > 0, 'the limits were never reached');
  });

  test('entries are shared where config or the server says so, and only within the tenant', async () => {
    const refusals = newRefusals();
    const get = (caller: Caller, call: () => Promise<Outcome>) => persist(caller, refusals, call);
    // All four callers on 2026-07-28 here. A 2025 session's calls to a 2026-07-28 upstream take the
    // gateway's second, 2025 connection to it (GatewayCore #legacyTwin, for sampling and
    // elicitation), whose cache is its own: across eras entries are not shared, even within a
    // tenant, which isolates more than config asks but is no leak. The first test covers both eras.
    const modern = callers.map((c) => new Caller({ ...c.spec, era: 'modern' }, `${gateway.url}/mcp`));
    const [alpha1, alpha2, beta1, beta2] = modern;

    // `mint` is cached by config (cache.tools): one entry per tenant, whoever of the tenant asks.
    for (const k of [100, 101, 102]) {
      const a1 = await get(alpha1!, () => alpha1!.callTool('mint', { k }));
      const a2 = await get(alpha2!, () => alpha2!.callTool('mint', { k }));
      const b1 = await get(beta1!, () => beta1!.callTool('mint', { k }));
      const b2 = await get(beta2!, () => beta2!.callTool('mint', { k }));
      assert.equal(a2, a1, `alpha's callers share mint ${k}`);
      assert.equal(b2, b1, `beta's callers share mint ${k}`);
      assert.notEqual(b1, a1, `mint ${k} is not shared across tenants`);
    }
    // `mint_fresh` is not in cache.tools: never answered from cache, even for the same caller.
    const before = serial.invocations.mint_fresh;
    const first = await get(alpha1!, () => alpha1!.callTool('mint_fresh', { k: 7 }));
    const again = await get(alpha1!, () => alpha1!.callTool('mint_fresh', { k: 7 }));
    assert.notEqual(again, first);
    assert.equal(serial.invocations.mint_fresh, before + 2);
    // cacheScope 'public': shared within the tenant (the tenant is still the partition).
    const notice = await Promise.all(modern.map((c) => get(c, () => c.readResource('public://notice'))));
    assert.equal(notice[1], notice[0]);
    assert.equal(notice[3], notice[2]);
    assert.notEqual(notice[2], notice[0]);
    // cacheScope 'private': each caller its own, and its own again on the next read.
    const inbox = await Promise.all(modern.map((c) => get(c, () => c.readResource('secret://inbox'))));
    assert.equal(new Set(inbox).size, modern.length, `private entries: ${inbox.join(', ')}`);
    const inboxAgain = await Promise.all(modern.map((c) => get(c, () => c.readResource('secret://inbox'))));
    assert.deepEqual(inboxAgain, inbox);
    assertOwnRefusals(refusals);
  });

  test('alpha at its max_concurrent is refused at once; beta, meanwhile, is served and refused only by its own limit', async () => {
    const refusals = newRefusals();
    const [alpha1, alpha2] = of('alpha');
    // Four alpha calls held at the upstream: alpha's whole quota.
    const holds = Array.from({ length: ALPHA_MAX_CONCURRENT }, (_, i) =>
      (i % 2 === 0 ? alpha1! : alpha2!).callTool('hold', {}),
    );
    await mark.held('alpha', ALPHA_MAX_CONCURRENT);

    // While they are held: 60 more alpha calls from both callers, and 40 of beta's.
    const alphaExtra = Promise.all(
      Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? alpha1! : alpha2!).callTool('whoami', { n: i })),
    );
    const betaAnswers: string[] = [];
    await Promise.all(
      of('beta').map((caller) =>
        pooled(20, 4, async (i) => {
          const answer = await persist(caller, refusals, () => caller.callTool('whoami', { n: 1000 + i }));
          betaAnswers.push(`${caller.spec.id}>${answer}`);
        }),
      ),
    );
    const extra = await alphaExtra;
    assert.equal(mark.holding.alpha, ALPHA_MAX_CONCURRENT, 'the held calls were still running');
    mark.releaseAll();
    const held = await Promise.all(holds);

    for (const outcome of extra) {
      assert.ok(!outcome.ok, 'an alpha call beyond max_concurrent was admitted');
      assert.equal(outcome.error.code, -32003);
      assert.deepEqual(
        { relayCode: outcome.error.data?.['relayCode'], tenant: outcome.error.data?.['tenant'] },
        { relayCode: 'RELAY_QUOTA_EXCEEDED', tenant: 'alpha' },
      );
    }
    // Beta's refusals, if any, were its own rate limit's: never alpha's quota.
    assertOwnRefusals(refusals);
    assert.equal(betaAnswers.length, 40);
    for (const answer of betaAnswers) {
      const [who, said] = answer.split('>');
      assert.match(said!, new RegExp(`^${who}:\\d+$`));
    }
    assert.deepEqual(
      held.map((o) => (o.ok ? o.text : o.error.message)),
      held.map((_, i) => `${i % 2 === 0 ? 'alpha-1' : 'alpha-2'}:held`),
    );
    assert.equal(mark.mostHeld.alpha, ALPHA_MAX_CONCURRENT, 'alpha never had more than its quota upstream');
    // And alpha is admitted again once its calls have ended.
    assert.deepEqual(await alpha1!.callTool('whoami', { n: 5000 }), { ok: true, text: 'alpha-1:5000' });
  });

  test('beta over its rate limit is refused, within its bucket; alpha, meanwhile, is never refused', async () => {
    const betaOutcomes: Outcome[] = [];
    const alphaOutcomes: Outcome[] = [];
    const started = performance.now();
    await Promise.all([
      ...of('beta').map((caller) =>
        pooled(100, 10, async (i) => {
          betaOutcomes.push(await caller.callTool('whoami', { n: 2000 + i }));
        }),
      ),
      // Three at a time: under alpha's max_concurrent of 4, so nothing of alpha's may be refused.
      pooled(60, 3, async (i) => {
        const caller = of('alpha')[i % 2]!;
        alphaOutcomes.push(await caller.callTool('mint_fresh', { k: 3000 + i }));
      }),
    ]);
    const elapsedS = (performance.now() - started) / 1000;

    assert.equal(alphaOutcomes.length, 60);
    for (const outcome of alphaOutcomes) assert.ok(outcome.ok, `alpha refused: ${JSON.stringify(outcome)}`);
    const admitted = betaOutcomes.filter((o) => o.ok);
    const refused = betaOutcomes.filter((o) => !o.ok);
    assert.ok(refused.length > 0, `beta sent 200 calls in ${elapsedS.toFixed(1)} s and none was refused`);
    for (const outcome of refused) {
      assert.equal(outcome.error.code, -32003);
      assert.equal(outcome.error.data?.['relayCode'], 'RELAY_RATE_LIMITED');
      assert.equal(outcome.error.data?.['tenant'], 'beta');
      assert.ok((outcome.error.data?.['retryAfterMs'] as number) > 0);
    }
    // The bucket never admits more than its burst plus its rate over the time that passed.
    const most = BETA_RATE.burst + BETA_RATE.requestsPerSecond * elapsedS;
    assert.ok(
      admitted.length <= most,
      `beta: ${admitted.length} admitted in ${elapsedS.toFixed(2)} s, at most ${most}`,
    );
  });
});
