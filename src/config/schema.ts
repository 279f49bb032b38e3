/**
 * The configuration schema: the one place that states every field's type, range, default, unit and
 * description. The library's `ProxyConfig` (camelCase), the file format (snake_case, YAML or JSON),
 * the JSON Schema editors use and `docs/config.md` are all derived from the shapes below.
 *
 * Defaults come from the seed's `MCPProxyConfig` examples (it never states them in one place):
 * `connection_pool_size=10` is its "small pool" and development value, `timeout=30.0`,
 * `max_retries=3` and `retry_delay=1.0` its production base config, `cache_size=100` its
 * development and benchmark value, `cache_ttl=300` the 5-minute TTL it recommends, and
 * `enable_caching=True` throughout.
 */
import { basename, isAbsolute, resolve as resolvePath } from 'node:path';

import * as z from 'zod';
import { serverSectionSchema, type ResolvedServerConfig } from './server.js';
import { authSectionSchema, type ResolvedAuthConfig } from './auth.js';
import { tenantsSectionSchema, type ResolvedTenantsConfig } from './tenants.js';
import { balanceSectionSchema, type ResolvedBalanceConfig } from './balance.js';
import {
  DEFAULT_CACHE_REDIS_PREFIX,
  redisConnectionSchema,
  redisSectionSchema,
  resolveRedisSection,
  type ResolvedRedisConfig,
} from './redis.js';
import {
  alertsSectionSchema,
  telemetrySectionSchema,
  type ResolvedAlertsConfig,
  type ResolvedTelemetryConfig,
} from './telemetry.js';

import { duration, MAX_TIMER_MS } from './duration.js';

// ---------------------------------------------------------------------------------------------
// Field metadata

/** Where a field applies: only to HTTP upstreams, only to stdio upstreams, or to both. */
export type FieldTransport = 'http' | 'stdio';

/**
 * What `.meta()` carries on every field. `description` and `default` also go into the JSON
 * Schema; `unit` and `transport` are for `docs/config.md` only and are stripped from it.
 */
export interface FieldMeta {
  description: string;
  /** The default as a user would write it in a file (durations in seconds). */
  default?: unknown;
  /** Unit of the value, for the docs table. */
  unit?: string;
  /** Set when the field applies to one transport only. */
  transport?: FieldTransport;
}

/** Meta keys that are not JSON Schema keywords; removed by {@link relayConfigJsonSchema}. */
export const DOC_ONLY_META_KEYS = ['unit', 'transport'] as const;

/** Every field is optional in the schema; defaults are applied in {@link resolveUpstream}, after `defaults:`. */
function field<T extends z.ZodType>(schema: T, meta: FieldMeta) {
  const only = meta.transport === 'http' ? 'HTTP only. ' : meta.transport === 'stdio' ? 'stdio only. ' : '';
  return schema.optional().meta({ ...meta, description: `${only}${meta.description}` });
}

function intField(min: number, max: number = Number.MAX_SAFE_INTEGER) {
  const expected =
    max === Number.MAX_SAFE_INTEGER
      ? `expected an integer of at least ${min}`
      : `expected an integer from ${min} to ${max}`;
  return z.int({ error: expected }).min(min, { error: expected }).max(max, { error: expected });
}

// ---------------------------------------------------------------------------------------------
// Value schemas

/** An upstream's name: used in logs, metrics, `/mcp/<name>` routes and `name__tool` namespacing. */
export const UPSTREAM_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,48}$/;
const NAME_EXPECTATION = "expected an upstream name of 1 to 48 letters, digits, '_', '.' or '-'";
export const upstreamNameSchema = z
  .string({ error: NAME_EXPECTATION })
  .regex(UPSTREAM_NAME_PATTERN, { error: NAME_EXPECTATION });

const URL_EXPECTATION = 'expected an http:// or https:// URL';
const httpUrlSchema = z
  .string({ error: URL_EXPECTATION })
  .refine(
    (value) => {
      if (!URL.canParse(value)) return false;
      const { protocol } = new URL(value);
      return protocol === 'http:' || protocol === 'https:';
    },
    { error: URL_EXPECTATION },
  )
  .meta({ format: 'uri', pattern: '^[Hh][Tt][Tt][Pp][Ss]?://' });

function nonEmptyString(what: string) {
  const expected = `expected ${what}`;
  return z.string({ error: expected }).min(1, { error: expected });
}

// RFC 9110 §5.6.2: field names are tokens.
const HTTP_TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/**
 * Headers the relay itself manages on each upstream connection: hop-by-hop framing that undici
 * owns, and the MCP session and version headers that protocol negotiation sets. A configured value
 * would break the connection rather than customise it.
 */
export const RESERVED_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'content-length',
  'expect',
  'keep-alive',
  'mcp-protocol-version',
  'mcp-session-id',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);
const HEADER_NAME_EXPECTATION = "expected a header name that is an HTTP token (letters, digits and !#$%&'*+-.^_`|~)";
const headerNameSchema = z
  .string()
  .regex(HTTP_TOKEN_RE, { error: HEADER_NAME_EXPECTATION })
  .refine((name) => !RESERVED_HEADERS.has(name.toLowerCase()), {
    error: (issue) => `expected a header the relay does not manage itself (not ${String(issue.input)})`,
  });

/**
 * User map values: strings, or numbers and booleans that YAML reads unquoted (`PORT: 3000`),
 * which become their string form exactly as a shell would see them.
 */
function mapValueSchema(expected: string, valid: RegExp) {
  return z
    .union([z.string(), z.number(), z.boolean()], { error: `expected ${expected}` })
    .transform((value) => String(value))
    .refine((value) => valid.test(value), { error: `expected ${expected} without CR, LF or NUL` });
}

const headerValueSchema = mapValueSchema('a header value (string)', /^[^\r\n\0]*$/);
const envNameSchema = z
  .string()
  .regex(/^[^=\0]+$/, { error: "expected an environment variable name without '=' or NUL" });
const envValueSchema = mapValueSchema('an environment value (string)', /^[^\0]*$/);

/** How the relay speaks to an upstream. */
export const UPSTREAM_PROTOCOLS = ['auto', 'modern', 'legacy'] as const;
export type UpstreamProtocol = (typeof UPSTREAM_PROTOCOLS)[number];

// ---------------------------------------------------------------------------------------------
// Defaults

const NO_ARGS: readonly string[] = Object.freeze([]);
const NO_ENTRIES: Readonly<Record<string, string>> = Object.freeze({});
const AUTO: UpstreamProtocol = 'auto';

/**
 * Every upstream default, written the way a user would (durations in seconds). The JSON Schema,
 * the docs and {@link resolveUpstream} all read them from here.
 */
