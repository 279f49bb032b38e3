/**
 * Property-based fuzzing of the stdio inbound: batches of random lines (invalid JSON, any JSON
 * value, near-valid JSON-RPC of either revision) written to a StdioInbound over the demo upstream.
 * Every request gets exactly one well-formed response with its id (null when it has none that is
 * valid), notifications and client responses get none, nothing leaks, nothing rejects unhandled,
 * and a good request is still answered afterwards. FUZZ_CASES lines in all (100,000 by default).
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import fc from 'fast-check';

import { resolveProxyConfig } from '../src/config/index.js';
import { createGatewayCore, StdioInbound, type GatewayCore } from '../src/gateway/index.js';
import { stdioFixture } from './fixtures/index.js';
import {
  assertNoLeak,
  assertRpcResponse,
  FUZZ_CASES,
  fuzzParameters,
  junkText,
  MODERN_META,
  nearValidMessage,
  requestId,
} from './helpers/fuzz.js';

/** Lines per fast-check run: written at once, so the inbound sees them pipelined. */
const BATCH = 50;
const ANSWER_DEADLINE_MS = 30_000;

const PRELUDES = {
  legacy: JSON.stringify({
    jsonrpc: '2.0',
    id: 'prelude',
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'fuzz', version: '1' } },
  }),
  modern: JSON.stringify({ jsonrpc: '2.0', id: 'prelude', method: 'server/discover', params: { _meta: MODERN_META } }),
  none: undefined,
};

let core: GatewayCore;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

before(async () => {
  process.on('unhandledRejection', onUnhandled);
  core = await createGatewayCore({ upstreams: [resolveProxyConfig({ name: 'local', ...stdioFixture() })] });
  await core.warmUp();
});

after(async () => {
  process.off('unhandledRejection', onUnhandled);
  await core.close();
});

/** What the inbound must answer to one line: how many responses with which id (by its JSON). */
interface Expectation {
  /** Responses due, by the JSON of their id ("null" for the id-less error answers). */
  due: Map<string, number>;
  /** Ids that a `notifications/cancelled` in the batch names: their requests may go unanswered. */
  cancellable: Set<string>;
}

function expect(line: string, expectation: Expectation): void {
  const add = (key: string): void => {
    expectation.due.set(key, (expectation.due.get(key) ?? 0) + 1);
  };
  if (line.trim() === '') return;
  let message: unknown;
  try {
    message = JSON.parse(line);
  } catch {
    add('null');
    return;
  }
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return add('null');
  const record = message as Record<string, unknown>;
  if (record['jsonrpc'] !== '2.0') return add('null');
  if (typeof record['method'] !== 'string') return; // a client's response: nothing to answer
  if (!('id' in record)) {
    const params = record['params'];
    if (record['method'] === 'notifications/cancelled' && typeof params === 'object' && params !== null) {
      expectation.cancellable.add(JSON.stringify((params as Record<string, unknown>)['requestId']));
    }
    return;
  }
  const id = requestId(record);
  add(id === undefined ? 'null' : JSON.stringify(id));
}

