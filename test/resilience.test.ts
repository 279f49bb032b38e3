import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';

import { isRelayError, RelayErrorCode } from '../src/errors/index.js';
import { ProxyManager } from '../src/proxy/manager.js';
import { BreakerPass, CircuitBreaker, Outcome, RetryBudget, type Sleep } from '../src/resilience/index.js';
import { DEMO_COUNTER_URI, startInProcessHttpFixture, type InProcessHttpFixture } from './fixtures/index.js';
import { advanceableClock, startFront } from './helpers/balance-front.js';

let fixtures: InProcessHttpFixture[] = [];

before(async () => {
  fixtures = await Promise.all([0, 1, 2].map(() => startInProcessHttpFixture({ mode: 'legacy' })));
});

after(async () => {
  await Promise.all(fixtures.map((f) => f.stop()));
});

function fx(i: number): InProcessHttpFixture {
  return fixtures[i]!;
}

function counters(): number {
  return fixtures.reduce((sum, f) => sum + f.state.counter, 0);
}

/** Resolves when fixture `i` has run the counter tool's side effect (it publishes on its bus). */
function counterRan(i: number): Promise<void> {
  return new Promise((resolve) => {
    const stop = fx(i).state.bus.subscribe((event) => {
      if (event.kind === 'resource_updated' && event.uri === DEMO_COUNTER_URI) {
        stop();
        resolve();
      }
    });
  });
}

/** A sleep that records each wait and returns at once: backoff and Retry-After checked exactly, no waiting. */
function recordingSleep(): { sleep: Sleep; waits: number[] } {
  const waits: number[] = [];
  return {
    waits,
    sleep: (ms, signal) => {
      waits.push(ms);
      return signal?.aborted ? Promise.reject(signal.reason as Error) : Promise.resolve();
    },
  };
}

function textOf(result: unknown): string {
  return (result as { content: { text: string }[] }).content[0]!.text;
}

describe('circuit breaker (unit, injected clock)', () => {
  test('opens after consecutive failures, lets exactly one probe through after the cooldown, closes on its success', () => {
    let now = 0;
    const breaker = new CircuitBreaker({
      upstream: 'u',
      failureThreshold: 3,
      halfOpenAfterMs: 1000,
      maxHalfOpenAfterMs: 4000,
      clock: { now: () => now },
    });
    const changes: string[] = [];
    breaker.onStateChange((c) => changes.push(`${c.from}→${c.to}`));
    for (let i = 0; i < 2; i++) breaker.record(breaker.tryPass(), Outcome.Failure);
    breaker.record(breaker.tryPass(), Outcome.Success);
    assert.equal(breaker.failures, 0, 'a success resets the count: failures must be consecutive');
    for (let i = 0; i < 3; i++) breaker.record(breaker.tryPass(), Outcome.Failure);
    assert.equal(breaker.state, 'open');
    assert.equal(breaker.tryPass(), BreakerPass.Deny);
    now = 999;
    assert.equal(breaker.tryPass(), BreakerPass.Deny);
    now = 1000;
    const probe = breaker.tryPass();
    assert.equal(probe, BreakerPass.Probe);
    assert.equal(breaker.state, 'half-open');
    assert.equal(breaker.tryPass(), BreakerPass.Deny, 'one probe at a time');
    breaker.record(probe, Outcome.Failure);
    assert.equal(breaker.state, 'open');
    assert.equal(breaker.openUntil, 3000, 'a failed probe doubles the cooldown');
    now = 3000;
    const second = breaker.tryPass();
    breaker.record(second, Outcome.Success);
    assert.equal(breaker.state, 'closed');
    assert.deepEqual(changes, [
      'closed→open',
      'open→half-open',
      'half-open→open',
      'open→half-open',
      'half-open→closed',
    ]);
  });

  test("tool errors (isError) and JSON-RPC error answers are successes; aborts are neither; late results don't move an open breaker", () => {
    let now = 0;
    const breaker = new CircuitBreaker({
      upstream: 'u',
      failureThreshold: 2,
      halfOpenAfterMs: 10,
      clock: { now: () => now },
    });
    for (let i = 0; i < 10; i++) breaker.record(breaker.tryPass(), Outcome.Success);
    breaker.record(breaker.tryPass(), Outcome.Neutral);
    breaker.record(breaker.tryPass(), Outcome.Failure);
    breaker.record(breaker.tryPass(), Outcome.Neutral);
    assert.equal(breaker.state, 'closed', 'a neutral outcome neither counts nor resets');
    const early = breaker.tryPass();
    breaker.record(breaker.tryPass(), Outcome.Failure);
    assert.equal(breaker.state, 'open');
    breaker.record(early, Outcome.Success);
    assert.equal(breaker.state, 'open', 'a call let through before the breaker opened does not close it');
    now = 10;
    const probe = breaker.tryPass();
    breaker.record(probe, Outcome.Neutral);
    assert.equal(breaker.state, 'open');
    assert.equal(breaker.tryPass(), BreakerPass.Probe, 'an aborted probe leaves the next call free to probe');
  });
});

