import type { Client, JSONRPCMessage, JSONRPCNotification } from '@modelcontextprotocol/client';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { Agent, Pool, fetch as undiciFetch, type Dispatcher } from 'undici';
import { RelayError, RelayErrorCode } from '../errors/index.js';
import { Admission } from './admission.js';
import { NotificationListeners } from './listeners.js';
import { abortedBeforeStart, PendingCall } from './call.js';
import {
  DEFAULT_CLIENT_INFO,
  isJsonRpcErrorObject,
  mcpName,
  modernEnvelope,
  outgoingParams,
  progressFromParams,
  upstreamRpcError,
} from './jsonrpc.js';
import { createHandshakeClient, describeClient } from './negotiate.js';
import { raceAbort } from './stdio-pool.js';
import { ConnectionSubscriber, WantedChanges } from './subscriptions.js';
import type {
  CallOptions,
  ChangeSubscription,
  NotificationListener,
  Upstream,
  UpstreamInfo,
  UpstreamOptions,
} from './types.js';

type HttpTransport = Extract<UpstreamOptions['transport'], { kind: 'http' }>;

/** undici errors that mean the request never reached the server, so it cannot have run. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

interface Session {
  client: Client;
  transport: StreamableHTTPClientTransport;
  info: UpstreamInfo;
  /** The fixed part of every hot-path request's headers for this session. */
  headers: Record<string, string>;
  envelope: Record<string, unknown> | undefined;
  subscriber: ConnectionSubscriber;
}

/**
 * A Streamable HTTP upstream. Calls go straight to an undici `Pool` of keep-alive connections as
 * JSON-RPC POSTs; the SDK client (on a separate small agent) does the handshake, keeps the legacy
 * GET stream for server-initiated messages, and answers server requests.
 *
 * A legacy session the server forgot (404 on a request that carried its id) is re-initialized once,
 * shared by every caller that saw it, and the request is replayed: a 404 means it never ran.
 */
export class HttpUpstream implements Upstream {
  readonly name: string;
  readonly #options: UpstreamOptions;
  readonly #transport: HttpTransport;
  readonly #url: URL;
  readonly #pool: Pool;
  readonly #control: Agent;
  readonly #admission: Admission;
  readonly #listeners = new NotificationListeners();
  readonly #wanted = new WantedChanges();
  #session: Session | undefined;
  #connecting: Promise<Session> | undefined;
  #nextId = 1;
  #closed = false;

