import { EventEmitter } from 'node:events';

import type { Tool } from '@modelcontextprotocol/client';
import * as z from 'zod';

import {
  Balancer,
  createStrategy,
  HealthTracker,
  Member,
  type BalanceEventMap,
  type ProbeResult,
  type Tags,
} from '../balance/index.js';
import {
  balanceSectionSchema,
  resolveBalanceSection,
  resolveProxyConfig,
  type BalanceSection,
  type ProxyConfig,
  type ResolvedBalanceConfig,
  type ResolvedRelayConfig,
  type ResolvedUpstreamConfig,
} from '../config/index.js';
import { isRelayError, RelayError, RelayErrorCode } from '../errors/index.js';
import {
  CircuitBreaker,
  executeWithResilience,
  monotonicClock,
  realSleep,
  RetryBudget,
  type BreakerState,
  type BreakerStateChange,
  type Clock,
  type ResilienceSettings,
  type RetryEvent,
  type Sleep,
} from '../resilience/index.js';
import {
  createUpstream,
  type CallOptions,
  type NotificationListener,
  type Upstream,
  type UpstreamInfo,
} from '../upstream/index.js';
import { ProxyFactory } from './factory.js';

/**
 * Options of {@link ProxyManager}: the `balance` settings (strategy, groups, prefer, health,
 * ejection, breaker, budget, idempotent, queue — see docs/config.md), plus time and chance,
 * injected for exact tests.
 */
export interface ProxyManagerOptions extends BalanceSection {
  /**
   * Settings already resolved, e.g. a config file's `balance:` section from `loadConfigFile`; when
   * given, the balance fields above are ignored. See {@link ProxyManager.fromConfig}.
   */
  resolved?: ResolvedBalanceConfig | undefined;
  /** Monotonic milliseconds for latency, backoff, breakers and ejections. Default `performance.now()`. */
  clock?: Clock | undefined;
  /** Uniform in [0, 1), for power of two choices and jitter. Default `Math.random`. */
  random?: (() => number) | undefined;
  /** How retries wait. Default a timer that an abort cuts short. */
  sleep?: Sleep | undefined;
}

/** Options of {@link ProxyManager.getFactory}. */
export interface GroupFactoryOptions {
  /** Tags this factory's calls prefer (e.g. `{ region: 'eu' }`); falls back to the rest of the group. Default: the group's. */
  prefer?: Tags | undefined;
}

/** One upstream's health, as {@link ProxyManager.health} reports it. */
export interface UpstreamHealth {
  name: string;
  /** `down`: active probes failed; `ejected`: outlier detection took it out for a while; otherwise `up`. */
  status: 'up' | 'ejected' | 'down';
  /** Whether a call could go to it now (up, not ejected, not deferred, breaker allowing). */
  available: boolean;
  breaker: BreakerState | 'disabled';
  /** When the breaker is open: ms until a probe may go. */
  breakerRetryInMs: number | undefined;
  /** Peak-EWMA latency estimate, in ms (0 before the first answer). */
  latencyMs: number;
  /** Calls sent to it through the manager and not yet finished. */
  outstanding: number;
  pool: { inFlight: number; queued: number; capacity: number };
  consecutiveFailures: number;
  /** Ejections in a row. */
  ejections: number;
  /** When ejected: ms until it comes back. */
  ejectedForMs: number;
  /** When it asked for a pause (`Retry-After`): ms left. */
  retryAfterMs: number;
  probe: ProbeResult | undefined;
  /** Attempts sent to it, answered ones, failed ones (transport failures and timeouts). */
  attempts: number;
  successes: number;
  failures: number;
  groups: string[];
  weight: number;
  priority: number;
  tags: Tags;
}

/** What {@link ProxyManager.events} emits. */
export interface ManagerEventMap extends BalanceEventMap {
  breaker: [change: BreakerStateChange];
  retry: [event: RetryEvent & { group: string }];
}

/** The methods that never change anything upstream: retried after any transport failure. */
const READ_ONLY_METHODS: ReadonlySet<string> = new Set([
  'ping',
  'server/discover',
  'tools/list',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'prompts/list',
  'prompts/get',
  'completion/complete',
]);

