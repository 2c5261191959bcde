/**
 * Model call latency histogram of the hourly analytics rollups.
 *
 * `analytics_hourly.latency_buckets` is a jsonb array of counts aligned with
 * {@link LATENCY_BOUNDS_MS}: element i counts calls with
 * `LATENCY_BOUNDS_MS[i - 1] < latency <= LATENCY_BOUNDS_MS[i]` (the first bucket starts
 * at 0, the last is unbounded). Counts are per bucket, not cumulative, so rows merge by
 * adding element-wise. The bounds are part of the stored format: changing them needs a
 * migration of the existing rows.
 */
export const LATENCY_BOUNDS_MS: readonly number[] = Object.freeze([
  100,
  250,
  500,
  1000,
  2500,
  5000,
  10000,
  30000,
  60000,
  Number.POSITIVE_INFINITY,
]);

/** The index of the bucket a latency falls in (upper bound inclusive, like Prometheus `le`). */
export const latencyBucketIndex = (latencyMs: number, bounds: readonly number[] = LATENCY_BOUNDS_MS): number => {
  const index = bounds.findIndex((bound) => latencyMs <= bound);
  return index === -1 ? bounds.length - 1 : index;
};

/** An all-zero count array for `bounds`. */
export const emptyLatencyBuckets = (bounds: readonly number[] = LATENCY_BOUNDS_MS): number[] => bounds.map(() => 0);

/**
 * Estimates the q-quantile (0 ≤ q ≤ 1) of the latencies counted in `counts`, the way
 * Prometheus' `histogram_quantile` does:
 *
 * - the rank is `q × total`; the estimate lies in the first bucket whose cumulative count
 *   reaches the rank;
 * - inside that bucket the latencies are assumed to be spread uniformly, so the estimate
 *   is interpolated linearly between the bucket's lower bound (the previous bound, 0 for
 *   the first bucket) and its upper bound;
 * - the last bucket has no upper bound, so a rank that falls in it is reported as its
 *   lower bound (the largest finite bound): the estimate is then a lower limit.
 *
 * The error is at most the width of the bucket the quantile falls in. Returns null when
 * nothing was counted.
 */
export const percentileFromBuckets = (
  counts: readonly number[],
  q: number,
  bounds: readonly number[] = LATENCY_BOUNDS_MS,
): number | null => {
  if (!(q >= 0 && q <= 1)) {
    throw new RangeError(`quantile must be within [0, 1], got ${q}`);
  }
  const total = counts.reduce((sum, count) => sum + count, 0);
  if (total <= 0) {
    return null;
  }
  const rank = q * total;
  let cumulative = 0;
  for (const [index, count] of counts.entries()) {
    if (count <= 0) {
      continue;
    }
    const below = cumulative;
    cumulative += count;
    if (cumulative < rank) {
      continue;
    }
    const lower = index === 0 ? 0 : (bounds[index - 1] ?? 0);
    const upper = bounds[index] ?? Number.POSITIVE_INFINITY;
    if (upper === Number.POSITIVE_INFINITY) {
      return lower;
    }
    return lower + ((upper - lower) * (rank - below)) / count;
  }
  // Only reached through rounding of q × total just above the last cumulative count.
  const last = bounds.findLast((bound) => bound !== Number.POSITIVE_INFINITY);
  return last ?? null;
};
