import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  CLIENT_CAPABILITIES_META_KEY,
  CLIENT_INFO_META_KEY,
  LOG_LEVEL_META_KEY,
  PROTOCOL_VERSION_META_KEY,
  SUBSCRIPTION_ID_META_KEY,
  classifyInboundRequest,
} from '@modelcontextprotocol/server';
import type { ProgressUpdate } from '../upstream/index.js';
import type { GatewayUpstream } from './catalog.js';
import { checkStandardHeaders } from './headers.js';
import type { SessionTombstones } from './session-tombstones.js';
import { SessionSeal, sessionChannels, type SessionAdoptedEvent, type SessionRefusedEvent } from './sessions.js';
import { MODERN_VERSION, type Caller, type GatewayCore, type RequestContext } from './core.js';
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

export interface HttpInboundOptions {
  /** Largest request body accepted, in bytes. */
  maxBodyBytes: number;
  /** Origins allowed in addition to the loopback ones (`http://localhost:*` and friends). */
  allowedOrigins: readonly string[];
  /** Whether the server listens on a loopback address only: then the Host header must be loopback too. */
  loopbackOnly: boolean;
  /** A legacy session unused this long is dropped from this process's memory, in ms. */
  sessionIdleMs: number;
  /**
   * Issues and verifies the sealed ids of legacy sessions. Replicas given seals with one secret
   * serve each other's sessions. Default: a random key per process, ids valid for 24 h.
   */
  seal?: SessionSeal | undefined;
  /** Where DELETEs reach every replica. Without it a DELETE ends a session on this process only. */
  tombstones?: SessionTombstones | undefined;
  /** SSE keep-alive comment interval, in ms. */
  keepAliveMs: number;
  /**
   * Establishes the caller from the request (API key, JWT). Throws an {@link RpcError} with
   * `data.httpStatus` 401 or 403 to refuse. Without it the gateway serves anyone who can connect.
   */
  authenticate?: ((req: IncomingMessage) => Promise<Caller> | Caller) | undefined;
}

interface LegacySession {
  readonly id: string;
  /** The caller who opened it: nobody else may use it. */
  readonly caller: Caller | undefined;
  readonly version: string;
  readonly scope: GatewayUpstream | undefined;
  /** When initialize issued its id, in ms since the epoch: it ends at `issuedAt + maxAge`. */
  readonly issuedAt: number;
  /** Open GET streams: where server-initiated notifications go. */
  readonly streams: Set<ServerResponse>;
  readonly subscriptions: Set<string>;
  /** In-flight requests by the client's id, so `notifications/cancelled` can abort them. */
  readonly inFlight: Map<JsonRpcId, CallerGone>;
  /** Requests the gateway relayed to the client (sampling, elicitation, roots), awaiting its answer. */
  readonly asked: Map<string, { resolve: (result: unknown) => void; reject: (error: unknown) => void }>;
  lastSeen: number;
}

interface ListenStream {
  readonly id: JsonRpcId;
  readonly res: ServerResponse;
  readonly scope: GatewayUpstream | undefined;
  readonly filter: {
    toolsListChanged: boolean;
    promptsListChanged: boolean;
    resourcesListChanged: boolean;
    resourceSubscriptions: Set<string>;
  };
}

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
};
const JSON_HEADERS = { 'content-type': 'application/json' };
const LIST_CHANGED_FLAG = {
  tools: 'toolsListChanged',
  prompts: 'promptsListChanged',
  resources: 'resourcesListChanged',
} as const;
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);
/** Ids deleted here (or announced deleted) remembered at most, oldest forgotten first. */
const MAX_LOCAL_TOMBSTONES = 100_000;
const DEFAULT_SESSION_MAX_AGE_MS = 24 * 3_600_000;

/**
 * Streamable HTTP inbound for both revisions. A request is classified by the SDK's own inbound
 * ladder (so header/body mismatches are refused exactly as the SDK server refuses them), then:
 * 2026-07-28 requests are answered statelessly; 2025 requests belong to a session opened by
 * `initialize`, with its GET stream for notifications and DELETE to end it. Answers are JSON, or
 * SSE when the client asked for progress so that progress can stream before the result.
 */
export class HttpInbound {
  readonly #core: GatewayCore;
  readonly #options: HttpInboundOptions;
  readonly #sessions = new Map<string, LegacySession>();
  readonly #seal: SessionSeal;
  /** Ids ended by DELETE, here or (over Redis) elsewhere, with when they would expire anyway. */
  readonly #deleted = new Map<string, number>();
  readonly #listeners = new Set<ListenStream>();
  readonly #sweeper: NodeJS.Timeout;
  readonly #keepAlive: NodeJS.Timeout;
  #closed = false;
  #answering = 0;
  #onIdle: (() => void) | undefined;