export const UPSTREAM_DEFAULTS = Object.freeze({
  args: NO_ARGS,
  env: NO_ENTRIES,
  headers: NO_ENTRIES,
  processes: 1,
  connectionPoolSize: 10,
  timeout: 30,
  maxRetries: 3,
  retryDelay: 1,
  cacheSize: 100,
  cacheTtl: 300,
  enableCaching: true,
  protocol: AUTO,
  maxResponseBytes: 64 * 1024 * 1024,
  cacheMaxBytes: 64 * 1024 * 1024,
  staleTtl: 0,
  trustAnnotations: false,
});

/**
 * The seed's TTLs per cache category, in seconds (tools 5 min, resources 5 min, prompts 10 min,
 * metadata 15 min). They apply when neither `cache.ttl.<category>` nor `cache_ttl` is set.
 */
export const CACHE_CATEGORY_TTL_DEFAULTS = Object.freeze({ tools: 300, resources: 300, prompts: 600, metadata: 900 });

/** The cache categories: `tools/call`, `resources/read`, `prompts/get`, and the four list methods. */
export const CACHE_CATEGORIES = ['tools', 'resources', 'prompts', 'metadata'] as const;
export type CacheCategoryName = (typeof CACHE_CATEGORIES)[number];

const TOOL_RULE_EXPECTATION = 'expected a tool name or glob (non-empty string), or { name, ttl }';
const cacheToolRuleSchema = z.union(
  [
    z.string().min(1),
    z.strictObject({
      name: nonEmptyString('a tool name or glob (non-empty string)').meta({
        description: 'A tool name, or a glob: * matches any run of characters, ? one character.',
      }),
      ttl: field(duration(), {
        description: "How long this tool's results stay fresh. Default: cache.ttl.tools.",
        unit: 's, or ms/s/m/h',
      }),
    }),
  ],
  { error: TOOL_RULE_EXPECTATION },
);

/**
 * The nested `cache` section. Its keys are single words, so the file and TypeScript spell them
 * the same.
 */
export const cacheSectionShape = {
  tools: field(
    z.union([z.literal('*'), z.array(cacheToolRuleSchema, { error: 'expected "*" or a list of tool rules' })], {
      error: 'expected "*" or a list of tool names, globs or { name, ttl }',
    }),
    {
      description:
        'Tools whose results may be cached: a list of names or globs (* any run of characters, ? one), each optionally { name, ttl }. "*" caches every tool, as the seed did, and warns naming the tools not annotated read-only. Other tools are never answered from cache, unless trust_annotations is on and the upstream marks them readOnlyHint.',
      default: [],
    },
  ),
  ttl: field(
    z.strictObject(
      {
        tools: field(duration(), { description: 'tools/call results.', unit: 's, or ms/s/m/h' }),
        resources: field(duration(), { description: 'resources/read results.', unit: 's, or ms/s/m/h' }),
        prompts: field(duration(), { description: 'prompts/get results.', unit: 's, or ms/s/m/h' }),
        metadata: field(duration(), {
          description: 'tools/list, resources/list, resources/templates/list and prompts/list.',
          unit: 's, or ms/s/m/h',
        }),
      },
      { error: 'expected a map of category (tools, resources, prompts, metadata) to duration' },
    ),
    {
      description:
        "TTL per category, overriding cache_ttl: tools (tools/call), resources (resources/read), prompts (prompts/get), metadata (the four lists). Defaults: cache_ttl when set, else the seed's 300, 300, 600 and 900 s. A server's ttlMs hint can only shorten them.",
    },
  ),
  redis: field(redisConnectionSchema(DEFAULT_CACHE_REDIS_PREFIX, 'the cache'), {
    description:
      'The shared second tier: reads go memory → Redis → upstream, writes go through with the TTL, invalidations reach every process over Redis pub/sub. One server (url) or a Redis Cluster (cluster). Entries the server marks private never leave the process. When Redis is unreachable calls go on with memory alone, one warning is logged, and it reconnects with backoff.',
  }),
};

const cacheSectionSchema = z.strictObject(cacheSectionShape, {
  error: 'expected a map of cache settings (tools, ttl, redis)',
});

// ---------------------------------------------------------------------------------------------
// The upstream shape (camelCase: the library's spelling)

/**
 * One upstream MCP server: the seed's `MCPProxyConfig`, plus stdio. Exactly one of `serverUrl`
 * (Streamable HTTP) or `command` (stdio) selects the transport.
 */
