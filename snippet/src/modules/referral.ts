/**
 * The `referral` chunk (`dist/referral.js`): the traffic source of a visit, for the Audience tab's
 * referral source gate, identical to `segmently.targeting.classify_referral` on the server. The core
 * loads it only when a live experiment has referral sources; the curtain waits for it on a page where
 * one of them is evaluated (README "Chunks").
 */

import type { ModuleHost } from "../core/host";
import { type ReferralSource, partition } from "../core/targeting";

export type { ReferralSource } from "../core/targeting";

/** What this chunk registers with the core (`host.register("referral", …)`). */
export interface Referral {
  source(url: string, referrer: string | null | undefined): ReferralSource;
}


// Python's str.strip() whitespace (str.isspace): JavaScript's \s (whose only extra is U+FEFF) plus
// U+001C–U+001F and U+0085; String.prototype.trim() would answer differently
const PY_SPACE = "(?:(?!\ufeff)[\\s\x1c-\x1f\x85])+";

/** `s.strip()` as Python answers it. */
function pyStrip(s: string): string {
  return s.replace(new RegExp(`^${PY_SPACE}|${PY_SPACE}$`, "g"), "");
}

const UTM_KEYS = ["utm_source", "utm_medium", "utm_campaign"] as const;
const PAID_MEDIUMS: ReadonlySet<string> = new Set(["cpc", "ppc", "paid", "paid_search", "paidsocial"]);
const EMAIL_SOURCES: ReadonlySet<string> = new Set(["email", "newsletter"]);
const SEARCH_ENGINES = ["google.com", "bing.com", "yahoo.com", "duckduckgo.com", "baidu.com", "yandex.com"];
const SOCIAL_SITES = [
  "facebook.com",
  "twitter.com",
  "x.com",
  "instagram.com",
  "linkedin.com",
  "pinterest.com",
  "tiktok.com",
  "reddit.com",
  "youtube.com",
];

function onDomain(host: string, domains: readonly string[]): boolean {
  return domains.some((d) => host === d || host.endsWith("." + d));
}

/** `Shop.example.com:8080` → `shop.example.com`; `www.` is dropped. */
function bareHost(host: string): string {
  host = pyStrip(host).toLowerCase();
  if (!host.startsWith("[")) host = partition(host, ":")[0];
  return host.startsWith("www.") ? host.slice(4) : host;
}

const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;
// what Python's urlsplit strips first: leading C0 controls and spaces, then every tab and newline
const LEADING_C0_OR_SPACE = /^[\x00-\x20]+/;
const TAB_NEWLINE = /[\t\r\n]/g;

/**
 * The host of a URL as Python's `urlsplit(url).hostname` gives it (lower-cased; "" when there is
 * none), or null where urlsplit refuses the URL (an unbalanced IPv6 bracket). Ported instead of
 * `new URL()` so that the server and the snippet classify the same referrer alike.
 */
export function hostnameOf(url: string): string | null {
  let rest = url.replace(LEADING_C0_OR_SPACE, "").replace(TAB_NEWLINE, "");
  const scheme = SCHEME.exec(rest);
  if (scheme !== null) rest = rest.slice(scheme[0].length);
  if (!rest.startsWith("//")) return "";
  const end = rest.slice(2).search(/[/?#]/);
  const netloc = end < 0 ? rest.slice(2) : rest.slice(2, 2 + end);
  if (netloc.includes("[") !== netloc.includes("]")) return null;
  const hostinfo = netloc.slice(netloc.lastIndexOf("@") + 1);
  const [, bracket, bracketed] = partition(hostinfo, "[");
  const hostname = bracket ? partition(bracketed, "]")[0] : partition(hostinfo, ":")[0];
  const [host, percent, zone] = partition(hostname, "%");
  return host.toLowerCase() + (percent ? "%" + zone : "");
}

/**
 * The traffic source of a visit, for the referral source gate.
 *
 * UTM parameters (utm_source, utm_medium, utm_campaign with a non-empty value) take precedence,
 * compared case-insensitively, the medium before the source: medium cpc/ppc/paid/paid_search/
 * paidsocial → paid; medium email → email; medium social → social; source email/newsletter →
 * email; source google → paid (the spec's Paid definition wins over its "utm_source=google
 * simulates organic" testing tip); any other UTM → other. Without UTM: no referrer, or one on
 * `ownHost` (ignoring `www.` and the port) → direct; a search engine or its subdomain → organic; a
 * social platform or its subdomain → social; anything else, including an unparsable referrer → other.
 *
 * @param urlParams the page's query parameters (first value of each name), e.g. a URLSearchParams.
 * @param referrer `document.referrer`.
 * @param ownHost the page's host (`location.hostname`), so navigation within the site is direct.
 */
export function classifyReferral(
  urlParams: { get(name: string): string | null | undefined },
  referrer: string | null | undefined,
  ownHost: string | null | undefined,
): ReferralSource {
  const [source, medium, campaign] = UTM_KEYS.map((k) => pyStrip(urlParams.get(k) || "").toLowerCase()) as [
    string,
    string,
    string,
  ];
  if (source || medium || campaign) {
    if (PAID_MEDIUMS.has(medium)) return "paid";
    if (medium === "email") return "email";
    if (medium === "social") return "social";
    if (EMAIL_SOURCES.has(source)) return "email";
    if (source === "google") return "paid";
    return "other";
  }
  if (!referrer) return "direct";
  let host = hostnameOf(pyStrip(referrer));
  if (host === null) return "other";
  if (host.startsWith("www.")) host = host.slice(4);
  if (!host) return "other";
  if (ownHost && host === bareHost(ownHost)) return "direct";
  if (onDomain(host, SEARCH_ENGINES)) return "organic";
  if (onDomain(host, SOCIAL_SITES)) return "social";
  return "other";
}

/** The traffic source of a visit to `url` (its query parameters and host) from `referrer`. */
export function referralSourceOf(url: string, referrer: string | null | undefined): ReferralSource {
  const query = partition(partition(url.replace(TAB_NEWLINE, ""), "#")[0], "?")[2];
  const host = hostnameOf(url);
  if (host === null) return classifyReferral(new URLSearchParams(), referrer, null);
  return classifyReferral(new URLSearchParams(query), referrer, host || null);
}

if (typeof window !== "undefined" && window.__segmentlyHost) {
  window.__segmentlyHost.register("referral", { source: referralSourceOf } satisfies Referral);
}
