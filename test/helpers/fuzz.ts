/**
 * Shared pieces of the property-based fuzz tests (fast-check): how many cases to run, near-valid
 * JSON-RPC text, and the check that an answer is a well-formed JSON-RPC response.
 *
 * Every target runs {@link FUZZ_CASES} cases (100,000 unless `MCP_RELAY_FUZZ_CASES` says otherwise);
 * `MCP_RELAY_FUZZ_SEED` replays the seed a failure printed.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';

export const FUZZ_CASES = Number(process.env['MCP_RELAY_FUZZ_CASES'] ?? 100_000);

/** fast-check parameters for a property that runs `cases` times. */
export function fuzzParameters<T>(cases: number): fc.Parameters<T> {
  const seed = process.env['MCP_RELAY_FUZZ_SEED'];
  return { numRuns: cases, includeErrorInReport: true, ...(seed === undefined ? {} : { seed: Number(seed) }) };
}

export const MODERN = '2026-07-28';
export const META_KEYS = {
  protocolVersion: 'io.modelcontextprotocol/protocolVersion',
  clientInfo: 'io.modelcontextprotocol/clientInfo',
  clientCapabilities: 'io.modelcontextprotocol/clientCapabilities',
  logLevel: 'io.modelcontextprotocol/logLevel',
} as const;

/** The 2026-07-28 envelope a well-behaved client puts in `params._meta`. */
export const MODERN_META = {
  [META_KEYS.protocolVersion]: MODERN,
  [META_KEYS.clientInfo]: { name: 'fuzz', version: '1' },
  [META_KEYS.clientCapabilities]: {},
};

/**
 * Methods a fuzzed message may name: every request and notification the gateway knows, minus the
 * ones that open a stream which never ends (`subscriptions/listen`), plus unknown ones.
 */
export const METHODS = [
  'initialize',
  'ping',
  'server/discover',
  'tools/list',
  'tools/call',
  'resources/list',
  'resources/read',
  'resources/templates/list',
  'resources/subscribe',
  'resources/unsubscribe',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'logging/setLevel',
  'notifications/initialized',
  'notifications/cancelled',
  'notifications/progress',
  'notifications/roots/list_changed',
  'no/such/method',
  'rpc.discover',
  '',
];

/**
 * Tools of the demo upstream that answer at once; `slow`, `crash`, `ask` and `sample` (which wait
 * for time, die, or wait for the client) are left out, as are tools that change the upstream.
 */
export const TOOL_NAMES = ['echo', 'add', 'counter_value', 'fail', 'nope', 'local__echo', ''];
export const URIS = ['demo://static/readme', 'demo://items/7', 'demo://nope', 'file:///etc/passwd', ''];
export const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'];

/** JSON text of an object from its entries, so that `__proto__` and duplicate keys survive. */
export function objectText(entries: readonly (readonly [string, string])[]): string {
  return `{${entries.map(([key, value]) => `${JSON.stringify(key)}:${value}`).join(',')}}`;
}

/** Numbers as text, including those JSON.stringify never writes: huge, tiny, negative zero, long. */
const numberText = fc.oneof(
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)),
  fc.constantFrom('1e400', '-1e400', '-0', '9007199254740993', '-9007199254740993', '1.5', '0.0000001e-400', '1E2'),
);

/** Strings as JSON text: any code points (lone surrogates escaped), control characters, long ones. */
const stringText = fc
  .oneof(
    fc.string({ maxLength: 12 }),
    fc.string({ unit: 'binary', maxLength: 12 }),
    fc.constantFrom('\u0000', '\u2028\u2029', '\uFEFF', '\uD800', 'é', '😀', 'x'.repeat(300), ...PROTO_KEYS),
  )
  .map((s) => JSON.stringify(s));

const keyText = fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom(...PROTO_KEYS, '_meta', 'name', 'arguments'));

/** Any JSON value as text, nested a few levels, with proto-pollution keys among the object keys. */
export const jsonText: fc.Arbitrary<string> = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom('null', 'true', 'false'),
    numberText,
    stringText,
    fc.array(tie('value'), { maxLength: 4 }).map((items) => `[${items.join(',')}]`),
    fc.array(fc.tuple(keyText, tie('value')), { maxLength: 4 }).map(objectText),
  ),
})).value;

/** Sometimes the value, mostly nothing: one case in `odds`. */
export function rarely<T>(arbitrary: fc.Arbitrary<T>, odds: number): fc.Arbitrary<T | undefined> {
  return fc.oneof({ weight: odds - 1, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary });
}

