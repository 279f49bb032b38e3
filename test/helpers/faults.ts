/**
 * Faults under load, as tests and benchmarks inject them: a process SIGKILLed by pid (a gateway's
 * stdio upstream found through /proc, an HTTP upstream, a replica), a TCP black hole that accepts
 * connections and never answers, the resources a process holds (file descriptors, child
 * processes, RSS, read from /proc), a raw JSON-RPC client whose every call ends by a deadline of
 * its own, and the ledger check that the non-idempotent `counter` tool never ran twice for a call.
 *
 * Linux only (/proc). Nothing here ends a process the caller did not name by pid.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import net, { type AddressInfo, type Socket } from 'node:net';

import { Pool, request } from 'undici';

// ---------------------------------------------------------------------------------------------
// Processes and their resources (/proc)

/** Command name, parent pid and state letter (R, S, Z, …) of a process; undefined once it is gone. */
function statOf(pid: number): { comm: string; ppid: number; state: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: the fields after it follow the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return {
      comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
      state: fields[0]!,
      ppid: Number(fields[1]),
    };
  } catch {
    return undefined;
  }
}

/** The direct children of `pid` (zombies included), from every /proc/<pid>/stat. */
export function childPids(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    if (statOf(Number(entry))?.ppid === pid) children.push(Number(entry));
  }
  return children.sort((a, b) => a - b);
}

/** Whether `pid` exists and is not a zombie. */
export function isRunning(pid: number): boolean {
  const stat = statOf(pid);
  return stat !== undefined && stat.state !== 'Z';
}

/** What a process holds: open file descriptors, live and zombie children, resident memory. */
export interface Resources {
  fds: number;
  /**
   * Children that are running (not zombies). A process run through tsx (as tests run the CLI)
   * also has tsx's esbuild service as a child whenever it compiled a file its cache lacked: that
   * one is tooling, not the process's own, and is left out.
   */
  children: number[];
  /** Children that exited and were never reaped. */
  zombies: number[];
  rssBytes: number;
}

export function resourcesOf(pid: number): Resources {
  const children: number[] = [];
  const zombies: number[] = [];
  for (const child of childPids(pid)) {
    const stat = statOf(child);
    if (stat === undefined || stat.comm === 'esbuild') continue;
    (stat.state === 'Z' ? zombies : children).push(child);
  }
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
  return { fds: readdirSync(`/proc/${pid}/fd`).length, children, zombies, rssBytes: rssKb * 1024 };
}

/**
 * Polls `pid`'s resources every 100 ms until `settled` accepts them or `timeoutMs` passes, and
 * returns the last reading either way: the caller asserts on it, with the numbers in the message.
 * Sockets close and children are reaped a little after the load stops; this waits on that, not on
 * a fixed sleep.
 */
export async function resourcesWhen(
  pid: number,
  settled: (resources: Resources) => boolean,
  timeoutMs: number,
): Promise<Resources> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const resources = resourcesOf(pid);
    if (settled(resources) || performance.now() > until) return resources;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * A baseline reading once the process is quiet: the fd count unchanged over three readings 150 ms
 * apart (a just-closed client socket is gone), at most `timeoutMs` of waiting.
 */
export async function quietResources(pid: number, timeoutMs = 5000): Promise<Resources> {
  const until = performance.now() + timeoutMs;
  let last = resourcesOf(pid);
  let same = 0;
  while (same < 2 && performance.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 150));
    const now = resourcesOf(pid);
    same = now.fds === last.fds && now.children.length === last.children.length ? same + 1 : 0;
    last = now;
  }
  return last;
}

/** How the readings compare with a baseline, for assertion messages. */
export function describeResources(now: Resources, baseline: Resources): string {
  const mb = (bytes: number) => (bytes / 1048576).toFixed(1);
  return (
    `fds ${now.fds} (baseline ${baseline.fds}), children [${now.children.join(', ')}] ` +
    `(baseline [${baseline.children.join(', ')}]), zombies [${now.zombies.join(', ')}], ` +
    `RSS ${mb(now.rssBytes)} MB (baseline ${mb(baseline.rssBytes)} MB)`
  );
}

