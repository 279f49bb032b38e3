import * as z from 'zod';
import { duration, MAX_TIMER_MS } from './duration.js';

const expectedPort = 'expected a port number from 0 to 65535 (0 picks a free port)';

/** Shortest session secret accepted: 32 characters, as for an HS256 key. */
export const MIN_SESSION_SECRET_LENGTH = 32;

/**
 * `server.sessions`: the legacy (2025, sessionful) sessions. Their ids are sealed (HMAC-signed),
 * so any replica holding the same secret can take a session over; see `gateway/sessions.ts`.
 * DELETEs reach every replica through the top-level `redis:` section, when there is one.
 */
export const sessionsSectionSchema = z.strictObject(
  {
    secret: z
      .string({ error: `expected a secret of at least ${MIN_SESSION_SECRET_LENGTH} characters` })
      .min(MIN_SESSION_SECRET_LENGTH, {
        error: `expected a secret of at least ${MIN_SESSION_SECRET_LENGTH} characters`,
      })
      .optional()
      .meta({
        description: `Key that signs session ids (HMAC-SHA256), at least ${MIN_SESSION_SECRET_LENGTH} characters; write it as \${MCP_RELAY_SESSION_SECRET} rather than in the file. Every replica behind one load balancer must share it: then a session opened on one replica continues on any other. Without it each process draws a random key at start, so its sessions are valid on that process only (one replica, or sticky routing by Mcp-Session-Id). Never logged.`,
      }),
    max_age: duration({ minMs: 1_000, maxMs: Number.MAX_SAFE_INTEGER }).optional().meta({
      description:
        'Absolute lifetime of a session from its initialize, however busy it is: after it every replica answers 404 and the client opens a new session. Default 24h.',
      unit: 's, or ms/s/m/h',
    }),
    idle_timeout: duration({ minMs: 1_000, maxMs: MAX_TIMER_MS }).optional().meta({
      description:
        "A session unused this long is dropped from this process's memory (each replica sweeps its own). With a shared secret the id stays valid until max_age: its next request, on any replica, takes it up again. Default 30m.",
      unit: 's, or ms/s/m/h',
    }),
  },
  { error: 'expected a map of session settings (secret, max_age, idle_timeout)' },
);

/**
 * The `server:` section: where and how the gateway listens. Keys as in the file (snake_case).
 * Command-line flags override it; it overrides the defaults.
 */
export const serverSectionSchema = z.strictObject(
  {
    host: z
      .string({ error: 'expected a host name or IP address' })
      .min(1, { error: 'expected a host name or IP address' })
      .optional()
      .meta({
        description: 'Address to bind. Default 127.0.0.1: only this machine can connect unless you say otherwise.',
      }),
    port: z
      .int({ error: expectedPort })
      .min(0, { error: expectedPort })
      .max(65535, { error: expectedPort })
      .optional()
      .meta({ description: 'TCP port. Default 8080; 0 picks a free port (the address is printed on start).' }),
    max_body_bytes: z
      .int({ error: 'expected an integer of at least 1024' })
      .min(1024, { error: 'expected an integer of at least 1024' })
      .optional()
      .meta({
        description:
          'Largest request body accepted, in bytes; larger ones get a JSON-RPC error. Default 4194304 (4 MiB).',
        unit: 'bytes',
      }),
    headers_timeout: duration({ minMs: 100, maxMs: MAX_TIMER_MS }).optional().meta({
      description:
        'How long a client may take to send the request line and headers; a slower one (slow loris) is answered 408 and cut off. Default 10 s.',
      default: 10,
    }),
    request_timeout: duration({ minMs: 100, maxMs: MAX_TIMER_MS }).optional().meta({
      description:
        'How long a client may take to send a whole request, body included (not the answer: long calls and streams are unaffected). At least headers_timeout. Default 30 s.',
      default: 30,
    }),
    drain_delay: duration({ minMs: 0, maxMs: MAX_TIMER_MS }).optional().meta({
      description:
        "On SIGTERM, how long the gateway keeps serving with /readyz answering 503 before it stops accepting connections, so that a load balancer polling /readyz takes it out of rotation first. Set it to your balancer's health-check interval times its failure threshold. Default 0.",
      default: 0,
    }),
    drain_timeout: duration({ minMs: 0, maxMs: MAX_TIMER_MS }).optional().meta({
      description:
        'On SIGTERM, after the listener closes, how long calls in flight may run to completion before their connections are cut and the upstreams closed. Default 10 s.',
      default: 10,
    }),
    allowed_origins: z
      .array(z.url({ error: 'expected an origin such as https://app.example.com' }), {
        error: 'expected a list of origins',
      })
      .optional()
      .meta({ description: 'Browser origins allowed besides loopback ones (DNS-rebinding protection). Default none.' }),
    namespacing: z.enum(['on_collision', 'always'], { error: "expected 'on_collision' or 'always'" }).optional().meta({
      description:
        "Prefix tool and prompt names with their upstream's name (upstream__tool) only where two upstreams collide, or always. Default on_collision.",
    }),
    page_size: z
      .int({ error: 'expected an integer from 1 to 10000' })
      .min(1, { error: 'expected an integer from 1 to 10000' })
      .max(10000, { error: 'expected an integer from 1 to 10000' })
      .optional()
      .meta({ description: 'Items per page of the aggregated lists the gateway answers. Default 500.' }),
    sessions: sessionsSectionSchema.optional().meta({
      description:
        'Legacy (2025-06-18 / 2025-11-25) sessions: the secret that lets every replica serve any session, their lifetime and idle timeout. With the top-level redis section a DELETE reaches every replica; without it a DELETE ends a session on the replica that received it only (the id stays valid elsewhere until max_age).',
    }),
  },
  { error: 'expected a map of server settings (host, port, ...)' },
);

