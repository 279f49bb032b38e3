import {
  CLIENT_CAPABILITIES_META_KEY,
  CLIENT_INFO_META_KEY,
  PROTOCOL_VERSION_META_KEY,
  type Implementation,
} from '@modelcontextprotocol/client';
import { RelayError, RelayErrorCode } from '../errors/index.js';
import { MODERN_PROTOCOL_VERSION, type CallOptions, type ProgressUpdate } from './types.js';

export const DEFAULT_CLIENT_INFO: Implementation = { name: 'mcp-relay', version: '0.1.0' };

/** The per-request envelope every 2026-07-28 request carries in `params._meta`. */
export function modernEnvelope(clientInfo: Implementation): Record<string, unknown> {
  return {
    [PROTOCOL_VERSION_META_KEY]: MODERN_PROTOCOL_VERSION,
    [CLIENT_INFO_META_KEY]: clientInfo,
    [CLIENT_CAPABILITIES_META_KEY]: {},
  };
}

/**
 * Builds the params actually sent: the caller's params with `_meta` extended by the era's envelope,
 * the relay's own progress token and any pass-through entries. The caller's object is not mutated.
 */
export function outgoingParams(
  params: Record<string, unknown> | undefined,
  envelope: Record<string, unknown> | undefined,
  progressToken: number | undefined,
  extraMeta: CallOptions['meta'],
): Record<string, unknown> | undefined {
  if (envelope === undefined && progressToken === undefined && extraMeta === undefined) return params;
  const callerMeta = params?.['_meta'] as Record<string, unknown> | undefined;
  const meta: Record<string, unknown> = { ...envelope, ...extraMeta, ...callerMeta };
  if (progressToken !== undefined) meta['progressToken'] = progressToken;
  return { ...params, _meta: meta };
}

/** The `Mcp-Name` header value of the 2026-07-28 HTTP binding: the tool/prompt name or resource URI. */
export function mcpName(method: string, params: Record<string, unknown> | undefined): string | undefined {
  if (params === undefined) return undefined;
  switch (method) {
    case 'tools/call':
    case 'prompts/get':
      return typeof params['name'] === 'string' ? params['name'] : undefined;
    case 'resources/read':
    case 'resources/subscribe':
    case 'resources/unsubscribe':
      return typeof params['uri'] === 'string' ? params['uri'] : undefined;
    default:
      return undefined;
  }
}

interface JsonRpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

export function isJsonRpcErrorObject(value: unknown): value is JsonRpcErrorObject {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as JsonRpcErrorObject).code === 'number' &&
    typeof (value as JsonRpcErrorObject).message === 'string'
  );
}

export function upstreamRpcError(upstream: string, method: string, error: JsonRpcErrorObject): RelayError {
  return new RelayError(
    RelayErrorCode.UpstreamError,
    `upstream '${upstream}' answered ${method} with JSON-RPC error ${error.code}: ${error.message}`,
    { upstream, rpcCode: error.code, rpcData: error.data },
  );
}

export function progressFromParams(params: Record<string, unknown>): ProgressUpdate {
  return {
    progress: typeof params['progress'] === 'number' ? params['progress'] : 0,
    total: typeof params['total'] === 'number' ? params['total'] : undefined,
    message: typeof params['message'] === 'string' ? params['message'] : undefined,
  };
}
