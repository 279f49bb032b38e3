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
import { resolveProxyConfig, type ProxyConfig, type ResolvedUpstreamConfig } from '../config/index.js';
import { RelayError, RelayErrorCode } from '../errors/index.js';
import { withRetry } from '../resilience/index.js';
import { createUpstream, type CallOptions, type ProgressUpdate, type Upstream } from '../upstream/index.js';

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

  constructor(factory: ProxyFactory, name: string) {
    this.#factory = factory;
    this.name = name;
  }

  /**
   * Calls the tool. A tool's own failure comes back as a result with `isError: true`; transport,
   * timeout and protocol failures reject with a {@link RelayError}.
   */
  execute(args: Record<string, unknown> = {}, options?: ExecuteOptions): Promise<CallToolResult> {
    return this.#factory.request(
      'tools/call',
      { name: this.name, arguments: args },
      options,
    ) as Promise<CallToolResult>;
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
  #closed = false;

  constructor(config: ResolvedUpstreamConfig, upstream: Upstream) {
    this.config = config;
    this.upstream = upstream;
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
    if (this.#closed) {
      return Promise.reject(
        new RelayError(RelayErrorCode.Closed, `proxy factory for '${this.config.name}' is closed`, { notSent: true }),
      );
    }
    const callOptions: CallOptions | undefined =
      options === undefined
        ? undefined
        : {
            signal: options.signal,
            timeoutMs: options.timeout,
            onProgress: options.onProgress,
            meta: options.meta,
          };
    if (this.config.maxRetries === 0) return this.upstream.request(method, params, callOptions);
    return withRetry(() => this.upstream.request(method, params, callOptions), {
      maxRetries: this.config.maxRetries,
      baseDelayMs: this.config.retryDelayMs,
      signal: options?.signal,
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.upstream.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
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
export function createProxyFactory(config: ProxyConfig | ResolvedUpstreamConfig): Promise<ProxyFactory> {
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
  return Promise.resolve(new ProxyFactory(resolved, upstream));
}

function isResolved(config: ProxyConfig | ResolvedUpstreamConfig): config is ResolvedUpstreamConfig {
  return 'transport' in config && typeof config.timeoutMs === 'number';
}

function anySignal(a: AbortSignal | undefined, b: AbortSignal): AbortSignal {
  return a ? AbortSignal.any([a, b]) : b;
}
