// Test doubles for the browser's cookie jar and localStorage, close enough to the real ones for
// what the snippet relies on: Domain/host-only cookies, max-age (0 deletes), public suffixes refused.
import { vi } from "vitest";
import type { ModuleHost } from "../src/core/host";
import type { CookieJar } from "../src/core/identity";
import type { KeyValueStorage } from "../src/core/storage";

const PUBLIC_SUFFIXES = new Set(["com", "org", "net", "uk", "co.uk", "github.io", "localhost"]);

interface StoredCookie {
  name: string;
  value: string;
  domain: string | null; // null: host-only
  attributes: string[];
}

/** document.cookie of a page on `host`; `written` keeps every raw string set, for attribute checks. */
export class FakeCookieJar implements CookieJar {
  cookies: StoredCookie[] = [];
  written: string[] = [];

  constructor(public host: string) {}

  get(): string {
    return this.cookies
      .filter((c) => c.domain === null || this.host === c.domain || this.host.endsWith(`.${c.domain}`))
      .map((c) => `${c.name}=${c.value}`)
      .join("; ");
  }

  set(cookie: string): void {
    this.written.push(cookie);
    const [pair, ...attrs] = cookie.split(";").map((s) => s.trim());
    const eq = pair!.indexOf("=");
    const name = pair!.slice(0, eq);
    const value = pair!.slice(eq + 1);
    let domain: string | null = null;
    let maxAge: number | null = null;
    for (const a of attrs) {
      const [k, v] = a.split("=");
      if (k!.toLowerCase() === "domain") domain = v!.replace(/^\./, "").toLowerCase();
      if (k!.toLowerCase() === "max-age") maxAge = Number(v);
    }
    if (domain !== null) {
      const domainMatches = this.host === domain || this.host.endsWith(`.${domain}`);
      if (!domainMatches || PUBLIC_SUFFIXES.has(domain)) return; // the browser ignores it
    }
    this.cookies = this.cookies.filter((c) => !(c.name === name && c.domain === domain));
    if (maxAge !== null && maxAge <= 0) return;
    this.cookies.push({ name, value, domain, attributes: attrs });
  }

  /** The same browser on another host (cookies on a shared parent domain stay visible). */
  visit(host: string): FakeCookieJar {
    const other = new FakeCookieJar(host);
    other.cookies = this.cookies.filter((c) => c.domain !== null);
    return other;
  }
}

/** localStorage in memory; `failWrites` makes setItem throw like a full quota. */
export class MemoryStorage implements KeyValueStorage {
  data = new Map<string, string>();
  failWrites = false;

  getItem(key: string): string | null {
    return this.data.get(key) ?? null;
  }

  setItem(key: string, value: string): void {
    if (this.failWrites) throw new Error("QuotaExceededError");
    this.data.set(key, value);
  }

  removeItem(key: string): void {
    this.data.delete(key);
  }
}

/**
 * A chunk's `window.__segmentlyHost` with nothing running: visitor `visitor-1`, the config's
 * `experiments` (none by default), every callback a mock; `over` replaces any of it.
 */
export function fakeHost(over: Partial<ModuleHost> = {}): ModuleHost {
  return {
    version: "test",
    base: "https://ab.example.com",
    apiKey: "seg_live_test",
    config: { badge: false, experiments: [], conversion_rules: [], modules: [] } as unknown as ModuleHost["config"],
    visitorId: () => "visitor-1",
    assignments: () => ({}),
    track: vi.fn(),
    report: vi.fn(),
    module: () => undefined,
    crossDomain: [],
    early: [],
    events: [],
    register: vi.fn(),
    ...over,
  };
}