export const upstreamShape = {
  /**
   * Name in logs, metrics and routes; 1-48 of `A-Z a-z 0-9 _ . -`. Derived when absent: the URL's
   * `host:port`, or the command's basename.
   */
  name: field(upstreamNameSchema, {
    description:
      "The upstream's name in logs, metrics and routes: 1 to 48 letters, digits, '_', '.' or '-'. In a file the map key is the name; in TypeScript it is derived when absent (the URL's host:port, or the command's basename).",
  }),
  /** URL of a Streamable HTTP MCP endpoint (http or https). Exactly one of `serverUrl` or `command`. */
  serverUrl: field(httpUrlSchema, {
    description:
      'URL of the Streamable HTTP endpoint of an MCP server (http:// or https://). Exactly one of server_url or command.',
    transport: 'http',
  }),
  /** Program to start as a stdio MCP server (looked up on PATH). Exactly one of `serverUrl` or `command`. */
  command: field(nonEmptyString('a command to run (non-empty string)'), {
    description:
      'Program that runs an MCP server over stdio, looked up on PATH (no shell). Exactly one of server_url or command.',
    transport: 'stdio',
  }),
  /** Arguments for `command`. Default `[]`. */
  args: field(z.array(z.string({ error: 'expected a string argument' }), { error: 'expected a list of strings' }), {
    description: 'Arguments passed to command, as given (no shell splitting or globbing).',
    default: UPSTREAM_DEFAULTS.args,
    transport: 'stdio',
  }),
  /**
   * Environment for the child process, merged over a minimal inherited environment
   * ({@link INHERITED_ENV_VARS}) — not the relay's whole environment, so the relay's own secrets do
   * not leak into every server. Default `{}`.
   */
  env: field(z.record(envNameSchema, envValueSchema, { error: 'expected a map of variable name to value' }), {
    description:
      "Environment variables for the child process, merged over a minimal inherited environment (PATH, HOME, USER, LOGNAME, SHELL, TERM, TMPDIR, LANG and their Windows equivalents) rather than the relay's whole environment, so the relay's own secrets do not leak into every server. Keys are kept exactly as written.",
    default: UPSTREAM_DEFAULTS.env,
    transport: 'stdio',
  }),
  /** Working directory of the child process. In a file, relative to the file's directory. */
  cwd: field(nonEmptyString('a directory path (non-empty string)'), {
    description:
      "Working directory of the child process. In a config file a relative path is resolved against the file's directory. Default: the relay's working directory.",
    transport: 'stdio',
  }),
  /** stdio only: how many child processes share the load. 1-64, default 1. */
  processes: field(intField(1, 64), {
    description:
      'How many child processes of command share the load (an error on an HTTP upstream). Requests are spread over them and responses never cross between callers.',
    default: UPSTREAM_DEFAULTS.processes,
    unit: 'processes',
    transport: 'stdio',
  }),
  /**
   * HTTP: undici connections kept to the server; stdio: most concurrent in-flight requests across
   * the processes. 1-10000, default 10.
   */
  connectionPoolSize: field(intField(1, 10_000), {
    description:
      'HTTP: connections kept open to the server (an undici Pool). stdio: the most requests in flight at once across all processes. Callers beyond it wait in a bounded queue.',
    default: UPSTREAM_DEFAULTS.connectionPoolSize,
    unit: 'connections / requests',
  }),
  /** Deadline of one call: seconds, or `'250ms'`/`'5m'`. Default 30 s. */
  timeout: field(duration({ minMs: 1, maxMs: MAX_TIMER_MS }), {
    description:
      'Deadline of one call to this upstream, reset by progress notifications. Seconds as a number, or a string with a unit.',
    default: UPSTREAM_DEFAULTS.timeout,
    unit: 's, or ms/s/m/h',
  }),
  /** Retries after a failure that surely did not run (or of a read-only tool). 0-10, default 3. */
  maxRetries: field(intField(0, 10), {
    description:
      'Retries after a failed call, only where the request surely did not run or the tool is read-only or idempotent.',
    default: UPSTREAM_DEFAULTS.maxRetries,
    unit: 'retries',
  }),
  /** Base of the exponential backoff between retries (full jitter). Default 1 s. */
  retryDelay: field(duration({ maxMs: MAX_TIMER_MS }), {
    description: 'Base delay of the exponential backoff (with full jitter) between retries.',
    default: UPSTREAM_DEFAULTS.retryDelay,
    unit: 's, or ms/s/m/h',
  }),
  /** Most cached responses kept for this upstream. Default 100. */
  cacheSize: field(intField(0), {
    description: 'Most cached responses kept for this upstream; 0 keeps none.',
    default: UPSTREAM_DEFAULTS.cacheSize,
    unit: 'entries',
  }),
  /** How long a cached response stays fresh, unless the server's `ttlMs` hint is shorter. Default 300 s. */
  cacheTtl: field(duration(), {
    description:
      "How long a cached response stays fresh, for every category that cache.ttl does not set. When unset, the seed's per-category TTLs apply (tools 300 s, resources 300 s, prompts 600 s, metadata 900 s). A server's ttlMs hint can only shorten it.",
    default: UPSTREAM_DEFAULTS.cacheTtl,
    unit: 's, or ms/s/m/h',
  }),
  /** Whether responses from this upstream are cached at all. Default true. */
  enableCaching: field(z.boolean({ error: 'expected true or false' }), {
    description:
      'Whether responses from this upstream are cached at all (lists, resource reads, prompts, and tool calls known to be safe).',
    default: UPSTREAM_DEFAULTS.enableCaching,
  }),
  /** Most bytes of cached responses kept in memory (estimated JSON size). Default 64 MiB. */
  cacheMaxBytes: field(intField(0), {
    description:
      'Most bytes of cached responses kept in memory, by their JSON size; the least recently used entries go first. 0 keeps none.',
    default: UPSTREAM_DEFAULTS.cacheMaxBytes,
    unit: 'bytes',
  }),
  /** Serve an expired entry this much longer while one background call refreshes it. Default 0 (off). */
  staleTtl: field(duration(), {
    description:
      "Stale-while-revalidate: for this long after an entry expires it is still served while one background call refreshes it. 0 turns it off. Never applies past a server's ttlMs hint.",
    default: UPSTREAM_DEFAULTS.staleTtl,
    unit: 's, or ms/s/m/h',
  }),
  /** Cache the tools this upstream annotates `readOnlyHint: true`. Default false. */
  trustAnnotations: field(z.boolean({ error: 'expected true or false' }), {
    description:
      "Trust this upstream's tool annotations: its tools marked readOnlyHint: true are cached like those listed in cache.tools. Only for servers you trust to say so truthfully.",
    default: UPSTREAM_DEFAULTS.trustAnnotations,
  }),
  /** Tool rules, TTLs per category and the Redis tier. */
  cache: field(cacheSectionSchema, {
    description:
      'Cache settings: tools (which tool calls may be cached: names, globs, { name, ttl }, or "*"), ttl (per category: tools, resources, prompts, metadata), redis ({ url or cluster, prefix, timeout }: the shared tier). Set it under defaults to apply it to every upstream; an upstream\'s own keys win.',
  }),
  /** Extra HTTP headers on every request (HTTP only). Names are kept exactly as written. */
  headers: field(z.record(headerNameSchema, headerValueSchema, { error: 'expected a map of header name to value' }), {
    description:
      'Extra HTTP headers sent with every request, e.g. X-Tenant-ID. Names must be HTTP tokens and are kept exactly as written.',
    default: UPSTREAM_DEFAULTS.headers,
    transport: 'http',
  }),
  /** Sent as `Authorization: Bearer <token>` (HTTP only). */
  authToken: field(nonEmptyString('a token (non-empty string)'), {
    description:
      'Sent as `Authorization: Bearer <token>` on every request. Use ${ENV_VAR} rather than writing the secret into the file.',
    transport: 'http',
  }),
  /** Send the gateway caller's own bearer token upstream instead of `authToken` (HTTP only). Default false. */
  forwardAuth: field(z.boolean({ error: 'expected true or false' }), {
    description:
      "Gateway only: send each caller's own bearer token upstream as Authorization, in place of auth_token, for servers that authorize callers themselves. Off by default: a caller's credentials never leave the gateway otherwise. Cached answers of this upstream are then kept per caller.",
    default: false,
    transport: 'http',
  }),
  /** `'auto'` (default), `'modern'` (2026-07-28) or `'legacy'` (2025-11-25 / 2025-06-18, sessionful). */
  protocol: field(
    z.enum(UPSTREAM_PROTOCOLS, { error: `expected one of ${UPSTREAM_PROTOCOLS.map((p) => `"${p}"`).join(', ')}` }),
    {
      description:
        'MCP revision spoken to the server: "modern" is 2026-07-28 (stateless), "legacy" the sessionful 2025-11-25 / 2025-06-18, "auto" negotiates.',
      default: UPSTREAM_DEFAULTS.protocol,
    },
  ),
  /** Largest response accepted from the server. Default 64 MiB. */
  maxResponseBytes: field(intField(1), {
    description:
      'Largest response accepted from the server; a larger one fails the call with RELAY_RESPONSE_TOO_LARGE.',
    default: UPSTREAM_DEFAULTS.maxResponseBytes,
    unit: 'bytes',
  }),
  /** Tenant this upstream serves (the seed's `X-Tenant-ID`); its own cache partition. */
  tenant: field(nonEmptyString('a tenant id (non-empty string)'), {
    description:
      "Tenant this upstream serves (the seed's X-Tenant-ID partition): its responses are cached in that tenant's partition.",
  }),
  /** The most one call may take in total, however often progress resets its deadline, retries included. */
  maxTotalTimeout: field(duration({ minMs: 1, maxMs: MAX_TIMER_MS }), {
    description:
      'The most one call may take in total: progress notifications reset the timeout only up to this, and retries must fit in it. Default: no cap beyond timeout itself.',
    unit: 's, or ms/s/m/h',
  }),
  /** Share of calls under the `weighted` strategy, relative to the other upstreams of its group. Default 1. */
  weight: field(intField(1, 10_000), {
    description:
      'Share of calls under the weighted balancing strategy: an upstream of weight 3 gets three times the calls of one of weight 1 in the same group.',
    default: 1,
  }),
  /** Order under the `failover` strategy: the lowest available number takes every call. Default 0. */
  priority: field(intField(0, 1000), {
    description:
      'Order under the failover balancing strategy: every call goes to the available upstreams of the lowest priority; higher numbers take over only when those are down, ejected or open.',
    default: 0,
  }),
  /** Labels such as `{ region: 'us-east' }`, for `balance.prefer`. */
  tags: field(
    z.record(
      z
        .string()
        .regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: "expected a tag name of 1 to 64 letters, digits, '_', '.' or '-'" }),
      mapValueSchema('a tag value (string)', /^[^\r\n\0]*$/),
      { error: 'expected a map of tag name to value' },
    ),
    {
      description:
        'Labels of this upstream, e.g. { region: us-east }. A balancing group can prefer upstreams with given tags and fall back to the rest when none of them is available.',
      default: {},
    },
  ),
};