/** Writes the lines to a fresh inbound and checks every answer against the expectation. */
async function runBatch(prelude: keyof typeof PRELUDES, texts: readonly string[]): Promise<void> {
  const input = new PassThrough();
  const output = new PassThrough();
  const inbound = new StdioInbound(core, { input, output, maxMessageBytes: 1024 * 1024 });
  const expectation: Expectation = { due: new Map(), cancellable: new Set() };
  const lines = [PRELUDES[prelude], ...texts.flatMap((text) => text.split('\n'))].filter((l) => l !== undefined);
  for (const line of lines) expect(line, expectation);
  const seen = new Map<string, number>();
  const context = () => `prelude ${prelude}, lines:\n${lines.join('\n')}`;
  try {
    await new Promise<void>((resolve, reject) => {
      let pending = '';
      let sentinelSent = false;
      const timer = setTimeout(() => {
        const missing = [...expectation.due].filter(
          ([key, n]) => (seen.get(key) ?? 0) < n && !expectation.cancellable.has(key),
        );
        reject(new Error(`no answer within ${ANSWER_DEADLINE_MS} ms for ids ${missing.map(([k]) => k).join(', ')}`));
      }, ANSWER_DEADLINE_MS);
      const complete = () =>
        [...expectation.due].every(([key, n]) => expectation.cancellable.has(key) || (seen.get(key) ?? 0) >= n);
      output.setEncoding('utf8');
      output.on('data', (chunk: string) => {
        try {
          onChunk(chunk);
        } catch (error) {
          clearTimeout(timer);
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
      const onChunk = (chunk: string) => {
        pending += chunk;
        let newline = pending.indexOf('\n');
        while (newline !== -1) {
          const text = pending.slice(0, newline);
          pending = pending.slice(newline + 1);
          newline = pending.indexOf('\n');
          assertNoLeak(text, [], context);
          const message = JSON.parse(text) as Record<string, unknown>;
          if (typeof message['method'] === 'string' && !('id' in message)) continue; // progress, logs
          if (message['id'] === '\u0000sentinel') {
            clearTimeout(timer);
            resolve();
            return;
          }
          const key = JSON.stringify(message['id']);
          seen.set(key, (seen.get(key) ?? 0) + 1);
          const id = message['id'];
          assertRpcResponse(message, typeof id === 'string' || typeof id === 'number' ? id : undefined, context);
          if (!sentinelSent && complete()) {
            // Everything due is in: a last ping, answered after whatever was still on its way.
            sentinelSent = true;
            input.write(`${JSON.stringify({ jsonrpc: '2.0', id: '\u0000sentinel', method: 'ping' })}\n`);
          }
        }
      };
      input.write(lines.map((line) => `${line}\n`).join(''));
      if (expectation.due.size === 0 || complete()) {
        sentinelSent = true;
        input.write(`${JSON.stringify({ jsonrpc: '2.0', id: '\u0000sentinel', method: 'ping' })}\n`);
      }
    });
    for (const [key, count] of seen) {
      const due = expectation.due.get(key) ?? 0;
      if (expectation.cancellable.has(key)) {
        if (count > due) assert.fail(`${context()}\n: id ${key} answered ${count} times`);
      } else if (count !== due) assert.fail(`${context()}\n: id ${key} answered ${count} times, expected ${due}`);
    }
  } finally {
    inbound.close();
  }
}

const line = fc.oneof(
  { weight: 3, arbitrary: nearValidMessage.map((m) => m.text) },
  { weight: 1, arbitrary: junkText },
);

test(`stdio inbound: ${FUZZ_CASES} random lines in batches of ${BATCH}, every request answered once with its id`, async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom('legacy', 'modern', 'none' as const),
      fc.array(line, { minLength: BATCH, maxLength: BATCH }),
      (prelude, texts) => runBatch(prelude, texts),
    ),
    fuzzParameters(Math.ceil(FUZZ_CASES / BATCH)),
  );
  assert.deepEqual(unhandled, []);
});

test('stdio inbound: a good request is still answered after the fuzzing', async () => {
  const input = new PassThrough();
  const output = new PassThrough();
  const inbound = new StdioInbound(core, { input, output, maxMessageBytes: 1024 * 1024 });
  try {
    const answer = new Promise<string>((resolve) => {
      let text = '';
      output.setEncoding('utf8');
      output.on('data', (chunk: string) => {
        text += chunk;
        const lines = text.split('\n');
        const found = lines.find((l) => l.includes('"id":2'));
        if (found) resolve(found);
      });
    });
    input.write(`${PRELUDES.legacy}\n`);
    input.write(
      `${JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { text: 'still here' } } })}\n`,
    );
    const response = JSON.parse(await answer) as { result: { content: { text: string }[] } };
    assert.equal(response.result.content[0]?.text, 'still here');
  } finally {
    inbound.close();
  }
  assert.deepEqual(unhandled, []);
});
