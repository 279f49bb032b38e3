import { RelayError, RelayErrorCode } from '../errors/index.js';
import { UNMEASURED_PENALTY, type PeakEwma } from './peak-ewma.js';

/** The balancing strategies. `fastest` is the default. */
export const STRATEGY_NAMES = ['fastest', 'round_robin', 'least_outstanding', 'weighted', 'failover'] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

/** What a strategy reads of an upstream. */
export interface StrategyMember {
  /** Position in the manager's list of upstreams (config order); indexes per-strategy state. */
  readonly index: number;
  readonly ewma: PeakEwma;
  /** Calls sent to it and not yet finished, queued ones included. */
  readonly outstanding: number;
  /** Share under `weighted`: an upstream of weight 3 gets three times the calls of one of weight 1. */
  readonly weight: number;
  /** Order under `failover`: the lowest number that is available takes every call. */
  readonly priority: number;
}

/**
 * Chooses one upstream for one call among those that may take it now (never empty). Called on
 * every call: no allocation, O(1) or O(n) in the group's size.
 */
export interface Strategy {
  readonly name: StrategyName;
  pick<M extends StrategyMember>(members: readonly M[], now: number): M;
}

export interface StrategyContext {
  /** Uniform in [0, 1). */
  random: () => number;
  /** How many upstreams the manager has: the size of per-upstream state. */
  size: number;
}

export function createStrategy(name: StrategyName, context: StrategyContext): Strategy {
  switch (name) {
    case 'fastest':
      return new PeakEwmaP2C(context.random);
    case 'round_robin':
      return new RoundRobin();
    case 'least_outstanding':
      return new LeastOutstanding();
    case 'weighted':
      return new SmoothWeighted(context.size);
    case 'failover':
      return new Failover();
    default:
      throw new RelayError(
        RelayErrorCode.InvalidConfig,
        `unknown balancing strategy ${JSON.stringify(name)}; expected one of ${STRATEGY_NAMES.join(', ')}`,
      );
  }
}

/** The balancer's cost of an upstream: peak-EWMA latency × (outstanding + 1); see peak-ewma.ts. */
export function peakEwmaCost(member: StrategyMember, now: number): number {
  const latency = member.ewma.get(now);
  if (latency === 0 && member.outstanding !== 0) return UNMEASURED_PENALTY + member.outstanding;
  return latency * (member.outstanding + 1);
}

/**
 * `fastest`: power of two choices over peak-EWMA cost. Two distinct upstreams drawn at random,
 * the cheaper one wins. Comparing two rather than scanning all keeps the choice O(1) and avoids
 * the herd that "always the single best" causes when many callers act on the same stale view
 * (Mitzenmacher 2001); the decay of the estimate brings back a slow upstream that got faster.
 */
class PeakEwmaP2C implements Strategy {
  readonly name = 'fastest';
  readonly #random: () => number;

  constructor(random: () => number) {
    this.#random = random;
  }

  pick<M extends StrategyMember>(members: readonly M[], now: number): M {
    const n = members.length;
    if (n === 1) return members[0]!;
    const i = Math.floor(this.#random() * n);
    let j = Math.floor(this.#random() * (n - 1));
    if (j >= i) j++;
    const a = members[i]!;
    const b = members[j]!;
    return peakEwmaCost(a, now) <= peakEwmaCost(b, now) ? a : b;
  }
}

/** `round_robin`: each available upstream in turn. */
class RoundRobin implements Strategy {
  readonly name = 'round_robin';
  #cursor = 0;

  pick<M extends StrategyMember>(members: readonly M[]): M {
    const member = members[this.#cursor % members.length]!;
    this.#cursor = (this.#cursor + 1) % 0x40000000;
    return member;
  }
}

/** `least_outstanding`: the upstream with the fewest calls in flight; ties taken in turn. */
class LeastOutstanding implements Strategy {
  readonly name = 'least_outstanding';
  #cursor = 0;

  pick<M extends StrategyMember>(members: readonly M[]): M {
    const n = members.length;
    const start = this.#cursor % n;
    this.#cursor = (this.#cursor + 1) % 0x40000000;
    let best = members[start]!;
    for (let k = 1; k < n; k++) {
      const candidate = members[(start + k) % n]!;
      if (candidate.outstanding < best.outstanding) best = candidate;
    }
    return best;
  }
}

/**
 * `weighted`: smooth weighted round robin (nginx, `ngx_http_upstream_get_peer`): every pick adds
 * each upstream's weight to its running score, takes the highest, and subtracts the total from
 * it. Shares are exact over every cycle of `Σ weights` picks and spread out within it (weights
 * 5, 1, 1 give a a b a c a a, not a a a a a b c). When an upstream drops out the others' shares
 * stay in proportion.
 */
class SmoothWeighted implements Strategy {
  readonly name = 'weighted';
  readonly #current: Float64Array;

  constructor(size: number) {
    this.#current = new Float64Array(size);
  }

  pick<M extends StrategyMember>(members: readonly M[]): M {
    let total = 0;
    let best = members[0]!;
    let bestScore = -Infinity;
    for (const member of members) {
      const score = (this.#current[member.index]! += member.weight);
      total += member.weight;
      if (score > bestScore) {
        bestScore = score;
        best = member;
      }
    }
    this.#current[best.index]! -= total;
    return best;
  }
}

/**
 * `failover`: every call to the available upstream of the lowest `priority` (ties in turn); the
 * next priority takes over only when every upstream of the first is ejected, down or open.
 */
class Failover implements Strategy {
  readonly name = 'failover';
  #cursor = 0;

  pick<M extends StrategyMember>(members: readonly M[]): M {
    let top = Infinity;
    let count = 0;
    for (const member of members) {
      if (member.priority < top) {
        top = member.priority;
        count = 1;
      } else if (member.priority === top) {
        count++;
      }
    }
    let k = this.#cursor % count;
    this.#cursor = (this.#cursor + 1) % 0x40000000;
    for (const member of members) {
      if (member.priority === top && k-- === 0) return member;
    }
    return members[0]!;
  }
}