  constructor(options: UpstreamOptions) {
    if (options.transport.kind !== 'http') throw new TypeError('HttpUpstream needs an http transport');
    this.name = options.name;
    this.#options = options;
    this.#transport = options.transport;
    this.#url = new URL(options.transport.url);
    this.#pool = new Pool(this.#url.origin, {
      connections: options.connectionPoolSize,
      pipelining: 1,
      // Deadlines are the relay's (reset by progress); undici's own would cut long SSE calls short.
      headersTimeout: 0,
      bodyTimeout: 0,
      keepAliveTimeout: 30_000,
    });
    this.#control = new Agent({ connections: 4, headersTimeout: 0, bodyTimeout: 0 });
    this.#admission = new Admission(
      options.name,
      options.connectionPoolSize,
      options.maxQueue ?? Math.max(1000, options.connectionPoolSize * 10),
    );
  }

  get info(): UpstreamInfo | undefined {
    return this.#session?.info;
  }

  get load() {
    return { inFlight: this.#admission.inFlight, queued: this.#admission.queued, capacity: this.#admission.capacity };
  }

  async connect(signal?: AbortSignal): Promise<UpstreamInfo> {
    const session = this.#session ?? (await this.#ensureSession(undefined, signal));
    return session.info;
  }

  async request(method: string, params: Record<string, unknown> | undefined, options?: CallOptions): Promise<unknown> {
    const signal = options?.signal;
    if (signal?.aborted) throw abortedBeforeStart(this.name, method, signal);
    if (this.#closed) throw this.#closedError();
    if (!this.#admission.tryAcquire()) {
      await this.#admission.acquire(
        this.#options.queueTimeoutMs ?? options?.timeoutMs ?? this.#options.timeoutMs,
        signal,
      );
    }
    try {
      const session = this.#session ?? (await this.#ensureSession(undefined, signal));
      try {
        return await this.#call(session, method, params, options);
      } catch (error) {
        if (!(error instanceof SessionExpired)) throw error;
        // The server forgot the session: it never saw this request, so replaying once is safe.
        const renewed = await this.#ensureSession(session, signal);
        return await this.#call(renewed, method, params, options);
      }
    } finally {
      this.#admission.release();
    }
  }

  onNotification(listener: NotificationListener): () => void {
    return this.#listeners.add(listener);
  }

  async subscribe(subscription: ChangeSubscription): Promise<void> {
    if (this.#closed) throw this.#closedError();
    this.#wanted.merge(subscription);
    const session = this.#session ?? (await this.#ensureSession(undefined, undefined));
    try {
      await session.subscriber.apply(this.#wanted);
    } catch (error) {
      throw this.#transportError(error, 'subscriptions', false);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#admission.rejectAll(this.#closedError());
    const session = this.#session ?? (await this.#connecting?.catch(() => undefined));
    this.#session = undefined;
    if (session) {
      await session.subscriber.close();
      if (session.info.era === 'legacy' && session.transport.sessionId) {
        await session.transport.terminateSession().catch(() => {});
      }
      await session.client.close().catch(() => {});
    }
    await Promise.allSettled([this.#pool.destroy(), this.#control.destroy()]);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #ensureSession(stale: Session | undefined, signal: AbortSignal | undefined): Promise<Session> {
    if (this.#session && this.#session !== stale) return Promise.resolve(this.#session);
    if (!this.#connecting) {
      if (stale) {
        this.#session = undefined;
        void stale.subscriber.close();
        void stale.client.close().catch(() => {});
      }
      this.#connecting = this.#handshake().finally(() => {
        this.#connecting = undefined;
      });
    }
    return signal
      ? raceAbort(this.#connecting, signal, () => abortedBeforeStart(this.name, 'connect', signal))
      : this.#connecting;
  }

  async #handshake(): Promise<Session> {
    if (this.#closed) throw this.#closedError();
    const clientInfo = this.#options.clientInfo ?? DEFAULT_CLIENT_INFO;
    const staticHeaders = this.#staticHeaders();
    const control = this.#control;
    const transport = new StreamableHTTPClientTransport(this.#url, {
      requestInit: { headers: staticHeaders },
      fetch: (input, init) =>
        undiciFetch(input, { ...(init as object), dispatcher: control }) as unknown as Promise<Response>,
      reconnectionOptions: {
        maxReconnectionDelay: 30_000,
        initialReconnectionDelay: 1000,
        reconnectionDelayGrowFactor: 1.5,
        maxRetries: 2,
      },
    });
    const client = createHandshakeClient(clientInfo, this.#options.protocol, this.#options.timeoutMs);
    client.fallbackNotificationHandler = (notification) => {
      this.#listeners.emit(notification as JSONRPCNotification);
      return Promise.resolve();
    };
    try {
      await client.connect(transport, { timeout: this.#options.timeoutMs });
    } catch (error) {
      await client.close().catch(() => {});
      throw this.#transportError(error, 'connect', true);
    }
    const info = describeClient(client);
    const headers: Record<string, string> = {
      ...staticHeaders,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': info.protocolVersion,
    };
    if (transport.sessionId) headers['mcp-session-id'] = transport.sessionId;
    const session: Session = {
      client,
      transport,
      info,
      headers,
      envelope: info.era === 'modern' ? modernEnvelope(clientInfo) : undefined,
      subscriber: new ConnectionSubscriber(client, info.era === 'modern'),
    };
    if (this.#closed) {
      await client.close().catch(() => {});
      throw this.#closedError();
    }
    this.#session = session;
    // A renewed session starts with no subscriptions: ask again for what was asked before.
    if (!this.#wanted.empty) session.subscriber.apply(this.#wanted).catch(() => undefined);
    return session;
  }

  #staticHeaders(): Record<string, string> {
    const headers: Record<string, string> = { ...this.#transport.headers };
    if (this.#transport.authToken) headers['authorization'] = `Bearer ${this.#transport.authToken}`;
    return headers;
  }

  #call(
    session: Session,
    method: string,
    params: Record<string, unknown> | undefined,
    options: CallOptions | undefined,
  ): Promise<unknown> {
    const id = this.#nextId++;
    const controller = new AbortController();
    const timeoutMs = options?.timeoutMs ?? this.#options.timeoutMs;
    return new Promise<unknown>((resolve, reject) => {
      const token = options?.onProgress !== undefined ? id : undefined;
      // Serialized before the call is armed: params nested past the stack limit throw here (the
      // promise rejects) instead of leaving a deadline timer running for a request never sent.
      const body = JSON.stringify({
        jsonrpc: '2.0',
        id,
        method,
        params: outgoingParams(params, session.envelope, token, options?.meta),
      });
      const call = new PendingCall(this.name, method, options, timeoutMs, resolve, reject, (reason) => {
        controller.abort(reason);
        // 2026-07-28: closing the request's stream is the cancellation. 2025: say it explicitly.
        if (session.info.era === 'legacy') this.#sendCancelled(session, id, reason.message);
      });
      let headers = session.headers;
      if (session.envelope) {
        headers = { ...headers, 'mcp-method': method };
        const name = mcpName(method, params);
        if (name !== undefined) headers['mcp-name'] = encodeHeaderValue(name);
      }
      if (options?.headers !== undefined) headers = withHeaders(headers, options.headers);
      this.#pool
        .request({
          path: this.#url.pathname + this.#url.search,
          method: 'POST',
          headers,
          body,
          signal: controller.signal,
        })
        .then((response) => this.#onResponse(session, call, id, response, controller.signal))
        .catch((error: unknown) => {
          if (!call.settled)
            call.reject(
              error instanceof RelayError || error instanceof SessionExpired
                ? error
                : this.#transportError(error, method, false),
            );
        });
    });
  }

  async #onResponse(
    session: Session,
    call: PendingCall,
    id: number,
    response: Dispatcher.ResponseData,
    signal: AbortSignal,
  ): Promise<void> {
    const { statusCode, headers, body } = response;
    const contentType = String(headers['content-type'] ?? '');
    if (statusCode === 404 && session.info.era === 'legacy' && session.headers['mcp-session-id']) {
      await body.dump();
      call.reject(new SessionExpired());
      return;
    }
    if (contentType.startsWith('text/event-stream') && statusCode === 200) {
      await this.#readStream(session, call, id, body, signal);
      return;
    }
    const text = await this.#readText(call, body, headers['content-length']);
    if (text === undefined) return;
    if (statusCode >= 400 && !contentType.includes('json')) {
      const retryAfter = headers['retry-after'];
      const retryAfterMs = parseRetryAfter(retryAfter);
      call.reject(
        new RelayError(
          RelayErrorCode.UpstreamUnavailable,
          `upstream '${this.name}' answered ${call.method} with HTTP ${statusCode}` +
            (text ? `: ${text.slice(0, 200)}` : '') +
            (retryAfter ? ` (Retry-After: ${String(retryAfter)})` : ''),
          {
            upstream: this.name,
            notSent: statusCode === 503 || statusCode === 429,
            ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
          },
        ),
      );
      return;
    }
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      call.reject(
        this.#protocolError(call.method, `HTTP ${statusCode} with a body that is not JSON: ${text.slice(0, 200)}`),
      );
      return;
    }
    this.#settleFromMessage(call, id, message, statusCode);
  }

  #settleFromMessage(call: PendingCall, id: number, message: unknown, statusCode: number): void {
    const responses = Array.isArray(message) ? (message as unknown[]) : [message];
    for (const item of responses) {
      if (typeof item !== 'object' || item === null) continue;
      const response = item as Record<string, unknown>;
      if (response['id'] !== id && !(response['id'] === null && response['error'] !== undefined)) continue;
      const error = response['error'];
      if (error !== undefined) {
        call.reject(
          isJsonRpcErrorObject(error)
            ? upstreamRpcError(this.name, call.method, error)
            : this.#protocolError(call.method, 'a malformed JSON-RPC error'),
        );
      } else {
        call.resolve(response['result']);
      }
      return;
    }
    call.reject(this.#protocolError(call.method, `HTTP ${statusCode} without a response to request ${id}`));
  }

  async #readText(
    call: PendingCall,
    body: Dispatcher.ResponseData['body'],
    contentLength: string | string[] | undefined,
  ): Promise<string | undefined> {
    const max = this.#options.maxResponseBytes;
    if (contentLength !== undefined && Number(contentLength) <= max) return body.text();
    const chunks: Buffer[] = [];
    let bytes = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes > max) {
        body.destroy();
        call.reject(this.#tooLarge(call.method));
        return undefined;
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  async #readStream(
    session: Session,
    call: PendingCall,
    id: number,
    body: Dispatcher.ResponseData['body'],
    signal: AbortSignal,
  ): Promise<void> {
    const max = this.#options.maxResponseBytes;
    let bytes = 0;
    let lastEventId: string | undefined;
    let retryMs = DEFAULT_RESUME_DELAY_MS;
    const parser = createParser({
      onEvent: (event: EventSourceMessage) => {
        if (event.id !== undefined) lastEventId = event.id;
        if (call.settled || !event.data) return;
        let message: Record<string, unknown>;
        try {
          message = JSON.parse(event.data) as Record<string, unknown>;
        } catch {
          return;
        }
        if (typeof message['method'] === 'string') {
          this.#onStreamMessage(session, call, message);
        } else {
          this.#settleFromMessage(call, id, message, 200);
        }
      },
      onRetry: (ms: number) => {
        retryMs = ms;
      },
    });
    const decoder = new TextDecoder();
    let stream: Dispatcher.ResponseData['body'] | undefined = body;
    for (let resumes = 0; stream !== undefined; resumes++) {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        if (bytes > max) {
          stream.destroy();
          call.reject(this.#tooLarge(call.method));
          return;
        }
        parser.feed(decoder.decode(chunk, { stream: true }));
        if (call.settled) {
          stream.destroy();
          return;
        }
      }
      // 2025-11-25 (SEP-1699): a server may end a call's stream before answering and replay the
      // rest to a GET that names the last event it sent; wait the delay it asked for, then resume.
      stream = undefined;
      const sessionId = session.headers['mcp-session-id'];
      if (call.settled || lastEventId === undefined || sessionId === undefined || resumes >= MAX_STREAM_RESUMES) break;
      await new Promise((resolve) => setTimeout(resolve, Math.min(retryMs, MAX_RESUME_DELAY_MS)).unref());
      if (call.settled || signal.aborted) return;
      const response = await this.#pool
        .request({
          path: this.#url.pathname + this.#url.search,
          method: 'GET',
          headers: { ...session.headers, accept: 'text/event-stream', 'last-event-id': lastEventId },
          signal,
        })
        .catch(() => undefined);
      if (response === undefined) break;
      if (
        response.statusCode === 200 &&
        String(response.headers['content-type'] ?? '').startsWith('text/event-stream')
      ) {
        stream = response.body;
      } else {
        await response.body.dump();
      }
    }
    if (!call.settled) {
      call.reject(
        new RelayError(
          RelayErrorCode.UpstreamUnavailable,
          `upstream '${this.name}' ended the stream of ${call.method} without a response`,
          {
            upstream: this.name,
          },
        ),
      );
    }
  }

  /** A request or notification the server sent on a call's stream. */
  #onStreamMessage(session: Session, call: PendingCall, message: Record<string, unknown>): void {
    if (message['method'] === 'notifications/progress' && message['id'] === undefined) {
      call.progress(progressFromParams((message['params'] ?? {}) as Record<string, unknown>));
      return;
    }
    const id = message['id'];
    if (id === undefined && message['method'] === 'notifications/message' && call.onLog) {
      call.onLog((message['params'] ?? {}) as Record<string, unknown>);
      return;
    }
    if (id !== undefined && call.onServerRequest && message['method'] !== 'ping') {
      this.#answerServerRequest(session, id, call.onServerRequest, message);
      return;
    }
    if (id === undefined) this.#listeners.emit(message as unknown as JSONRPCNotification);
    // Hand it to the SDK client too: it answers server requests (ping, sampling, elicitation).
    session.transport.onmessage?.(message as unknown as JSONRPCMessage);
  }

  /** Relays a server-to-client request to the call's caller and POSTs the answer back. */
  #answerServerRequest(
    session: Session,
    id: unknown,
    handler: NonNullable<PendingCall['onServerRequest']>,
    message: Record<string, unknown>,
  ): void {
    const params = message['params'] as Record<string, unknown> | undefined;
    handler(message['method'] as string, params)
      .then(
        (result) => ({ jsonrpc: '2.0', id, result }),
        (error: unknown) => ({
          jsonrpc: '2.0',
          id,
          error: isJsonRpcErrorObject(error)
            ? { code: error.code, message: error.message, ...(error.data === undefined ? {} : { data: error.data }) }
            : { code: -32603, message: error instanceof Error ? error.message : String(error) },
        }),
      )
      .then((response) =>
        this.#pool.request({
          path: this.#url.pathname + this.#url.search,
          method: 'POST',
          headers: session.headers,
          body: JSON.stringify(response),
        }),
      )
      .then((response) => response.body.dump())
      .catch(() => {});
  }

  #sendCancelled(session: Session, id: number, reason: string): void {
    this.#pool
      .request({
        path: this.#url.pathname + this.#url.search,
        method: 'POST',
        headers: session.headers,
        body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason } }),
      })
      .then((response) => response.body.dump())
      .catch(() => {});
  }

  #transportError(error: unknown, method: string, connecting: boolean): RelayError {
    if (error instanceof RelayError) return error;
    const { code, detail } = errorChain(error);
    const notSent = code !== undefined && NOT_SENT_CODES.has(code);
    return new RelayError(
      RelayErrorCode.UpstreamUnavailable,
      `upstream '${this.name}' (${this.#url.href}) ${connecting ? 'could not be connected' : `failed during ${method}`}: ${detail}`,
      { upstream: this.name, cause: error, notSent: notSent || connecting },
    );
  }

  #protocolError(method: string, what: string): RelayError {
    return new RelayError(RelayErrorCode.UpstreamProtocol, `upstream '${this.name}' answered ${method} with ${what}`, {
      upstream: this.name,
    });
  }

  #tooLarge(method: string): RelayError {
    return new RelayError(
      RelayErrorCode.ResponseTooLarge,
      `upstream '${this.name}' answered ${method} with more than ${this.#options.maxResponseBytes} bytes; ` +
        'raise `max_response_bytes` if this is expected',
      { upstream: this.name },
    );
  }

  #closedError(): RelayError {
    return new RelayError(RelayErrorCode.Closed, `upstream '${this.name}' is closed`, {
      upstream: this.name,
      notSent: true,
    });
  }
}

