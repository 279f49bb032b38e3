import type { Implementation, JSONRPCNotification, ServerCapabilities } from '@modelcontextprotocol/client';

/** The MCP revision this relay speaks when the upstream supports it: stateless, no `initialize`. */
export const MODERN_PROTOCOL_VERSION = '2026-07-28';

/** Which revision to speak: negotiate (`auto`), insist on 2026-07-28, or speak only the sessionful 2025 ones. */
export type ProtocolPreference = 'auto' | 'modern' | 'legacy';

export type UpstreamTransport =
  | {
      kind: 'http';
      /** The Streamable HTTP endpoint, e.g. `http://127.0.0.1:4100/mcp`. */
      url: string;
      /** Sent on every request. */
      headers: Readonly<Record<string, string>>;
      /** Sent as `Authorization: Bearer <token>`. */
      authToken?: string | undefined;
    }
  | {
      kind: 'stdio';
      command: string;
      args: readonly string[];
      /** Merged over a minimal inherited environment (PATH, HOME, ...). */
      env: Readonly<Record<string, string>>;
      cwd?: string | undefined;
    };

/** What one upstream connection needs; a resolved upstream config satisfies it. */
export interface UpstreamOptions {
  /** Names the upstream in errors, metrics and logs. */
  name: string;
  transport: UpstreamTransport;
  /** HTTP: undici connections. stdio: concurrent in-flight requests across all processes. */
  connectionPoolSize: number;
  /** stdio only: how many child processes share the load. Default 1. */
  processes?: number | undefined;
  /** Default deadline of a call, in ms. Reset by each progress notification. */
  timeoutMs: number;
  /** A response larger than this fails with `RELAY_RESPONSE_TOO_LARGE`, in bytes. */
  maxResponseBytes: number;
  protocol: ProtocolPreference;
  /** How long a caller may wait for a free slot when the pool is busy, in ms. Default: the call's deadline. */
  queueTimeoutMs?: number | undefined;
  /** How many callers may wait for a free slot. Default: the larger of 1000 and 10 × the pool size. */
  maxQueue?: number | undefined;
  /** The client identity announced upstream. */
  clientInfo?: Implementation | undefined;
}

/** Resolves with the JSON-RPC result for a server-to-client request, or rejects with an error to send back. */
export type ServerRequestHandler = (method: string, params: Record<string, unknown> | undefined) => Promise<unknown>;

export interface ProgressUpdate {
  progress: number;
  total?: number | undefined;
  message?: string | undefined;
}

export interface CallOptions {
  signal?: AbortSignal | undefined;
  /** Overrides the upstream's default deadline, in ms. */
  timeoutMs?: number | undefined;
  /**
   * The most this call may take in total, in ms, however often progress resets its deadline
   * (`max_total_timeout`). Default: no cap beyond the deadline itself.
   */
  maxTotalMs?: number | undefined;
  /** Receives the upstream's progress notifications; also resets the deadline. */
  onProgress?: ((update: ProgressUpdate) => void) | undefined;
  /** Extra `_meta` entries passed upstream unchanged (e.g. `traceparent`). */
  meta?: Readonly<Record<string, unknown>> | undefined;
  /**
   * HTTP only: headers for this call, over the upstream's own (names compared case-insensitively),
   * e.g. a gateway caller's `authorization` under `forward_auth`. Ignored by stdio upstreams.
   */
  headers?: Readonly<Record<string, string>> | undefined;
  /**
   * Answers a request the server sends back while this call runs (2025 push model: sampling,
   * elicitation, roots). Without it the SDK client's own handlers answer (method not found).
   */
  onServerRequest?: ServerRequestHandler | undefined;
  /**
   * HTTP only: receives the params of the log messages (`notifications/message`) the server sends
   * on this call's own stream, which then go to nobody else (they concern this call's caller).
   * Without it they go to the {@link Upstream.onNotification} listeners like any other.
   */
  onLog?: ((params: Record<string, unknown>) => void) | undefined;
}

export interface UpstreamInfo {
  protocolVersion: string;
  era: 'modern' | 'legacy';
  serverInfo: Implementation | undefined;
  capabilities: ServerCapabilities | undefined;
  instructions?: string | undefined;
}

export type NotificationListener = (notification: JSONRPCNotification) => void;

/** Change notifications to ask an upstream for (the 2026-07-28 `SubscriptionFilter`). */
export interface ChangeSubscription {
  toolsListChanged?: boolean | undefined;
  promptsListChanged?: boolean | undefined;
  resourcesListChanged?: boolean | undefined;
  /** Resource URIs whose `notifications/resources/updated` should arrive. */
  resourceSubscriptions?: readonly string[] | undefined;
}

/** One connection (an HTTP pool or a pool of child processes) to one MCP server. */
export interface Upstream extends AsyncDisposable {
  readonly name: string;
  /** Connects (negotiates the revision) if not yet connected; concurrent callers share one attempt. */
  connect(signal?: AbortSignal): Promise<UpstreamInfo>;
  /** The negotiated facts, once connected. */
  readonly info: UpstreamInfo | undefined;
  /**
   * Sends one JSON-RPC request and resolves with its `result`. A JSON-RPC error answer rejects with
   * `RELAY_UPSTREAM_ERROR` carrying the upstream's code and data.
   */
  request(method: string, params: Record<string, unknown> | undefined, options?: CallOptions): Promise<unknown>;
  /** Server-to-client notifications that are not progress for a call (list changes, resource updates, logs). */
  onNotification(listener: NotificationListener): () => void;
  /**
   * Asks the server to send these change notifications to the {@link onNotification} listeners.
   * Requests accumulate: what was asked once stays asked, also across reconnects and respawns.
   * 2026-07-28: one `subscriptions/listen` stream with the union (re-opened when it grows);
   * 2025: list changes arrive unsolicited and each new URI gets a `resources/subscribe`.
   * Connects if needed; resolves once the server acknowledged.
   */
  subscribe(subscription: ChangeSubscription): Promise<void>;
  /** In-flight calls and waiting callers, for pool metrics and admission. */
  readonly load: { inFlight: number; queued: number; capacity: number };
  /** Ends every call, closes sockets, kills child processes, clears timers. Idempotent. */
  close(): Promise<void>;
}
