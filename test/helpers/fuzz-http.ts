/**
 * The HTTP half of the fuzz tests: a gateway with API keys and JWT over the stdio demo upstream,
 * a keep-alive client, and the check every answer must pass. Each fuzz-http-*.test.ts file runs
 * one shard of the cases (a quarter of FUZZ_CASES), so that no file runs much over half a minute.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { Pool } from 'undici';

import { parseConfigText } from '../../src/config/index.js';
import { startGateway, type Gateway } from '../../src/gateway/index.js';
import { stdioFixture } from '../fixtures/index.js';
import {
  assertNoLeak,
  assertRpcResponse,
  FUZZ_CASES,
  fuzzParameters,
  junkText,
  METHODS,
  MODERN,
  MODERN_META,
  nearValidMessage,
  rarely,
  requestId,
  type NearValidMessage,
} from './fuzz.js';

export const API_KEY = 'fuzz-key-5d1c0b9e7a3f4e21b8c6';
export const JWT_SECRET = 'fuzz-jwt-secret-0123456789abcdef0123456789abcdef';
/** Stands in a case for the id of the 2025 session the fuzzing caller opened before the run. */
export const LIVE_SESSION = '<live session>';
/** Requests per fast-check run, all in flight at once over the pool's connections. */
const BATCH = 64;
/** Statuses the Streamable HTTP binding gives bad requests; never 500 for anything a client sent. */
const STATUSES = new Set([200, 202, 400, 401, 403, 404, 405, 406, 413, 415]);

export interface HttpCase {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string | undefined;
}

/** Printable ASCII: what a header value may carry (undici refuses the rest before sending). */
export const headerText = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  maxLength: 24,
});

/** A header value: a meaningful one most often, any printable text sometimes, or none. */
export function header(...values: string[]): fc.Arbitrary<string | undefined> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...values) },
    { weight: 1, arbitrary: headerText },
    { weight: 3, arbitrary: fc.constant(undefined) },
  );
}

/** Mostly `value`, sometimes another meaningful one, any text, or none. */
export function usually(value: string, ...others: string[]): fc.Arbitrary<string | undefined> {
  return fc.oneof({ weight: 6, arbitrary: fc.constant(value) }, { weight: 1, arbitrary: header(...others) });
}

const HEADER_SAFE = /^[\x20-\x7e]*$/;

/** A body's own method or name as a header value, when it can be one. */
export function asHeader(value: string | undefined): string | undefined {
  return value !== undefined && HEADER_SAFE.test(value) ? value : undefined;
}

/** `Mcp-Method`/`Mcp-Name`: the body's own value most often, another, or none. */
export function echoHeader(own: string | undefined, ...others: string[]): fc.Arbitrary<string | undefined> {
  return fc.oneof({ weight: 3, arbitrary: fc.constant(asHeader(own)) }, { weight: 1, arbitrary: header(...others) });
}

export const bodies: fc.Arbitrary<NearValidMessage> = fc.oneof(
  { weight: 6, arbitrary: nearValidMessage },
  { weight: 1, arbitrary: junkText.map((text): NearValidMessage => ({ text, method: undefined, name: undefined })) },
);
export const junkBodies: fc.Arbitrary<NearValidMessage> = junkText.map((text) => ({
  text,
  method: undefined,
  name: undefined,
}));
export const METHOD_HEADERS = METHODS.filter((m) => m !== '');
export const origin = rarely(fc.constantFrom('http://localhost:3000', 'https://evil.example', 'null'), 20);
export const authorization = fc.oneof(
  { weight: 8, arbitrary: fc.constant(`Bearer ${API_KEY}`) },
  { weight: 1, arbitrary: header('Bearer wrong', 'Basic YTpi', 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2ln', 'Bearer') },
);

/** Headers from name → value pairs, those without a value left out. */
export function headersOf(pairs: Record<string, string | undefined>): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(pairs)) if (value !== undefined) headers[name] = value;
  return headers;
}

let gateway: Gateway;
let pool: Pool;
let sessionId: string;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