const DEFAULT_GROUP = 'default';
const MAX_RETRY_DELAY_MS = 30_000;

interface GroupSpec {
  name: string;
  members: Member<Upstream>[];
  strategy: ResolvedBalanceConfig['strategy'];
  prefer: Tags | undefined;
  maxRetries: number | undefined;
}

/**
 * The seed's `MCPProxyManager` and `WorkloadAwareMCPManager` in one: many upstreams, named groups
 * of them (`compute`, `storage`, `ai`, …; `default` is every upstream unless a group says
 * otherwise), and a factory per group that balances **every call** — not one pick at creation.
 *
 * Each call goes: balancer (strategy over the upstreams that are up, not ejected and whose breaker
 * allows, preferred tags first) → deadline (reset by progress, capped by `max_total_timeout`) →
 * the upstream's pool (bounded queue, `RELAY_POOL_EXHAUSTED`) → outcome recorded (latency,
 * breaker, outlier ejection) → on failure a retry, on another upstream, only where it cannot run
 * the call twice, within the retry budget.
 *
 * ```ts
 * await using manager = new ProxyManager(
 *   [{ serverUrl: 'http://compute-1:8000/mcp', name: 'compute-1' }, { serverUrl: 'http://compute-2:8000/mcp', name: 'compute-2' }],
 *   { strategy: 'fastest', groups: { compute: ['compute-1', 'compute-2'] } },
 * );
 * const result = await manager.getFactory('compute').createToolProxy('add').execute({ a: 1, b: 2 });
 * ```
 */
export class ProxyManager implements AsyncDisposable {
  /** Every upstream, resolved, in the order given. */
  readonly upstreams: readonly ResolvedUpstreamConfig[];
  readonly settings: ResolvedBalanceConfig;
  /** `breaker`, `ejected`, `health` and `retry` events. Telemetry can also use the diagnostics channels. */
  readonly events = new EventEmitter<ManagerEventMap>();
  readonly #members: Member<Upstream>[];
  readonly #tracker: HealthTracker;
  readonly #groups = new Map<string, GroupSpec>();
  readonly #routers = new Map<string, { router: GroupRouter; factory: ProxyFactory }>();
  readonly #budgets = new Map<string, RetryBudget | undefined>();
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #sleep: Sleep;
  readonly #idempotent: RegExp | undefined;
  readonly #annotations = new Map<Member<Upstream>, Promise<Map<string, boolean>>>();
  #closed = false;

  constructor(configs: readonly (ProxyConfig | ResolvedUpstreamConfig)[], options: ProxyManagerOptions = {}) {
    const { clock, random, sleep, resolved, ...section } = options;
    if (resolved !== undefined) {
      this.settings = resolved;
    } else {
      const parsed = balanceSectionSchema.safeParse(section);
      if (!parsed.success) {
        throw new RelayError(
          RelayErrorCode.InvalidConfig,
          `invalid ProxyManager options:\n${z.prettifyError(parsed.error)}`,
          { cause: parsed.error },
        );
      }
      this.settings = resolveBalanceSection(parsed.data);
    }
    this.#clock = clock ?? monotonicClock;
    this.#random = random ?? Math.random;
    this.#sleep = sleep ?? realSleep;
    if (configs.length === 0) {
      throw new RelayError(RelayErrorCode.InvalidConfig, 'ProxyManager needs at least one upstream config, got none');
    }
    this.upstreams = configs.map((config) => (isResolved(config) ? config : resolveProxyConfig(config)));
    const seen = new Set<string>();
    for (const config of this.upstreams) {
      if (seen.has(config.name)) {
        throw new RelayError(
          RelayErrorCode.InvalidConfig,
          `two upstreams are named '${config.name}'; give each config a distinct name`,
        );
      }
      seen.add(config.name);
    }
    this.#idempotent = globsToRegExp(this.settings.idempotent);

    const now = this.#clock.now();
    this.#members = this.upstreams.map((config, index) => this.#createMember(config, index, now));
    const health = this.settings.health;
    this.#tracker = new HealthTracker(
      this.#members,
      {
        consecutiveFailures: this.settings.ejection.failures,
        baseEjectionMs: this.settings.ejection.durationMs,
        maxEjectionMs: this.settings.ejection.maxMs,
        maxEjectedShare: this.settings.ejection.share,
      },
      health === undefined
        ? undefined
        : {
            intervalMs: health.intervalMs,
            timeoutMs: health.timeoutMs,
            unhealthyThreshold: health.fall,
            healthyThreshold: health.rise,
          },
      this.#clock,
      probeUpstream,
    );
    this.#tracker.events.on('ejected', (event) => this.events.emit('ejected', event));
    this.#tracker.events.on('health', (event) => this.events.emit('health', event));
    for (const member of this.#members) {
      const gate = member.gate as CircuitBreaker | undefined;
      gate?.onStateChange((change) => {
        this.#tracker.changed();
        this.events.emit('breaker', change);
      });
    }

