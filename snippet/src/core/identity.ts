/**
 * Who the visitor is: the first-party cookies of ARCHITECTURE.md §9, the opt-out cookie, `reset()`
 * and cross-domain hand-over through the `_sgmt_vid` link parameter.
 *
 * - `seg_visitor_id`: the visitor id (a random UUID), 1 year, renewed on the first page load of
 *   each day (localStorage `seg_renewed` remembers the day and the cookie domain; without
 *   storage, on every page load);
 * - `_seg_visitor`: set on the first visit (value: its Unix milliseconds); its presence when the
 *   snippet loads makes the visitor "returning" for the Audience tab's visitor type;
 * - `segmently_opt_out=true` (set by the site, e.g. a consent banner): nothing is tracked and the
 *   snippet writes no cookie of its own.
 *
 * Cookies are `path=/`, `SameSite=Lax`, `Secure` on https, and set on the widest domain the
 * browser accepts (`.example.com` from `www.example.com`), which the config names
 * (`settings.cookie_domains`, from the server's public suffix list); a host under none of those,
 * `localhost` and IP addresses get host-only cookies. Everything here goes through a `CookieJar`,
 * so tests use a fake.
 */

import { type RandomFill, defaultRandom, isVisitorId, uuidv4 } from "./ids";
import { type KeyValueStorage, readJson, writeJson } from "./storage";
import { partition } from "./targeting";

export const VISITOR_COOKIE = "seg_visitor_id";
export const RETURNING_COOKIE = "_seg_visitor";
export const OPT_OUT_COOKIE = "segmently_opt_out";
export const CROSS_DOMAIN_PARAM = "_sgmt_vid";
export const COOKIE_MAX_AGE_S = 365 * 24 * 60 * 60;
/** localStorage: `[cookie domain or null, day number]` of the last renewal */
const RENEWED_KEY = "seg_renewed";

/**
 * `document.cookie` as an interface: `get(name)` reads the `a=b; c=d` string (current for cookie
 * `name`), `set()` writes one cookie.
 */
export interface CookieJar {
  get(name?: string): string;
  set(cookie: string): void;
}

/**
 * The browser's cookie jar; a blocked `document.cookie` (sandboxed iframe) reads as empty.
 *
 * Reading `document.cookie` asks the browser process (about a millisecond each in Chromium, more
 * on a busy machine). With `perTask`, one read serves the rest of the task: only a cookie we wrote
 * since is read again (a first visit's opt-out check after writing the visitor cookies reads
 * nothing new), and the next task reads again (the page's own writes are seen from then on).
 */
export function documentCookieJar(doc: Document, perTask?: boolean): CookieJar {
  let read: string | null = null;
  /** the cookies written since `read`, each as `;name=value…` */
  let written = "";
  return {
    get: (name) => {
      if (read === null || !perTask || written.includes(`;${name}=`)) {
        try {
          read = doc.cookie;
        } catch {
          read = "";
        }
        written = "";
        if (perTask) Promise.resolve().then(() => (read = null));
      }
      return read;
    },
    set: (cookie) => {
      written += ";" + cookie;
      try {
        doc.cookie = cookie;
      } catch {
        // cookies blocked: the visitor id lives for this page only
      }
    },
  };
}

