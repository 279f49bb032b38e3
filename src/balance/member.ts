import type { Outcome, ResilienceTarget } from '../resilience/index.js';
import { PeakEwma } from './peak-ewma.js';
import type { StrategyMember } from './strategies.js';

/** Labels of an upstream, e.g. `{ region: 'us-east' }`: a group can prefer upstreams with given tags. */
export type Tags = Readonly<Record<string, string>>;

/** A per-upstream circuit breaker, as the balancer uses it (the resilience layer's `CircuitBreaker`). */
export interface Gate {
  readonly state: 'closed' | 'open' | 'half-open';
  /** When open: the clock time at which a probe may go. */
  readonly openUntil: number;
  available(now: number): boolean;
  /** 0: refused; otherwise a pass to hand back to {@link record}. */
  tryPass(now: number): number;
  record(pass: number, outcome: Outcome, now: number): void;
}

export interface MemberOptions<U extends ResilienceTarget['upstream']> {
  name: string;
  index: number;
  upstream: U;
  weight: number;
  priority: number;
  tags: Tags;
  gate: Gate | undefined;
  /** Peak-EWMA decay time, in ms. */
  decayMs: number;
  now: number;
}

/** The last active health probe of an upstream. */
export interface ProbeResult {
  ok: boolean;
  latencyMs: number;
  /** Wall-clock time (`Date.now()`) of the probe. */
  at: number;
  error?: { code: string; message: string } | undefined;
}

/**
 * One upstream as the balancers see it: shared by every group it belongs to, so its latency,
 * outstanding calls, breaker and health are the same whichever group sends it a call.
 */
export class Member<U extends ResilienceTarget['upstream'] = ResilienceTarget['upstream']>
  implements StrategyMember, ResilienceTarget
{
  readonly name: string;
  readonly index: number;
  readonly upstream: U;
  readonly weight: number;
  readonly priority: number;
  readonly tags: Tags;
  readonly gate: Gate | undefined;
  readonly ewma: PeakEwma;
  outstanding = 0;

  // Passive outlier detection.
  consecutiveFailures = 0;
  /** Clock time until which it is ejected (0: never was). */
  ejectedUntil = 0;
  /** Ejections in a row; each doubles the next ejection's length. */
  ejections = 0;
  /** Clock time it last came back from an ejection. */
  returnedAt = 0;
  lastEjectionMs = 0;

  // Active health probes.
  probeHealthy = true;
  probeFailures = 0;
  probeSuccesses = 0;
  lastProbe: ProbeResult | undefined;

  /** Clock time before which it takes no calls: its last `Retry-After`. */
  notBefore = 0;

  // Counters, for `health()` and the seed's load-distribution benchmark.
  attempts = 0;
  successes = 0;
  failures = 0;

  constructor(options: MemberOptions<U>) {
    this.name = options.name;
    this.index = options.index;
    this.upstream = options.upstream;
    this.weight = options.weight;
    this.priority = options.priority;
    this.tags = options.tags;
    this.gate = options.gate;
    this.ewma = new PeakEwma(options.decayMs, options.now);
  }

  /** Whether it may take a call now: up, not ejected, not deferred, and its breaker lets calls through. */
  usable(now: number): boolean {
    return (
      this.probeHealthy &&
      now >= this.ejectedUntil &&
      now >= this.notBefore &&
      (this.gate === undefined || this.gate.available(now))
    );
  }

  /** Whether every tag in `prefer` is on this upstream with the same value. */
  matches(prefer: Tags): boolean {
    for (const key in prefer) {
      if (this.tags[key] !== prefer[key]) return false;
    }
    return true;
  }

  /** The next clock time after `now` at which {@link usable} may change by itself; Infinity if none. */
  nextChange(now: number): number {
    let next = Infinity;
    if (this.ejectedUntil > now) next = this.ejectedUntil;
    if (this.notBefore > now && this.notBefore < next) next = this.notBefore;
    if (
      this.gate !== undefined &&
      this.gate.state === 'open' &&
      this.gate.openUntil > now &&
      this.gate.openUntil < next
    )
      next = this.gate.openUntil;
    return next;
  }
}