  constructor(core: GatewayCore, options: HttpInboundOptions) {
    this.#core = core;
    this.#options = options;
    this.#seal = options.seal ?? new SessionSeal({ maxAgeMs: DEFAULT_SESSION_MAX_AGE_MS });
    options.tombstones?.listen(
      (id) => this.#deletedElsewhere(id),
      () => void this.#recheckDeleted(),
    );
    core.on('listChanged', (kind, upstream) => this.#onListChanged(kind, upstream));
    core.on('resourceUpdated', (uri, upstream) => this.#onResourceUpdated(uri, upstream));
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(options.sessionIdleMs, 60_000));
    this.#sweeper.unref();
    this.#keepAlive = setInterval(() => this.#ping(), options.keepAliveMs);
    this.#keepAlive.unref();
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** Requests being answered right now (listen and GET streams excluded: they never finish). */
  get inFlight(): number {
    return this.#answering;
  }

  /**
   * Waits until every request being answered has finished, or `timeoutMs` has passed; new ones are
   * refused meanwhile by the caller closing the listener. Resolves with the number still running.
   */
  async drain(timeoutMs: number): Promise<number> {
    if (this.#answering === 0) return 0;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      timer.unref();
      this.#onIdle = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.#onIdle = undefined;
    return this.#answering;
  }

  /** Serves `/mcp` (scope undefined: every upstream) or `/mcp/<name>` (one upstream). */
  handle(req: IncomingMessage, res: ServerResponse, scope: GatewayUpstream | undefined): void {
    const refusal = this.#checkOrigin(req);
    if (refusal) {
      writeError(res, 403, null, new RpcError(RpcCode.InvalidRequest, refusal));
      return;
    }
    if (req.method !== 'POST' && req.method !== 'GET' && req.method !== 'DELETE') {
      res.setHeader('allow', 'GET, POST, DELETE');
      writeError(res, 405, null, new RpcError(RpcCode.InvalidRequest, `Method not allowed: ${req.method}`));
      return;
    }
    this.#route(req, res, scope).catch((error: unknown) => {
      if (!res.headersSent) writeError(res, 500, null, toRpcError(error));
      else res.end();
    });
  }

  async #route(req: IncomingMessage, res: ServerResponse, scope: GatewayUpstream | undefined): Promise<void> {
    let caller: Caller | undefined;
    if (this.#options.authenticate) {
      try {
        caller = await this.#options.authenticate(req);
      } catch (error) {
        req.resume();
        const rpcError = toRpcError(error);
        const status =
          isObject(rpcError.data) && typeof rpcError.data['httpStatus'] === 'number'
            ? rpcError.data['httpStatus']
            : 401;
        if (status === 401) res.setHeader('www-authenticate', 'Bearer realm="mcp-relay"');
        writeError(res, status, null, rpcError);
        return;
      }
    }
    if (req.method === 'POST') await this.#post(req, res, scope, caller);
    else if (req.method === 'GET') await this.#get(req, res, caller);
    else await this.#delete(req, res, caller);
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#sweeper);
    clearInterval(this.#keepAlive);
    for (const session of this.#sessions.values()) this.#endSession(session);
    for (const listener of this.#listeners) listener.res.end();
    this.#listeners.clear();
  }

  async #post(
    req: IncomingMessage,
    res: ServerResponse,
    scope: GatewayUpstream | undefined,
    caller: Caller | undefined,
  ): Promise<void> {
    const contentType = req.headers['content-type'] ?? '';
    if (!contentType.toLowerCase().includes('application/json')) {
      req.resume();
      writeError(
        res,
        415,
        null,
        new RpcError(RpcCode.InvalidRequest, 'Unsupported Media Type: Content-Type must be application/json'),
      );
      return;
    }
    const body = await readBody(req, this.#options.maxBodyBytes);
    if (body === undefined) {
      // The rest of the body is never read: the connection ends with this answer.
      res.setHeader('connection', 'close');
      writeError(
        res,
        413,
        null,
        new RpcError(RpcCode.InvalidRequest, `Request body larger than ${this.#options.maxBodyBytes} bytes`),
      );
      return;
    }
    let message: unknown;
    try {
      message = JSON.parse(body);
    } catch {
      writeError(res, 400, null, new RpcError(RpcCode.ParseError, 'Parse error: the body is not valid JSON'));
      return;
    }
    if (Array.isArray(message)) {
      writeError(
        res,
        400,
        null,
        new RpcError(RpcCode.InvalidRequest, 'JSON-RPC batches are not supported (removed in 2025-06-18)'),
      );
      return;
    }
    if (isPlainModern(req, message)) {
      await this.#modern(req, res, message, scope, caller);
      return;
    }
    const outcome =
      isPlainLegacy(req, message) ??
      classifyInboundRequest({
        httpMethod: 'POST',
        ...headerField('protocolVersionHeader', req.headers['mcp-protocol-version']),
        ...headerField('mcpMethodHeader', req.headers['mcp-method']),
        ...headerField('mcpNameHeader', req.headers['mcp-name']),
        body: message,
      });
    if (outcome.kind === 'reject') {
      const id =
        isObject(message) && (typeof message['id'] === 'string' || typeof message['id'] === 'number')
          ? message['id']
          : null;
      writeError(res, outcome.httpStatus, id, new RpcError(outcome.code, outcome.message, outcome.data));
      return;
    }
    if (!isObject(message)) {
      writeError(res, 400, null, new RpcError(RpcCode.InvalidRequest, 'Invalid Request: expected a JSON-RPC object'));
      return;
    }
    if (outcome.kind === 'modern') {
      const revision = outcome.classification.revision;
      if (revision !== MODERN_VERSION) {
        const id = outcome.messageKind === 'request' ? outcome.message.id : null;
        const requested = revision ?? 'unknown';
        const data = { supported: [MODERN_VERSION], requested };
        writeError(
          res,
          400,
          id,
          new RpcError(MCP_CODES.UnsupportedProtocolVersion, `Unsupported protocol version: ${requested}`, data),
        );
        return;
      }
      await this.#modern(req, res, message, scope, caller);
    } else {
      await this.#legacy(req, res, message, scope, caller);
    }
  }

  async #modern(
    req: IncomingMessage,
    res: ServerResponse,
    message: Record<string, unknown>,
    scope: GatewayUpstream | undefined,
    caller: Caller | undefined,
  ) {
    const method = message['method'] as string;
    if (message['id'] === undefined) {
      // Notifications of the stateless revision carry nothing the gateway must act on.
      res.writeHead(202).end();
      return;
    }
    const id = message['id'] as JsonRpcId;
    const params = isObject(message['params']) ? message['params'] : undefined;
    const headers = req.headers;
    const refusal = checkStandardHeaders(
      {
        protocolVersion: single(headers['mcp-protocol-version']),
        method: single(headers['mcp-method']),
        name: single(headers['mcp-name']),
      },
      method,
      params,
    );
    if (refusal) {
      writeError(res, 400, id, refusal);
      return;
    }
    if (method === 'subscriptions/listen') {
      this.#listen(req, res, id, params, scope);
      return;
    }
    const header = (name: string) => single(headers[name]);
    await this.#answer(req, res, id, method, params, { era: 'modern', scope, caller, header }, undefined);
  }

  async #legacy(
    req: IncomingMessage,
    res: ServerResponse,
    message: Record<string, unknown>,
    scope: GatewayUpstream | undefined,
    caller: Caller | undefined,
  ) {
    const method = message['method'];
    if (method === 'initialize') {
      if (message['id'] === undefined) {
        // Sent as a notification there is no id to answer with, and no session to hand back.
        writeError(res, 400, null, new RpcError(RpcCode.InvalidRequest, 'Invalid Request: initialize needs an id'));
        return;
      }
      const params = isObject(message['params']) ? message['params'] : {};
      const result = this.#core.initializeResult(params['protocolVersion'], scope);
      const version = result['protocolVersion'] as string;
      const { id, issuedAt } = this.#seal.seal(caller, version, scope?.name);
      const session = this.#hold(id, caller, version, scope, issuedAt);
      res.writeHead(200, { ...JSON_HEADERS, 'mcp-session-id': session.id });
      res.end(resultResponse(message['id'] as JsonRpcId, result));
      return;
    }
    const session = await this.#session(req, res, caller);
    if (!session) return;
    if (typeof method !== 'string') {
      // The client's answer to a request the gateway relayed from an upstream.
      const asked = typeof message['id'] === 'string' ? session.asked.get(message['id']) : undefined;
      if (asked) {
        session.asked.delete(message['id'] as string);
        if (message['error'] !== undefined) asked.reject(message['error']);
        else asked.resolve(message['result']);
      }
      res.writeHead(202).end();
      return;
    }
    if (message['id'] === undefined) {
      this.#legacyNotification(session, method, message['params']);
      res.writeHead(202).end();
      return;
    }
    const id = message['id'] as JsonRpcId;
    const params = isObject(message['params']) ? message['params'] : undefined;
    if (method === 'resources/subscribe' && typeof params?.['uri'] === 'string')
      session.subscriptions.add(params['uri']);
    if (method === 'resources/unsubscribe' && typeof params?.['uri'] === 'string')
      session.subscriptions.delete(params['uri']);
    await this.#answer(req, res, id, method, params, { era: 'legacy', scope: session.scope, caller }, session);
  }

  /** Runs one request through the core and writes its answer: JSON, or SSE when progress may stream. */
  async #answer(
    req: IncomingMessage,
    res: ServerResponse,
    id: JsonRpcId,
    method: string,
    params: Record<string, unknown> | undefined,
    base: Pick<RequestContext, 'era' | 'scope' | 'caller' | 'header'>,
    session: LegacySession | undefined,
  ): Promise<void> {
    // Most of a cached gateway's traffic: answered here, at once, with the entry's stored bytes.
    const hit = this.#core.cachedAnswer(method, params, base);
    if (hit !== undefined) {
      writeJson(res, 200, resultResponse(id, hit));
      return;
    }
    this.#answering++;
    try {
      const gone = new CallerGone(res);
      session?.inFlight.set(id, gone);
      const meta = params?.['_meta'];
      const progressToken = isObject(meta) ? meta['progressToken'] : undefined;
      const streams = progressToken !== undefined && acceptsEventStream(req);
      const ctx: RequestContext = {
        era: base.era,
        scope: base.scope,
        caller: base.caller,
        header: base.header,
        get signal() {
          return gone.signal;
        },
      };
      if (streams) {
        ctx.onProgress = (update: ProgressUpdate) => {
          if (!res.headersSent) res.writeHead(200, SSE_HEADERS);
          writeEvent(res, notificationMessage('notifications/progress', { progressToken, ...definedOnly(update) }));
        };
      }
      const logLevel = acceptsEventStream(req) ? relayedLogLevel(base.era, meta) : undefined;
      if (logLevel !== undefined) {
        // An upstream's log messages about this request travel on its stream, before the result.
        ctx.onLog = (logParams) => {
          if (!logAtLeast(logParams['level'], logLevel)) return;
          if (!res.headersSent) res.writeHead(200, SSE_HEADERS);
          writeEvent(res, notificationMessage('notifications/message', logParams));
        };
      }
      if (session) {
        ctx.onServerRequest = (serverMethod, serverParams) => {
          // The question travels on this request's stream; the answer comes back as a POST.
          if (!res.headersSent) res.writeHead(200, SSE_HEADERS);
          const askId = `relay-${randomUUID()}`;
          const answer = new Promise<unknown>((resolve, reject) => {
            session.asked.set(askId, { resolve, reject });
            gone.signal.addEventListener('abort', () => {
              session.asked.delete(askId);
              reject(new RpcError(RpcCode.InternalError, 'the request that asked was cancelled'));
            });
          });
          writeEvent(res, JSON.stringify({ jsonrpc: '2.0', id: askId, method: serverMethod, params: serverParams }));
          return answer;
        };
      }
      let payload: string;
      try {
        payload = resultResponse(id, await this.#core.handle(method, params, ctx));
      } catch (error) {
        const rpcError = toRpcError(error);
        if (!res.headersSent) {
          writeJson(res, base.era === 'modern' ? modernErrorStatus(rpcError.code) : 200, errorResponse(id, rpcError));
          return;
        }
        payload = errorResponse(id, rpcError);
      } finally {
        session?.inFlight.delete(id);
      }
      if (res.destroyed) return;
      if (res.headersSent) {
        writeEvent(res, payload);
        res.end();
      } else {
        writeJson(res, 200, payload);
      }
    } finally {
      // Answered (or given up): a drain waits for this count to reach 0.
      if (--this.#answering === 0) this.#onIdle?.();
    }
  }

  #legacyNotification(session: LegacySession, method: string, params: unknown): void {
    if (method === 'notifications/cancelled' && isObject(params)) {
      const requestId = params['requestId'];
      if (typeof requestId === 'string' || typeof requestId === 'number') session.inFlight.get(requestId)?.abort();
    }
  }

  #listen(
    req: IncomingMessage,
    res: ServerResponse,
    id: JsonRpcId,
    params: Record<string, unknown> | undefined,
    scope: GatewayUpstream | undefined,
  ) {
    const requested = isObject(params?.['notifications']) ? params['notifications'] : {};
    const subscriptions = Array.isArray(requested['resourceSubscriptions'])
      ? requested['resourceSubscriptions'].filter((uri): uri is string => typeof uri === 'string')
      : [];
    const capabilities = this.#core.capabilities(scope);
    const filter = {
      toolsListChanged: requested['toolsListChanged'] === true && capabilities.tools !== undefined,
      promptsListChanged: requested['promptsListChanged'] === true && capabilities.prompts !== undefined,
      resourcesListChanged: requested['resourcesListChanged'] === true && capabilities.resources !== undefined,
      resourceSubscriptions: new Set(capabilities.resources ? subscriptions : []),
    };
    const stream: ListenStream = { id, res, scope, filter };
    this.#core.watchResources(filter.resourceSubscriptions, scope);
    res.writeHead(200, SSE_HEADERS);
    const acknowledged: Record<string, unknown> = {};
    if (filter.toolsListChanged) acknowledged['toolsListChanged'] = true;
    if (filter.promptsListChanged) acknowledged['promptsListChanged'] = true;
    if (filter.resourcesListChanged) acknowledged['resourcesListChanged'] = true;
    if (filter.resourceSubscriptions.size > 0)
      acknowledged['resourceSubscriptions'] = [...filter.resourceSubscriptions];
    writeEvent(
      res,
      notificationMessage('notifications/subscriptions/acknowledged', {
        notifications: acknowledged,
        _meta: { [SUBSCRIPTION_ID_META_KEY]: id },
      }),
    );
    this.#listeners.add(stream);
    res.once('close', () => this.#listeners.delete(stream));
    req.once('close', () => this.#listeners.delete(stream));
  }

  async #get(req: IncomingMessage, res: ServerResponse, caller: Caller | undefined): Promise<void> {
    if (req.headers['mcp-session-id'] === undefined) {
      res.setHeader('allow', 'POST');
      writeError(
        res,
        405,
        null,
        new RpcError(RpcCode.InvalidRequest, 'Method not allowed: GET needs a 2025 session (Mcp-Session-Id)'),
      );
      return;
    }
    const session = await this.#session(req, res, caller);
    if (!session) return;
    res.writeHead(200, SSE_HEADERS);
    res.write(': stream open\n\n');
    session.streams.add(res);
    res.once('close', () => session.streams.delete(res));
  }

  async #delete(req: IncomingMessage, res: ServerResponse, caller: Caller | undefined): Promise<void> {
    const session = await this.#session(req, res, caller);
    if (!session) return;
    this.#endSession(session);
    const expiresAt = session.issuedAt + this.#seal.maxAgeMs;
    this.#remember(session.id, expiresAt);
    // Answered once Redis has it (or has failed to take it, within its timeout), so that the
    // client's next request, wherever it lands, already sees the deletion.
    await this.#options.tombstones?.record(session.id, expiresAt - Date.now());
    res.writeHead(200).end();
  }

