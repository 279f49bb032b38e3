/**
 * OpenTelemetry spans from the proxy's events, off by default: a span per operation, a child span
 * for its cache lookup, and a child span per upstream attempt whose `traceparent` travels to the
 * upstream in the request's `_meta` (W3C Trace Context, as MCP's `_meta` convention carries it).
 *
 * The proxy imports no OpenTelemetry: it runs operations and attempts inside `TracingChannel`s
 * (`./proxy/events.ts`), and this module opens and closes spans on their events. The operation's
 * span is made current through an `AsyncLocalStorage` bound to the channel, so the attempts started
 * inside it (retries, single-flight loads) become its children.
 *
 * Spans go to the OpenTelemetry API's global tracer provider (`exporter: 'global'`: an application
 * that registered its own SDK), or to a provider of our own exporting to the console or to an
 * OTLP/HTTP (JSON) collector.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import diagnosticsChannel from 'node:diagnostics_channel';

import {
  context as otelContext,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type HrTime,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { request } from 'undici';

import {
  CALL_CHANNEL,
  callTracing,
  upstreamTracing,
  type CallEvent,
  type CallTraceContext,
  type UpstreamAttemptContext,
} from '../proxy/events.js';

export interface TracingOptions {
  /**
   * `global`: the OpenTelemetry API's global tracer provider. `console`: spans printed as they end.
   * `otlp`: OTLP/HTTP with JSON bodies to `endpoint`. Or any `SpanExporter` (tests use
   * `InMemorySpanExporter`).
   */
  exporter: 'global' | 'console' | 'otlp' | SpanExporter;
  /** OTLP endpoint. Default `http://127.0.0.1:4318/v1/traces`. */
  endpoint?: string | undefined;
  /** Sent with every OTLP request (e.g. an API key). */
  headers?: Readonly<Record<string, string>> | undefined;
  /** `service.name` of the spans. Default `mcp-relay`. */
  serviceName?: string | undefined;
  /** Share of operations traced (0-1). Default 1. */
  sampleRatio?: number | undefined;
  /** Export each span as it ends instead of in batches (tests). Default false. */
  immediate?: boolean | undefined;
}

interface TracedCall {
  span: Span;
  context: Context;
  /** The cache lookup span, until the first upstream attempt (or the end) closes it. */
  lookup: Span | undefined;
}

const TRACER_NAME = 'mcp-relay';

/** Subscribes to the proxy's tracing channels and turns their events into spans; `close()` stops. */
export class RelayTracing {
  readonly #tracer: Tracer;
  readonly #provider: BasicTracerProvider | undefined;
  readonly #store = new AsyncLocalStorage<TracedCall>();
  readonly #calls = new WeakMap<CallTraceContext, TracedCall>();
  readonly #attempts = new WeakMap<UpstreamAttemptContext, Span>();
  readonly #unsubscribe: (() => void)[] = [];

