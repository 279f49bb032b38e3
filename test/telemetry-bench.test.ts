/**
 * `mcp-relay bench`, run as a user runs it (a child process), against a config of two demo
 * upstreams, one slower, side by side with the bare SDK client: it prints the table and writes the
 * four report forms, with figures that make sense.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';

import type { BenchmarkReport } from '../src/bench/index.js';
import { startInProcessHttpFixture } from './fixtures/index.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

const fast = await startInProcessHttpFixture({ mode: 'modern' });
const slow = await startInProcessHttpFixture({ mode: 'modern', latencyMs: 20 });
const dir = await mkdtemp(join(tmpdir(), 'mcp-relay-bench-'));
after(async () => {
  await fast.stop();
  await slow.stop();
  await rm(dir, { recursive: true, force: true });
});

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', MAIN, ...args],
      { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
      },
    );
  });
}

test('mcp-relay bench --compare direct writes the table, JSON, Markdown and HTML with plausible figures', async () => {
  const config = join(dir, 'relay.yaml');
  await writeFile(
    config,
    `upstreams:\n  fast: { server_url: "${fast.url}", max_retries: 0 }\n  slow: { server_url: "${slow.url}", max_retries: 0 }\n`,
  );
  const out = join(dir, 'out');
  const result = await run([
    'bench',
    '--config',
    config,
    '--compare',
    'direct',
    '--duration',
    '1',
    '--concurrency',
    '4',
    '--hits',
    '100',
    '--out',
    out,
  ]);
  assert.equal(result.code, 0, result.stderr);

  const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as BenchmarkReport;
  const relay = report.tool_execution?.relay;
  const direct = report.tool_execution?.direct;
  assert.ok(relay && direct);
  for (const r of [relay, direct]) {
    assert.equal(r.success_rate, 1, r.first_error);
    assert.ok(r.operations_per_second > 10, `${r.operations_per_second} ops/s`);
    assert.ok(r.latency_ms.p50 > 0 && r.latency_ms.p50 <= r.latency_ms.p95 && r.latency_ms.p95 <= r.latency_ms.p99);
    assert.equal(r.concurrent_users, 4);
  }
  // The seed's load repeats 10 test items: through the relay, all but the first 10 calls are hits.
  assert.ok(relay.cache_hit_rate! > 0.9, `hit rate ${relay.cache_hit_rate}`);
  assert.ok(relay.operations_per_second > direct.operations_per_second);

  const cached = report.caching?.relay;
  assert.ok(cached && report.caching?.direct);
  assert.equal(cached.counted_hits, 100, 'every timed hit was a hit the relay counted');
  assert.ok(cached.avg_cache_hit_time_ms < cached.cache_miss_time_ms);
  assert.ok(cached.cache_speedup > 5, `speedup ${cached.cache_speedup}`);
  assert.ok(report.caching.direct.avg_cache_hit_time_ms > 0.05, 'direct "hits" are upstream calls');

  const lb = report.load_balancing?.relay;
  assert.ok(lb, report.load_balancing?.skipped);
  assert.deepEqual(Object.keys(lb.server_usage).sort(), ['fast', 'slow']);
  const shares = Object.values(lb.load_distribution);
  assert.ok(Math.abs(shares.reduce((a, b) => a + b, 0) - 1) < 1e-9);
  assert.ok(lb.load_distribution['fast']! > lb.load_distribution['slow']!, JSON.stringify(lb.load_distribution));

  const markdown = await readFile(join(out, 'report.md'), 'utf8');
  assert.match(markdown, /^# mcp-relay benchmark/);
  assert.match(markdown, /## Tool execution: 'echo', 4 concurrent users, 1 s/);
  assert.match(markdown, /\| relay ÷ direct \|/);
  assert.match(markdown, /## Load balancing: strategy fastest/);

  const html = await readFile(join(out, 'report.html'), 'utf8');
  assert.match(html, /^<!doctype html>/);
  assert.ok((html.match(/<svg /g) ?? []).length >= 4, 'charts');
  assert.doesNotMatch(html, /<script|<link|src="http|href="http/, 'self-contained: nothing fetched');

  const table = await readFile(join(out, 'report.txt'), 'utf8');
  assert.ok(result.stdout.startsWith(table.trimEnd()), 'the terminal table is the one written');
  assert.match(table, /^relay +[\d,]+ +\d+\/\d+/m);
  assert.match(result.stderr, /tool execution · relay: done/);
});

test('mcp-relay bench refuses bad flags, naming the flag and what it expects', async () => {
  const result = await run(['bench', '--url', fast.url, '--compare', 'proxy']);
  assert.notEqual(result.code, 0);
  assert.match(result.stderr, /--compare: the only comparison is 'direct'/);
  const suites = await run(['bench', '--url', fast.url, '--suites', 'caching,warp']);
  assert.match(suites.stderr, /--suites: unknown warp; expected some of tool_execution, caching, load_balancing/);
});
