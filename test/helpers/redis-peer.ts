/**
 * A second OS process sharing a Redis cache tier with a test: it builds its own factory (its own
 * memory tier and Redis connections) for the upstream and answers commands on stdin, one a line:
 * `call` → calls `add {a:1,b:2}` and prints `hit` or `miss`; `exit` → closes and exits.
 * argv: <upstream url> <redis url> <key prefix>. Prints `ready` once its Redis tier is up.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { createInterface } from 'node:readline';
import { CACHE_CHANNELS } from '../../src/cache/index.js';
import { createProxyFactory } from '../../src/index.js';

const [serverUrl, redisUrl, prefix] = process.argv.slice(2) as [string, string, string];
const up = new Promise<void>((resolve) => {
  const listener = (event: unknown) => {
    if ((event as { state?: string }).state !== 'up') return;
    diagnosticsChannel.unsubscribe(CACHE_CHANNELS.l2, listener);
    resolve();
  };
  diagnosticsChannel.subscribe(CACHE_CHANNELS.l2, listener);
});
const factory = await createProxyFactory({
  serverUrl,
  name: 'demo',
  maxRetries: 0,
  cache: { tools: ['add'], redis: { url: redisUrl, prefix } },
});
await up;
process.stdout.write('ready\n');
const add = factory.createToolProxy('add');
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'call') {
    const before = factory.cache!.stats();
    await add.execute({ a: 1, b: 2 });
    const after = factory.cache!.stats();
    process.stdout.write(after.misses > before.misses ? 'miss\n' : 'hit\n');
  } else if (line === 'exit') {
    break;
  }
}
await factory.close();
// Done: exit even if a Redis connection is still winding down.
process.exit(0);