export type UpstreamKey = keyof typeof upstreamShape;

/** Fields that belong to one transport; setting them on the other is an error. */
const STDIO_ONLY: readonly UpstreamKey[] = ['processes', 'args', 'env', 'cwd'];
const HTTP_ONLY: readonly UpstreamKey[] = ['headers', 'authToken', 'forwardAuth'];

// ---------------------------------------------------------------------------------------------
// snake_case <-> camelCase, driven by the shapes' own keys

type CamelToSnake<S extends string> = S extends `${infer H}${infer T}`
  ? `${H extends Lowercase<H> ? H : `_${Lowercase<H>}`}${CamelToSnake<T>}`
  : S;
type SnakeShape<S> = { [K in keyof S as K extends string ? CamelToSnake<K> : never]: S[K] };

function toSnake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** The file spelling of each known upstream key (`connectionPoolSize` → `connection_pool_size`). */
export const UPSTREAM_FILE_KEYS: Readonly<Record<UpstreamKey, string>> = Object.fromEntries(
  Object.keys(upstreamShape).map((key) => [key, toSnake(key)]),
) as Record<UpstreamKey, string>;
const UPSTREAM_KEY_OF_FILE_KEY: ReadonlyMap<string, UpstreamKey> = new Map(
  Object.entries(UPSTREAM_FILE_KEYS).map(([camel, snake]) => [snake, camel as UpstreamKey]),
);

function toFileShape<S extends Partial<typeof upstreamShape>>(shape: S): SnakeShape<S> {
  return Object.fromEntries(
    Object.entries(shape).map(([key, schema]) => [UPSTREAM_FILE_KEYS[key as UpstreamKey], schema]),
  ) as SnakeShape<S>;
}

/**
 * Renames the known snake_case keys of a validated file entry to camelCase. Keys the schema does
 * not know (there are none after validation) and the contents of user maps are left alone.
 */
function fromFileKeys(entry: Record<string, unknown>): Partial<Record<UpstreamKey, unknown>> {
  const out: Partial<Record<UpstreamKey, unknown>> = {};
  for (const [key, value] of Object.entries(entry)) {
    const camel = UPSTREAM_KEY_OF_FILE_KEY.get(key);
    if (camel !== undefined && value !== undefined) out[camel] = value;
  }
  return out;
}

function omit<S extends object, K extends keyof S>(shape: S, ...keys: K[]): Omit<S, K> {
  const out: Record<PropertyKey, unknown> = { ...(shape as Record<PropertyKey, unknown>) };
  for (const key of keys) delete out[key];
  return out as Omit<S, K>;
}

// ---------------------------------------------------------------------------------------------
// Checks across fields, written once and spelled for each surface

type Spell = (key: UpstreamKey) => string;
const camelSpelling: Spell = (key) => key;
const fileSpelling: Spell = (key) => UPSTREAM_FILE_KEYS[key];

/**
 * Cross-field checks run even when a field already failed, so that one pass reports every
 * problem. They only test which keys are present, so a value that failed its own check is harmless.
 */
const ALWAYS_FOR_OBJECTS: z.core.$ZodSuperRefineParams = {
  when: (payload) => typeof payload.value === 'object' && payload.value !== null && !Array.isArray(payload.value),
};

/** The message is complete; the formatter does not append the value received. */
export const NO_VALUE = { noValue: true } as const;

function hasAuthorizationHeader(headers: unknown): boolean {
  return (
    typeof headers === 'object' &&
    headers !== null &&
    Object.keys(headers).some((name) => name.toLowerCase() === 'authorization')
  );
}

/**
 * Checks one upstream's own fields: exactly one transport, and no field of the other transport.
 * `view` is camelCase; `spell` gives each key in the surface's spelling for paths and messages.
 */
function checkUpstreamFields(
  view: Partial<Record<UpstreamKey, unknown>>,
  spell: Spell,
  ctx: z.core.$RefinementCtx,
): void {
  const hasUrl = view.serverUrl !== undefined;
  const hasCommand = view.command !== undefined;
  if (!hasUrl && !hasCommand) {
    ctx.addIssue({
      code: 'custom',
      path: [],
      message: `expected ${spell('serverUrl')} (a Streamable HTTP URL) or ${spell('command')} (a program to run over stdio), got neither`,
      params: NO_VALUE,
    });
    return;
  }
  if (hasUrl && hasCommand) {
    ctx.addIssue({
      code: 'custom',
      path: [spell('command')],
      message: `expected exactly one of ${spell('serverUrl')} or ${spell('command')}, got both`,
      params: NO_VALUE,
    });
    return;
  }
  const [foreign, kind, other] = hasUrl
    ? ([STDIO_ONLY, 'an HTTP', `stdio upstreams (${spell('command')})`] as const)
    : ([HTTP_ONLY, 'a stdio', `HTTP upstreams (${spell('serverUrl')})`] as const);
  for (const key of foreign) {
    if (view[key] === undefined) continue;
    ctx.addIssue({
      code: 'custom',
      path: [spell(key)],
      message: `expected no ${spell(key)} on ${kind} upstream: it applies only to ${other}`,
    });
  }
  if (view.authToken !== undefined && hasAuthorizationHeader(view.headers)) {
    ctx.addIssue({
      code: 'custom',
      path: [spell('authToken')],
      message: `expected either ${spell('authToken')} or an Authorization header, not both`,
      params: NO_VALUE,
    });
  }
}

