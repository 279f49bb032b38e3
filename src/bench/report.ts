/**
 * The forms of a benchmark report: a terminal table, JSON, Markdown, and a self-contained HTML
 * page with its charts drawn as inline SVG (no script, no CDN: it opens offline and can be mailed).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { BenchmarkReport, CachingResult, ContenderName, ToolExecutionResult } from './suite.js';

interface Table {
  title: string;
  columns: string[];
  rows: string[][];
  note?: string | undefined;
}

export function ms(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return 'n/a';
  if (value < 0.001) return `${(value * 1e6).toFixed(0)} ns`;
  if (value < 1) return `${(value * 1000).toFixed(value < 0.1 ? 1 : 0)} µs`;
  if (value < 1000) return `${value.toFixed(value < 10 ? 2 : 1)} ms`;
  return `${(value / 1000).toFixed(2)} s`;
}

export function ops(value: number | undefined): string {
  return value === undefined || !Number.isFinite(value) ? 'n/a' : Math.round(value).toLocaleString('en-US');
}

export function percent(value: number | undefined): string {
  return value === undefined || !Number.isFinite(value) ? 'n/a' : `${(value * 100).toFixed(1)} %`;
}

function times(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return 'n/a';
  return `${value >= 10 ? value.toFixed(0) : value >= 0.1 ? value.toFixed(2) : value.toPrecision(2)}×`;
}

const CONTENDERS: ContenderName[] = ['relay', 'direct'];

/** The report as tables (the terminal and Markdown forms are these, laid out differently). */
export function reportTables(report: BenchmarkReport): Table[] {
  const tables: Table[] = [];
  const exec = report.tool_execution;
  if (exec !== undefined) {
    const rows = CONTENDERS.filter((c) => exec[c] !== undefined).map((c) => {
      const r = exec[c]!;
      return [
        c,
        ops(r.operations_per_second),
        `${r.successful_operations}/${r.total_operations}`,
        ms(r.latency_ms.p50),
        ms(r.latency_ms.p95),
        ms(r.latency_ms.p99),
        r.cache_hit_rate === undefined ? '–' : percent(r.cache_hit_rate),
      ];
    });
    if (exec.relay !== undefined && exec.direct !== undefined) {
      rows.push([
        'relay ÷ direct',
        times(exec.relay.operations_per_second / exec.direct.operations_per_second),
        '',
        times(exec.relay.latency_ms.p50 / exec.direct.latency_ms.p50),
        times(exec.relay.latency_ms.p95 / exec.direct.latency_ms.p95),
        times(exec.relay.latency_ms.p99 / exec.direct.latency_ms.p99),
        '',
      ]);
    }
    tables.push({
      title: `Tool execution: '${report.tool}', ${report.options.concurrency} concurrent users, ${report.options.duration_ms / 1000} s`,
      columns: ['contender', 'ops/s', 'succeeded', 'P50', 'P95', 'P99', 'cache hit rate'],
      rows,
      note: `The load cycles through ${report.options.items} test items, as the seed's suite does: through the relay, repeats are cache hits.`,
    });
  }
  const caching = report.caching;
  if (caching !== undefined) {
    tables.push({
      title: `Cache miss against hit: ${report.options.misses} misses, ${report.options.hit_iterations} hits, one call at a time`,
      columns: ['contender', 'miss mean', 'miss P95', 'hit mean', 'hit P50', 'hit P95', 'speedup', 'hits counted'],
      rows: CONTENDERS.filter((c) => caching[c] !== undefined).map((c) => {
        const r: CachingResult = caching[c]!;
        return [
          c,
          ms(r.cache_miss_time_ms),
          ms(r.cache_miss_p95_ms),
          ms(r.avg_cache_hit_time_ms),
          ms(r.cache_hit_p50_ms),
          ms(r.cache_hit_p95_ms),
          times(r.cache_speedup),
          r.counted_hits === undefined ? '–' : `${r.counted_hits}/${r.hits}`,
        ];
      }),
      note: 'Direct has no cache: its "hits" are upstream calls, so its speedup is about 1×.',
    });
  }
  const lb = report.load_balancing;
  if (lb?.relay !== undefined) {
    const r = lb.relay;
    tables.push({
      title: `Load balancing: strategy ${r.strategy}, ${ops(r.operations_per_second)} ops/s over ${r.duration_seconds.toFixed(1)} s`,
      columns: ['upstream', 'calls', 'share', 'latency estimate'],
      rows: Object.keys(r.server_usage).map((name) => [
        name,
        ops(r.server_usage[name]),
        percent(r.load_distribution[name]),
        ms(r.latency_estimate_ms[name]),
      ]),
      note: 'Caching is off for this suite so that every call reaches an upstream; "latency estimate" is the balancer\'s peak-EWMA.',
    });
  } else if (lb?.skipped !== undefined) {
    tables.push({ title: 'Load balancing', columns: ['skipped'], rows: [[lb.skipped]] });
  }
  return tables;
}

