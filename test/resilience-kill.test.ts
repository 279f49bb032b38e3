import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, test } from 'node:test';

import { ProxyManager } from '../src/proxy/manager.js';
import {
  startHttpFixture,
  startInProcessHttpFixture,
  type HttpFixture,
  type InProcessHttpFixture,
} from './fixtures/index.js';

/** Two upstreams in this process and one in a child process that the test SIGKILLs mid-load. */
let steady: InProcessHttpFixture[] = [];
let child: HttpFixture;

before(async () => {
  [child, ...steady] = await Promise.all([
    startHttpFixture({ mode: 'legacy' }),
    startInProcessHttpFixture({ mode: 'legacy' }),
    startInProcessHttpFixture({ mode: 'legacy' }),
  ]);
});

after(async () => {
  await Promise.all([child.stop(), ...steady.map((f) => f.stop())]);
});

test('an upstream process SIGKILLed under load fails no read-only call: its in-flight calls are retried elsewhere and it is taken out', async (t) => {
  await using m = new ProxyManager(
    [
      // `add` is annotated readOnlyHint/idempotentHint; trusted, a call cut mid-flight may run again elsewhere.
      { name: 'doomed', serverUrl: child.url, retryDelay: '1ms', trustAnnotations: true },
      { name: 's1', serverUrl: steady[0]!.url, retryDelay: '1ms', trustAnnotations: true },
      { name: 's2', serverUrl: steady[1]!.url, retryDelay: '1ms', trustAnnotations: true },
    ],
    { strategy: 'round_robin', health: false },
  );
  const add = m.getFactory().createToolProxy('add');
  const ejected = once(m.events, 'ejected');
  let failures = 0;
  let firstFailure: unknown;
  let done = 0;
  let next = 0;
  let doomedBefore = 0;
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      while (next < 800) {
        const i = next++;
        // Distinct arguments, so no answer can come from the cache.
        await add.execute({ a: i, b: 2 }).then(
          (r) => assert.equal((r.structuredContent as { sum: number }).sum, i + 2),
          (error: unknown) => {
            failures++;
            firstFailure ??= error;
          },
        );
        if (++done === 200) {
          doomedBefore = m.health()[0]!.successes;
          child.child.kill('SIGKILL');
        }
      }
    }),
  );
  const [event] = (await ejected) as [{ upstream: string }];
  assert.equal(event.upstream, 'doomed');
  assert.equal(failures, 0, `first failure: ${String(firstFailure)}`);
  const health = m.health();
  t.diagnostic(
    `doomed: ${health[0]!.successes} ok (${doomedBefore} before the kill), ${health[0]!.failures} failed attempts; ` +
      `s1 ${health[1]!.successes}, s2 ${health[2]!.successes}`,
  );
  assert.ok(doomedBefore > 20, 'the doomed upstream was taking its share before the kill');
  // Every call was answered by one of them (plus the cache's own tools/list for the annotations).
  assert.ok(health[1]!.successes + health[2]!.successes + health[0]!.successes >= 800);
});