// ---------------------------------------------------------------------------------------------
// The library surface

/** The strict camelCase object, before the cross-field checks (for docs and key lookups). */
export const proxyConfigObjectSchema = z.strictObject(upstreamShape);

/** Validates a {@link ProxyConfig}; durations come out in milliseconds. */
export const proxyConfigSchema = proxyConfigObjectSchema.superRefine(
  (value, ctx) => checkUpstreamFields(value, camelSpelling, ctx),
  ALWAYS_FOR_OBJECTS,
);

type UpstreamInput = z.input<typeof proxyConfigObjectSchema>;
type TransportKey =
  'serverUrl' | 'command' | 'args' | 'env' | 'cwd' | 'processes' | 'headers' | 'authToken' | 'forwardAuth';
type SharedInput = Omit<UpstreamInput, TransportKey>;

/** An upstream reached over Streamable HTTP. */
export type HttpProxyConfig = SharedInput &
  Pick<UpstreamInput, 'headers' | 'authToken' | 'forwardAuth'> & {
    /** URL of a Streamable HTTP MCP endpoint (http or https). */
    serverUrl: string;
    command?: never;
    args?: never;
    env?: never;
    cwd?: never;
    processes?: never;
  };

/** An upstream started as a child process and spoken to over stdio. */
export type StdioProxyConfig = SharedInput &
  Pick<UpstreamInput, 'args' | 'env' | 'cwd' | 'processes'> & {
    /** Program to start as a stdio MCP server (looked up on PATH, no shell). */
    command: string;
    serverUrl?: never;
    headers?: never;
    authToken?: never;
    forwardAuth?: never;
  };

/**
 * What users write in TypeScript: the seed's `MCPProxyConfig` in camelCase, with exactly one of
 * `serverUrl` or `command`. Durations are seconds (a number) or a string with a unit.
 */
export type ProxyConfig = HttpProxyConfig | StdioProxyConfig;

/** The validated form of an upstream's fields (durations in ms), before defaults are applied. */
export type UpstreamFields = z.output<typeof proxyConfigObjectSchema>;

// ---------------------------------------------------------------------------------------------
// Resolved form

export interface HttpTransportConfig {
  readonly kind: 'http';
  /** The normalised URL (`new URL(serverUrl).href`). */
  readonly url: string;
  /** Extra headers, names exactly as written. Does not include the `authToken`. */
  readonly headers: Readonly<Record<string, string>>;
  /** To send as `Authorization: Bearer <authToken>`. */
  readonly authToken?: string;
  /** Behind the gateway: each caller's own bearer token replaces `authToken`. Absent when false. */
  readonly forwardAuth?: true;
}

export interface StdioTransportConfig {
  readonly kind: 'stdio';
  readonly command: string;
  readonly args: readonly string[];
  /** Only the configured variables; merge with {@link childProcessEnv} when spawning. */
  readonly env: Readonly<Record<string, string>>;
  /** Absolute when the config came from a file; as given otherwise. */
  readonly cwd?: string;
}

export type UpstreamTransportConfig = HttpTransportConfig | StdioTransportConfig;

/** One upstream with every default applied and every duration in milliseconds. Frozen. */
export interface ResolvedUpstreamConfig {
  readonly name: string;
  readonly transport: UpstreamTransportConfig;
  /** HTTP: pool connections; stdio: most in-flight requests across the processes. */
  readonly connectionPoolSize: number;
  /** stdio: child processes sharing the load (1-64). Always 1 for HTTP. */
  readonly processes: number;
  readonly timeoutMs: number;
  readonly maxRetries: number;
  readonly retryDelayMs: number;
  /** Entries. */
  readonly cacheSize: number;
  readonly cacheTtlMs: number;
  readonly enableCaching: boolean;
  readonly protocol: UpstreamProtocol;
  readonly maxResponseBytes: number;
  readonly tenant?: string;
  /** Bytes. */
  readonly cacheMaxBytes: number;
  readonly staleTtlMs: number;
  readonly trustAnnotations: boolean;
  readonly cache: ResolvedCacheConfig;
  /** Cap on one call's total time, in ms; absent when not set. */
  readonly maxTotalTimeoutMs?: number;
  /** Balancing fields; absent when not set (defaults: weight 1, priority 0, no tags). */
  readonly weight?: number;
  readonly priority?: number;
  readonly tags?: Readonly<Record<string, string>>;
}

/** A `cache.tools` entry, resolved. */
export interface ResolvedToolCacheRule {
  readonly name: string;
  readonly ttlMs?: number;
}

export interface ResolvedCacheConfig {
  /** Fresh lifetime per category, in ms. */
  readonly ttlMs: Readonly<Record<CacheCategoryName, number>>;
  /** `'*'` or the tool rules (empty: no tool is cached unless annotations are trusted). */
  readonly tools: '*' | readonly ResolvedToolCacheRule[];
  readonly redis?: ResolvedRedisConfig;
}

/** The defaults in their validated form (durations in ms), parsed once from {@link UPSTREAM_DEFAULTS}. */
const RESOLVED_DEFAULTS = z
  .strictObject(
    omit(
      upstreamShape,
      'name',
      'serverUrl',
      'command',
      'cwd',
      'authToken',
      'forwardAuth',
      'tenant',
      'cache',
      'maxTotalTimeout',
      'weight',
      'priority',
      'tags',
    ),
  )
  .required()
  .parse(UPSTREAM_DEFAULTS);

