/**
 * Peak-EWMA: a latency estimate that rises at once and forgets slowly.
 *
 * This is Finagle's `PeakEwma` load metric (twitter/finagle,
 * `finagle-core/src/main/scala/com/twitter/finagle/loadbalancer/PeakEwma.scala`; described in
 * Twitter's "Finagle: Peak EWMA" and Buoyant's "Beyond Round Robin: Load Balancing for Latency",
 * 2016), used with "power of two choices" (M. Mitzenmacher, "The Power of Two Choices in
 * Randomized Load Balancing", IEEE TPDS 12(10), 2001):
 *
 * - On each response with round trip `rtt`, after `td` ms since the last update:
 *   `w = exp(-td / tau)`; if `rtt > cost` then `cost = rtt` (a peak is taken whole), else
 *   `cost = cost × w + rtt × (1 − w)`. The weight depends on elapsed time, not on a sample count,
 *   so a busy and an idle upstream forget at the same speed.
 * - Reading the estimate is an observation of 0: an upstream that has not answered for a while
 *   decays toward 0 and is tried again. That is how a server that got faster is found without
 *   separate probes — and why the slow one is still tried about once per `tau × ln(ratio)`.
 * - The balancer's cost of a node is `cost × (outstanding + 1)`: latency weighted by the queue it
 *   would join. A node never measured (cost 0) with calls outstanding gets a large penalty instead,
 *   so that a new node is tried but not flooded before its first answer (Finagle's `Penalty`).
 *
 * `tau` (Finagle's `decayTime`) defaults to 10 s, Finagle's default.
 */
export class PeakEwma {
  /** The decay time constant, in ms. */
  readonly tau: number;
  #cost = 0;
  #stamp: number;

  constructor(tauMs: number, now: number) {
    this.tau = tauMs;
    this.#stamp = now;
  }

  /** Records one round trip, in ms, at clock time `now`. */
  observe(rttMs: number, now: number): void {
    const td = now > this.#stamp ? now - this.#stamp : 0;
    this.#stamp = now;
    if (rttMs > this.#cost) {
      this.#cost = rttMs;
    } else {
      const w = Math.exp(-td / this.tau);
      this.#cost = this.#cost * w + rttMs * (1 - w);
    }
  }

  /** The estimate at clock time `now`, in ms, decayed toward 0 since the last update. */
  get(now: number): number {
    if (this.#cost === 0) return 0;
    const td = now - this.#stamp;
    if (td > 0) {
      this.#stamp = now;
      this.#cost *= Math.exp(-td / this.tau);
    }
    return this.#cost;
  }

  /** The estimate without decaying it (for snapshots). */
  peek(): number {
    return this.#cost;
  }
}

/** Finagle's cost of a node with calls outstanding and no estimate yet. */
export const UNMEASURED_PENALTY = Number.MAX_SAFE_INTEGER / 2;