  /**
   * The request's legacy session; answers 400 (missing) or 404 (unknown) itself when there is none.
   * A session this process holds is found in the map (no verification, one clock read for its max
   * age); an id it does not hold is verified once and, if sealed for this caller, adopted.
   */
  async #session(
    req: IncomingMessage,
    res: ServerResponse,
    caller: Caller | undefined,
  ): Promise<LegacySession | undefined> {
    const id = req.headers['mcp-session-id'];
    if (typeof id !== 'string') {
      writeError(
        res,
        400,
        null,
        new RpcError(RpcCode.InvalidRequest, 'Bad Request: Mcp-Session-Id header is required'),
      );
      return undefined;
    }
    const now = Date.now();
    const session = this.#sessions.get(id) ?? (await this.#adopt(id, caller));
    // Another caller's session id is as good as unknown: never reveal or reuse it.
    if (!session || session.caller?.identity !== caller?.identity || session.caller?.tenant !== caller?.tenant) {
      writeError(res, 404, null, new RpcError(-32001, 'Session not found'));
      return undefined;
    }
    if (now - session.issuedAt >= this.#seal.maxAgeMs) {
      this.#endSession(session);
      writeError(res, 404, null, new RpcError(-32001, 'Session not found'));
      return undefined;
    }
    session.lastSeen = now;
    return session;
  }

  /**
   * Takes up a session another replica opened (or this one dropped when idle): its id must be
   * sealed for this caller, unexpired, not deleted here nor (with Redis) anywhere else, and scoped
   * to an upstream this process serves. What a session held beyond its id (resource
   * subscriptions, open GET streams, requests relayed to the client) stays where it was.
   */
  async #adopt(id: string, caller: Caller | undefined): Promise<LegacySession | undefined> {
    if (this.#closed) return undefined;
    if (this.#deleted.has(id)) return refused('deleted');
    const sealed = this.#seal.open(id, caller);
    if (sealed === undefined) return refused('invalid');
    const scope = sealed.scope === undefined ? undefined : this.#core.upstream(sealed.scope);
    if (sealed.scope !== undefined && scope === undefined) return refused('scope');
    if (this.#options.tombstones !== undefined && (await this.#options.tombstones.isDeleted(id))) {
      this.#remember(id, sealed.issuedAt + this.#seal.maxAgeMs);
      return refused('deleted');
    }
    // Two first requests may have raced through the await: the first one's session wins.
    if (this.#closed || this.#deleted.has(id)) return undefined;
    const held = this.#sessions.get(id);
    if (held) return held;
    if (sessionChannels.adopted.hasSubscribers)
      sessionChannels.adopted.publish({ version: sealed.version, scope: sealed.scope } satisfies SessionAdoptedEvent);
    return this.#hold(id, caller, sealed.version, scope, sealed.issuedAt);
  }

  #hold(
    id: string,
    caller: Caller | undefined,
    version: string,
    scope: GatewayUpstream | undefined,
    issuedAt: number,
  ): LegacySession {
    const session: LegacySession = {
      id,
      caller,
      version,
      scope,
      issuedAt,
      streams: new Set(),
      subscriptions: new Set(),
      inFlight: new Map(),
      asked: new Map(),
      lastSeen: Date.now(),
    };
    this.#sessions.set(id, session);
    return session;
  }

  /** Refuses `id` on this process from now until it would have expired anyway. */
  #remember(id: string, expiresAt: number): void {
    if (this.#deleted.size >= MAX_LOCAL_TOMBSTONES) {
      const oldest = this.#deleted.keys().next();
      if (oldest.done !== true) this.#deleted.delete(oldest.value);
    }
    this.#deleted.set(id, expiresAt);
  }

  /** Another replica ended a session: drop it here too, and refuse it from now on. */
  #deletedElsewhere(id: string): void {
    const session = this.#sessions.get(id);
    if (session) this.#endSession(session);
    this.#remember(id, (session?.issuedAt ?? Date.now()) + this.#seal.maxAgeMs);
  }

  /** After the deletion channel was lost: check each held session against Redis. */
  async #recheckDeleted(): Promise<void> {
    const tombstones = this.#options.tombstones;
    if (tombstones === undefined) return;
    for (const session of [...this.#sessions.values()]) {
      if (await tombstones.isDeleted(session.id)) this.#deletedElsewhere(session.id);
    }
  }

  #endSession(session: LegacySession): void {
    this.#sessions.delete(session.id);
    for (const controller of session.inFlight.values()) controller.abort();
    for (const stream of session.streams) stream.end();
  }

  #onListChanged(kind: 'tools' | 'prompts' | 'resources', upstream: string): void {
    if (this.#closed) return;
    const method = `notifications/${kind}/list_changed`;
    const message = notificationMessage(method);
    for (const session of this.#sessions.values()) {
      if (session.scope && session.scope.name !== upstream) continue;
      for (const stream of session.streams) writeEvent(stream, message);
    }
    const flag = LIST_CHANGED_FLAG[kind];
    for (const listener of this.#listeners) {
      if (!listener.filter[flag] || (listener.scope && listener.scope.name !== upstream)) continue;
      writeEvent(listener.res, notificationMessage(method, { _meta: { [SUBSCRIPTION_ID_META_KEY]: listener.id } }));
    }
  }

  #onResourceUpdated(uri: string, upstream: string): void {
    if (this.#closed) return;
    const message = notificationMessage('notifications/resources/updated', { uri });
    for (const session of this.#sessions.values()) {
      if (!session.subscriptions.has(uri) || (session.scope && session.scope.name !== upstream)) continue;
      for (const stream of session.streams) writeEvent(stream, message);
    }
    for (const listener of this.#listeners) {
      if (!listener.filter.resourceSubscriptions.has(uri)) continue;
      writeEvent(
        listener.res,
        notificationMessage('notifications/resources/updated', {
          uri,
          _meta: { [SUBSCRIPTION_ID_META_KEY]: listener.id },
        }),
      );
    }
  }

  #sweep(): void {
    const now = Date.now();
    const cutoff = now - this.#options.sessionIdleMs;
    for (const session of this.#sessions.values()) {
      if (session.lastSeen < cutoff && session.streams.size === 0 && session.inFlight.size === 0)
        this.#endSession(session);
    }
    for (const [id, expiresAt] of this.#deleted) if (expiresAt <= now) this.#deleted.delete(id);
  }

  #ping(): void {
    for (const session of this.#sessions.values())
      for (const stream of session.streams) stream.write(': keep-alive\n\n');
    for (const listener of this.#listeners) listener.res.write(': keep-alive\n\n');
  }

  /** DNS rebinding defence: a browser's Origin must be allowed, and on loopback the Host must be loopback. */
  #checkOrigin(req: IncomingMessage): string | undefined {
    if (this.#options.loopbackOnly) {
      const host = hostname(req.headers.host);
      if (host !== undefined && !LOOPBACK_HOSTS.has(host))
        return `Forbidden: Host '${req.headers.host}' is not a loopback host`;
    }
    const origin = req.headers.origin;
    if (origin === undefined || origin === 'null') return origin === 'null' ? 'Forbidden: Origin null' : undefined;
    if (this.#options.allowedOrigins.includes(origin)) return undefined;
    try {
      if (LOOPBACK_HOSTS.has(new URL(origin).hostname)) return undefined;
    } catch {
      // fall through: an unparsable origin is not allowed
    }
    return `Forbidden: Origin '${origin}' is not allowed; add it to server.allowed_origins`;
  }
}