describe('circuit breaker (real upstream)', () => {
  test('opens on transport failures (not on isError results), fails fast while open, half-opens with a probe and closes', async () => {
    const front = await startFront(fx(0).url);
    const clock = advanceableClock();
    try {
      await using m = new ProxyManager([{ name: 'solo', serverUrl: front.url, maxRetries: 0 }], {
        health: false,
        breaker: { failures: 3, cooldown: '5s' },
        clock,
      });
      const changes: string[] = [];
      m.events.on('breaker', (c) => changes.push(`${c.from}→${c.to}`));
      const factory = m.getFactory();
      for (let i = 0; i < 20; i++) {
        const result = await factory.createToolProxy('fail').execute({ message: 'nope' });
        assert.equal(result.isError, true);
      }
      assert.equal(m.health()[0]!.breaker, 'closed', '20 isError results do not trip it');
      assert.equal(m.health()[0]!.failures, 0);

      await front.kill();
      for (let i = 0; i < 3; i++) {
        await assert.rejects(factory.createToolProxy('echo').execute({ text: 'x' }), (e: unknown) =>
          isRelayError(e, RelayErrorCode.UpstreamUnavailable),
        );
      }
      assert.deepEqual(changes, ['closed→open']);
      const attempts = m.health()[0]!.attempts;
      await assert.rejects(factory.createToolProxy('echo').execute({ text: 'x' }), (e: unknown) => {
        assert.ok(isRelayError(e, RelayErrorCode.UpstreamUnavailable));
        assert.equal(e.notSent, true);
        assert.match(e.message, /breaker open, next probe in \d+ ms/);
        return true;
      });
      assert.equal(m.health()[0]!.attempts, attempts, 'refused without touching the upstream');
      assert.equal(m.health()[0]!.breaker, 'open');

      await front.revive();
      clock.advance(5000);
      const result = await factory.createToolProxy('echo').execute({ text: 'back' });
      assert.equal(textOf(result), 'back');
      assert.deepEqual(changes, ['closed→open', 'open→half-open', 'half-open→closed']);
      assert.equal(m.health()[0]!.breaker, 'closed');
    } finally {
      await front.stop();
    }
  });
});