  constructor(options: TracingOptions) {
    if (options.exporter === 'global') {
      this.#tracer = trace.getTracer(TRACER_NAME);
    } else {
      const exporter =
        options.exporter === 'console'
          ? new ConsoleSpanExporter()
          : options.exporter === 'otlp'
            ? new OtlpJsonSpanExporter({
                endpoint: options.endpoint ?? 'http://127.0.0.1:4318/v1/traces',
                headers: options.headers ?? {},
                serviceName: options.serviceName ?? 'mcp-relay',
              })
            : options.exporter;
      this.#provider = new BasicTracerProvider({
        sampler: new TraceIdRatioBasedSampler(options.sampleRatio ?? 1),
        spanProcessors: [
          options.immediate === true ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter),
        ],
      });
      this.#tracer = this.#provider.getTracer(TRACER_NAME);
    }

    // Operations that are not fresh hits: a live span, current while the operation runs.
    callTracing.start.bindStore(this.#store, (ctx) => this.#startCall(ctx));
    // It ends when the operation's call event is published: the context is that event, and by then
    // it says what the cache did and how the operation ended.
    this.#subscribe(callTracing, {});
    this.#subscribe(upstreamTracing, {
      start: (ctx) => this.#startAttempt(ctx as UpstreamAttemptContext),
      asyncEnd: (ctx) => this.#endAttempt(ctx as UpstreamAttemptContext),
      error: (ctx) => this.#endAttempt(ctx as UpstreamAttemptContext),
    });
    // Fresh hits never enter a TracingChannel (they take well under a microsecond): their spans
    // are written when the hit is published, back-dated by its duration.
    const onCall = (message: unknown): void => {
      const event = message as CallEvent;
      if (event.cache === 'hit') this.#hitSpans(event);
      else this.#endCall(event);
    };
    diagnosticsChannel.subscribe(CALL_CHANNEL, onCall);
    this.#unsubscribe.push(() => diagnosticsChannel.unsubscribe(CALL_CHANNEL, onCall));
  }

  /** Exports what is buffered. */
  async flush(): Promise<void> {
    await this.#provider?.forceFlush();
  }

  async close(): Promise<void> {
    callTracing.start.unbindStore(this.#store);
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    this.#unsubscribe.length = 0;
    await this.#provider?.shutdown();
  }

  #subscribe(
    channel: diagnosticsChannel.TracingChannel<unknown, object>,
    handlers: Partial<diagnosticsChannel.TracingChannelSubscribers<object>>,
  ): void {
    const all: diagnosticsChannel.TracingChannelSubscribers<object> = {
      start: handlers.start ?? noop,
      end: handlers.end ?? noop,
      asyncStart: handlers.asyncStart ?? noop,
      asyncEnd: handlers.asyncEnd ?? noop,
      error: handlers.error ?? noop,
    };
    channel.subscribe(all);
    this.#unsubscribe.push(() => channel.unsubscribe(all));
  }

  #startCall(ctx: CallTraceContext): TracedCall {
    const parent = this.#store.getStore()?.context ?? otelContext.active();
    const span = this.#tracer.startSpan(
      `${ctx.method}${ctx.name === '' ? '' : ` ${ctx.name}`}`,
      { kind: SpanKind.CLIENT, attributes: callAttributes(ctx) },
      parent,
    );
    const spanContext = trace.setSpan(parent, span);
    const lookup =
      ctx.cache === 'none'
        ? undefined
        : this.#tracer.startSpan('cache lookup', { kind: SpanKind.INTERNAL }, spanContext);
    const traced: TracedCall = { span, context: spanContext, lookup };
    this.#calls.set(ctx, traced);
    return traced;
  }

  #endCall(ctx: CallTraceContext): void {
    const traced = this.#calls.get(ctx);
    if (traced === undefined) return;
    this.#calls.delete(ctx);
    if (traced.lookup !== undefined) {
      traced.lookup.setAttribute('mcp_relay.cache.result', ctx.cache);
      traced.lookup.end();
    }
    const span = traced.span;
    span.setAttribute('mcp_relay.cache.result', ctx.cache);
    span.setAttribute('mcp_relay.outcome', ctx.outcome);
    if (ctx.outcome === 'error') {
      if (ctx.error !== undefined) span.recordException(ctx.error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(ctx.error) });
      if (ctx.errorCode !== undefined) span.setAttribute('mcp_relay.error.code', ctx.errorCode);
    }
    span.end();
  }

  #startAttempt(ctx: UpstreamAttemptContext): void {
    const call = this.#store.getStore();
    if (call?.lookup !== undefined) {
      // The cache asked the upstream: the lookup is over.
      call.lookup.setAttribute('mcp_relay.cache.result', 'miss');
      call.lookup.end();
      call.lookup = undefined;
    }
    const parent = call?.context ?? otelContext.active();
    const span = this.#tracer.startSpan(
      `upstream ${ctx.method}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'mcp_relay.upstream': ctx.upstream,
          'mcp.method.name': ctx.method,
          ...(ctx.name === '' ? {} : { 'mcp_relay.name': ctx.name }),
        },
      },
      parent,
    );
    this.#attempts.set(ctx, span);
    const traceparent = traceparentOf(span);
    if (traceparent !== undefined) ctx.meta = { ...ctx.meta, traceparent };
  }

  #endAttempt(ctx: UpstreamAttemptContext): void {
    const span = this.#attempts.get(ctx);
    if (span === undefined) return;
    this.#attempts.delete(ctx);
    if (ctx.error !== undefined) {
      span.recordException(ctx.error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(ctx.error) });
    }
    span.end();
  }

  #hitSpans(event: CallEvent): void {
    const end = Date.now();
    const start = end - event.durationMs;
    const parent = this.#store.getStore()?.context ?? otelContext.active();
    const span = this.#tracer.startSpan(
      `${event.method}${event.name === '' ? '' : ` ${event.name}`}`,
      {
        kind: SpanKind.CLIENT,
        startTime: start,
        attributes: { ...callAttributes(event), 'mcp_relay.cache.result': 'hit' },
      },
      parent,
    );
    const lookup = this.#tracer.startSpan(
      'cache lookup',
      { kind: SpanKind.INTERNAL, startTime: start, attributes: { 'mcp_relay.cache.result': 'hit' } },
      trace.setSpan(parent, span),
    );
    lookup.end(end);
    span.end(end);
  }
}

function callAttributes(event: Pick<CallEvent, 'upstream' | 'method' | 'name' | 'tenant'>): Record<string, string> {
  return {
    'mcp_relay.upstream': event.upstream,
    'mcp.method.name': event.method,
    ...(event.name === '' ? {} : { 'mcp_relay.name': event.name }),
    ...(event.tenant === '' ? {} : { 'mcp_relay.tenant': event.tenant }),
  };
}

/** The W3C `traceparent` of a span: `00-<trace id>-<span id>-<flags>`. */
export function traceparentOf(span: Span): string | undefined {
  const sc = span.spanContext();
  if (!trace.isSpanContextValid(sc)) return undefined;
  return `00-${sc.traceId}-${sc.spanId}-${sc.traceFlags.toString(16).padStart(2, '0')}`;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function noop(): void {}

// -----------------------------------------------------------------------------------------------
// OTLP/HTTP with JSON bodies (opentelemetry-proto's JSON mapping): small enough to write here,
// rather than pulling in the OTLP exporter packages and protobufjs for a default-off feature.

interface OtlpOptions {
  endpoint: string;
  headers: Readonly<Record<string, string>>;
  serviceName: string;
  /** Per request, in ms. Default 10 000. */
  timeoutMs?: number;
}

type ExportResultCallback = Parameters<SpanExporter['export']>[1];

export class OtlpJsonSpanExporter implements SpanExporter {
  readonly #options: OtlpOptions;
  readonly #pending = new Set<Promise<void>>();

  constructor(options: OtlpOptions) {
    this.#options = options;
  }

  export(spans: ReadableSpan[], done: ExportResultCallback): void {
    const body = JSON.stringify(otlpBody(spans, this.#options.serviceName));
    const sent = request(this.#options.endpoint, {
      method: 'POST',
      headers: { ...this.#options.headers, 'content-type': 'application/json' },
      body,
      headersTimeout: this.#options.timeoutMs ?? 10_000,
      bodyTimeout: this.#options.timeoutMs ?? 10_000,
    })
      .then(async (response) => {
        await response.body.dump();
        if (response.statusCode >= 200 && response.statusCode < 300) done({ code: 0 });
        else done({ code: 1, error: new Error(`OTLP collector answered HTTP ${response.statusCode}`) });
      })
      .catch((error: unknown) => done({ code: 1, error: error instanceof Error ? error : new Error(String(error)) }))
      .finally(() => this.#pending.delete(sent));
    this.#pending.add(sent);
  }

  async forceFlush(): Promise<void> {
    await Promise.all([...this.#pending]);
  }

  async shutdown(): Promise<void> {
    await this.forceFlush();
  }
}

function otlpBody(spans: readonly ReadableSpan[], serviceName: string): unknown {
  return {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: serviceName } }] },
        scopeSpans: [
          {
            scope: { name: TRACER_NAME },
            spans: spans.map((span) => {
              const sc = span.spanContext();
              return {
                traceId: sc.traceId,
                spanId: sc.spanId,
                ...(span.parentSpanContext === undefined ? {} : { parentSpanId: span.parentSpanContext.spanId }),
                name: span.name,
                // OTLP's SpanKind is the API's plus one (0 is UNSPECIFIED).
                kind: span.kind + 1,
                startTimeUnixNano: nanos(span.startTime),
                endTimeUnixNano: nanos(span.endTime),
                attributes: Object.entries(span.attributes).map(([key, value]) => ({ key, value: anyValue(value) })),
                events: span.events.map((event) => ({
                  name: event.name,
                  timeUnixNano: nanos(event.time),
                  attributes: Object.entries(event.attributes ?? {}).map(([key, value]) => ({
                    key,
                    value: anyValue(value),
                  })),
                })),
                status: { code: span.status.code, ...(span.status.message ? { message: span.status.message } : {}) },
              };
            }),
          },
        ],
      },
    ],
  };
}

function nanos(time: HrTime): string {
  return (BigInt(time[0]) * 1_000_000_000n + BigInt(time[1])).toString();
}

function anyValue(value: unknown): Record<string, unknown> {
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'boolean') return { boolValue: value };
  if (typeof value === 'number') return Number.isInteger(value) ? { intValue: String(value) } : { doubleValue: value };
  if (Array.isArray(value)) return { arrayValue: { values: value.map(anyValue) } };
  return { stringValue: String(value) };
}
