import { describe, expect, test } from "vitest";
import { isVisitorId, uuidv4, uuidv7Generator, uuidv7Time } from "../src/core/ids";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe("event ids (UUIDv7)", () => {
  test("carry the RFC 9562 version and variant bits and the millisecond time", () => {
    const ms = Date.UTC(2026, 10, 26, 10, 0, 0, 123);
    const id = uuidv7Generator(() => ms)();
    expect(id).toMatch(UUID);
    expect(id[14]).toBe("7");
    expect("89ab").toContain(id[19]);
    expect(uuidv7Time(id)).toBe(ms);
    expect(id.slice(0, 13)).toBe(`${ms.toString(16).padStart(12, "0").slice(0, 8)}-${ms.toString(16).slice(-4)}`);
  });

  test("sort in the order they were made, even many within one millisecond", () => {
    let ms = 1_700_000_000_000;
    const next = uuidv7Generator(() => ms);
    const ids: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      if (i % 2_500 === 0) ms++;
      ids.push(next());
    }
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
  });

  test("keep increasing when the clock steps back", () => {
    let ms = 1_700_000_000_000;
    const next = uuidv7Generator(() => ms);
    const a = next();
    ms -= 5_000;
    const b = next();
    expect(b > a).toBe(true);
  });

  test("use the injected random source", () => {
    const zeros = uuidv7Generator(
      () => 0,
      (b) => b.fill(0),
    )();
    expect(zeros).toBe("00000000-0000-7000-8000-000000000000");
  });
});

describe("visitor ids (UUIDv4)", () => {
  test("are random version-4 UUIDs", () => {
    const a = uuidv4();
    expect(a).toMatch(UUID);
    expect(a[14]).toBe("4");
    expect("89ab").toContain(a[19]);
    expect(uuidv4()).not.toBe(a);
    expect(uuidv4((b) => b.fill(0xff))).toBe("ffffffff-ffff-4fff-bfff-ffffffffffff");
  });

  test("only safe values count as visitor ids", () => {
    expect(isVisitorId(uuidv4())).toBe(true);
    expect(isVisitorId("visitor_123")).toBe(true);
    for (const bad of [null, undefined, "", "short", "<script>alert(1)</script>", "a b c d e f g h", "x".repeat(65)]) {
      expect(isVisitorId(bad)).toBe(false);
    }
  });
});