/** `decodeURIComponent(s)`, or null where it throws. */
function decode(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

/** Every value of cookie `name` (a host-only and a domain cookie may share a name), decoded. */
export function readCookies(jar: CookieJar, name: string): string[] {
  const out: string[] = [];
  for (const part of jar.get(name).split(";")) {
    const [key, found, raw] = partition(part, "=");
    const value = raw.trim();
    if (found && key.trim() === name) out.push(decode(value) || value);
  }
  return out;
}

/** The first value of cookie `name`, decoded; null when absent. */
export function readCookie(jar: CookieJar, name: string): string | null {
  const value = readCookies(jar, name)[0];
  return value === undefined ? null : value;
}

/** One `Set-Cookie`-like string: `path=/`, `SameSite=Lax`, `Secure` on https, on `domain` (null: host-only). */
function cookie(name: string, value: string, maxAgeS: number, domain: string | null, secure: boolean): string {
  return (
    `${name}=${encodeURIComponent(value)}; path=/; max-age=${maxAgeS}` +
    (domain === null ? "" : `; domain=.${domain}`) +
    "; SameSite=Lax" +
    (secure ? "; Secure" : "")
  );
}

/** A hostname as cross-domain lists hold it: lower case, no trailing dot. */
export function normalizeHost(host: string): string {
  return host.trim().toLowerCase().replace(/\.+$/, "");
}

/**
 * The domain the cookies go on for `hostname`: the config's `cookie_domains` entry it is or lies
 * under (`example.com` for `www.example.com`), or null for a host-only cookie. The server serves
 * the registrable domain of the site's URL and of each cross-domain host (public suffix list
 * included: never `co.uk`, which browsers refuse; IP addresses and `localhost` have none).
 */
export function cookieDomain(hostname: string, domains: readonly string[]): string | null {
  const host = normalizeHost(hostname);
  return domains.find((d) => host == d || host.endsWith("." + d)) || null;
}

/** What identity needs of the page. */
export interface IdentityOptions {
  _jar: CookieJar;
  /** `location.hostname`. */
  _hostname: string;
  /** `location.protocol === "https:"`: cookies get `Secure`. */
  _secure: boolean;
  _now?: () => number;
  _random?: RandomFill;
  /** localStorage, to remember the day the cookies were last renewed and on which domain */
  _storage?: KeyValueStorage | null;
  /** the config's `settings.cookie_domains` (none: host-only cookies) */
  _domains?: readonly string[];
}

/** The visitor as this page load sees them. */
export interface Identity {
  _visitorId: string;
  /** `_seg_visitor` was already set when the page loaded. */
  _isReturning: boolean;
  /** the cookie domain in use (null: host-only), for `reset()` and the opt-out helper. */
  _domain: string | null;
}

/** Whether the visitor opted out: any `segmently_opt_out` cookie is `true` (case-insensitive). */
export function isOptedOut(jar: CookieJar): boolean {
  return readCookies(jar, OPT_OUT_COOKIE).some((v) => v.trim().toLowerCase() === "true");
}

/** Whether `hostname` is one of the listed cross-domain hosts (exact match after normalizing). */
export function isListedHost(hostname: string, domains: readonly string[]): boolean {
  const host = normalizeHost(hostname);
  return host !== "" && domains.some((d) => normalizeHost(d) === host);
}

/**
 * Reads (or makes) the visitor's identity and renews its cookies for another year (once a day).
 *
 * `fromLink` is a `_sgmt_vid` the page adopts (`adoption()`: only on a listed host); a valid one
 * wins over the cookie.
 */
export function loadIdentity(opts: IdentityOptions, fromLink?: string | null): Identity {
  const jar = opts._jar;
  const optedOut = isOptedOut(jar);
  const firstSeen = readCookie(jar, RETURNING_COOKIE);
  const stored = readCookie(jar, VISITOR_COOKIE);
  const visitorId = isVisitorId(fromLink) ? fromLink : isVisitorId(stored) ? stored : uuidv4(opts._random || defaultRandom);
  const domain = cookieDomain(opts._hostname, opts._domains || []);
  const now = (opts._now || Date.now)();
  const day = Math.floor(now / 864e5);
  // renewed today already on this domain (same id, both cookies there): no write
  const renewed = readJson(opts._storage, RENEWED_KEY);
  const fresh = Array.isArray(renewed) && renewed[0] === domain && renewed[1] === day && stored === visitorId && firstSeen !== null;
  if (!optedOut && !fresh) {
    jar.set(cookie(VISITOR_COOKIE, visitorId, COOKIE_MAX_AGE_S, domain, opts._secure));
    jar.set(cookie(RETURNING_COOKIE, firstSeen === null ? String(now) : firstSeen, COOKIE_MAX_AGE_S, domain, opts._secure));
    writeJson(opts._storage, RENEWED_KEY, [domain, day]);
  }
  return { _visitorId: visitorId, _isReturning: firstSeen !== null, _domain: domain };
}

/**
 * What a page that arrived with `_sgmt_vid` adopts: `[the id, or null
 * when this page's host is not on the `crossDomain` list (a shared link cannot merge strangers into
 * one visitor elsewhere), the URL without the parameter (null: it had none)]`. The parameter is
 * stripped whether adopted or not.
 */
export function adoption(url: string, hostname: string, crossDomain: readonly string[]): [string | null, string | null] {
  const [id, clean] = crossDomainParam(url);
  return [isListedHost(hostname, crossDomain) ? id : null, clean];
}

/**
 * `Segmently.reset()` (on logout): a fresh visitor id in `seg_visitor_id`; the caller clears
 * assignments and attributes. `_seg_visitor` stays: the browser has been here before.
 */
export function resetIdentity(opts: IdentityOptions, identity: Identity): Identity {
  const visitorId = uuidv4(opts._random || defaultRandom);
  if (!isOptedOut(opts._jar)) {
    // a host-only copy (written by a page that had no config, so no domain) would shadow the new id
    if (identity._domain) opts._jar.set(cookie(VISITOR_COOKIE, "", 0, null, opts._secure));
    opts._jar.set(cookie(VISITOR_COOKIE, visitorId, COOKIE_MAX_AGE_S, identity._domain, opts._secure));
  }
  return { ...identity, _visitorId: visitorId };
}

/** Sets (`true`) or removes the opt-out cookie, for a consent banner that uses the snippet's helper. */
export function setOptOut(opts: IdentityOptions, optOut: boolean): void {
  const domain = cookieDomain(opts._hostname, opts._domains || []);
  opts._jar.set(cookie(OPT_OUT_COOKIE, optOut ? "true" : "", optOut ? COOKIE_MAX_AGE_S : 0, domain, opts._secure));
  if (!optOut && domain !== null) {
    // a host-only cookie of the same name (set by the site itself) would keep the opt-out alive
    opts._jar.set(cookie(OPT_OUT_COOKIE, "", 0, null, opts._secure));
  }
}

// --- the _sgmt_vid parameter (pure string work: other parameters keep their exact encoding) -------

/**
 * `[the first _sgmt_vid of href, decoded (null when undecodable), href without any _sgmt_vid pair
 * (other parameters and the fragment untouched)]`; `[null, null]` when it has none.
 */
export function crossDomainParam(href: string): [id: string | null, clean: string | null] {
  const [rest, hasFragment, fragment] = partition(href, "#");
  const [head, hasQuery, query] = partition(rest, "?");
  let id: string | null | undefined;
  const pairs = query.split("&");
  const kept = pairs.filter((pair) => {
    const [name, , value] = partition(pair.replace(/\+/g, " "), "=");
    if (decode(name) !== CROSS_DOMAIN_PARAM) return true;
    if (id === undefined) id = decode(value);
    return false;
  });
  if (!hasQuery || id === undefined) return [null, null];
  const q = kept.join("&");
  return [id, head + (q ? "?" + q : "") + (hasFragment ? "#" + fragment : "")];
}

/**
 * The link to follow so that a listed domain adopts this visitor: `href` with
 * `_sgmt_vid=<visitorId>` (replacing any earlier one), or null to leave the link alone —
 * not http(s), not absolute, the current host, or a host not on `domains` (exact, case-insensitive).
 */
export function decorateLink(
  href: string,
  visitorId: string,
  domains: readonly string[],
  currentHost: string,
): string | null {
  href = href.trim();
  const m = /^https?:\/\/([^/?#]*)/i.exec(href);
  if (m === null) return null;
  const hostPort = m[1]!.slice(m[1]!.lastIndexOf("@") + 1);
  const host = hostPort.startsWith("[") ? hostPort.slice(0, hostPort.indexOf("]") + 1) : hostPort.split(":")[0]!;
  if (!isListedHost(host, domains) || normalizeHost(host) === normalizeHost(currentHost)) return null;
  const [rest, hasFragment, fragment] = partition(crossDomainParam(href)[1] || href, "#");
  const [head, , query] = partition(rest, "?");
  const param = `${CROSS_DOMAIN_PARAM}=${encodeURIComponent(visitorId)}`;
  return `${head}?${query ? query + "&" : ""}${param}${hasFragment ? "#" + fragment : ""}`;
}
