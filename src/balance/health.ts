import { channel } from 'node:diagnostics_channel';
import { EventEmitter } from 'node:events';

import { isRelayError, RelayError, RelayErrorCode } from '../errors/index.js';
import { Outcome, outcomeOf, type Clock } from '../resilience/index.js';
import type { Member } from './member.js';

export interface EjectionOptions {
  /** Consecutive transport failures or timeouts that eject an upstream. Default 5. */
  consecutiveFailures: number;
  /** The first ejection's length, in ms; each ejection in a row doubles it. Default 5000. */
  baseEjectionMs: number;
  /** The longest ejection, in ms. Default 300 000. */
  maxEjectionMs: number;
  /**
   * The largest share of a group that may be ejected at once, 0-1. Default 0.5: at most one of two
   * or three, two of four or five. A lone upstream is never ejected (its breaker still opens).
   */
  maxEjectedShare: number;
}

export interface ProbeOptions {
  /** Time between two probes of an upstream, in ms. Default 10 000. */
  intervalMs: number;
  /** How long a probe may take, in ms. Default 2000. */
  timeoutMs: number;
  /** Failed probes in a row that mark an upstream down. Default 2. */
  unhealthyThreshold: number;
  /** Good probes in a row that bring it back. Default 1. */
  healthyThreshold: number;
}

/** What a balancer group exposes to outlier ejection: how much of it is ejected, how much may be. */
export interface EjectionScope {
  readonly name: string;
  /** How many of its upstreams may be ejected at once. */
  readonly maxEjected: number;
  ejectedCount(now: number): number;
}

/** Sends one probe (connect, then `ping` / `server/discover`) to an upstream; rejects when it fails. */
export type Prober = (member: Member, signal: AbortSignal) => Promise<void>;

export interface BalanceEventMap {
  /** An upstream was ejected by outlier detection. */
  ejected: [event: { upstream: string; forMs: number; ejections: number; consecutiveFailures: number }];
  /** Active probes marked an upstream down or up. */
  health: [event: { upstream: string; healthy: boolean; error?: { code: string; message: string } | undefined }];
}

/** Published on ejections and health changes, as `{ kind: 'ejected' | 'health', ... }`. */
export const healthChannel = channel('mcp-relay:balance:health');

/**
 * The health of a set of upstreams, shared by every group that uses them.
 *
 * Passive outlier detection (Envoy's "consecutive 5xx" outlier detection): an upstream whose
 * calls fail `consecutiveFailures` times in a row (transport failures and timeouts, not tool
 * errors) is ejected for `baseEjectionMs × 2^(ejections in a row − 1)`, capped at
 * `maxEjectionMs`, unless that would eject more than `maxEjectedShare` of any group it is in. A
 * success after it has stayed back for as long as its last ejection resets the doubling.
 *
 * Active probes: every `intervalMs`, a `ping` (or `server/discover` on 2026-07-28) with a
 * `timeoutMs` deadline; `unhealthyThreshold` failures in a row mark an upstream down (no calls),
 * `healthyThreshold` successes bring it back. A good probe also ends an ejection early (Envoy's
 * `successful_active_health_check_uneject_host`) and, once an open breaker's wait is over, serves
 * as its half-open probe so that no caller's call has to.
 *
 * `version` changes whenever an upstream's availability changes, so balancers can cache their
 * list of available upstreams between changes.
 */
export class HealthTracker {
  readonly members: readonly Member[];
  readonly ejection: EjectionOptions;
  readonly probe: ProbeOptions | undefined;
  readonly events = new EventEmitter<BalanceEventMap>();
  version = 0;
  readonly #clock: Clock;
  readonly #prober: Prober | undefined;
  readonly #scopes: EjectionScope[][];
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #abort = new AbortController();
  #closed = false;

  constructor(
    members: readonly Member[],
    ejection: EjectionOptions,
    probe: ProbeOptions | undefined,
    clock: Clock,
    prober: Prober | undefined,
  ) {
    this.members = members;
    this.ejection = ejection;
    this.probe = probe;
    this.#clock = clock;
    this.#prober = prober;
    this.#scopes = members.map(() => []);
  }

  /** Registers a group, so that ejections respect its `maxEjected`. */
  attach(scope: EjectionScope, members: readonly Member[]): void {
    for (const member of members) this.#scopes[member.index]!.push(scope);
  }

  /** Something outside (a breaker, a `Retry-After`) changed an upstream's availability. */
  changed(): void {
    this.version++;
  }

