/**
 * Preloaded into a process under soak (`node --expose-gc --import tsx --import <this file> ...`):
 * on SIGUSR2 it runs the most thorough garbage collections V8 has and appends
 * `process.memoryUsage()` right after them, with V8's own count of the heap pages it holds, as one
 * JSON line, to the file named by `MCP_RELAY_GC_REPORT`. Nothing else about the process changes.
 *
 * Why: under steady load a Node process's RSS saws up and down with V8's major GC cycle (the soak
 * saw 156-235 MiB on one gateway, a period of over a minute), so two raw samples say more about
 * where in that cycle they fell than about a leak. Memory right after a collection is what the
 * process actually holds, and compares like with like.
 *
 * Why a plain full collection and then the "last resort" one, the one V8 runs under memory
 * pressure: after a plain full collection Node 24 keeps the pages it freed, and the largest young
 * generation it has reached, as resident memory. In a trial at 1,100 calls/s its post-GC RSS went
 * 350 → 390 MiB in two minutes while V8's own count of the pages it uses stayed at 160 MiB and the
 * heap in use at 47-51 MiB: the growth was all in 256 KiB mappings at V8's addresses that V8 no
 * longer counted, a high-water mark that rose with each peak of the old space (and higher on a busy
 * machine, whose collector falls behind). The last-resort collection hands those back: 154-156 MiB
 * throughout the same trial. Node 20's V8 does not collect on that call alone (the heap in use
 * went on climbing between readings, 108 → 114 MiB a second apart), hence the plain one first;
 * with both, Node 20 read 175-178 MiB throughout. A leak, in the JS heap or outside it, survives
 * both collections all the same.
 */
import { appendFileSync } from 'node:fs';
import { getHeapStatistics } from 'node:v8';

const path = process.env['MCP_RELAY_GC_REPORT'];
const collect = (globalThis as { gc?: (options?: object) => void }).gc;
if (path === undefined || collect === undefined) {
  throw new Error('gc-on-signal: run with --expose-gc and MCP_RELAY_GC_REPORT=<file>');
}
process.on('SIGUSR2', () => {
  collect();
  collect({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  const heapPhysical = getHeapStatistics().total_physical_size;
  appendFileSync(path, `${JSON.stringify({ ...process.memoryUsage(), heapPhysical })}\n`);
});
