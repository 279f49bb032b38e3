import { channel } from 'node:diagnostics_channel';

import { isRelayError, RelayError, RelayErrorCode } from '../errors/index.js';
import type { CallOptions, Upstream } from '../upstream/index.js';
import type { RetryBudget } from './budget.js';
import { isTransient, Outcome, outcomeOf } from './classify.js';
import type { Clock, Sleep } from './clock.js';
import { backoffDelay, isSafeToRetry } from './retry.js';

/** Something one attempt can be sent to: an upstream, as the balancer knows it. */
export interface ResilienceTarget {
  readonly name: string;
  readonly upstream: Pick<Upstream, 'request' | 'info'>;
}

/**
 * What the pipeline needs from a balancer. `pick` already consulted each target's breaker; the
 * breaker's answer for the returned target is left in `lastPass` (read at once, synchronously) and
 * handed back to `end`, so a half-open breaker knows which call was its probe.
 */
export interface TargetSelector<T extends ResilienceTarget> {
  /**
   * The target of one attempt, preferring ones not in `exclude` (those already tried); undefined
   * when no target may take a call now (breakers open).
   */
  pick(exclude: readonly T[] | undefined): T | undefined;
  /** The breaker's answer for the target `pick` just returned. */
  readonly lastPass: number;
  /** An attempt starts on `target`; returns the clock time it started (NaN: not a latency sample). */
  begin(target: T): number;
  /** The attempt ended: latency, outstanding count, breaker and outlier detection are updated. */
  end(target: T, started: number, pass: number, outcome: Outcome): void;
  /** Keeps `target` out of picks until clock time `until` (its `Retry-After`). */
  defer(target: T, until: number): void;
  /** Whether a target outside `exclude` could take a call now. */
  hasAlternative(exclude: readonly T[]): boolean;
  /** Why no target could be picked: a `RELAY_UPSTREAM_UNAVAILABLE` marked not sent. */
  unavailableError(): RelayError;
}

export interface RetryEvent {
  method: string;
  /** The attempt about to start: 1 for the first retry. */
  attempt: number;
  /** The upstream that failed. */
  upstream: string;
  delayMs: number;
  error: unknown;
}

/** Per group (not per call): how the pipeline retries and what it may retry. */
export interface ResilienceSettings {
  /** Extra attempts after the first (`max_retries`). */
  maxRetries: number;
  /** Base of the exponential backoff with full jitter, in ms (`retry_delay`). */
  retryDelayMs: number;
  /** The longest single backoff wait, in ms. */
  maxRetryDelayMs: number;
  /** The most one call may take in total, retries and progress resets included (`max_total_timeout`); undefined: no cap. */
  maxTotalMs: number | undefined;
  budget: RetryBudget | undefined;
  clock: Clock;
  random: () => number;
  sleep: Sleep;
  /**
   * Whether the call may safely run twice (read-only or idempotent). Asked only after a failure
   * that may have reached the upstream, so it may be slow (e.g. load tool annotations).
   */
  isIdempotent(method: string, params: Record<string, unknown> | undefined): boolean | Promise<boolean>;
  onRetry?: ((event: RetryEvent) => void) | undefined;
}

/** Published before every retry. */
export const retryChannel = channel('mcp-relay:resilience:retry');

/**
 * One call through the resilience pipeline: pick an upstream (balancer + breaker), send with the
 * call's deadline (reset by progress, capped by `maxTotalMs`), record the outcome, and on failure
 * retry — on another upstream when there is one — only where that cannot run the call twice:
 *
 * - the request surely never ran (`notSent`: connection refused, pool queue timeout, a 503 or 429
 *   before any body, a breaker that refused it), or
 * - the transport failed or timed out and the call is read-only or idempotent (`isIdempotent`).
 *
 * Each retry must also fit the retry budget, the attempt count (`maxRetries`) and the total
 * deadline; it waits an exponential backoff with full jitter, or the upstream's `Retry-After` when
 * no other upstream can take it. An abort ends everything at once: a queued attempt leaves the
 * queue, a sent one is cancelled upstream, a backoff wait is cut short.
 */
export async function executeWithResilience<T extends ResilienceTarget>(
  selector: TargetSelector<T>,
  method: string,
  params: Record<string, unknown> | undefined,
  options: CallOptions | undefined,
  settings: ResilienceSettings,
): Promise<unknown> {
  const clock = settings.clock;
  const startedAt = clock.now();
  const maxTotalMs = options?.maxTotalMs ?? settings.maxTotalMs;
  const deadline = maxTotalMs === undefined ? Infinity : startedAt + maxTotalMs;
  const signal = options?.signal;
  settings.budget?.recordCall(startedAt);
  let tried: T[] | undefined;
  for (let attempt = 0; ; attempt++) {
    const target = selector.pick(tried);
    if (target === undefined) throw selector.unavailableError();
    const pass = selector.lastPass;
    let attemptOptions = options;
    if (deadline !== Infinity) {
      const left = deadline - clock.now();
      attemptOptions = { ...options, maxTotalMs: Math.max(0, left) };
    }
    const started = selector.begin(target);
    try {
      const result = await target.upstream.request(method, params, attemptOptions);
      selector.end(target, started, pass, Outcome.Success);
      return result;
    } catch (error) {
      selector.end(target, started, pass, outcomeOf(error));
      if (attempt >= settings.maxRetries || signal?.aborted) throw error;
      if (!isSafeToRetry(error)) {
        if (!isTransient(error) || !(await settings.isIdempotent(method, params))) throw error;
      }
      const now = clock.now();
      const retryAfterMs = isRelayError(error) ? error.retryAfterMs : undefined;
      if (retryAfterMs !== undefined) selector.defer(target, now + retryAfterMs);
      (tried ??= []).push(target);
      // Another upstream owes us no wait: the Retry-After was the failed one's.
      const elsewhere = selector.hasAlternative(tried);
      const delayMs = backoffDelay(
        attempt,
        settings.retryDelayMs,
        settings.maxRetryDelayMs,
        settings.random,
        elsewhere ? undefined : retryAfterMs,
      );
      if (now + delayMs >= deadline) throw error;
      if (settings.budget !== undefined && !settings.budget.tryWithdraw(now)) throw error;
      if (settings.onRetry !== undefined || retryChannel.hasSubscribers) {
        const event: RetryEvent = { method, attempt: attempt + 1, upstream: target.name, delayMs, error };
        settings.onRetry?.(event);
        if (retryChannel.hasSubscribers) retryChannel.publish(event);
      }
      if (delayMs > 0) await settings.sleep(delayMs, signal);
      if (signal?.aborted) throw abortedBetweenAttempts(method, signal);
    }
  }
}

function abortedBetweenAttempts(method: string, signal: AbortSignal): RelayError {
  return new RelayError(RelayErrorCode.Aborted, `call ${method} was aborted between retries`, {
    notSent: true,
    cause: signal.reason,
  });
}
