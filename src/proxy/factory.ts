import type {
  CallToolResult,
  GetPromptResult,
  Implementation,
  ListPromptsResult,
  ListResourcesResult,
  ListResourceTemplatesResult,
  ListToolsResult,
  Prompt,
  ReadResourceResult,
  Resource,
  ResourceTemplateType as ResourceTemplate,
  ServerCapabilities,
  Tool,
} from '@modelcontextprotocol/client';
import type { JSONRPCNotification } from '@modelcontextprotocol/client';
import {
  cacheChannels,
  cacheKey,
  cachePolicyFromConfig,
  cacheTag,
  canonicalJson,
  categoryOf,
  createResponseCache,
  keyPrefix,
  type CacheCategory,
  type CacheLogger,
  type CacheMode,
  type CachePolicy,
  type Clock,
  type ResponseCache,
  type StoreDecision,
} from '../cache/index.js';
import { resolveProxyConfig, type ProxyConfig, type ResolvedUpstreamConfig } from '../config/index.js';
import { RelayError, RelayErrorCode } from '../errors/index.js';
import { withRetry } from '../resilience/index.js';
import {
  createUpstream,
  type CallOptions,
  type ServerRequestHandler,
  type ProgressUpdate,
  type Upstream,
} from '../upstream/index.js';
import { factoryStats, unwatchStats, watchStats, type ProxyStats } from '../telemetry/stats.js';
import { CallClock, callChannel, callsObserved, nameOf, observeCall, upstreamAttempt } from './events.js';
import type { FetchRequest } from '../cache/index.js';

/** Per-call options of every proxy method. */
export interface ExecuteOptions {
  /** Aborts the call; the upstream is told with `notifications/cancelled` (or by closing the stream on 2026-07-28). */
  signal?: AbortSignal | undefined;
  /** This call's deadline, in ms; default the config's `timeout`. Reset by each progress notification. */
  timeout?: number | undefined;
  /** Receives the upstream's progress notifications for this call. */
  onProgress?: ((update: ProgressUpdate) => void) | undefined;
  /** Extra `_meta` entries passed upstream unchanged (e.g. `traceparent`). */
  meta?: Readonly<Record<string, unknown>> | undefined;
  /** HTTP upstreams: headers for this call over the configured ones (the gateway's `forward_auth`). */
  headers?: Readonly<Record<string, string>> | undefined;
  /** Answers requests the server sends back mid-call (sampling, elicitation, roots: the 2025 push model). */
  onServerRequest?: ServerRequestHandler | undefined;
  /** HTTP upstreams: receives the log messages the server sends on this call's own stream. */
  onLog?: ((params: Record<string, unknown>) => void) | undefined;
  /**
   * `'default'`: serve a fresh cached result, store a cacheable one. `'bypass'`: neither read nor
   * write the cache. `'refresh'`: always ask the upstream and store its answer.
   */
  cache?: CacheMode | undefined;
  /** This call's tenant (its own cache partition); default the factory's. */
  tenant?: string | undefined;
  /** This call's caller identity, for results the server marks `cacheScope: 'private'`; default the factory's. */
  identity?: string | undefined;
}

/** Options of {@link createProxyFactory} beyond the config: who calls, and what is injected. */
export interface ProxyFactoryOptions {
  /** Tenant of this factory's calls: its own cache partition. Default: the config's `tenant`, else `''`. */
  tenant?: string | undefined;
  /** Identity of the caller, for results the server marks private. Default `''` (one principal). */
  identity?: string | undefined;
  /**
   * A cache shared with other factories (entries are keyed by upstream name, so two factories of
   * one upstream share them). Default: one of this factory's own, sized by the config.
   */
  cache?: ResponseCache | undefined;
  /** Milliseconds, for TTLs; default `Date.now`. */
  now?: Clock | undefined;
  /** Receives the cache's few warnings; default `process.emitWarning`. */
  logger?: CacheLogger | undefined;
  /**
   * Record this factory's operations for {@link ProxyFactory.stats} from creation. Default false:
   * recording then begins at the first `stats()`, and a factory nobody observes pays nothing.
   */
  stats?: boolean | undefined;
}

