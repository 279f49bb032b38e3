/**
 * The seed's `MCPProxyBenchmark`, side by side: tool execution with concurrent users, cache miss
 * against hit, and the load-balancing distribution over a duration — through the relay and, with
 * `compare: 'direct'`, the same calls through the bare MCP SDK client straight to the upstream.
 *
 * Every call checks its answer: a failed call or a tool error is counted as a failure, never as
 * throughput. Load comes from the closed loop of `./timing.ts` (the repository's benchmarks use
 * the same one).
 */
import { availableParallelism } from 'node:os';

import { Client, StreamableHTTPClientTransport, type CallToolResult } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';

import { childProcessEnv, resolveProxyConfig, type ResolvedUpstreamConfig } from '../config/index.js';
import { RelayError, RelayErrorCode } from '../errors/index.js';
import { createProxyFactory, ProxyManager, type ProxyFactory } from '../proxy/index.js';
import { summarize, type LatencySummary } from './stats.js';
import { closedLoop } from './timing.js';

export type SuiteName = 'tool_execution' | 'caching' | 'load_balancing';
export type ContenderName = 'relay' | 'direct';

export interface BenchmarkOptions {
  /**
   * What to measure: the upstreams of a configuration (the first, or `upstream`, for tool execution
   * and caching; all of them for load balancing), or one Streamable HTTP endpoint.
   */
  target:
    | { upstreams: readonly ResolvedUpstreamConfig[]; upstream?: string | undefined; label?: string | undefined }
    | { url: string; headers?: Readonly<Record<string, string>> | undefined };
  /** The tool to call. Default `echo`. */
  tool?: string | undefined;
  /**
   * Its arguments. Every string may hold `{i}`, replaced by the test item's index (tool execution)
   * or by a fresh value (cache misses). Default `{ text: 'sample_{i}' }`, the seed's test data.
   */
  args?: Readonly<Record<string, unknown>> | undefined;
  /** Distinct test items the tool-execution load cycles through. Default 10 (the seed's). */
  items?: number | undefined;
  /** Concurrent users. Default 5 (the seed's `run_full_benchmark_suite`). */
  concurrency?: number | undefined;
  /** Measured window of tool execution and of load balancing, in ms. Default 5000. */
  durationMs?: number | undefined;
  /** Cache hits timed. Default 50 (the seed's). */
  hitIterations?: number | undefined;
  /** Cache misses timed. Default 10. */
  misses?: number | undefined;
  /** Also run every suite straight against the upstream with the bare MCP SDK client. */
  compare?: 'direct' | undefined;
  /** Which suites. Default all three (load balancing needs two upstreams or more). */
  suites?: readonly SuiteName[] | undefined;
  /** Balancing strategy for the load-balancing suite. Default `fastest`. */
  strategy?: 'fastest' | 'round_robin' | 'least_outstanding' | 'weighted' | 'failover' | undefined;
  /** Progress of each phase (0-1), e.g. for a progress bar. */
  onProgress?: ((phase: string, fraction: number) => void) | undefined;
}

/** The seed's `benchmark_tool_execution` fields, plus latency and the relay's counted hit rate. */
export interface ToolExecutionResult {
  tool_name: string;
  concurrent_users: number;
  total_operations: number;
  successful_operations: number;
  success_rate: number;
  total_time_seconds: number;
  operations_per_second: number;
  latency_ms: LatencySummary;
  /** Relay only: hits ÷ cacheable operations, counted by the relay. */
  cache_hit_rate?: number | undefined;
  first_error?: string | undefined;
}

/** The seed's `benchmark_caching_performance` fields, plus percentiles of both sides. */
export interface CachingResult {
  tool_name: string;
  misses: number;
  hits: number;
  cache_miss_time_ms: number;
  cache_miss_p95_ms: number;
  avg_cache_hit_time_ms: number;
  cache_hit_p50_ms: number;
  cache_hit_p95_ms: number;
  cache_speedup: number;
  /** Relay only: hits the relay counted among the timed hit calls (should equal `hits`). */
  counted_hits?: number | undefined;
}

/** The seed's `benchmark_load_balancing` fields, plus each upstream's latency estimate. */
export interface LoadBalancingResult {
  strategy: string;
  duration_seconds: number;
  total_operations: number;
  operations_per_second: number;
  server_usage: Record<string, number>;
  load_distribution: Record<string, number>;
  latency_estimate_ms: Record<string, number>;
}

