import type { Readable, Writable } from 'node:stream';
import { LOG_LEVEL_META_KEY, PROTOCOL_VERSION_META_KEY, SUBSCRIPTION_ID_META_KEY } from '@modelcontextprotocol/server';
import type { ProgressUpdate } from '../upstream/index.js';
import { MODERN_VERSION, type GatewayCore, type RequestContext } from './core.js';
import {
  errorResponse,
  isObject,
  notificationMessage,
  resultResponse,
  RpcCode,
  RpcError,
  toRpcError,
  type JsonRpcId,
} from './rpc.js';

export interface StdioInboundOptions {
  input: Readable;
  output: Writable;
  /** Largest message accepted, in bytes; a longer line is answered with an error and dropped. */
  maxMessageBytes: number;
}

interface Listen {
  id: JsonRpcId;
  tools: boolean;
  prompts: boolean;
  resources: boolean;
  uris: Set<string>;
}

/**
 * The gateway for clients that can only spawn a command: newline-delimited JSON-RPC on stdin and
 * stdout (stdout carries nothing else; diagnostics go to stderr). The first message decides the
 * revision: `initialize` opens a 2025 connection, an enveloped request a 2026-07-28 one.
 */
export class StdioInbound {
  readonly #core: GatewayCore;
  readonly #options: StdioInboundOptions;
  readonly #inFlight = new Map<JsonRpcId, AbortController>();
  readonly #subscriptions = new Set<string>();
  readonly #listens = new Map<JsonRpcId, Listen>();
  #era: 'modern' | 'legacy' | undefined;
  #buffer = '';
  #closed = false;
  readonly #ended: Promise<void>;
  readonly #listChanged = (kind: 'tools' | 'prompts' | 'resources') => this.#onListChanged(kind);
  readonly #resourceUpdated = (uri: string) => this.#onResourceUpdated(uri);

