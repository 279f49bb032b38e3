/**
 * A real client through the gateway: the MCP Inspector's CLI mode (pinned; it needs Node >= 22, so
 * it runs under Node 24 fetched by npx) lists and calls tools, reads a resource and gets a prompt
 * through a gateway fronting the demo upstream, on both revisions. Without Node 24 from npx the test
 * fails; it is never skipped. The Inspector keeps a catalog and secrets under $HOME: it gets a HOME
 * of its own under test-artifacts/, and npm keeps its usual cache.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { IncomingMessage } from 'node:http';
import { mkdir, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { resolveProxyConfig } from '../src/config/index.js';
import { startGateway, type Gateway } from '../src/gateway/index.js';
import { DEMO_README_TEXT, DEMO_README_URI, stdioFixture } from './fixtures/index.js';

const INSPECTOR_PACKAGE = '@modelcontextprotocol/inspector@2.12.0';
const NODE_PACKAGE = 'node@24.21.0';
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const INSPECTOR_HOME = join(ROOT, 'test-artifacts/inspector-home');
/** The first run may download Node and the Inspector. */
const FIRST_RUN_TIMEOUT_MS = 100_000;
const RUN_TIMEOUT_MS = 45_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `npx -y -p node@… -p inspector@… -- mcp-inspector <args>`, stopped (its process group) at the deadline. */
function npx(args: readonly string[], timeoutMs: number): Promise<Run> {
  const child = spawn('npx', ['-y', '-p', NODE_PACKAGE, '-p', INSPECTOR_PACKAGE, '--', ...args], {
    cwd: INSPECTOR_HOME,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: {
      ...process.env,
      HOME: INSPECTOR_HOME,
      npm_config_cache: process.env['npm_config_cache'] ?? join(homedir(), '.npm'),
      npm_config_update_notifier: 'false',
      npm_config_fund: 'false',
      npm_config_loglevel: 'error',
    },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const kill = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // already gone
    }
  };
  const timer = setTimeout(() => {
    stderr += `\n[killed after ${timeoutMs} ms]`;
    kill('SIGKILL');
  }, timeoutMs);
  return new Promise((resolve) => {
    child.once('exit', (code) => {
      clearTimeout(timer);
      kill('SIGKILL');
      resolve({ code, stdout, stderr });
    });
  });
}

let gateway: Gateway;
/** The `MCP-Protocol-Version` header of every request the gateway received: proof of the revision spoken. */
const versionsSeen = new Set<string>();

before(async () => {
  await rm(INSPECTOR_HOME, { recursive: true, force: true });
  await mkdir(INSPECTOR_HOME, { recursive: true });
  gateway = await startGateway({ port: 0, upstreams: [resolveProxyConfig({ name: 'demo', ...stdioFixture() })] });
  gateway.server.prependListener('request', (req: IncomingMessage) => {
    const version = req.headers['mcp-protocol-version'];
    if (typeof version === 'string') versionsSeen.add(version);
  });
  const version = await npx(['node', '--version'], FIRST_RUN_TIMEOUT_MS);
  assert.equal(
    version.code,
    0,
    `cannot run the Inspector: 'npx -y -p ${NODE_PACKAGE} -p ${INSPECTOR_PACKAGE}' failed; it needs Node >= 22 from the npm registry\n${version.stdout}${version.stderr}`,
  );
  assert.match(version.stdout, /^v24\./m);
});

after(async () => {
  await gateway?.close();
});

for (const era of ['legacy', 'modern'] as const) {
  describe(`the Inspector CLI through the gateway (${era === 'legacy' ? '2025-11-25' : '2026-07-28'})`, () => {
    before(() => versionsSeen.clear());

    async function inspect(...args: string[]): Promise<Record<string, unknown>> {
      const run = await npx(
        [
          'mcp-inspector',
          '--cli',
          `${gateway.url}/mcp`,
          '--transport',
          'http',
          '--protocol-era',
          era,
          '--format',
          'json',
          '--quiet',
          ...args,
        ],
        RUN_TIMEOUT_MS,
      );
      assert.equal(run.code, 0, `mcp-inspector ${args.join(' ')} exited ${run.code}\n${run.stdout}\n${run.stderr}`);
      const output = JSON.parse(run.stdout) as { result?: Record<string, unknown> };
      assert.ok(output.result, `no result in ${run.stdout}`);
      return output.result;
    }

    test('tools/list lists the demo tools with their schemas', async () => {
      const result = await inspect('--method', 'tools/list');
      const tools = result['tools'] as { name: string; inputSchema: { properties?: Record<string, unknown> } }[];
      const names = tools.map((t) => t.name);
      for (const name of ['echo', 'add', 'counter', 'slow'])
        assert.ok(names.includes(name), `${name} in ${names.join(', ')}`);
      assert.deepEqual(Object.keys(tools.find((t) => t.name === 'echo')!.inputSchema.properties ?? {}), ['text']);
    });

    test('tools/call echo returns its text', async () => {
      const result = await inspect(
        '--method',
        'tools/call',
        '--tool-name',
        'echo',
        '--tool-arg',
        `text=hello from ${era}`,
      );
      assert.deepEqual(result['content'], [{ type: 'text', text: `hello from ${era}` }]);
      assert.notEqual(result['isError'], true);
    });

    test('tools/call add returns structured content', async () => {
      const result = await inspect(
        '--method',
        'tools/call',
        '--tool-name',
        'add',
        '--tool-args-json',
        '{"a":2,"b":40}',
      );
      assert.deepEqual(result['structuredContent'], { sum: 42 });
    });

    test('resources/read demo://static/readme returns the readme', async () => {
      const result = await inspect('--method', 'resources/read', '--uri', DEMO_README_URI);
      assert.deepEqual(result['contents'], [{ uri: DEMO_README_URI, mimeType: 'text/plain', text: DEMO_README_TEXT }]);
    });

    test('prompts/get greet renders its argument', async () => {
      const result = await inspect('--method', 'prompts/get', '--prompt-name', 'greet', '--prompt-args', 'name=Ada');
      assert.deepEqual(result['messages'], [
        { role: 'user', content: { type: 'text', text: 'Please greet Ada warmly.' } },
      ]);
    });

    test(`the Inspector spoke ${era === 'legacy' ? '2025-11-25' : '2026-07-28'} to the gateway`, () => {
      const seen = [...versionsSeen].join(', ');
      if (era === 'legacy') {
        assert.ok(versionsSeen.has('2025-11-25'), seen);
        assert.ok(!versionsSeen.has('2026-07-28'), seen);
      } else {
        assert.deepEqual([...versionsSeen], ['2026-07-28']);
      }
    });
  });
}