export interface BenchmarkReport {
  /** ISO 8601. */
  date: string;
  target: string;
  tool: string;
  options: {
    concurrency: number;
    duration_ms: number;
    items: number;
    hit_iterations: number;
    misses: number;
    compare: 'direct' | undefined;
  };
  environment: { node: string; platform: string; cpus: number };
  tool_execution?: Partial<Record<ContenderName, ToolExecutionResult>>;
  caching?: Partial<Record<ContenderName, CachingResult>>;
  load_balancing?: { relay?: LoadBalancingResult; skipped?: string };
}

/** A way to call the tool: through the relay or directly. */
interface Contender {
  name: ContenderName;
  call(args: Record<string, unknown>, refresh?: boolean): Promise<CallToolResult>;
  close(): Promise<void>;
  factory?: ProxyFactory;
}

const DEFAULT_ARGS = { text: 'sample_{i}' };

/** Runs the suites and returns the report (render it with `./report.ts`). */
export async function runBenchmarkSuite(options: BenchmarkOptions): Promise<BenchmarkReport> {
  const tool = options.tool ?? 'echo';
  const template = options.args ?? DEFAULT_ARGS;
  const items = positive('items', options.items ?? 10);
  const concurrency = positive('concurrency', options.concurrency ?? 5);
  const durationMs = positive('durationMs', options.durationMs ?? 5000);
  const hitIterations = positive('hitIterations', options.hitIterations ?? 50);
  const misses = positive('misses', options.misses ?? 10);
  const suites = new Set(options.suites ?? ['tool_execution', 'caching', 'load_balancing']);
  const progress = options.onProgress ?? (() => undefined);
  const { upstream, all, label } = targetUpstreams(options.target, tool, concurrency);
  const contenders: ContenderName[] = options.compare === 'direct' ? ['relay', 'direct'] : ['relay'];
  const runId = Date.now().toString(36);

  const report: BenchmarkReport = {
    date: new Date().toISOString(),
    target: label,
    tool,
    options: {
      concurrency,
      duration_ms: durationMs,
      items,
      hit_iterations: hitIterations,
      misses,
      compare: options.compare,
    },
    environment: {
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
      cpus: availableParallelism(),
    },
  };

  if (suites.has('tool_execution')) {
    report.tool_execution = {};
    for (const name of contenders) {
      const contender = await connect(name, upstream, options.target, tool);
      try {
        const phase = `tool execution · ${name}`;
        // The seed warms up with one call first.
        await checked(contender.call(fill(template, '0')));
        const result = await closedLoop(
          async (seq) => {
            await checked(contender.call(fill(template, String(seq % items))));
          },
          { concurrency, durationMs, onProgress: (f) => progress(phase, f) },
        );
        const total = result.ops + result.errors;
        report.tool_execution[name] = {
          tool_name: tool,
          concurrent_users: concurrency,
          total_operations: total,
          successful_operations: result.ops,
          success_rate: total === 0 ? 0 : result.ops / total,
          total_time_seconds: result.elapsedMs / 1000,
          operations_per_second: result.opsPerSec,
          latency_ms: result.latency,
          ...(contender.factory === undefined ? {} : { cache_hit_rate: contender.factory.stats().cache_hit_rate }),
          ...(result.firstError === undefined ? {} : { first_error: result.firstError }),
        };
      } finally {
        await contender.close();
      }
    }
  }

  if (suites.has('caching')) {
    report.caching = {};
    for (const name of contenders) {
      const contender = await connect(name, upstream, options.target, tool);
      const phase = `caching · ${name}`;
      try {
        const distinct = hasPlaceholder(template);
        // One untimed call first, so that neither side's first miss pays for connecting and warming up.
        await checked(contender.call(fill(template, `warm-${runId}`), !distinct));
        const missTimes: number[] = [];
        for (let k = 0; k < misses; k++) {
          const args = fill(template, `miss-${runId}-${k}`);
          const started = performance.now();
          await checked(contender.call(args, !distinct));
          missTimes.push(performance.now() - started);
          progress(phase, (k + 1) / (misses + hitIterations));
        }
        const hitArgs = fill(template, `hit-${runId}`);
        await checked(contender.call(hitArgs));
        const before = contender.factory?.stats().cache_hits ?? 0;
        const hitTimes: number[] = [];
        for (let k = 0; k < hitIterations; k++) {
          const started = performance.now();
          await checked(contender.call(hitArgs));
          hitTimes.push(performance.now() - started);
          if (k % 10 === 9) progress(phase, (misses + k + 1) / (misses + hitIterations));
        }
        progress(phase, 1);
        const miss = summarize(missTimes);
        const hit = summarize(hitTimes);
        report.caching[name] = {
          tool_name: tool,
          misses,
          hits: hitIterations,
          cache_miss_time_ms: miss.mean,
          cache_miss_p95_ms: miss.p95,
          avg_cache_hit_time_ms: hit.mean,
          cache_hit_p50_ms: hit.p50,
          cache_hit_p95_ms: hit.p95,
          cache_speedup: hit.mean > 0 ? miss.mean / hit.mean : Number.POSITIVE_INFINITY,
          ...(contender.factory === undefined ? {} : { counted_hits: contender.factory.stats().cache_hits - before }),
        };
      } finally {
        await contender.close();
      }
    }
  }

  if (suites.has('load_balancing')) {
    if (all.length < 2) {
      report.load_balancing = {
        skipped: `load balancing needs two upstreams or more (the target has ${all.length}): give a config with several`,
      };
    } else {
      report.load_balancing = {
        relay: await loadBalancing(all, tool, template, concurrency, durationMs, options, progress),
      };
    }
  }
  return report;
}

