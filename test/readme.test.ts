import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
const blocks = [...readme.matchAll(/^### (.+)$|^```ts\n([\s\S]*?)^```$/gm)];

/** The package's own specifiers, pointed at the sources so the examples run without a build. */
function localImports(code: string): string {
  return code
    .replaceAll(`from 'mcp-relay'`, `from '${root}src/index.js'`)
    .replaceAll(`from 'mcp-relay/demo'`, `from '${root}src/demo/index.js'`);
}

const examples: { title: string; code: string }[] = [];
let title = 'README';
for (const match of blocks) {
  if (match[1] !== undefined) title = match[1];
  else examples.push({ title, code: match[2]! });
}

describe('README examples run as written', () => {
  test('the README has TypeScript examples', () => {
    assert.ok(examples.length >= 5, `found ${examples.length}`);
  });

  test("every example typechecks under the project's strict settings", async () => {
    const dir = `${root}test-artifacts/readme-types`;
    await mkdir(dir, { recursive: true });
    const files = await Promise.all(
      examples.map(async (example, index) => {
        const file = `${dir}/example-${index + 1}.ts`;
        await writeFile(file, localImports(example.code) + '\nexport {};\n');
        return file;
      }),
    );
    await writeFile(
      `${dir}/tsconfig.json`,
      JSON.stringify({
        extends: `${root}tsconfig.json`,
        compilerOptions: { noEmit: true, rootDir: root },
        include: files,
      }),
    );
    const tsc = `${root}node_modules/typescript/bin/tsc`;
    const result = await run(process.execPath, [tsc, '-p', `${dir}/tsconfig.json`], {
      cwd: root,
      timeout: 120_000,
    }).then(
      () => ({ ok: true, output: '' }),
      (error: { stdout?: string; message?: string }) => ({
        ok: false,
        output: error.stdout ?? error.message ?? 'tsc failed',
      }),
    );
    assert.ok(result.ok, result.output);
  });

  for (const [index, example] of examples.entries()) {
    const expected = [...example.code.matchAll(/\/\/ prints: (.+)$/gm)].map((m) => m[1]!.trim());
    test(`"${example.title}" exits 0 and prints ${expected.join(' / ') || 'nothing it promises'}`, async () => {
      assert.ok(expected.length > 0, 'every example states what it prints');
      const dir = `${root}test-artifacts/readme`;
      await mkdir(dir, { recursive: true });
      const file = `${dir}/example-${index + 1}.ts`;
      await writeFile(file, localImports(example.code));
      const { stdout } = await run(process.execPath, ['--import', 'tsx', file], { cwd: root, timeout: 60_000 });
      const lines = stdout.trim().split('\n');
      assert.deepEqual(lines, expected);
    });
  }
});
