/**
 * Where a process spends its CPU, from a V8 `.cpuprofile` (`node --cpu-prof`): busy time per
 * category of code, per layer of `src/` (each sample charged to the nearest `src/` frame on its
 * stack, so the SDK, undici and Node internals a layer calls count against that layer), and the
 * heaviest functions by self time, by time charged to them that way, and by inclusive time.
 *
 * V8 samples on a wall-clock interval while the thread is not idle. A thread preempted inside a
 * system call (typically a write that just woke the reader on the other side) keeps being sampled
 * there, so on a busy machine native write frames (`writev`, `writeUtf8String`) read higher than
 * the CPU they cost; compare with the process's CPU time from `/proc`.
 */
import { readFile } from 'node:fs/promises';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}

interface CpuProfileFile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileShare {
  name: string;
  /** Share of the busy samples (idle excluded). */
  share: number;
}

export interface ProfileSummary {
  /** Busy samples' share of all samples. */
  busyShare: number;
  durationMs: number;
  /** By kind of code, of the samples' own frame (self time). */
  categories: ProfileShare[];
  /** By `src/` layer, each sample charged to the nearest `src/` frame on its stack. */
  layers: ProfileShare[];
  /** Functions by self time. */
  selfTop: ProfileShare[];
  /** `src/` functions by the samples charged to them (their own and the non-`src/` code they call). */
  srcTop: ProfileShare[];
  /** Functions by the samples with them anywhere on the stack (the event loop's own frames left out). */
  inclusiveTop: ProfileShare[];
}

/** Frames on nearly every stack, which say nothing about where the time goes. */
const PLUMBING = new Set([
  '(root)',
  'processTicksAndRejections',
  'runMicrotasks',
  'processImmediate',
  'listOnTimeout',
  'processTimers',
  'emit',
  'addChunk',
  'readableAddChunk',
  'readableAddChunkPushByteMode',
  'readableAddChunkPushObjectMode',
  'Readable.push',
  'onStreamRead',
]);

/**
 * The project's own file of a frame, as a path below `src/`: the sources run through tsx
 * (`.../src/gateway/http.ts`) or the build (`.../dist/gateway/http.js`, which mirrors `src/`);
 * `undefined` for anything else (Node's own code, dependencies, whose packages have `dist/` too).
 */
function ownPath(url: string): string | undefined {
  if (url.includes('/node_modules/')) return undefined;
  for (const root of ['/src/', '/dist/']) {
    const at = url.lastIndexOf(root);
    if (at !== -1) return url.slice(at + root.length);
  }
  return undefined;
}
/** Not busy. `(program)` is: native code outside JS (syscalls, the HTTP parser, libuv). */
const IDLE = new Set(['(idle)', '(root)']);

function location(frame: CallFrame): string {
  const url = frame.url;
  const name = frame.functionName || '(anonymous)';
  const own = ownPath(url);
  // Line numbers are of the compiled code (tsx's or the build's): the file says enough.
  if (own !== undefined) return `${name} (src/${own})`;
  const modules = url.lastIndexOf('node_modules/');
  const file = modules !== -1 ? url.slice(modules + 'node_modules/'.length) : url;
  return file ? `${name} (${file}:${frame.lineNumber + 1})` : name;
}

function category(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(program)') return 'native, outside JS (syscalls, HTTP parser, libuv)';
  if (url === '') return 'V8 builtins and runtime (JSON, property lookups, strings)';
  const own = ownPath(url);
  if (own !== undefined) return `src/${own.split('/')[0]}`;
  const modules = url.lastIndexOf('node_modules/');
  if (modules !== -1) {
    const rest = url.slice(modules + 'node_modules/'.length).split('/');
    return `npm ${rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  if (url.startsWith('node:')) {
    const path = url.slice(5);
    if (path.startsWith('_http') || path.startsWith('http') || path.startsWith('internal/http')) return 'node http';
    if (path.startsWith('net') || path.startsWith('internal/stream_base') || path.startsWith('internal/net')) {
      return 'node net';
    }
    if (path.includes('stream')) return 'node streams';
    return 'node other';
  }
  return 'other';
}

function layer(frame: CallFrame): string | undefined {
  const own = ownPath(frame.url);
  return own === undefined ? undefined : `src/${own.split('/')[0]}`;
}

function shares(counts: Map<string, number>, total: number, top = Infinity): ProfileShare[] {
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, count]) => ({ name, share: total > 0 ? count / total : Number.NaN }));
}

function add(counts: Map<string, number>, key: string, n: number): void {
  counts.set(key, (counts.get(key) ?? 0) + n);
}

/** Only the samples taken in this window, on the monotonic clock in µs (`process.hrtime`, as V8 stamps samples). */
export interface ProfileWindow {
  fromMicros: number;
  toMicros: number;
}

export async function summarizeCpuProfile(
  path: string,
  options: { window?: ProfileWindow | undefined; top?: number } = {},
): Promise<ProfileSummary> {
  const top = options.top ?? 12;
  const profile = JSON.parse(await readFile(path, 'utf8')) as CpuProfileFile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const hits = new Map<number, number>();
  const window = options.window;
  let at = profile.startTime;
  let taken = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    if (window && (at < window.fromMicros || at > window.toMicros)) continue;
    const id = profile.samples[i]!;
    hits.set(id, (hits.get(id) ?? 0) + 1);
    taken++;
  }

  const categories = new Map<string, number>();
  const layers = new Map<string, number>();
  const selfTop = new Map<string, number>();
  const srcTop = new Map<string, number>();
  const inclusiveTop = new Map<string, number>();
  let busy = 0;
  for (const [id, count] of hits) {
    const node = byId.get(id)!;
    if (IDLE.has(node.callFrame.functionName)) continue;
    busy += count;
    add(categories, category(node.callFrame), count);
    add(selfTop, location(node.callFrame), count);
    let charged: ProfileNode | undefined;
    const seen = new Set<string>();
    for (let up: number | undefined = id; up !== undefined; up = parent.get(up)) {
      const frame: ProfileNode = byId.get(up)!;
      if (charged === undefined && layer(frame.callFrame) !== undefined) charged = frame;
      if (!PLUMBING.has(frame.callFrame.functionName)) seen.add(location(frame.callFrame));
    }
    for (const name of seen) add(inclusiveTop, name, count);
    if (charged) {
      add(layers, layer(charged.callFrame)!, count);
      add(srcTop, location(charged.callFrame), count);
    } else {
      add(layers, 'outside src/ (node http server, timers, GC)', count);
    }
  }
  return {
    busyShare: taken > 0 ? busy / taken : Number.NaN,
    durationMs: window
      ? (Math.min(window.toMicros, profile.endTime) - Math.max(window.fromMicros, profile.startTime)) / 1000
      : (profile.endTime - profile.startTime) / 1000,
    categories: shares(categories, busy),
    layers: shares(layers, busy),
    selfTop: shares(selfTop, busy, top),
    srcTop: shares(srcTop, busy, top),
    inclusiveTop: shares(inclusiveTop, busy, top),
  };
}