function refused(reason: SessionRefusedEvent['reason']): undefined {
  if (sessionChannels.refused.hasSubscribers) sessionChannels.refused.publish({ reason } satisfies SessionRefusedEvent);
  return undefined;
}

const LEGACY_ROUTE = { kind: 'legacy' } as const;

/**
 * The common 2025 case decided without the SDK's classifier (8 µs a request, measured): a request or
 * notification of a session (its id in the header, no 2026-07-28 version header) whose body is a
 * well-formed JSON-RPC message that claims no revision in `_meta`. The SDK routes exactly these to
 * legacy serving untouched; anything else still goes through its ladder.
 */
function isPlainLegacy(req: IncomingMessage, message: unknown): typeof LEGACY_ROUTE | undefined {
  if (typeof req.headers['mcp-session-id'] !== 'string') return undefined;
  const version = req.headers['mcp-protocol-version'];
  if (version !== undefined && (typeof version !== 'string' || !version.startsWith('2025-'))) return undefined;
  if (!isObject(message) || message['jsonrpc'] !== '2.0' || typeof message['method'] !== 'string') return undefined;
  const id = message['id'];
  if (id !== undefined && typeof id !== 'string' && typeof id !== 'number') return undefined;
  const params = message['params'];
  if (params === undefined) return LEGACY_ROUTE;
  if (!isObject(params)) return undefined;
  const meta = params['_meta'];
  if (meta === undefined) return LEGACY_ROUTE;
  return isObject(meta) && meta[PROTOCOL_VERSION_META_KEY] === undefined ? LEGACY_ROUTE : undefined;
}