/** The name an upstream gets when none is given: the URL's `host[:port]`, or the command's basename. */
export function deriveUpstreamName(fields: Pick<UpstreamFields, 'serverUrl' | 'command'>): string {
  if (fields.serverUrl !== undefined) return new URL(fields.serverUrl).host;
  return basename((fields.command ?? '').replaceAll('\\', '/'));
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

/**
 * Applies the defaults to validated fields and builds the resolved, frozen form. The fields must
 * have passed {@link proxyConfigSchema} (or the file schema) — this function does not re-check.
 * `baseDir` resolves a relative `cwd` (files resolve against their own directory).
 */
export function resolveUpstream(fields: UpstreamFields, name?: string, baseDir?: string): ResolvedUpstreamConfig {
  const d = RESOLVED_DEFAULTS;
  let transport: UpstreamTransportConfig;
  if (fields.serverUrl !== undefined) {
    transport = {
      kind: 'http',
      url: new URL(fields.serverUrl).href,
      headers: { ...(fields.headers ?? d.headers) },
      ...(fields.authToken === undefined ? {} : { authToken: fields.authToken }),
      ...(fields.forwardAuth === true ? { forwardAuth: true as const } : {}),
    };
  } else {
    const cwd =
      fields.cwd === undefined || baseDir === undefined || isAbsolute(fields.cwd)
        ? fields.cwd
        : resolvePath(baseDir, fields.cwd);
    transport = {
      kind: 'stdio',
      command: fields.command ?? '',
      args: [...(fields.args ?? d.args)],
      env: { ...(fields.env ?? d.env) },
      ...(cwd === undefined ? {} : { cwd }),
    };
  }
  const resolved: ResolvedUpstreamConfig = {
    name: name ?? fields.name ?? deriveUpstreamName(fields),
    transport,
    connectionPoolSize: fields.connectionPoolSize ?? d.connectionPoolSize,
    processes: transport.kind === 'stdio' ? (fields.processes ?? d.processes) : 1,
    timeoutMs: fields.timeout ?? d.timeout,
    maxRetries: fields.maxRetries ?? d.maxRetries,
    retryDelayMs: fields.retryDelay ?? d.retryDelay,
    cacheSize: fields.cacheSize ?? d.cacheSize,
    cacheTtlMs: fields.cacheTtl ?? d.cacheTtl,
    enableCaching: fields.enableCaching ?? d.enableCaching,
    protocol: fields.protocol ?? d.protocol,
    maxResponseBytes: fields.maxResponseBytes ?? d.maxResponseBytes,
    ...(fields.tenant === undefined ? {} : { tenant: fields.tenant }),
    cacheMaxBytes: fields.cacheMaxBytes ?? d.cacheMaxBytes,
    staleTtlMs: fields.staleTtl ?? d.staleTtl,
    trustAnnotations: fields.trustAnnotations ?? d.trustAnnotations,
    cache: resolveCacheSection(fields.cache, fields.cacheTtl),
    ...(fields.maxTotalTimeout === undefined ? {} : { maxTotalTimeoutMs: fields.maxTotalTimeout }),
    ...(fields.weight === undefined ? {} : { weight: fields.weight }),
    ...(fields.priority === undefined ? {} : { priority: fields.priority }),
    ...(fields.tags === undefined ? {} : { tags: { ...fields.tags } }),
  };
  return deepFreeze(resolved);
}

function resolveCacheSection(section: UpstreamFields['cache'], cacheTtlMs: number | undefined): ResolvedCacheConfig {
  const ttl = section?.ttl;
  const ttlMs = Object.fromEntries(
    CACHE_CATEGORIES.map((category) => [
      category,
      ttl?.[category] ?? cacheTtlMs ?? CACHE_CATEGORY_TTL_DEFAULTS[category] * 1000,
    ]),
  ) as Record<CacheCategoryName, number>;
  const tools =
    section?.tools === undefined || section.tools === '*'
      ? (section?.tools ?? [])
      : section.tools.map((rule) =>
          typeof rule === 'string'
            ? { name: rule }
            : { name: rule.name, ...(rule.ttl === undefined ? {} : { ttlMs: rule.ttl }) },
        );
  const redis = section?.redis;
  return {
    ttlMs,
    tools,
    ...(redis === undefined ? {} : { redis: resolveRedisSection(redis, DEFAULT_CACHE_REDIS_PREFIX) }),
  };
}

/**
 * The variables a stdio child inherits from the relay's environment before `env` is applied —
 * the same minimal set the MCP SDK's stdio transport passes, so a server behaves as it does under
 * a desktop client, and the relay's own secrets stay out of every child.
 */
export const INHERITED_ENV_VARS: readonly string[] =
  process.platform === 'win32'
    ? [
        'APPDATA',
        'HOMEDRIVE',
        'HOMEPATH',
        'LOCALAPPDATA',
        'PATH',
        'PROCESSOR_ARCHITECTURE',
        'SYSTEMDRIVE',
        'SYSTEMROOT',
        'TEMP',
        'USERNAME',
        'USERPROFILE',
        'PROGRAMFILES',
      ]
    : ['HOME', 'LOGNAME', 'PATH', 'SHELL', 'TERM', 'USER', 'TMPDIR', 'LANG'];

/** The environment to spawn a stdio upstream with: {@link INHERITED_ENV_VARS} from `parentEnv`, then `env`. */
export function childProcessEnv(
  env: Readonly<Record<string, string>>,
  parentEnv: Readonly<Record<string, string | undefined>> = process.env,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of INHERITED_ENV_VARS) {
    const value = parentEnv[key];
    // A value starting with "()" is an exported bash function: a known injection vector.
    if (value !== undefined && !value.startsWith('()')) out[key] = value;
  }
  return Object.assign(out, env);
}

// ---------------------------------------------------------------------------------------------
// The file surface (snake_case keys; user maps untouched)

/**
 * An object's own error message for a value of the wrong type only; its other issues (unknown
 * keys) keep theirs.
 */
function objectExpected(what: string) {
  return (issue: z.core.$ZodRawIssue) => (issue.code === 'invalid_type' ? `expected ${what}` : undefined);
}

const fileUpstreamShape = toFileShape(omit(upstreamShape, 'name'));
const fileDefaultsShape = toFileShape(omit(upstreamShape, 'name', 'serverUrl', 'command'));

/** One entry under `upstreams:` — every upstream field in snake_case; the map key is its name. */
export const fileUpstreamSchema = z
  .strictObject(fileUpstreamShape, { error: objectExpected('a map of upstream fields (server_url or command, ...)') })
  .superRefine((entry, ctx) => checkUpstreamFields(fromFileKeys(entry), fileSpelling, ctx), ALWAYS_FOR_OBJECTS);

/** `type` / `transport` values that desktop MCP clients write. */
export const CLIENT_TRANSPORT_TYPES = [
  'stdio',
  'http',
  'streamable-http',
  'streamableHttp',
  'streamable_http',
] as const;
const transportTypeSchema = z.enum(CLIENT_TRANSPORT_TYPES, {
  error: (issue) =>
    issue.input === 'sse'
      ? 'expected "stdio" or "http": the HTTP+SSE transport of 2024-11-05 is not supported; point url at the server\'s Streamable HTTP endpoint'
      : `expected one of ${CLIENT_TRANSPORT_TYPES.map((t) => `"${t}"`).join(', ')}`,
});