describe('retries', () => {
  test('a 503 with Retry-After is retried after at least that long, and the side effect runs once', async () => {
    const front = await startFront(fx(0).url);
    const { sleep, waits } = recordingSleep();
    try {
      await using m = new ProxyManager([{ name: 'solo', serverUrl: front.url, maxRetries: 3, retryDelay: '1ms' }], {
        health: false,
        sleep,
      });
      await m.getFactory().validateConnection();
      const received = front.counts.received;
      const before = counters();
      front.refuse(2, '1');
      const result = await m.getFactory().createToolProxy('counter').execute({});
      assert.equal(front.counts.received - received, 3, 'two refusals, then the call');
      assert.equal(counters(), before + 1);
      assert.equal(textOf(result), String(fx(0).state.counter));
      assert.equal(waits.length, 2);
      for (const wait of waits) assert.ok(wait >= 1000, `waited ${wait} ms for a Retry-After of 1 s`);
    } finally {
      await front.stop();
    }
  });

  test('with another upstream, a Retry-After moves the retry there at once and keeps the busy one out until it passes', async () => {
    const front = await startFront(fx(0).url);
    const { sleep, waits } = recordingSleep();
    const clock = advanceableClock();
    try {
      await using m = new ProxyManager(
        [
          { name: 'busy', serverUrl: front.url, priority: 0, retryDelay: '1ms' },
          { name: 'spare', serverUrl: fx(1).url, priority: 1, retryDelay: '1ms' },
        ],
        { strategy: 'failover', health: false, sleep, clock },
      );
      const tool = m.getFactory().createToolProxy('counter');
      await tool.execute({});
      const before = [fx(0).state.counter, fx(1).state.counter];
      front.refuse(1, '30');
      await tool.execute({});
      assert.ok(
        waits.every((w) => w < 1000),
        `no wait for the busy one's Retry-After: ${waits.join(', ')}`,
      );
      const busy = m.health()[0]!;
      assert.ok(busy.retryAfterMs > 29_000, `busy deferred for ${busy.retryAfterMs} ms`);
      for (let i = 0; i < 4; i++) await tool.execute({});
      assert.deepEqual([fx(0).state.counter - before[0]!, fx(1).state.counter - before[1]!], [0, 5]);
      clock.advance(30_000);
      await tool.execute({});
      assert.equal(fx(0).state.counter - before[0]!, 1, 'back once its Retry-After has passed');
    } finally {
      await front.stop();
    }
  });

  test('a call cut after it reached the upstream is not retried when it has side effects, even with a spare upstream', async () => {
    const front = await startFront(fx(0).url);
    fx(0).state.latencyMs = 200;
    try {
      await using m = new ProxyManager(
        [
          { name: 'doomed', serverUrl: front.url, priority: 0, retryDelay: '1ms' },
          { name: 'spare', serverUrl: fx(1).url, priority: 1, retryDelay: '1ms' },
        ],
        { strategy: 'failover', health: false },
      );
      const before = [fx(0).state.counter, fx(1).state.counter];
      const ran = counterRan(0);
      const call = m.getFactory().createToolProxy('counter').execute({});
      await once(fx(0).state.events, 'call');
      await front.kill();
      await assert.rejects(call, (e: unknown) => {
        assert.ok(isRelayError(e, RelayErrorCode.UpstreamUnavailable));
        assert.equal(e.notSent, false);
        return true;
      });
      await ran;
      assert.deepEqual([fx(0).state.counter - before[0]!, fx(1).state.counter - before[1]!], [1, 0]);
    } finally {
      fx(0).state.latencyMs = 0;
      await front.stop();
    }
  });

  test('the retry budget keeps retries under 10 % of calls when an upstream keeps failing', async () => {
    // Unit, on the clock: 100 calls allow 10 retries; the window forgets old calls.
    let now = 0;
    const budget = new RetryBudget({ ratio: 0.1, minRetriesPerSecond: 0, windowMs: 1000, clock: { now: () => now } });
    for (let i = 0; i < 100; i++) budget.recordCall();
    let allowed = 0;
    while (budget.tryWithdraw()) allowed++;
    assert.equal(allowed, 10);
    now = 1000;
    assert.equal(budget.tryWithdraw(), false, 'a new window without calls has no budget');

    // End to end: an upstream that answers 503 to everything.
    const front = await startFront(fx(0).url);
    const { sleep } = recordingSleep();
    try {
      await using m = new ProxyManager([{ name: 'down', serverUrl: front.url, maxRetries: 3, retryDelay: '1ms' }], {
        health: false,
        breaker: false,
        budget: { ratio: 0.1, floor: 0 },
        sleep,
      });
      let retries = 0;
      m.events.on('retry', () => retries++);
      await m.getFactory().validateConnection();
      const received = front.counts.received;
      front.refuse(1_000_000);
      const tool = m.getFactory().createToolProxy('echo');
      for (let i = 0; i < 100; i++) {
        await assert.rejects(tool.execute({ text: 'x' }), (e: unknown) =>
          isRelayError(e, RelayErrorCode.UpstreamUnavailable),
        );
      }
      assert.ok(retries <= 10, `${retries} retries for 100 calls`);
      assert.equal(front.counts.received - received, 100 + retries);
    } finally {
      await front.stop();
    }
  });
});