/** A JSON value of the wrong kind for most fields, without the cost of nesting. */
const wrongText = fc.oneof(
  fc.constantFrom('null', 'true', 'false', '[]', '{}', '[1]', '{"a":null}'),
  numberText,
  stringText,
);

/** What may stand for a field of a message: a well-typed value, a wrong one, or nothing. */
function field(good: fc.Arbitrary<string>): fc.Arbitrary<string | undefined> {
  return fc.oneof(
    { weight: 6, arbitrary: good },
    { weight: 2, arbitrary: wrongText },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
}

const metaText = fc
  .record({
    version: field(fc.constantFrom(MODERN, '2025-11-25', '2025-06-18', '2099-01-01').map((v) => JSON.stringify(v))),
    info: field(fc.constant(JSON.stringify(MODERN_META[META_KEYS.clientInfo]))),
    capabilities: field(fc.constantFrom('{}', '{"sampling":{}}', '{"elicitation":{}}')),
    progressToken: rarely(fc.oneof(numberText, stringText), 5),
    logLevel: rarely(fc.constantFrom('"debug"', '"error"', '"loud"', '7'), 5),
    extra: fc.array(fc.tuple(keyText, jsonText), { maxLength: 2 }),
  })
  .map(({ version, info, capabilities, progressToken, logLevel, extra }) =>
    objectText([
      ...(version === undefined ? [] : [[META_KEYS.protocolVersion, version] as const]),
      ...(info === undefined ? [] : [[META_KEYS.clientInfo, info] as const]),
      ...(capabilities === undefined ? [] : [[META_KEYS.clientCapabilities, capabilities] as const]),
      ...(progressToken === undefined ? [] : [['progressToken', progressToken] as const]),
      ...(logLevel === undefined ? [] : [[META_KEYS.logLevel, logLevel] as const]),
      ...extra,
    ]),
  );

/** `params` of a near-valid request: the fields methods read, each of the right type or not. */
const paramsText = fc
  .record({
    name: field(fc.constantFrom(...TOOL_NAMES, 'greet').map((n) => JSON.stringify(n))),
    uri: field(fc.constantFrom(...URIS).map((u) => JSON.stringify(u))),
    arguments: field(
      fc.oneof(
        fc.constantFrom('{"text":"hi"}', '{"a":1,"b":2}', '{"name":"Ada"}', '{}'),
        fc.array(fc.tuple(keyText, jsonText), { maxLength: 3 }).map(objectText),
      ),
    ),
    cursor: field(stringText),
    meta: field(metaText),
    protocolVersion: field(fc.constantFrom('"2025-06-18"', '"2025-11-25"', '"1999-01-01"')),
    requestId: field(numberText),
    level: field(fc.constantFrom('"debug"', '"nope"')),
    proto: fc.array(fc.tuple(fc.constantFrom(...PROTO_KEYS), jsonText), { maxLength: 2 }),
  })
  .map(({ meta, proto, ...rest }) =>
    objectText([
      ...Object.entries(rest).filter((e): e is [string, string] => e[1] !== undefined),
      ...(meta === undefined ? [] : [['_meta', meta] as const]),
      ...proto,
    ]),
  );

/** A request id as text: the valid kinds (string, integer) most often, then every wrong one. */
export const idText = fc.oneof(
  { weight: 4, arbitrary: fc.integer().map(String) },
  { weight: 3, arbitrary: fc.string({ maxLength: 10 }).map((s) => JSON.stringify(s)) },
  { weight: 2, arbitrary: numberText },
  { weight: 1, arbitrary: fc.constantFrom('null', 'true', '{}', '[]', '[1]', '{"__proto__":1}') },
);

export interface NearValidMessage {
  text: string;
  /** The method as written, when it is a string. */
  method: string | undefined;
  /** `params.name`, when it is a string: what a `Mcp-Name` header would carry. */
  name: string | undefined;
}

/** A JSON-RPC message that is valid or almost: each field right, wrong-typed, odd or missing. */
export const nearValidMessage: fc.Arbitrary<NearValidMessage> = fc
  .record({
    jsonrpc: fc.oneof(
      { weight: 8, arbitrary: fc.constant('"2.0"') },
      { weight: 1, arbitrary: fc.constantFrom('"1.0"', '2', 'null', '"2.0 "') },
      { weight: 1, arbitrary: fc.constant(undefined) },
    ),
    id: fc.oneof({ weight: 5, arbitrary: idText }, { weight: 1, arbitrary: fc.constant(undefined) }),
    method: fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom(...METHODS) },
      { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
      { weight: 1, arbitrary: fc.constant(undefined) },
    ),
    methodText: rarely(fc.constantFrom('1', 'null', '["ping"]', '{"x":1}'), 10),
    params: fc.oneof(
      { weight: 8, arbitrary: paramsText },
      { weight: 1, arbitrary: fc.constantFrom('null', '[]', '"x"', '1', '[{"name":"echo"}]') },
      { weight: 1, arbitrary: fc.constant(undefined) },
    ),
    extra: fc.oneof(
      { weight: 3, arbitrary: fc.constant([]) },
      {
        weight: 1,
        arbitrary: fc.array(fc.tuple(fc.constantFrom(...PROTO_KEYS, 'result', 'error', 'id', 'method'), jsonText), {
          maxLength: 2,
        }),
      },
    ),
  })
  .map(({ jsonrpc, id, method, methodText, params, extra }) => {
    const entries: [string, string][] = [];
    if (jsonrpc !== undefined) entries.push(['jsonrpc', jsonrpc]);
    if (id !== undefined) entries.push(['id', id]);
    if (methodText !== undefined) entries.push(['method', methodText]);
    else if (method !== undefined) entries.push(['method', JSON.stringify(method)]);
    if (params !== undefined) entries.push(['params', params]);
    entries.push(...extra);
    const parsedParams = params === undefined ? undefined : (JSON.parse(params) as unknown);
    const name =
      typeof parsedParams === 'object' && parsedParams !== null && !Array.isArray(parsedParams)
        ? (parsedParams as Record<string, unknown>)['name']
        : undefined;
    return {
      text: objectText(entries),
      method: methodText === undefined ? method : undefined,
      name: typeof name === 'string' ? name : undefined,
    };
  });

