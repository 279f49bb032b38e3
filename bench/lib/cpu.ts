/**
 * CPU time and memory of this process and of child process trees. On a shared 2-core machine CPU
 * time per call is steadier than ops/s: a neighbour's burst stretches wall time, not our CPU time.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** CPU time (user + system, all threads) this process has used, in µs. */
export function selfCpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/** Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`, 100 on Linux). */
export const CLOCK_TICKS: number = (() => {
  try {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(value) && value > 0 ? value : 100;
  } catch {
    return 100;
  }
})();

interface ProcStat {
  ppid: number;
  /** utime + stime, in clock ticks. */
  ticks: number;
}

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // exited
  }
  // Field 2 (comm) is in parentheses and may hold spaces or ')': split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
  return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
}

/** The pid and every live descendant of it. */
export function processTree(rootPid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const stat = readStat(pid);
    if (stat === undefined) continue;
    const siblings = children.get(stat.ppid);
    if (siblings) siblings.push(pid);
    else children.set(stat.ppid, [pid]);
  }
  const tree: number[] = [];
  const pending = [rootPid];
  while (pending.length > 0) {
    const pid = pending.pop()!;
    tree.push(pid);
    pending.push(...(children.get(pid) ?? []));
  }
  return tree;
}

/**
 * CPU time (user + system) used so far by the live processes of a tree, in µs. Resolution is one
 * clock tick (10 ms), so measure windows of a second or more. Children that already exited are not
 * counted: take both readings while the tree is running.
 */
export function treeCpuMicros(rootPid: number): number {
  let ticks = 0;
  for (const pid of processTree(rootPid)) ticks += readStat(pid)?.ticks ?? 0;
  return (ticks * 1e6) / CLOCK_TICKS;
}

/** CPU time (user + system) used so far by one process (not its children), in µs; 0 once it exited. */
export function processCpuMicros(pid: number): number {
  return ((readStat(pid)?.ticks ?? 0) * 1e6) / CLOCK_TICKS;
}

/** A `Vm*: N kB` figure of `/proc/<pid>/status` in bytes, 0 when the process exited. */
function statusBytes(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0; // exited
  }
}

/** Resident set size now of one process (`VmRSS`), in bytes. */
export function processRssBytes(pid: number): number {
  return statusBytes(pid, 'VmRSS');
}

/** Resident set size now of a process tree (sum of each live process's `VmRSS`), in bytes. */
export function treeRssBytes(rootPid: number): number {
  let bytes = 0;
  for (const pid of processTree(rootPid)) bytes += statusBytes(pid, 'VmRSS');
  return bytes;
}

/** Peak resident set size of one process (`VmHWM`), in bytes. */
export function processPeakRssBytes(pid: number): number {
  return statusBytes(pid, 'VmHWM');
}

/** Peak resident set size of this process so far, in bytes. */
export function selfPeakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}

/** Peak resident set size of a process tree (sum of each live process's `VmHWM`), in bytes. */
export function treePeakRssBytes(rootPid: number): number {
  let bytes = 0;
  for (const pid of processTree(rootPid)) {
    try {
      const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (match) bytes += Number(match[1]) * 1024;
    } catch {
      // exited
    }
  }
  return bytes;
}

/** A CPU meter over a window: this process and any number of labelled child trees. */
export class CpuMeter {
  readonly #trees: ReadonlyMap<string, number>;
  #self = 0;
  readonly #start = new Map<string, number>();

  /** `trees`: label → root pid of a child tree to meter (e.g. `{ upstream: 1234 }`). */
  constructor(trees: Readonly<Record<string, number>> = {}) {
    this.#trees = new Map(Object.entries(trees));
  }

  start(): void {
    for (const [label, pid] of this.#trees) this.#start.set(label, treeCpuMicros(pid));
    this.#self = selfCpuMicros();
  }

  /** CPU µs used since `start`, per label, plus `self` for this process. */
  stop(): Record<string, number> {
    const self = selfCpuMicros() - this.#self;
    const used: Record<string, number> = { self };
    for (const [label, pid] of this.#trees) used[label] = treeCpuMicros(pid) - (this.#start.get(label) ?? 0);
    return used;
  }
}
