/**
 * An HTTP load generator for MCP endpoints, run in its own process so that its CPU never shares an
 * event loop with the server it measures (nor with the benchmark that drives it).
 *
 * The benchmark forks it (`HttpLoadGenerator.start()`) and drives it over the IPC channel:
 * - `open(target)`: one undici Pool per target and `slots` clients. A `legacy` slot is a 2025
 *   session (`initialize`, `notifications/initialized`, then its `Mcp-Session-Id` on every call); a
 *   `modern` slot sends stateless 2026-07-28 requests (`_meta` envelope, `Mcp-Method`/`Mcp-Name`
 *   headers); a `raw` slot posts bare JSON-RPC with no MCP headers (the ceiling, the bare
 *   upstream). Every slot makes one checked call before `open` resolves.
 * - `run(target, { concurrency, durationMs, warmupMs, meterPid })`: a closed loop of `concurrency`
 *   workers, worker i on slot i, each calling `tools/call` of `echo` back to back. Every answer is
 *   checked (HTTP 200, JSON or SSE, the request's own id, `content[0].text` equal to the text sent);
 *   anything else is a failed call, never throughput. Reports ops/s, latency percentiles, this
 *   process's CPU per call and, when `meterPid` is given, the CPU per call of that process alone
 *   (`own`) and of its whole tree (`/proc/<pid>/stat`), over the measured window only.
 *
 * - `mix({ targets, concurrency | rate, durationMs })`: calls spread over several open targets in
 *   turn (one call each, round and round), either closed-loop (`concurrency` workers back to back:
 *   what the server can do) or open-loop (`rate` calls started per second on schedule, whatever the
 *   answers take: load as independent clients make it). Counted per interval, for a soak.
 * - `close(target, { endSessions })`: ends the target's 2025 sessions with DELETE when asked, then
 *   closes its connections.
 *
 * Texts are distinct per call (`distinct`: no cache can answer) or cycle through `K` values
 * (`repeat`: a cache answers all but the first K).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { Pool } from 'undici';

import { processCpuMicros, treeCpuMicros } from './cpu.js';
import { Samples, summarize, type LatencySummary } from './stats.js';

export const HTTP_LOAD_PATH = fileURLToPath(import.meta.url);

/** How a slot speaks MCP: a 2025 session, stateless 2026-07-28, or bare JSON-RPC. */
export type LoadEra = 'legacy' | 'modern' | 'raw';

export interface LoadTarget {
  /** Unique per generator. */
  name: string;
  /** The MCP endpoint, e.g. `http://127.0.0.1:8080/mcp`. */
  url: string;
  era: LoadEra;
  /** Clients (sessions for `legacy`) to open: the highest concurrency that will be run. */
  slots: number;
  /** `distinct` texts, or cycle through this many (a cache then answers almost every call). */
  texts: 'distinct' | number;
}

export interface OpenResult {
  /** Time to open every slot (including each slot's first checked call), in ms. */
  ms: number;
}

export interface HttpRunOptions {
  concurrency: number;
  durationMs: number;
  /** Unmeasured load at the same concurrency first, in ms. */
  warmupMs: number;
  /** Root pid of the server's process tree whose CPU to meter over the window. */
  meterPid?: number | undefined;
}

export interface HttpLoadResult {
  concurrency: number;
  /** Correct calls in the window. */
  ops: number;
  /** Failed calls in the window (transport errors, non-200, wrong or missing answers). */
  errors: number;
  firstError: string | undefined;
  /** Failed calls during the warmup (not counted in `errors`). */
  warmupErrors: number;
  elapsedMs: number;
  opsPerSec: number;
  /** Latency of the correct calls, in ms. */
  latency: LatencySummary;
  /** CPU µs per correct call of the load generator itself. */
  loadCpuMicrosPerOp: number;
  /** CPU µs per correct call of the metered process alone (NaN without `meterPid`). */
  ownCpuMicrosPerOp: number;
  /** CPU µs per correct call of the metered process and all its descendants (NaN without `meterPid`). */
  treeCpuMicrosPerOp: number;
  /**
   * The measured window on the monotonic clock, in µs (`process.hrtime`): the clock of V8's CPU
   * profiles, so a profile of the server can be cut to this window.
   */
  windowMonotonicMicros: [start: number, end: number];
}

