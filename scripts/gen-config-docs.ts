/**
 * Generates docs/config.md from the config schema itself: the field list, descriptions, defaults
 * and units come from the zod shapes' `.meta()`, the types and ranges from the JSON Schema derived
 * from them. Run `npm run docs:config`; `--check` fails (exit 1) when the file is out of date.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';

import * as prettier from 'prettier';
import * as z from 'zod';

import {
  CLIENT_TRANSPORT_TYPES,
  DURATION_PATTERN,
  INHERITED_ENV_VARS,
  RESERVED_HEADERS,
  UPSTREAM_FILE_KEYS,
  apiKeyEntryShape,
  authSectionShape,
  jwtSectionShape,
  rateLimitShape,
  redisSectionSchema,
  tenantEntryShape,
  alertsSectionShape,
  alertThresholdsShape,
  alertWebhookShape,
  loggingShape,
  telemetrySectionShape,
  balanceSectionShape,
  balanceSubsectionShapes,
  tracingShape,
  mcpServerEntrySchema,
  relayConfigFileShape,
  relayConfigJsonSchema,
  upstreamShape,
  type FieldMeta,
  serverSectionSchema,
  sessionsSectionSchema,
} from '../src/config/index.js';

export const DOCS_PATH = fileURLToPath(new URL('../docs/config.md', import.meta.url));

/** The parts of a JSON Schema node the tables read. */
interface JsonSchema {
  type?: string | string[];
  anyOf?: JsonSchema[];
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  pattern?: string;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
}

function metaOf(schema: z.ZodType): FieldMeta {
  return (z.globalRegistry.get(schema) ?? { description: '' }) as FieldMeta;
}

function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

function code(text: string): string {
  return `\`${text}\``;
}

/** A field's type in words, from its JSON Schema node. */
function typeOf(json: JsonSchema): string {
  if (json.anyOf !== undefined) {
    if (json.anyOf.some((option) => option.pattern === DURATION_PATTERN)) return 'duration';
    return json.anyOf.map(typeOf).join(' or ');
  }
  if (json.enum !== undefined) return json.enum.map((v) => JSON.stringify(v)).join(' | ');
  switch (json.type) {
    case 'integer': {
      const { minimum: min, maximum: max } = json;
      if (max !== undefined && max < Number.MAX_SAFE_INTEGER) return `integer ${min ?? ''}–${max}`;
      return min === undefined ? 'integer' : `integer ≥ ${min}`;
    }
    case 'array':
      return `list of ${typeOf(json.items ?? {})}`;
    case 'object': {
      const values = json.additionalProperties;
      if (typeof values !== 'object') return 'map';
      return values.properties === undefined ? 'map of string → string' : 'map of name → entry';
    }
    case 'string':
      return 'string';
    case 'boolean':
      return 'boolean';
    case 'number':
      return 'number';
    default:
      return Array.isArray(json.type) ? 'string' : 'any';
  }
}

function formatDefault(meta: FieldMeta): string {
  if (!('default' in meta)) return '';
  const text = code(JSON.stringify(meta.default));
  if (meta.unit === 'bytes' && typeof meta.default === 'number') return `${text} (${meta.default / 1024 / 1024} MiB)`;
  return text;
}

function describeField(meta: FieldMeta): string {
  return cell(meta.description);
}

function upstreamTable(json: JsonSchema): string {
  const rows = [
    '| field | TypeScript | type | default | unit | description |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const [key, schema] of Object.entries(upstreamShape)) {
    const fileKey = UPSTREAM_FILE_KEYS[key as keyof typeof upstreamShape];
    const meta = metaOf(schema as z.ZodType);
    const node = json.properties?.[fileKey] ?? {};
    const type = key === 'name' ? 'string' : typeOf(node);
    const fileCell = key === 'name' ? '(map key)' : code(fileKey);
    rows.push(
      `| ${fileCell} | ${code(key)} | ${cell(type)} | ${cell(formatDefault(meta))} | ${cell(meta.unit ?? '')} | ${describeField(meta)} |`,
    );
  }
  return rows.join('\n');
}

/** The object member of a `false | { ... }` or `list | { ... }` union, or the node itself. */
function objectVariant(node: JsonSchema): JsonSchema {
  return node.anyOf?.find((option) => option.properties !== undefined) ?? node;
}

