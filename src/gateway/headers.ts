/**
 * The standard and custom request headers of the 2026-07-28 Streamable HTTP binding (SEP-2243):
 * `Mcp-Method` and `Mcp-Name` must mirror the body, and a tool whose `inputSchema` marks a
 * property with `x-mcp-header: Name` has that argument mirrored in an `Mcp-Param-Name` header.
 * The gateway checks both on what callers send (so intermediaries can trust the headers), and
 * writes `Mcp-Param-*` on what it sends to a 2026-07-28 HTTP upstream, which checks them in turn.
 * The rules follow the SDK's server ladder and client transport, which do not export them.
 */
import { isObject, RpcError } from './rpc.js';

/** `HeaderMismatch`: headers and body disagree (HTTP 400). */
export const HEADER_MISMATCH = -32020;

/** The body field the `Mcp-Name` header mirrors, per method. */
const MCP_NAME_SOURCE: Readonly<Record<string, string>> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
  'tasks/get': 'taskId',
  'tasks/update': 'taskId',
  'tasks/cancel': 'taskId',
};

const PARAM_PREFIX = 'mcp-param-';
const BASE64_PREFIX = '=?base64?';
const BASE64_SUFFIX = '?=';
const BASE64_CANONICAL = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const CANONICAL_DECIMAL = /^-?\d+(\.\d+)?$/;
/** RFC 9110 `token`: what an `x-mcp-header` name must be. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HEADER_TYPES = new Set(['string', 'integer', 'boolean', 'number']);

/** One `x-mcp-header` declaration: where the argument is, the header's name, the declared type. */
export interface ParamDeclaration {
  readonly path: readonly string[];
  readonly header: string;
  readonly type: string;
}

export interface StandardHeaders {
  protocolVersion: string | undefined;
  method: string | undefined;
  name: string | undefined;
}

function mismatch(header: string, body: string): RpcError {
  return new RpcError(HEADER_MISMATCH, `Bad Request: the request headers and body disagree: ${body}`, {
    mismatch: { header, body },
  });
}

/** RFC 9110 optional whitespace (SP, HTAB) around a field value, removed. */
function stripOws(value: string): string {
  return value.replace(/^[\t ]+|[\t ]+$/g, '');
}

/** A header value, with the Base64 sentinel decoded; `undefined` when the sentinel's payload is invalid. */
export function decodeHeaderValue(value: string): string | undefined {
  if (!(value.startsWith(BASE64_PREFIX) && value.endsWith(BASE64_SUFFIX))) return value;
  const b64 = value.slice(BASE64_PREFIX.length, value.length - BASE64_SUFFIX.length);
  if (!BASE64_CANONICAL.test(b64)) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(b64, 'base64'));
  } catch {
    return undefined;
  }
}

/** A header value for `value`: as is when it is plain visible ASCII, else the Base64 sentinel form. */
export function encodeHeaderValue(value: string): string {
  let plain =
    value.length > 0 && value === value.trim() && !(value.startsWith(BASE64_PREFIX) && value.endsWith(BASE64_SUFFIX));
  for (let i = 0; plain && i < value.length; i++) {
    const c = value.charCodeAt(i);
    plain = c === 9 || (c >= 32 && c <= 126);
  }
  return plain ? value : `${BASE64_PREFIX}${Buffer.from(value, 'utf8').toString('base64')}${BASE64_SUFFIX}`;
}

/**
 * The cross-checks of a 2026-07-28 request's standard headers against its body: the version
 * header present, `Mcp-Method` present (its value already matched by the SDK's inbound ladder),
 * and `Mcp-Name` present and equal to the body's name or URI where the method has one.
 */
