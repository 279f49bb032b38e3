/**
 * The seed's `ResourceMonitor`: CPU, memory, event-loop delay, open connections and child
 * processes, sampled on an interval (default 1 s) and kept for a while (default 300 samples) for
 * the dashboard's charts and the seed's `get_resource_summary()`.
 */
import { readFileSync } from 'node:fs';
import { cpus, freemem, totalmem } from 'node:os';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export interface ResourceSample {
  /** Wall clock, ms since the epoch. */
  at: number;
  /** This process's CPU time per wall time over the interval (1 = one core busy). */
  processCpu: number;
  /** Busy share of all the machine's CPUs over the interval (0-1), the seed's `psutil.cpu_percent()`. */
  systemCpu: number;
  /** Memory in use: of the cgroup limit when there is one, else of the machine (0-1), the seed's `virtual_memory().percent`. */
  memoryRatio: number;
  rssBytes: number;
  heapUsedBytes: number;
  eventLoopDelayP50Ms: number;
  eventLoopDelayP99Ms: number;
  eventLoopDelayMaxMs: number;
  openConnections: number;
  childProcesses: number;
}

/** The seed's `get_resource_summary()`, plus event-loop delay. */
export interface ResourceSummary {
  samples: number;
  avg_cpu_percent: number;
  max_cpu_percent: number;
  avg_memory_percent: number;
  max_memory_percent: number;
  peak_connections: number;
  max_event_loop_delay_ms: number;
}

export interface ResourceMonitorOptions {
  /** Sampling interval, in ms. Default 1000. */
  intervalMs?: number | undefined;
  /** Samples kept. Default 300. */
  keep?: number | undefined;
  /** Inbound connections open now (the gateway counts its sockets). Default: 0. */
  connections?: (() => number) | undefined;
  /** Child processes now (stdio upstreams). Default: 0. */
  childProcesses?: (() => number) | undefined;
}

export class ResourceMonitor {
  readonly intervalMs: number;
  readonly #keep: number;
  readonly #samples: ResourceSample[] = [];
  readonly #connections: () => number;
  readonly #children: () => number;
  readonly #loop: IntervalHistogram;
  #timer: NodeJS.Timeout | undefined;
  #lastCpu = process.cpuUsage();
  #lastWall = performance.now();
  #lastSystem = systemTimes();
  readonly #listeners = new Set<(sample: ResourceSample) => void>();

  constructor(options: ResourceMonitorOptions = {}) {
    this.intervalMs = options.intervalMs ?? 1000;
    if (!(this.intervalMs >= 10)) {
      throw new RangeError(`ResourceMonitor intervalMs must be at least 10 ms, got ${options.intervalMs}`);
    }
    this.#keep = options.keep ?? 300;
    this.#connections = options.connections ?? (() => 0);
    this.#children = options.childProcesses ?? (() => 0);
    this.#loop = monitorEventLoopDelay({ resolution: 10 });
  }

  /** Starts sampling (the seed's `start_monitoring`). The timer does not keep the process alive. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#loop.enable();
    this.#lastCpu = process.cpuUsage();
    this.#lastWall = performance.now();
    this.#lastSystem = systemTimes();
    this.#timer = setInterval(() => this.sample(), this.intervalMs);
    this.#timer.unref();
  }

  /** The seed's `stop_monitoring`. */
  stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#loop.disable();
  }

  /** Takes one sample now (the timer calls this). */
  sample(): ResourceSample {
    const wall = performance.now();
    const cpu = process.cpuUsage(this.#lastCpu);
    const elapsedMs = Math.max(1, wall - this.#lastWall);
    const system = systemTimes();
    const busy = system.busy - this.#lastSystem.busy;
    const all = system.total - this.#lastSystem.total;
    this.#lastCpu = process.cpuUsage();
    this.#lastWall = wall;
    this.#lastSystem = system;
    const memory = process.memoryUsage();
    const loop = this.#loop;
    const hasLoop = loop.count > 0;
    const sample: ResourceSample = {
      at: Date.now(),
      processCpu: (cpu.user + cpu.system) / 1000 / elapsedMs,
      systemCpu: all > 0 ? busy / all : 0,
      memoryRatio: memoryRatio(),
      rssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
      eventLoopDelayP50Ms: hasLoop ? loop.percentile(50) / 1e6 : 0,
      eventLoopDelayP99Ms: hasLoop ? loop.percentile(99) / 1e6 : 0,
      eventLoopDelayMaxMs: hasLoop ? loop.max / 1e6 : 0,
      openConnections: this.#connections(),
      childProcesses: this.#children(),
    };
    loop.reset();
    this.#samples.push(sample);
    if (this.#samples.length > this.#keep) this.#samples.shift();
    for (const listener of this.#listeners) listener(sample);
    return sample;
  }

  /** The latest sample, if any. */
  latest(): ResourceSample | undefined {
    return this.#samples[this.#samples.length - 1];
  }

  samples(): readonly ResourceSample[] {
    return this.#samples;
  }

  onSample(listener: (sample: ResourceSample) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The seed's `get_resource_summary()` over the samples kept. */
  summary(): ResourceSummary {
    const samples = this.#samples;
    const n = samples.length;
    const avg = (pick: (s: ResourceSample) => number) => (n === 0 ? 0 : samples.reduce((a, s) => a + pick(s), 0) / n);
    const max = (pick: (s: ResourceSample) => number) => samples.reduce((a, s) => Math.max(a, pick(s)), 0);
    return {
      samples: n,
      avg_cpu_percent: avg((s) => s.systemCpu) * 100,
      max_cpu_percent: max((s) => s.systemCpu) * 100,
      avg_memory_percent: avg((s) => s.memoryRatio) * 100,
      max_memory_percent: max((s) => s.memoryRatio) * 100,
      peak_connections: max((s) => s.openConnections),
      max_event_loop_delay_ms: max((s) => s.eventLoopDelayMaxMs),
    };
  }
}

function systemTimes(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const cpu of cpus()) {
    const t = cpu.times;
    const sum = t.user + t.nice + t.sys + t.idle + t.irq;
    total += sum;
    busy += sum - t.idle;
  }
  return { busy, total };
}

/** cgroup v2 `memory.current / memory.max` when a limit is set, else the machine's used share. */
function memoryRatio(): number {
  try {
    const max = readFileSync('/sys/fs/cgroup/memory.max', 'utf8').trim();
    if (max !== 'max') {
      const limit = Number(max);
      const current = Number(readFileSync('/sys/fs/cgroup/memory.current', 'utf8').trim());
      if (limit > 0 && Number.isFinite(current)) return current / limit;
    }
  } catch {
    // no cgroup v2 files: not in a limited container
  }
  const total = totalmem();
  return total > 0 ? (total - freemem()) / total : 0;
}
