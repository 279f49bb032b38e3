/**
 * The proxy's instrumentation, published on `node:diagnostics_channel` (the undici convention):
 * telemetry subscribes, the hot path imports no metrics library and formats nothing. Every publish
 * is guarded by `hasSubscribers`, so a factory nobody observes pays one property read per call.
 *
 * - `mcp-relay:call`: one event per operation (one JSON-RPC request through the pipeline; a list
 *   helper that walks pages makes one per page), cache hits included, when it settles.
 * - `tracing:mcp-relay:call:*` (a `TracingChannel`): around each operation that is not a fresh
 *   cache hit, so a tracer can open a span before it runs and make it the active one.
 * - `tracing:mcp-relay:upstream:*` (a `TracingChannel`): around each upstream attempt (retries are
 *   attempts). A `start` subscriber may replace `meta` on the context; the attempt sends it as the
 *   request's `_meta` (how `traceparent` reaches the upstream).
 */
import diagnosticsChannel from 'node:diagnostics_channel';

import { isRelayError } from '../errors/index.js';
import type { CallOptions, Upstream } from '../upstream/index.js';
import type { ProxyFactory } from './factory.js';

/** How an operation ended: a result, a tool's own failure (`isError: true`), or an error thrown. */
export type CallOutcome = 'ok' | 'error' | 'tool_error';
/**
 * What the cache did: served a fresh entry (`hit`, from memory or Redis), a stale one under
 * stale-while-revalidate (`stale`), asked the upstream or shared a call in flight (`miss`), or was
 * not consulted (`none`: not cacheable, bypassed, or caching off).
 */
export type CallCacheResult = 'hit' | 'stale' | 'miss' | 'none';

/** Published on `mcp-relay:call` when an operation settles. Valid during the synchronous callback only. */
export interface CallEvent {
  /** The factory that served it: lets a subscriber watch some factories and not others. */
  readonly factory: ProxyFactory;
  /** The upstream's configured name. */
  readonly upstream: string;
  /** The JSON-RPC method, e.g. `tools/call`. */
  readonly method: string;
  /** The tool or prompt name, the resource URI, or `''` (lists and other methods). */
  readonly name: string;
  /** The call's tenant; `''` when there is none. */
  readonly tenant: string;
  /**
   * Wall time of the operation, in ms. A fresh cache hit takes well under a microsecond, and two
   * `performance.now()` reads (~40 ns each here) cost it about 8 % of its ops/s, more than the
   * whole telemetry budget (5 %, bench/suites/telemetry.ts); so one hit in 16 is timed and the
   * others carry the factory's latest timed hit. `timed` says which. Counts are always exact.
   */
  durationMs: number;
  /** False on a hit that carries the latest timed hit's duration rather than its own. */
  timed: boolean;
  outcome: CallOutcome;
  cache: CallCacheResult;
  /** The `RelayError` code when `outcome` is `error` (`RELAY_UNKNOWN` for anything else thrown). */
  errorCode?: string | undefined;
}

/** Context of `tracing:mcp-relay:call:*`; becomes the {@link CallEvent} published when it settles. */
export type CallTraceContext = CallEvent & { result?: unknown; error?: unknown };

/** Context of `tracing:mcp-relay:upstream:*`: one upstream attempt. */
export interface UpstreamAttemptContext {
  readonly upstream: string;
  readonly method: string;
  readonly name: string;
  /** `_meta` sent with the request; a `start` subscriber may replace it (e.g. adding `traceparent`). */
  meta: Readonly<Record<string, unknown>> | undefined;
  result?: unknown;
  error?: unknown;
}

export const CALL_CHANNEL = 'mcp-relay:call';
export const callChannel = diagnosticsChannel.channel(CALL_CHANNEL);
export const callTracing = diagnosticsChannel.tracingChannel<unknown, CallTraceContext>('mcp-relay:call');
export const upstreamTracing = diagnosticsChannel.tracingChannel<unknown, UpstreamAttemptContext>('mcp-relay:upstream');

/** The channel names, for subscribers that do not import this module. */
export const PROXY_CHANNELS = {
  call: CALL_CHANNEL,
  /** Prefix of the call `TracingChannel`: `tracing:mcp-relay:call:start`, `:end`, `:asyncStart`, `:asyncEnd`, `:error`. */
  callTrace: 'mcp-relay:call',
  upstreamTrace: 'mcp-relay:upstream',
} as const;

/** Hits between two timed ones; a power of two. */
const HIT_SAMPLE_MASK = 15;

