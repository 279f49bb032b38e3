import { EventEmitter } from 'node:events';
import {
  CLIENT_CAPABILITIES_META_KEY,
  CLIENT_INFO_META_KEY,
  PROTOCOL_VERSION_META_KEY,
  SERVER_INFO_META_KEY,
  type Implementation,
  type JSONRPCNotification,
  type ServerCapabilities,
  type Tool,
} from '@modelcontextprotocol/client';
import { createProxyFactory, type ExecuteOptions, type ProxyFactory } from '../proxy/index.js';
import type { ProgressUpdate, ServerRequestHandler } from '../upstream/index.js';
import { Catalog, type CatalogOptions, type GatewayUpstream, type NamedView, type Route } from './catalog.js';
import { checkParamHeaders, paramDeclarations, paramHeaders, type ParamDeclaration } from './headers.js';
import { isObject, RpcCode, RpcError } from './rpc.js';

export const MODERN_VERSION = '2026-07-28';
/** The sessionful revisions the gateway serves, newest first. */
export const LEGACY_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26'] as const;

/** Who is calling, as the inbound authentication established it. */
export interface Caller {
  /** The tenant: its own cache partition, quotas and allowed upstreams and tools. */
  readonly tenant: string;
  /** The principal within the tenant (API key id, JWT subject); keys private cache entries. */
  readonly identity: string;
  /** The caller's bearer token: forwarded upstream only to upstreams configured with `forward_auth`. */
  readonly token?: string | undefined;
}

/**
 * What a caller may do. The gateway asks before routing a call and filters lists through it; a
 * refusal is an {@link RpcError} (thrown by `admit`).
 */
export interface AccessPolicy {
  /** Whether the caller may see and use this tool, prompt or resource of this upstream. */
  allows(caller: Caller, upstream: string, kind: 'tool' | 'prompt' | 'resource', name: string): boolean;
  /**
   * Takes the caller's concurrency slot and a rate-limit token, or throws; returns the release.
   * A promise only where deciding takes a round trip (a rate limit shared through Redis).
   */
  admit(caller: Caller): (() => void) | Promise<() => void>;
  /**
   * Whether `admit` would let the caller in at once without taking anything that outlives the
   * call: a concurrency slot free and no rate limit (whose token a call spends). A call answered
   * within the same turn of the event loop needs no more admission than that.
   */
  admitsFreely(caller: Caller): boolean;
}

/** What {@link GatewayCore.cachedAnswer} needs of a request: who asks, in which revision, where. */
export type CachedContext = Pick<RequestContext, 'caller' | 'era' | 'header' | 'scope'>;

/** What a transport knows about the request it hands to the core. */
export interface RequestContext {
  /** The authenticated caller; absent when the gateway runs without authentication. */
  caller?: Caller | undefined;
  era: 'modern' | 'legacy';
  /** Aborted when the client cancels or goes away. */
  signal: AbortSignal;
  /** Set when the client asked for progress: forwards each update to it. */
  onProgress?: ((update: ProgressUpdate) => void) | undefined;
  /** Relays the log messages an upstream sends about this request (HTTP upstreams) to the client. */
  onLog?: ((params: Record<string, unknown>) => void) | undefined;
  /** Set on connections that can carry server-to-client requests (2025 sessions): relays them to the client. */
  onServerRequest?: ServerRequestHandler | undefined;
  /**
   * 2026-07-28 over HTTP: reads a request header by its lower-case name, so that a `tools/call`'s
   * `Mcp-Param-*` headers can be checked against its arguments.
   */
  header?: ((name: string) => string | undefined) | undefined;
  /** Only this upstream (the `/mcp/<name>` endpoint), or all of them. */
  scope?: GatewayUpstream | undefined;
  /** The caller's tenant: its own cache partition. */
  tenant?: string | undefined;
}

export interface GatewayCoreOptions extends CatalogOptions {
  serverInfo: Implementation;
  instructions?: string | undefined;
  /** Items per page of an aggregated list answered downstream. */
  pageSize: number;
  /** Called last by close(), e.g. to close the balancing manager behind group upstreams. */
  onClose?: (() => Promise<void>) | undefined;
  /** Tenants' access rules, quotas and rate limits. Without it every caller may do everything. */
  policy?: AccessPolicy | undefined;
}