  /** Passive outlier detection: called with the outcome of every call. */
  record(member: Member, outcome: Outcome, now: number): void {
    if (outcome === Outcome.Success) {
      member.consecutiveFailures = 0;
      if (member.ejections > 0 && member.returnedAt > 0 && now - member.returnedAt >= member.lastEjectionMs) {
        member.ejections = 0;
      }
      return;
    }
    if (outcome !== Outcome.Failure) return;
    if (++member.consecutiveFailures < this.ejection.consecutiveFailures || now < member.ejectedUntil) return;
    this.#eject(member, now);
  }

  /** Starts probing every `intervalMs` (when probes are configured). */
  start(): void {
    if (this.probe === undefined || this.#prober === undefined || this.#timer !== undefined || this.#closed) return;
    this.#timer = setInterval(() => {
      void this.checkNow();
    }, this.probe.intervalMs);
    this.#timer.unref();
  }

  /** Probes every upstream now; resolves when all have answered or timed out. Never rejects. */
  checkNow(): Promise<void> {
    if (this.#prober === undefined || this.#closed) return Promise.resolve();
    this.#running ??= Promise.all(this.members.map((member) => this.#probeOne(member))).then(
      () => {
        this.#running = undefined;
      },
      () => {
        this.#running = undefined;
      },
    );
    return this.#running;
  }

  stop(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#abort.abort(new RelayError(RelayErrorCode.Closed, 'health probes stopped', { notSent: true }));
    this.#abort = new AbortController();
  }

  #eject(member: Member, now: number): void {
    for (const scope of this.#scopes[member.index]!) {
      if (scope.ejectedCount(now) + 1 > scope.maxEjected) return;
    }
    member.ejections++;
    const forMs = Math.min(this.ejection.maxEjectionMs, this.ejection.baseEjectionMs * 2 ** (member.ejections - 1));
    member.ejectedUntil = now + forMs;
    member.returnedAt = member.ejectedUntil;
    member.lastEjectionMs = forMs;
    const consecutiveFailures = member.consecutiveFailures;
    member.consecutiveFailures = 0;
    this.version++;
    const event = { upstream: member.name, forMs, ejections: member.ejections, consecutiveFailures };
    this.events.emit('ejected', event);
    if (healthChannel.hasSubscribers) healthChannel.publish({ kind: 'ejected', ...event });
  }

  async #probeOne(member: Member): Promise<void> {
    const probe = this.probe!;
    const started = this.#clock.now();
    const signal = AbortSignal.any([this.#abort.signal, AbortSignal.timeout(probe.timeoutMs)]);
    let outcome: Outcome = Outcome.Success;
    let failure: { code: string; message: string } | undefined;
    try {
      await this.#prober!(member, signal);
    } catch (error) {
      if (this.#closed) return;
      if (signal.aborted) {
        // Our own probe deadline: a timeout, whatever the transport reported.
        outcome = Outcome.Failure;
        failure = {
          code: RelayErrorCode.Timeout,
          message: `health probe of upstream '${member.name}' got no answer within ${probe.timeoutMs} ms`,
        };
      } else {
        // A full pool or an abort says nothing about the upstream: Neutral, and ignored below.
        outcome = outcomeOf(error);
        failure = isRelayError(error)
          ? { code: error.code, message: error.message }
          : { code: RelayErrorCode.UpstreamUnavailable, message: String((error as Error)?.message ?? error) };
      }
    }
    if (this.#closed) return;
    const now = this.#clock.now();
    member.lastProbe = { ok: outcome === Outcome.Success, latencyMs: now - started, at: Date.now(), error: failure };
    if (outcome === Outcome.Neutral) return;
    const gate = member.gate;
    if (gate !== undefined && gate.state === 'open' && gate.available(now)) {
      const pass = gate.tryPass(now);
      if (pass !== 0) gate.record(pass, outcome, now);
    }
    if (outcome === Outcome.Success) {
      member.probeFailures = 0;
      member.probeSuccesses++;
      if (now < member.ejectedUntil) {
        member.ejectedUntil = now;
        member.returnedAt = now;
        this.version++;
      }
      if (!member.probeHealthy && member.probeSuccesses >= probe.healthyThreshold) this.#setHealthy(member, true);
    } else {
      member.probeSuccesses = 0;
      member.probeFailures++;
      if (member.probeHealthy && member.probeFailures >= probe.unhealthyThreshold) {
        this.#setHealthy(member, false, failure);
      }
    }
  }

  #setHealthy(member: Member, healthy: boolean, error?: { code: string; message: string }): void {
    member.probeHealthy = healthy;
    this.version++;
    const event = { upstream: member.name, healthy, error };
    this.events.emit('health', event);
    if (healthChannel.hasSubscribers) healthChannel.publish({ kind: 'health', ...event });
  }
}