describe('admission, deadlines and cancellation', () => {
  test('a full pool queues up to its bound, then fails fast with RELAY_POOL_EXHAUSTED naming the pool, the queue and the wait; aborts leave the queue and cancel upstream', async () => {
    await using m = new ProxyManager([{ name: 'tiny', serverUrl: fx(2).url, connectionPoolSize: 1, maxRetries: 0 }], {
      health: false,
      queue: { length: 1, wait: '300ms' },
    });
    const factory = m.getFactory();
    const holder = new AbortController();
    const started = once(fx(2).state.events, 'call');
    const slow = factory.createToolProxy('slow').execute({ ms: 10_000 }, { signal: holder.signal });
    await started;
    const echoes = fx(2).state.calls.get('echo') ?? 0;

    // One caller waits in the queue; the next finds it full.
    const queued = factory.createToolProxy('echo').execute({ text: 'queued' });
    await assert.rejects(factory.createToolProxy('echo').execute({ text: 'overflow' }), (e: unknown) => {
      assert.ok(isRelayError(e, RelayErrorCode.PoolExhausted));
      assert.match(e.message, /pool size 1/);
      assert.match(e.message, /1 queued of at most 1/);
      assert.match(e.message, /waited 0 ms/);
      return true;
    });
    // The queued one gives up after its wait.
    await assert.rejects(queued, (e: unknown) => {
      assert.ok(isRelayError(e, RelayErrorCode.PoolExhausted));
      assert.match(e.message, /no slot became free in time/);
      const waited = Number(/waited (\d+) ms/.exec(e.message)?.[1]);
      assert.ok(waited >= 250 && waited < 2000, `waited ${waited} ms`);
      return true;
    });

    // An aborted caller leaves the queue at once, and the upstream never sees it.
    const leaver = new AbortController();
    const leaving = factory.createToolProxy('echo').execute({ text: 'leave' }, { signal: leaver.signal });
    assert.equal(m.health()[0]!.pool.queued, 1);
    leaver.abort();
    await assert.rejects(leaving, (e: unknown) => isRelayError(e, RelayErrorCode.Aborted));
    assert.equal(m.health()[0]!.pool.queued, 0);

    // An aborted call in flight is cancelled upstream.
    const cancelled = once(fx(2).state.events, 'cancelled');
    holder.abort();
    await assert.rejects(slow, (e: unknown) => isRelayError(e, RelayErrorCode.Aborted));
    await cancelled;
    assert.equal(fx(2).state.calls.get('echo') ?? 0, echoes, 'no queued echo ever reached the upstream');
    assert.equal(m.health()[0]!.breaker, 'closed', 'pool exhaustion and aborts are not upstream failures');
  });

  test('progress resets the deadline, but never past max_total_timeout', async () => {
    await using m = new ProxyManager(
      [{ name: 'p', serverUrl: fx(2).url, timeout: '300ms', maxTotalTimeout: '800ms', maxRetries: 0 }],
      { health: false },
    );
    let progress = 0;
    const started = performance.now();
    await assert.rejects(
      m
        .getFactory()
        .createToolProxy('slow')
        .execute({ ms: 5000, steps: 50 }, { onProgress: () => progress++ }),
      (e: unknown) => {
        assert.ok(isRelayError(e, RelayErrorCode.Timeout));
        assert.match(e.message, /max_total_timeout/);
        return true;
      },
    );
    const elapsed = performance.now() - started;
    assert.ok(progress >= 3, `${progress} progress notifications kept it alive past the 300 ms deadline`);
    assert.ok(elapsed >= 700 && elapsed < 3000, `cut at ${elapsed.toFixed(0)} ms, not after 5 s`);
  });
});

