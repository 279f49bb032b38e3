/**
 * What a process holds open, read from `/proc`: file descriptors (by kind) and descendant
 * processes. A leak of sockets, pipes or child processes shows here long before it shows in
 * memory, so a soak samples these alongside RSS.
 *
 * A process run from source through `tsx` starts esbuild's compiler service (`esbuild --service`)
 * the first time it compiles a file that is not in tsx's cache, and keeps it: a child and its
 * pipes that depend on the state of that cache, not on the code measured. It is left out of
 * every count here (the child, and the descriptors it shares with the process).
 *
 * Connections a pool keeps open to an upstream (`pooledPorts`: the upstreams' ports) are counted
 * apart, as `pooled`: a pool bounds them (`connection_pool_size`) and closes idle ones on its own
 * keep-alive schedule, so a leak check that counted them would have to wait out that schedule.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

import { processRssBytes, processTree } from './cpu.js';

export interface ProcessHandles {
  /** Open file descriptors (`/proc/<pid>/fd`), every kind but the pooled upstream connections. */
  fds: number;
  /** Of those, sockets (TCP, Unix): inbound connections, listeners, anything else. */
  sockets: number;
  /** Of those, pipes (a stdio upstream holds three). */
  pipes: number;
  /** Live descendant processes (children, grandchildren, ...). */
  children: number;
  /** TCP connections to one of the `pooledPorts` (not in `fds` or `sockets`). */
  pooled: number;
}

/**
 * The handles `pid` holds now (tsx's esbuild service aside); all zero once it has exited.
 * `pooledPorts`: remote TCP ports whose connections are counted as `pooled`.
 */
export function processHandles(pid: number, pooledPorts: readonly number[] = []): ProcessHandles {
  const links = fdLinks(pid);
  if (links === undefined) return { fds: 0, sockets: 0, pipes: 0, children: 0, pooled: 0 };
  const descendants = processTree(pid).slice(1);
  const compilers = descendants.filter((child) => commandName(child) === 'esbuild');
  const compilerPipes = new Set(compilers.flatMap((child) => fdLinks(child) ?? []));
  const pooledSockets = pooledPorts.length === 0 ? new Set<string>() : socketsTo(pid, new Set(pooledPorts));
  let fds = 0;
  let sockets = 0;
  let pipes = 0;
  let pooled = 0;
  for (const target of links) {
    if (compilerPipes.has(target)) continue;
    if (pooledSockets.has(target)) {
      pooled++;
      continue;
    }
    fds++;
    if (target.startsWith('socket:')) sockets++;
    else if (target.startsWith('pipe:')) pipes++;
  }
  return { fds, sockets, pipes, children: descendants.length - compilers.length, pooled };
}

/** `socket:[inode]` of every TCP connection of `pid`'s network namespace whose remote port is in `ports`. */
function socketsTo(pid: number, ports: ReadonlySet<number>): Set<string> {
  const found = new Set<string>();
  for (const table of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    // "sl local_address rem_address st ... inode": addresses are HEX_IP:HEX_PORT.
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const remote = fields[2];
      const inode = fields[9];
      if (remote === undefined || inode === undefined) continue;
      const port = Number.parseInt(remote.slice(remote.lastIndexOf(':') + 1), 16);
      if (ports.has(port)) found.add(`socket:[${inode}]`);
    }
  }
  return found;
}

/** What each open descriptor of `pid` points at (`socket:[123]`, `pipe:[456]`, a path). */
function fdLinks(pid: number): string[] | undefined {
  let entries: string[];
  try {
    entries = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return undefined; // exited
  }
  const links: string[] = [];
  for (const fd of entries) {
    try {
      links.push(readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      // closed between the listing and the read
    }
  }
  return links;
}

function commandName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** One reading of a process: its RSS and its handles, at `atMs` (ms since the reader's start). */
export interface ProcessSample extends ProcessHandles {
  atMs: number;
  rssBytes: number;
}

export function sampleProcess(pid: number, atMs: number, pooledPorts: readonly number[] = []): ProcessSample {
  return { atMs, rssBytes: processRssBytes(pid), ...processHandles(pid, pooledPorts) };
}