async function loadBalancing(
  upstreams: readonly ResolvedUpstreamConfig[],
  tool: string,
  template: Readonly<Record<string, unknown>>,
  concurrency: number,
  durationMs: number,
  options: BenchmarkOptions,
  progress: (phase: string, fraction: number) => void,
): Promise<LoadBalancingResult> {
  const strategy = options.strategy ?? 'fastest';
  // Caching off: a hit would never reach an upstream, and the distribution is of upstream calls.
  const manager = new ProxyManager(
    upstreams.map((u) => ({ ...u, enableCaching: false })),
    { strategy },
  );
  try {
    const factory = manager.getFactory();
    const proxy = factory.createToolProxy(tool);
    // Every upstream connected and warm, and the balancer's estimates settled, before measuring:
    // a process that is still starting would otherwise look slow for the whole of a short run.
    await manager.checkHealth();
    await closedLoop(
      async (seq) => {
        await checked(proxy.execute(fill(template, `warm-${seq}`)));
      },
      { concurrency, durationMs: Math.min(1000, Math.max(200, durationMs / 2)) },
    );
    const before = new Map(manager.health().map((h) => [h.name, h.successes]));
    const result = await closedLoop(
      async (seq) => {
        await checked(proxy.execute(fill(template, String(seq))));
      },
      { concurrency, durationMs, onProgress: (f) => progress('load balancing · relay', f) },
    );
    const health = manager.health();
    const usage: Record<string, number> = {};
    const latency: Record<string, number> = {};
    let total = 0;
    for (const h of health) {
      const n = h.successes - (before.get(h.name) ?? 0);
      usage[h.name] = n;
      latency[h.name] = h.latencyMs;
      total += n;
    }
    const distribution: Record<string, number> = {};
    for (const [name, n] of Object.entries(usage)) distribution[name] = total === 0 ? 0 : n / total;
    return {
      strategy,
      duration_seconds: result.elapsedMs / 1000,
      total_operations: result.ops,
      operations_per_second: result.opsPerSec,
      server_usage: usage,
      load_distribution: distribution,
      latency_estimate_ms: latency,
    };
  } finally {
    await manager.close();
  }
}

