import { isRelayError, RelayErrorCode } from '../errors/index.js';
import type { RetryBudget } from './budget.js';
import { realSleep, type Sleep } from './clock.js';

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
  /** Injected for exact tests; defaults to a timer. */
  sleep?: Sleep | undefined;
  /** When given, each retry must be allowed by it (see {@link RetryBudget}). */
  budget?: RetryBudget | undefined;
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
 * The wait before retry number `attempt + 1`: exponential backoff with full jitter (AWS
 * Architecture Blog, "Exponential Backoff and Jitter", 2015) — a uniformly random wait in
 * [0, base × 2^attempt] spreads the retries of many callers apart — but never shorter than the
 * upstream's `Retry-After`.
 */
export function backoffDelay(
  attempt: number,
  baseDelayMs: number,
  maxDelayMs: number,
  random: () => number,
  retryAfterMs: number | undefined,
): number {
  const jittered = Math.min(maxDelayMs, random() * baseDelayMs * 2 ** attempt);
  return retryAfterMs === undefined ? jittered : Math.max(jittered, retryAfterMs);
}

/**
 * Runs `attempt` until it succeeds, the failure is not retryable, the budget says no, or the
 * retries are spent, waiting {@link backoffDelay} between attempts. For one upstream; a group of
 * upstreams goes through `executeWithResilience`, which also moves a retry to another upstream.
 */
export async function withRetry<T>(attempt: (attemptNumber: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const shouldRetry = options.shouldRetry ?? isSafeToRetry;
  const random = options.random ?? Math.random;
  const sleep = options.sleep ?? realSleep;
  const maxDelayMs = options.maxDelayMs ?? 30_000;
  options.budget?.recordCall();
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      if (n >= options.maxRetries || !shouldRetry(error) || options.signal?.aborted) throw error;
      if (options.budget && !options.budget.tryWithdraw()) throw error;
      const retryAfterMs = isRelayError(error) ? error.retryAfterMs : undefined;
      const delayMs = backoffDelay(n, options.baseDelayMs, maxDelayMs, random, retryAfterMs);
      options.onRetry?.(error, n + 1, delayMs);
      await sleep(delayMs, options.signal);
    }
  }
}