export interface MixRunOptions {
  /** Open targets the calls go to in turn, one call each. */
  targets: string[];
  /** Calls are started for this long, in ms; those in flight at the end are waited for. */
  durationMs: number;
  /** Closed loop: this many workers, each starting its next call when the last one answered. */
  concurrency?: number | undefined;
  /** Open loop: calls started per second, each at its scheduled time, whatever the answers take. */
  rate?: number | undefined;
  /**
   * Open loop: the most calls in flight at once. A call due while this many are in flight starts
   * late, when one ends: a server that cannot keep up shows as an achieved rate below `rate`,
   * not as unbounded memory here. Default 512.
   */
  maxInFlight?: number | undefined;
  /** Length of one interval of `series`, in ms. Default 1000. */
  intervalMs?: number | undefined;
}

export interface MixResult {
  /** Correct calls, all targets. */
  ops: number;
  errors: number;
  firstError: string | undefined;
  /** From the first call's start to the last call's end, in ms. */
  elapsedMs: number;
  /** Correct calls per second over `elapsedMs`. */
  opsPerSec: number;
  /** Open loop: calls the schedule held over the window (`rate` × `durationMs`); closed loop: NaN. */
  scheduled: number;
  /** Open loop: calls that started more than 100 ms after their scheduled time. */
  lateStarts: number;
  /**
   * Latency of the correct calls, in ms. Open loop: from each call's *scheduled* start, so time
   * spent waiting for a free slot counts (no coordinated omission).
   */
  latency: LatencySummary;
  /** Per target: correct and failed calls. */
  byTarget: Record<string, { ops: number; errors: number }>;
  /** Correct and failed calls ended in each interval of `intervalMs`, from the start. */
  series: { ops: number; errors: number }[];
}

// ---------------------------------------------------------------------------------------------
// The benchmark's side

type Command =
  | { cmd: 'open'; target: LoadTarget }
  | { cmd: 'run'; target: string; options: HttpRunOptions }
  | { cmd: 'mix'; options: MixRunOptions }
  | { cmd: 'close'; target: string; endSessions: boolean };
type Reply = { seq: number; ok: true; result: unknown } | { seq: number; ok: false; error: string };

/** The forked load generator, as the benchmark sees it. */
export class HttpLoadGenerator {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  readonly #exited: Promise<void>;
  #seq = 0;

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.on('message', (message: Reply) => {
      const pending = this.#pending.get(message.seq);
      if (!pending) return;
      this.#pending.delete(message.seq);
      if (message.ok) pending.resolve(message.result);
      else pending.reject(new Error(message.error));
    });
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        for (const pending of this.#pending.values()) {
          pending.reject(new Error(`load generator exited (code ${code}, signal ${signal})`));
        }
        this.#pending.clear();
        resolve();
      });
    });
  }

  static start(): HttpLoadGenerator {
    const child = fork(HTTP_LOAD_PATH, [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // Keeps NaN and undefined in the figures.
      serialization: 'advanced',
    });
    return new HttpLoadGenerator(child);
  }

  get pid(): number {
    return this.#child.pid!;
  }

  open(target: LoadTarget): Promise<OpenResult> {
    return this.#call({ cmd: 'open', target }) as Promise<OpenResult>;
  }

  run(target: string, options: HttpRunOptions): Promise<HttpLoadResult> {
    return this.#call({ cmd: 'run', target, options }) as Promise<HttpLoadResult>;
  }

  /** Calls over several targets in turn, closed- or open-loop; see {@link MixRunOptions}. */
  mix(options: MixRunOptions): Promise<MixResult> {
    return this.#call({ cmd: 'mix', options }) as Promise<MixResult>;
  }

  /**
   * Closes a target's connections. Its 2025 sessions are ended first (DELETE) with
   * `endSessions`; otherwise they are left to the server, which is usually stopped next.
   */
  closeTarget(target: string, options: { endSessions?: boolean } = {}): Promise<void> {
    return this.#call({ cmd: 'close', target, endSessions: options.endSessions === true }) as Promise<void>;
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGTERM');
    await this.#exited;
  }

  #call(command: Command): Promise<unknown> {
    const seq = ++this.#seq;
    return new Promise((resolve, reject) => {
      this.#pending.set(seq, { resolve, reject });
      this.#child.send({ seq, ...command });
    });
  }
}

// ---------------------------------------------------------------------------------------------
// The load generator's side

