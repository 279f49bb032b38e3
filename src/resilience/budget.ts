import { RelayError, RelayErrorCode } from '../errors/index.js';
import { monotonicClock, type Clock } from './clock.js';

export interface RetryBudgetOptions {
  /** Retries allowed per original call over the window. Default 0.1 (10 %). */
  ratio?: number | undefined;
  /**
   * Retries allowed per second regardless of traffic, so that a quiet client can still retry.
   * Default 1 (10 retries per default window).
   */
  minRetriesPerSecond?: number | undefined;
  /** How far back calls and retries are counted, in ms. Default 10 000. */
  windowMs?: number | undefined;
  clock?: Clock | undefined;
}

const SLOTS = 10;

/**
 * Caps retries at a share of calls, so that a failing upstream is not hit with `1 + max_retries`
 * times the traffic (a retry storm). Finagle's `RetryBudget` and Envoy's retry budgets work the
 * same way: each call deposits `ratio` of a retry, each retry withdraws one, and a small floor
 * (`minRetriesPerSecond × window`) lets low-traffic callers retry at all.
 *
 * Counts live in ten slots of `windowMs / 10` each, on the injected clock: recording a call is an
 * index computation and an increment; only a retry sums the slots.
 */
export class RetryBudget {
  readonly ratio: number;
  readonly minRetriesPerSecond: number;
  readonly windowMs: number;
  readonly #slotMs: number;
  readonly #calls = new Float64Array(SLOTS);
  readonly #retries = new Float64Array(SLOTS);
  /** The slot number (time / slotMs) each slot currently holds. */
  readonly #epochs = new Float64Array(SLOTS).fill(-1);
  readonly #clock: Clock;

  constructor(options: RetryBudgetOptions = {}) {
    this.ratio = check(options.ratio ?? 0.1, 'ratio', 0, 1);
    this.minRetriesPerSecond = check(options.minRetriesPerSecond ?? 1, 'minRetriesPerSecond', 0, 1e6);
    this.windowMs = check(options.windowMs ?? 10_000, 'windowMs', 10, 3_600_000);
    this.#slotMs = this.windowMs / SLOTS;
    this.#clock = options.clock ?? monotonicClock;
  }

  /** Counts one original call (not a retry). */
  recordCall(now: number = this.#clock.now()): void {
    this.#calls[this.#slot(now)]!++;
  }

  /** Takes one retry from the budget; false when retries would exceed it. */
  tryWithdraw(now: number = this.#clock.now()): boolean {
    const current = this.#slot(now);
    let calls = 0;
    let retries = 0;
    const oldest = Math.floor(now / this.#slotMs) - SLOTS + 1;
    for (let i = 0; i < SLOTS; i++) {
      if (this.#epochs[i]! < oldest) continue;
      calls += this.#calls[i]!;
      retries += this.#retries[i]!;
    }
    const allowed = calls * this.ratio + (this.minRetriesPerSecond * this.windowMs) / 1000;
    if (retries + 1 > allowed) return false;
    this.#retries[current]!++;
    return true;
  }

  /** Calls and retries counted in the current window. */
  snapshot(now: number = this.#clock.now()): { calls: number; retries: number } {
    this.#slot(now);
    const oldest = Math.floor(now / this.#slotMs) - SLOTS + 1;
    let calls = 0;
    let retries = 0;
    for (let i = 0; i < SLOTS; i++) {
      if (this.#epochs[i]! < oldest) continue;
      calls += this.#calls[i]!;
      retries += this.#retries[i]!;
    }
    return { calls, retries };
  }

  #slot(now: number): number {
    const epoch = Math.floor(now / this.#slotMs);
    const index = ((epoch % SLOTS) + SLOTS) % SLOTS;
    if (this.#epochs[index] !== epoch) {
      this.#epochs[index] = epoch;
      this.#calls[index] = 0;
      this.#retries[index] = 0;
    }
    return index;
  }
}

function check(value: number, name: string, min: number, max: number): number {
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new RelayError(
      RelayErrorCode.InvalidConfig,
      `retry budget ${name} must be a number from ${min} to ${max}, got ${value}`,
    );
  }
  return value;
}