/** The methods of the common 2026-07-28 requests, and the one params field each must name. */
const PLAIN_MODERN_METHODS: ReadonlyMap<string, 'name' | 'uri' | undefined> = new Map([
  ['tools/call', 'name'],
  ['prompts/get', 'name'],
  ['resources/read', 'uri'],
  ['tools/list', undefined],
  ['prompts/list', undefined],
  ['resources/list', undefined],
  ['resources/templates/list', undefined],
]);

/**
 * The common 2026-07-28 request decided without the SDK's classifier (19 µs a request, measured):
 * the version header and `Mcp-Method` agree with a complete envelope in `_meta`, the method is one
 * of the everyday ones with well-typed params, and no `Mcp-Param-*` header needs checking against
 * a tool's schema. The SDK routes exactly these to modern serving; anything else, including every
 * request it would refuse, still goes through its ladder. `Mcp-Name` is checked after either way.
 */
function isPlainModern(req: IncomingMessage, message: unknown): message is Record<string, unknown> {
  const headers = req.headers;
  if (headers['mcp-protocol-version'] !== MODERN_VERSION || headers['mcp-session-id'] !== undefined) return false;
  if (!isObject(message) || message['jsonrpc'] !== '2.0') return false;
  const method = message['method'];
  if (typeof method !== 'string' || headers['mcp-method'] !== method || !PLAIN_MODERN_METHODS.has(method)) return false;
  const id = message['id'];
  if (typeof id !== 'string' && typeof id !== 'number') return false;
  const params = message['params'];
  if (!isObject(params)) return false;
  const meta = params['_meta'];
  if (!isObject(meta) || meta[PROTOCOL_VERSION_META_KEY] !== MODERN_VERSION) return false;
  const info = meta[CLIENT_INFO_META_KEY];
  if (!isObject(info) || typeof info['name'] !== 'string' || typeof info['version'] !== 'string') return false;
  if (!isObject(meta[CLIENT_CAPABILITIES_META_KEY]) || meta[LOG_LEVEL_META_KEY] !== undefined) return false;
  const token = meta['progressToken'];
  if (token !== undefined && typeof token !== 'string' && typeof token !== 'number') return false;
  const key = PLAIN_MODERN_METHODS.get(method);
  if (key !== undefined && typeof params[key] !== 'string') return false;
  if (key === undefined && params['cursor'] !== undefined && typeof params['cursor'] !== 'string') return false;
  const args = params['arguments'];
  if (args !== undefined && !isObject(args)) return false;
  if (method === 'prompts/get' && args !== undefined && !Object.values(args).every((v) => typeof v === 'string')) {
    return false;
  }
  for (const name in headers) if (name.startsWith('mcp-param-')) return false;
  return true;
}

