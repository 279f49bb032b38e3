/**
 * Every failure mcp-relay raises is a {@link RelayError} with a stable `code`. Callers branch on
 * `code`, never on message text (the undici convention: `UND_ERR_CONNECT_TIMEOUT`). A tool's own
 * failure (`isError: true`) is a result, not an exception, and never becomes one of these.
 */

/** The stable codes. Adding one is a minor change; renaming one is a breaking change. */
export const RelayErrorCode = {
  /** A configuration value is missing, of the wrong type or out of range. */
  InvalidConfig: 'RELAY_INVALID_CONFIG',
  /** The call did not finish before its deadline. */
  Timeout: 'RELAY_TIMEOUT',
  /** The caller aborted the call through its `AbortSignal`. */
  Aborted: 'RELAY_ABORTED',
  /** The upstream could not be reached, or its connection or process died mid-call. */
  UpstreamUnavailable: 'RELAY_UPSTREAM_UNAVAILABLE',
  /** The upstream answered with something that is not valid MCP / JSON-RPC. */
  UpstreamProtocol: 'RELAY_UPSTREAM_PROTOCOL',
  /** The upstream answered the request with a JSON-RPC error object. */
  UpstreamError: 'RELAY_UPSTREAM_ERROR',
  /** The upstream's response is larger than the configured limit. */
  ResponseTooLarge: 'RELAY_RESPONSE_TOO_LARGE',
  /** Every connection is busy and the wait queue is full or the wait timed out. */
  PoolExhausted: 'RELAY_POOL_EXHAUSTED',
  /** The component was closed; no further calls are accepted. */
  Closed: 'RELAY_CLOSED',
  /** No upstream offers the requested tool, resource or prompt. */
  NotFound: 'RELAY_NOT_FOUND',
  /** The gateway could not establish who is calling: no, malformed, invalid or expired credentials (HTTP 401). */
  Unauthenticated: 'RELAY_UNAUTHENTICATED',
  /** The caller is known but not admitted: its tenant is not configured, or it may not use this (HTTP 403). */
  Forbidden: 'RELAY_FORBIDDEN',
  /** The caller's tenant already has `max_concurrent` requests in flight. */
  QuotaExceeded: 'RELAY_QUOTA_EXCEEDED',
  /** The caller's tenant exceeded its `rate_limit`; `retryAfterMs` says when a request will be admitted. */
  RateLimited: 'RELAY_RATE_LIMITED',
} as const;
export type RelayErrorCode = (typeof RelayErrorCode)[keyof typeof RelayErrorCode];

export interface RelayErrorOptions {
  cause?: unknown;
  /** The upstream the error concerns, when there is one. */
  upstream?: string;
  /** For {@link RelayErrorCode.UpstreamError}: the JSON-RPC error code and data, passed through unchanged. */
  rpcCode?: number;
  rpcData?: unknown;
  /**
   * Whether the request surely never reached the upstream's handler (refused connection, queue
   * timeout, session unknown). Only such failures may be retried for tools with side effects.
   */
  notSent?: boolean;
  /**
   * How long the upstream asked callers to wait before trying it again (its `Retry-After` on a 503
   * or 429), in ms.
   */
  retryAfterMs?: number;
}

export class RelayError extends Error {
  override readonly name = 'RelayError';
  readonly code: RelayErrorCode;
  readonly upstream: string | undefined;
  readonly rpcCode: number | undefined;
  readonly rpcData: unknown;
  readonly notSent: boolean;
  readonly retryAfterMs: number | undefined;

  constructor(code: RelayErrorCode, message: string, options: RelayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.upstream = options.upstream;
    this.rpcCode = options.rpcCode;
    this.rpcData = options.rpcData;
    this.notSent = options.notSent ?? false;
    this.retryAfterMs = options.retryAfterMs;
  }
}

export function isRelayError(value: unknown, code?: RelayErrorCode): value is RelayError {
  return value instanceof RelayError && (code === undefined || value.code === code);
}
