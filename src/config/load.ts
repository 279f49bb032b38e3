/**
 * Reading configuration: YAML or JSON text → `${ENV}` substitution → validation against the file
 * schema → resolution (defaults, names, transports). Every problem found is reported in one
 * `RelayError(RELAY_INVALID_CONFIG)`, one line each, naming the field as the file spells it, the
 * value received (secrets redacted) and what was expected.
 */
import { readFile } from 'node:fs/promises';
import { dirname, extname, resolve as resolvePath } from 'node:path';

import YAML from 'yaml';
import type * as z from 'zod';

import { RelayError, RelayErrorCode } from '../errors/index.js';
import { resolveServerSection } from './server.js';
import { resolveAuthSection } from './auth.js';
import { accessIssues, resolveTenantsSection } from './tenants.js';
import { DEFAULT_GATEWAY_REDIS_PREFIX, resolveRedisSection } from './redis.js';
import { balanceGroupIssues, resolveBalanceSection } from './balance.js';
import { resolveAlertsSection, resolveTelemetrySection } from './telemetry.js';
import {
  applyUpstreamDefaults,
  fileDefaultsToFields,
  fileEntryToFields,
  hasAuthConflict,
  knownKeysAt,
  proxyConfigObjectSchema,
  proxyConfigSchema,
  relayConfigFileSchema,
  resolveUpstream,
  schemaAt,
  unwrapSchema,
  type ProxyConfig,
  type ResolvedRelayConfig,
  type ResolvedUpstreamConfig,
  type ValidatedRelayConfigFile,
} from './schema.js';

export type ConfigFormat = 'yaml' | 'json';

export interface ParseConfigOptions {
  /** How to read the text. Default `'auto'`: JSON when it starts with `{`, YAML otherwise. */
  format?: ConfigFormat | 'auto';
  /** Names the text in messages, usually its file path. Default `'config'`. */
  source?: string;
  /** Variables for `${NAME}` substitution. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Directory a relative `cwd` is resolved against. Default: left relative. */
  baseDir?: string;
}

export interface LoadConfigOptions {
  /** Variables for `${NAME}` substitution. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** One problem, before formatting. */
interface ConfigIssue {
  path: readonly PropertyKey[];
  /** What was expected; complete when `showValue` is false. */
  message: string;
  /** Append "got <value>": the value at `path`, or `value` when given. */
  showValue: boolean;
  value?: unknown;
}

// ---------------------------------------------------------------------------------------------
// Public entry points

/**
 * Reads a config file (YAML, or JSON for `.json`), substitutes `${ENV}` references, validates and
 * resolves it. A relative `cwd` is resolved against the file's directory.
 */
export async function loadConfigFile(path: string, options: LoadConfigOptions = {}): Promise<ResolvedRelayConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new RelayError(RelayErrorCode.InvalidConfig, `cannot read config file ${path}: ${reason}`, { cause: error });
  }
  const ext = extname(path).toLowerCase();
  const format = ext === '.json' ? 'json' : ext === '.yaml' || ext === '.yml' ? 'yaml' : 'auto';
  return parseConfigText(text, {
    format,
    source: path,
    baseDir: dirname(resolvePath(path)),
    ...(options.env === undefined ? {} : { env: options.env }),
  });
}