export function checkStandardHeaders(
  headers: StandardHeaders,
  method: string,
  params: Record<string, unknown> | undefined,
): RpcError | undefined {
  if (headers.protocolVersion === undefined) {
    return mismatch(
      '(missing)',
      'the body carries a modern per-request envelope but the MCP-Protocol-Version header is absent',
    );
  }
  if (headers.method === undefined) {
    return mismatch('(missing)', `the body names method ${method} but the required Mcp-Method header is absent`);
  }
  const field = Object.hasOwn(MCP_NAME_SOURCE, method) ? MCP_NAME_SOURCE[method] : undefined;
  if (field === undefined) return undefined;
  const raw = params?.[field];
  const bodyValue = typeof raw === 'string' ? raw : undefined;
  if (headers.name === undefined) {
    if (bodyValue === undefined) return undefined;
    return mismatch(
      '(missing)',
      `the body carries params.${field}="${bodyValue}" but the required Mcp-Name header is absent`,
    );
  }
  const header = stripOws(headers.name);
  const decoded = decodeHeaderValue(header);
  if (decoded === undefined) return mismatch(header, 'the Mcp-Name header carries an invalid Base64 sentinel value');
  if (bodyValue !== undefined && decoded !== bodyValue) {
    return mismatch(
      header,
      `the body carries params.${field}="${bodyValue}" but the Mcp-Name header names "${decoded}"`,
    );
  }
  return undefined;
}

/**
 * The `x-mcp-header` declarations of a tool's `inputSchema`, found through chains of `properties`
 * (the only place the binding allows them). Declarations that break the binding's rules (a name
 * that is not a token, a non-primitive type, a name used twice) are left out: such a tool gets no
 * headers, and the upstream judges it.
 */
export function paramDeclarations(inputSchema: unknown): readonly ParamDeclaration[] {
  const out: ParamDeclaration[] = [];
  const seen = new Set<string>();
  const visit = (node: unknown, path: string[], depth: number) => {
    if (!isObject(node) || depth > 32) return;
    const header = node['x-mcp-header'];
    const type = node['type'];
    if (path.length > 0 && typeof header === 'string' && TOKEN.test(header) && typeof type === 'string') {
      if (HEADER_TYPES.has(type) && !seen.has(header.toLowerCase())) {
        seen.add(header.toLowerCase());
        out.push({ path, header, type });
      }
    }
    const properties = node['properties'];
    if (isObject(properties)) for (const key in properties) visit(properties[key], [...path, key], depth + 1);
  };
  visit(inputSchema, [], 0);
  return out;
}

function argumentAt(args: unknown, path: readonly string[]): unknown {
  let node = args;
  for (const key of path) {
    if (!isObject(node)) return undefined;
    node = node[key];
  }
  return node;
}

/** A primitive argument as its header text; `undefined` for anything that gets no header. */
function primitiveText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number' && Number.isFinite(value) && (!Number.isInteger(value) || Number.isSafeInteger(value)))
    return String(value);
  return undefined;
}

/**
 * Checks a `tools/call`'s `Mcp-Param-*` headers against its arguments: each declared argument
 * present in the body must have its header, decoding to the same value (numerically for numbers).
 * `header(name)` reads a request header by its lower-case name.
 */
export function checkParamHeaders(
  declarations: readonly ParamDeclaration[],
  args: unknown,
  header: (name: string) => string | undefined,
): RpcError | undefined {
  for (const declaration of declarations) {
    const name = `Mcp-Param-${declaration.header}`;
    const raw = argumentAt(args, declaration.path);
    if (raw === undefined || raw === null) continue;
    const text = primitiveText(raw);
    if (text === undefined) continue;
    const where = declaration.path.join('.');
    const value = header(PARAM_PREFIX + declaration.header.toLowerCase());
    if (value === undefined) {
      return mismatch(name, `the body carries ${where}=${JSON.stringify(raw)} but the ${name} header is absent`);
    }
    const decoded = decodeHeaderValue(stripOws(value));
    if (decoded === undefined) return mismatch(name, `the ${name} header carries an invalid Base64 sentinel value`);
    const numeric = declaration.type === 'integer' || declaration.type === 'number';
    const equal =
      numeric && typeof raw === 'number' && CANONICAL_DECIMAL.test(decoded)
        ? Number(decoded) === raw
        : decoded === text;
    if (!equal) {
      return mismatch(
        name,
        `the ${name} header decodes to ${JSON.stringify(decoded)} but the body carries ${where}=${JSON.stringify(raw)}`,
      );
    }
  }
  return undefined;
}

/** The `Mcp-Param-*` headers of a `tools/call` with these arguments. */
export function paramHeaders(declarations: readonly ParamDeclaration[], args: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const declaration of declarations) {
    const text = primitiveText(argumentAt(args, declaration.path));
    if (text !== undefined) out[`Mcp-Param-${declaration.header}`] = encodeHeaderValue(text);
  }
  return out;
}
