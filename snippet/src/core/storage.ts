/**
 * The part of `localStorage` the snippet uses, and safe access to it: storage may be missing,
 * blocked (sandboxed iframes, some privacy modes), full, or hold anything at all.
 */

/** `localStorage`'s shape (`getItem`, `setItem`, `removeItem`). */
export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** `window.localStorage`, or null when reading it throws (blocked storage). */
export function browserStorage(win: { localStorage?: KeyValueStorage }): KeyValueStorage | null {
  try {
    return win.localStorage || null;
  } catch {
    return null;
  }
}

// `storage` may be null (none, or not to be used): the TypeError is caught like a blocked storage's

/** The parsed JSON under `key`, or null; a value that is not JSON is removed. */
export function readJson(storage: KeyValueStorage | null | undefined, key: string): unknown {
  try {
    return JSON.parse(storage!.getItem(key)!) as unknown; // a missing key: JSON.parse(null) is null
  } catch {
    removeKey(storage, key);
    return null;
  }
}

/** Writes `value` as JSON; nothing when storage refuses it (quota, blocked) or it is not JSON. */
export function writeJson(storage: KeyValueStorage | null | undefined, key: string, value: unknown): void {
  try {
    storage!.setItem(key, JSON.stringify(value));
  } catch {
    // the value lives for this page only
  }
}

export function removeKey(storage: KeyValueStorage | null | undefined, key: string): void {
  try {
    storage!.removeItem(key);
  } catch {
    // nothing to do: storage is unusable
  }
}

/** A plain object (not null, not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
