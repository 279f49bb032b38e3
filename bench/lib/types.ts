/**
 * The contract between `bench/run.ts` and a suite. A suite is a module in `bench/suites/` that
 * exports `suite: BenchSuite`; the runner discovers it by file, runs it, prints its tables and
 * writes its section of `bench/RESULTS.md` and a JSON file under `bench/results/`.
 */

/** What the runner hands a suite. */
export interface BenchContext {
  /**
   * How many times to repeat each measurement; report the median. Default 3: a 2-core shared
   * machine is noisy, and one run can land on a neighbour's burst.
   */
  readonly repeats: number;
  /** Measurement window of one repetition in ms when given with `--duration-ms`; else the suite's own default. */
  readonly durationMs: number | undefined;
  /** A progress line on stderr (stdout carries the result tables). */
  log(message: string): void;
  /**
   * Registers cleanup (stop a child, close a client) that the runner runs after `run` settles,
   * last registered first, even when `run` throws, so a failed suite leaves no processes behind.
   */
  defer(cleanup: () => unknown): void;
}

/** A table of figures: the first column names the row. Cells are already formatted. */
export interface ResultTable {
  title: string;
  columns: string[];
  rows: string[][];
  /** A line under the table: what the columns mean. */
  note?: string;
}

/** One budget check: a measured ratio against its limit. */
export interface BudgetResult {
  /** What is compared, e.g. "HTTP demo, C=64: relay/SDK ops/s". */
  name: string;
  /** The limit as written in DESIGN.md, e.g. "≥ 0.95". */
  budget: string;
  measured: number;
  pass: boolean;
  /** Why it failed beyond the number, e.g. "3 calls returned a wrong result". */
  detail?: string;
  /** The unit of `measured` when it is not a ratio, e.g. `ms` or `MiB`. */
  unit?: string;
}

/** What a suite returns; the runner renders it. */
export interface SuiteResult {
  /** One sentence: what every ratio in this section is measured against. */
  baseline: string;
  tables: ResultTable[];
  budgets: BudgetResult[];
  /** Findings to state plainly (e.g. where the relay is slower, and why). */
  notes?: string[];
  /** Raw figures for the JSON file under `bench/results/`. */
  data?: unknown;
}

export interface BenchSuite {
  /** Also the file name and the command-line selector: `npm run bench -- core`. */
  name: string;
  /** One line for `--list` and the section heading. */
  description: string;
  run(ctx: BenchContext): Promise<SuiteResult>;
}