/** One request for {@link ProxyFactory.warm}. */
export type WarmCall =
  | { tool: string; arguments?: Record<string, unknown> | undefined }
  | { uri: string }
  | { prompt: string; arguments?: Record<string, string> | undefined }
  | { list: 'tools' | 'resources' | 'resourceTemplates' | 'prompts' };

/** What {@link ProxyFactory.warm} did. It never throws for a failed call. */
export interface WarmReport {
  /** Calls now answered from cache (or found already fresh). */
  warmed: number;
  /** Tools that may not be cached (side effects): never called for warming. */
  skipped: WarmCall[];
  failed: { call: WarmCall; error: unknown }[];
}

/** What {@link ProxyFactory.validateConnection} reports. It never throws. */
export interface ConnectionReport {
  healthy: boolean;
  /** Round trip of a `ping` (`server/discover` on 2026-07-28), in ms, after connecting if this call had to. */
  latencyMs: number;
  protocolVersion: string | undefined;
  serverInfo: Implementation | undefined;
  capabilities?: ServerCapabilities | undefined;
  error?: { code: string; message: string } | undefined;
}

export class ToolProxy {
  readonly name: string;
  readonly #factory: ProxyFactory;
  /** The cache key prefix of this tool under the factory's tenant, computed once. */
  #keyPrefix: string | undefined;

  constructor(factory: ProxyFactory, name: string) {
    this.#factory = factory;
    this.name = name;
  }

  /**
   * Calls the tool. A tool's own failure comes back as a result with `isError: true`; transport,
   * timeout and protocol failures reject with a {@link RelayError}. A result served from cache is
   * frozen: it is the object every caller of the same call receives.
   */
  execute(args: Record<string, unknown> = {}, options?: ExecuteOptions): Promise<CallToolResult> {
    this.#keyPrefix ??= this.#factory.toolKeyPrefix(this.name);
    return this.#factory.callTool(this.name, args, options, this.#keyPrefix);
  }
}

export class ResourceProxy {
  readonly uri: string;
  readonly #factory: ProxyFactory;

  constructor(factory: ProxyFactory, uri: string) {
    this.#factory = factory;
    this.uri = uri;
  }

  read(options?: ExecuteOptions): Promise<ReadResourceResult> {
    return this.#factory.request('resources/read', { uri: this.uri }, options) as Promise<ReadResourceResult>;
  }
}

export class PromptProxy {
  readonly name: string;
  readonly #factory: ProxyFactory;

  constructor(factory: ProxyFactory, name: string) {
    this.#factory = factory;
    this.name = name;
  }

  get(args: Record<string, string> = {}, options?: ExecuteOptions): Promise<GetPromptResult> {
    return this.#factory.request(
      'prompts/get',
      { name: this.name, arguments: args },
      options,
    ) as Promise<GetPromptResult>;
  }
}

/**
 * The seed's `MCPProxyFactory`, typed: proxies for tools, resources and prompts of one upstream,
 * sharing its connection pool. Connects on the first call (concurrent first calls share one
 * handshake), so creating a factory for a server that is down does not throw; use
 * {@link validateConnection} to check.
 *
 * `await using factory = await createProxyFactory(config)` closes it at the end of the scope.
 */
export class ProxyFactory implements AsyncDisposable {
  readonly config: ResolvedUpstreamConfig;
  readonly upstream: Upstream;
  /**
   * The response cache (`invalidate()`, `clear()`, `stats()`); `undefined` when `enable_caching`
   * is false or `cache_size` is 0.
   */
  readonly cache: ResponseCache | undefined;
  readonly #policy: CachePolicy | undefined;
  readonly #ownsCache: boolean;
  readonly #tenant: string;
  readonly #identity: string;
  /** The cache's upstream group: entries of one upstream, whichever factory stored them. */
  readonly #group: string;
  readonly #stopListening: (() => void) | undefined;
  #listsSubscribed: Promise<void> | undefined;
  readonly #subscribedUris = new Set<string>();
  #annotations: Promise<void> | undefined;
  #closed = false;
  /** Which observed hits are timed (see `./events.ts`). */
  readonly #clock = new CallClock();

