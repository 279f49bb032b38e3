import { isRelayError, RelayErrorCode } from '../errors/index.js';

/** JSON-RPC 2.0 and MCP error codes the gateway answers with. */
export const RpcCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** The SDK's request-timeout code. */
  RequestTimeout: -32001,
  /** The relay refused the call: quota, rate limit or access (data.relayCode says which). */
  Refused: -32003,
} as const;

export type JsonRpcId = string | number | null;

/** An error that becomes a JSON-RPC error response. Handlers throw it; the transports serialize it. */
export class RpcError extends Error {
  readonly code: number;
  readonly data: unknown;

  constructor(code: number, message: string, data?: unknown) {
    super(message);
    this.code = code;
    this.data = data;
  }

  toJSON(): { code: number; message: string; data?: unknown } {
    return this.data === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, data: this.data };
  }
}

/**
 * Maps any failure to the JSON-RPC error a caller sees. An upstream's own JSON-RPC error passes
 * through unchanged; the relay's failures keep their stable code in `data.relayCode`.
 */
export function toRpcError(error: unknown): RpcError {
  if (error instanceof RpcError) return error;
  if (isRelayError(error)) {
    if (error.code === RelayErrorCode.UpstreamError && error.rpcCode !== undefined) {
      const upstreamMessage = /JSON-RPC error -?\d+: (.*)$/s.exec(error.message)?.[1] ?? error.message;
      return new RpcError(error.rpcCode, upstreamMessage, error.rpcData);
    }
    const data = { relayCode: error.code, ...(error.upstream ? { upstream: error.upstream } : {}) };
    switch (error.code) {
      case RelayErrorCode.Timeout:
        return new RpcError(RpcCode.RequestTimeout, error.message, data);
      case RelayErrorCode.NotFound:
        return new RpcError(RpcCode.InvalidParams, error.message, data);
      default:
        return new RpcError(RpcCode.InternalError, error.message, data);
    }
  }
  return new RpcError(RpcCode.InternalError, 'internal error', { relayCode: 'RELAY_INTERNAL' });
}

export function resultResponse(id: JsonRpcId, result: unknown): string {
  return `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":${serialized(result)}}`;
}

/**
 * JSON of a result. A frozen result is a cache entry shared by every caller and can never change,
 * so its JSON is computed once and its bytes reused for every hit (DESIGN: the gateway writes the
 * stored serialization, it does not re-serialize).
 */
function serialized(result: unknown): string {
  if (typeof result !== 'object' || result === null || !Object.isFrozen(result)) return JSON.stringify(result);
  let json = SERIALIZED.get(result);
  if (json === undefined) {
    json = JSON.stringify(result);
    SERIALIZED.set(result, json);
  }
  return json;
}

const SERIALIZED = new WeakMap<object, string>();

export function errorResponse(id: JsonRpcId, error: RpcError): string {
  return `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"error":${JSON.stringify(error.toJSON())}}`;
}

export function notificationMessage(method: string, params?: unknown): string {
  return params === undefined
    ? `{"jsonrpc":"2.0","method":${JSON.stringify(method)}}`
    : `{"jsonrpc":"2.0","method":${JSON.stringify(method)},"params":${JSON.stringify(params)}}`;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
