/**
 * Timing for the repository's suites: the loops of src/bench/timing.ts (shipped for
 * `mcp-relay bench`), with CPU metered over child process trees too (`trees`, see ./cpu.ts).
 */
import {
  closedLoop as shippedClosedLoop,
  type LoadOptions as ShippedLoadOptions,
  type LoadResult,
} from '../../src/bench/timing.js';
import { CpuMeter } from './cpu.js';

export { repeated, timeIt, type LoadResult, type TimeOptions, type TimeResult } from '../../src/bench/timing.js';

export interface LoadOptions extends ShippedLoadOptions {
  /** Child process trees whose CPU to meter over the window: label → root pid. */
  trees?: Readonly<Record<string, number>>;
}

/** {@link shippedClosedLoop} with CPU per call of this process and of each tree in `trees`. */
export function closedLoop(op: (seq: number) => Promise<void>, options: LoadOptions): Promise<LoadResult> {
  return shippedClosedLoop(op, { ...options, meter: options.meter ?? new CpuMeter(options.trees) });
}
