/**
 * Who the visitor is: the first-party cookies of ARCHITECTURE.md §9, the opt-out cookie, `reset()`
 * and cross-domain hand-over through the `_sgmt_vid` link parameter.
 *
 * - `seg_visitor_id`: the visitor id (a random UUID), 1 year, renewed on every page load;
 * - `_seg_visitor`: set on the first visit (value: its Unix milliseconds); its presence when the
 *   snippet loads makes the visitor "returning" for the Audience tab's visitor type;
 * - `segmently_opt_out=true` (set by the site, e.g. a consent banner): nothing is tracked and the
 *   snippet writes no cookie of its own.
 *
 * Cookies are `path=/`, `SameSite=Lax`, `Secure` on https, and set on the widest domain the
 * browser accepts (`.example.com` from `www.example.com`, found by writing a probe cookie the way
 * analytics tags do, so no public-suffix list ships in the bundle); on `localhost` and IP addresses
 * they are host-only. Everything here goes through a `CookieJar`, so tests use a fake.
 */

import { type RandomFill, defaultRandom, isVisitorId, uuidv4 } from "./ids";

export const VISITOR_COOKIE = "seg_visitor_id";
export const RETURNING_COOKIE = "_seg_visitor";
export const OPT_OUT_COOKIE = "segmently_opt_out";
export const CROSS_DOMAIN_PARAM = "_sgmt_vid";
export const COOKIE_MAX_AGE_S = 365 * 24 * 60 * 60;
const PROBE_COOKIE = "_seg_probe";

/** `document.cookie` as an interface: `get()` reads the `a=b; c=d` string, `set()` writes one cookie. */
export interface CookieJar {
  get(): string;
  set(cookie: string): void;
}

/** The browser's cookie jar; a blocked `document.cookie` (sandboxed iframe) reads as empty. */
export function documentCookieJar(doc: Document): CookieJar {
  return {
    get: () => {
      try {
        return doc.cookie;
      } catch {
        return "";
      }
    },
    set: (cookie) => {
      try {
        doc.cookie = cookie;
      } catch {
        // cookies blocked: the visitor id lives for this page only
      }
    },
  };
}

/** Every value of cookie `name` (a host-only and a domain cookie may share a name), decoded. */
export function readCookies(jar: CookieJar, name: string): string[] {
  const out: string[] = [];
  for (const part of jar.get().split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    const raw = part.slice(eq + 1).trim();
    try {
      out.push(decodeURIComponent(raw));
    } catch {
      out.push(raw);
    }
  }
  return out;
}

/** The first value of cookie `name`, decoded; null when absent. */
export function readCookie(jar: CookieJar, name: string): string | null {
  const value = readCookies(jar, name)[0];
  return value === undefined ? null : value;
}

interface CookieAttributes {
  domain: string | null;
  secure: boolean;
  maxAgeS: number;
}

function cookieString(name: string, value: string, a: CookieAttributes): string {
  return (
    `${name}=${encodeURIComponent(value)}; path=/; max-age=${a.maxAgeS}` +
    (a.domain === null ? "" : `; domain=.${a.domain}`) +
    "; SameSite=Lax" +
    (a.secure ? "; Secure" : "")
  );
}

