// Every vector of tests/fixtures/hash_vectors.json (GrowthBook 4.0.0 as the oracle, the same file the
// Python tests check segmently.assignment against) that the snippet computes must come out identical
// here. The bucket ranges are the server's (the config serves them, tests/core/test_assignment.py
// holds them to the vectors): the snippet's part is the hash, the range lookup and the flags.
import { describe, expect, test } from "vitest";
import vectorsText from "../../tests/fixtures/hash_vectors.json?raw";
import { type BucketRange, chooseVariant, flagEnabled } from "../src/core/assign";
import { fnv1a32, hashV2 } from "../src/core/hash";

interface Vectors {
  fnv1a32: { input: string; hash: number }[];
  hash_v2: { seed: string; value: string; hash: number }[];
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
    expect(v.choose_variant.length).toBeGreaterThanOrEqual(400);
    expect(v.flags.length).toBeGreaterThanOrEqual(300);
  });

  test("fnv1a32 walks UTF-16 code units", () => {
    expect(failures(v.fnv1a32, (r) => (fnv1a32(r.input) === r.hash ? null : JSON.stringify(r)))).toEqual([]);
  });

  test("hashV2 matches every vector", () => {
    expect(failures(v.hash_v2, (r) => (hashV2(r.seed, r.value) === r.hash ? null : JSON.stringify(r)))).toEqual([]);
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
