/**
 * Latency histograms cheap enough to update on a cache hit: a fixed array of counts on a
 * log-linear scale (8 buckets per doubling, so any percentile read from it is within ±4.5 % of the
 * true value), from 1 µs to ~134 s. Recording is one `Math.log2` and one increment: no allocation,
 * no sorting, no sample buffer. Percentiles are read by walking the counts.
 */

/** Buckets per doubling of latency. */
const PER_OCTAVE = 8;
/** Doublings above 1 µs covered: 2^27 µs ≈ 134 s. Slower calls land in the last bucket. */
const OCTAVES = 27;
/** Bucket 0 holds everything under 1 µs; bucket i ≥ 1 holds [2^((i-1)/8), 2^(i/8)) µs. */
export const BUCKETS = 1 + PER_OCTAVE * OCTAVES;

/** The bucket of a latency in ms. */
export function bucketOf(ms: number): number {
  const micros = ms * 1000;
  if (!(micros >= 1)) return 0; // also NaN and negatives
  const index = 1 + Math.floor(Math.log2(micros) * PER_OCTAVE);
  return index < BUCKETS ? index : BUCKETS - 1;
}

/** A representative latency of a bucket in ms: the geometric middle of its bounds. */
export function bucketValue(index: number): number {
  if (index <= 0) return 0.0005;
  return 2 ** ((index - 0.5) / PER_OCTAVE) / 1000;
}

export function emptyHistogram(): Uint32Array {
  return new Uint32Array(BUCKETS);
}

/** Adds `from` into `into`, bucket by bucket. */
export function addInto(into: Float64Array | Uint32Array, from: Uint32Array): void {
  for (let i = 0; i < BUCKETS; i++) into[i]! += from[i]!;
}

/** The `p` (0-100) percentile of the counts, in ms; 0 when there are none. */
export function percentileOf(counts: ArrayLike<number>, p: number, total?: number): number {
  let n = total ?? 0;
  if (total === undefined) for (let i = 0; i < BUCKETS; i++) n += counts[i]!;
  if (n === 0) return 0;
  // Nearest rank, as the seed's sorted(latencies)[int(n * p)] and bench/lib's percentile do.
  const rank = Math.max(1, Math.ceil((p / 100) * n));
  let seen = 0;
  for (let i = 0; i < BUCKETS; i++) {
    seen += counts[i]!;
    if (seen >= rank) return bucketValue(i);
  }
  return bucketValue(BUCKETS - 1);
}

/**
 * Upper bounds of the Prometheus histogram buckets, in ms (exported in seconds): from a cache hit
 * (well under 0.1 ms) to a minute. Kept apart from the fine histogram so that `le` values are the
 * round numbers dashboards expect; a hit leaves the scan at the first bound.
 */
export const PROM_BUCKETS_MS: readonly number[] = [
  0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000,
];

/** Index of the first Prometheus bucket whose bound is ≥ `ms`; `PROM_BUCKETS_MS.length` for +Inf. */
export function promBucketOf(ms: number): number {
  const bounds = PROM_BUCKETS_MS;
  let i = 0;
  while (i < bounds.length && ms > bounds[i]!) i++;
  return i;
}
