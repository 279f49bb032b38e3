/**
 * Preloaded into a process under soak (`node --expose-gc --import tsx --import <this file> ...`):
 * on SIGUSR2 it runs a full garbage collection and appends `process.memoryUsage()` right after it,
 * as one JSON line, to the file named by `MCP_RELAY_GC_REPORT`. Nothing else about the process
 * changes.
 *
 * Why: under steady load a Node process's RSS saws up and down with V8's major GC cycle (the soak
 * saw 156-235 MiB on one gateway, a period of over a minute), so two raw samples say more about
 * where in that cycle they fell than about a leak. Memory right after a full collection is what
 * the process actually holds, and compares like with like.
 */
import { appendFileSync } from 'node:fs';

const path = process.env['MCP_RELAY_GC_REPORT'];
const collect = (globalThis as { gc?: () => void }).gc;
if (path === undefined || collect === undefined) {
  throw new Error('gc-on-signal: run with --expose-gc and MCP_RELAY_GC_REPORT=<file>');
}
process.on('SIGUSR2', () => {
  collect();
  appendFileSync(path, `${JSON.stringify(process.memoryUsage())}\n`);
});