  constructor(config: ResolvedUpstreamConfig, upstream: Upstream, options: ProxyFactoryOptions = {}) {
    this.config = config;
    this.upstream = upstream;
    this.#tenant = options.tenant ?? config.tenant ?? '';
    this.#identity = options.identity ?? '';
    this.#group = config.name;
    const enabled = config.enableCaching && config.cacheSize > 0;
    this.#policy = enabled ? cachePolicyFromConfig(config) : undefined;
    this.cache = enabled ? (options.cache ?? createResponseCache(config, options)) : undefined;
    this.#ownsCache = enabled && options.cache === undefined;
    this.#stopListening = enabled ? upstream.onNotification((n) => this.#onNotification(n)) : undefined;
    if (this.#policy?.options.tools === '*') void this.#warnCachingEveryTool();
    if (options.stats === true) watchStats(this);
  }

  createToolProxy(name: string): ToolProxy {
    return new ToolProxy(this, name);
  }

  createResourceProxy(uri: string): ResourceProxy {
    return new ResourceProxy(this, uri);
  }

  createPromptProxy(name: string): PromptProxy {
    return new PromptProxy(this, name);
  }

  /** Every tool of the upstream, all pages walked. */
  async listTools(options?: ExecuteOptions): Promise<Tool[]> {
    return this.#listAll<ListToolsResult, Tool>('tools/list', 'tools', options);
  }

  async listResources(options?: ExecuteOptions): Promise<Resource[]> {
    return this.#listAll<ListResourcesResult, Resource>('resources/list', 'resources', options);
  }

  async listResourceTemplates(options?: ExecuteOptions): Promise<ResourceTemplate[]> {
    return this.#listAll<ListResourceTemplatesResult, ResourceTemplate>(
      'resources/templates/list',
      'resourceTemplates',
      options,
    );
  }

  async listPrompts(options?: ExecuteOptions): Promise<Prompt[]> {
    return this.#listAll<ListPromptsResult, Prompt>('prompts/list', 'prompts', options);
  }

  /** Connects if needed and checks liveness with one round trip. Never throws: an unreachable server is `{ healthy: false, error }`. */
  async validateConnection(options?: { signal?: AbortSignal; timeout?: number }): Promise<ConnectionReport> {
    const started = performance.now();
    let info = this.upstream.info;
    try {
      const timeoutMs = options?.timeout ?? this.config.timeoutMs;
      const signal = anySignal(options?.signal, AbortSignal.timeout(timeoutMs));
      info = await this.upstream.connect(signal);
      const pingStart = performance.now();
      // 2026-07-28 has no `ping`: a `server/discover` round trip is its cheapest liveness check.
      await this.upstream.request(info.era === 'modern' ? 'server/discover' : 'ping', undefined, { signal, timeoutMs });
      return {
        healthy: true,
        latencyMs: performance.now() - pingStart,
        protocolVersion: info.protocolVersion,
        serverInfo: info.serverInfo,
        capabilities: info.capabilities,
      };
    } catch (error) {
      const relayError =
        error instanceof RelayError
          ? error
          : new RelayError(RelayErrorCode.UpstreamUnavailable, String((error as Error)?.message ?? error));
      return {
        healthy: false,
        latencyMs: performance.now() - started,
        protocolVersion: info?.protocolVersion,
        serverInfo: info?.serverInfo,
        error: { code: relayError.code, message: relayError.message },
      };
    }
  }