export interface CoreEvents {
  /** An upstream's list changed: connected clients should hear it. */
  listChanged: [kind: 'tools' | 'prompts' | 'resources', upstream: string];
  resourceUpdated: [uri: string, upstream: string];
  /** A log message or other notification from an upstream, for sessions that want it. */
  upstreamNotification: [notification: JSONRPCNotification, upstream: string];
}

/** Keys of the 2026-07-28 envelope: the gateway's own business with its client, never passed upstream. */
const ENVELOPE_KEYS = new Set([
  PROTOCOL_VERSION_META_KEY,
  CLIENT_INFO_META_KEY,
  CLIENT_CAPABILITIES_META_KEY,
  'progressToken',
]);

/**
 * The gateway's protocol logic, independent of transport: answers each MCP method from the
 * aggregate of the upstreams, routing calls to the upstream that owns the tool, prompt or resource
 * through that upstream's pipeline (cache, retries, pool). HTTP and stdio inbound both drive it.
 */
export class GatewayCore extends EventEmitter<CoreEvents> {
  readonly catalog: Catalog;
  readonly #options: GatewayCoreOptions;
  readonly #scoped = new Map<string, Catalog>();
  readonly #unsubscribe: (() => void)[] = [];
  /** Per tools list (replaced when it changes): its tools by name, and each tool's `x-mcp-header` declarations. */
  readonly #toolsByName = new WeakMap<object, Map<string, Tool>>();
  readonly #declarations = new WeakMap<Tool, readonly ParamDeclaration[]>();
  /** 2025 connections for 2025 callers of upstreams spoken to in 2026-07-28, by upstream; see #legacyTwin. */
  readonly #twins = new Map<string, { factory: Promise<ProxyFactory>; failedAt: number | undefined }>();