function sectionTable(shape: Record<string, z.ZodType>, json: JsonSchema): string {
  const rows = ['| key | type | description |', '| --- | --- | --- |'];
  for (const [key, schema] of Object.entries(shape)) {
    const node = json.properties?.[key] ?? {};
    rows.push(`| ${code(key)} | ${cell(typeOf(node))} | ${describeField(metaOf(schema))} |`);
  }
  return rows.join('\n');
}

function clientKeysTable(json: JsonSchema): string {
  const entryShape = mcpServerEntrySchema.shape as Record<string, z.ZodType>;
  const upstreamFileKeys = new Set(Object.values(UPSTREAM_FILE_KEYS));
  const clientOnly = Object.fromEntries(Object.entries(entryShape).filter(([key]) => !upstreamFileKeys.has(key)));
  return sectionTable(clientOnly, json);
}

/** The whole document, formatted by prettier with the repository's settings. */
export async function renderConfigDocs(): Promise<string> {
  const json = relayConfigJsonSchema() as JsonSchema;
  const upstreamJson = json.properties?.upstreams?.additionalProperties as JsonSchema;
  const entryJson = json.properties?.mcpServers?.additionalProperties as JsonSchema;
  const authJson = json.properties?.auth ?? {};
  const apiKeyJson = authJson.properties?.api_keys?.additionalProperties as JsonSchema;
  const jwtJson = authJson.properties?.jwt ?? {};
  const tenantJson = json.properties?.tenants?.additionalProperties as JsonSchema;
  const rateLimitJson = tenantJson.properties?.rate_limit ?? {};
  const alertsJson = json.properties?.alerts ?? {};
  const telemetryJson = json.properties?.telemetry ?? {};
  const balanceJson = json.properties?.balance ?? {};
  const balanceNode = (key: string): JsonSchema => objectVariant(balanceJson.properties?.[key] ?? {});
  const serverJson = json.properties?.server ?? {};
  const sessionsJson = serverJson.properties?.sessions ?? {};

  const markdown = `# Configuration reference

<!-- Generated from src/config/schema.ts by \`npm run docs:config\`. Do not edit by hand. -->

mcp-relay reads one configuration file, in YAML or JSON (\`mcp-relay config validate relay.yaml\`
checks one and lists every problem in it). Keys are the seed's snake_case names
(\`connection_pool_size\`, \`cache_ttl\`). In TypeScript the same fields are camelCase
(\`ProxyConfig\`: \`connectionPoolSize\`, \`cacheTtl\`), and the resolved configuration that
\`resolveProxyConfig()\` and \`loadConfigFile()\` return states its units in its names
(\`timeoutMs\`, \`retryDelayMs\`, \`cacheTtlMs\`).

Unknown keys are errors, so a typo fails instead of being ignored. Keys inside \`headers\` and
\`env\` are your data: they are never case-converted and kept exactly as written.

## Top level

${sectionTable(relayConfigFileShape, json)}

At least one upstream is required, and names must be unique across \`upstreams\` and
\`mcpServers\`. A name is 1 to 48 letters, digits, \`_\`, \`.\` or \`-\`.

## Upstream fields

An upstream is reached over Streamable HTTP (\`server_url\`) or started as a child process and
spoken to over stdio (\`command\`) — exactly one of the two. Every other field is optional.

The seed never lists its defaults in one place; these are taken from its \`MCPProxyConfig\`
examples (\`timeout=30.0\`, \`max_retries=3\`, \`retry_delay=1.0\` from its production base config,
\`connection_pool_size=10\` and \`cache_size=100\` from its development config, the 5-minute
\`cache_ttl\` it recommends, \`enable_caching=True\`).

${upstreamTable(upstreamJson)}

Headers the relay manages itself cannot be set in \`headers\`:
${[...RESERVED_HEADERS].map(code).join(', ')}.

A stdio child does not inherit the relay's whole environment: only
${INHERITED_ENV_VARS.map(code).join(', ')} (the same minimal set the MCP SDK passes), then \`env\`
over them.

## \`mcpServers\` entries

\`mcpServers\` takes the object desktop MCP clients use, unchanged:

\`\`\`json
{
  "mcpServers": {
    "filesystem": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-filesystem", "/srv/data"],
      "env": { "DEBUG": "1" }
    },
    "search": {
      "type": "http",
      "url": "https://search.example.com/mcp",
      "headers": { "Authorization": "Bearer \${SEARCH_TOKEN}" }
    }
  }
}
\`\`\`

Besides every upstream field above, an entry may carry these client keys:

${clientKeysTable(entryJson)}

\`type\` and \`transport\` accept ${CLIENT_TRANSPORT_TYPES.map((t) => code(JSON.stringify(t))).join(', ')}.
The HTTP+SSE transport of 2024-11-05 (\`"sse"\`) is not supported.

## \`defaults\`

Any upstream field except \`server_url\` and \`command\`, applied to every upstream (in both maps)
that does not set it. Fields of one transport apply only to upstreams of that transport.
\`headers\` and \`env\` are merged key by key, the upstream's own keys winning (header names
compared case-insensitively).

\`\`\`yaml
defaults:
  timeout: 10s
  headers:
    User-Agent: mcp-relay
upstreams:
  search:
    server_url: https://mcp-prod.example.com/mcp
    connection_pool_size: 50
    cache_ttl: 10m
    auth_token: \${MCP_PROD_TOKEN}
  files:
    command: npx
    args: [-y, "@modelcontextprotocol/server-filesystem", /srv/data]
    processes: 4
\`\`\`

## \`auth\` and \`tenants\`

Who may call the gateway, and what each tenant may do. Without \`auth\` the gateway serves anyone
who can connect, so it refuses to start on a host that is not a loopback address (\`localhost\`,
\`::1\`, \`127.0.0.0/8\`); \`allow_anonymous: true\` is allowed on loopback only too. Callers
present \`Authorization: Bearer <API key or JWT>\` or \`X-API-Key: <API key>\`; a missing, malformed,
unknown or expired credential gets HTTP 401, a valid token whose tenant is not defined under
\`tenants\` 403. A caller's credential is never sent upstream, except to upstreams with
\`forward_auth: true\`.

\`\`\`yaml
auth:
  api_keys:
    ci-bot: { key: "\${CI_BOT_KEY}", tenant: acme }
  jwt:
    algorithm: RS256
    jwks_file: ./issuer-jwks.json
    issuer: https://login.example.com/
    audience: mcp-relay
tenants:
  acme:
    allowed_upstreams: [docs, search]
    allowed_tools: [search, "docs/read_*"]
    max_concurrent: 8
    rate_limit: { requests_per_second: 5, burst: 20 }
\`\`\`

${sectionTable(authSectionShape, authJson)}

\`api_keys\` entries:

${sectionTable(apiKeyEntryShape, apiKeyJson)}

\`auth.jwt\`:

${sectionTable(jwtSectionShape, jwtJson)}

Each tenant under \`tenants\` (a name of 1 to 64 letters, digits, \`_\`, \`.\` or \`-\`) has its own
cache partition, and:

${sectionTable(tenantEntryShape, tenantJson)}

\`rate_limit\`:

${sectionTable(rateLimitShape, rateLimitJson)}

## \`redis\` and \`cache.redis\`

Replicas of the gateway behind one load balancer share state through Redis: one server (\`url\`)
or a Redis Cluster (\`cluster\`: some of its nodes' URLs; Redis 7 or later). Two sections, with the
same keys, say which:

- \`redis\` (top level): the gateway's own shared state. Tenants with a \`rate_limit\` then have one
  token bucket across all replicas, kept in Redis and updated by one atomic script per request;
  tenants without one never wait for Redis. Without it, each replica has its own buckets.
- \`cache.redis\` (per upstream, or under \`defaults\` for all): the cache's shared second tier,
  with invalidations fanned out over pub/sub (sharded pub/sub on a cluster). Its \`prefix\`
  defaults to \`mcp-relay:cache:\`.

When Redis is unreachable nothing fails: the cache serves from memory, each replica enforces
rate limits with its own buckets (so the tenants' rate across N replicas can reach N times the
limit until Redis is back), one warning is logged per outage, and the connection is retried with
exponential backoff and jitter.

\`\`\`yaml
redis:
  cluster: [redis://10.0.0.1:6379, redis://10.0.0.2:6379, redis://10.0.0.3:6379]
defaults:
  cache:
    redis: { cluster: [redis://10.0.0.1:6379, redis://10.0.0.2:6379, redis://10.0.0.3:6379] }
\`\`\`

${sectionTable(redisSectionSchema.shape, json.properties?.redis ?? {})}

## \`alerts\` and \`telemetry\`

What the gateway measures, exposes and alerts on. Without these sections it serves Prometheus
metrics at \`/metrics\`, the live dashboard at \`/\`, alerts at \`/alerts\` with the seed's
\`ALERT_THRESHOLDS\`, and JSON logs at \`info\` on standard error; tracing is off.

\`\`\`yaml
alerts:
  thresholds:
    high_latency: { p95_ms: 500, p99_ms: 1000 }
    low_cache_hit_rate: 0.7
    high_error_rate: 0.05
    connection_pool_exhaustion: 0.9
    memory_usage: 0.8
  window: 60s
  min_samples: 20
  webhook:
    url: https://hooks.example.com/mcp-relay
    headers: { Authorization: "Bearer \${HOOK_TOKEN}" }
telemetry:
  logging: { level: info, requests: true, redact_headers: [x-upstream-key] }
  tracing: { exporter: otlp, endpoint: http://127.0.0.1:4318/v1/traces }
\`\`\`

${sectionTable(alertsSectionShape, alertsJson)}

\`alerts.thresholds\` (each may be \`false\` to turn it off):

${sectionTable(alertThresholdsShape, alertsJson.properties?.thresholds ?? {})}

\`alerts.webhook\`:

${sectionTable(alertWebhookShape, alertsJson.properties?.webhook ?? {})}

\`telemetry\`:

${sectionTable(telemetrySectionShape, telemetryJson)}

\`telemetry.logging\`:

${sectionTable(loggingShape, telemetryJson.properties?.logging ?? {})}

\`telemetry.tracing\`:

${sectionTable(tracingShape, telemetryJson.properties?.tracing ?? {})}

## \`balance\`

How a \`ProxyManager\` (and the gateway) spreads calls over upstreams and keeps them from failing.
Every call is balanced (not one pick per factory): the \`fastest\` strategy sends it to the cheaper
of two random upstreams by peak-EWMA latency × (calls in flight + 1). Per-upstream \`weight\`,
\`priority\`, \`tags\` and \`max_total_timeout\` are upstream fields. A retry happens only where the
call cannot run twice: it never reached the server (connection refused, pool queue timeout, a 503
or 429 before any body, an open breaker), or the tool is read-only or idempotent (\`idempotent\`, or
annotated so by an upstream with \`trust_annotations\`); on another upstream when there is one,
after the upstream's \`Retry-After\`, within the retry budget.

\`\`\`yaml
mcpServers:
  compute-1: { url: http://compute-1:8000/mcp, tags: { region: us-east } }
  compute-2: { url: http://compute-2:8000/mcp, tags: { region: eu }, weight: 2 }
  storage-1: { url: http://storage-1:8000/mcp, priority: 0 }
  storage-2: { url: http://storage-2:8000/mcp, priority: 1 }
balance:
  strategy: fastest
  prefer: { region: us-east }
  groups:
    compute: [compute-1, compute-2]
    storage: { upstreams: [storage-1, storage-2], strategy: failover }
  health: { interval: 10s, timeout: 2s, fall: 2, rise: 1 }
  ejection: { failures: 5, duration: 5s, max: 5m, share: 0.5 }
  breaker: { failures: 5, cooldown: 5s, max: 1m }
  budget: { ratio: 0.1, floor: 1, window: 10s }
  idempotent: [search_*, get_weather]
\`\`\`

${sectionTable(balanceSectionShape, balanceJson)}

A group given as an object (\`balance.groups.<name>\`):

${sectionTable(balanceSubsectionShapes.group, objectVariant((balanceJson.properties?.groups?.additionalProperties ?? {}) as JsonSchema))}

\`balance.health\`:

${sectionTable(balanceSubsectionShapes.health, balanceNode('health'))}

\`balance.ejection\`:

${sectionTable(balanceSubsectionShapes.ejection, balanceNode('ejection'))}

\`balance.breaker\`:

${sectionTable(balanceSubsectionShapes.breaker, balanceNode('breaker'))}

\`balance.budget\`:

${sectionTable(balanceSubsectionShapes.budget, balanceNode('budget'))}

\`balance.queue\`:

${sectionTable(balanceSubsectionShapes.queue, balanceNode('queue'))}

## \`server\`

Where and how the gateway (\`mcp-relay serve\`) listens; the command line's \`--host\` and
\`--port\` override it.

\`\`\`yaml
server:
  host: 0.0.0.0
  port: 8080
  sessions:
    secret: "\${MCP_RELAY_SESSION_SECRET}"
    max_age: 24h
redis: { url: redis://redis.internal:6379 } # a DELETE reaches every replica
\`\`\`

${sectionTable(serverSectionSchema.shape, serverJson)}

\`server.sessions\` (2025-06-18 / 2025-11-25 clients; the 2026-07-28 revision has no sessions):

${sectionTable(sessionsSectionSchema.shape, sessionsJson)}

A session id is sealed: signed with \`secret\` (HMAC-SHA256) over its protocol version, scope,
issue time and the caller who opened it, so any replica with the same secret takes a session up
on its first request there, and another caller's id is refused (404) like an unknown one. What a
session holds besides its id stays on the replica that holds it: resource subscriptions, the GET
stream, and requests relayed to the client (sampling, elicitation), whose answers must reach the
replica that asked. Clients that use those should be routed by \`Mcp-Session-Id\` (sticky
sessions) in front of several replicas. With the top-level \`redis\` section a DELETE is recorded
there (until the id would have expired) and every replica refuses the id from then on; without it
a DELETE ends the session on the replica that received it only.

## Durations

\`timeout\`, \`retry_delay\` and \`cache_ttl\` take seconds as a number, as the seed does
(\`timeout: 30.0\`, \`retry_delay: 0.5\`), or a string with a unit: \`250ms\`, \`1.5s\`, \`5m\`,
\`2h\` (a string without a unit is seconds too). Negative values, unknown units, NaN and Infinity
are errors. \`timeout\` and \`retry_delay\` must fit a Node timer (at most 2147483647 ms, about
24.8 days), and \`timeout\` must be at least 1 ms.

## Environment variables

Every string value may use \`\${NAME}\` or \`\${NAME:-default}\` (the default applies when the
variable is unset or empty). \`$$\` is a literal \`$\`. An unset variable without a default is an
error that names the variable and the field. A substituted value in a number or boolean field is
read as one, so \`connection_pool_size: \${POOL_SIZE:-10}\` works. In a YAML flow collection
(\`{ ... }\`), quote the value: \`{ token: "\${TOKEN}" }\`.

## Errors

Every problem is reported at once, one per line, naming the field as the file spells it, the value
received and what was expected:

\`\`\`text
invalid configuration in relay.yaml (2 problems):
  upstreams.search.connection_pool_size: expected an integer from 1 to 10000, got 0
  upstreams.search.auth_token: expected a token (non-empty string), got [redacted]
\`\`\`

Values of fields named like a token, secret, password, API key, cookie or authorization (including
an \`Authorization\` header) are shown as \`[redacted]\`, and so is a password in a URL. A file that
is not valid YAML or JSON reports the line and column.

## Editor support

\`mcp-relay config schema\` prints the JSON Schema of this format. Save it and point your editor at
it: \`"$schema": "./relay.schema.json"\` in a JSON file, or
\`# yaml-language-server: $schema=./relay.schema.json\` at the top of a YAML file.
`;
  const options = await prettier.resolveConfig(DOCS_PATH);
  return prettier.format(markdown, { ...options, parser: 'markdown' });
}

async function main(): Promise<void> {
  const rendered = await renderConfigDocs();
  if (process.argv.includes('--check')) {
    const current = await readFile(DOCS_PATH, 'utf8').catch(() => '');
    if (current !== rendered) {
      process.stderr.write('docs/config.md is out of date; run `npm run docs:config`\n');
      process.exitCode = 1;
    }
    return;
  }
  await writeFile(DOCS_PATH, rendered);
  process.stdout.write(`wrote ${DOCS_PATH}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