/** A line or body that is not JSON, or not a JSON-RPC message at all. */
export const junkText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  jsonText,
  fc.constantFrom('', ' ', '{', '}', '[]', '[{"jsonrpc":"2.0","id":1,"method":"ping"}]', '{"jsonrpc":"2.0",}', 'null'),
);

/** The id a JSON-RPC request carries, when it has a valid one (string or number); otherwise undefined. */
export function requestId(message: unknown): string | number | undefined {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return undefined;
  const id = (message as Record<string, unknown>)['id'];
  return typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id)) ? id : undefined;
}

/** Text that must never reach a client: stack frames, this checkout's paths, internal module names. */
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const LEAK_RE = new RegExp(`\\n\\s+at |\\bat [\\w.<>]+ \\(|node:internal|${escapeRegExp(REPO_ROOT)}`);

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Context for a failure message, built only when something fails. */
export type Context = () => string;

/**
 * Asserts that `message` is one well-formed JSON-RPC response: version 2.0, an id that is the
 * request's or null, and either a result or an error with an integer code and a message.
 */
export function assertRpcResponse(message: unknown, expectedId: string | number | undefined, context: Context): void {
  const problem = rpcResponseProblem(message, expectedId);
  if (problem !== undefined) assert.fail(`${context()}\n: ${problem}`);
}

function rpcResponseProblem(message: unknown, expectedId: string | number | undefined): string | undefined {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return 'not an object';
  const response = message as Record<string, unknown>;
  if (response['jsonrpc'] !== '2.0') return 'jsonrpc is not "2.0"';
  if (!('id' in response)) return 'no id';
  const id = response['id'];
  if (id !== null && (expectedId === undefined || id !== expectedId)) {
    return `id ${JSON.stringify(id)}, expected ${JSON.stringify(expectedId ?? null)} or null`;
  }
  if ('result' in response === 'error' in response) return 'not exactly one of result and error';
  if (!('error' in response)) return undefined;
  const error = response['error'];
  if (typeof error !== 'object' || error === null) return 'error is not an object';
  const { code, message: text } = error as Record<string, unknown>;
  if (!Number.isInteger(code)) return `error code ${JSON.stringify(code)}`;
  if (typeof text !== 'string' || text === '') return 'error without a message';
  return undefined;
}

/** Asserts that an answer's text leaks no stack trace, source path or secret. */
export function assertNoLeak(text: string, secrets: readonly string[], context: Context): void {
  if (LEAK_RE.test(text)) assert.fail(`${context()}\n: leaks internals: ${text.slice(0, 500)}`);
  for (const secret of secrets) if (text.includes(secret)) assert.fail(`${context()}\n: leaks a secret`);
}