describe('outlier ejection', () => {
  test('consecutive failures eject an upstream for a doubling time, and never more than the allowed share of a group', async () => {
    const fronts = [await startFront(fx(0).url), await startFront(fx(1).url)];
    const clock = advanceableClock();
    try {
      await using m = new ProxyManager(
        [
          { name: 'a', serverUrl: fronts[0]!.url, retryDelay: '1ms' },
          { name: 'b', serverUrl: fronts[1]!.url, retryDelay: '1ms' },
          { name: 'c', serverUrl: fx(2).url, retryDelay: '1ms' },
        ],
        {
          strategy: 'round_robin',
          health: false,
          breaker: false,
          budget: false,
          idempotent: ['add'],
          ejection: { failures: 3, duration: '1s', max: '1m', share: 0.5 },
          clock,
        },
      );
      const ejections: { upstream: string; forMs: number; ejections: number }[] = [];
      m.events.on('ejected', (e) => ejections.push(e));
      const add = m.getFactory().createToolProxy('add');
      let n = 0;
      const calls = async (count: number) => {
        for (let i = 0; i < count; i++) {
          const result = await add.execute({ a: n++, b: 0 });
          assert.equal(result.isError, undefined);
          assert.ok(m.health().filter((h) => h.status === 'ejected').length <= 1, 'at most half of three ejected');
        }
      };
      await calls(3);
      await fronts[0]!.kill();
      await calls(12);
      assert.deepEqual(
        ejections.map((e) => [e.upstream, e.forMs, e.ejections]),
        [['a', 1000, 1]],
      );
      clock.advance(1000);
      await calls(12);
      assert.deepEqual(
        ejections.map((e) => [e.upstream, e.forMs, e.ejections]),
        [
          ['a', 1000, 1],
          ['a', 2000, 2],
        ],
        'ejected again, for twice as long',
      );

      // Both a and b die: only one of the three may be out at a time; the other keeps being tried.
      await fronts[1]!.kill();
      clock.advance(2000);
      await calls(24);
      const health = m.health();
      const out = health.filter((h) => h.status === 'ejected').map((h) => h.name);
      assert.equal(out.length, 1, JSON.stringify(out));
      const kept = health.find((h) => (h.name === 'a' || h.name === 'b') && h.status !== 'ejected')!;
      assert.ok(
        kept.consecutiveFailures >= 3,
        `${kept.name} failed ${kept.consecutiveFailures} times in a row but stays in`,
      );
    } finally {
      await Promise.all(fronts.map((f) => f.stop()));
    }
  });
});

describe('kills under load', () => {
  test('one upstream killed under load: no read-only call fails, and the counter totals prove no call ran twice', async (t) => {
    const front = await startFront(fx(0).url);
    try {
      await using m = new ProxyManager(
        [
          { name: 'victim', serverUrl: front.url, retryDelay: '1ms', trustAnnotations: true },
          { name: 'u1', serverUrl: fx(1).url, retryDelay: '1ms', trustAnnotations: true },
          { name: 'u2', serverUrl: fx(2).url, retryDelay: '1ms', trustAnnotations: true },
        ],
        { strategy: 'round_robin', health: false },
      );
      const factory = m.getFactory();
      const add = factory.createToolProxy('add');
      const counter = factory.createToolProxy('counter');
      const before = counters();
      let retries = 0;
      m.events.on('retry', () => retries++);
      let readOnlyFailures = 0;
      let counterOk = 0;
      let counterFailed = 0;
      let done = 0;
      let next = 0;
      let killed: Promise<void> | undefined;
      await Promise.all(
        Array.from({ length: 12 }, async (_, worker) => {
          while (next < 600) {
            const i = next++;
            if (worker % 2 === 0) {
              // Distinct arguments: `add` is cacheable once its annotation is trusted.
              await add.execute({ a: i, b: 1 }).then(
                (r) => assert.equal((r.structuredContent as { sum: number }).sum, i + 1),
                () => readOnlyFailures++,
              );
            } else {
              await counter.execute({}).then(
                () => counterOk++,
                () => counterFailed++,
              );
            }
            if (++done === 150) killed = front.kill();
          }
        }),
      );
      await killed;
      assert.equal(readOnlyFailures, 0);
      const ran = counters() - before;
      t.diagnostic(`counter: ${counterOk} ok, ${counterFailed} failed, ${ran} increments; retries ${retries}`);
      assert.ok(ran >= counterOk, `${ran} increments for ${counterOk} successful calls`);
      assert.ok(
        ran <= counterOk + counterFailed,
        `${ran} increments for ${counterOk} + ${counterFailed} calls: a call ran twice`,
      );
      assert.ok(counterFailed <= 12, `${counterFailed} counter calls failed: only those in flight at the kill may`);
      const victim = m.health()[0]!;
      assert.ok(victim.status === 'ejected' || victim.breaker !== 'closed', JSON.stringify(victim));
    } finally {
      await front.stop();
    }
  });
});
