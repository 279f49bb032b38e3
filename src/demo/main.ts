/**
 * Runnable demo upstream:
 *
 *   node --import tsx src/demo/main.ts --transport stdio|http [--mode modern|legacy|auto]
 *     [--latency-ms N] [--page-size N] [--name NAME] [--host H] [--port N] [--noise]
 *
 * stdio: `--mode legacy` serves only the 2025 revisions; otherwise both eras. `--noise` writes a
 * non-JSON line before every response. Exits when stdin closes.
 * http: `--mode modern` (default) or `legacy`; prints exactly one line
 * `MCP_DEMO_LISTENING <url>` on stdout once listening.
 * Both exit cleanly (code 0) on SIGTERM and SIGINT.
 */
import { parseArgs } from 'node:util';

import { DEMO_LISTENING_PREFIX, serveDemoHttp, serveDemoStdio } from './serve.js';
import type { DemoOptions } from './server.js';

const USAGE =
  'usage: main.ts --transport stdio|http [--mode modern|legacy|auto] [--latency-ms N] [--page-size N] [--name NAME] [--host H] [--port N] [--noise]';

function fail(message: string): never {
  process.stderr.write(`mcp-relay demo: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function integer(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 0) fail(`--${flag} must be a non-negative integer, got '${value}'`);
  return parsed;
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        transport: { type: 'string' },
        mode: { type: 'string' },
        'latency-ms': { type: 'string' },
        'page-size': { type: 'string' },
        name: { type: 'string' },
        host: { type: 'string' },
        port: { type: 'string' },
        noise: { type: 'boolean', default: false },
      },
      strict: true,
    }));
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }

  const demo: DemoOptions = {};
  const latencyMs = integer('latency-ms', values['latency-ms']);
  if (latencyMs !== undefined) demo.latencyMs = latencyMs;
  const pageSize = integer('page-size', values['page-size']);
  if (pageSize !== undefined) demo.pageSize = pageSize;
  if (values.name !== undefined) demo.name = values.name;
  const onerror = (error: Error): void => {
    process.stderr.write(`mcp-relay demo: ${error.message}\n`);
  };

  // Installed before anything is served: a parent may signal as soon as it reads the listening
  // line, and without a listener SIGTERM's default action would kill us with a signal, not code 0.
  let close: (() => Promise<void>) | undefined;
  let shuttingDown = false;
  const shutdown = async (): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    try {
      await close?.();
    } finally {
      process.exit(0);
    }
  };
  process.once('SIGTERM', () => void shutdown());
  process.once('SIGINT', () => void shutdown());

  if (values.transport === 'stdio') {
    const mode = values.mode ?? 'auto';
    if (mode !== 'auto' && mode !== 'modern' && mode !== 'legacy')
      fail(`--mode must be auto, modern or legacy, got '${mode}'`);
    const handle = await serveDemoStdio({ ...demo, legacyOnly: mode === 'legacy', noise: values.noise, onerror });
    close = () => handle.close();
    // The stdio binding: a server exits promptly once its client closes stdin.
    process.stdin.once('end', () => void shutdown());
    process.stdin.once('close', () => void shutdown());
  } else if (values.transport === 'http') {
    const mode = values.mode ?? 'modern';
    if (mode !== 'modern' && mode !== 'legacy') fail(`--mode must be modern or legacy, got '${mode}'`);
    const port = integer('port', values.port);
    const handle = await serveDemoHttp({
      ...demo,
      mode,
      ...(values.host !== undefined ? { host: values.host } : {}),
      ...(port !== undefined ? { port } : {}),
      onerror,
    });
    close = () => handle.close();
    process.stdout.write(`${DEMO_LISTENING_PREFIX} ${handle.url}\n`);
  } else {
    fail(`--transport must be stdio or http, got '${values.transport ?? ''}'`);
  }
}

await main();