/** SIGKILL by pid: the fault itself, no grace, no cleanup in the victim. */
export function sigkill(pid: number): void {
  process.kill(pid, 'SIGKILL');
}

/** Resolves once `pid` no longer runs (exited, or a zombie); rejects after `timeoutMs`. */
export async function waitForExit(pid: number, timeoutMs = 10_000): Promise<void> {
  const until = performance.now() + timeoutMs;
  while (isRunning(pid)) {
    if (performance.now() > until) throw new Error(`process ${pid} still runs after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Resolves once `pid` has `count` running children; rejects after `timeoutMs` naming what it saw. */
export async function waitForChildren(pid: number, count: number, timeoutMs = 20_000): Promise<number[]> {
  const seen = await resourcesWhen(pid, (r) => r.children.length === count, timeoutMs);
  if (seen.children.length !== count) {
    throw new Error(`process ${pid} has children [${seen.children.join(', ')}], expected ${count}`);
  }
  return seen.children;
}

// ---------------------------------------------------------------------------------------------
// A black hole: accepts connections and never answers

export interface BlackHole {
  /** `http://127.0.0.1:<port><path of the target>`: where the proxy under test is pointed. */
  readonly url: string;
  /** Connections currently open from clients. */
  readonly open: number;
  /** From now on nothing comes back: open connections go silent, new ones are accepted and ignored. */
  swallow(): void;
  /** Forwards again: the silenced connections are destroyed (as a reset network would), new ones pass. */
  restore(): void;
  stop(): Promise<void>;
}

/**
 * A TCP relay in front of `target` (an HTTP URL) that can turn into a black hole: the upstream
 * "accepts connections and never answers" fault, at the socket level, with nothing mocked above it.
 */
export async function startBlackHole(target: string): Promise<BlackHole> {
  const to = new URL(target);
  let swallowing = false;
  const pairs = new Map<Socket, Socket | undefined>();
  const silence = (client: Socket): void => {
    const upstream = pairs.get(client);
    if (upstream !== undefined) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      upstream.destroy();
      pairs.set(client, undefined);
    }
    client.on('data', () => undefined); // read and drop, keep it open
  };
  const server = net.createServer((client) => {
    pairs.set(client, undefined);
    client.on('error', () => undefined);
    client.once('close', () => {
      pairs.get(client)?.destroy();
      pairs.delete(client);
    });
    if (swallowing) {
      silence(client);
      return;
    }
    const upstream = net.connect(Number(to.port), to.hostname);
    upstream.on('error', () => client.destroy());
    upstream.once('close', () => {
      if (pairs.get(client) === upstream) client.destroy();
    });
    pairs.set(client, upstream);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${to.pathname}`,
    get open() {
      return pairs.size;
    },
    swallow() {
      swallowing = true;
      for (const client of pairs.keys()) silence(client);
    },
    restore() {
      swallowing = false;
      for (const [client, upstream] of pairs) if (upstream === undefined) client.destroy();
    },
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const [client, upstream] of pairs) {
        upstream?.destroy();
        client.destroy();
      }
      await closed;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// A raw JSON-RPC client with a deadline on every call

/** How one call ended. `hung` is the failure these tests exist to catch: no end by the deadline. */
export type CallOutcome =
  | { kind: 'result'; result: Record<string, unknown>; progress: number; ms: number }
  | {
      kind: 'error';
      error: { code: number; message: string; data?: unknown };
      relayCode: string | undefined;
      ms: number;
    }
  | { kind: 'transport'; message: string; ms: number }
  | { kind: 'hung'; ms: number };

const MODERN_VERSION = '2026-07-28';
const MODERN_META = {
  'io.modelcontextprotocol/protocolVersion': MODERN_VERSION,
  'io.modelcontextprotocol/clientInfo': { name: 'mcp-relay-faults', version: '1.0.0' },
  'io.modelcontextprotocol/clientCapabilities': {},
};

export interface CallToolOptions {
  /** The call must end (answer, JSON-RPC error or closed transport) within this, in ms. */
  deadlineMs: number;
  /** Ask for progress (an SSE answer): `progress` counts the notifications received. */
  progress?: boolean;
  /** Called once the answer's headers arrived (the call is in flight on the server). */
  onStarted?: () => void;
}

/**
 * Stateless 2026-07-28 `tools/call` requests to one MCP endpoint (`http://host:port/mcp` or
 * `/mcp/<upstream>`) over an undici Pool. Every answer is read whole (JSON or SSE) and matched to
 * its request id; anything that is not an answer is a `transport` outcome, never an exception.
 */
export class RpcClient {
  readonly #pool: Pool;
  readonly #path: string;
  #nextId = 1;

  constructor(endpoint: string, connections = 16) {
    const url = new URL(endpoint);
    this.#pool = new Pool(url.origin, { connections, pipelining: 1, headersTimeout: 0, bodyTimeout: 0 });
    this.#path = url.pathname;
  }

  async callTool(name: string, args: Record<string, unknown>, options: CallToolOptions): Promise<CallOutcome> {
    const id = this.#nextId++;
    const started = performance.now();
    const ms = () => performance.now() - started;
    const controller = new AbortController();
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      controller.abort();
    }, options.deadlineMs);
    const meta: Record<string, unknown> = { ...MODERN_META };
    if (options.progress === true) meta['progressToken'] = `p${id}`;
    try {
      const response = await this.#pool.request({
        path: this.#path,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-protocol-version': MODERN_VERSION,
          'mcp-method': 'tools/call',
          'mcp-name': name,
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id,
          method: 'tools/call',
          params: { name, arguments: args, _meta: meta },
        }),
        signal: controller.signal,
      });
      options.onStarted?.();
      const text = await response.body.text();
      const messages = String(response.headers['content-type'] ?? '').startsWith('text/event-stream')
        ? text
            .split('\n')
            .filter((line) => line.startsWith('data:'))
            .map((line) => JSON.parse(line.slice(5)) as Record<string, unknown>)
        : [JSON.parse(text) as Record<string, unknown>];
      const answer = messages.find((m) => m['id'] === id || (m['id'] === null && m['error'] !== undefined));
      if (answer === undefined) {
        return {
          kind: 'transport',
          message: `HTTP ${response.statusCode} without an answer: ${text.slice(0, 200)}`,
          ms: ms(),
        };
      }
      const progress = messages.filter((m) => m['method'] === 'notifications/progress').length;
      if (answer['error'] !== undefined) {
        const error = answer['error'] as { code: number; message: string; data?: unknown };
        const data = error.data as { relayCode?: unknown } | undefined;
        return {
          kind: 'error',
          error,
          relayCode: typeof data?.relayCode === 'string' ? data.relayCode : undefined,
          ms: ms(),
        };
      }
      return { kind: 'result', result: answer['result'] as Record<string, unknown>, progress, ms: ms() };
    } catch (error) {
      if (hung) return { kind: 'hung', ms: ms() };
      return { kind: 'transport', message: error instanceof Error ? error.message : String(error), ms: ms() };
    } finally {
      clearTimeout(timer);
    }
  }

  close(): Promise<void> {
    return this.#pool.destroy();
  }
}

