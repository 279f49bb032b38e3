/**
 * Gateway replicas as users run them: N real `mcp-relay serve` processes started from one config
 * file, each on its own free port. Scale-out tests (shared cache, global rate limits, sessions any
 * replica can serve, replicas killed mid-stream) put them behind nothing at all: a client picks a
 * replica's URL, as a load balancer would.
 *
 *   const replicas = await startReplicas({ count: 3, config: { upstreams: { demo: stdioDemo } } });
 *   try { ... replicas.urls[1] ... } finally { await replicas.close(); }
 *
 * `close()` ends every replica by pid (SIGTERM, then SIGKILL after a grace period) and waits for its
 * exit, then removes the temporary config; a replica already ended by `kill()` is not signalled again.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const CLI_MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const LISTENING = /^mcp-relay gateway listening on (http:\/\/\S+)\/mcp$/;
/** How much of each replica's stdout + stderr is kept for failure messages. */
const OUTPUT_KEPT_CHARS = 64 * 1024;

export type ReplicaConfig = string | Record<string, unknown>;

export interface ReplicaOptions {
  /** How many replicas. Default 3. */
  count?: number;
  /** The shared config: YAML or JSON text, or an object (written as JSON). */
  config: ReplicaConfig;
  /**
   * Merged over `config` (objects key by key, everything else replaced), e.g.
   * `{ defaults: { cache: { redis: { url: 'redis://127.0.0.1:6379', prefix: 'test-1234:' } } } }`.
   */
  extra?: Record<string, unknown>;
  /** Added to the replicas' environment (over `process.env`), e.g. secrets the config names as `${VAR}`. */
  env?: Record<string, string>;
  /** Extra `serve` flags after `--config <file> --port 0`. */
  args?: string[];
  /** How long each replica may take to print its address, in ms. Default 60 000. */
  startTimeoutMs?: number;
  /** How long `close()` waits after SIGTERM before SIGKILL, in ms. Default 10 000. */
  graceMs?: number;
}

export interface Replicas {
  /** Each replica's base URL, `http://127.0.0.1:<port>` (the MCP endpoint is `<url>/mcp`). */
  readonly urls: readonly string[];
  /** Each replica's process id. */
  readonly pids: readonly number[];
  /** The config file every replica was started with. */
  readonly configPath: string;
  /** What replica `i` has written to stdout and stderr so far (the last 64 KiB). */
  output(i: number): string;
  /** Whether replica `i` is still running. */
  alive(i: number): boolean;
  /** Sends `signal` (default SIGTERM) to replica `i` and waits for it to exit; returns its exit code or signal. */
  kill(i: number, signal?: NodeJS.Signals): Promise<number | NodeJS.Signals | null>;
  /** Ends every replica still running and removes the temporary config. */
  close(): Promise<void>;
}

interface Replica {
  child: ChildProcess;
  output: string;
  exited: Promise<number | NodeJS.Signals | null>;
  done: boolean;
}

/** Deep merge of plain objects; arrays and scalars in `over` replace those in `base`. */
export function mergeConfig(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const old = merged[key];
    merged[key] = isPlainObject(old) && isPlainObject(value) ? mergeConfig(old, value) : value;
  }
  return merged;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export async function startReplicas(options: ReplicaOptions): Promise<Replicas> {
  const count = options.count ?? 3;
  if (!Number.isInteger(count) || count < 1) throw new Error(`count: expected a positive integer, got ${count}`);
  const startTimeoutMs = options.startTimeoutMs ?? 60_000;
  const graceMs = options.graceMs ?? 10_000;

  let config = options.config;
  if (options.extra !== undefined) {
    const base = typeof config === 'string' ? (YAML.parse(config) as unknown) : config;
    if (!isPlainObject(base)) throw new Error('config: expected a map at the top level to merge `extra` into');
    config = mergeConfig(base, options.extra);
  }
  const dir = await mkdtemp(join(tmpdir(), 'mcp-relay-replicas-'));
  const configPath = join(dir, typeof config === 'string' ? 'relay.yaml' : 'relay.json');
  await writeFile(configPath, typeof config === 'string' ? config : JSON.stringify(config, null, 2));

  const replicas: Replica[] = [];
  const urls: string[] = [];
  const stopOne = async (replica: Replica, signal: NodeJS.Signals): Promise<number | NodeJS.Signals | null> => {
    if (!replica.done && replica.child.pid !== undefined) {
      signalPid(replica.child.pid, signal);
      if (signal !== 'SIGKILL') {
        const timer = setTimeout(() => {
          if (!replica.done && replica.child.pid !== undefined) signalPid(replica.child.pid, 'SIGKILL');
        }, graceMs);
        try {
          return await replica.exited;
        } finally {
          clearTimeout(timer);
        }
      }
    }
    return replica.exited;
  };
  const close = async (): Promise<void> => {
    await Promise.all(replicas.map((replica) => stopOne(replica, 'SIGTERM')));
    await rm(dir, { recursive: true, force: true });
  };

  try {
    // One after another: each replica spawns its own stdio upstreams, and a 2-core machine starts
    // them faster in sequence than all at once.
    for (let i = 0; i < count; i++) {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', CLI_MAIN, 'serve', '--config', configPath, '--port', '0', ...(options.args ?? [])],
        { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const replica: Replica = {
        child,
        output: '',
        done: false,
        exited: new Promise((resolve) => {
          child.once('exit', (code, signal) => {
            replica.done = true;
            resolve(code ?? signal);
          });
        }),
      };
      replicas.push(replica);
      const keep = (chunk: Buffer): void => {
        replica.output = (replica.output + chunk.toString('utf8')).slice(-OUTPUT_KEPT_CHARS);
      };
      child.stderr.on('data', keep);
      urls.push(await waitForAddress(replica, i, startTimeoutMs, keep));
    }
  } catch (error) {
    await close();
    throw error;
  }

  return {
    urls,
    pids: replicas.map((replica) => replica.child.pid!),
    configPath,
    output: (i) => replicas[i]!.output,
    alive: (i) => !replicas[i]!.done,
    kill: (i, signal = 'SIGTERM') => stopOne(replicas[i]!, signal),
    close,
  };
}

/** Signals one pid; a process that ended in between (ESRCH) is already where we want it. */
function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** Reads stdout line by line until the listening line; every line (before and after) is kept. */
function waitForAddress(
  replica: Replica,
  index: number,
  timeoutMs: number,
  keep: (chunk: Buffer) => void,
): Promise<string> {
  const lines = createInterface({ input: replica.child.stdout! });
  return new Promise<string>((resolve, reject) => {
    let found = false;
    const timer = setTimeout(() => {
      reject(new Error(`replica ${index} printed no address within ${timeoutMs} ms; output:\n${replica.output}`));
    }, timeoutMs);
    lines.on('line', (line) => {
      keep(Buffer.from(line + '\n'));
      const match = found ? null : LISTENING.exec(line);
      if (match) {
        found = true;
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    void replica.exited.then((code) => {
      clearTimeout(timer);
      if (!found) reject(new Error(`replica ${index} exited (${code}) before listening; output:\n${replica.output}`));
    });
  });
}
