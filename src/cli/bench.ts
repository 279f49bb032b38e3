/**
 * `mcp-relay bench`: the seed's benchmark suite against a config, a URL, or (with neither) two
 * bundled demo servers, optionally side by side with the bare SDK client (`--compare direct`).
 * Prints the table, writes JSON, Markdown, HTML (and the table) under `--out`.
 */
import { resolve } from 'node:path';

import type { Command } from 'commander';

import { progressBar, renderTable, runBenchmarkSuite, writeReports, type SuiteName } from '../bench/index.js';
import { loadConfigFile, resolveProxyConfig } from '../config/index.js';
import { demoUpstreamConfig } from '../demo/index.js';
import { RelayError, RelayErrorCode } from '../errors/index.js';

export interface BenchFlags {
  config?: string | undefined;
  url?: string | undefined;
  header?: string[] | undefined;
  upstream?: string | undefined;
  tool?: string | undefined;
  args?: string | undefined;
  items?: string | undefined;
  concurrency?: string | undefined;
  duration?: string | undefined;
  hits?: string | undefined;
  misses?: string | undefined;
  compare?: string | undefined;
  suites?: string | undefined;
  strategy?: string | undefined;
  out?: string | undefined;
  progress?: boolean | undefined;
}

const SUITES: readonly SuiteName[] = ['tool_execution', 'caching', 'load_balancing'];
const STRATEGIES = ['fastest', 'round_robin', 'least_outstanding', 'weighted', 'failover'] as const;

function invalid(message: string): RelayError {
  return new RelayError(RelayErrorCode.InvalidConfig, `mcp-relay bench: ${message}`);
}

function integer(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw invalid(`--${flag}: expected a positive integer, got '${value}'`);
  return n;
}

export async function bench(
  flags: BenchFlags,
  out: { write(text: string): unknown },
  err: { write(text: string): unknown; isTTY?: boolean | undefined },
): Promise<void> {
  if (flags.config !== undefined && flags.url !== undefined) throw invalid('give --config or --url, not both');
  if (flags.compare !== undefined && flags.compare !== 'direct') {
    throw invalid(`--compare: the only comparison is 'direct' (the bare MCP SDK client), got '${flags.compare}'`);
  }
  let args: Record<string, unknown> | undefined;
  if (flags.args !== undefined) {
    try {
      args = JSON.parse(flags.args) as Record<string, unknown>;
    } catch (error) {
      throw invalid(`--args: expected a JSON object, got '${flags.args}' (${(error as Error).message})`);
    }
    if (args === null || typeof args !== 'object' || Array.isArray(args)) {
      throw invalid(`--args: expected a JSON object, got '${flags.args}'`);
    }
  }
  const suites = flags.suites?.split(',').map((s) => s.trim().replaceAll('-', '_'));
  const unknown = suites?.filter((s) => !SUITES.includes(s as SuiteName));
  if (unknown !== undefined && unknown.length > 0) {
    throw invalid(`--suites: unknown ${unknown.join(', ')}; expected some of ${SUITES.join(', ')}`);
  }
  if (flags.strategy !== undefined && !(STRATEGIES as readonly string[]).includes(flags.strategy)) {
    throw invalid(`--strategy: expected one of ${STRATEGIES.join(', ')}, got '${flags.strategy}'`);
  }
  const headers: Record<string, string> = {};
  for (const header of flags.header ?? []) {
    const colon = header.indexOf(':');
    if (colon <= 0) throw invalid(`--header: expected 'Name: value', got '${header}'`);
    headers[header.slice(0, colon).trim()] = header.slice(colon + 1).trim();
  }

  let target: Parameters<typeof runBenchmarkSuite>[0]['target'];
  if (flags.url !== undefined) {
    target = { url: flags.url, headers };
  } else if (flags.config !== undefined) {
    const config = await loadConfigFile(flags.config);
    target = { upstreams: config.upstreams, upstream: flags.upstream };
  } else {
    // Two bundled demo servers, one faster than the other, so the balancer has a choice.
    target = {
      upstreams: [
        resolveProxyConfig(demoUpstreamConfig({ name: 'demo-fast', latencyMs: 1 })),
        resolveProxyConfig(demoUpstreamConfig({ name: 'demo-slow', latencyMs: 10 })),
      ],
      upstream: flags.upstream,
      label: 'the bundled demo server (demo-fast: +1 ms, demo-slow: +10 ms, over stdio)',
    };
  }

  const durationS = flags.duration === undefined ? undefined : Number(flags.duration);
  if (durationS !== undefined && !(durationS > 0 && durationS <= 3600)) {
    throw invalid(`--duration: expected seconds from 0 to 3600, got '${flags.duration}'`);
  }
  const report = await runBenchmarkSuite({
    target,
    tool: flags.tool,
    args,
    items: integer('items', flags.items),
    concurrency: integer('concurrency', flags.concurrency),
    durationMs: durationS === undefined ? undefined : Math.round(durationS * 1000),
    hitIterations: integer('hits', flags.hits),
    misses: integer('misses', flags.misses),
    compare: flags.compare === 'direct' ? 'direct' : undefined,
    suites: suites as SuiteName[] | undefined,
    strategy: flags.strategy as (typeof STRATEGIES)[number] | undefined,
    onProgress: flags.progress === false ? undefined : progressBar(err),
  });
  out.write(`${renderTable(report)}\n`);
  const dir = resolve(flags.out ?? 'mcp-relay-bench');
  const paths = await writeReports(report, dir);
  out.write(`\nwrote ${paths.json}, ${paths.markdown}, ${paths.html} and ${paths.text}\n`);
}

export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description(
      "run the seed's benchmark suite (tool execution, cache miss vs hit, load balancing) against a config, a URL or the bundled demo",
    )
    .option(
      '-c, --config <file>',
      'configuration file: its first upstream (or --upstream) and, for balancing, all of them',
    )
    .option('-u, --url <url>', 'a Streamable HTTP MCP endpoint to measure instead of a config')
    .option('-H, --header <header...>', "with --url: request headers, 'Name: value'")
    .option('--upstream <name>', 'with --config: the upstream for tool execution and caching (default: the first)')
    .option('-t, --tool <name>', 'the tool to call (default echo)')
    .option(
      '-a, --args <json>',
      'its arguments as JSON; {i} in a string becomes the test item (default {"text":"sample_{i}"})',
    )
    .option('--items <n>', 'distinct test items the load cycles through (default 10, as the seed)')
    .option('-n, --concurrency <n>', 'concurrent users (default 5, as the seed)')
    .option('-d, --duration <seconds>', 'measured window of tool execution and of load balancing (default 5)')
    .option('--hits <n>', 'cache hits timed (default 50, as the seed)')
    .option('--misses <n>', 'cache misses timed (default 10)')
    .option('--compare <what>', "'direct': the same suites with the bare MCP SDK client, straight to the upstream")
    .option('--suites <list>', 'comma-separated: tool_execution, caching, load_balancing (default all)')
    .option(
      '--strategy <name>',
      `balancing strategy for the load-balancing suite: ${STRATEGIES.join(', ')} (default fastest)`,
    )
    .option(
      '-o, --out <dir>',
      'where report.json, report.md, report.html and report.txt go (default ./mcp-relay-bench)',
    )
    .option('--no-progress', 'no progress bars')
    .action(async (flags: BenchFlags) => {
      await bench(flags, process.stdout, process.stderr);
    });
}