/** The terminal form: aligned columns. */
export function renderTable(report: BenchmarkReport): string {
  const lines = [`mcp-relay bench: ${report.target}`, `${report.date} · Node ${report.environment.node}`];
  for (const table of reportTables(report)) {
    lines.push('', table.title, ...align(table.columns, table.rows));
    if (table.note !== undefined) lines.push(table.note);
  }
  return lines.join('\n');
}

function align(columns: string[], rows: string[][]): string[] {
  const widths = columns.map((column, i) => Math.max(column.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(columns), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

export function renderMarkdown(report: BenchmarkReport): string {
  const escape = (cell: string) => cell.replaceAll('|', '\\|');
  const lines = [
    '# mcp-relay benchmark',
    '',
    `- **Target:** ${escape(report.target)}`,
    `- **Tool:** \`${report.tool}\``,
    `- **Date:** ${report.date}`,
    `- **Node:** ${report.environment.node} on ${report.environment.platform}, ${report.environment.cpus} CPUs`,
    `- **Compared with:** ${report.options.compare === 'direct' ? 'the bare MCP SDK client, straight to the upstream' : 'nothing (add `--compare direct`)'}`,
  ];
  for (const table of reportTables(report)) {
    lines.push(
      '',
      `## ${table.title}`,
      '',
      `| ${table.columns.map(escape).join(' | ')} |`,
      `|${table.columns.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
      ...table.rows.map((row) => `| ${row.map(escape).join(' | ')} |`),
    );
    if (table.note !== undefined) lines.push('', table.note);
  }
  return `${lines.join('\n')}\n`;
}

// -----------------------------------------------------------------------------------------------
// HTML

function html(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
}

interface Bar {
  label: string;
  value: number;
  text: string;
  color: string;
}

/** Horizontal bars, one per row, scaled to the largest. */
function barChart(title: string, bars: readonly Bar[]): string {
  const rowHeight = 26;
  const labelWidth = 190;
  const width = 640;
  const height = bars.length * rowHeight + 8;
  const max = Math.max(...bars.map((b) => (Number.isFinite(b.value) ? b.value : 0)), Number.MIN_VALUE);
  const rows = bars
    .map((bar, i) => {
      const y = 4 + i * rowHeight;
      const w = Number.isFinite(bar.value) ? Math.max(1, ((width - labelWidth - 110) * bar.value) / max) : 0;
      return (
        `<text x="${labelWidth - 8}" y="${y + 16}" text-anchor="end">${html(bar.label)}</text>` +
        `<rect x="${labelWidth}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowHeight - 8}" rx="3" fill="${bar.color}"></rect>` +
        `<text x="${(labelWidth + w + 6).toFixed(1)}" y="${y + 16}">${html(bar.text)}</text>`
      );
    })
    .join('');
  return `<figure><figcaption>${html(title)}</figcaption><svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${html(title)}">${rows}</svg></figure>`;
}

const COLOR: Record<ContenderName, string> = { relay: '#2f81f7', direct: '#8b949e' };

function executionCharts(exec: Partial<Record<ContenderName, ToolExecutionResult>>): string {
  const present = CONTENDERS.filter((c) => exec[c] !== undefined);
  return (
    barChart(
      'Operations per second',
      present.map((c) => ({
        label: c,
        value: exec[c]!.operations_per_second,
        text: ops(exec[c]!.operations_per_second),
        color: COLOR[c],
      })),
    ) +
    barChart(
      'Latency (P50, P95, P99)',
      present.flatMap((c) =>
        (['p50', 'p95', 'p99'] as const).map((p) => ({
          label: `${c} ${p.toUpperCase()}`,
          value: exec[c]!.latency_ms[p],
          text: ms(exec[c]!.latency_ms[p]),
          color: COLOR[c],
        })),
      ),
    )
  );
}

function cachingCharts(caching: Partial<Record<ContenderName, CachingResult>>): string {
  const present = CONTENDERS.filter((c) => caching[c] !== undefined);
  return barChart(
    'Mean time of a miss and of a hit',
    present.flatMap((c) => [
      {
        label: `${c} miss`,
        value: caching[c]!.cache_miss_time_ms,
        text: ms(caching[c]!.cache_miss_time_ms),
        color: COLOR[c],
      },
      {
        label: `${c} hit`,
        value: caching[c]!.avg_cache_hit_time_ms,
        text: ms(caching[c]!.avg_cache_hit_time_ms),
        color: c === 'relay' ? '#3fb950' : COLOR[c],
      },
    ]),
  );
}

export function renderHtml(report: BenchmarkReport): string {
  const sections: string[] = [];
  const tables = reportTables(report);
  const tableHtml = (table: Table) =>
    `<table><thead><tr>${table.columns.map((c) => `<th>${html(c)}</th>`).join('')}</tr></thead><tbody>${table.rows
      .map((row) => `<tr>${row.map((cell) => `<td>${html(cell)}</td>`).join('')}</tr>`)
      .join('')}</tbody></table>${table.note === undefined ? '' : `<p class="note">${html(table.note)}</p>`}`;
  let t = 0;
  if (report.tool_execution !== undefined) {
    const table = tables[t++]!;
    sections.push(
      `<section><h2>${html(table.title)}</h2>${executionCharts(report.tool_execution)}${tableHtml(table)}</section>`,
    );
  }
  if (report.caching !== undefined) {
    const table = tables[t++]!;
    sections.push(
      `<section><h2>${html(table.title)}</h2>${cachingCharts(report.caching)}${tableHtml(table)}</section>`,
    );
  }
  const lb = report.load_balancing;
  if (lb !== undefined) {
    const table = tables[t]!;
    const chart =
      lb.relay === undefined
        ? ''
        : barChart(
            'Share of calls per upstream',
            Object.entries(lb.relay.load_distribution).map(([name, share], i) => ({
              label: name,
              value: share,
              text: percent(share),
              color: ['#2f81f7', '#3fb950', '#d29922', '#bc8cff', '#39c5cf', '#f85149'][i % 6]!,
            })),
          );
    sections.push(`<section><h2>${html(table.title)}</h2>${chart}${tableHtml(table)}</section>`);
  }
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mcp-relay benchmark · ${html(report.target)}</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px auto; max-width: 980px; color: #1f2328; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; }
.meta { color: #59636e; margin: 0 0 8px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; margin-top: 8px; }
th, td { padding: 4px 8px; border-bottom: 1px solid #d1d9e0; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { color: #59636e; font-weight: 600; }
figure { margin: 8px 0; } figcaption { color: #59636e; font-size: 12px; margin-bottom: 2px; }
svg text { font-size: 12px; fill: #1f2328; font-variant-numeric: tabular-nums; }
.note { color: #59636e; font-size: 12px; }
</style>
</head>
<body>
<h1>mcp-relay benchmark</h1>
<p class="meta">${html(report.target)} · tool <code>${html(report.tool)}</code> · ${html(report.date)} · Node ${html(report.environment.node)} on ${html(report.environment.platform)}, ${report.environment.cpus} CPUs${report.options.compare === 'direct' ? ' · compared with the bare MCP SDK client, straight to the upstream' : ''}</p>
${sections.join('\n')}
</body>
</html>
`;
}

/** The four forms written to `dir`: `report.json`, `report.md`, `report.html`, and `report.txt` (the table). */
export async function writeReports(
  report: BenchmarkReport,
  dir: string,
): Promise<{ json: string; markdown: string; html: string; text: string }> {
  await mkdir(dir, { recursive: true });
  const paths = {
    json: join(dir, 'report.json'),
    markdown: join(dir, 'report.md'),
    html: join(dir, 'report.html'),
    text: join(dir, 'report.txt'),
  };
  await Promise.all([
    writeFile(paths.json, `${JSON.stringify(report, null, 2)}\n`),
    writeFile(paths.markdown, renderMarkdown(report)),
    writeFile(paths.html, renderHtml(report)),
    writeFile(paths.text, `${renderTable(report)}\n`),
  ]);
  return paths;
}
