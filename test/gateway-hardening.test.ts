/**
 * Hostile input at the HTTP edge, case by case (the fuzz-*.test.ts files cover the random
 * space): oversized and deeply nested bodies, invalid UTF-8, batches, header floods, slow-loris
 * clients, wrong content types, unknown methods and GET/DELETE abuse. Raw sockets where the
 * bytes matter. Every case ends with the gateway still serving.
 */
import assert from 'node:assert/strict';
import net, { type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';

import { resolveProxyConfig } from '../src/config/index.js';
import { createGatewayCore, startGateway, StdioInbound, type Gateway } from '../src/gateway/index.js';
import { startInProcessHttpFixture, stdioFixture, type InProcessHttpFixture } from './fixtures/index.js';
import { MODERN, MODERN_META } from './helpers/fuzz.js';

const API_KEY = 'hardening-key-4b7e1f0c9d2a';
const LIMIT = 1024 * 1024;

let upstream: InProcessHttpFixture;
let gateway: Gateway;
const sockets: Socket[] = [];

before(async () => {
  upstream = await startInProcessHttpFixture({ mode: 'modern' });
  gateway = await startGateway({
    port: 0,
    maxBodyBytes: LIMIT,
    headersTimeoutMs: 500,
    requestTimeoutMs: 1000,
    upstreams: [resolveProxyConfig({ name: 'local', serverUrl: upstream.url })],
    auth: { apiKeys: [{ id: 'ci', key: API_KEY, tenant: 'acme' }], allowAnonymous: true, anonymousTenant: 'default' },
    // One call at a time for acme: a client that never finishes its request must not hold it.
    tenants: { acme: { maxConcurrent: 1 }, default: {} },
    telemetry: undefined,
  });
  gateway.server.on('connection', (socket) => sockets.push(socket));
});

after(async () => {
  await gateway.close();
  await upstream.stop();
});

const JSON_HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  authorization: `Bearer ${API_KEY}`,
};
const MODERN_HEADERS = { ...JSON_HEADERS, 'mcp-protocol-version': MODERN };

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: { id?: unknown; error?: { code: number; message: string }; result?: { content?: { text: string }[] } };
}

async function post(body: string | Uint8Array, headers: Record<string, string> = MODERN_HEADERS, path = '/mcp') {
  return request('POST', body, headers, path);
}

