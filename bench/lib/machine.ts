import { execFileSync } from 'node:child_process';
import { cpus, loadavg, platform, release, totalmem } from 'node:os';

/** Where and when a run happened: results are only comparable on the same machine. */
export interface MachineInfo {
  /** ISO 8601, UTC. */
  date: string;
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  node: string;
  os: string;
  /** 1-minute load average when the run started: a busy machine explains noisy figures. */
  loadAverage: number;
  /** `git describe --always --dirty` of the checkout, when available. */
  commit: string | undefined;
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    date: new Date().toISOString(),
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryBytes: totalmem(),
    node: process.version,
    os: `${platform()} ${release()}`,
    loadAverage: loadavg()[0] ?? 0,
    commit: gitDescribe(),
  };
}

function gitDescribe(): string | undefined {
  try {
    return execFileSync('git', ['describe', '--always', '--dirty'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return undefined;
  }
}

export function describeMachine(info: MachineInfo): string {
  const gib = (info.memoryBytes / 2 ** 30).toFixed(1);
  return `${info.cpuModel}, ${info.cores} cores, ${gib} GiB RAM, ${info.os}`;
}