/** Registers the gateway, the fuzz test of `count` cases drawn from `cases`, and the afterwards check. */
export function fuzzHttp(shard: string, cases: fc.Arbitrary<HttpCase>, count = Math.ceil(FUZZ_CASES / 4)): void {
  before(async () => {
    process.on('unhandledRejection', onUnhandled);
    const { command, args } = stdioFixture();
    const config = parseConfigText(
      JSON.stringify({
        upstreams: { local: { command, args } },
        auth: {
          api_keys: { fuzzer: { key: API_KEY, tenant: 'acme' } },
          jwt: { algorithm: 'HS256', secret: JWT_SECRET },
          allow_anonymous: true,
        },
        tenants: { acme: {}, default: {} },
        telemetry: { logging: { level: 'fatal' } },
      }),
      { format: 'json' },
    );
    gateway = await startGateway({
      port: 0,
      upstreams: config.upstreams,
      auth: config.auth,
      tenants: config.tenants,
      telemetry: config.telemetry,
    });
    pool = new Pool(gateway.url, { connections: 8, pipelining: 1, headersTimeout: 30_000, bodyTimeout: 30_000 });
    const init = await pool.request({
      path: '/mcp',
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${API_KEY}`,
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'fuzz', version: '1' } },
      }),
    });
    await init.body.text();
    assert.equal(init.statusCode, 200);
    sessionId = String(init.headers['mcp-session-id']);
  });

  after(async () => {
    process.off('unhandledRejection', onUnhandled);
    await pool.close();
    await gateway.close();
  });

  test(`HTTP inbound, ${shard}: ${count} fuzzed requests in concurrent batches of ${BATCH}, every answer well-formed`, async () => {
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(cases, { minLength: BATCH, maxLength: BATCH }), async (batch) => {
        await Promise.all(batch.map(send));
        sent += batch.length;
        await goodCall();
      }),
      fuzzParameters(Math.ceil(count / BATCH)),
    );
    assert.ok(sent >= count);
    assert.deepEqual(unhandled, []);
  });

  test(`HTTP inbound, ${shard}: afterwards both revisions are still served`, async () => {
    await goodCall();
    const response = await pool.request({
      path: '/mcp',
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2025-11-25',
        'mcp-session-id': sessionId,
        authorization: `Bearer ${API_KEY}`,
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 7,
        method: 'tools/call',
        params: { name: 'echo', arguments: { text: 'ok' } },
      }),
    });
    const body = (await response.body.json()) as { id: number; result?: { content: { text: string }[] } };
    assert.equal(body.id, 7);
    assert.equal(body.result?.content[0]?.text, 'ok');
    assert.deepEqual(unhandled, []);
  });
}

/** The JSON-RPC messages of an SSE body, in order. */
function sseMessages(text: string): unknown[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('data: '))
    .map((line) => JSON.parse(line.slice(6)) as unknown);
}

async function send(c: HttpCase): Promise<void> {
  const headers =
    c.headers['mcp-session-id'] === LIVE_SESSION ? { ...c.headers, 'mcp-session-id': sessionId } : c.headers;
  const response = await pool.request({
    path: c.path,
    method: c.method,
    headers,
    ...(c.body === undefined ? {} : { body: c.body }),
  });
  const text = await response.body.text();
  const status = response.statusCode;
  const context = () =>
    `${c.method} ${c.path} ${JSON.stringify(headers)}\n${c.body ?? ''}\n→ ${status} ${text.slice(0, 500)}`;
  if (!STATUSES.has(status)) assert.fail(`unexpected status: ${context()}`);
  assertNoLeak(text, [API_KEY, JWT_SECRET], context);
  if (status === 202) {
    if (text !== '') assert.fail(`a 202 has a body: ${context()}`);
    return;
  }
  let sent: unknown;
  try {
    sent = c.body === undefined ? undefined : JSON.parse(c.body);
  } catch {
    sent = undefined;
  }
  const id = requestId(sent);
  const contentType = String(response.headers['content-type'] ?? '');
  if (contentType.startsWith('text/event-stream')) {
    const messages = sseMessages(text);
    if (messages.length === 0) assert.fail(`an SSE answer without the response: ${context()}`);
    for (const message of messages.slice(0, -1)) {
      const m = message as Record<string, unknown>;
      if (m['jsonrpc'] !== '2.0' || typeof m['method'] !== 'string') assert.fail(`SSE message: ${context()}`);
    }
    assertRpcResponse(messages.at(-1), id, context);
    return;
  }
  if (!contentType.startsWith('application/json')) assert.fail(`content type ${contentType}: ${context()}`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    assert.fail(`the body is not JSON: ${context()}`);
  }
  assertRpcResponse(body, id, context);
}

/** A good 2026-07-28 call: the gateway still serves. */
async function goodCall(): Promise<void> {
  const response = await pool.request({
    path: '/mcp',
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': MODERN,
      'mcp-method': 'tools/call',
      'mcp-name': 'echo',
      authorization: `Bearer ${API_KEY}`,
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 'good',
      method: 'tools/call',
      params: { name: 'echo', arguments: { text: 'still here' }, _meta: MODERN_META },
    }),
  });
  const body = (await response.body.json()) as { result?: { content: { text: string }[] } };
  assert.equal(response.statusCode, 200);
  assert.equal(body.result?.content[0]?.text, 'still here');
}
