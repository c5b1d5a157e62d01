/**
 * Hashing, identical to `segmently.assignment` on the server and to GrowthBook's hash version 2.
 *
 * `fnv1a32` walks the UTF-16 code units of a string (`charCodeAt`), never its UTF-8 bytes, so a
 * non-ASCII visitor id lands in the same bucket here as on the server.
 */

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** 32-bit FNV-1a over the UTF-16 code units of `s`, as an unsigned integer. */
export function fnv1a32(s: string): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < s.length; i++) {
    h = Math.imul(h ^ s.charCodeAt(i), FNV_PRIME);
  }
  return h >>> 0;
}

/** GrowthBook's hash version 2: `(fnv1a32(String(fnv1a32(seed + value))) % 10000) / 10000`, in [0, 1). */
export function hashV2(seed: string, value: string): number {
  return (fnv1a32(String(fnv1a32(seed + value))) % 10000) / 10000;
}