  /**
   * One JSON-RPC request through the pipeline: retries (only where the request surely never ran),
   * then the upstream connection with its deadline and cancellation.
   */
  request(method: string, params: Record<string, unknown> | undefined, options?: ExecuteOptions): Promise<unknown> {
    if (this.#closed) return Promise.reject(this.#closedError());
    const category = this.cache === undefined || options?.cache === 'bypass' ? undefined : categoryOf(method);
    if (category === undefined) return this.#uncached(method, params, options);
    if (method === 'tools/call') {
      const name = typeof params?.['name'] === 'string' ? params['name'] : '';
      const args = (params?.['arguments'] ?? {}) as Record<string, unknown>;
      return this.callTool(name, args, options, undefined, params);
    }
    const name = method === 'resources/read' ? params?.['uri'] : method === 'prompts/get' ? params?.['name'] : '';
    if (typeof name !== 'string') return this.#uncached(method, params, options);
    const args =
      method === 'prompts/get'
        ? params?.['arguments']
        : params?.['cursor'] === undefined
          ? undefined
          : { cursor: params['cursor'] };
    const ruleTtl = this.#policy!.options.ttlMs[category];
    const tenant = options?.tenant ?? this.#tenant;
    return this.#cached(
      method,
      category,
      name,
      params,
      ruleTtl,
      cacheKey(tenant, this.#group, method, name, args),
      options,
    );
  }

  /** The cache key prefix of `name`'s calls under this factory's tenant; see {@link ToolProxy}. */
  toolKeyPrefix(name: string): string {
    return keyPrefix(this.#tenant, this.#group, 'tools/call', name);
  }

  /**
   * `tools/call` through the cache when the policy allows this tool. The hit path is a verdict
   * lookup, the key (prefix + canonical JSON of the arguments) and one map lookup. `params`, when
   * given, is the request as sent (its `_meta` and any other fields kept); else `{ name, arguments }`.
   */
  callTool(
    name: string,
    args: Record<string, unknown>,
    options: ExecuteOptions | undefined,
    prefix: string | undefined,
    params?: Record<string, unknown>,
  ): Promise<CallToolResult> {
    const cache = this.cache;
    const sent = params ?? { name, arguments: args };
    if (cache === undefined || this.#closed || options?.cache === 'bypass') {
      return this.request('tools/call', sent, options) as Promise<CallToolResult>;
    }
    const ttl = this.#policy!.toolVerdict(name);
    if (ttl === null) return this.#uncached('tools/call', sent, options) as Promise<CallToolResult>;
    if (ttl === undefined) return this.#callToolOnceAnnotated(name, args, options, params);
    const key = this.#toolKey(name, args, options?.tenant, prefix);
    if (options?.cache !== 'refresh') {
      const hit = this.#toolHit(name, key, options);
      if (hit !== undefined) return Promise.resolve(hit);
    }
    return this.#cached('tools/call', 'tools', name, sent, ttl, key, options) as Promise<CallToolResult>;
  }

  /**
   * The fresh cache entry that `callTool(name, args, options)` would answer with, found without a
   * turn of the event loop, or `undefined` when that call would go further (a miss, a stale entry,
   * a tool whose verdict needs its annotations, a cache bypass or refresh). Counted and published
   * as the hit it is: the same lookup as `callTool`'s, for callers that answer synchronously.
   */
  cachedTool(name: string, args: Record<string, unknown>, options?: ExecuteOptions): CallToolResult | undefined {
    if (this.cache === undefined || this.#closed || options?.cache === 'bypass' || options?.cache === 'refresh') {
      return undefined;
    }
    if (typeof this.#policy!.toolVerdict(name) !== 'number') return undefined;
    return this.#toolHit(name, this.#toolKey(name, args, options?.tenant, undefined), options);
  }

  #toolKey(
    name: string,
    args: Record<string, unknown>,
    tenant: string | undefined,
    prefix: string | undefined,
  ): string {
    return (
      (tenant === undefined || tenant === this.#tenant
        ? (prefix ?? this.toolKeyPrefix(name))
        : keyPrefix(tenant, this.#group, 'tools/call', name)) + canonicalJson(args)
    );
  }

  #toolHit(name: string, key: string, options: ExecuteOptions | undefined): CallToolResult | undefined {
    const started = callChannel.hasSubscribers ? this.#clock.start() : -1;
    const hit = this.cache!.get(key, options?.identity ?? this.#identity, 'tools');
    if (hit !== undefined && started !== -1) {
      this.#clock.hit(this, 'tools/call', name, options?.tenant ?? this.#tenant, started);
    }
    return hit as CallToolResult | undefined;
  }

  /**
   * Runs `calls` through the cache so that later identical calls are hits (the seed's
   * `optimize_for_reads`). Tools that may not be cached are skipped, never called: warming must
   * not have side effects. Failures are reported, not thrown.
   */
  async warm(calls: readonly WarmCall[], options?: ExecuteOptions): Promise<WarmReport> {
    const report: WarmReport = { warmed: 0, skipped: [], failed: [] };
    const policy = this.#policy;
    if (policy === undefined) {
      report.skipped.push(...calls);
      return report;
    }
    if (policy.needsAnnotations && calls.some((call) => 'tool' in call)) await this.#loadAnnotations();
    const run = async (call: WarmCall): Promise<void> => {
      if ('tool' in call) {
        if (typeof policy.toolVerdict(call.tool) !== 'number') {
          report.skipped.push(call);
          return;
        }
        await this.createToolProxy(call.tool).execute(call.arguments ?? {}, options);
      } else if ('uri' in call) {
        await this.createResourceProxy(call.uri).read(options);
      } else if ('prompt' in call) {
        await this.createPromptProxy(call.prompt).get(call.arguments ?? {}, options);
      } else {
        const lists = {
          tools: () => this.listTools(options),
          resources: () => this.listResources(options),
          resourceTemplates: () => this.listResourceTemplates(options),
          prompts: () => this.listPrompts(options),
        } as const;
        await lists[call.list]();
      }
      report.warmed++;
    };
    const outcomes = await Promise.allSettled(calls.map(run));
    outcomes.forEach((outcome, index) => {
      if (outcome.status === 'rejected') report.failed.push({ call: calls[index]!, error: outcome.reason });
    });
    return report;
  }

  #cached(
    method: string,
    category: CacheCategory,
    name: string,
    params: Record<string, unknown> | undefined,
    ruleTtlMs: number,
    key: string,
    options: ExecuteOptions | undefined,
  ): Promise<unknown> {
    const cache = this.cache!;
    const identity = options?.identity ?? this.#identity;
    const mode = options?.cache === 'refresh' ? 'refresh' : 'default';
    if (mode === 'default' && method !== 'tools/call') {
      const started = callChannel.hasSubscribers ? this.#clock.start() : -1;
      const hit = cache.get(key, identity, category);
      if (hit !== undefined) {
        if (started !== -1) this.#clock.hit(this, method, name, options?.tenant ?? this.#tenant, started);
        return Promise.resolve(hit);
      }
    }
    const policy = this.#policy!;
    const request: FetchRequest = {
      key,
      tag: cacheTag(this.#group, method, name),
      identity,
      category,
      mode,
      signal: options?.signal,
      onProgress: options?.onProgress,
      load: (signal, onProgress) => this.#send(method, params, { ...options, signal, onProgress }),
      decide: (result) => policy.decide(method, result, this.upstream.info?.era === 'modern', ruleTtlMs),
      beforeStore: (decision) => this.#subscribeBeforeStore(method, name, decision),
    };
    if (!callsObserved()) return cache.fetch(request);
    return observeCall(this, method, name, options?.tenant ?? this.#tenant, request, () => cache.fetch(request));
  }

  /** An operation the cache does not answer; observed when anyone listens (see `./events.ts`). */
  #uncached(
    method: string,
    params: Record<string, unknown> | undefined,
    options: ExecuteOptions | undefined,
  ): Promise<unknown> {
    if (!callsObserved()) return this.#send(method, params, options);
    const tenant = options?.tenant ?? this.#tenant;
    return observeCall(this, method, nameOf(method, params), tenant, undefined, () =>
      this.#send(method, params, options),
    );
  }

  /** The upstream call itself: retries where the request surely never ran, then the connection. */
  #send(
    method: string,
    params: Record<string, unknown> | undefined,
    options: ExecuteOptions | undefined,
  ): Promise<unknown> {
    const callOptions: CallOptions | undefined =
      options === undefined
        ? undefined
        : {
            signal: options.signal,
            timeoutMs: options.timeout,
            onProgress: options.onProgress,
            meta: options.meta,
            headers: options.headers,
            onServerRequest: options.onServerRequest,
            onLog: options.onLog,
          };
    if (this.config.maxRetries === 0) return upstreamAttempt(this.upstream, method, params, callOptions);
    return withRetry(() => upstreamAttempt(this.upstream, method, params, callOptions), {
      maxRetries: this.config.maxRetries,
      baseDelayMs: this.config.retryDelayMs,
      signal: options?.signal,
    });
  }

  /**
   * The seed's performance summary of this factory's operations: `total_operations`, average and
   * P50/P95/P99 latency, `cache_hit_rate` (counted, not guessed), `operations_per_second` and
   * `error_rate`, since recording began and over the last minute (`window`). Recording begins
   * with the factory when it is created with `{ stats: true }`, else at the first call of this.
   */
  stats(): ProxyStats {
    return factoryStats(this);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    unwatchStats(this);
    this.#stopListening?.();
    await this.upstream.close();
    if (this.#ownsCache) await this.cache?.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Before the first list or a resource is stored, ask the upstream to notify changes to it, so
   * that `list_changed` and `resources/updated` can invalidate it. Waits (bounded by `timeout`) the
   * first time only; without a subscription the TTL still bounds staleness.
   */
  #subscribeBeforeStore(method: string, name: string, _decision: StoreDecision): Promise<void> | undefined {
    if (method.endsWith('/list')) {
      this.#listsSubscribed ??= this.upstream.subscribe({
        toolsListChanged: true,
        promptsListChanged: true,
        resourcesListChanged: true,
      });
      return withTimeout(this.#listsSubscribed, this.config.timeoutMs);
    }
    if (method === 'resources/read' && this.upstream.info?.capabilities?.resources?.subscribe === true) {
      if (this.#subscribedUris.has(name) || this.#subscribedUris.size >= MAX_SUBSCRIBED_URIS) return undefined;
      this.#subscribedUris.add(name);
      return withTimeout(this.upstream.subscribe({ resourceSubscriptions: [name] }), this.config.timeoutMs);
    }
    return undefined;
  }

  #onNotification(notification: JSONRPCNotification): void {
    const cache = this.cache;
    if (cache === undefined) return;
    const group = this.#group;
    switch (notification.method) {
      case 'notifications/tools/list_changed':
        this.#policy?.forgetTools();
        cache.invalidateFromNotification({ group, method: 'tools/list' });
        break;
      case 'notifications/prompts/list_changed':
        cache.invalidateFromNotification({ group, method: 'prompts/list' });
        break;
      case 'notifications/resources/list_changed':
        cache.invalidateFromNotification({ group, method: 'resources/list' });
        cache.invalidateFromNotification({ group, method: 'resources/templates/list' });
        break;
      case 'notifications/resources/updated': {
        const uri = notification.params?.['uri'];
        if (typeof uri === 'string') cache.invalidateFromNotification({ group, method: 'resources/read', name: uri });
        break;
      }
    }
  }

  /** `trust_annotations` needs the tool list before judging a tool: fetch it once, then decide. */
  async #callToolOnceAnnotated(
    name: string,
    args: Record<string, unknown>,
    options: ExecuteOptions | undefined,
    params: Record<string, unknown> | undefined,
  ): Promise<CallToolResult> {
    await this.#loadAnnotations();
    if (this.#policy!.toolVerdict(name) === undefined) {
      // The list could not be fetched: without annotations nothing proves the tool is safe.
      return this.#uncached('tools/call', params ?? { name, arguments: args }, options) as Promise<CallToolResult>;
    }
    return this.callTool(name, args, options, undefined, params);
  }

  #loadAnnotations(): Promise<void> {
    this.#annotations ??= this.listTools()
      .then((tools) => this.#policy?.learnTools(tools))
      .catch(() => undefined)
      .finally(() => {
        this.#annotations = undefined;
      });
    return this.#annotations;
  }

  /** `cache.tools: "*"` is the seed's behaviour and unsafe for tools with side effects: say which. */
  async #warnCachingEveryTool(): Promise<void> {
    const cache = this.cache;
    if (cache === undefined) return;
    let message: string;
    try {
      const tools = await this.listTools();
      const unsafe = tools.filter((tool) => tool.annotations?.readOnlyHint !== true).map((tool) => tool.name);
      message =
        unsafe.length === 0
          ? `upstream '${this.config.name}': cache.tools is "*"; every tool is annotated read-only`
          : `upstream '${this.config.name}': cache.tools is "*", so these tools that are not annotated read-only will be answered from cache: ${unsafe.join(', ')}`;
    } catch (error) {
      message = `upstream '${this.config.name}': cache.tools is "*", so every tool, including tools with side effects, will be answered from cache (the tool list could not be read: ${(error as Error).message})`;
    }
    if (this.#closed) return;
    if (cacheChannels.warning.hasSubscribers) cacheChannels.warning.publish({ message });
    cache.logger.warn(message);
  }

  #closedError(): RelayError {
    return new RelayError(RelayErrorCode.Closed, `proxy factory for '${this.config.name}' is closed`, {
      notSent: true,
    });
  }

  async #listAll<R extends { nextCursor?: string | undefined }, T>(
    method: string,
    key: string,
    options: ExecuteOptions | undefined,
  ): Promise<T[]> {
    const items: T[] = [];
    const seen = new Set<string>();
    let cursor: string | undefined;
    do {
      const page = (await this.request(method, cursor === undefined ? undefined : { cursor }, options)) as R;
      items.push(...((page as unknown as Record<string, T[]>)[key] ?? []));
      cursor = page.nextCursor;
      // A server that hands back a cursor it already gave would loop forever.
      if (cursor !== undefined) {
        if (seen.has(cursor)) break;
        seen.add(cursor);
      }
    } while (cursor !== undefined);
    return items;
  }
}

