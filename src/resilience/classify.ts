import { isRelayError, RelayErrorCode } from '../errors/index.js';

/**
 * What one attempt says about the upstream that served it. `Success`: it answered (a tool's
 * `isError` result and a JSON-RPC error object are answers). `Failure`: the transport failed or the
 * deadline passed. `Neutral`: nothing is known about the upstream (the caller aborted, the local
 * pool was full, the relay was closed, the answer was over our size limit).
 */
export const Outcome = { Success: 0, Failure: 1, Neutral: 2 } as const;
export type Outcome = (typeof Outcome)[keyof typeof Outcome];

/** Classifies a failed attempt's error for breakers, outlier ejection and latency tracking. */
export function outcomeOf(error: unknown): Outcome {
  if (!isRelayError(error)) return Outcome.Failure;
  switch (error.code) {
    case RelayErrorCode.Timeout:
    case RelayErrorCode.UpstreamUnavailable:
    case RelayErrorCode.UpstreamProtocol:
      return Outcome.Failure;
    case RelayErrorCode.UpstreamError:
      return Outcome.Success;
    default:
      return Outcome.Neutral;
  }
}

/**
 * A failure after which the call may have run upstream, but that a read-only or idempotent call
 * may still be retried after: the transport broke or the deadline passed. A JSON-RPC error answer
 * is the server's verdict and is not retried.
 */
export function isTransient(error: unknown): boolean {
  return (
    isRelayError(error) && (error.code === RelayErrorCode.Timeout || error.code === RelayErrorCode.UpstreamUnavailable)
  );
}