/**
 * Per-factory clock of observed calls: decides which hits are timed and remembers the latest
 * timed hit. One per factory, allocated with it; untouched while nobody observes.
 */
export class CallClock {
  #calls = 0;
  #lastHitMs = 0;
  /**
   * The one hit event of this factory, refilled for each hit: a hit allocates nothing. Subscribers
   * may read an event only during their synchronous callback (as `CallEvent` says).
   */
  #hit: Mutable<CallEvent> | undefined;

  /** Start of an observed call that may be a hit: a clock reading on one call in 16, else 0. */
  start(): number {
    return (this.#calls++ & HIT_SAMPLE_MASK) === 0 ? performance.now() : 0;
  }

  /** Publishes a fresh cache hit that began at `started` (0: not timed). */
  hit(factory: ProxyFactory, method: string, name: string, tenant: string, started: number): void {
    let durationMs = this.#lastHitMs;
    const timed = started > 0;
    if (timed) durationMs = this.#lastHitMs = performance.now() - started;
    let event = this.#hit;
    if (event === undefined) {
      event = this.#hit = {
        factory,
        upstream: factory.config.name,
        method,
        name,
        tenant,
        durationMs,
        timed,
        outcome: 'ok',
        cache: 'hit',
        errorCode: undefined,
      };
    } else {
      event.method = method;
      event.name = name;
      event.tenant = tenant;
      event.durationMs = durationMs;
      event.timed = timed;
    }
    callChannel.publish(event);
  }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Whether anyone observes calls: when false, an operation runs exactly as if this module did not exist. */
export function callsObserved(): boolean {
  return callChannel.hasSubscribers || callTracing.hasSubscribers;
}

/** What the cache says it did with a request; see `FetchRequest.served`. */
export interface ServedBy {
  served?: 'hit' | 'stale' | 'miss' | undefined;
}

/**
 * Runs one operation that is not a fresh hit (a cache fetch when `fetch` is given, else an uncached
 * call), traced when a tracer listens, and publishes its {@link CallEvent} when it settles. Callers
 * check {@link callsObserved} first; this allocates.
 */
export function observeCall<T>(
  factory: ProxyFactory,
  method: string,
  name: string,
  tenant: string,
  fetch: ServedBy | undefined,
  run: () => Promise<T>,
): Promise<T> {
  const context: CallTraceContext = {
    factory,
    upstream: factory.config.name,
    method,
    name,
    tenant,
    durationMs: 0,
    timed: true,
    outcome: 'ok',
    cache: fetch === undefined ? 'none' : 'miss',
    errorCode: undefined,
  };
  const started = performance.now();
  const promise = callTracing.hasSubscribers ? callTracing.tracePromise(run, context) : run();
  return promise.then(
    (result) => {
      context.durationMs = performance.now() - started;
      if (fetch?.served !== undefined) context.cache = fetch.served;
      if (method === 'tools/call' && (result as { isError?: unknown } | null)?.isError === true) {
        context.outcome = 'tool_error';
      }
      if (callChannel.hasSubscribers) callChannel.publish(context);
      return result;
    },
    (error: unknown) => {
      context.durationMs = performance.now() - started;
      if (fetch?.served !== undefined) context.cache = fetch.served;
      context.outcome = 'error';
      context.errorCode = isRelayError(error) ? error.code : 'RELAY_UNKNOWN';
      if (callChannel.hasSubscribers) callChannel.publish(context);
      throw error;
    },
  );
}

/** One upstream attempt, inside `tracing:mcp-relay:upstream:*` when a tracer listens. */
export function upstreamAttempt(
  upstream: Upstream,
  method: string,
  params: Record<string, unknown> | undefined,
  options: CallOptions | undefined,
): Promise<unknown> {
  if (!upstreamTracing.hasSubscribers) return upstream.request(method, params, options);
  const context: UpstreamAttemptContext = {
    upstream: upstream.name,
    method,
    name: nameOf(method, params),
    meta: options?.meta,
  };
  return upstreamTracing.tracePromise(
    () =>
      upstream.request(method, params, context.meta === options?.meta ? options : { ...options, meta: context.meta }),
    context,
  );
}

/** The name an operation is about: the tool or prompt name, the resource URI, or `''`. */
export function nameOf(method: string, params: Record<string, unknown> | undefined): string {
  const value = method === 'resources/read' || method.startsWith('resources/') ? params?.['uri'] : params?.['name'];
  return typeof value === 'string' ? value : '';
}