function hostname(host: string | undefined): string | undefined {
  if (host === undefined) return undefined;
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  const colon = host.lastIndexOf(':');
  return (colon === -1 ? host : host.slice(0, colon)).toLowerCase();
}

/** The MCP error codes of the 2026-07-28 HTTP binding that carry their own HTTP status. */
const MCP_CODES = {
  HeaderMismatch: -32020,
  MissingRequiredClientCapability: -32021,
  UnsupportedProtocolVersion: -32022,
} as const;

/**
 * The HTTP status of a 2026-07-28 error answer: 404 for "method not found", 400 for the errors the
 * binding says are bad requests (header mismatch, undeclared client capability, unsupported
 * version), 200 for the rest (the JSON-RPC error is the payload). An upstream's own such error
 * keeps its status through the gateway.
 */
function modernErrorStatus(code: number): number {
  if (code === RpcCode.MethodNotFound) return 404;
  if (
    code === MCP_CODES.HeaderMismatch ||
    code === MCP_CODES.MissingRequiredClientCapability ||
    code === MCP_CODES.UnsupportedProtocolVersion
  )
    return 400;
  return 200;
}

const LOG_LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];

/**
 * The least severe log level relayed to this request's caller: every level on 2025 (the server
 * decides what to send), on 2026-07-28 only what the request asked for with `_meta.logLevel`
 * (nothing when it did not ask).
 */
