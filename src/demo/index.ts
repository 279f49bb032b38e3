import { fileURLToPath } from 'node:url';

export interface DemoUpstreamOptions {
  /** `auto` serves both revisions (the client negotiates); `legacy` serves only the 2025 ones. */
  mode?: 'auto' | 'legacy';
  /** Added latency before every answer, in ms: makes caching and balancing visible. */
  latencyMs?: number;
  /** A name for the upstream. Default `demo`. */
  name?: string;
}

/**
 * The command line that starts the bundled demo MCP server over stdio: the same server the tests
 * use as their fixture. From the built package it runs `dist/demo/main.js` with plain node; from
 * the sources (tests, `tsx`) it runs `main.ts` through tsx.
 */
export function demoCommand(options: DemoUpstreamOptions = {}): { command: string; args: string[] } {
  const fromSource = import.meta.url.endsWith('.ts');
  const entry = fileURLToPath(new URL(fromSource ? './main.ts' : './main.js', import.meta.url));
  const args = [...(fromSource ? ['--import', 'tsx'] : []), entry, '--transport', 'stdio'];
  if (options.mode === 'legacy') args.push('--mode', 'legacy');
  if (options.latencyMs !== undefined) args.push('--latency-ms', String(options.latencyMs));
  if (options.name !== undefined) args.push('--name', options.name);
  return { command: process.execPath, args };
}

/** A proxy config for the bundled demo upstream over stdio, ready for `createProxyFactory`. */
export function demoUpstreamConfig(options: DemoUpstreamOptions = {}): {
  name: string;
  command: string;
  args: string[];
} {
  return { name: options.name ?? 'demo', ...demoCommand(options) };
}

export { serveDemoHttp, serveDemoStdio, type DemoHttpHandle, type DemoHttpOptions } from './serve.js';
export { createDemoServer, createDemoState, type DemoOptions, type DemoState } from './server.js';