  constructor(core: GatewayCore, options: StdioInboundOptions) {
    this.#core = core;
    this.#options = options;
    options.input.setEncoding('utf8');
    options.input.on('data', (chunk: string) => this.#onData(chunk));
    this.#ended = new Promise((resolve) => {
      options.input.once('end', resolve);
      options.input.once('close', resolve);
    });
    core.on('listChanged', this.#listChanged);
    core.on('resourceUpdated', this.#resourceUpdated);
  }

  /** Resolves when the client closes stdin: the stdio binding says the server then exits. */
  get ended(): Promise<void> {
    return this.#ended;
  }

  close(): void {
    this.#closed = true;
    // A core may outlive its inbound (several stdio connections over one core): stop hearing it.
    this.#core.off('listChanged', this.#listChanged);
    this.#core.off('resourceUpdated', this.#resourceUpdated);
    for (const controller of this.#inFlight.values()) controller.abort();
  }

  #onData(chunk: string): void {
    this.#buffer += chunk;
    let newline = this.#buffer.indexOf('\n');
    while (newline !== -1) {
      const line = this.#buffer.slice(0, newline);
      this.#buffer = this.#buffer.slice(newline + 1);
      if (line.trim() !== '') this.#onLine(line);
      newline = this.#buffer.indexOf('\n');
    }
    if (Buffer.byteLength(this.#buffer) > this.#options.maxMessageBytes) {
      this.#buffer = '';
      this.#write(
        errorResponse(
          null,
          new RpcError(RpcCode.InvalidRequest, `Message larger than ${this.#options.maxMessageBytes} bytes`),
        ),
      );
    }
  }

  #onLine(line: string): void {
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      this.#write(errorResponse(null, new RpcError(RpcCode.ParseError, 'Parse error: the line is not valid JSON')));
      return;
    }
    if (!isObject(message) || message['jsonrpc'] !== '2.0') {
      this.#write(
        errorResponse(null, new RpcError(RpcCode.InvalidRequest, 'Invalid Request: expected a JSON-RPC 2.0 object')),
      );
      return;
    }
    const method = message['method'];
    const id = message['id'];
    const params = isObject(message['params']) ? message['params'] : undefined;
    if (typeof method !== 'string') return; // a response: the gateway sends no requests on this path yet
    if (id !== undefined && id !== null && typeof id !== 'string' && typeof id !== 'number') {
      // JSON-RPC 2.0 §4: an id is a string, a number or null. Echoing another kind back (an object
      // nested 100,000 deep) would also make writing the answer throw.
      this.#write(
        errorResponse(
          null,
          new RpcError(RpcCode.InvalidRequest, 'Invalid Request: the id must be a string, a number or null'),
        ),
      );
      return;
    }
    if (id === undefined) {
      this.#onNotification(method, params);
      return;
    }
    void this.#onRequest(id, method, params);
  }

  async #onRequest(id: JsonRpcId, method: string, params: Record<string, unknown> | undefined): Promise<void> {
    if (method === 'initialize') {
      this.#era = 'legacy';
      this.#write(resultResponse(id, this.#core.initializeResult(params?.['protocolVersion'])));
      return;
    }
    const meta = isObject(params?.['_meta']) ? params['_meta'] : undefined;
    if (meta?.[PROTOCOL_VERSION_META_KEY] === MODERN_VERSION || method === 'server/discover') this.#era ??= 'modern';
    if (this.#era === undefined) {
      this.#write(
        errorResponse(
          id,
          new RpcError(RpcCode.InvalidRequest, 'Send initialize (2025) or an enveloped 2026-07-28 request first'),
        ),
      );
      return;
    }
    if (method === 'subscriptions/listen' && this.#era === 'modern') {
      this.#listen(id, params);
      return;
    }
    if (method === 'resources/subscribe' && typeof params?.['uri'] === 'string') this.#subscriptions.add(params['uri']);
    if (method === 'resources/unsubscribe' && typeof params?.['uri'] === 'string')
      this.#subscriptions.delete(params['uri']);
    const hit = this.#core.cachedAnswer(method, params, { era: this.#era });
    if (hit !== undefined) {
      this.#write(resultResponse(id, hit));
      return;
    }
    const controller = new AbortController();
    this.#inFlight.set(id, controller);
    const progressToken = meta?.['progressToken'];
    const ctx: RequestContext = { era: this.#era, signal: controller.signal };
    if (progressToken !== undefined) {
      ctx.onProgress = (update: ProgressUpdate) =>
        this.#write(notificationMessage('notifications/progress', { progressToken, ...update }));
    }
    // An upstream's log messages about this request: on 2025 all of them, on 2026-07-28 only when
    // the request asked with _meta.logLevel (the upstream, which saw the same _meta, picked them).
    if (this.#era === 'legacy' || typeof meta?.[LOG_LEVEL_META_KEY] === 'string') {
      ctx.onLog = (logParams) => this.#write(notificationMessage('notifications/message', logParams));
    }
    try {
      this.#write(resultResponse(id, await this.#core.handle(method, params, ctx)));
    } catch (error) {
      if (!controller.signal.aborted) this.#write(errorResponse(id, toRpcError(error)));
    } finally {
      this.#inFlight.delete(id);
    }
  }

  #onNotification(method: string, params: Record<string, unknown> | undefined): void {
    if (method === 'notifications/cancelled') {
      const requestId = params?.['requestId'] as JsonRpcId | undefined;
      if (requestId === undefined) return;
      this.#inFlight.get(requestId)?.abort();
      this.#listens.delete(requestId);
    }
  }

  #listen(id: JsonRpcId, params: Record<string, unknown> | undefined): void {
    const requested = isObject(params?.['notifications']) ? params['notifications'] : {};
    const uris = Array.isArray(requested['resourceSubscriptions'])
      ? requested['resourceSubscriptions'].filter((u): u is string => typeof u === 'string')
      : [];
    const listen: Listen = {
      id,
      tools: requested['toolsListChanged'] === true,
      prompts: requested['promptsListChanged'] === true,
      resources: requested['resourcesListChanged'] === true,
      uris: new Set(uris),
    };
    this.#listens.set(id, listen);
    this.#core.watchResources(listen.uris);
    const acknowledged: Record<string, unknown> = {};
    if (listen.tools) acknowledged['toolsListChanged'] = true;
    if (listen.prompts) acknowledged['promptsListChanged'] = true;
    if (listen.resources) acknowledged['resourcesListChanged'] = true;
    if (uris.length > 0) acknowledged['resourceSubscriptions'] = uris;
    this.#write(
      notificationMessage('notifications/subscriptions/acknowledged', {
        notifications: acknowledged,
        _meta: { [SUBSCRIPTION_ID_META_KEY]: id },
      }),
    );
  }

  #onListChanged(kind: 'tools' | 'prompts' | 'resources'): void {
    const method = `notifications/${kind}/list_changed`;
    if (this.#era === 'legacy') {
      this.#write(notificationMessage(method));
      return;
    }
    for (const listen of this.#listens.values()) {
      if (listen[kind]) this.#write(notificationMessage(method, { _meta: { [SUBSCRIPTION_ID_META_KEY]: listen.id } }));
    }
  }

  #onResourceUpdated(uri: string): void {
    if (this.#era === 'legacy') {
      if (this.#subscriptions.has(uri)) this.#write(notificationMessage('notifications/resources/updated', { uri }));
      return;
    }
    for (const listen of this.#listens.values()) {
      if (listen.uris.has(uri)) {
        this.#write(
          notificationMessage('notifications/resources/updated', {
            uri,
            _meta: { [SUBSCRIPTION_ID_META_KEY]: listen.id },
          }),
        );
      }
    }
  }

  #write(line: string): void {
    if (!this.#closed) this.#options.output.write(line + '\n');
  }
}
