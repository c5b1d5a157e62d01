/**
 * Bucket ranges, variant choice and feature flags, identical to `segmently.assignment`.
 *
 * An experiment puts a visitor at `n = hashV2(seed, visitorId)`; variant `i` covers
 * `[cum_i, cum_i + coverage * w_i)` with `w_i = weight_i / 100` and `coverage = traffic / 100`, so
 * raising traffic keeps existing visitors in their variant. MVT experiments need nothing special:
 * the server serves their cells as plain variants. Stickiness is the caller's business.
 */

import { hashV2 } from "./hash";

/** `[start, end)` of one variant in the unit interval. */
export type BucketRange = [start: number, end: number];

// a weight vector whose sum falls outside these bounds is replaced by equal weights (as GrowthBook)
const WEIGHT_SUM_MIN = 0.99;
const WEIGHT_SUM_MAX = 1.01;

function validWeights(weights: readonly unknown[], numVariants: number): weights is readonly number[] {
  if (weights.length !== numVariants) return false;
  let sum = 0;
  for (const w of weights) {
    if (typeof w !== "number" || !Number.isFinite(w) || w < 0) return false;
    sum += w; // left to right, as GrowthBook's reduce and Python 3.11's sum()
  }
  return sum >= WEIGHT_SUM_MIN && sum <= WEIGHT_SUM_MAX;
}

/**
 * The range of each variant, exactly as GrowthBook's `getBucketRanges` (and the server's
 * `bucket_ranges`): weights are fractions summing to 1 (within 0.99–1.01), coverage is clamped to
 * [0, 1]; weights that do not fit `numVariants` (another length, a negative or non-finite weight, a
 * sum out of bounds) are replaced by `1 / numVariants` each.
 */
export function bucketRanges(
  weights: readonly number[],
  coverage = 1,
  numVariants: number = weights.length,
): BucketRange[] {
  if (coverage < 0) coverage = 0;
  if (coverage > 1) coverage = 1;
  const used = validWeights(weights, numVariants)
    ? weights
    : Array.from({ length: Math.max(numVariants, 0) }, () => 1 / numVariants);
  let cumulative = 0;
  return used.map((w) => {
    const start = cumulative;
    cumulative += w;
    return [start, start + coverage * w];
  });
}

/** The index of the first range with `start <= n < end`, or -1 (not in the experiment). */
export function chooseVariant(n: number, ranges: readonly BucketRange[]): number {
  return ranges.findIndex(([start, end]) => start <= n && n < end);
}

/** A variant as assignment sees it: weight in percent, as the config serves it. */
export interface WeightedVariant {
  id: string;
  key: string;
  weight: number;
}

/** The index of the visitor's variant in `variants`, or -1 when the traffic percentage leaves them out. */
export function assignVariant(
  seed: string,
  variants: readonly WeightedVariant[],
  trafficPercentage: number,
  visitorId: string,
): number {
  const ranges = bucketRanges(
    variants.map((v) => v.weight / 100),
    trafficPercentage / 100,
  );
  return chooseVariant(hashV2(seed, visitorId), ranges);
}

/** Whether a flag is on for a visitor: `active && hashV2(flagKey, visitorId) < rollout / 100`. */
export function flagEnabled(
  flagKey: string,
  rolloutPercentage: number,
  visitorId: string,
  active = true,
): boolean {
  return active && hashV2(flagKey, visitorId) < rolloutPercentage / 100;
}