/** Parses, validates and resolves config text. Throws `RelayError(RELAY_INVALID_CONFIG)`. */
export function parseConfigText(text: string, options: ParseConfigOptions = {}): ResolvedRelayConfig {
  const source = options.source ?? 'config';
  const format = resolveFormat(text, options.format ?? 'auto');
  const parsed = format === 'json' ? parseJson(text) : parseYaml(text);
  if (!parsed.ok) {
    // After the first few, a parser's errors are mostly echoes of the first.
    const shown = parsed.errors
      .slice(0, 3)
      .map((e) => (e.line === undefined ? e.message : `line ${e.line}, column ${e.column}: ${e.message}`));
    const more = parsed.errors.length - shown.length;
    if (more > 0) shown.push(`(${more} more error${more === 1 ? '' : 's'} after these, probably caused by the first)`);
    throw invalid(`${source} is not valid ${format === 'json' ? 'JSON' : 'YAML'}`, shown);
  }

  const substitution = substituteEnv(parsed.value, options.env ?? process.env);
  const issues: ConfigIssue[] = [...substitution.issues, ...structuralIssues(substitution.value)];
  const result = relayConfigFileSchema.safeParse(substitution.value, { error: fallbackMessage });
  if (result.success && issues.length === 0) {
    const resolved = resolveRelayConfigFile(result.data, options.baseDir, issues);
    if (issues.length === 0) return resolved;
  }
  if (!result.success) {
    // A value whose ${VAR} failed is still the raw template; its own line already says why.
    const failed = new Set(substitution.issues.map((issue) => pathKey(issue.path)));
    const schemaIssues = fromZodIssues(result.error.issues, relayConfigFileSchema);
    issues.push(...schemaIssues.filter((issue) => !failed.has(pathKey(issue.path))));
  }
  throw invalid(`invalid configuration in ${source}`, formatIssues(issues, substitution.value, substitution.templates));
}

/**
 * Validates a {@link ProxyConfig} and applies the defaults. Throws `RelayError(RELAY_INVALID_CONFIG)`
 * naming every bad field.
 */
export function resolveProxyConfig(input: ProxyConfig): ResolvedUpstreamConfig {
  const result = proxyConfigSchema.safeParse(input, { error: fallbackMessage });
  if (result.success) return resolveUpstream(result.data);
  const label = configLabel(input);
  const issues = fromZodIssues(result.error.issues, proxyConfigObjectSchema);
  throw invalid(`invalid ProxyConfig${label}`, formatIssues(issues, input, new Map()));
}

function configLabel(input: unknown): string {
  if (typeof input !== 'object' || input === null) return '';
  const record = input as Record<string, unknown>;
  const label = [record.name, record.serverUrl, record.command].find((v) => typeof v === 'string');
  return typeof label === 'string' ? ` (${redactString(label)})` : '';
}

function invalid(headline: string, lines: readonly string[]): RelayError {
  const count = lines.length === 1 ? '1 problem' : `${lines.length} problems`;
  return new RelayError(
    RelayErrorCode.InvalidConfig,
    `${headline} (${count}):\n${lines.map((l) => `  ${oneLine(l)}`).join('\n')}`,
  );
}

/**
 * A problem stays on its line whatever the file held: a value or key with a line break or a Unicode
 * line separator (U+2028, U+2029; found by the config fuzz test) is shown escaped.
 */