const LEGACY_VERSION = '2025-06-18';
const MODERN_VERSION = '2026-07-28';
const MODERN_META = JSON.stringify({
  'io.modelcontextprotocol/protocolVersion': MODERN_VERSION,
  'io.modelcontextprotocol/clientInfo': { name: 'mcp-relay-bench', version: '1.0.0' },
  'io.modelcontextprotocol/clientCapabilities': {},
});
/** Sessions opened at once: a proxy that spawns a process per session must not be flooded. */
const OPEN_PARALLELISM = 4;

interface Slot {
  readonly index: number;
  readonly headers: Record<string, string>;
  nextId: number;
}

interface Target {
  readonly spec: LoadTarget;
  readonly pool: Pool;
  readonly path: string;
  readonly slots: Slot[];
  /** Next text number: distinct across the target's workers and runs. */
  seq: number;
}

const targets = new Map<string, Target>();

function baseHeaders(era: LoadEra): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
  };
  if (era === 'modern') {
    headers['mcp-protocol-version'] = MODERN_VERSION;
    headers['mcp-method'] = 'tools/call';
    headers['mcp-name'] = 'echo';
  }
  return headers;
}

function callBody(era: LoadEra, id: number, text: string): string {
  const args = `{"text":${JSON.stringify(text)}}`;
  const meta = era === 'modern' ? `,"_meta":${MODERN_META}` : '';
  return `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"echo","arguments":${args}${meta}}}`;
}