    const byName = new Map(this.#members.map((m) => [m.name, m]));
    for (const group of this.settings.groups) {
      const members = group.upstreams.map((name) => {
        const member = byName.get(name);
        if (member === undefined) {
          throw new RelayError(
            RelayErrorCode.InvalidConfig,
            `balance group '${group.name}' names upstream '${name}', which is not configured; known: ${[...byName.keys()].join(', ')}`,
          );
        }
        return member;
      });
      this.#groups.set(group.name, { ...group, members });
    }
    if (!this.#groups.has(DEFAULT_GROUP)) {
      this.#groups.set(DEFAULT_GROUP, {
        name: DEFAULT_GROUP,
        members: this.#members,
        strategy: this.settings.strategy,
        prefer: this.settings.prefer,
        maxRetries: undefined,
      });
    }
    this.#tracker.start();
  }

  /**
   * A manager for a loaded config file: its upstreams, and its `balance:` section (defaults when
   * absent). Time and chance may still be injected.
   */
  static fromConfig(
    config: Pick<ResolvedRelayConfig, 'upstreams' | 'balance'>,
    inject: Pick<ProxyManagerOptions, 'clock' | 'random' | 'sleep'> = {},
  ): ProxyManager {
    return new ProxyManager(config.upstreams, {
      ...inject,
      resolved: config.balance ?? resolveBalanceSection(undefined),
    });
  }

  /** The group names, `default` included. */
  get groups(): string[] {
    return [...this.#groups.keys()];
  }

  /**
   * A factory whose every call is balanced over `group`'s upstreams (default: the `default` group),
   * with the same API as {@link ProxyFactory}: tool, resource and prompt proxies, lists,
   * `validateConnection`. The same factory is returned for the same group and preference until it
   * is closed; closing it does not close the upstreams (the manager's `close` does).
   */
  getFactory(group: string = DEFAULT_GROUP, options: GroupFactoryOptions = {}): ProxyFactory {
    return this.#route(group, options).factory;
  }

  /**
   * The router behind {@link getFactory}: an {@link Upstream} that balances each request over the
   * group, with retries, breakers and deadlines. For layers that speak JSON-RPC directly (the gateway).
   */
  router(group: string = DEFAULT_GROUP, options: GroupFactoryOptions = {}): GroupRouter {
    return this.#route(group, options).router;
  }

  /** One snapshot per upstream, in config order. */
  health(): UpstreamHealth[] {
    const now = this.#clock.now();
    return this.#members.map((member) => {
      const gate = member.gate;
      const ejected = now < member.ejectedUntil;
      return {
        name: member.name,
        status: !member.probeHealthy ? 'down' : ejected ? 'ejected' : 'up',
        available: member.usable(now),
        breaker: gate === undefined ? 'disabled' : gate.state,
        breakerRetryInMs: gate?.state === 'open' ? Math.max(0, gate.openUntil - now) : undefined,
        latencyMs: member.ewma.peek(),
        outstanding: member.outstanding,
        pool: member.upstream.load,
        consecutiveFailures: member.consecutiveFailures,
        ejections: member.ejections,
        ejectedForMs: ejected ? member.ejectedUntil - now : 0,
        retryAfterMs: Math.max(0, member.notBefore - now),
        probe: member.lastProbe,
        attempts: member.attempts,
        successes: member.successes,
        failures: member.failures,
        groups: [...this.#groups.values()].filter((g) => g.members.includes(member)).map((g) => g.name),
        weight: member.weight,
        priority: member.priority,
        tags: member.tags,
      };
    });
  }

  /** Probes every upstream now (whatever the interval) and returns the snapshot after. */
  async checkHealth(): Promise<UpstreamHealth[]> {
    await this.#tracker.checkNow();
    return this.health();
  }

  /** Stops the probes and closes every factory and upstream. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#tracker.stop();
    const factories = [...this.#routers.values()].map(({ factory }) => factory.close());
    this.#routers.clear();
    await Promise.allSettled(factories);
    await Promise.allSettled(this.#members.map((m) => m.upstream.close()));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #createMember(config: ResolvedUpstreamConfig, index: number, now: number): Member<Upstream> {
    const queue = this.settings.queue;
    const upstream = createUpstream({
      name: config.name,
      transport: config.transport,
      connectionPoolSize: config.connectionPoolSize,
      processes: config.processes,
      timeoutMs: config.timeoutMs,
      maxResponseBytes: config.maxResponseBytes,
      protocol: config.protocol,
      ...(queue.length === undefined ? {} : { maxQueue: queue.length }),
      ...(queue.waitMs === undefined ? {} : { queueTimeoutMs: queue.waitMs }),
    });
    const breaker = this.settings.breaker;
    return new Member<Upstream>({
      name: config.name,
      index,
      upstream,
      weight: config.weight ?? 1,
      priority: config.priority ?? 0,
      tags: config.tags ?? {},
      gate:
        breaker === undefined
          ? undefined
          : new CircuitBreaker({
              upstream: config.name,
              failureThreshold: breaker.failures,
              halfOpenAfterMs: breaker.cooldownMs,
              maxHalfOpenAfterMs: breaker.maxMs,
              clock: this.#clock,
            }),
      decayMs: this.settings.decayMs,
      now,
    });
  }

  #route(groupName: string, options: GroupFactoryOptions): { router: GroupRouter; factory: ProxyFactory } {
    if (this.#closed) {
      throw new RelayError(RelayErrorCode.Closed, 'the ProxyManager is closed', { notSent: true });
    }
    const group = this.#groups.get(groupName);
    if (group === undefined) {
      throw new RelayError(
        RelayErrorCode.NotFound,
        `no balance group '${groupName}'; groups: ${[...this.#groups.keys()].join(', ')}`,
      );
    }
    const prefer = options.prefer ?? group.prefer;
    const key = prefer === undefined ? groupName : `${groupName}\0${canonicalTags(prefer)}`;
    const existing = this.#routers.get(key);
    if (existing !== undefined && !existing.router.closed) return existing;

    const balancer = new Balancer<Upstream>({
      name: groupName,
      members: group.members,
      strategy: createStrategy(group.strategy, { random: this.#random, size: this.#members.length }),
      prefer,
      tracker: this.#tracker,
      clock: this.#clock,
    });
    const first = this.upstreams[group.members[0]!.index]!;
    if (!this.#budgets.has(groupName)) {
      const budget = this.settings.budget;
      this.#budgets.set(
        groupName,
        budget === undefined
          ? undefined
          : new RetryBudget({
              ratio: budget.ratio,
              minRetriesPerSecond: budget.floor,
              windowMs: budget.windowMs,
              clock: this.#clock,
            }),
      );
    }
    const maxTotals = group.members
      .map((m) => this.upstreams[m.index]!.maxTotalTimeoutMs)
      .filter((ms): ms is number => ms !== undefined);
    const settings: ResilienceSettings = {
      maxRetries: group.maxRetries ?? first.maxRetries,
      retryDelayMs: first.retryDelayMs,
      maxRetryDelayMs: MAX_RETRY_DELAY_MS,
      maxTotalMs: maxTotals.length === 0 ? undefined : Math.min(...maxTotals),
      budget: this.#budgets.get(groupName),
      clock: this.#clock,
      random: this.#random,
      sleep: this.#sleep,
      isIdempotent: (method, params) => this.#isIdempotent(group, method, params),
      onRetry: (event) => this.events.emit('retry', { ...event, group: groupName }),
    };
    const trusted = group.members.filter((m) => this.upstreams[m.index]!.trustAnnotations);
    // Trusted annotations are read when a call fails; load them with the first tool call so they are ready by then.
    const prefetch =
      trusted.length === 0
        ? undefined
        : () => {
            for (const member of trusted) void this.#toolAnnotations(member);
          };
    const router = new GroupRouter(groupName, balancer, settings, prefetch);
    // The factory sees one upstream named after the group; retries are the router's, so its own are off.
    const factoryConfig: ResolvedUpstreamConfig = Object.freeze({ ...first, name: groupName, maxRetries: 0 });
    const entry = { router, factory: new ProxyFactory(factoryConfig, router) };
    this.#routers.set(key, entry);
    return entry;
  }

  /**
   * Whether a call may run twice: read-only protocol methods; tools named in `balance.idempotent`;
   * tools an upstream with `trust_annotations` marks `readOnlyHint` or `idempotentHint` (and no
   * trusted upstream of the group lists without them).
   */
  #isIdempotent(
    group: GroupSpec,
    method: string,
    params: Record<string, unknown> | undefined,
  ): boolean | Promise<boolean> {
    if (READ_ONLY_METHODS.has(method)) return true;
    if (method !== 'tools/call') return false;
    const name = params?.['name'];
    if (typeof name !== 'string') return false;
    if (this.#idempotent?.test(name) === true) return true;
    const trusted = group.members.filter((m) => this.upstreams[m.index]!.trustAnnotations);
    if (trusted.length === 0) return false;
    return Promise.all(trusted.map((m) => this.#toolAnnotations(m))).then((maps) => {
      let verdict = false;
      for (const map of maps) {
        const safe = map.get(name);
        if (safe === false) return false;
        if (safe === true) verdict = true;
      }
      return verdict;
    });
  }

  /** Tool name → whether the upstream annotates it read-only or idempotent; reloaded after `list_changed`. */
  #toolAnnotations(member: Member<Upstream>): Promise<Map<string, boolean>> {
    let loading = this.#annotations.get(member);
    if (loading === undefined) {
      // Bounded: this runs on the failure path of a call, whose retry waits for it.
      loading = listAllTools(member.upstream, Math.min(this.upstreams[member.index]!.timeoutMs, 5000)).then(
        (tools) =>
          new Map(
            tools.map((tool) => [
              tool.name,
              tool.annotations?.readOnlyHint === true || tool.annotations?.idempotentHint === true,
            ]),
          ),
        () => {
          // Unknown for now (the upstream may be the one that failed); ask again next time.
          this.#annotations.delete(member);
          return new Map<string, boolean>();
        },
      );
      this.#annotations.set(member, loading);
      const stop = member.upstream.onNotification((notification) => {
        if (notification.method === 'notifications/tools/list_changed') {
          this.#annotations.delete(member);
          stop();
        }
      });
    }
    return loading;
  }
}

