/**
 * Balancing and resilience.
 *
 * - Cost of one balancer pick (ns): the `fastest` strategy's pick + outcome record over three
 *   upstreams, against `round_robin`'s and a bare `Math.random()` index (the floor).
 * - P99 with one slow upstream: three demo upstreams at 5, 5 and 50 ms (child processes), a closed
 *   loop at C=8 through `fastest` and through `round_robin`; the budget is DESIGN.md's "≥ 90 % of
 *   calls to the fast ones" (measured over the first 2 s), and the P99 ratio is reported.
 * - Completed-call rate with one upstream killed every 5 s: three upstreams behind fronts, one of
 *   them killed (connections reset, then refused) and revived in turn every 5 s, read-only calls at
 *   C=8; the budget is zero failed calls, the rate is reported against the same run with no kills.
 *
 * Also the seed's `benchmark_load_balancing`, reproduced: its loop, its result shape.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

import { Balancer, createStrategy, HealthTracker, Member } from '../../src/balance/index.js';
import { ProxyManager, type ProxyManagerOptions } from '../../src/proxy/manager.js';
import { startHttpFixture } from '../../test/fixtures/index.js';
import {
  atLeast,
  closedLoop,
  median,
  opsPerSec,
  ratio,
  type BenchSuite,
  type BudgetResult,
  type LoadResult,
  type ResultTable,
} from '../lib/index.js';
import { forwardRequest } from '../../test/helpers/forwarder.js';

/** What the seed's `MCPProxyBenchmark.benchmark_load_balancing` returns, with its own key names. */
export interface LoadBalancingReport {
  total_operations: number;
  operations_per_second: number;
  /** Operations served, by server URL. */
  server_usage: Record<string, number>;
  /** Share of operations, by server URL. */
  load_distribution: Record<string, number>;
}

/**
 * The seed's `benchmark_load_balancing(server_configs, tool_name, test_data, duration_seconds)`,
 * on a {@link ProxyManager}: one call at a time for `durationMs`, errors skipped as the seed does.
 * The seed read the server of each call from `factory.config.server_url` because its manager chose
 * one server per factory; ours chooses per call, so usage comes from the manager's per-upstream
 * count of answered calls.
 */
export async function benchmarkLoadBalancing(
  manager: ProxyManager,
  toolName: string,
  testData: readonly Record<string, unknown>[],
  durationMs: number,
  group?: string,
): Promise<LoadBalancingReport> {
  const urlOf = new Map(
    manager.upstreams.map((u) => [u.name, u.transport.kind === 'http' ? u.transport.url : u.name] as const),
  );
  const before = new Map(manager.health().map((h) => [h.name, h.successes]));
  const tool = manager.getFactory(group).createToolProxy(toolName);
  const start = performance.now();
  const end = start + durationMs;
  let operations = 0;
  while (performance.now() < end) {
    try {
      await tool.execute(testData[operations % testData.length] ?? {});
      operations++;
    } catch {
      // Continue on errors, as the seed does.
    }
  }
  const elapsed = (performance.now() - start) / 1000;
  const usage: Record<string, number> = {};
  for (const h of manager.health()) {
    const served = h.successes - (before.get(h.name) ?? 0);
    if (served > 0 || !(urlOf.get(h.name)! in usage)) usage[urlOf.get(h.name)!] = served;
  }
  const distribution: Record<string, number> = {};
  for (const [url, count] of Object.entries(usage)) distribution[url] = operations === 0 ? 0 : count / operations;
  return {
    total_operations: operations,
    operations_per_second: operations / elapsed,
    server_usage: usage,
    load_distribution: distribution,
  };
}

const PICK_ITERATIONS = 1_000_000;

/** ns per call of a synchronous function: warm it, then time a tight loop. */
function nsPerCall(fn: () => void): number {
  for (let i = 0; i < 100_000; i++) fn();
  const started = process.hrtime.bigint();
  for (let i = 0; i < PICK_ITERATIONS; i++) fn();
  return Number(process.hrtime.bigint() - started) / PICK_ITERATIONS;
}

