/**
 * What a benchmark needs around gateway replicas (started by test/helpers/replicas.ts): a checked
 * stateless `echo` client for any replica, the cache counters read from each replica's `/metrics`,
 * and the pid of a replica's stdio upstream (to SIGKILL it).
 */
import { readFileSync } from 'node:fs';

import { Pool } from 'undici';

import { processTree } from './cpu.js';

/**
 * The stdio upstream child of a gateway whose environment holds `BENCH_ROLE=<role>` (the config
 * sets it), or undefined while there is none (between a kill and the respawn).
 */
export function upstreamPid(gatewayPid: number, role: string): number | undefined {
  for (const pid of processTree(gatewayPid).slice(1)) {
    try {
      if (readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(`BENCH_ROLE=${role}`)) return pid;
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// A checked client

const MODERN_VERSION = '2026-07-28';
const MODERN_META = JSON.stringify({
  'io.modelcontextprotocol/protocolVersion': MODERN_VERSION,
  'io.modelcontextprotocol/clientInfo': { name: 'mcp-relay-bench', version: '1.0.0' },
  'io.modelcontextprotocol/clientCapabilities': {},
});
const HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': MODERN_VERSION,
  'mcp-method': 'tools/call',
  'mcp-name': 'echo',
};

/**
 * Stateless (2026-07-28) `tools/call` of `echo` on `/mcp/<upstream>` of any of the given gateways:
 * no session, so any replica can take any call. Every answer is checked (HTTP 200, the request's
 * id, the text sent back); anything else throws.
 */
export class EchoClient {
  readonly #pools: Pool[];
  #nextId = 1;

  /** `deadlineMs`: a call with no complete answer by then fails (undici's headers and body timeouts). */
  constructor(bases: readonly string[], connections: number, deadlineMs: number) {
    this.#pools = bases.map(
      (base) => new Pool(base, { connections, pipelining: 1, headersTimeout: deadlineMs, bodyTimeout: deadlineMs }),
    );
  }

  async echo(replica: number, upstream: string, text: string): Promise<void> {
    const pool = this.#pools[replica % this.#pools.length]!;
    const id = this.#nextId++;
    const body = `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"echo","arguments":{"text":${JSON.stringify(text)}},"_meta":${MODERN_META}}}`;
    const response = await pool.request({ path: `/mcp/${upstream}`, method: 'POST', headers: HEADERS, body });
    const answer = await response.body.text();
    if (response.statusCode !== 200) throw new Error(`HTTP ${response.statusCode}: ${answer.slice(0, 200)}`);
    const message = JSON.parse(answer) as {
      id?: unknown;
      result?: { content?: { text?: unknown }[] };
      error?: unknown;
    };
    if (message.id !== id) throw new Error(`answer has id ${String(message.id)}, expected ${id}`);
    if (message.result?.content?.[0]?.text !== text) {
      throw new Error(`wrong answer for '${text}': ${answer.slice(0, 200)}`);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.#pools.map((pool) => pool.close()));
  }
}

// ---------------------------------------------------------------------------------------------
// Cache counters

export interface CacheCounts {
  hits: number;
  misses: number;
}

/**
 * `tools/call` lookups of `upstream`'s cache on one gateway, hits (memory or Redis, stale ones
 * included) and misses, from `mcp_relay_cache_requests_total` at `/metrics`: counted by the
 * gateway, not inferred from latency.
 */
export async function cacheCounts(base: string, upstream: string): Promise<CacheCounts> {
  const pool = new Pool(base, { connections: 1, headersTimeout: 10_000, bodyTimeout: 10_000 });
  try {
    const response = await pool.request({ path: '/metrics', method: 'GET' });
    const text = await response.body.text();
    if (response.statusCode !== 200) throw new Error(`${base}/metrics: HTTP ${response.statusCode}`);
    const counts: CacheCounts = { hits: 0, misses: 0 };
    for (const line of text.split('\n')) {
      if (!line.startsWith('mcp_relay_cache_requests_total{')) continue;
      if (!line.includes(`upstream="${upstream}"`) || !line.includes('method="tools/call"')) continue;
      const value = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (line.includes('result="miss"')) counts.misses += value;
      else counts.hits += value;
    }
    return counts;
  } finally {
    await pool.close();
  }
}

export async function sumCacheCounts(bases: readonly string[], upstream: string): Promise<CacheCounts> {
  const all = await Promise.all(bases.map((base) => cacheCounts(base, upstream)));
  return all.reduce((sum, c) => ({ hits: sum.hits + c.hits, misses: sum.misses + c.misses }), { hits: 0, misses: 0 });
}