  constructor(upstreams: readonly GatewayUpstream[], options: GatewayCoreOptions) {
    super();
    this.#options = options;
    this.catalog = new Catalog(upstreams, options);
    for (const upstream of upstreams) {
      this.#scoped.set(upstream.name, new Catalog([upstream], options));
      this.#unsubscribe.push(
        upstream.factory.upstream.onNotification((notification) =>
          this.#onUpstreamNotification(upstream, notification),
        ),
      );
    }
  }

  /**
   * Asks the upstreams that serve these URIs to report their updates (a 2026-07-28 listen stream
   * names URIs; the gateway relays resources/updated to the streams that named them). Best effort.
   */
  watchResources(uris: Iterable<string>, scope?: GatewayUpstream): void {
    const catalog = scope ? this.#scoped.get(scope.name)! : this.catalog;
    for (const uri of uris) {
      catalog
        .routeResource(uri)
        .then((route) => route.upstream.factory.upstream.subscribe({ resourceSubscriptions: [route.name] }))
        .catch(() => undefined);
    }
  }

  upstream(name: string): GatewayUpstream | undefined {
    return this.#scoped.get(name)?.upstreams[0];
  }

  get serverInfo(): Implementation {
    return this.#options.serverInfo;
  }

  /** The union of what the upstreams can do, as far as the gateway relays it. */
  capabilities(scope?: GatewayUpstream): ServerCapabilities {
    const upstreams = scope ? [scope] : this.catalog.upstreams;
    const known = upstreams.map((u) => u.factory.upstream.info?.capabilities).filter((c) => c !== undefined);
    // Before any upstream connected, promise the common surface; calls will tell the truth.
    const any = (key: keyof ServerCapabilities) => known.length === 0 || known.some((c) => c[key] !== undefined);
    const capabilities: ServerCapabilities = { logging: {} };
    if (any('tools')) capabilities.tools = { listChanged: true };
    if (any('prompts')) capabilities.prompts = { listChanged: true };
    if (any('resources')) {
      capabilities.resources = { listChanged: true, subscribe: known.some((c) => c.resources?.subscribe === true) };
    }
    if (known.some((c) => c.completions !== undefined)) capabilities.completions = {};
    return capabilities;
  }

  initializeResult(requestedVersion: unknown, scope?: GatewayUpstream): Record<string, unknown> {
    const version = LEGACY_VERSIONS.includes(requestedVersion as (typeof LEGACY_VERSIONS)[number])
      ? (requestedVersion as string)
      : LEGACY_VERSIONS[0];
    return {
      protocolVersion: version,
      capabilities: this.capabilities(scope),
      serverInfo: this.#options.serverInfo,
      ...(this.#options.instructions ? { instructions: this.#options.instructions } : {}),
    };
  }

  discoverResult(scope?: GatewayUpstream): Record<string, unknown> {
    return {
      supportedVersions: [MODERN_VERSION],
      capabilities: this.capabilities(scope),
      ...(this.#options.instructions ? { instructions: this.#options.instructions } : {}),
      _meta: { [SERVER_INFO_META_KEY]: this.#options.serverInfo },
    };
  }

  /** Connects every upstream (in parallel) so that capabilities are known before clients ask. */
  async warmUp(): Promise<void> {
    // Subscribing connects. The catalog keeps each list until the upstream says it changed, and on
    // 2026-07-28 nothing arrives unasked (a subscriptions/listen stream): ask for the changes. An
    // upstream that cannot connect yet keeps the wish and applies it once it does.
    await Promise.allSettled(
      this.catalog.upstreams.map((u) =>
        u.factory.upstream.subscribe({ toolsListChanged: true, promptsListChanged: true, resourcesListChanged: true }),
      ),
    );
  }

  /** Answers one request. Throws {@link RpcError} for the client. */
  async handle(method: string, params: Record<string, unknown> | undefined, ctx: RequestContext): Promise<unknown> {
    const policy = this.#options.policy;
    const admitted = policy && ctx.caller ? policy.admit(ctx.caller) : undefined;
    const release = typeof admitted === 'object' ? await admitted : admitted;
    try {
      const result = await this.#dispatch(method, params, ctx);
      return ctx.era === 'modern' ? modernResult(method, result) : result;
    } finally {
      release?.();
    }
  }

  /**
   * The answer to a `tools/call` that the cache already holds, found without a turn of the event
   * loop, or `undefined`: then {@link handle} answers it. Takes the same steps as `handle` (the
   * tenant's admission, the route, the `Mcp-Param-*` check, the tenant's allowed tools, the cache
   * partition and key) and answers only a fresh hit; anything else (a miss, a refusal, an error)
   * is left to `handle`, which says it the one way it is said. A hit costs no upstream request, no
   * promise and no per-call objects: this is the path most of a cached gateway's traffic takes.
   */
  cachedAnswer(method: string, params: Record<string, unknown> | undefined, ctx: CachedContext): unknown {
    if (method !== 'tools/call') return undefined;
    const name = params?.['name'];
    if (typeof name !== 'string') return undefined;
    const catalog = ctx.scope ? this.#scoped.get(ctx.scope.name)! : this.catalog;
    const view = catalog.loadedTools;
    const route = view?.routes.get(name);
    if (route === undefined) return undefined;
    const factory = route.upstream.factory;
    if (factory.cache === undefined || (ctx.era === 'legacy' && mayTakeTwin(factory))) return undefined;
    if (params!['inputResponses'] !== undefined || params!['requestState'] !== undefined) return undefined;
    const args = params!['arguments'];
    if (args !== undefined && !isObject(args)) return undefined;
    if (ctx.header !== undefined) {
      const declarations = this.#paramDeclarations(view!, name);
      if (declarations.length > 0 && checkParamHeaders(declarations, args, ctx.header)) return undefined;
    }
    if (!this.#allows(route, 'tool', ctx)) return undefined;
    const caller = ctx.caller;
    const policy = this.#options.policy;
    // A rate-limited tenant spends a token per call, a miss included: that call takes handle().
    if (policy && caller && !policy.admitsFreely(caller)) return undefined;
    const hit = factory.cachedTool(
      route.name,
      args ?? {},
      caller === undefined ? undefined : cachePartition(route, caller),
    );
    if (hit === undefined) return undefined;
    return ctx.era === 'modern' ? modernResult(method, hit) : hit;
  }

  async #dispatch(method: string, params: Record<string, unknown> | undefined, ctx: RequestContext): Promise<unknown> {
    // 2026-07-28 removed these: a modern caller gets "method not found", never a 2025 answer.
    if (ctx.era === 'modern' && REMOVED_IN_MODERN.has(method)) {
      throw new RpcError(RpcCode.MethodNotFound, `Method not found: ${method} (removed in ${MODERN_VERSION})`);
    }
    const catalog = ctx.scope ? this.#scoped.get(ctx.scope.name)! : this.catalog;
    switch (method) {
      case 'ping':
        return {};
      case 'server/discover':
        return this.discoverResult(ctx.scope);
      case 'tools/list':
        return this.#page('tools', this.#visible(ctx, 'tool', await catalog.tools()), params);
      case 'prompts/list':
        return this.#page('prompts', this.#visible(ctx, 'prompt', await catalog.prompts()), params);
      case 'resources/list': {
        const { items, byUri } = await catalog.resources();
        return this.#page(
          'resources',
          this.#visible(ctx, 'resource', {
            items: items.map((r) => ({ ...r, name: r.uri, resource: r })),
            routes: byUri,
          }).map((v) => v.resource),
          params,
        );
      }
      case 'resources/templates/list':
        return this.#page('resourceTemplates', this.#visibleTemplates(ctx, await catalog.templates()), params);
      case 'tools/call': {
        const name = requireString(params, 'name');
        // The loaded list answers without a turn of the event loop (the common case: every call
        // but the first after a list change).
        let view = catalog.loadedTools ?? (await catalog.tools());
        let route = view.routes.get(name);
        if (!route && (await catalog.retryMissing('tools'))) {
          view = await catalog.tools();
          route = view.routes.get(name);
        }
        if (!route) throw new RpcError(RpcCode.InvalidParams, `Unknown tool: ${name}${catalog.missingNote('tools')}`);
        const declarations = this.#paramDeclarations(view, name);
        if (ctx.header !== undefined && declarations.length > 0) {
          const refusal = checkParamHeaders(declarations, params?.['arguments'], ctx.header);
          if (refusal) throw refusal;
        }
        return this.#forward(route, method, params, ctx, 'name', declarations);
      }
      case 'prompts/get': {
        const name = requireString(params, 'name');
        return this.#forward(await catalog.routePrompt(name), method, params, ctx, 'name');
      }
      case 'resources/read': {
        const uri = requireString(params, 'uri');
        return this.#forward(await catalog.routeResource(uri), method, params, ctx, 'uri');
      }
      case 'resources/subscribe':
      case 'resources/unsubscribe': {
        // The gateway subscribes on the caller's behalf, the way the upstream's revision does it
        // (resources/subscribe on 2025, a subscriptions/listen stream on 2026-07-28), and the
        // transports pass resources/updated to the callers that subscribed. Unsubscribing only
        // stops that: the upstream subscription stays for the other callers.
        const uri = requireString(params, 'uri');
        const route = await catalog.routeResource(uri);
        this.#authorize(route, method, ctx);
        if (method === 'resources/subscribe') {
          await untilAborted(
            route.upstream.factory.upstream.subscribe({ resourceSubscriptions: [route.name] }),
            ctx.signal,
          );
        }
        return {};
      }
      case 'completion/complete':
        return this.#complete(catalog, params, ctx);
      case 'logging/setLevel':
        // Only 2025 upstreams have it: a 2026-07-28 one takes a level per request (_meta.logLevel).
        await Promise.allSettled(
          catalog.upstreams
            .filter((u) => u.factory.upstream.info?.era !== 'modern')
            .map((u) => u.factory.request(method, this.#upstreamParams(params), { signal: ctx.signal })),
        );
        return {};
      default:
        throw new RpcError(RpcCode.MethodNotFound, `Method not found: ${method}`);
    }
  }

  async close(): Promise<void> {
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    const twins = [...this.#twins.values()].map((t) => t.factory.then((f) => f.close()));
    await Promise.allSettled([...this.catalog.upstreams.map((u) => u.factory.close()), ...twins]);
    await this.#options.onClose?.();
  }

  async #complete(
    catalog: Catalog,
    params: Record<string, unknown> | undefined,
    ctx: RequestContext,
  ): Promise<unknown> {
    const ref = params?.['ref'];
    if (!isObject(ref)) throw new RpcError(RpcCode.InvalidParams, 'completion/complete needs params.ref');
    if (ref['type'] === 'ref/prompt' && typeof ref['name'] === 'string') {
      const route = await catalog.routePrompt(ref['name']);
      return this.#forward(route, 'completion/complete', { ...params, ref: { ...ref, name: route.name } }, ctx);
    }
    if (ref['type'] === 'ref/resource' && typeof ref['uri'] === 'string') {
      const route = await catalog.routeResource(ref['uri']);
      return this.#forward(route, 'completion/complete', params, ctx);
    }
    throw new RpcError(RpcCode.InvalidParams, 'completion/complete: ref must be ref/prompt or ref/resource');
  }

  /** The items of a list this caller may see. */
  #visible<T extends { name: string }>(
    ctx: RequestContext,
    kind: 'tool' | 'prompt' | 'resource',
    view: { items: readonly T[]; routes: Map<string, Route> },
  ): readonly T[] {
    const policy = this.#options.policy;
    const caller = ctx.caller;
    if (!policy || !caller) return view.items;
    return view.items.filter((item) => {
      const route = view.routes.get(item.name);
      return route !== undefined && policy.allows(caller, route.upstream.name, kind, route.name);
    });
  }

  /** The resource templates this caller may see: those of upstreams it may read from. */
  #visibleTemplates(
    ctx: RequestContext,
    view: { items: readonly { uriTemplate: string }[]; matchers: readonly { route: Route }[] },
  ): readonly unknown[] {
    const policy = this.#options.policy;
    const caller = ctx.caller;
    if (!policy || !caller) return view.items;
    const allowed = new Set<string>();
    for (const { route } of view.matchers) {
      if (policy.allows(caller, route.upstream.name, 'resource', route.name)) allowed.add(route.name);
    }
    return view.items.filter((template) => allowed.has(template.uriTemplate));
  }

  /** Refuses a caller its tenant's rules do not allow this tool, prompt or resource (as if it did not exist). */
  #authorize(route: Route, method: string, ctx: CachedContext): void {
    const kind = accessKind(method);
    if (!this.#allows(route, kind, ctx)) {
      throw new RpcError(
        RpcCode.InvalidParams,
        `${kind === 'tool' ? 'Unknown tool' : kind === 'prompt' ? 'Unknown prompt' : 'Resource not found'}: ${route.name}`,
      );
    }
  }

  /** Whether the caller's tenant may use what the route leads to (everyone may without a policy). */
  #allows(route: Route, kind: 'tool' | 'prompt' | 'resource', ctx: CachedContext): boolean {
    const policy = this.#options.policy;
    return !policy || !ctx.caller || policy.allows(ctx.caller, route.upstream.name, kind, route.name);
  }

  #forward(
    route: Route,
    method: string,
    params: Record<string, unknown> | undefined,
    ctx: RequestContext,
    renameKey?: 'name' | 'uri',
    declarations?: readonly ParamDeclaration[],
  ): Promise<unknown> {
    this.#authorize(route, method, ctx);
    const upstreamParams = this.#upstreamParams(params, ctx.era === 'modern');
    if (renameKey && upstreamParams) upstreamParams[renameKey] = route.name;
    const options: ExecuteOptions = {
      // Read only when the call leaves the process: a cache hit never makes the signal.
      get signal() {
        return ctx.signal;
      },
      onProgress: ctx.onProgress,
      onServerRequest: ctx.onServerRequest,
      onLog: ctx.onLog,
    };
    // A later round of an input_required exchange answers one caller's questions: never a cache entry.
    if (upstreamParams?.['inputResponses'] !== undefined || upstreamParams?.['requestState'] !== undefined) {
      options.cache = 'bypass';
    }
    const caller = ctx.caller;
    if (caller !== undefined) {
      const partition = cachePartition(route, caller);
      options.tenant = partition.tenant;
      options.identity = partition.identity;
      // Only to upstreams configured with forward_auth does the caller's token ever go.
      if (forwardsAuth(route) && caller.token !== undefined) {
        options.headers = { authorization: `Bearer ${caller.token}` };
      }
    }
    if (
      declarations !== undefined &&
      declarations.length > 0 &&
      route.upstream.factory.config.transport.kind === 'http'
    ) {
      // The 2026-07-28 binding: the upstream checks that these headers mirror the arguments.
      options.headers = { ...paramHeaders(declarations, params?.['arguments']), ...options.headers };
    }
    const twin = this.#legacyTwin(route.upstream, ctx);
    if (twin === undefined) return route.upstream.factory.request(method, upstreamParams, options);
    return twin.then((factory) => factory.request(method, upstreamParams, options));
  }

  /**
   * The connection a 2025 caller's call takes to an upstream the gateway speaks 2026-07-28 to
   * (`protocol: auto`), or `undefined` for the upstream's own. A 2026-07-28 server cannot send
   * requests to its client mid-call (sampling, elicitation, roots: the 2025 push model), so a 2025
   * caller, who can answer them, is served over a second, 2025 connection to the same server, made
   * on first need. Where the server does not speak 2025, the calls take the upstream's own
   * connection (tried again after a while).
   */
  #legacyTwin(upstream: GatewayUpstream, ctx: RequestContext): Promise<ProxyFactory> | undefined {
    if (ctx.era !== 'legacy' || ctx.onServerRequest === undefined) return undefined;
    const factory = upstream.factory;
    if (!mayTakeTwin(factory)) return undefined;
    const known = this.#twins.get(upstream.name);
    if (known !== undefined && (known.failedAt === undefined || performance.now() - known.failedAt < TWIN_RETRY_MS)) {
      return known.failedAt === undefined ? known.factory : undefined;
    }
    const entry: { factory: Promise<ProxyFactory>; failedAt: number | undefined } = {
      factory: Promise.resolve(factory),
      failedAt: undefined,
    };
    entry.factory = createProxyFactory({ ...factory.config, protocol: 'legacy' }).then(async (twin) => {
      try {
        await twin.upstream.connect();
        return twin;
      } catch {
        entry.failedAt = performance.now();
        await twin.close().catch(() => undefined);
        return factory;
      }
    });
    this.#twins.set(upstream.name, entry);
    return entry.factory;
  }

  /** The `x-mcp-header` declarations of a listed tool (by the name callers see), worked out once per list. */
  #paramDeclarations(view: NamedView<Tool>, name: string): readonly ParamDeclaration[] {
    let byName = this.#toolsByName.get(view);
    if (byName === undefined) {
      byName = new Map(view.items.map((tool) => [tool.name, tool]));
      this.#toolsByName.set(view, byName);
    }
    const tool = byName.get(name);
    if (tool === undefined) return [];
    let declarations = this.#declarations.get(tool);
    if (declarations === undefined) {
      declarations = paramDeclarations(tool.inputSchema);
      this.#declarations.set(tool, declarations);
    }
    return declarations;
  }

  /**
   * The params sent upstream: the client's, without the gateway's own envelope entries in `_meta`.
   * `keepCapabilities`: a 2026-07-28 caller's declared capabilities go upstream, since what the
   * upstream may ask of the client (an `input_required` result) comes back to that caller.
   */
  #upstreamParams(
    params: Record<string, unknown> | undefined,
    keepCapabilities = false,
  ): Record<string, unknown> | undefined {
    if (params === undefined) return undefined;
    const copy: Record<string, unknown> = {};
    for (const key in params) {
      const value = params[key];
      if (value === undefined) continue;
      if (key === '_meta' && isObject(value)) {
        const meta: Record<string, unknown> = {};
        let kept = 0;
        for (const metaKey in value) {
          if (ENVELOPE_KEYS.has(metaKey) && !(keepCapabilities && metaKey === CLIENT_CAPABILITIES_META_KEY)) continue;
          meta[metaKey] = value[metaKey];
          kept++;
        }
        if (kept > 0) copy['_meta'] = meta;
        continue;
      }
      copy[key] = value;
    }
    return copy;
  }

  #page(key: string, items: readonly unknown[], params: Record<string, unknown> | undefined) {
    const size = this.#options.pageSize;
    let offset = 0;
    const cursor = params?.['cursor'];
    if (cursor !== undefined) {
      offset = typeof cursor === 'string' ? decodeCursor(cursor) : -1;
      if (offset < 0 || offset > items.length) throw new RpcError(RpcCode.InvalidParams, 'Invalid cursor');
    }
    const result: Record<string, unknown> = { [key]: items.slice(offset, offset + size) };
    if (offset + size < items.length) result['nextCursor'] = encodeCursor(offset + size);
    return result;
  }

  #onUpstreamNotification(upstream: GatewayUpstream, notification: JSONRPCNotification): void {
    switch (notification.method) {
      case 'notifications/tools/list_changed':
        this.#invalidate(upstream, 'tools');
        return;
      case 'notifications/prompts/list_changed':
        this.#invalidate(upstream, 'prompts');
        return;
      case 'notifications/resources/list_changed':
        this.#invalidate(upstream, 'resources');
        return;
      case 'notifications/resources/updated': {
        const uri = notification.params?.['uri'];
        if (typeof uri === 'string') this.emit('resourceUpdated', uri, upstream.name);
        return;
      }
      default:
        this.emit('upstreamNotification', notification, upstream.name);
    }
  }

  #invalidate(upstream: GatewayUpstream, kind: 'tools' | 'prompts' | 'resources'): void {
    this.catalog.invalidate(upstream.name, kind);
    this.#scoped.get(upstream.name)?.invalidate(upstream.name, kind);
    this.emit('listChanged', kind, upstream.name);
  }
}