/**
 * Calls `tool` through `endpoint` until it answers with a result (at most `timeoutMs`), so a test
 * starts its load once the upstream is up: a stdio child run through tsx can take longer than an
 * upstream's timeout to start on a loaded machine, and that start-up is not the fault under test.
 */
export async function untilServing(
  endpoint: string,
  tool: string,
  args: Record<string, unknown>,
  timeoutMs = 60_000,
): Promise<void> {
  const client = new RpcClient(endpoint, 1);
  const until = performance.now() + timeoutMs;
  try {
    for (;;) {
      const outcome = await client.callTool(tool, args, { deadlineMs: timeoutMs });
      if (outcome.kind === 'result') return;
      if (performance.now() > until)
        throw new Error(`${endpoint} did not serve ${tool} within ${timeoutMs} ms: ${JSON.stringify(outcome)}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } finally {
    await client.close();
  }
}

/** The text of a tool result's first content block. */
export function resultText(outcome: CallOutcome): string | undefined {
  if (outcome.kind !== 'result') return undefined;
  const content = outcome.result['content'] as { text?: string }[] | undefined;
  return content?.[0]?.text;
}

export interface LoadCall {
  tool: string;
  args: Record<string, unknown>;
}

export interface LoadRecord extends LoadCall {
  index: number;
  outcome: CallOutcome;
}

/**
 * Calls from `workers` concurrent workers, call i made by `call(i)`, until `total` calls were
 * started (a number, or a predicate asked before each new call: keep going while it says so);
 * `onSettled(n)` runs after the n-th call ended (inject the fault there). Resolves with every
 * record, by index.
 */
export async function runLoad(options: {
  total: number | ((index: number) => boolean);
  workers: number;
  call: (index: number) => LoadCall & { send: () => Promise<CallOutcome> };
  onSettled?: (settled: number) => void;
}): Promise<LoadRecord[]> {
  const { total } = options;
  const more = typeof total === 'number' ? (index: number) => index < total : total;
  const records: LoadRecord[] = [];
  let next = 0;
  let settled = 0;
  await Promise.all(
    Array.from({ length: options.workers }, async () => {
      while (more(next)) {
        const index = next++;
        const { tool, args, send } = options.call(index);
        records[index] = { index, tool, args, outcome: await send() };
        options.onSettled?.(++settled);
      }
    }),
  );
  return records;
}

/**
 * The steady mix the fault tests run: call i is `counter` (with `by` = a number no other call
 * uses, so the ledger says which calls ran), `add` or `echo`, in turn. Arguments are distinct per
 * call, so no answer can come from a cache and a crossed answer shows.
 */
export function mixedCall(index: number, by: () => number): LoadCall {
  switch (index % 3) {
    case 0:
      return { tool: 'counter', args: { by: by() } };
    case 1:
      return { tool: 'add', args: { a: index, b: 1 } };
    default:
      return { tool: 'echo', args: { text: `call ${index}` } };
  }
}

/** Results of `add` and `echo` that are not the answer to their own arguments (crossed answers). */
export function wrongAnswers(records: readonly LoadRecord[]): string[] {
  const wrong: string[] = [];
  for (const record of records) {
    const text = resultText(record.outcome);
    if (text === undefined) continue;
    const expected =
      record.tool === 'add'
        ? String((record.args['a'] as number) + (record.args['b'] as number))
        : record.tool === 'echo'
          ? (record.args['text'] as string)
          : undefined;
    if (expected !== undefined && text !== expected)
      wrong.push(`#${record.index} ${record.tool}: '${text}', expected '${expected}'`);
  }
  return wrong;
}

/** One line per kind of outcome: `result 380, error RELAY_UPSTREAM_UNAVAILABLE 7, …`. */
export function summarize(records: readonly LoadRecord[]): string {
  const counts = new Map<string, number>();
  for (const { outcome } of records) {
    const key = outcome.kind === 'error' ? `error ${outcome.relayCode ?? outcome.error.code}` : outcome.kind;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([key, n]) => `${key} ${n}`).join(', ');
}

/** The first record of each kind of failure, whole, for assertion messages. */
export function firstFailures(records: readonly LoadRecord[]): string {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const record of records) {
    const { outcome } = record;
    if (outcome.kind === 'result') continue;
    const key = outcome.kind === 'error' ? `error ${outcome.relayCode}` : outcome.kind;
    if (seen.has(key)) continue;
    seen.add(key);
    lines.push(`#${record.index} ${record.tool} ${JSON.stringify(outcome).slice(0, 400)}`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// The counter ledger (test/fixtures/ledger-demo.ts)

export interface Ledger {
  /** Pids in the order their processes started serving. */
  starts: number[];
  /** How many times the counter ran with each `by`. */
  runs: Map<number, number>;
  /** The counter's value in each process: the sum of its runs. */
  totals: Map<number, number>;
}

export function readLedger(path: string): Ledger {
  const ledger: Ledger = { starts: [], runs: new Map(), totals: new Map() };
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const [kind, pid, by] = line.split(' ');
    if (kind === 'start') ledger.starts.push(Number(pid));
    if (kind === 'run') {
      ledger.runs.set(Number(by), (ledger.runs.get(Number(by)) ?? 0) + 1);
      ledger.totals.set(Number(pid), (ledger.totals.get(Number(pid)) ?? 0) + Number(by));
    }
  }
  return ledger;
}

/**
 * Errors after which the call may or may not have run: the transport broke or the deadline passed
 * after the request left. Any other error code says the call never reached a tool.
 */
export const OUTCOME_UNKNOWN_CODES: ReadonlySet<string> = new Set([
  'RELAY_UPSTREAM_UNAVAILABLE',
  'RELAY_TIMEOUT',
  'RELAY_UPSTREAM_PROTOCOL',
]);

/**
 * Compares the `counter` calls of a load (each with its own `by`) with the ledger of runs, and
 * returns every violation: a call that ran twice, a run nobody asked for, a success that did not
 * run exactly once, or a call that ran although its error said it never reached the tool.
 */
export function counterViolations(records: readonly LoadRecord[], ledger: Ledger): string[] {
  const violations: string[] = [];
  const asked = new Set<number>();
  for (const record of records) {
    if (record.tool !== 'counter') continue;
    const by = record.args['by'] as number;
    asked.add(by);
    const runs = ledger.runs.get(by) ?? 0;
    const { outcome } = record;
    if (runs > 1) violations.push(`counter call by=${by} ran ${runs} times (${outcome.kind})`);
    if (outcome.kind === 'result' && runs !== 1)
      violations.push(`counter call by=${by} succeeded but ran ${runs} times`);
    if (outcome.kind === 'error' && runs > 0 && !OUTCOME_UNKNOWN_CODES.has(outcome.relayCode ?? '')) {
      violations.push(`counter call by=${by} ran, yet its error ${outcome.relayCode} says it never reached the tool`);
    }
  }
  for (const by of ledger.runs.keys())
    if (!asked.has(by)) violations.push(`a counter run with by=${by} nobody asked for`);
  return violations;
}

// ---------------------------------------------------------------------------------------------
// Assertions every fault test makes

/**
 * The resources check of every fault: within 15 s of the load's end, `pid` holds no more file
 * descriptors than at its baseline (plus 4: sockets a keep-alive pool may still hold), exactly
 * `children` running children and no zombie, and an RSS within 1.5× (or +64 MB) of its baseline.
 */
export async function assertBaseline(pid: number, baseline: Resources, children: number): Promise<Resources> {
  const fdSlack = 4;
  const rssLimit = Math.max(baseline.rssBytes * 1.5, baseline.rssBytes + 64 * 1048576);
  const settled = (r: Resources) =>
    r.fds <= baseline.fds + fdSlack && r.children.length === children && r.zombies.length === 0;
  const now = await resourcesWhen(pid, settled, 15_000);
  const report = describeResources(now, baseline);
  assert.ok(now.fds <= baseline.fds + fdSlack, `file descriptors back to the baseline: ${report}`);
  assert.equal(now.children.length, children, `child processes back to the baseline: ${report}`);
  assert.deepEqual(now.zombies, [], `no unreaped children: ${report}`);
  assert.ok(now.rssBytes <= rssLimit, `memory within bound: ${report}`);
  return now;
}

/** Every call ended before its deadline, with a result or an error carrying a relay code. */
export function assertAllEnded(records: readonly LoadRecord[], deadlineMs: number): void {
  const hung = records.filter((r) => r.outcome.kind === 'hung');
  assert.deepEqual(
    hung.map((r) => r.index),
    [],
    `calls that did not end within ${deadlineMs} ms; ${summarize(records)}`,
  );
  for (const { outcome, index, tool } of records) {
    if (outcome.kind === 'error') {
      assert.ok(
        outcome.relayCode !== undefined,
        `#${index} ${tool}: error without a relay code: ${outcome.error.message}`,
      );
      assert.ok(outcome.error.message.length > 0);
    }
  }
  assert.deepEqual(wrongAnswers(records), []);
}

// ---------------------------------------------------------------------------------------------
// The gateway's own view, from /metrics

/** The value of one Prometheus sample at `<base>/metrics`, matched by name and labels; undefined when absent. */
export async function metric(
  base: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number | undefined> {
  const response = await request(`${base}/metrics`);
  const text = await response.body.text();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`))) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

/** Polls `check` every 100 ms until it is true or `timeoutMs` passed; returns whether it became true. */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<boolean> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (performance.now() > until) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
