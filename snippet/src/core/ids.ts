/**
 * Identifiers the snippet makes: UUIDv7 event ids (time-ordered, so the server's keys stay
 * index-friendly and a retried event keeps its id) and random UUIDv4 visitor ids.
 *
 * Layouts are RFC 9562's. Randomness comes from `crypto.getRandomValues`; both the clock and the
 * random source can be injected so tests are deterministic.
 */

/** Fills `bytes` with random values (the shape of `crypto.getRandomValues`). */
export type RandomFill = (bytes: Uint8Array<ArrayBuffer>) => void;

/** `crypto.getRandomValues`, else `Math.random` (never throws: the page must not break). */
export const defaultRandom: RandomFill = (bytes) => {
  try {
    crypto.getRandomValues(bytes);
  } catch {
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.random() * 256;
  }
};

/** Two hex digits per byte. */
const hex = (bytes: Uint8Array): string => bytes.reduce((s, b) => s + (b + 0x100).toString(16).slice(1), "");

/** 32 hex digits as `8-4-4-4-12`. */
const dashed = (h: string): string => h.replace(/(.{8})(.{4})(.{4})(.{4})/, "$1-$2-$3-$4-");

/** `bytes` with the RFC 9562 variant bits (10) in byte 8. */
function withVariant(bytes: Uint8Array): Uint8Array {
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  return bytes;
}

/** A random UUIDv4 (RFC 9562 §5.4): the visitor id of `seg_visitor_id`. */
export function uuidv4(random: RandomFill = defaultRandom): string {
  const b = new Uint8Array(16);
  random(b);
  b[6] = (b[6]! & 0x0f) | 0x40;
  return dashed(hex(withVariant(b)));
}

/**
 * A UUIDv7 generator (RFC 9562 §5.7): 48-bit Unix milliseconds, version 7, 12 bits `rand_a`,
 * variant 10, 62 random bits. Ids from one generator are strictly increasing even within one
 * millisecond or when the clock steps back (§6.2 method 1: `rand_a` is a counter seeded at random).
 */
export function uuidv7Generator(now: () => number = Date.now, random: RandomFill = defaultRandom): () => string {
  let lastMs = -1;
  let counter = 0;
  return () => {
    const b = new Uint8Array(16);
    random(b);
    let ms = Math.max(0, Math.floor(now()));
    if (ms > lastMs) {
      lastMs = ms;
      counter = ((b[6]! & 0x07) << 8) | b[7]!; // a random start below 0x800 leaves room to count
    } else {
      ms = lastMs;
      if (++counter > 0xfff) {
        lastMs = ms = lastMs + 1; // counter exhausted: borrow the next millisecond
        counter = 0;
      }
    }
    // 12 hex digits of milliseconds, "7" and the counter, then the variant and 62 random bits
    return dashed(ms.toString(16).padStart(12, "0") + (0x7000 | counter).toString(16) + hex(withVariant(b)).slice(16));
  };
}

/** The Unix milliseconds a UUIDv7 carries (for tests and for dropping stale persisted events). */
export function uuidv7Time(id: string): number {
  return parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}

const VISITOR_ID = /^[A-Za-z0-9_-]{8,64}$/;

/**
 * Whether `value` can be a visitor id taken from a cookie or a `_sgmt_vid` parameter: 8–64 of
 * `A–Z a–z 0–9 - _` (UUIDs, and ids a server SDK made). Anything else is replaced, never trusted,
 * so a crafted link or cookie cannot inject markup or oversize values into events.
 */
export function isVisitorId(value: string | null | undefined): value is string {
  return value != null && VISITOR_ID.test(value);
}
