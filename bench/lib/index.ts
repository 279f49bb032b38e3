/** What a suite needs: the suite contract, timing and load, CPU and memory meters, report helpers. */
export type { BenchContext, BenchSuite, BudgetResult, ResultTable, SuiteResult } from './types.js';
export {
  closedLoop,
  repeated,
  timeIt,
  type LoadOptions,
  type LoadResult,
  type TimeOptions,
  type TimeResult,
} from './timing.js';
export { median, medianBy, percentile, percentileOfSorted, Samples, summarize, type LatencySummary } from './stats.js';
export {
  CLOCK_TICKS,
  CpuMeter,
  processCpuMicros,
  processPeakRssBytes,
  processRssBytes,
  processTree,
  selfCpuMicros,
  selfPeakRssBytes,
  treeCpuMicros,
  treePeakRssBytes,
  treeRssBytes,
} from './cpu.js';
export { atLeast, atMost, bytes, duration, micros, opsPerSec, ratio } from './report.js';
export { machineInfo, type MachineInfo } from './machine.js';
export { freePort, startChildServer, startServerOnPort, type ChildServer } from './child.js';
export { builtCli } from './built.js';
export { answer as bareAnswer, bareStdioCommand, startBareHttpUpstream, BARE_UPSTREAM_PATH } from './bare-upstream.js';
export { CEILING_SERVER_PATH, startCeilingServer } from './ceiling-server.js';
export {
  HttpLoadGenerator,
  HTTP_LOAD_PATH,
  type HttpLoadResult,
  type HttpRunOptions,
  type LoadEra,
  type LoadTarget,
  type MixResult,
  type MixRunOptions,
  type OpenResult,
} from './http-load.js';
export { processHandles, sampleProcess, type ProcessHandles, type ProcessSample } from './handles.js';
export { summarizeCpuProfile, type ProfileShare, type ProfileSummary, type ProfileWindow } from './cpu-profile.js';