/** The JSON-RPC message with this id in a JSON or SSE body; throws when there is none. */
function messageWithId(body: string, contentType: string | undefined, id: number): Record<string, unknown> {
  if (contentType?.startsWith('text/event-stream')) {
    for (const line of body.split('\n')) {
      if (!line.startsWith('data:')) continue;
      const message = JSON.parse(line.slice(5)) as Record<string, unknown>;
      if (message['id'] === id) return message;
    }
    throw new Error(`no answer with id ${id} in the event stream: ${body.slice(0, 200)}`);
  }
  const message = JSON.parse(body) as Record<string, unknown>;
  if (message['id'] !== id) throw new Error(`answer has id ${String(message['id'])}, expected ${id}`);
  return message;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

async function post(
  target: Target,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; contentType: string | undefined; sessionId: string | undefined; text: string }> {
  const response = await target.pool.request({ path: target.path, method: 'POST', headers, body });
  const text = await response.body.text();
  return {
    status: response.statusCode,
    contentType: headerValue(response.headers['content-type']),
    sessionId: headerValue(response.headers['mcp-session-id']),
    text,
  };
}

/** One checked `echo` call on a slot; throws on anything but the right answer. */
async function echo(target: Target, slot: Slot, text: string): Promise<void> {
  const id = slot.nextId++;
  const response = await post(target, slot.headers, callBody(target.spec.era, id, text));
  if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${response.text.slice(0, 200)}`);
  const message = messageWithId(response.text, response.contentType, id);
  const result = message['result'] as { content?: { text?: unknown }[]; isError?: unknown } | undefined;
  if (result === undefined) throw new Error(`error answer: ${JSON.stringify(message['error']).slice(0, 200)}`);
  if (result.isError === true || result.content?.[0]?.text !== text) {
    throw new Error(`wrong answer for '${text}': ${JSON.stringify(result).slice(0, 200)}`);
  }
}

async function openSlot(target: Target, index: number): Promise<Slot> {
  const era = target.spec.era;
  const headers = baseHeaders(era);
  if (era === 'legacy') {
    const initialize = JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: {
        protocolVersion: LEGACY_VERSION,
        capabilities: {},
        clientInfo: { name: 'mcp-relay-bench', version: '1.0.0' },
      },
    });
    const response = await post(target, headers, initialize);
    if (response.status !== 200) throw new Error(`initialize: HTTP ${response.status}: ${response.text.slice(0, 200)}`);
    messageWithId(response.text, response.contentType, 0);
    if (response.sessionId === undefined) throw new Error('initialize: no Mcp-Session-Id in the answer');
    headers['mcp-session-id'] = response.sessionId;
    headers['mcp-protocol-version'] = LEGACY_VERSION;
    const initialized = await post(target, headers, '{"jsonrpc":"2.0","method":"notifications/initialized"}');
    if (initialized.status !== 202 && initialized.status !== 200) {
      throw new Error(`notifications/initialized: HTTP ${initialized.status}`);
    }
  }
  const slot: Slot = { index, headers, nextId: 1 };
  await echo(target, slot, `open-${index}`);
  return slot;
}

async function open(spec: LoadTarget): Promise<OpenResult> {
  if (targets.has(spec.name)) throw new Error(`target ${spec.name} is already open`);
  const url = new URL(spec.url);
  const target: Target = {
    spec,
    pool: new Pool(url.origin, { connections: spec.slots, pipelining: 1 }),
    path: url.pathname,
    slots: [],
    seq: 0,
  };
  targets.set(spec.name, target);
  const started = performance.now();
  const slots: Slot[] = new Array<Slot>(spec.slots);
  let next = 0;
  const opener = async (): Promise<void> => {
    while (next < spec.slots) {
      const index = next++;
      slots[index] = await openSlot(target, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(OPEN_PARALLELISM, spec.slots) }, opener));
  target.slots.push(...slots);
  return { ms: performance.now() - started };
}

function textFor(target: Target, slot: Slot): string {
  const seq = target.seq++;
  const texts = target.spec.texts;
  return texts === 'distinct' ? `w${slot.index}-${seq}` : `cached-${seq % texts}`;
}

async function run(name: string, options: HttpRunOptions): Promise<HttpLoadResult> {
  const target = targets.get(name);
  if (!target) throw new Error(`no target ${name}`);
  const { concurrency } = options;
  if (concurrency > target.slots.length) {
    throw new Error(`${name}: concurrency ${concurrency} but only ${target.slots.length} slots open`);
  }
  const slots = target.slots.slice(0, concurrency);

  let warmupErrors = 0;
  if (options.warmupMs > 0) {
    const until = performance.now() + options.warmupMs;
    await Promise.all(
      slots.map(async (slot) => {
        while (performance.now() < until) await echo(target, slot, textFor(target, slot)).catch(() => warmupErrors++);
      }),
    );
  }

  const samples = new Samples();
  let errors = 0;
  let firstError: string | undefined;
  const pid = options.meterPid;
  const treeBefore = pid === undefined ? 0 : treeCpuMicros(pid);
  const ownBefore = pid === undefined ? 0 : processCpuMicros(pid);
  const selfBefore = process.cpuUsage();
  const monotonicStart = monotonicMicros();
  const started = performance.now();
  const deadline = started + options.durationMs;
  await Promise.all(
    slots.map(async (slot) => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        try {
          await echo(target, slot, textFor(target, slot));
          samples.push(performance.now() - t0);
        } catch (error) {
          errors++;
          firstError ??= error instanceof Error ? error.message : String(error);
        }
      }
    }),
  );
  const elapsedMs = performance.now() - started;
  const monotonicEnd = monotonicMicros();
  const self = process.cpuUsage(selfBefore);
  const ownAfter = pid === undefined ? Number.NaN : processCpuMicros(pid);
  const treeAfter = pid === undefined ? Number.NaN : treeCpuMicros(pid);
  const ops = samples.length;
  return {
    concurrency,
    ops,
    errors,
    firstError,
    warmupErrors,
    elapsedMs,
    opsPerSec: (ops * 1000) / elapsedMs,
    latency: summarize(samples.view()),
    loadCpuMicrosPerOp: (self.user + self.system) / ops,
    ownCpuMicrosPerOp: (ownAfter - ownBefore) / ops,
    treeCpuMicrosPerOp: (treeAfter - treeBefore) / ops,
    windowMonotonicMicros: [monotonicStart, monotonicEnd],
  };
}

function monotonicMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

async function close(name: string, endSessions: boolean): Promise<void> {
  const target = targets.get(name);
  if (!target) return;
  targets.delete(name);
  if (endSessions && target.spec.era === 'legacy') {
    for (const slot of target.slots) {
      const response = await target.pool.request({ path: target.path, method: 'DELETE', headers: slot.headers });
      await response.body.dump();
    }
  }
  await target.pool.close();
}

/** Calls over several targets in turn: closed loop with `concurrency`, open loop with `rate`. */
async function mix(options: MixRunOptions): Promise<MixResult> {
  const chosen = options.targets.map((name) => {
    const target = targets.get(name);
    if (!target) throw new Error(`no target ${name}`);
    return target;
  });
  if (chosen.length === 0) throw new Error('mix: no targets');
  const open = options.rate !== undefined;
  if (open === (options.concurrency !== undefined)) throw new Error('mix: give exactly one of concurrency and rate');
  const intervalMs = options.intervalMs ?? 1000;
  const samples = new Samples();
  const series: { ops: number; errors: number }[] = [];
  const byTarget: Record<string, { ops: number; errors: number }> = {};
  for (const target of chosen) byTarget[target.spec.name] = { ops: 0, errors: 0 };
  const picks = chosen.map(() => 0);
  let turn = 0;
  let errors = 0;
  let firstError: string | undefined;
  let lastEnd = 0;
  const started = performance.now();

  /** One checked call on the next target in turn; latency counted from `since`. */
  const call = async (since: number): Promise<void> => {
    const index = turn++ % chosen.length;
    const target = chosen[index]!;
    const slot = target.slots[picks[index]!++ % target.slots.length]!;
    const counts = byTarget[target.spec.name]!;
    let failed = false;
    try {
      await echo(target, slot, textFor(target, slot));
    } catch (error) {
      failed = true;
      errors++;
      counts.errors++;
      firstError ??= `${target.spec.name}: ${error instanceof Error ? error.message : String(error)}`;
    }
    const end = performance.now();
    lastEnd = Math.max(lastEnd, end);
    const bucket = Math.floor((end - started) / intervalMs);
    while (series.length <= bucket) series.push({ ops: 0, errors: 0 });
    if (failed) {
      series[bucket]!.errors++;
    } else {
      series[bucket]!.ops++;
      counts.ops++;
      samples.push(end - since);
    }
  };

  const deadline = started + options.durationMs;
  let scheduled = Number.NaN;
  let lateStarts = 0;
  if (!open) {
    await Promise.all(
      Array.from({ length: options.concurrency! }, async () => {
        while (performance.now() < deadline) await call(performance.now());
      }),
    );
  } else {
    const rate = options.rate!;
    if (!(rate > 0)) throw new Error(`mix: rate must be above 0, got ${rate}`);
    const maxInFlight = options.maxInFlight ?? 512;
    const gap = 1000 / rate;
    scheduled = Math.floor((options.durationMs * rate) / 1000);
    let issued = 0;
    let inFlight = 0;
    let drained: (() => void) | undefined;
    const launch = (due: number): void => {
      inFlight++;
      if (performance.now() - due > 100) lateStarts++;
      void call(due).finally(() => {
        inFlight--;
        if (inFlight === 0) drained?.();
      });
    };
    while (issued < scheduled) {
      const now = performance.now();
      if (now >= deadline + 1000) break; // a schedule this far behind is not going to be met
      while (issued < scheduled && inFlight < maxInFlight && started + issued * gap <= now) {
        launch(started + issued * gap);
        issued++;
      }
      // Sleep until the next call is due (timers fire ~1 ms late; calls due meanwhile start together).
      const wait = started + issued * gap - performance.now();
      await new Promise((resolve) => setTimeout(resolve, Math.max(1, Math.min(wait, 20))));
    }
    if (inFlight > 0) await new Promise<void>((resolve) => (drained = resolve));
  }
  const elapsedMs = (lastEnd || performance.now()) - started;
  return {
    ops: samples.length,
    errors,
    firstError,
    elapsedMs,
    opsPerSec: (samples.length * 1000) / elapsedMs,
    scheduled,
    lateStarts,
    latency: summarize(samples.view()),
    byTarget,
    series,
  };
}

async function dispatch(command: Command): Promise<unknown> {
  switch (command.cmd) {
    case 'open':
      return open(command.target);
    case 'run':
      return run(command.target, command.options);
    case 'mix':
      return mix(command.options);
    case 'close':
      return close(command.target, command.endSessions);
  }
}

function main(): void {
  process.once('SIGTERM', () => process.exit(0));
  process.once('disconnect', () => process.exit(0));
  process.on('message', (message: Command & { seq: number }) => {
    dispatch(message).then(
      (result) => process.send!({ seq: message.seq, ok: true, result: result ?? null }),
      (error: unknown) =>
        process.send!({
          seq: message.seq,
          ok: false,
          error: error instanceof Error ? (error.stack ?? error.message) : String(error),
        }),
    );
  });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main();
}