function oneLine(line: string): string {
  return line.replace(/[\n\r\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

// ---------------------------------------------------------------------------------------------
// Resolution of a validated file

/** Checks that need the file as a whole; run on the raw value so they join the schema's issues. */
function structuralIssues(raw: unknown): ConfigIssue[] {
  if (!isPlainObject(raw)) return [];
  const upstreams = isPlainObject(raw.upstreams) ? raw.upstreams : {};
  const servers = isPlainObject(raw.mcpServers) ? raw.mcpServers : {};
  const issues: ConfigIssue[] = [];
  for (const name of Object.keys(servers)) {
    if (Object.hasOwn(upstreams, name)) {
      issues.push({
        path: ['mcpServers', name],
        message: `expected a name not already used under upstreams; "${name}" is defined in both`,
        showValue: false,
      });
    }
  }
  const enabled = [
    ...Object.values(upstreams),
    ...Object.values(servers).filter((entry) => !(isPlainObject(entry) && entry.disabled === true)),
  ];
  const declared = Object.keys(upstreams).length + Object.keys(servers).length;
  if (enabled.length === 0) {
    issues.push({
      path: [],
      message:
        declared === 0
          ? 'expected at least one upstream under upstreams or mcpServers, got none'
          : `expected at least one upstream that is not disabled, got ${declared} disabled`,
      showValue: false,
    });
  }
  return issues;
}

function resolveRelayConfigFile(
  file: ValidatedRelayConfigFile,
  baseDir: string | undefined,
  issues: ConfigIssue[],
): ResolvedRelayConfig {
  const defaults = fileDefaultsToFields(file.defaults);
  const upstreams: ResolvedUpstreamConfig[] = [];
  const sections = [
    ['upstreams', file.upstreams ?? {}],
    ['mcpServers', file.mcpServers ?? {}],
  ] as const;
  for (const [section, entries] of sections) {
    for (const [name, entry] of Object.entries(entries)) {
      if ('disabled' in entry && entry.disabled === true) continue;
      const fields = applyUpstreamDefaults(defaults, fileEntryToFields(entry));
      if (hasAuthConflict(fields)) {
        issues.push({
          path: [section, name, 'auth_token'],
          message: 'expected either auth_token or an Authorization header, not both (one of them comes from defaults)',
          showValue: false,
        });
        continue;
      }
      upstreams.push(resolveUpstream(fields, name, baseDir));
    }
  }
  const names = [...Object.keys(file.upstreams ?? {}), ...Object.keys(file.mcpServers ?? {})];
  for (const issue of accessIssues(file.auth, file.tenants, names)) issues.push({ ...issue, showValue: false });
  for (const issue of balanceGroupIssues(file.balance, names)) issues.push({ ...issue, showValue: false });
  return Object.freeze({
    upstreams: Object.freeze(upstreams),
    server: resolveServerSection(file.server),
    ...(file.auth === undefined ? {} : { auth: resolveAuthSection(file.auth, baseDir) }),
    ...(file.tenants === undefined ? {} : { tenants: resolveTenantsSection(file.tenants) }),
    ...(file.balance === undefined ? {} : { balance: resolveBalanceSection(file.balance) }),
    alerts: resolveAlertsSection(file.alerts),
    telemetry: resolveTelemetrySection(file.telemetry),
    ...(file.redis === undefined ? {} : { redis: resolveRedisSection(file.redis, DEFAULT_GATEWAY_REDIS_PREFIX) }),
  });
}

// ---------------------------------------------------------------------------------------------
// ${ENV} substitution

interface Substitution {
  value: unknown;
  issues: ConfigIssue[];
  /** The original text of each substituted string, by path key, for messages. */
  templates: Map<string, string>;
}

const REFERENCE_RE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([^]*))?$/;

/**
 * Replaces `${NAME}` and `${NAME:-default}` in every string value (not in keys): `:-` uses the
 * default when the variable is unset or empty, as a shell does; `$$` is a literal `$`. A string
 * that held a reference and sits where the schema wants a number or boolean is read as one, so
 * `connection_pool_size: ${POOL_SIZE:-10}` works.
 */
function substituteEnv(root: unknown, env: Readonly<Record<string, string | undefined>>): Substitution {
  const issues: ConfigIssue[] = [];
  const templates = new Map<string, string>();

  const visit = (value: unknown, path: PropertyKey[]): unknown => {
    if (typeof value === 'string') {
      if (!value.includes('$')) return value;
      const out = substituteString(value, env, path, issues);
      if (out === value) return value;
      templates.set(pathKey(path), value);
      return coerceScalar(out, path);
    }
    if (Array.isArray(value)) return value.map((item, index) => visit(item, [...path, index]));
    if (isPlainObject(value)) {
      const out: Record<string, unknown> = {};
      for (const [key, inner] of Object.entries(value)) defineOwn(out, key, visit(inner, [...path, key]));
      return out;
    }
    return value;
  };
  return { value: visit(root, []), issues, templates };
}

function substituteString(
  text: string,
  env: Readonly<Record<string, string | undefined>>,
  path: readonly PropertyKey[],
  issues: ConfigIssue[],
): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const char = text[i];
    const next = text[i + 1];
    if (char === '$' && next === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (char !== '$' || next !== '{') {
      out += char;
      i += 1;
      continue;
    }
    const end = text.indexOf('}', i + 2);
    if (end < 0) {
      issues.push({
        path,
        message: 'expected ${NAME} or ${NAME:-default} to end with "}" (write $$ for a literal $)',
        showValue: false,
      });
      return text;
    }
    const body = text.slice(i + 2, end);
    const match = REFERENCE_RE.exec(body);
    const name = match?.[1];
    const fallback = match?.[2];
    if (name === undefined || fallback?.includes('${') === true) {
      issues.push({
        path,
        message: `expected \${NAME} or \${NAME:-default} (a variable name of letters, digits and _; no nesting), got \${${body}}`,
        showValue: false,
      });
      return text;
    }
    const value = env[name];
    if (value !== undefined && !(value === '' && fallback !== undefined)) {
      out += value;
    } else if (fallback !== undefined) {
      out += fallback;
    } else {
      issues.push({
        path,
        message: `expected environment variable ${name} to be set (write \${${name}:-default} to give a default)`,
        showValue: false,
      });
      return text;
    }
    i = end + 1;
  }
  return out;
}

function coerceScalar(value: string, path: readonly PropertyKey[]): unknown {
  const schema = schemaAt(relayConfigFileSchema, path);
  if (schema === undefined) return value;
  const type = unwrapSchema(schema).type;
  if (type === 'number' && /^\s*-?\d+(\.\d+)?\s*$/.test(value)) return Number(value);
  if (type === 'boolean' && (value === 'true' || value === 'false')) return value === 'true';
  return value;
}

// ---------------------------------------------------------------------------------------------
// Turning issues into lines

/** Used by zod for issues whose schema has no message of its own. */
const fallbackMessage = (issue: z.core.$ZodRawIssue): string | undefined => {
  switch (issue.code) {
    case 'invalid_type': {
      const names: Record<string, string> = { object: 'an object', array: 'a list', int: 'an integer' };
      return `expected ${names[issue.expected] ?? `a ${issue.expected}`}`;
    }
    case 'too_small':
      return `expected at least ${String(issue.minimum)}`;
    case 'too_big':
      return `expected at most ${String(issue.maximum)}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return undefined;
  }
};

function fromZodIssues(zodIssues: readonly z.core.$ZodIssue[], root: z.core.$ZodType): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const issue of zodIssues) {
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeysAt(root, issue.path);
      for (const key of issue.keys) {
        const suggestion = suggestKey(key, known);
        const expectation = suggestion
          ? `did you mean ${suggestion}?`
          : `expected one of ${known.filter((k) => k !== '$schema').join(', ')}`;
        issues.push({ path: [...issue.path, key], message: `unknown key; ${expectation}`, showValue: false });
      }
    } else if (issue.code === 'invalid_key') {
      const key = issue.path.at(-1);
      const message = issue.issues[0]?.message ?? issue.message;
      issues.push({ path: issue.path, message, showValue: true, value: key });
    } else {
      const params = issue.code === 'custom' ? (issue.params as { noValue?: boolean } | undefined) : undefined;
      issues.push({ path: issue.path, message: issue.message, showValue: params?.noValue !== true });
    }
  }
  return issues;
}

function formatIssues(issues: readonly ConfigIssue[], data: unknown, templates: Map<string, string>): string[] {
  const lines = inDocumentOrder(issues, data).map((issue) => {
    const where = formatPath(issue.path);
    if (!issue.showValue) return `${where}: ${issue.message}`;
    const value = 'value' in issue ? issue.value : valueAt(data, issue.path);
    const template = templates.get(pathKey(issue.path));
    const secret = isSecretPath(issue.path);
    const from = template !== undefined && !secret ? ` (from ${JSON.stringify(template)})` : '';
    return `${where}: ${issue.message}, got ${secret ? '[redacted]' : renderValue(value)}${from}`;
  });
  return [...new Set(lines)];
}

/** Dotted, as the file spells it; keys that are not plain words in brackets. */
export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (typeof segment === 'string' && /^[\w$-]+$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out;
}

/** Sorts issues in the order their fields appear in the document (a stable sort). */
function inDocumentOrder(issues: readonly ConfigIssue[], data: unknown): ConfigIssue[] {
  const order = new Map<string, number>();
  const walk = (value: unknown, path: PropertyKey[]) => {
    order.set(pathKey(path), order.size);
    if (Array.isArray(value)) value.forEach((item, index) => walk(item, [...path, index]));
    else if (isPlainObject(value)) for (const [key, inner] of Object.entries(value)) walk(inner, [...path, key]);
  };
  walk(data, []);
  const rank = (path: readonly PropertyKey[]) => {
    // A missing field sorts with its nearest present ancestor, after that ancestor's own issues.
    for (let length = path.length; length >= 0; length--) {
      const found = order.get(pathKey(path.slice(0, length)));
      if (found !== undefined) return found + (length < path.length ? 0.5 : 0);
    }
    return Number.MAX_SAFE_INTEGER;
  };
  return issues
    .map((issue, index) => ({ issue, index, rank: rank(issue.path) }))
    .sort((a, b) => a.rank - b.rank || a.index - b.index)
    .map(({ issue }) => issue);
}

// ---------------------------------------------------------------------------------------------
// Redaction

/** Keys whose values are never printed: tokens, secrets, passwords, credentials, cookies. */
const SECRET_KEY_RE = /token|secret|passw(or)?d|authorization|api[-_]?key|cookie|credential/i;

function isSecretPath(path: readonly PropertyKey[]): boolean {
  return path.some(
    (segment, index) =>
      typeof segment === 'string' &&
      SECRET_KEY_RE.test(segment) &&
      // An upstream's name is not a field: "token-service" does not make all its values secret.
      !(index === 1 && (path[0] === 'upstreams' || path[0] === 'mcpServers')),
  );
}

/** Removes a password in a URL's user info, and query values whose names look secret. */
function redactString(text: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text) || !URL.canParse(text)) return text;
  const url = new URL(text);
  let changed = false;
  if (url.password !== '') {
    url.password = 'redacted';
    changed = true;
  }
  for (const key of [...url.searchParams.keys()]) {
    if (SECRET_KEY_RE.test(key)) {
      url.searchParams.set(key, 'redacted');
      changed = true;
    }
  }
  return changed ? url.href : text;
}

/** A value in a message: scalars as written, containers only by their shape (they may hold secrets). */
function renderValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') {
    const shown = redactString(value);
    return JSON.stringify(shown.length > 80 ? `${shown.slice(0, 77)}...` : shown);
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `a list of ${value.length} item${value.length === 1 ? '' : 's'}`;
  if (isPlainObject(value)) {
    const keys = Object.keys(value);
    if (keys.length === 0) return 'an empty map';
    const shown = keys.slice(0, 5).join(', ');
    return `a map with keys ${shown}${keys.length > 5 ? ', ...' : ''}`;
  }
  return typeof value;
}

// ---------------------------------------------------------------------------------------------
// Unknown-key suggestions

function normalizeKey(key: string): string {
  return key.replace(/[-_]/g, '').toLowerCase();
}

function suggestKey(key: string, known: readonly string[]): string | undefined {
  const wanted = normalizeKey(key);
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(wanted.length / 4));
  for (const candidate of known) {
    const distance = editDistance(wanted, normalizeKey(candidate));
    if (distance < bestDistance || (distance === 0 && best === undefined)) {
      best = candidate;
      bestDistance = distance;
    }
    if (distance === 0) return candidate;
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

// ---------------------------------------------------------------------------------------------
// Parsing text

interface SyntaxProblem {
  /** Where, when the problem has a place in the text (alias resolution problems have none). */
  line?: number;
  column?: number;
  message: string;
}

/**
 * Deepest nesting of maps and lists a config may have. Real configs stay under 8 levels; the limit
 * keeps a hostile file (100,000 nested lists) from overflowing the stack of the recursive steps
 * that follow parsing (substitution, validation) instead of getting a clear error.
 */
const MAX_CONFIG_DEPTH = 64;

type ParseResult = { ok: true; value: unknown } | { ok: false; errors: SyntaxProblem[] };

function resolveFormat(text: string, format: ConfigFormat | 'auto'): ConfigFormat {
  if (format !== 'auto') return format;
  return text
    .replace(/^\uFEFF/, '')
    .trimStart()
    .startsWith('{')
    ? 'json'
    : 'yaml';
}

function parseYaml(text: string): ParseResult {
  if (yamlNestingBound(text) > YAML_NESTING_LIMIT) {
    return { ok: false, errors: [{ message: `${tooDeepMessage()}; this text opens over ${YAML_NESTING_LIMIT}` }] };
  }
  const lineCounter = new YAML.LineCounter();
  // logLevel 'error': the parser's warnings (a map used as a key) would go to the process's warning
  // stream; such keys fail validation with a clearer message anyway.
  const doc = YAML.parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, logLevel: 'error' });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      errors: doc.errors.map((error) => {
        const { line, col } = lineCounter.linePos(error.pos[0]);
        return { line, column: col, message: error.message };
      }),
    };
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    // Aliases are resolved here, not by the parser: one whose anchor comes later, or one that expands
    // too far (a "billion laughs" file), throws a plain Error of the yaml library.
    return { ok: false, errors: [{ message: `cannot resolve aliases: ${(error as Error).message}` }] };
  }
  const tooDeep = depthProblem(value);
  return tooDeep === undefined ? { ok: true, value } : { ok: false, errors: [{ message: tooDeep }] };
}

/**
 * Nesting the yaml library is given at most. It recurses once per level and overflows the stack
 * somewhere past 800; after such an overflow V8 can abort the whole process on its next regular
 * expression compile ("RegExpCompiler Allocation failed", seen on Node 20 with a second deeply
 * nested file in the same process), so such text must never reach it.
 */
const YAML_NESTING_LIMIT = 256;

/**
 * An upper bound of a YAML text's nesting, from its indentation, its `- `, `? ` and `: ` markers
 * and its flow brackets outside quotes, found without parsing. It overcounts (a bracket in a plain
 * scalar), which is why its limit is far above {@link MAX_CONFIG_DEPTH}, the exact check after parsing.
 */
function yamlNestingBound(text: string): number {
  const indents: number[] = [];
  let flow = 0;
  let deepest = 0;
  for (const line of text.split('\n')) {
    let i = 0;
    while (line[i] === ' ') i++;
    if (i === line.length || line[i] === '#' || line[i] === '\r') continue;
    while (indents.length > 0 && indents[indents.length - 1]! >= i) indents.pop();
    indents.push(i);
    let depth = indents.length;
    let quote: string | undefined;
    for (; i < line.length; i++) {
      const char = line[i];
      if (quote !== undefined) {
        if (char === quote) quote = undefined;
      } else if (char === '"' || char === "'") quote = char;
      else if (char === '[' || char === '{') flow++;
      else if ((char === ']' || char === '}') && flow > 0) flow--;
      else if ((char === '-' || char === '?' || char === ':') && (i + 1 === line.length || line[i + 1] === ' '))
        depth++;
      else if (char === '#' && line[i - 1] === ' ') break;
      if (depth + flow > deepest) deepest = depth + flow;
    }
    if (depth + flow > deepest) deepest = depth + flow;
  }
  return deepest;
}

/** Why a parsed value is nested too deeply to be a config, or undefined. Iterative: no recursion to overflow. */
function depthProblem(root: unknown): string | undefined {
  const stack: { value: unknown; depth: number }[] = [{ value: root, depth: 0 }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    if (typeof item.value !== 'object' || item.value === null) continue;
    if (item.depth >= MAX_CONFIG_DEPTH) return tooDeepMessage();
    for (const inner of Object.values(item.value)) stack.push({ value: inner, depth: item.depth + 1 });
  }
  return undefined;
}

function tooDeepMessage(): string {
  return `expected maps and lists nested at most ${MAX_CONFIG_DEPTH} levels deep`;
}

/**
 * A strict JSON parser, because `JSON.parse` on Node 20 often gives no position, and silently keeps
 * the last of two equal keys (two servers of the same name) where a config must fail.
 */
function parseJson(text: string): ParseResult {
  const src = text.replace(/^\uFEFF/, '');
  let pos = 0;

  class JsonError extends Error {
    readonly at: number;
    constructor(message: string, at: number) {
      super(message);
      this.at = at;
    }
  }
  const describe = (at: number) => (at >= src.length ? 'end of input' : JSON.stringify(src[at]));
  const skipSpace = () => {
    while (pos < src.length && ' \t\n\r'.includes(src[pos] ?? '')) pos++;
  };
  const expect = (char: string) => {
    skipSpace();
    if (src[pos] !== char) throw new JsonError(`expected "${char}", got ${describe(pos)}`, pos);
    pos++;
  };
  // JSON forbids raw control characters inside strings (RFC 8259 §7).
  // eslint-disable-next-line no-control-regex
  const stringRe = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
  const numberRe = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const readString = (): string => {
    stringRe.lastIndex = pos;
    const match = stringRe.exec(src);
    if (match === null)
      throw new JsonError('invalid string (unterminated, a raw control character or a bad escape)', pos);
    pos = stringRe.lastIndex;
    return JSON.parse(match[0]) as string;
  };
  const readValue = (depth: number): unknown => {
    skipSpace();
    const char = src[pos];
    if ((char === '{' || char === '[') && depth >= MAX_CONFIG_DEPTH) throw new JsonError(tooDeepMessage(), pos);
    if (char === '{') {
      pos++;
      const out: Record<string, unknown> = {};
      skipSpace();
      if (src[pos] === '}') {
        pos++;
        return out;
      }
      for (;;) {
        skipSpace();
        if (src[pos] !== '"') throw new JsonError(`expected a key in double quotes, got ${describe(pos)}`, pos);
        const keyAt = pos;
        const key = readString();
        if (Object.hasOwn(out, key)) throw new JsonError(`duplicate key ${JSON.stringify(key)}`, keyAt);
        expect(':');
        defineOwn(out, key, readValue(depth + 1));
        skipSpace();
        if (src[pos] === ',') {
          pos++;
          continue;
        }
        expect('}');
        return out;
      }
    }
    if (char === '[') {
      pos++;
      const out: unknown[] = [];
      skipSpace();
      if (src[pos] === ']') {
        pos++;
        return out;
      }
      for (;;) {
        out.push(readValue(depth + 1));
        skipSpace();
        if (src[pos] === ',') {
          pos++;
          continue;
        }
        expect(']');
        return out;
      }
    }
    if (char === '"') return readString();
    for (const [word, value] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (src.startsWith(word, pos)) {
        pos += word.length;
        return value;
      }
    }
    numberRe.lastIndex = pos;
    const number = numberRe.exec(src);
    if (number !== null) {
      pos = numberRe.lastIndex;
      return Number(number[0]);
    }
    throw new JsonError(`expected a value, got ${describe(pos)}`, pos);
  };

  try {
    const value = readValue(0);
    skipSpace();
    if (pos < src.length) throw new JsonError(`expected end of input, got ${describe(pos)}`, pos);
    return { ok: true, value };
  } catch (error) {
    if (!(error instanceof JsonError)) throw error;
    const before = src.slice(0, error.at);
    const line = before.split('\n').length;
    const column = error.at - before.lastIndexOf('\n');
    return { ok: false, errors: [{ line, column, message: error.message }] };
  }
}

// ---------------------------------------------------------------------------------------------
// Small helpers

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Sets an own property even for `__proto__`, which plain assignment would treat as the prototype. */
function defineOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function pathKey(path: readonly PropertyKey[]): string {
  return JSON.stringify(path.map((segment) => (typeof segment === 'symbol' ? String(segment) : segment)));
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let current = data;
  for (const segment of path) {
    if (Array.isArray(current) && typeof segment === 'number') current = current[segment];
    else if (isPlainObject(current) && typeof segment === 'string' && Object.hasOwn(current, segment)) {
      current = current[segment];
    } else return undefined;
  }
  return current;
}
