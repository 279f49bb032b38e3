import { channel } from 'node:diagnostics_channel';

import { RelayError, RelayErrorCode } from '../errors/index.js';
import { monotonicClock, type Clock } from './clock.js';
import { Outcome } from './classify.js';

/** `closed`: calls pass. `open`: calls are refused. `half-open`: one probe call is in flight. */
export type BreakerState = 'closed' | 'open' | 'half-open';

/**
 * What {@link CircuitBreaker.tryPass} answers. `Probe` is the one call allowed through a breaker
 * that has waited long enough: its result alone closes or re-opens the breaker.
 */
export const BreakerPass = { Deny: 0, Pass: 1, Probe: 2 } as const;
export type BreakerPass = (typeof BreakerPass)[keyof typeof BreakerPass];

export interface BreakerStateChange {
  upstream: string;
  from: BreakerState;
  to: BreakerState;
  /** Consecutive failures that opened it (on `open`). */
  failures: number;
  /** When open: ms until a probe may go. */
  retryInMs: number | undefined;
}

export interface CircuitBreakerOptions {
  /** Names the upstream in events and errors. */
  upstream: string;
  /** Consecutive transport failures or timeouts that open the breaker. Default 5. */
  failureThreshold?: number | undefined;
  /** How long an open breaker refuses calls before it lets one probe through, in ms. Default 5000. */
  halfOpenAfterMs?: number | undefined;
  /** Each failed probe doubles the wait, up to this, in ms. Default 60 000. */
  maxHalfOpenAfterMs?: number | undefined;
  clock?: Clock | undefined;
}

/** Published on every state change. */
export const breakerChannel = channel('mcp-relay:resilience:breaker');

/**
 * A circuit breaker for one upstream: after `failureThreshold` consecutive transport failures or
 * timeouts it opens and refuses calls; after `halfOpenAfterMs` it lets exactly one probe through
 * (half-open); the probe's success closes it, its failure re-opens it for twice as long (up to
 * `maxHalfOpenAfterMs`). A tool's `isError` result and a JSON-RPC error answer are responses, so
 * they count as successes; aborts and a full local pool say nothing about the upstream and count
 * as neither.
 *
 * The states, the probe and the events follow cockatiel's `CircuitBreakerPolicy` with a
 * `ConsecutiveBreaker`. It is written here rather than taken from cockatiel because the balancer
 * must ask "may this upstream take a call now?" before choosing it, without running anything:
 * cockatiel's breaker only answers inside `execute(fn)`, turns open into half-open lazily there,
 * reads `Date.now()` rather than an injected clock, and needs a closure per call. This one splits
 * the decision ({@link tryPass}) from the outcome ({@link record}) and allocates nothing per call.
 */
export class CircuitBreaker {
  readonly upstream: string;
  readonly failureThreshold: number;
  readonly halfOpenAfterMs: number;
  readonly maxHalfOpenAfterMs: number;
  readonly #clock: Clock;
  #state: BreakerState = 'closed';
  #failures = 0;
  #openUntil = 0;
  #waitMs: number;
  #listeners: ((change: BreakerStateChange) => void)[] = [];

  constructor(options: CircuitBreakerOptions) {
    this.upstream = options.upstream;
    this.failureThreshold = positiveInteger(options.failureThreshold ?? 5, 'failureThreshold');
    this.halfOpenAfterMs = nonNegative(options.halfOpenAfterMs ?? 5000, 'halfOpenAfterMs');
    this.maxHalfOpenAfterMs = Math.max(
      this.halfOpenAfterMs,
      nonNegative(options.maxHalfOpenAfterMs ?? 60_000, 'maxHalfOpenAfterMs'),
    );
    this.#waitMs = this.halfOpenAfterMs;
    this.#clock = options.clock ?? monotonicClock;
  }

  /** The current state. An open breaker whose wait is over stays `open` until a probe is let through. */
  get state(): BreakerState {
    return this.#state;
  }

  /** Consecutive failures counted while closed. */
  get failures(): number {
    return this.#failures;
  }

  /** When open: the clock time at which a probe may go. */
  get openUntil(): number {
    return this.#openUntil;
  }

  /** Whether a call could pass now, without taking the probe. */
  available(now: number = this.#clock.now()): boolean {
    if (this.#state === 'closed') return true;
    return this.#state === 'open' && now >= this.#openUntil;
  }

  /** Asks to send one call. `Probe` means this call decides whether the breaker closes; report it with {@link record}. */
  tryPass(now: number = this.#clock.now()): BreakerPass {
    if (this.#state === 'closed') return BreakerPass.Pass;
    if (this.#state === 'open' && now >= this.#openUntil) {
      this.#transition('half-open');
      return BreakerPass.Probe;
    }
    return BreakerPass.Deny;
  }

  /** Reports the outcome of a call that {@link tryPass} let through. */
  record(pass: BreakerPass, outcome: Outcome, now: number = this.#clock.now()): void {
    if (pass === BreakerPass.Probe) {
      if (this.#state !== 'half-open') return;
      if (outcome === Outcome.Success) {
        this.#failures = 0;
        this.#waitMs = this.halfOpenAfterMs;
        this.#transition('closed');
      } else if (outcome === Outcome.Failure) {
        this.#waitMs = Math.min(this.maxHalfOpenAfterMs, Math.max(1, this.#waitMs) * 2);
        this.#open(now);
      } else {
        // Neither: the probe told nothing; the next call may probe again.
        this.#openUntil = now;
        this.#transition('open');
      }
      return;
    }
    // Results of calls let through before the breaker opened do not move an open breaker.
    if (this.#state !== 'closed') return;
    if (outcome === Outcome.Success) {
      this.#failures = 0;
    } else if (outcome === Outcome.Failure && ++this.#failures >= this.failureThreshold) {
      this.#open(now);
    }
  }

  /** Listens to state changes; returns the function that stops listening. */
  onStateChange(listener: (change: BreakerStateChange) => void): () => void {
    this.#listeners = [...this.#listeners, listener];
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  /** The error a refused call fails with: it never left, so it is safe to retry elsewhere. */
  openError(now: number = this.#clock.now()): RelayError {
    return new RelayError(
      RelayErrorCode.UpstreamUnavailable,
      `upstream '${this.upstream}' is refusing calls: its circuit breaker opened after ${this.failureThreshold} ` +
        `consecutive failures; the next probe goes in ${Math.max(0, Math.ceil(this.#openUntil - now))} ms`,
      { upstream: this.upstream, notSent: true },
    );
  }

  #open(now: number): void {
    this.#openUntil = now + this.#waitMs;
    this.#transition('open');
  }

  #transition(to: BreakerState): void {
    const from = this.#state;
    this.#state = to;
    if (from === to && to !== 'open') return;
    if (this.#listeners.length === 0 && !breakerChannel.hasSubscribers) return;
    const change: BreakerStateChange = {
      upstream: this.upstream,
      from,
      to,
      failures: this.#failures,
      retryInMs: to === 'open' ? Math.max(0, this.#openUntil - this.#clock.now()) : undefined,
    };
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch {
        // A listener's failure is its own.
      }
    }
    if (breakerChannel.hasSubscribers) breakerChannel.publish(change);
  }
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RelayError(
      RelayErrorCode.InvalidConfig,
      `breaker ${name} must be an integer of at least 1, got ${value}`,
    );
  }
  return value;
}

function nonNegative(value: number, name: string): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new RelayError(RelayErrorCode.InvalidConfig, `breaker ${name} must be a number of ms ≥ 0, got ${value}`);
  }
  return value;
}