/**
 * One group of upstreams seen as one {@link Upstream}: each request is balanced, deadlined,
 * retried and recorded by {@link executeWithResilience}. Closing it ends this view only; the
 * upstreams belong to the manager.
 */
export class GroupRouter implements Upstream {
  readonly name: string;
  readonly balancer: Balancer<Upstream>;
  readonly #settings: ResilienceSettings;
  #prefetch: (() => void) | undefined;
  #closed = false;

  constructor(
    name: string,
    balancer: Balancer<Upstream>,
    settings: ResilienceSettings,
    prefetchAnnotations?: () => void,
  ) {
    this.name = name;
    this.balancer = balancer;
    this.#settings = settings;
    this.#prefetch = prefetchAnnotations;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The negotiated facts of the first upstream that has connected. */
  get info(): UpstreamInfo | undefined {
    for (const member of this.balancer.members) {
      const info = member.upstream.info;
      if (info !== undefined) return info;
    }
    return undefined;
  }

  get load(): { inFlight: number; queued: number; capacity: number } {
    let inFlight = 0;
    let queued = 0;
    let capacity = 0;
    for (const member of this.balancer.members) {
      const load = member.upstream.load;
      inFlight += load.inFlight;
      queued += load.queued;
      capacity += load.capacity;
    }
    return { inFlight, queued, capacity };
  }

  /** Connects every upstream of the group; resolves with the first that succeeds, rejects if none does. */
  async connect(signal?: AbortSignal): Promise<UpstreamInfo> {
    if (this.#closed) throw this.#closedError();
    try {
      return await Promise.any(this.balancer.members.map((m) => m.upstream.connect(signal)));
    } catch (error) {
      const errors: unknown[] = error instanceof AggregateError ? error.errors : [error];
      const first = errors[0];
      if (isRelayError(first) && this.balancer.members.length === 1) throw first;
      throw new RelayError(
        RelayErrorCode.UpstreamUnavailable,
        `no upstream of group '${this.name}' could be connected: ${errors
          .map((e) => (e instanceof Error ? e.message : String(e)))
          .join('; ')}`,
        { notSent: true, cause: error },
      );
    }
  }

  request(method: string, params: Record<string, unknown> | undefined, options?: CallOptions): Promise<unknown> {
    if (this.#closed) return Promise.reject(this.#closedError());
    if (this.#prefetch !== undefined && method === 'tools/call') {
      this.#prefetch();
      this.#prefetch = undefined;
    }
    return executeWithResilience(this.balancer, method, params, options, this.#settings);
  }

  /** Notifications of every upstream of the group. */
  onNotification(listener: NotificationListener): () => void {
    const stops = this.balancer.members.map((m) => m.upstream.onNotification(listener));
    return () => {
      for (const stop of stops) stop();
    };
  }

  /** Asks every upstream of the group for these change notifications; resolves when one has acknowledged. */
  async subscribe(subscription: object): Promise<void> {
    const results = await Promise.allSettled(
      this.balancer.members.map((m) => {
        const target = m.upstream as { subscribe?: (s: object) => Promise<void> };
        return target.subscribe === undefined ? Promise.resolve() : target.subscribe(subscription);
      }),
    );
    if (results.some((r) => r.status === 'fulfilled')) return;
    throw (results[0] as PromiseRejectedResult).reason;
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #closedError(): RelayError {
    return new RelayError(RelayErrorCode.Closed, `the factory of group '${this.name}' is closed`, { notSent: true });
  }
}

/** The active health probe: connect, then the cheapest round trip of the negotiated revision. */
async function probeUpstream(member: Member, signal: AbortSignal): Promise<void> {
  const upstream = member.upstream as Upstream;
  const info = await upstream.connect(signal);
  // 2026-07-28 has no `ping`: `server/discover` is its cheapest liveness check.
  await upstream.request(info.era === 'modern' ? 'server/discover' : 'ping', undefined, { signal });
}

async function listAllTools(upstream: Upstream, timeoutMs: number): Promise<Tool[]> {
  const tools: Tool[] = [];
  const seen = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = (await upstream.request('tools/list', cursor === undefined ? undefined : { cursor }, {
      timeoutMs,
    })) as { tools?: Tool[]; nextCursor?: string };
    tools.push(...(page.tools ?? []));
    cursor = page.nextCursor;
    if (cursor !== undefined) {
      if (seen.has(cursor)) break;
      seen.add(cursor);
    }
  } while (cursor !== undefined);
  return tools;
}

function globsToRegExp(globs: readonly string[]): RegExp | undefined {
  if (globs.length === 0) return undefined;
  const parts = globs.map((glob) =>
    glob
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.'),
  );
  return new RegExp(`^(?:${parts.join('|')})$`);
}

function canonicalTags(tags: Tags): string {
  return Object.keys(tags)
    .sort()
    .map((key) => `${key}=${tags[key]}`)
    .join(',');
}

function isResolved(config: ProxyConfig | ResolvedUpstreamConfig): config is ResolvedUpstreamConfig {
  return 'transport' in config && typeof config.timeoutMs === 'number';
}