/** A hostname as cross-domain lists hold it: lower case, no trailing dot. */
export function normalizeHost(host: string): string {
  return host.trim().toLowerCase().replace(/\.+$/, "");
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/**
 * The widest domain under `hostname` the browser lets us set a cookie on (`example.com` for
 * `www.example.com`; never a public suffix such as `co.uk`, which browsers refuse), or null for a
 * host-only cookie (localhost, IP addresses, or when every probe is refused).
 */
export function cookieDomain(jar: CookieJar, hostname: string, secure: boolean): string | null {
  const host = normalizeHost(hostname);
  if (!host.includes(".") || IPV4.test(host) || host.includes(":")) return null;
  const labels = host.split(".");
  for (let n = 2; n <= labels.length; n++) {
    const candidate = labels.slice(-n).join(".");
    const probe = `${Date.now()}`;
    jar.set(cookieString(PROBE_COOKIE, probe, { domain: candidate, secure, maxAgeS: 10 }));
    if (readCookie(jar, PROBE_COOKIE) === probe) {
      jar.set(cookieString(PROBE_COOKIE, "", { domain: candidate, secure, maxAgeS: 0 }));
      return candidate;
    }
  }
  return null;
}

/** What identity needs of the page. */
export interface IdentityOptions {
  jar: CookieJar;
  /** `location.hostname`. */
  hostname: string;
  /** `location.protocol === "https:"`: cookies get `Secure`. */
  secure: boolean;
  now?: () => number;
  random?: RandomFill;
}

/** The visitor as this page load sees them. */
export interface Identity {
  visitorId: string;
  /** `_seg_visitor` was already set when the page loaded. */
  isReturning: boolean;
  /** `segmently_opt_out=true`: track nothing, write no cookie. */
  optedOut: boolean;
  /** the id came from a `_sgmt_vid` link of another listed domain. */
  adopted: boolean;
  /** the page URL without `_sgmt_vid` (for `history.replaceState`), or null when it had none. */
  cleanUrl: string | null;
  /** the cookie domain in use (null: host-only), for `reset()` and the opt-out helper. */
  domain: string | null;
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
 * Reads (or makes) the visitor's identity and renews its cookies for another year.
 *
 * A valid `_sgmt_vid` in `url` is adopted only when this page's host is on the `crossDomain` list
 * (the site's Advanced-tab setting), so a shared link cannot merge strangers into one visitor
 * elsewhere; the parameter is stripped from `cleanUrl` whether adopted or not.
 */
export function loadIdentity(opts: IdentityOptions, url: string, crossDomain: readonly string[]): Identity {
  const now = opts.now || Date.now;
  const optedOut = isOptedOut(opts.jar);
  const firstSeen = readCookie(opts.jar, RETURNING_COOKIE);
  const fromLink = readCrossDomainId(url);
  const adopted = isVisitorId(fromLink) && isListedHost(opts.hostname, crossDomain);
  const stored = readCookie(opts.jar, VISITOR_COOKIE);
  const visitorId = adopted ? fromLink! : isVisitorId(stored) ? stored : uuidv4(opts.random || defaultRandom);
  let domain: string | null = null;
  if (!optedOut) {
    domain = cookieDomain(opts.jar, opts.hostname, opts.secure);
    const a = { domain, secure: opts.secure, maxAgeS: COOKIE_MAX_AGE_S };
    opts.jar.set(cookieString(VISITOR_COOKIE, visitorId, a));
    opts.jar.set(cookieString(RETURNING_COOKIE, firstSeen === null ? String(now()) : firstSeen, a));
  }
  return { visitorId, isReturning: firstSeen !== null, optedOut, adopted, cleanUrl: cleanUrl(url), domain };
}

/**
 * `Segmently.reset()` (on logout): a fresh visitor id in `seg_visitor_id`; the caller clears
 * assignments and attributes. `_seg_visitor` stays: the browser has been here before.
 */
export function resetIdentity(opts: IdentityOptions, identity: Identity): Identity {
  const visitorId = uuidv4(opts.random || defaultRandom);
  if (!identity.optedOut && !isOptedOut(opts.jar)) {
    const a = { domain: identity.domain, secure: opts.secure, maxAgeS: COOKIE_MAX_AGE_S };
    opts.jar.set(cookieString(VISITOR_COOKIE, visitorId, a));
  }
  return { ...identity, visitorId, adopted: false };
}

/** Sets (`true`) or removes the opt-out cookie, for a consent banner that uses the snippet's helper. */
export function setOptOut(opts: IdentityOptions, optOut: boolean): void {
  const domain = cookieDomain(opts.jar, opts.hostname, opts.secure);
  const maxAgeS = optOut ? COOKIE_MAX_AGE_S : 0;
  opts.jar.set(cookieString(OPT_OUT_COOKIE, optOut ? "true" : "", { domain, secure: opts.secure, maxAgeS }));
  if (!optOut && domain !== null) {
    // a host-only cookie of the same name (set by the site itself) would keep the opt-out alive
    opts.jar.set(cookieString(OPT_OUT_COOKIE, "", { domain: null, secure: opts.secure, maxAgeS: 0 }));
  }
}

// --- the _sgmt_vid parameter (pure string work: other parameters keep their exact encoding) -------

interface UrlParts {
  /** scheme, authority and path: everything before `?` or `#` */
  head: string;
  /** the query without `?`, or null when there is no `?` */
  query: string | null;
  /** `#…` or "" */
  hash: string;
}

function splitUrl(href: string): UrlParts {
  const h = href.indexOf("#");
  const hash = h < 0 ? "" : href.slice(h);
  const rest = h < 0 ? href : href.slice(0, h);
  const q = rest.indexOf("?");
  return q < 0 ? { head: rest, query: null, hash } : { head: rest.slice(0, q), query: rest.slice(q + 1), hash };
}

function paramName(pair: string): string {
  const eq = pair.indexOf("=");
  const raw = (eq < 0 ? pair : pair.slice(0, eq)).replace(/\+/g, " ");
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** The query without any `_sgmt_vid` pair; null when it had none. */
function queryWithout(query: string): string | null {
  const pairs = query.split("&");
  const kept = pairs.filter((p) => paramName(p) !== CROSS_DOMAIN_PARAM);
  return kept.length === pairs.length ? null : kept.join("&");
}

/** The first `_sgmt_vid` of `href`, decoded; null when absent. */
export function readCrossDomainId(href: string): string | null {
  const { query } = splitUrl(href);
  if (query === null) return null;
  for (const pair of query.split("&")) {
    if (paramName(pair) !== CROSS_DOMAIN_PARAM) continue;
    const eq = pair.indexOf("=");
    const raw = eq < 0 ? "" : pair.slice(eq + 1);
    try {
      return decodeURIComponent(raw.replace(/\+/g, " "));
    } catch {
      return null;
    }
  }
  return null;
}

/** `href` without `_sgmt_vid` (other parameters and the fragment untouched); null when it had none. */
export function cleanUrl(href: string): string | null {
  const { head, query, hash } = splitUrl(href);
  if (query === null) return null;
  const kept = queryWithout(query);
  if (kept === null) return null;
  return head + (kept === "" ? "" : `?${kept}`) + hash;
}

const ABSOLUTE_HTTP = /^(https?):\/\/([^/?#]*)/i;

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
  const m = ABSOLUTE_HTTP.exec(href.trim());
  if (m === null) return null;
  const authority = m[2]!;
  const hostPort = authority.slice(authority.lastIndexOf("@") + 1);
  const host = hostPort.startsWith("[") ? hostPort.slice(0, hostPort.indexOf("]") + 1) : hostPort.split(":")[0]!;
  if (!isListedHost(host, domains) || normalizeHost(host) === normalizeHost(currentHost)) return null;
  const { head, query, hash } = splitUrl(href.trim());
  const without = query === null ? "" : queryWithout(query);
  const kept = without === null ? query! : without;
  const param = `${CROSS_DOMAIN_PARAM}=${encodeURIComponent(visitorId)}`;
  return `${head}?${kept === "" ? param : `${kept}&${param}`}${hash}`;
}
