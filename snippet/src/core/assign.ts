/**
 * Variant choice and feature flags, identical to `segmently.assignment`.
 *
 * An experiment puts a visitor at `n = hashV2(seed, visitorId)`; variant `i` covers
 * `[cum_i, cum_i + coverage * w_i)` with `w_i = weight_i / 100` and `coverage = traffic / 100`, so
 * raising traffic keeps existing visitors in their variant. The server computes these ranges
 * (`segmently.assignment.bucket_ranges`, held to GrowthBook's by the hash vectors) and serves them
 * in the config as each experiment's `ranges`; the snippet only looks the visitor up. MVT
 * experiments need nothing special: the server serves their cells as plain variants. Stickiness is
 * the caller's business.
 */

import { hashV2 } from "./hash";

/** `[start, end)` of one variant in the unit interval. */
export type BucketRange = [start: number, end: number];

/** The index of the first range with `start <= n < end`, or -1 (not in the experiment). */
export function chooseVariant(n: number, ranges: readonly BucketRange[]): number {
  return ranges.findIndex(([start, end]) => start <= n && n < end);
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
