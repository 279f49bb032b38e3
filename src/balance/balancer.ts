import { RelayError, RelayErrorCode } from '../errors/index.js';
import { BreakerPass, Outcome, type Clock, type ResilienceTarget, type TargetSelector } from '../resilience/index.js';
import type { EjectionScope, HealthTracker } from './health.js';
import type { Member, Tags } from './member.js';
import type { Strategy } from './strategies.js';

export interface BalancerOptions<U extends ResilienceTarget['upstream']> {
  /** The group's name, for errors. */
  name: string;
  members: readonly Member<U>[];
  strategy: Strategy;
  /** Upstreams with all these tags take the calls while any of them is available; the rest are the fallback. */
  prefer?: Tags | undefined;
  tracker: HealthTracker;
  clock: Clock;
}

const EMPTY: readonly never[] = Object.freeze([]);

/**
 * Chooses the upstream of each call in one group, and learns from each outcome.
 *
 * Which upstreams may take a call (up, not ejected, not deferred by `Retry-After`, breaker not
 * open) is computed once per change — the health tracker's `version`, or the clock passing the
 * next ejection end or breaker wait — and cached, so the common pick is a version check, the
 * strategy's choice and the breaker's `tryPass`: no allocation. Preferred upstreams (by tag) are
 * used while any is available; then the others. When none is available at all the balancer
 * "panics" (Envoy's term) and spreads calls over every upstream whose breaker allows them, since
 * a possibly-bad upstream beats none; only when every breaker is open does a call fail fast.
 */
export class Balancer<U extends ResilienceTarget['upstream'] = ResilienceTarget['upstream']>
  implements TargetSelector<Member<U>>, EjectionScope
{
  readonly name: string;
  readonly members: readonly Member<U>[];
  readonly strategy: Strategy;
  readonly prefer: Tags | undefined;
  readonly maxEjected: number;
  lastPass: number = BreakerPass.Pass;
  readonly #tracker: HealthTracker;
  readonly #clock: Clock;
  /** What picks choose from: the preferred available upstreams, or all available ones. */
  #eligible: readonly Member<U>[] = EMPTY;
  /** All available upstreams, preferred or not (the fallback of a retry that excludes the preferred). */
  #usable: readonly Member<U>[] = EMPTY;
  #version = -1;
  #recheckAt = -Infinity;

  constructor(options: BalancerOptions<U>) {
    if (options.members.length === 0) {
      throw new RelayError(RelayErrorCode.InvalidConfig, `balancer group '${options.name}' has no upstreams`);
    }
    this.name = options.name;
    this.members = options.members;
    this.strategy = options.strategy;
    this.prefer = options.prefer !== undefined && Object.keys(options.prefer).length > 0 ? options.prefer : undefined;
    this.#tracker = options.tracker;
    this.#clock = options.clock;
    this.maxEjected = Math.floor(options.tracker.ejection.maxEjectedShare * this.members.length);
    options.tracker.attach(this, this.members);
  }

  ejectedCount(now: number): number {
    let count = 0;
    for (const member of this.members) if (now < member.ejectedUntil) count++;
    return count;
  }

  /** The upstreams a call could go to now, preferred first. */
  eligible(now: number = this.#clock.now()): readonly Member<U>[] {
    this.#refresh(now);
    return this.#eligible;
  }

  pick(exclude: readonly Member<U>[] | undefined): Member<U> | undefined {
    const now = this.#clock.now();
    this.#refresh(now);
    let list = this.#eligible;
    if (exclude !== undefined && exclude.length > 0) {
      let rest = list.filter((m) => !exclude.includes(m));
      if (rest.length === 0 && list !== this.#usable) rest = this.#usable.filter((m) => !exclude.includes(m));
      if (rest.length > 0) list = rest;
    }
    for (let attempts = list.length; attempts > 0 && list.length > 0; attempts--) {
      const member = list.length === 1 ? list[0]! : this.strategy.pick(list, now);
      const pass = member.gate === undefined ? BreakerPass.Pass : member.gate.tryPass(now);
      if (pass !== BreakerPass.Deny) {
        this.lastPass = pass;
        return member;
      }
      // Half-open with its probe already in flight: choose among the others.
      list = list.filter((m) => m !== member);
    }
    return undefined;
  }

  /**
   * Returns the start time, or NaN when the upstream has not connected yet: that attempt's round
   * trip includes the handshake (and a cold server's first requests), a one-off that would
   * otherwise sit in the peak-EWMA for seconds.
   */
  begin(member: Member<U>): number {
    member.outstanding++;
    member.attempts++;
    return member.upstream.info === undefined ? NaN : this.#clock.now();
  }

  end(member: Member<U>, started: number, pass: number, outcome: Outcome): void {
    const now = this.#clock.now();
    member.outstanding--;
    const rtt = now - started; // NaN for an attempt that had to connect first
    if (outcome === Outcome.Success) {
      member.successes++;
      if (rtt === rtt) member.ewma.observe(rtt, now);
    } else if (outcome === Outcome.Failure) {
      member.failures++;
      // A failure may be fast (connection refused); it must never make an upstream look faster.
      if (rtt > member.ewma.peek()) member.ewma.observe(rtt, now);
    }
    member.gate?.record(pass, outcome, now);
    this.#tracker.record(member, outcome, now);
  }

  defer(member: Member<U>, until: number): void {
    if (until > member.notBefore) {
      member.notBefore = until;
      this.#tracker.changed();
    }
  }

  hasAlternative(exclude: readonly Member<U>[]): boolean {
    this.#refresh(this.#clock.now());
    for (const member of this.#usable) if (!exclude.includes(member)) return true;
    return false;
  }

  unavailableError(): RelayError {
    const now = this.#clock.now();
    const reasons = this.members.map((m) => {
      const gate = m.gate;
      if (gate !== undefined && gate.state === 'half-open') return `${m.name}: breaker half-open, probe in flight`;
      if (gate !== undefined && gate.state === 'open') {
        return `${m.name}: breaker open, next probe in ${Math.max(0, Math.ceil(gate.openUntil - now))} ms`;
      }
      return `${m.name}: unavailable`;
    });
    return new RelayError(
      RelayErrorCode.UpstreamUnavailable,
      `no upstream of group '${this.name}' can take a call (${reasons.join('; ')}); calls fail fast until a probe succeeds`,
      { notSent: true },
    );
  }

  #refresh(now: number): void {
    if (this.#version === this.#tracker.version && now < this.#recheckAt) return;
    this.#version = this.#tracker.version;
    let recheckAt = Infinity;
    const usable: Member<U>[] = [];
    for (const member of this.members) {
      if (member.usable(now)) usable.push(member);
      const next = member.nextChange(now);
      if (next < recheckAt) recheckAt = next;
    }
    this.#recheckAt = recheckAt;
    if (usable.length === 0) {
      // Panic: every upstream is down, ejected or deferred. Try those whose breaker allows it.
      const allowed = this.members.filter((m) => m.gate === undefined || m.gate.available(now));
      this.#usable = allowed;
      this.#eligible = allowed;
      return;
    }
    this.#usable = usable;
    const prefer = this.prefer;
    if (prefer === undefined) {
      this.#eligible = usable;
      return;
    }
    const preferred = usable.filter((m) => m.matches(prefer));
    this.#eligible = preferred.length > 0 ? preferred : usable;
  }
}