/** The balancer alone, over three in-memory members: no network, so the pick's own cost shows. */
/** The run with the median throughput. */
function medianRun(runs: readonly LoadResult[]): LoadResult {
  const sorted = [...runs].sort((a, b) => a.opsPerSec - b.opsPerSec);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

function pct(value: number): string {
  return `${(value * 100).toFixed(1)} %`;
}

function pickBench(strategy: 'fastest' | 'round_robin'): () => void {
  const clock = { now: () => performance.now() };
  const upstream = { request: () => Promise.resolve(undefined), info: { era: 'modern' } } as never;
  const members = [0, 1, 2].map(
    (index) =>
      new Member({
        name: `u${index}`,
        index,
        upstream,
        weight: 1,
        priority: 0,
        tags: {},
        gate: undefined,
        decayMs: 10_000,
        now: clock.now(),
      }),
  );
  const tracker = new HealthTracker(
    members,
    { consecutiveFailures: 5, baseEjectionMs: 5000, maxEjectionMs: 300_000, maxEjectedShare: 0.5 },
    undefined,
    clock,
    undefined,
  );
  const balancer = new Balancer({
    name: 'bench',
    members,
    strategy: createStrategy(strategy, { random: Math.random, size: 3 }),
    tracker,
    clock,
  });
  let i = 0;
  return () => {
    const member = balancer.pick(undefined)!;
    const started = balancer.begin(member);
    balancer.end(member, started - (i++ % 7) - 1, balancer.lastPass, 0);
  };
}

/** A TCP-level front that can be killed (sockets destroyed, listener closed) and revived. */
async function killableFront(target: string) {
  const to = new URL(target);
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    forwardRequest(req, res, to);
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let up = true;
  return {
    url: `http://127.0.0.1:${port}${to.pathname}`,
    async kill() {
      if (!up) return;
      up = false;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
    async revive() {
      if (up) return;
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
      up = true;
    },
  };
}

export const suite: BenchSuite = {
  name: 'balance',
  description:
    'Balancer pick cost, fastest vs round_robin P99 with one slow upstream, calls completed while upstreams die.',
  async run(ctx) {
    const tables: ResultTable[] = [];
    const budgets: BudgetResult[] = [];
    const notes: string[] = [];

    // 1. Pick cost: a synchronous loop (no await per call, which alone costs ~100 ns), median of repeats.
    ctx.log('balance: pick cost');
    const floorRuns: number[] = [];
    const fastestRuns: number[] = [];
    const rrRuns: number[] = [];
    let sink = 0;
    const floor = () => {
      sink += Math.floor(Math.random() * 3);
    };
    const fastest = pickBench('fastest');
    const roundRobin = pickBench('round_robin');
    for (let r = 0; r < ctx.repeats; r++) {
      for (const [fn, runs] of [
        [floor, floorRuns],
        [fastest, fastestRuns],
        [roundRobin, rrRuns],
      ] as const) {
        runs.push(nsPerCall(fn));
      }
    }
    if (sink < 0) ctx.log(String(sink));
    const pickNs = { floor: median(floorRuns), fastest: median(fastestRuns), roundRobin: median(rrRuns) };
    tables.push({
      title: 'Cost of one balancer pick (pick + outcome record, three upstreams)',
      columns: ['strategy', 'ns per call', '÷ Math.random index'],
      rows: [
        ['Math.random() index (floor)', pickNs.floor.toFixed(0), ratio(1)],
        ['round_robin', pickNs.roundRobin.toFixed(0), ratio(pickNs.roundRobin / pickNs.floor)],
        ['fastest (P2C peak-EWMA)', pickNs.fastest.toFixed(0), ratio(pickNs.fastest / pickNs.floor)],
      ],
      note: 'ns per pick + record in a tight synchronous loop, median of the repeats; in-memory upstreams, no I/O',
    });

    // 2. fastest vs round_robin with one slow upstream.
    ctx.log('balance: starting three demo upstreams (5, 5, 50 ms)');
    const fixtures = await Promise.all([5, 5, 50].map((latencyMs) => startHttpFixture({ mode: 'legacy', latencyMs })));
    for (const f of fixtures) ctx.defer(() => f.stop());
    const configs = fixtures.map((f, i) => ({ name: `u${i}`, serverUrl: f.url, connectionPoolSize: 16 }));
    const windowMs = ctx.durationMs ?? 2000;
    // The demo servers run under tsx and are several times slower until their JIT settles; warm them
    // (unmeasured) so that the balancer, which starts each run knowing nothing, compares servers, not JITs.
    {
      const warm = new ProxyManager(configs, { strategy: 'round_robin', health: false });
      const tool = warm.getFactory().createToolProxy('add');
      let n = 0;
      await closedLoop(
        async () => {
          await tool.execute({ a: n++, b: 0 });
        },
        { concurrency: 8, durationMs: 1500 },
      );
      await warm.close();
    }
    const concurrencies = [1, 8] as const;
    const figures = new Map<string, { p50: number[]; p99: number[]; share: number[] }>();
    for (const concurrency of concurrencies) {
      for (const strategy of ['fastest', 'round_robin'] as const) {
        figures.set(`${strategy}@${concurrency}`, { p50: [], p99: [], share: [] });
      }
    }
    for (let r = 0; r < ctx.repeats; r++) {
      const order = r % 2 === 0 ? (['fastest', 'round_robin'] as const) : (['round_robin', 'fastest'] as const);
      for (const concurrency of concurrencies) {
        for (const strategy of order) {
          const manager = new ProxyManager(configs, { strategy, health: false });
          const tool = manager.getFactory().createToolProxy('add');
          await manager.getFactory().validateConnection();
          const before = manager.health().map((h) => h.successes);
          let n = 0;
          const load = await closedLoop(
            async () => {
              const a = n++;
              const result = await tool.execute({ a, b: 2 });
              if ((result.structuredContent as { sum?: number } | undefined)?.sum !== a + 2) {
                throw new Error('wrong sum');
              }
            },
            { concurrency, durationMs: windowMs },
          );
          const served = manager.health().map((h, i) => h.successes - before[i]!);
          const total = served.reduce((sum, count) => sum + count, 0);
          const entry = figures.get(`${strategy}@${concurrency}`)!;
          entry.p50.push(load.latency.p50);
          entry.p99.push(load.latency.p99);
          entry.share.push((served[0]! + served[1]!) / total);
          await manager.close();
        }
      }
    }
    const rows: string[][] = [];
    for (const concurrency of concurrencies) {
      const rr = figures.get(`round_robin@${concurrency}`)!;
      const fa = figures.get(`fastest@${concurrency}`)!;
      rows.push([
        `C=${concurrency} round_robin`,
        median(rr.p50).toFixed(1),
        median(rr.p99).toFixed(1),
        pct(median(rr.share)),
      ]);
      rows.push([
        `C=${concurrency} fastest`,
        median(fa.p50).toFixed(1),
        median(fa.p99).toFixed(1),
        pct(median(fa.share)),
      ]);
      rows.push([
        `C=${concurrency} fastest ÷ round_robin`,
        ratio(median(fa.p50) / median(rr.p50)),
        ratio(median(fa.p99) / median(rr.p99)),
        '',
      ]);
      budgets.push(
        atLeast(`C=${concurrency}: fastest's share of calls to the fast upstreams, first 2 s`, median(fa.share), 0.9),
      );
    }
    tables.push({
      title: 'One upstream 10× slower (5, 5, 50 ms), add',
      columns: ['run', 'P50 ms', 'P99 ms', 'share to the fast two'],
      rows,
      note: `a ${windowMs} ms window from a cold balancer (no latency known; servers warmed), median of ${ctx.repeats}`,
    });
    notes.push(
      "P99 of fastest stays near the slow server's latency whenever it sends it more than 1 % of calls: peak-EWMA decays a silent server's estimate so that it is tried again (that is how one that got faster is found), at about one call per decay time × ln(latency ratio).",
      'At C=8 the cost latency × (outstanding + 1) sends the slow server a call whenever the fast ones hold more calls than the latency ratio; on a CPU-starved machine the fast servers measure several times their nominal 5 ms, the ratio shrinks, and so does the fast share.',
    );

    // 3. Killing upstreams under load.
    ctx.log('balance: killing one upstream every 5 s');
    const fronts = await Promise.all(fixtures.map((f) => killableFront(f.url)));
    const frontConfigs = fronts.map((f, i) => ({
      name: `k${i}`,
      serverUrl: f.url,
      connectionPoolSize: 16,
      retryDelay: '5ms',
      // `add` is annotated read-only: trusted, it may be retried after a mid-flight failure.
      trustAnnotations: true,
    }));
    const options: ProxyManagerOptions = { strategy: 'fastest', health: { interval: '1s', timeout: '500ms' } };
    for (const f of fixtures) await setLatency(f.url, 5);
    const killWindowMs = Math.max(windowMs, 10_000);
    const runLoad = async (kill: boolean) => {
      const manager = new ProxyManager(frontConfigs, options);
      const tool = manager.getFactory().createToolProxy('add');
      await manager.getFactory().validateConnection();
      let n = 0;
      let victim = 0;
      const timers: NodeJS.Timeout[] = [];
      const killOne = () => {
        const dead = fronts[victim++ % fronts.length]!;
        void dead.kill().then(() => {
          timers.push(setTimeout(() => void dead.revive(), 2500));
        });
      };
      if (kill) {
        timers.push(setTimeout(killOne, 500));
        timers.push(setInterval(killOne, 5000));
      }
      try {
        return await closedLoop(
          async () => {
            // Distinct arguments: `add` is cacheable once its annotation is trusted, and a hit proves nothing here.
            const a = n++;
            const result = await tool.execute({ a, b: 2 });
            if ((result.structuredContent as { sum?: number } | undefined)?.sum !== a + 2) throw new Error('wrong sum');
          },
          { concurrency: 8, durationMs: killWindowMs },
        );
      } finally {
        for (const timer of timers) clearTimeout(timer);
        await Promise.all(fronts.map((f) => f.revive()));
        await manager.close();
      }
    };
    const calmRuns: LoadResult[] = [];
    const killedRuns: LoadResult[] = [];
    const rateRatios: number[] = [];
    for (let r = 0; r < ctx.repeats; r++) {
      // Alternate which goes first: the machine's load drifts between two back-to-back runs.
      const [first, second] = r % 2 === 0 ? [false, true] : [true, false];
      const a = await runLoad(first);
      const b = await runLoad(second);
      const calmRun = first ? b : a;
      const killedRun = first ? a : b;
      calmRuns.push(calmRun);
      killedRuns.push(killedRun);
      rateRatios.push(killedRun.opsPerSec / calmRun.opsPerSec);
    }
    const calm = medianRun(calmRuns);
    const killed = medianRun(killedRuns);
    const failed = killedRuns.reduce((sum, run) => sum + run.errors, 0);
    const rateRatio = median(rateRatios);
    tables.push({
      title: `Read-only calls at C=8 for ${killWindowMs / 1000} s, an upstream killed every 5 s (revived 2.5 s later)`,
      columns: ['run', 'completed ops/s', 'failed calls', 'P99 ms'],
      rows: [
        ['no kills (baseline)', opsPerSec(calm.opsPerSec), String(calm.errors), calm.latency.p99.toFixed(1)],
        ['a kill every 5 s', opsPerSec(killed.opsPerSec), String(failed), killed.latency.p99.toFixed(1)],
        ['with kills ÷ without', ratio(rateRatio), '', ''],
      ],
      note: `median of ${ctx.repeats} pairs of runs; failed calls summed over all killed runs`,
    });
    budgets.push(
      atLeast(
        'calls completed with kills ÷ without (and zero failed calls)',
        rateRatio,
        0.5,
        failed > 0 ? `${failed} failed calls: ${killedRuns.find((run) => run.errors > 0)?.firstError}` : undefined,
      ),
    );

    // 4. The seed's benchmark_load_balancing, reproduced.
    ctx.log("balance: the seed's benchmark_load_balancing");
    const seedManager = new ProxyManager(configs, { strategy: 'round_robin', health: false });
    ctx.defer(() => seedManager.close());
    const seed = await benchmarkLoadBalancing(
      seedManager,
      'echo',
      Array.from({ length: 10 }, (_, i) => ({ text: `sample_${i}` })),
      Math.min(windowMs, 2000),
    );
    tables.push({
      title: "The seed's benchmark_load_balancing (round_robin, one call at a time, echo)",
      columns: ['server', 'operations', 'share'],
      rows: Object.entries(seed.server_usage).map(([url, count]) => [
        url,
        String(count),
        `${((seed.load_distribution[url] ?? 0) * 100).toFixed(1)} %`,
      ]),
      note: `${seed.total_operations} operations, ${opsPerSec(seed.operations_per_second)} ops/s (the upstreams' latencies are 5, 5 and 50 ms, so round robin is paced by the slow one)`,
    });
    notes.push(
      'Pick cost is the balancer alone (pick + outcome record): the P2C draw, two peak-EWMA reads (one exp() each) and the breaker check.',
    );
    return {
      baseline:
        'pick cost against a bare Math.random() index; fastest against round_robin on the same three upstreams; the kill run against the same load with no kills',
      tables,
      budgets,
      notes,
      data: { pickNs, figures: Object.fromEntries(figures), calm, killed, seed },
    };
  },
};

async function setLatency(url: string, ms: number): Promise<void> {
  const manager = new ProxyManager([{ name: 'x', serverUrl: url }], { health: false });
  try {
    await manager.getFactory().createToolProxy('set_latency').execute({ ms });
  } finally {
    await manager.close();
  }
}