/**
 * The seed's `create_mcp_proxy_factory(config)`. Validates the config (a {@link RelayError} with
 * code `RELAY_INVALID_CONFIG` names every bad field) and prepares the connection pool.
 */
export function createProxyFactory(
  config: ProxyConfig | ResolvedUpstreamConfig,
  options?: ProxyFactoryOptions,
): Promise<ProxyFactory> {
  const resolved = isResolved(config) ? config : resolveProxyConfig(config);
  const upstream = createUpstream({
    name: resolved.name,
    transport: resolved.transport,
    connectionPoolSize: resolved.connectionPoolSize,
    processes: resolved.processes,
    timeoutMs: resolved.timeoutMs,
    maxResponseBytes: resolved.maxResponseBytes,
    protocol: resolved.protocol,
  });
  return Promise.resolve(new ProxyFactory(resolved, upstream, options));
}

function isResolved(config: ProxyConfig | ResolvedUpstreamConfig): config is ResolvedUpstreamConfig {
  return 'transport' in config && typeof config.timeoutMs === 'number';
}

/** Most resource URIs one factory asks the upstream to notify; beyond it, TTLs alone bound staleness. */
const MAX_SUBSCRIBED_URIS = 1000;

function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    promise.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      (error: Error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

function anySignal(a: AbortSignal | undefined, b: AbortSignal): AbortSignal {
  return a ? AbortSignal.any([a, b]) : b;
}
