/**
 * pino JSON logs. Secrets are removed twice: by key (pino's `redact` on header names, tokens and
 * keys wherever they sit in a logged object) and by value (every configured secret — auth tokens,
 * API keys, the values of secret headers — is replaced in the final line, so a secret quoted in an
 * upstream's error message does not leak either).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';

import { pino, type DestinationStream, type Level, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Header names whose values are never logged, besides those configured. */
export const DEFAULT_SECRET_HEADERS: readonly string[] = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
];

/** Object keys whose values are never logged, wherever they appear (one or two levels down). */
const SECRET_KEYS = ['authToken', 'auth_token', 'token', 'apiKey', 'api_key', 'password', 'secret', 'clientSecret'];

/** What replaces a secret. */
export const REDACTED = '[REDACTED]';

export interface LoggerOptions {
  /** Default `info`; `silent` logs nothing. */
  level?: Level | 'silent' | undefined;
  /** Where lines go. Default standard error: standard output may carry JSON-RPC (`mcp-relay stdio`). */
  destination?: DestinationStream | NodeJS.WritableStream | undefined;
  /** Header names (any case) whose values are redacted, added to {@link DEFAULT_SECRET_HEADERS}. */
  secretHeaders?: readonly string[] | undefined;
  /** Literal values to remove from every line (tokens, keys). Values shorter than 4 characters are ignored. */
  secrets?: readonly string[] | undefined;
  /** Fields on every line. Default `{ name: 'mcp-relay' }`. */
  base?: Record<string, unknown> | undefined;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const headers = [
    ...new Set([...DEFAULT_SECRET_HEADERS, ...(options.secretHeaders ?? [])].map((h) => h.toLowerCase())),
  ];
  const paths: string[] = [];
  for (const header of headers) {
    const key = `[${JSON.stringify(header)}]`;
    paths.push(`headers${key}`, `*.headers${key}`, `*.*.headers${key}`);
  }
  for (const key of SECRET_KEYS) paths.push(key, `*.${key}`, `*.*.${key}`);
  const scrub = scrubber(options.secrets ?? []);
  return pino(
    {
      level: options.level ?? 'info',
      base: options.base ?? { name: 'mcp-relay' },
      redact: { paths, censor: REDACTED },
      ...(scrub === undefined ? {} : { hooks: { streamWrite: scrub } }),
    },
    options.destination ?? pino.destination({ dest: 2, sync: false }),
  );
}

/** Replaces each secret value in a line; undefined when there are none. */
function scrubber(secrets: readonly string[]): ((line: string) => string) | undefined {
  const values = [...new Set(secrets.filter((s) => typeof s === 'string' && s.length >= 4))];
  if (values.length === 0) return undefined;
  // Longest first, so a secret that contains another is replaced whole. Also their JSON-escaped
  // forms: a secret with a quote or backslash appears escaped in the line.
  const forms = [...new Set(values.flatMap((v) => [v, JSON.stringify(v).slice(1, -1)]))].sort(
    (a, b) => b.length - a.length,
  );
  return (line) => {
    let out = line;
    for (const form of forms) if (out.includes(form)) out = out.split(form).join(REDACTED);
    return out;
  };
}

/** The request a log line belongs to: the gateway runs each request inside it. */
export const requestContext = new AsyncLocalStorage<{ requestId: string }>();

let sequence = 0;
const prefix = randomUUID().slice(0, 8);

/** A request id: the caller's `x-request-id` when it is sane, else a new one (`<process>-<n>`). */
export function requestIdFrom(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  if (value !== undefined && /^[\w.:-]{1,128}$/.test(value)) return value;
  return `${prefix}-${(++sequence).toString(36)}`;
}
