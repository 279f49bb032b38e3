/**
 * The benchmark layer's public face (the `mcp-relay/bench` subpath): the seed's benchmark suite,
 * side by side with the bare SDK client (`runBenchmarkSuite`), its report forms, and the load
 * loops the repository's own benchmarks use.
 */
export {
  fill,
  runBenchmarkSuite,
  type BenchmarkOptions,
  type BenchmarkReport,
  type CachingResult,
  type ContenderName,
  type LoadBalancingResult,
  type SuiteName,
  type ToolExecutionResult,
} from './suite.js';
export { renderHtml, renderMarkdown, renderTable, reportTables, writeReports } from './report.js';
export { progressBar, type ProgressStream } from './progress.js';
export {
  closedLoop,
  repeated,
  SelfCpuMeter,
  timeIt,
  type CpuMeterLike,
  type LoadOptions,
  type LoadResult,
  type TimeOptions,
  type TimeResult,
} from './timing.js';
export { median, medianBy, percentile, percentileOfSorted, Samples, summarize, type LatencySummary } from './stats.js';
