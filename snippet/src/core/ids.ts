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

/**
 * A random UUIDv4 (RFC 9562 §5.4): the visitor id of `seg_visitor_id`. Each `0` of the template
 * becomes a random hex digit (the low 4 bits of one random byte), the `8` the variant's `8`–`b`.
 */
export function uuidv4(random: RandomFill = defaultRandom): string {
  const b = new Uint8Array(32);
  random(b);
  let i = 0;
  return "00000000-0000-4000-8000-000000000000".replace(/[08]/g, (c) => (+c ^ (b[i++]! & (15 >> (+c / 4)))).toString(16));
}

/**
 * A UUIDv7 generator (RFC 9562 §5.7): 48-bit Unix milliseconds, version 7, 12 bits `rand_a`,
 * variant 10, 62 random bits (a UUIDv4's last 18 characters). Ids from one generator are strictly
 * increasing even within one millisecond or when the clock steps back (§6.2 method 1: `rand_a` is
 * a counter seeded at random).
 */
export function uuidv7Generator(now: () => number = Date.now, random: RandomFill = defaultRandom): () => string {
  let last = -1;
  let counter = 0;
  return () => {
    const v4 = uuidv4(random);
    let ms = now();
    if (ms > last) {
      last = ms;
      counter = parseInt(v4.slice(15, 18), 16) & 0x7ff; // a random start below 0x800 leaves room to count
    } else {
      ms = last;
      // counter exhausted: borrow the next millisecond
      if (++counter > 0xfff) (last = ++ms), (counter = 0);
    }
    // 12 hex digits of milliseconds, "7" and the counter, then the variant and 62 random bits
    return (ms.toString(16).padStart(12, "0") + (0x7000 | counter).toString(16)).replace(/(.{8})(.{4})/, "$1-$2-") + v4.slice(18);
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