/** After a failed attempt at a 2025 connection to an upstream (see #legacyTwin), wait this long before the next. */
const TWIN_RETRY_MS = 60_000;

/** Methods of the 2025 revisions that 2026-07-28 removed (SEP-2575). */
const REMOVED_IN_MODERN = new Set([
  'initialize',
  'ping',
  'logging/setLevel',
  'resources/subscribe',
  'resources/unsubscribe',
]);

/** What kind of thing a method uses, as tenants' access rules name it. */
function accessKind(method: string): 'tool' | 'prompt' | 'resource' {
  if (method.startsWith('tools/')) return 'tool';
  return method.startsWith('prompts/') || method === 'completion/complete' ? 'prompt' : 'resource';
}

/** Whether a 2025 caller's calls to this upstream may take a second, 2025 connection (see `#legacyTwin`). */
function mayTakeTwin(factory: ProxyFactory): boolean {
  // Only HTTP upstreams relay a server's mid-call requests (see CallOptions.onServerRequest).
  if (factory.config.transport.kind !== 'http' || factory.config.protocol !== 'auto') return false;
  return factory.upstream.info?.era === 'modern';
}

function forwardsAuth(route: Route): boolean {
  const transport = route.upstream.factory.config.transport;
  return transport.kind === 'http' && transport.forwardAuth === true;
}