class SessionExpired extends Error {}

/** SEP-1699 resumption of a call's stream: the delay when the server named none, its cap, and how many times. */
const DEFAULT_RESUME_DELAY_MS = 1000;
const MAX_RESUME_DELAY_MS = 10_000;
const MAX_STREAM_RESUMES = 5;

/** Walks an error's causes (undici, fetch and SDK errors wrap each other) for its codes and root message. */
/** `base` with `extra` over it; a name in both (in any case) keeps only `extra`'s spelling and value. */
function withHeaders(base: Record<string, string>, extra: Readonly<Record<string, string>>): Record<string, string> {
  const replaced = new Set(Object.keys(extra).map((name) => name.toLowerCase()));
  const out: Record<string, string> = {};
  for (const name in base) if (!replaced.has(name.toLowerCase())) out[name] = base[name]!;
  return Object.assign(out, extra);
}

function errorChain(error: unknown): { code: string | undefined; detail: string } {
  const codes: string[] = [];
  let message = '';
  let current: unknown = error;
  for (let depth = 0; depth < 8 && current; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
    const text = (current as { message?: unknown }).message;
    if (typeof text === 'string' && text) message = text;
    const errors = (current as { errors?: unknown[] }).errors;
    const data = (current as { data?: { cause?: unknown } }).data;
    current =
      Array.isArray(errors) && errors.length > 0 ? errors[0] : ((current as { cause?: unknown }).cause ?? data?.cause);
  }
  // A system or undici code says more than an SDK one.
  const code = codes.find((c) => /^(E[A-Z]+|UND_ERR_[A-Z_]+)$/.test(c)) ?? codes[0];
  return { code, detail: code && !message.includes(code) ? `${code}: ${message}` : message || String(error) };
}

/**
 * `Retry-After` (RFC 9110 §10.2.3) in ms: delay-seconds, or an HTTP-date measured against the
 * wall clock. Undefined when absent or unreadable; never negative.
 */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number = Date.now()): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/** Header values must be Latin-1 without control characters; anything else goes percent-encoded. */
function encodeHeaderValue(value: string): string {
  return /^[\x20-\x7e]*$/.test(value) ? value : encodeURIComponent(value);
}
