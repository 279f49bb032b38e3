import { isRelayError, RelayError, RelayErrorCode } from '../errors/index.js';

export interface RetryOptions {
  /** Extra attempts after the first. */
  maxRetries: number;
  /** The base of the exponential backoff, in ms: attempt n waits up to `baseDelayMs × 2^n`. */
  baseDelayMs: number;
  /** The longest single wait, in ms. Default 30 000. */
  maxDelayMs?: number | undefined;
  /** Whether this failure may be retried. Default: only failures where the request surely never ran. */
  shouldRetry?: ((error: unknown) => boolean) | undefined;
  signal?: AbortSignal | undefined;
  /** Injected for exact tests; defaults to `Math.random`. */
  random?: (() => number) | undefined;
  /** Called before each retry, for events and metrics. */
  onRetry?: ((error: unknown, attempt: number, delayMs: number) => void) | undefined;
}

/**
 * A failure that surely never reached the upstream's handler: refused connection, pool queue
 * timeout, a 503 before any body. Only these may be retried for a call with side effects.
 */
export function isSafeToRetry(error: unknown): boolean {
  return (
    isRelayError(error) &&
    error.notSent &&
    error.code !== RelayErrorCode.Closed &&
    error.code !== RelayErrorCode.Aborted
  );
}

/**
 * Runs `attempt` until it succeeds, the failure is not retryable, or the retries are spent. Waits
 * use exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff and
 * Jitter", 2015): a uniformly random wait in [0, base × 2^n] spreads retries of many callers apart.
 */
export async function withRetry<T>(attempt: (attemptNumber: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const shouldRetry = options.shouldRetry ?? isSafeToRetry;
  const random = options.random ?? Math.random;
  const maxDelayMs = options.maxDelayMs ?? 30_000;
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      if (n >= options.maxRetries || !shouldRetry(error) || options.signal?.aborted) throw error;
      const delayMs = Math.min(maxDelayMs, random() * options.baseDelayMs * 2 ** n);
      options.onRetry?.(error, n + 1, delayMs);
      await sleep(delayMs, options.signal);
    }
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (ms <= 0) {
      resolve();
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(
        new RelayError(RelayErrorCode.Aborted, 'call was aborted while waiting to retry', {
          notSent: true,
          cause: signal?.reason,
        }),
      );
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