/** The keys desktop MCP clients use in `mcpServers` entries beside the upstream fields. */
const mcpServerClientShape = {
  url: field(httpUrlSchema, {
    description: 'The desktop-client spelling of server_url.',
    transport: 'http',
  }),
  type: field(transportTypeSchema, {
    description:
      'Transport as desktop clients write it ("stdio", "http", "streamable-http"); checked against command/url, otherwise ignored.',
  }),
  transport: field(transportTypeSchema, {
    description: 'Same as type (some clients use this name).',
  }),
  disabled: field(z.boolean({ error: 'expected true or false' }), {
    description: 'When true the entry is skipped, as the desktop client would skip it.',
    default: false,
  }),
  autoApprove: field(z.array(z.string(), { error: 'expected a list of tool names' }), {
    description: "A desktop client's list of tools approved without asking; accepted and ignored.",
  }),
  alwaysAllow: field(z.array(z.string(), { error: 'expected a list of tool names' }), {
    description: "A desktop client's list of tools approved without asking; accepted and ignored.",
  }),
};

const isHttpType = (type: string) => type !== 'stdio';
const isClientTransportType = (value: unknown): value is (typeof CLIENT_TRANSPORT_TYPES)[number] =>
  (CLIENT_TRANSPORT_TYPES as readonly unknown[]).includes(value);

/** One entry under `mcpServers:` — the desktop-client format, plus any upstream field. */
export const mcpServerEntrySchema = z
  .strictObject(
    { ...fileUpstreamShape, ...mcpServerClientShape },
    { error: objectExpected('a map such as { command, args, env } or { url, headers }') },
  )
  .superRefine((entry, ctx) => {
    const { url, type, transport } = entry;
    if (url !== undefined && entry.server_url !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['url'],
        message: 'expected one of url or server_url, got both',
        params: NO_VALUE,
      });
      return;
    }
    const view = fromFileKeys(entry);
    if (url !== undefined) view.serverUrl = url;
    checkUpstreamFields(view, (key) => (key === 'serverUrl' && url !== undefined ? 'url' : fileSpelling(key)), ctx);
    if (isClientTransportType(type) && isClientTransportType(transport) && isHttpType(type) !== isHttpType(transport)) {
      ctx.addIssue({
        code: 'custom',
        path: ['transport'],
        message: `expected the same transport as type ("${type}")`,
      });
    }
    for (const key of ['type', 'transport'] as const) {
      const declared = entry[key];
      if (!isClientTransportType(declared)) continue;
      if (isHttpType(declared) && view.command !== undefined && view.serverUrl === undefined) {
        ctx.addIssue({ code: 'custom', path: [key], message: 'expected "stdio" for an entry with command' });
      } else if (!isHttpType(declared) && view.serverUrl !== undefined && view.command === undefined) {
        ctx.addIssue({ code: 'custom', path: [key], message: 'expected "http" for an entry with url' });
      }
    }
  }, ALWAYS_FOR_OBJECTS);

/**
 * The top level of a config file. Each key is one section; a later feature adds its section here
 * (`cache`, `tenants`, `balance`, `alerts`, `server`, ...) and its resolution in
 * `load.ts#resolveRelayConfigFile`. Unknown keys are errors, so typos fail.
 */
export const relayConfigFileShape = {
  $schema: field(z.string({ error: 'expected a string' }), {
    description: 'URL or path of this JSON Schema, for editors. Ignored by the relay.',
  }),
  defaults: field(z.strictObject(fileDefaultsShape, { error: objectExpected('a map of upstream fields') }), {
    description:
      "Upstream fields applied to every upstream that does not set them. HTTP-only fields apply to HTTP upstreams and stdio-only fields to stdio ones; headers and env are merged key by key (header names case-insensitively), the upstream's own value winning.",
  }),
  upstreams: field(
    z.record(upstreamNameSchema, fileUpstreamSchema, { error: 'expected a map of upstream name to upstream fields' }),
    {
      description: 'The upstream MCP servers, by name. Each entry has server_url or command, plus any upstream field.',
    },
  ),
  server: field(serverSectionSchema, {
    description: 'Where and how the gateway (`mcp-relay serve`) listens: host, port, body limit, origins, naming.',
  }),
  auth: field(authSectionSchema, {
    description:
      'Who may call the gateway: api_keys, jwt (HS256, RS256, a JWKS file), allow_anonymous (loopback only). Without it the gateway serves anonymous callers, and only on a loopback address.',
  }),
  tenants: field(tenantsSectionSchema, {
    description:
      'What each tenant may use: allowed_upstreams, allowed_tools, max_concurrent, rate_limit. Each tenant also has its own cache partition.',
  }),
  balance: field(balanceSectionSchema, {
    description:
      'How calls spread over upstreams and survive their failures: strategy (fastest, round_robin, least_outstanding, weighted, failover), named groups, preferred tags, active health probes, outlier ejection, circuit breakers, the retry budget, idempotent tools and the pool wait queue. Per-upstream weight, priority, tags and max_total_timeout are upstream fields.',
  }),
  alerts: field(alertsSectionSchema, {
    description:
      "When the gateway alerts: the seed's ALERT_THRESHOLDS (P95 500 ms, P99 1000 ms, hit rate < 0.7, error rate > 5 %, pool use > 90 %, memory > 80 %) judged over a window with a minimum sample count; alerts are logged, listed at /alerts, shown on the dashboard and optionally POSTed to a webhook.",
  }),
  telemetry: field(telemetrySectionSchema, {
    description:
      'What the gateway measures and exposes: Prometheus metrics at /metrics, the live dashboard at /, resource sampling, JSON logs (pino) and OpenTelemetry traces (off by default).',
  }),
  redis: field(redisSectionSchema, {
    description:
      "The Redis that the gateway's replicas share for global tenant rate limits and deleted legacy sessions: one server (url) or a Redis Cluster (cluster). Without it each replica enforces rate_limit on its own, and a session's DELETE holds on the replica that received it only. The cache's shared tier is set apart, as cache.redis (under defaults for every upstream). When Redis is unreachable each replica falls back to its own buckets, logs one warning, and returns to the global ones once Redis is back.",
  }),
  mcpServers: field(
    z.record(upstreamNameSchema, mcpServerEntrySchema, {
      error: 'expected a map of server name to { command, args, env } or { url, headers }',
    }),
    {
      description:
        'Upstreams in the format desktop MCP clients use ({ command, args, env } or { url, headers }); an existing mcpServers object loads unchanged. Entries may also carry any upstream field.',
    },
  ),
};

/** The whole file, validated; key names as in the file. */
export const relayConfigFileSchema = z.strictObject(relayConfigFileShape, {
  error: objectExpected('a map of configuration sections (upstreams, mcpServers, defaults, ...)'),
});

/** What a config file holds, as written (snake_case keys; durations as seconds or strings). */
export type RelayConfigFile = z.input<typeof relayConfigFileSchema>;
/** A config file after validation (durations in ms), before resolution. */
export type ValidatedRelayConfigFile = z.output<typeof relayConfigFileSchema>;
export type FileUpstreamEntry = z.output<typeof fileUpstreamSchema>;
export type McpServerEntry = z.output<typeof mcpServerEntrySchema>;