/**
 * The cache partition of a caller's calls on a route: the caller's tenant. An upstream that sees
 * each caller's own token may answer each differently: its answers are then kept per caller.
 */
function cachePartition(route: Route, caller: Caller): { tenant: string; identity: string } {
  return {
    tenant: forwardsAuth(route) ? `${caller.tenant}\u0000${caller.identity}` : caller.tenant,
    identity: caller.identity,
  };
}

/** Methods whose 2026-07-28 results must carry a cache hint (`ttlMs`, `cacheScope`). */
const HINTED_METHODS = new Set([
  'server/discover',
  'tools/list',
  'prompts/list',
  'resources/list',
  'resources/templates/list',
  'resources/read',
]);

/**
 * A result as a 2026-07-28 client must see it: `resultType`, and on the hinted methods a cache hint.
 * Where the upstream gave no hint (a 2025 upstream, or an aggregate) the answer is the cautious one,
 * "do not cache" (`ttlMs: 0`, `private`): the gateway caches and invalidates on the client's behalf.
 */
function modernResult(method: string, result: unknown): unknown {
  if (!isObject(result)) return result;
  const needsHint =
    HINTED_METHODS.has(method) && (typeof result['ttlMs'] !== 'number' || result['cacheScope'] === undefined);
  if (result['resultType'] !== undefined && !needsHint) return result;
  // A cached result is frozen and shared: dress it once, so that its dressed form is shared too
  // (and its serialization, which the transports memoize by object).
  const frozen = Object.isFrozen(result);
  if (frozen) {
    const dressed = DRESSED.get(result);
    if (dressed !== undefined) return dressed;
  }
  const out: Record<string, unknown> = { ...result };
  out['resultType'] ??= 'complete';
  if (needsHint) {
    out['ttlMs'] = typeof result['ttlMs'] === 'number' ? result['ttlMs'] : 0;
    out['cacheScope'] = result['cacheScope'] === 'public' ? 'public' : 'private';
  }
  if (frozen) DRESSED.set(result, Object.freeze(out));
  return out;
}

const DRESSED = new WeakMap<object, Record<string, unknown>>();

/** `promise`, or a rejection as soon as `signal` aborts (the caller went away or cancelled). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new RpcError(RpcCode.InternalError, 'request cancelled'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new RpcError(RpcCode.InternalError, 'request cancelled'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function requireString(params: Record<string, unknown> | undefined, key: string): string {
  const value = params?.[key];
  if (typeof value !== 'string') throw new RpcError(RpcCode.InvalidParams, `params.${key} must be a string`);
  return value;
}

function encodeCursor(offset: number): string {
  return Buffer.from(`o:${offset}`).toString('base64url');
}

function decodeCursor(cursor: string): number {
  const match = /^o:(\d{1,9})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  return match ? Number(match[1]) : -1;
}
