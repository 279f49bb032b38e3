/**
 * What a tenant's rate-limit check costs: the replica's own token bucket (in memory, synchronous)
 * against the bucket shared by all replicas in Redis (one EVALSHA of the bucket script per
 * request, see src/gateway/rate-limit.ts), in the same run, on the same TenantPolicy.
 *
 * Budget: a tenant without `rate_limit` must not pay for the shared buckets being configured:
 * its admit with a GlobalRateLimiter present runs at ≥ 0.8 × the rate without one (it stays
 * synchronous and never asks Redis: the code path is the same, and the 0.8 leaves room for this
 * shared machine's ±15 % on a ~25 ns operation).
 *
 * Redis: 127.0.0.1:6379 (or REDIS_URL) under a prefix of this run, removed afterwards.
 */
import { randomUUID } from 'node:crypto';

import { createClient } from 'redis';

import { resolveRedisSection } from '../../src/config/index.js';
import { GlobalRateLimiter, TenantPolicy, type Caller } from '../../src/gateway/index.js';
import {
  atLeast,
  closedLoop,
  duration,
  median,
  opsPerSec,
  ratio,
  timeIt,
  type BenchSuite,
  type ResultTable,
} from '../lib/index.js';

/** Checks per synchronous measurement window, and windows per measurement. */
const LOCAL_CHECKS = 500_000;
const WINDOWS = 7;
const REDIS_WINDOW_MS = 2000;
const LIMIT = 0.8;
/** So high that no check is ever refused: the cost measured is the check, not the refusal. */
const UNLIMITED = { requestsPerSecond: 1e12, burst: 1e12 };

const limited: Caller = { tenant: 'limited', identity: 'bench' };
const free: Caller = { tenant: 'free', identity: 'bench' };

/**
 * ns per check of a synchronous admit + release: the fastest of `WINDOWS` windows of `checks`
 * calls (a neighbour on this shared machine only ever slows a window down).
 */
function syncNsPerCheck(policy: TenantPolicy, caller: Caller, checks: number): number {
  for (let i = 0; i < 10_000; i++) (policy.admit(caller) as () => void)();
  let best = Infinity;
  for (let w = 0; w < WINDOWS; w++) {
    const started = performance.now();
    for (let i = 0; i < checks; i++) (policy.admit(caller) as () => void)();
    best = Math.min(best, ((performance.now() - started) * 1e6) / checks);
  }
  return best;
}

export const suite: BenchSuite = {
  name: 'ratelimit',
  description: "A tenant's rate-limit check: the replica's own bucket against the bucket shared in Redis.",
  async run(ctx) {
    const url = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
    const prefix = `mcp-relay-bench:${randomUUID()}:`;
    const tenants = { limited: { rateLimit: UNLIMITED }, free: {} };
    const limiter = new GlobalRateLimiter({ redis: resolveRedisSection({ url, prefix }, prefix) });
    ctx.defer(async () => {
      await limiter.close();
      const client = createClient({ url });
      await client.connect();
      for await (const keys of client.scanIterator({ MATCH: `${prefix}*` }))
        if (keys.length > 0) await client.unlink(keys);
      await client.close();
    });
    await limiter.ready();
    const local = new TenantPolicy(tenants);
    const shared = new TenantPolicy(tenants, { globalLimits: limiter });

    const localNs: number[] = [];
    const freeLocalNs: number[] = [];
    const freeSharedNs: number[] = [];
    const redisP50Ms: number[] = [];
    const redisP99Ms: number[] = [];
    const redisC1Ops: number[] = [];
    const redisC16Ops: number[] = [];
    for (let round = 0; round < ctx.repeats; round++) {
      ctx.log(`ratelimit: round ${round + 1} of ${ctx.repeats}`);
      localNs.push(syncNsPerCheck(local, limited, LOCAL_CHECKS));
      // Alternated, so that a slow spell of the machine falls on both sides.
      let freeLocal = Infinity;
      let freeShared = Infinity;
      for (let pair = 0; pair < 3; pair++) {
        freeLocal = Math.min(freeLocal, syncNsPerCheck(local, free, LOCAL_CHECKS));
        freeShared = Math.min(freeShared, syncNsPerCheck(shared, free, LOCAL_CHECKS));
      }
      freeLocalNs.push(freeLocal);
      freeSharedNs.push(freeShared);
      const one = await timeIt(async () => (await shared.admit(limited))(), {
        durationMs: ctx.durationMs ?? REDIS_WINDOW_MS,
        warmup: 200,
      });
      redisP50Ms.push(one.latency.p50);
      redisP99Ms.push(one.latency.p99);
      redisC1Ops.push(one.opsPerSec);
      const many = await closedLoop(
        async () => {
          (await shared.admit(limited))();
        },
        { concurrency: 16, durationMs: ctx.durationMs ?? REDIS_WINDOW_MS, warmupMs: 200 },
      );
      if (many.errors > 0) throw new Error(`shared bucket checks failed: ${many.firstError}`);
      redisC16Ops.push(many.opsPerSec);
    }
    const localCheckNs = median(localNs);
    const freeRatio = median(freeLocalNs) / median(freeSharedNs);
    const table: ResultTable = {
      title: 'One rate-limit check (admit + release), medians of the rounds',
      columns: ['check', 'time per check', 'checks/s', '÷ local bucket'],
      rows: [
        [
          'own bucket, in memory (tenant with rate_limit, no Redis)',
          duration(localCheckNs / 1e6),
          opsPerSec(1e9 / localCheckNs),
          ratio(1),
        ],
        [
          'no rate_limit, shared buckets configured (never asks Redis)',
          duration(median(freeSharedNs) / 1e6),
          opsPerSec(1e9 / median(freeSharedNs)),
          ratio(localCheckNs / median(freeSharedNs)),
        ],
        [
          'shared bucket in Redis, one at a time (P50 / P99)',
          `${duration(median(redisP50Ms))} / ${duration(median(redisP99Ms))}`,
          opsPerSec(median(redisC1Ops)),
          ratio(localCheckNs / 1e6 / median(redisP50Ms)),
        ],
        [
          'shared bucket in Redis, 16 in flight',
          '',
          opsPerSec(median(redisC16Ops)),
          ratio(median(redisC16Ops) / (1e9 / localCheckNs)),
        ],
      ],
      note: "÷ local: the local check's time over this one's (below 1: slower). The Redis check is one loopback round trip to the same redis-server the tests share.",
    };
    return {
      baseline: "the replica's own in-memory token bucket, checked by the same TenantPolicy in the same run",
      tables: [table],
      budgets: [atLeast('tenant without rate_limit: admit with shared buckets configured ÷ without', freeRatio, LIMIT)],
      notes: [
        `A shared (Redis) check costs one round trip: ${duration(median(redisP50Ms))} at P50 one at a time, against ${duration(localCheckNs / 1e6)} for the local bucket; only tenants with a rate_limit pay it, once per request.`,
      ],
      data: { localNs, freeLocalNs, freeSharedNs, redisP50Ms, redisP99Ms, redisC1Ops, redisC16Ops },
    };
  },
};
