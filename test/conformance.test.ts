/**
 * The official MCP conformance suite through the gateway: scripts/conformance.ts runs it (pinned,
 * under Node 24 fetched by npx) directly against the scenario upstream and through the gateway, for
 * 2025-11-25 and 2026-07-28, and exits non-zero when a scenario that passes directly does not pass
 * through the gateway, or when the suite cannot run at all (no Node 24 from npx: that fails here too,
 * it is never skipped).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT = join(ROOT, 'test-artifacts/conformance');
/** Within the runner's per-file timeout (120 s); the script stops everything it started by then. */
const DEADLINE_MS = 105_000;

interface Row {
  revision: string;
  scenario: string;
  verdict: 'pass' | 'optional' | 'regression' | 'n/a';
}

test(
  'every scenario the upstream passes directly passes through the gateway (2025-11-25 and 2026-07-28)',
  { timeout: DEADLINE_MS + 10_000 },
  async () => {
    const script = join(ROOT, 'scripts/conformance.ts');
    const args = ['--import', 'tsx', script, '--out', OUT, '--deadline-ms', String(DEADLINE_MS)];
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), DEADLINE_MS + 5000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    clearTimeout(timer);

    assert.notEqual(code, 2, `the conformance suite could not run:\n${output}`);
    assert.equal(code, 0, `scenarios regress through the gateway:\n${output}`);

    const { rows } = JSON.parse(await readFile(join(OUT, 'summary.json'), 'utf8')) as { rows: Row[] };
    for (const revision of ['2025-11-25', '2026-07-28']) {
      const compared = rows.filter((r) => r.revision === revision && r.verdict !== 'n/a');
      // A vacuous comparison (the upstream passing nothing) would prove nothing.
      assert.ok(compared.length >= 25, `${revision}: only ${compared.length} scenarios passed directly\n${output}`);
      assert.deepEqual(
        compared.filter((r) => r.verdict === 'regression').map((r) => r.scenario),
        [],
        `${revision}: regressions through the gateway\n${output}`,
      );
    }
    // The scenarios each revision requires: all of them compared (i.e. passing directly).
    for (const [revision, scenario] of [
      ['2025-11-25', 'server-initialize'],
      ['2025-11-25', 'tools-call-sampling'],
      ['2025-11-25', 'resources-subscribe'],
      ['2026-07-28', 'server-stateless'],
      ['2026-07-28', 'input-required-result-basic-elicitation'],
      ['2026-07-28', 'caching'],
    ] as const) {
      const row = rows.find((r) => r.revision === revision && r.scenario === scenario);
      assert.equal(row?.verdict, 'pass', `${revision} ${scenario}: ${row?.verdict ?? 'not run'}\n${output}`);
    }
  },
);