/** The whole configuration, resolved. Later sections (cache, tenants, ...) add their keys here. */
export interface ResolvedRelayConfig {
  /** In file order: `upstreams` first, then `mcpServers` (disabled entries left out). */
  readonly upstreams: readonly ResolvedUpstreamConfig[];
  /** The gateway's listening settings, defaults applied. */
  readonly server: ResolvedServerConfig;
  /** Who may call the gateway; absent without an `auth:` section. */
  readonly auth?: ResolvedAuthConfig | undefined;
  /** Tenants' rules; absent without a `tenants:` section. */
  readonly tenants?: ResolvedTenantsConfig | undefined;
  /** Balancing and resilience settings; absent without a `balance:` section (the defaults apply). */
  readonly balance?: ResolvedBalanceConfig | undefined;
  /** Alert thresholds and delivery; the seed's defaults when the file has no `alerts:` section. */
  readonly alerts?: ResolvedAlertsConfig | undefined;
  /** Metrics, dashboard, logs and traces; defaults when the file has no `telemetry:` section. */
  readonly telemetry?: ResolvedTelemetryConfig | undefined;
  /** The Redis the gateway's replicas share (global rate limits); absent without a `redis:` section. */
  readonly redis?: ResolvedRedisConfig | undefined;
}

/** Converts a validated file entry to camelCase fields, `url` becoming `serverUrl`. */
export function fileEntryToFields(entry: FileUpstreamEntry | McpServerEntry): UpstreamFields {
  const fields = fromFileKeys(entry) as UpstreamFields;
  if ('url' in entry && entry.url !== undefined) fields.serverUrl = entry.url;
  return fields;
}

/** Converts the validated `defaults:` section to camelCase fields. */
export function fileDefaultsToFields(defaults: ValidatedRelayConfigFile['defaults']): UpstreamFields {
  return defaults === undefined ? {} : (fromFileKeys(defaults) as UpstreamFields);
}

/**
 * Applies `defaults:` to one upstream: scalar fields the upstream leaves unset, fields of the other
 * transport skipped, `headers` and `env` merged key by key with the upstream's keys winning
 * (header names compared case-insensitively, as HTTP does).
 */
export function applyUpstreamDefaults(defaults: UpstreamFields, fields: UpstreamFields): UpstreamFields {
  const isHttp = fields.serverUrl !== undefined;
  const skip = new Set<UpstreamKey>(isHttp ? STDIO_ONLY : HTTP_ONLY);
  const merged: Record<string, unknown> = { ...fields };
  for (const [key, value] of Object.entries(defaults) as [UpstreamKey, unknown][]) {
    if (value === undefined || skip.has(key)) continue;
    if (key === 'headers' && fields.headers !== undefined) {
      const own = new Set(Object.keys(fields.headers).map((name) => name.toLowerCase()));
      const inherited = Object.entries(defaults.headers ?? {}).filter(([name]) => !own.has(name.toLowerCase()));
      merged.headers = { ...Object.fromEntries(inherited), ...fields.headers };
    } else if (key === 'env' && fields.env !== undefined) {
      merged.env = { ...defaults.env, ...fields.env };
    } else if (key === 'cache' && fields.cache !== undefined) {
      const base = defaults.cache ?? {};
      const own = fields.cache;
      merged.cache = {
        ...base,
        ...own,
        ...(base.ttl !== undefined && own.ttl !== undefined ? { ttl: { ...base.ttl, ...own.ttl } } : {}),
      };
    } else if (merged[key] === undefined) {
      merged[key] = value;
    }
  }
  return merged;
}

/** Whether `authToken` and an `Authorization` header are both set (a conflict after merging). */
export function hasAuthConflict(fields: UpstreamFields): boolean {
  return fields.authToken !== undefined && hasAuthorizationHeader(fields.headers);
}

// ---------------------------------------------------------------------------------------------
// Walking the schema (for error messages, env-substituted values and the docs)

interface ZodDefView {
  type: string;
  shape?: Record<string, z.core.$ZodType>;
  innerType?: z.core.$ZodType;
  valueType?: z.core.$ZodType;
  element?: z.core.$ZodType;
  in?: z.core.$ZodType;
  options?: readonly z.core.$ZodType[];
}

/** The definition of a schema, with the wrappers that do not change its shape removed. */
export function unwrapSchema(schema: z.core.$ZodType): ZodDefView {
  let def = schema._zod.def as unknown as ZodDefView;
  for (;;) {
    if ((def.type === 'optional' || def.type === 'default' || def.type === 'nullable') && def.innerType) {
      def = def.innerType._zod.def;
    } else if (def.type === 'pipe' && def.in) {
      def = def.in._zod.def;
    } else {
      return def;
    }
  }
}

/** The schema at `path` under `root` (object keys, record values, array elements), if any. */
export function schemaAt(root: z.core.$ZodType, path: readonly PropertyKey[]): z.core.$ZodType | undefined {
  let current: z.core.$ZodType | undefined = root;
  for (const segment of path) {
    if (current === undefined) return undefined;
    const def = unwrapSchema(current);
    // Own keys only: a file key such as `toString` must not find Object.prototype's method.
    if (def.type === 'object' && def.shape)
      current = Object.hasOwn(def.shape, segment) ? def.shape[String(segment)] : undefined;
    else if (def.type === 'record') current = def.valueType;
    else if (def.type === 'array') current = def.element;
    else return undefined;
  }
  return current;
}

/** The keys an object schema at `path` accepts (empty when `path` is not an object). */
export function knownKeysAt(root: z.core.$ZodType, path: readonly PropertyKey[]): string[] {
  const schema = schemaAt(root, path);
  if (schema === undefined) return [];
  const def = unwrapSchema(schema);
  return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

/**
 * The JSON Schema of the config file format (draft 2020-12), from the zod schema itself: what
 * editors use to complete and check a file (`"$schema"` in JSON, `# yaml-language-server:
 * $schema=...` in YAML).
 */
export function relayConfigJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(relayConfigFileSchema, {
    target: 'draft-2020-12',
    io: 'input',
    override: (ctx) => {
      const json = ctx.jsonSchema as Record<string, unknown>;
      for (const key of DOC_ONLY_META_KEYS) delete json[key];
      // zod leaves a meta `default` out for fields with a transform (durations); it is the input form.
      const meta = z.globalRegistry.get(ctx.zodSchema);
      if (meta !== undefined && 'default' in meta && !('default' in json)) json.default = meta.default;
    },
  });
  return {
    ...schema,
    title: 'mcp-relay configuration',
    description:
      'Configuration of mcp-relay: upstream MCP servers (upstreams, or mcpServers in the desktop-client format) and defaults. Keys are snake_case.',
  };
}