async function request(
  method: string,
  body: string | Uint8Array | undefined,
  headers: Record<string, string>,
  path = '/mcp',
): Promise<Answer> {
  const payload = typeof body === 'string' || body === undefined ? body : new Blob([body as Uint8Array<ArrayBuffer>]);
  const response = await fetch(`${gateway.url}${path}`, {
    method,
    headers,
    ...(payload === undefined ? {} : { body: payload }),
  });
  const text = await response.text();
  let json: Answer['json'] = {};
  try {
    json = JSON.parse(text) as Answer['json'];
  } catch {
    // not JSON: the caller asserts on text
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** A good 2026-07-28 call: proves the gateway still serves (and acme's one slot is free). */
async function stillServes(): Promise<void> {
  const answer = await post(
    JSON.stringify({
      jsonrpc: '2.0',
      id: 'alive',
      method: 'tools/call',
      params: { name: 'echo', arguments: { text: 'alive' }, _meta: MODERN_META },
    }),
    { ...MODERN_HEADERS, 'mcp-method': 'tools/call', 'mcp-name': 'echo' },
  );
  assert.equal(answer.status, 200, answer.text);
  assert.equal(answer.json.result?.content?.[0]?.text, 'alive');
}

/** Opens a raw connection to the gateway. */
async function connect(): Promise<Socket> {
  const socket = net.connect(gateway.address.port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  return socket;
}

/** Everything the server sends until it closes the connection (or `deadlineMs` passes: then it throws). */
function untilClosed(socket: Socket, deadlineMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept the connection open for ${deadlineMs} ms; got: ${text.slice(0, 200)}`));
    }, deadlineMs);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', () => undefined); // a reset after the answer is fine
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
  });
}

function rpc(method: string, id: unknown = 1, params: unknown = { _meta: MODERN_META }): string {
  return JSON.stringify({ jsonrpc: '2.0', id, method, params });
}

describe('oversized bodies', () => {
  test('a declared Content-Length over the limit gets 413 and a closed connection before any body is sent', async () => {
    const socket = await connect();
    const closed = untilClosed(socket, 15_000);
    socket.write(
      `POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${2 ** 30}\r\n\r\n`,
    );
    const text = await closed;
    assert.match(text, /^HTTP\/1\.1 413 /);
    assert.match(text, /"code":-32600/);
    assert.match(text, /larger than 1048576 bytes/);
    await stillServes();
  });

  test('a chunked body that grows past the limit gets 413 at once; the server stops reading and closes', async () => {
    const socket = await connect();
    const closed = untilClosed(socket, 30_000);
    socket.write(
      'POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n',
    );
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const frame = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]);
    let offered = 0;
    let open = true;
    void closed.finally(() => (open = false));
    // Up to 256 MiB, as fast as the connection takes it: a server that read it all would buffer or drain it.
    while (open && offered < 256 * 1024 * 1024) {
      offered += frame.length;
      if (!socket.write(frame)) {
        await new Promise<void>((resolve) => {
          socket.once('drain', resolve);
          socket.once('close', resolve);
        });
      }
    }
    const text = await closed;
    assert.match(text, /^HTTP\/1\.1 413 /);
    const serverSide = sockets.find((s) => s.remotePort === socket.localPort);
    assert.ok(serverSide, 'the server-side socket');
    // The body limit, plus what was in flight in the parser and socket buffers when it stopped.
    assert.ok(serverSide.bytesRead < 8 * 1024 * 1024, `the server read ${serverSide.bytesRead} bytes of ${offered}`);
    await stillServes();
  });
});

describe('deeply nested bodies', () => {
  const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);

  test('100,000 nested arrays as the body are refused as a batch, without a stack overflow', async () => {
    const answer = await post(deep(100_000));
    assert.equal(answer.status, 400);
    assert.equal(answer.json.error?.code, -32600);
    await stillServes();
  });

  test('100,000 nested arrays in arguments, in _meta and as the id get JSON-RPC errors on both revisions', async () => {
    const modernCall = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":${deep(30_000)}},"_meta":${JSON.stringify(MODERN_META)}}}`;
    const answers = [
      await post(modernCall, { ...MODERN_HEADERS, 'mcp-method': 'tools/call', 'mcp-name': 'echo' }),
      await post(
        `{"jsonrpc":"2.0","id":${deep(100_000)},"method":"tools/list","params":{"_meta":${JSON.stringify(MODERN_META)}}}`,
        {
          ...MODERN_HEADERS,
          'mcp-method': 'tools/list',
        },
      ),
      await post(
        `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":${deep(100_000)}}}`,
        JSON_HEADERS,
      ),
    ];
    for (const answer of answers) {
      assert.ok([200, 400].includes(answer.status), answer.text.slice(0, 200));
      assert.ok(answer.json.error === undefined || Number.isInteger(answer.json.error.code), answer.text.slice(0, 200));
      assert.doesNotMatch(answer.text, /Maximum call stack|\n\s+at /);
    }
    await stillServes();
  });
});

describe('invalid UTF-8', () => {
  test('in the body: a JSON-RPC answer, not a crash', async () => {
    const body = Buffer.concat([
      Buffer.from('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"'),
      Buffer.from([0xc3, 0x28, 0xff, 0xfe, 0xed, 0xa0, 0x80]),
      Buffer.from(`"},"_meta":${JSON.stringify(MODERN_META)}}}`),
    ]);
    const answer = await post(body, { ...MODERN_HEADERS, 'mcp-method': 'tools/call', 'mcp-name': 'echo' });
    assert.equal(answer.status, 200);
    assert.equal(answer.json.id, 1);
    assert.ok(answer.json.result !== undefined || Number.isInteger(answer.json.error?.code));
    const junk = await post(Buffer.from([0xff, 0xfe, 0x7b, 0x80]));
    assert.equal(junk.status, 400);
    assert.equal(junk.json.error?.code, -32700);
    await stillServes();
  });

  test('in headers (session id, Mcp-Name, protocol version): a JSON-RPC error, not a crash', async () => {
    for (const [name, value] of [
      ['mcp-session-id', '\xff\xfe\xc3\x28'],
      ['mcp-name', 'ec\xc3\x28ho'],
      ['mcp-protocol-version', '2026-07-28\xff'],
    ] as const) {
      const socket = await connect();
      const closed = untilClosed(socket, 15_000);
      const body = rpc('tools/call', 1, { name: 'echo', arguments: { text: 'x' }, _meta: MODERN_META });
      socket.write(
        Buffer.concat([
          Buffer.from(
            `POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-type: application/json\r\n` +
              `accept: application/json, text/event-stream\r\nmcp-protocol-version: ${MODERN}\r\nmcp-method: tools/call\r\n`,
          ),
          Buffer.from(`${name}: ${value}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`, 'latin1'),
        ]),
      );
      const text = await closed;
      assert.match(text, /^HTTP\/1\.1 (200|400|404) /, `${name}: ${text.slice(0, 300)}`);
      assert.match(text, /\r\n\r\n\{"jsonrpc":"2\.0","id":(1|null),"(error|result)"/, `${name}: ${text.slice(0, 300)}`);
    }
    await stillServes();
  });
});

describe('batches', () => {
  test('an empty batch, 30,000 zeros and 200 calls each get one -32600 error, and no call reaches the upstream', async () => {
    const before = upstream.state.calls.get('counter') ?? 0;
    const empty = await post('[]');
    assert.equal(empty.status, 400);
    assert.equal(empty.json.error?.code, -32600);
    const zeros = await post(`[${Array.from({ length: 30_000 }, () => '0').join(',')}]`);
    assert.equal(zeros.status, 400);
    assert.equal(zeros.json.error?.code, -32600);
    const calls = Array.from({ length: 200 }, (_, i) => ({
      jsonrpc: '2.0',
      id: i,
      method: 'tools/call',
      params: { name: 'counter', arguments: {}, _meta: MODERN_META },
    }));
    const batch = await post(JSON.stringify(calls), {
      ...MODERN_HEADERS,
      'mcp-method': 'tools/call',
      'mcp-name': 'counter',
    });
    assert.equal(batch.status, 400);
    assert.equal(batch.json.error?.code, -32600);
    assert.equal(batch.json.id, null);
    assert.match(batch.json.error?.message ?? '', /batch/i);
    assert.equal(upstream.state.calls.get('counter') ?? 0, before);
    await stillServes();
  });
});

describe('header floods', () => {
  test('3,000 headers, or one header of 100 KiB, get 431 and a closed connection', async () => {
    for (const headers of [
      Array.from({ length: 3000 }, (_, i) => `x-flood-${i}: ${'v'.repeat(16)}\r\n`).join(''),
      `x-huge: ${'h'.repeat(100 * 1024)}\r\n`,
    ]) {
      const socket = await connect();
      const closed = untilClosed(socket, 15_000);
      socket.write(`POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\n${headers}content-length: 2\r\n\r\n{}`);
      assert.match(await closed, /^HTTP\/1\.1 431 /);
    }
    await stillServes();
  });
});

describe('slow-loris clients', () => {
  test('a client dribbling its headers is answered 408 and cut off by headers_timeout', async () => {
    const socket = await connect();
    const closed = untilClosed(socket, 20_000);
    const line = `POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${API_KEY}\r\nx-slow: `;
    socket.write(line);
    const dribble = setInterval(() => socket.writable && socket.write('a'), 50);
    try {
      assert.match(await closed, /^HTTP\/1\.1 408 /);
    } finally {
      clearInterval(dribble);
    }
    await stillServes();
  });

  test('a client dribbling its body holds no quota slot meanwhile, and is cut off by request_timeout', async () => {
    const socket = await connect();
    const closed = untilClosed(socket, 20_000);
    const body = rpc('tools/call', 9, { name: 'echo', arguments: { text: 'slow' }, _meta: MODERN_META });
    socket.write(
      `POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\naccept: application/json\r\n` +
        `authorization: Bearer ${API_KEY}\r\nmcp-protocol-version: ${MODERN}\r\nmcp-method: tools/call\r\nmcp-name: echo\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\n\r\n`,
    );
    let sent = 0;
    const dribble = setInterval(() => {
      if (socket.writable && sent < body.length - 1) socket.write(body[sent++]!);
    }, 50);
    try {
      // acme may run one call at a time: the dribbling request must not be holding it.
      await stillServes();
      assert.match(await closed, /^HTTP\/1\.1 408 |^$/);
    } finally {
      clearInterval(dribble);
    }
    await stillServes();
  });
});

describe('wrong content types, unknown methods, GET and DELETE abuse', () => {
  test('a wrong or missing Content-Type gets 415 with a JSON-RPC error', async () => {
    for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', '']) {
      const answer = await post(rpc('ping'), { ...MODERN_HEADERS, 'content-type': contentType });
      assert.equal(answer.status, 415, contentType);
      assert.equal(answer.json.error?.code, -32600);
    }
  });

  test('an unknown method: -32601, with 404 on 2026-07-28 and 200 in a 2025 session', async () => {
    const modern = await post(rpc('no/such/method', 3), { ...MODERN_HEADERS, 'mcp-method': 'no/such/method' });
    assert.equal(modern.status, 404);
    assert.equal(modern.json.error?.code, -32601);
    assert.equal(modern.json.id, 3);
    const init = await request(
      'POST',
      rpc('initialize', 1, {
        protocolVersion: '2025-11-25',
        capabilities: {},
        clientInfo: { name: 'h', version: '1' },
      }),
      JSON_HEADERS,
    );
    const session = init.headers.get('mcp-session-id')!;
    const legacy = await post(rpc('no/such/method', 4, {}), {
      ...JSON_HEADERS,
      'mcp-session-id': session,
      'mcp-protocol-version': '2025-11-25',
    });
    assert.equal(legacy.status, 200);
    assert.equal(legacy.json.error?.code, -32601);
    assert.equal(legacy.json.id, 4);
  });

  test('initialize sent as a notification is refused, and opens no session', async () => {
    const answer = await post(
      JSON.stringify({ jsonrpc: '2.0', method: 'initialize', params: { protocolVersion: '2025-11-25' } }),
      JSON_HEADERS,
    );
    assert.equal(answer.status, 400);
    assert.equal(answer.json.error?.code, -32600);
    assert.equal(answer.json.id, null);
    assert.equal(answer.headers.get('mcp-session-id'), null);
  });

  test('GET and DELETE without or with an unknown session, and other HTTP methods, get JSON-RPC errors', async () => {
    const get = await request('GET', undefined, { accept: 'text/event-stream' });
    assert.equal(get.status, 405);
    assert.equal(get.json.error?.code, -32600);
    const getUnknown = await request('GET', undefined, { accept: 'text/event-stream', 'mcp-session-id': 'nope' });
    assert.equal(getUnknown.status, 404);
    const del = await request('DELETE', undefined, {});
    assert.equal(del.status, 400);
    const delUnknown = await request('DELETE', undefined, { 'mcp-session-id': 'nope' });
    assert.equal(delUnknown.status, 404);
    for (const method of ['PUT', 'PATCH', 'OPTIONS']) {
      const answer = await request(method, method === 'OPTIONS' ? undefined : '{}', {
        'content-type': 'application/json',
      });
      assert.equal(answer.status, 405, method);
      assert.equal(answer.headers.get('allow'), 'GET, POST, DELETE');
      assert.equal(answer.json.error?.code, -32600);
    }
    const head = await fetch(`${gateway.url}/mcp`, { method: 'HEAD' });
    assert.equal(head.status, 405);
    await stillServes();
  });

  test('a malformed upstream name in the path (/mcp/%ZZ) gets 404, and the process lives', async () => {
    for (const path of ['/mcp/%ZZ', '/mcp/%E0%A4%A', '/mcp/%']) {
      const answer = await post(rpc('tools/list'), { ...MODERN_HEADERS, 'mcp-method': 'tools/list' }, path);
      assert.equal(answer.status, 404, path);
      assert.equal(answer.json.error?.code, -32600);
    }
    await stillServes();
  });
});

describe('stdio inbound', () => {
  test('a line nested 100,000 deep, or with an object as its id, gets -32600 with id null; the next line is served', async () => {
    const core = await createGatewayCore({ upstreams: [resolveProxyConfig({ name: 'local', ...stdioFixture() })] });
    const input = new PassThrough();
    const output = new PassThrough();
    const inbound = new StdioInbound(core, { input, output, maxMessageBytes: 4 * 1024 * 1024 });
    try {
      const lines: string[] = [];
      let pending = '';
      output.setEncoding('utf8');
      const answered = new Promise<void>((resolve) => {
        output.on('data', (chunk: string) => {
          pending += chunk;
          const parts = pending.split('\n');
          pending = parts.pop()!;
          lines.push(...parts);
          if (lines.some((l) => l.includes('"id":"after"')) && lines.some((l) => l.includes('"id":"x"'))) resolve();
        });
      });
      const deep = '['.repeat(100_000) + ']'.repeat(100_000);
      input.write(`{"jsonrpc":"2.0","id":${deep},"method":"ping"}\n`);
      input.write(`{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}\n`);
      input.write(`${rpc('server/discover', 'discover')}\n`);
      input.write(
        `{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"echo","arguments":{"text":${deep}}}}\n`,
      );
      input.write(`${rpc('ping', 'after', {})}\n`);
      await answered;
      const parsed = lines.map((l) => JSON.parse(l) as { id: unknown; error?: { code: number } });
      assert.deepEqual(
        parsed.filter((m) => m.id === null).map((m) => m.error?.code),
        [-32600, -32600],
      );
      const x = parsed.find((m) => m.id === 'x');
      assert.ok(x?.error && Number.isInteger(x.error.code), JSON.stringify(x));
    } finally {
      inbound.close();
      await core.close();
    }
  });
});
