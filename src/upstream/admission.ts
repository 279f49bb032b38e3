import { RelayError, RelayErrorCode } from '../errors/index.js';

interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  enqueuedAt: number;
}

/**
 * Bounds the calls in flight on one upstream to its pool size. Past that, callers wait in a FIFO
 * queue of bounded length; a caller that cannot get a slot before its wait limit fails fast with
 * `RELAY_POOL_EXHAUSTED` (the request never left, so it is safe to retry anywhere).
 *
 * The uncontended path is a counter increment: no promise, no allocation.
 */
export class Admission {
  #inFlight = 0;
  readonly #queue: Waiter[] = [];
  #queueHead = 0;

  readonly upstream: string;
  readonly capacity: number;
  readonly maxQueue: number;

  constructor(upstream: string, capacity: number, maxQueue: number) {
    this.upstream = upstream;
    this.capacity = capacity;
    this.maxQueue = maxQueue;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get queued(): number {
    return this.#queue.length - this.#queueHead;
  }

  /** Takes a slot at once when one is free; returns false when the caller must wait. */
  tryAcquire(): boolean {
    if (this.#inFlight < this.capacity && this.queued === 0) {
      this.#inFlight++;
      return true;
    }
    return false;
  }

  /** Waits for a slot for at most `waitMs`. */
  acquire(waitMs: number, signal?: AbortSignal): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    if (this.queued >= this.maxQueue) {
      return Promise.reject(this.#exhausted(0, 'the wait queue is full'));
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: undefined,
        signal,
        onAbort: undefined,
        enqueuedAt: performance.now(),
      };
      waiter.timer = setTimeout(() => {
        this.#remove(waiter);
        reject(this.#exhausted(performance.now() - waiter.enqueuedAt, 'no slot became free in time'));
      }, waitMs);
      if (signal) {
        waiter.onAbort = () => {
          this.#remove(waiter);
          reject(
            new RelayError(RelayErrorCode.Aborted, `call to upstream '${this.upstream}' was aborted while queued`, {
              upstream: this.upstream,
              notSent: true,
              cause: signal.reason,
            }),
          );
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#queue.push(waiter);
    });
  }

  release(): void {
    while (this.#queueHead < this.#queue.length) {
      const next = this.#queue[this.#queueHead]!;
      this.#queue[this.#queueHead] = undefined as unknown as Waiter;
      this.#queueHead++;
      this.#compact();
      this.#settle(next);
      next.resolve(); // the slot passes straight to the waiter; inFlight stays the same
      return;
    }
    this.#inFlight--;
  }

  /** Rejects every waiter, e.g. on close. */
  rejectAll(error: unknown): void {
    const waiters = this.#queue.slice(this.#queueHead);
    this.#queue.length = 0;
    this.#queueHead = 0;
    for (const waiter of waiters) {
      this.#settle(waiter);
      waiter.reject(error);
    }
  }

  #settle(waiter: Waiter): void {
    if (waiter.timer) clearTimeout(waiter.timer);
    if (waiter.signal && waiter.onAbort) waiter.signal.removeEventListener('abort', waiter.onAbort);
  }

  #remove(waiter: Waiter): void {
    this.#settle(waiter);
    const index = this.#queue.indexOf(waiter, this.#queueHead);
    if (index >= 0) this.#queue.splice(index, 1);
  }

  #compact(): void {
    if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#queueHead);
      this.#queueHead = 0;
    }
  }

  #exhausted(waitedMs: number, why: string): RelayError {
    return new RelayError(
      RelayErrorCode.PoolExhausted,
      `upstream '${this.upstream}' pool exhausted: ${why} (pool size ${this.capacity}, ${this.#inFlight} in flight, ` +
        `${this.queued} queued of at most ${this.maxQueue}, waited ${Math.round(waitedMs)} ms); ` +
        'raise connection_pool_size or add upstreams',
      { upstream: this.upstream, notSent: true },
    );
  }
}