function relayedLogLevel(era: 'modern' | 'legacy', meta: unknown): string | undefined {
  if (era === 'legacy') return 'debug';
  const level = isObject(meta) ? meta[LOG_LEVEL_META_KEY] : undefined;
  return typeof level === 'string' && LOG_LEVELS.includes(level) ? level : undefined;
}

function logAtLeast(level: unknown, least: string): boolean {
  const index = typeof level === 'string' ? LOG_LEVELS.indexOf(level) : -1;
  return index === -1 || index >= LOG_LEVELS.indexOf(least);
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function headerField<K extends string>(key: K, value: string | string[] | undefined): Partial<Record<K, string>> {
  const single = Array.isArray(value) ? value[0] : value;
  return single === undefined ? {} : ({ [key]: single } as Record<K, string>);
}

function acceptsEventStream(req: IncomingMessage): boolean {
  const accept = req.headers.accept;
  return accept === undefined || accept.includes('text/event-stream') || accept.includes('*/*');
}

function definedOnly(update: ProgressUpdate): Record<string, unknown> {
  const out: Record<string, unknown> = { progress: update.progress };
  if (update.total !== undefined) out['total'] = update.total;
  if (update.message !== undefined) out['message'] = update.message;
  return out;
}

function writeEvent(res: ServerResponse, data: string): void {
  if (!res.writableEnded && !res.destroyed) res.write(`event: message\ndata: ${data}\n\n`);
}

/** A JSON body with its length, so Node sends it in one piece rather than chunked. */
function writeJson(res: ServerResponse, status: number, payload: string): void {
  res
    .writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) })
    .end(payload);
}

