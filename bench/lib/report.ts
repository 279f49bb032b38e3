/**
 * Formatting and writing results: console tables, the JSON file per run under `bench/results/`, and
 * the suite's section of `bench/RESULTS.md`, replaced in place between its markers.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

import { format, resolveConfig } from 'prettier';

import { describeMachine, type MachineInfo } from './machine.js';
import type { BudgetResult, ResultTable, SuiteResult } from './types.js';

// ---------------------------------------------------------------------------------------------
// Numbers

/** `0.973×`: a ratio to its baseline. */
export function ratio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(3)}×` : 'n/a';
}

/** `12,345`: operations per second. */
export function opsPerSec(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : 'n/a';
}

/** A duration given in ms, in the unit that suits it: `850 ns`, `42.1 µs`, `1.23 ms`, `2.5 s`. */
export function duration(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  if (ms < 0.001) return `${(ms * 1e6).toFixed(0)} ns`;
  if (ms < 1) return `${(ms * 1000).toFixed(ms < 0.1 ? 1 : 0)} µs`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/** CPU µs per call: `312 µs`. */
export function micros(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(value < 10 ? 1 : 0)} µs` : 'n/a';
}

export function bytes(value: number): string {
  return `${(value / 2 ** 20).toFixed(1)} MiB`;
}

// ---------------------------------------------------------------------------------------------
// Budgets

/**
 * Passes when `measured ≥ limit` (throughput ratios). `unit` marks a budget that is not a ratio
 * (e.g. `'ms'`): the figure is then shown in that unit instead of as `N×`.
 */
export function atLeast(name: string, measured: number, limit: number, detail?: string, unit?: string): BudgetResult {
  return check(name, `≥ ${limit}${unit ? ` ${unit}` : ''}`, measured, measured >= limit, detail, unit);
}

/** Passes when `measured ≤ limit` (latency and CPU ratios); `unit` as for {@link atLeast}. */
export function atMost(name: string, measured: number, limit: number, detail?: string, unit?: string): BudgetResult {
  return check(name, `≤ ${limit}${unit ? ` ${unit}` : ''}`, measured, measured <= limit, detail, unit);
}

function check(
  name: string,
  budget: string,
  measured: number,
  pass: boolean,
  detail: string | undefined,
  unit: string | undefined,
): BudgetResult {
  // A detail marks a measurement that cannot be trusted (errors, wrong answers): never a pass.
  const ok = pass && Number.isFinite(measured) && detail === undefined;
  const result: BudgetResult = { name, budget, measured, pass: ok };
  if (detail !== undefined) result.detail = detail;
  if (unit !== undefined) result.unit = unit;
  return result;
}

// ---------------------------------------------------------------------------------------------
// Console

export function renderConsole(name: string, result: SuiteResult): string {
  const lines: string[] = [`\n== ${name} ==`, `baseline: ${result.baseline}`];
  for (const table of result.tables) {
    lines.push('', table.title, ...alignTable(table.columns, table.rows));
    if (table.note) lines.push(table.note);
  }
  lines.push('', 'budgets');
  lines.push(...alignTable(['check', 'budget', 'measured', 'result'], result.budgets.map(budgetRow)));
  for (const note of result.notes ?? []) lines.push(`* ${note}`);
  return lines.join('\n');
}

function alignTable(columns: string[], rows: string[][]): string[] {
  const widths = columns.map((column, i) => Math.max(column.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(columns), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

function budgetRow(budget: BudgetResult): string[] {
  const verdict = budget.pass ? 'PASS' : 'FAIL';
  return [
    budget.name,
    budget.budget,
    budget.unit === undefined
      ? ratio(budget.measured)
      : Number.isFinite(budget.measured)
        ? `${budget.measured.toFixed(3)} ${budget.unit}`
        : 'n/a',
    budget.detail ? `${verdict} (${budget.detail})` : verdict,
  ];
}

// ---------------------------------------------------------------------------------------------
// Markdown

const RESULTS_HEADER = `# Benchmark results

Written by \`npm run bench\` ([run.ts](run.ts)); see [README.md](README.md) for how to run and add
suites. Each suite owns the section between its \`<!-- suite:NAME -->\` and \`<!-- /suite:NAME -->\`
markers, which a run of that suite replaces in place; everything outside the markers is kept.

Figures are ratios against a baseline measured in the same run (DESIGN.md, "Performance budgets"),
because this 2-core machine is noisy: absolute figures are given for scale only. Each figure is the
median of repeated measurements.
`;

export interface SectionInput {
  name: string;
  description: string;
  machine: MachineInfo;
  wallMs: number;
  repeats: number;
  result: SuiteResult;
}

export function renderSection(input: SectionInput): string {
  const { name, description, machine, result } = input;
  const passed = result.budgets.filter((b) => b.pass).length;
  const lines: string[] = [
    `## ${name}`,
    '',
    description,
    '',
    `- **Date:** ${machine.date}${machine.commit ? ` (commit \`${machine.commit}\`)` : ''}`,
    `- **Machine:** ${describeMachine(machine)}; 1-min load ${machine.loadAverage.toFixed(2)} at start`,
    `- **Node:** ${machine.node}`,
    `- **Run:** ${input.repeats === 1 ? 'one run' : `median of ${input.repeats} repeats`}, ${duration(input.wallMs)} in all`,
    `- **Baseline:** ${result.baseline}`,
    '',
    `**Budgets: ${passed} of ${result.budgets.length} pass.**`,
    '',
    '| check | budget | measured | result |',
    '|---|---|---|---|',
    ...result.budgets.map((b) => {
      const [check, budget, measured, verdict] = budgetRow(b);
      return `| ${check} | ${budget} | ${measured} | ${b.pass ? verdict : `**${verdict}**`} |`;
    }),
  ];
  for (const table of result.tables) lines.push('', ...markdownTable(table));
  if (result.notes && result.notes.length > 0) {
    lines.push('', '### Findings', '', ...result.notes.map((note) => `- ${note}`));
  }
  return lines.join('\n');
}

function markdownTable(table: ResultTable): string[] {
  const escape = (cell: string) => cell.replaceAll('|', '\\|');
  const lines = [
    `### ${table.title}`,
    '',
    `| ${table.columns.map(escape).join(' | ')} |`,
    `|${table.columns.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...table.rows.map((row) => `| ${row.map(escape).join(' | ')} |`),
  ];
  if (table.note) lines.push('', table.note);
  return lines;
}

/** Replaces the suite's section of the Markdown file in place, or appends it; creates the file if needed. */
export async function updateResultsFile(path: string, name: string, section: string): Promise<void> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    text = RESULTS_HEADER;
  }
  const begin = `<!-- suite:${name} -->`;
  const end = `<!-- /suite:${name} -->`;
  const block = `${begin}\n${section}\n${end}`;
  const from = text.indexOf(begin);
  const to = from === -1 ? -1 : text.indexOf(end, from);
  if (from !== -1 && to !== -1) {
    text = text.slice(0, from) + block + text.slice(to + end.length);
  } else {
    text = `${text.trimEnd()}\n\n${block}\n`;
  }
  // Formatted as `npm run lint` expects, so a run never leaves the checkout failing `prettier --check`.
  const options = (await resolveConfig(path)) ?? {};
  await writeFile(path, await format(text, { ...options, filepath: path }));
}

export async function writeJson(path: string, value: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(value, null, 2)}\n`);
}