export type ServerSection = z.output<typeof serverSectionSchema>;

/** The `server:` section resolved, with the defaults applied. */
export interface ResolvedServerConfig {
  readonly host: string;
  readonly port: number;
  readonly maxBodyBytes: number;
  readonly allowedOrigins: readonly string[];
  readonly namespacing: 'on_collision' | 'always';
  readonly pageSize: number;
  readonly sessions: ResolvedSessionsConfig;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  /** On SIGTERM: serving with /readyz false before the listener closes, in ms. */
  readonly drainDelayMs: number;
  /** On SIGTERM: the longest wait for calls in flight, in ms. */
  readonly drainTimeoutMs: number;
}

/** `server.sessions` resolved, defaults applied. */
export interface ResolvedSessionsConfig {
  /** Signs session ids; absent: a random key per process (its sessions are valid on it alone). */
  readonly secret?: string | undefined;
  /** Absolute lifetime of a session, in ms. */
  readonly maxAgeMs: number;
  /** A session unused this long leaves this process's memory, in ms. */
  readonly idleMs: number;
}

export const SESSIONS_DEFAULTS: ResolvedSessionsConfig = Object.freeze({
  maxAgeMs: 24 * 3_600_000,
  idleMs: 30 * 60_000,
});

export const SERVER_DEFAULTS: ResolvedServerConfig = Object.freeze({
  host: '127.0.0.1',
  port: 8080,
  maxBodyBytes: 4 * 1024 * 1024,
  allowedOrigins: Object.freeze([]),
  namespacing: 'on_collision',
  pageSize: 500,
  sessions: SESSIONS_DEFAULTS,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  drainDelayMs: 0,
  drainTimeoutMs: 10_000,
});

export function resolveServerSection(section: ServerSection | undefined): ResolvedServerConfig {
  return Object.freeze({
    host: section?.host ?? SERVER_DEFAULTS.host,
    port: section?.port ?? SERVER_DEFAULTS.port,
    maxBodyBytes: section?.max_body_bytes ?? SERVER_DEFAULTS.maxBodyBytes,
    allowedOrigins: Object.freeze([...(section?.allowed_origins ?? [])]),
    namespacing: section?.namespacing ?? SERVER_DEFAULTS.namespacing,
    pageSize: section?.page_size ?? SERVER_DEFAULTS.pageSize,
    sessions: resolveSessionsSection(section?.sessions),
    headersTimeoutMs: section?.headers_timeout ?? SERVER_DEFAULTS.headersTimeoutMs,
    requestTimeoutMs: section?.request_timeout ?? SERVER_DEFAULTS.requestTimeoutMs,
    drainDelayMs: section?.drain_delay ?? SERVER_DEFAULTS.drainDelayMs,
    drainTimeoutMs: section?.drain_timeout ?? SERVER_DEFAULTS.drainTimeoutMs,
  });
}

function resolveSessionsSection(section: ServerSection['sessions']): ResolvedSessionsConfig {
  if (section === undefined) return SESSIONS_DEFAULTS;
  return Object.freeze({
    ...(section.secret === undefined ? {} : { secret: section.secret }),
    maxAgeMs: section.max_age ?? SESSIONS_DEFAULTS.maxAgeMs,
    idleMs: section.idle_timeout ?? SESSIONS_DEFAULTS.idleMs,
  });
}
