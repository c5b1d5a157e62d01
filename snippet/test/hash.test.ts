// Every vector of tests/fixtures/hash_vectors.json (GrowthBook 4.0.0 as the oracle, the same file the
// Python tests check segmently.assignment against) must come out identical here.
import { describe, expect, test } from "vitest";
import vectorsText from "../../tests/fixtures/hash_vectors.json?raw";
import { type BucketRange, bucketRanges, chooseVariant, flagEnabled } from "../src/core/assign";
import { fnv1a32, hashV2 } from "../src/core/hash";

interface Vectors {
  fnv1a32: { input: string; hash: number }[];
  hash_v2: { seed: string; value: string; hash: number }[];
  bucket_ranges: { weights: number[]; coverage: number; num_variants: number; ranges: BucketRange[] }[];
  choose_variant: { n: number; ranges: BucketRange[]; variant: number }[];
  flags: { key: string; rollout_percentage: number; visitor_id: string; active: boolean; enabled: boolean }[];
}

const v = JSON.parse(vectorsText) as Vectors;

/** Each failing vector, described; empty when every one passes (one assertion, a readable diff). */
function failures<T>(rows: T[], check: (row: T) => string | null): string[] {
  return rows.map(check).filter((f): f is string => f !== null);
}

describe("hash vectors", () => {
  test("the file holds every section", () => {
    expect(v.fnv1a32.length).toBeGreaterThan(200);
    expect(v.hash_v2.length).toBeGreaterThanOrEqual(2000);
    expect(v.bucket_ranges.length).toBeGreaterThanOrEqual(400);
    expect(v.choose_variant.length).toBeGreaterThanOrEqual(400);
    expect(v.flags.length).toBeGreaterThanOrEqual(300);
  });

  test("fnv1a32 walks UTF-16 code units", () => {
    expect(failures(v.fnv1a32, (r) => (fnv1a32(r.input) === r.hash ? null : JSON.stringify(r)))).toEqual([]);
  });

  test("hashV2 matches every vector", () => {
    expect(failures(v.hash_v2, (r) => (hashV2(r.seed, r.value) === r.hash ? null : JSON.stringify(r)))).toEqual([]);
  });

  test("bucketRanges matches every vector, in floating point", () => {
    expect(
      failures(v.bucket_ranges, (r) => {
        const got = bucketRanges(r.weights, r.coverage, r.num_variants);
        return JSON.stringify(got) === JSON.stringify(r.ranges) ? null : `${JSON.stringify(r)} got ${JSON.stringify(got)}`;
      }),
    ).toEqual([]);
  });

  test("chooseVariant matches every vector", () => {
    expect(
      failures(v.choose_variant, (r) => (chooseVariant(r.n, r.ranges) === r.variant ? null : JSON.stringify(r))),
    ).toEqual([]);
  });

  test("flagEnabled matches every vector", () => {
    expect(
      failures(v.flags, (r) =>
        flagEnabled(r.key, r.rollout_percentage, r.visitor_id, r.active) === r.enabled ? null : JSON.stringify(r),
      ),
    ).toEqual([]);
  });
});

describe("hashing", () => {
  test("a non-ASCII id hashes its UTF-16 code units, not UTF-8 bytes", () => {
    // "é" is one code unit (0xE9) but two UTF-8 bytes
    expect(fnv1a32("é")).toBe(Math.imul(0x811c9dc5 ^ 0xe9, 0x01000193) >>> 0);
    expect(fnv1a32("😀")).toBe(fnv1a32("\ud83d\ude00"));
  });

  test("hashV2 is a multiple of 1/10000 in [0, 1)", () => {
    for (const id of ["a", "b", "visitor-123", ""]) {
      const h = hashV2("seed", id);
      expect(h).toBeGreaterThanOrEqual(0);
      expect(h).toBeLessThan(1);
      expect(Math.abs(h * 10000 - Math.round(h * 10000))).toBeLessThan(1e-9);
    }
  });
});

describe("bucket ranges", () => {
  test("raising traffic keeps existing visitors in their variant", () => {
    const weights = [0.5, 0.5];
    const ids = Array.from({ length: 500 }, (_, i) => `visitor-${i}`);
    const at = (coverage: number) => ids.map((id) => chooseVariant(hashV2("exp-1", id), bucketRanges(weights, coverage)));
    const before = at(0.2);
    const after = at(0.6);
    before.forEach((b, i) => {
      if (b >= 0) expect(after[i]).toBe(b);
    });
    expect(after.filter((a) => a >= 0).length).toBeGreaterThan(2 * before.filter((b) => b >= 0).length);
  });

  test("weights that do not fit are replaced by equal weights", () => {
    expect(bucketRanges([0.1, 0.1])).toEqual([
      [0, 0.5],
      [0.5, 1],
    ]);
    expect(bucketRanges([1, 0], 1, 3)).toEqual(bucketRanges([1 / 3, 1 / 3, 1 / 3]));
    expect(bucketRanges([], 1, 0)).toEqual([]);
  });

  test("coverage is clamped to [0, 1]", () => {
    expect(bucketRanges([1], 2)).toEqual([[0, 1]]);
    expect(bucketRanges([1], -1)).toEqual([[0, 0]]);
  });
});