export function writeError(res: ServerResponse, status: number, id: JsonRpcId, error: RpcError): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  writeJson(res, status, errorResponse(id, error));
}

/**
 * A request's "the caller went away or cancelled" signal, made only when something reads it. A call
 * answered from the cache never does, and an AbortController with its signal cost about 8 % of the
 * gateway's CPU on cached calls (measured with --cpu-prof at C=64).
 */
class CallerGone {
  readonly #res: ServerResponse;
  #controller: AbortController | undefined;
  #aborted = false;

  constructor(res: ServerResponse) {
    this.#res = res;
  }

  get signal(): AbortSignal {
    let controller = this.#controller;
    if (controller === undefined) {
      const res = this.#res;
      const made = (controller = this.#controller = new AbortController());
      if (this.#aborted || (res.destroyed && !res.writableFinished)) made.abort();
      else
        res.once('close', () => {
          if (!res.writableFinished) made.abort();
        });
    }
    return controller.signal;
  }

  /** The caller cancelled (`notifications/cancelled`), or its session ended. */
  abort(): void {
    this.#aborted = true;
    this.#controller?.abort();
  }
}

/**
 * Reads a body up to `limit` bytes; `undefined` as soon as it is known to be larger, the rest
 * left unread: the caller answers 413 and closes the connection, so that a client sending
 * gigabytes is neither buffered nor read to the end.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.pause();
        chunks.length = 0;
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => {
      // Most bodies arrive in one chunk: read it where it is rather than copy it first.
      resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8'));
    });
    req.once('error', reject);
  });
}
