/** Order statistics over samples. Nothing here allocates per sample beyond one sorted copy. */

/** Nearest-rank percentile (`p` in 0-100) of unsorted samples; NaN when there are none. */
export function percentile(samples: ArrayLike<number>, p: number): number {
  return percentileOfSorted(sortedCopy(samples), p);
}

/** Nearest-rank percentile of samples already sorted ascending. */
export function percentileOfSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function median(values: readonly number[]): number {
  return percentileOfSorted(sortedCopy(values), 50);
}

export function sortedCopy(samples: ArrayLike<number>): Float64Array {
  const copy = Float64Array.from(samples);
  copy.sort();
  return copy;
}

/** Latency figures of one measurement, in ms. */
export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function summarize(samples: ArrayLike<number>): LatencySummary {
  const sorted = sortedCopy(samples);
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    count: sorted.length,
    mean: sorted.length === 0 ? Number.NaN : sum / sorted.length,
    p50: percentileOfSorted(sorted, 50),
    p95: percentileOfSorted(sorted, 95),
    p99: percentileOfSorted(sorted, 99),
    max: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1]!,
  };
}

/** A growable buffer of numbers: recording a latency must not allocate on the measured path. */
export class Samples {
  #data: Float64Array;
  #length = 0;

  constructor(initialCapacity = 1 << 16) {
    this.#data = new Float64Array(initialCapacity);
  }

  get length(): number {
    return this.#length;
  }

  push(value: number): void {
    if (this.#length === this.#data.length) {
      const bigger = new Float64Array(this.#data.length * 2);
      bigger.set(this.#data);
      this.#data = bigger;
    }
    this.#data[this.#length++] = value;
  }

  clear(): void {
    this.#length = 0;
  }

  view(): Float64Array {
    return this.#data.subarray(0, this.#length);
  }
}

/** The median of one figure across repeated measurements. */
export function medianBy<T>(results: readonly T[], pick: (result: T) => number): number {
  return median(results.map(pick));
}