function targetUpstreams(
  target: BenchmarkOptions['target'],
  tool: string,
  concurrency: number,
): { upstream: ResolvedUpstreamConfig; all: readonly ResolvedUpstreamConfig[]; label: string } {
  if ('url' in target) {
    const upstream = resolveProxyConfig({
      serverUrl: target.url,
      headers: { ...target.headers },
      connectionPoolSize: Math.max(10, concurrency),
      cache: { tools: [tool] },
    });
    return { upstream: upstream, all: [upstream], label: target.url };
  }
  if (target.upstreams.length === 0) {
    throw new RelayError(RelayErrorCode.InvalidConfig, 'mcp-relay bench: the configuration has no upstream');
  }
  const chosen =
    target.upstream === undefined ? target.upstreams[0]! : target.upstreams.find((u) => u.name === target.upstream);
  if (chosen === undefined) {
    throw new RelayError(
      RelayErrorCode.InvalidConfig,
      `mcp-relay bench: no upstream named '${target.upstream}' (the configuration has ${target.upstreams.map((u) => u.name).join(', ')})`,
    );
  }
  // The bench measures the cache on this tool: it is marked cacheable for the run.
  const rules =
    chosen.cache.tools === '*' ? '*' : [...chosen.cache.tools.filter((r) => r.name !== tool), { name: tool }];
  const upstream: ResolvedUpstreamConfig = {
    ...chosen,
    enableCaching: true,
    cacheSize: Math.max(chosen.cacheSize, 100),
    connectionPoolSize: Math.max(chosen.connectionPoolSize, concurrency),
    cache: { ...chosen.cache, tools: rules },
  };
  const label =
    target.label ??
    `${chosen.name} (${chosen.transport.kind === 'http' ? chosen.transport.url : chosen.transport.command})`;
  return { upstream, all: target.upstreams, label };
}

async function connect(
  name: ContenderName,
  upstream: ResolvedUpstreamConfig,
  target: BenchmarkOptions['target'],
  tool: string,
): Promise<Contender> {
  if (name === 'relay') {
    const factory = await createProxyFactory(upstream, { stats: true });
    const report = await factory.validateConnection();
    if (!report.healthy) {
      await factory.close();
      throw new RelayError(
        RelayErrorCode.UpstreamUnavailable,
        `mcp-relay bench: cannot reach upstream '${upstream.name}': ${report.error?.message}`,
      );
    }
    return {
      name,
      factory,
      call: (args, refresh) =>
        factory.createToolProxy(tool).execute(args, refresh === true ? { cache: 'refresh' } : undefined),
      close: () => factory.close(),
    };
  }
  const client = new Client(
    { name: 'mcp-relay-bench-direct', version: '0.1.0' },
    { versionNegotiation: { mode: 'auto' } },
  );
  const transport = upstream.transport;
  if (transport.kind === 'http') {
    const headers: Record<string, string> = { ...transport.headers };
    if (transport.authToken !== undefined) headers['authorization'] = `Bearer ${transport.authToken}`;
    if ('url' in target) Object.assign(headers, target.headers);
    await client.connect(new StreamableHTTPClientTransport(new URL(transport.url), { requestInit: { headers } }));
  } else {
    await client.connect(
      new StdioClientTransport({
        command: transport.command,
        args: [...transport.args],
        env: childProcessEnv(transport.env),
        ...(transport.cwd === undefined ? {} : { cwd: transport.cwd }),
        stderr: 'ignore',
      }),
    );
  }
  return {
    name,
    call: (args) => client.callTool({ name: tool, arguments: args }),
    close: () => client.close(),
  };
}

/** A call that must succeed: a tool error is a failure here. */
async function checked(call: Promise<CallToolResult>): Promise<void> {
  const result = await call;
  if (result.isError === true) {
    const text = result.content?.[0]?.type === 'text' ? result.content[0].text : JSON.stringify(result.content);
    throw new Error(`the tool returned an error: ${text}`);
  }
}

function hasPlaceholder(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('{i}');
  if (Array.isArray(value)) return value.some(hasPlaceholder);
  if (value !== null && typeof value === 'object') return Object.values(value).some(hasPlaceholder);
  return false;
}

/** The arguments with every `{i}` in a string replaced by `i`. */
export function fill(template: Readonly<Record<string, unknown>>, i: string): Record<string, unknown> {
  const walk = (value: unknown): unknown => {
    if (typeof value === 'string') return value.replaceAll('{i}', i);
    if (Array.isArray(value)) return value.map(walk);
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v)]));
    }
    return value;
  };
  return walk(template) as Record<string, unknown>;
}

function positive(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RelayError(
      RelayErrorCode.InvalidConfig,
      `mcp-relay bench: ${name} must be a positive integer, got ${value}`,
    );
  }
  return value;
}
