/**
 * Time and chance, injected (STYLE §5): backoff, breaker waits, retry budgets and latency
 * averages read `clock.now()`, draw from `random()` and wait with `sleep()`, so tests can drive
 * them exactly instead of sleeping.
 */
import { RelayError, RelayErrorCode } from '../errors/index.js';

export interface Clock {
  /** Milliseconds on a monotonic scale (`performance.now()` by default). Only differences matter. */
  now(): number;
}

export const monotonicClock: Clock = { now: () => performance.now() };

/** Waits `ms`, or rejects with `RELAY_ABORTED` (marked not sent) when `signal` aborts first. */
export type Sleep = (ms: number, signal: AbortSignal | undefined) => Promise<void>;

export const realSleep: Sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortedWhileWaiting(signal));
      return;
    }
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
      reject(abortedWhileWaiting(signal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

function abortedWhileWaiting(signal: AbortSignal | undefined): RelayError {
  return new RelayError(RelayErrorCode.Aborted, 'call was aborted while waiting to retry', {
    notSent: true,
    cause: signal?.reason,
  });
}
