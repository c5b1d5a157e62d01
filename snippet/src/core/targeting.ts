/**
 * Targeting predicates, identical to `segmently.targeting` on the server: URL rules, device,
 * country, visitor type, attribute rules and the referral source gate (the classification is the
 * `referral` chunk's, src/modules/referral.ts).
 *
 * Pure functions on plain values; every choice the spec leaves open is the server's, documented in
 * `core/src/segmently/targeting.py`, and both sides are held to `tests/fixtures/targeting_cases.json`.
 */

export type UrlRuleType = "exact" | "contains" | "starts_with" | "ends_with" | "regex";
export type Device = "desktop" | "tablet" | "mobile";
export type VisitorType = "all" | "new" | "returning";
export type AttributeOperator =
  | "equals"
  | "not_equals"
  | "contains"
  | "greater_than"
  | "less_than"
  | "exists"
  | "not_exists";
export type ReferralSource = "organic" | "paid" | "social" | "email" | "direct" | "other";

/** One URL rule of the Targeting tab; an experiment runs where any of its rules matches. */
export interface UrlRule {
  type: UrlRuleType;
  value: string;
}

/** One attribute rule of the Audience tab; `value` is unused by exists / not_exists. */
export interface AttributeRule {
  key: string;
  operator: AttributeOperator;
  value?: unknown;
}

export const DESKTOP_MIN_WIDTH = 1024;
export const TABLET_MIN_WIDTH = 768;
/** `setAttributes()` drops these keys, so a rule never sees them. */
export const RESERVED_ATTRIBUTE_KEYS: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);

// --- URL rules -------------------------------------------------------------------------------------

const ORIGIN = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/;

/** `[lower-cased scheme://host or null, path without trailing slashes]` of a URL without query. */
function splitOrigin(base: string): [string | null, string] {
  const m = ORIGIN.exec(base);
  const origin = m && m[0];
  return [origin && origin.toLowerCase(), base.slice(origin ? origin.length : 0).replace(/\/+$/, "")];
}

/** Everything before the first `sep` (all of `s` without one), whether there was one, and the rest. */
export function partition(s: string, sep: string): [string, boolean, string] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, false, ""] : [s.slice(0, i), true, s.slice(i + sep.length)];
}

/**
 * Whether one URL rule matches `url`. `exact` compares scheme and host case-insensitively and the
 * path case-sensitively, ignoring the fragment and trailing slashes, the query only if the rule has
 * one, and a rule without scheme and host compares the path alone; `contains`, `starts_with` and
 * `regex` see the whole URL; `ends_with` sees it without fragment and query unless the rule names
 * them (`?`: the query counts, `#`: the whole URL). An unknown type or an invalid regex never matches.
 */
export function urlRuleMatches(rule: UrlRule, url: string): boolean {
  const { type, value } = rule;
  const withoutFragment = partition(url, "#")[0];
  const [base, , query] = partition(withoutFragment, "?");
  if (type == "exact") {
    const [ruleBase, hasQuery, ruleQuery] = partition(partition(value, "#")[0], "?");
    const [origin, path] = splitOrigin(ruleBase);
    const [urlOrigin, urlPath] = splitOrigin(base);
    return urlPath === path && (origin === null || urlOrigin === origin) && (!hasQuery || query === ruleQuery);
  }
  if (type == "contains") return url.includes(value);
  if (type == "starts_with") return url.startsWith(value);
  if (type == "ends_with") {
    return (value.includes("#") ? url : value.includes("?") ? withoutFragment : base).endsWith(value);
  }
  if (type == "regex") {
    try {
      return new RegExp(value).test(url);
    } catch {
      // an invalid regex never matches
    }
  }
  return false;
}

/** Whether any rule matches `url`; no rules match every URL, an unknown URL matches no rule. */
export function urlMatches(rules: readonly UrlRule[], url: string | null | undefined): boolean {
  return rules.length === 0 || (url != null && rules.some((rule) => urlRuleMatches(rule, url)));
}

// --- device, country, visitor type ---------------------------------------------------------------

/** The device type of a viewport width in CSS pixels: desktop ≥ 1024, tablet 768–1023, mobile < 768. */
export function deviceForWidth(viewportWidth: number): Device {
  if (viewportWidth >= DESKTOP_MIN_WIDTH) return "desktop";
  if (viewportWidth >= TABLET_MIN_WIDTH) return "tablet";
  return "mobile";
}

/** Whether `device` is targeted; no devices (or all three) is every device, even an unknown one. */
export function deviceMatches(devices: readonly Device[], device: Device | null | undefined): boolean {
  // includes(null) is false: the list holds device names only
  return devices.length == 0 || new Set(devices).size > 2 || devices.includes(device!);
}

// Python's str.strip() whitespace (str.isspace): JavaScript's \s (whose only extra is U+FEFF) plus
// U+001C–U+001F and U+0085; String.prototype.trim() would answer differently
const PY_SPACE = "(?:(?!\ufeff)[\\s\x1c-\x1f\x85])+";

/** `s.strip()` as Python answers it. */
export function pyStrip(s: string): string {
  return s.replace(new RegExp(`^${PY_SPACE}|${PY_SPACE}$`, "g"), "");
}

/** Upper-cased ISO 3166-1 alpha-2 code, or null when not detected (missing, empty or `XX`). */
export function normalizeCountry(country: string | null | undefined): string | null {
  if (country == null) return null;
  const code = pyStrip(country).toUpperCase();
  return code === "" || code === "XX" ? null : code;
}

/** Whether the visitor's country is targeted; no countries, or an undetected one, lets through. */
export function countryMatches(countries: readonly string[], country: string | null | undefined): boolean {
  const code = normalizeCountry(country);
  if (countries.length === 0 || code === null) return true;
  return countries.some((c) => c.toUpperCase() === code);
}

/** `all` takes everyone, `new` only first visits, `returning` only visitors seen before. */
export function visitorTypeMatches(visitorType: VisitorType, isReturning: boolean): boolean {
  if (visitorType === "new") return !isReturning;
  if (visitorType === "returning") return isReturning;
  return true;
}

// --- attribute rules -----------------------------------------------------------------------------

/**
 * Whether one rule passes for the visitor's attributes (keys are case-sensitive, own keys only).
 *
 * Reserved keys and null/undefined values count as absent. equals, not_equals and contains
 * compare `String()` of both sides, case-sensitively; an absent attribute fails equals and
 * contains and passes not_equals. greater_than and less_than compare `parseFloat()` of both sides
 * and fail when either is not a number (NaN compares false). Every operator but exists /
 * not_exists fails without a value; an unknown operator, or a value `String()` throws on, fails.
 */
export function attributeRulePasses(rule: AttributeRule, attributes: Readonly<Record<string, unknown>>): boolean {
  const key = rule.key;
  const value = rule.value;
  const op = rule.operator;
  const actual = RESERVED_ATTRIBUTE_KEYS.has(key) || !Object.prototype.hasOwnProperty.call(attributes, key) ? null : attributes[key];
  if (op == "exists") return actual != null;
  if (op == "not_exists") return actual == null;
  if (value == null) return false;
  try {
    const a = String(actual);
    const b = String(value);
    if (op == "greater_than") return parseFloat(a) > parseFloat(b);
    if (op == "less_than") return parseFloat(a) < parseFloat(b);
    if (actual == null) return op == "not_equals";
    if (op == "equals") return a === b;
    if (op == "not_equals") return a !== b;
    if (op == "contains") return a.includes(b);
  } catch {
    // String() throws for an object without a prototype
  }
  return false;
}

/** Whether every rule passes (AND); no rules always pass. */
export function attributesMatch(
  rules: readonly AttributeRule[],
  attributes: Readonly<Record<string, unknown>>,
): boolean {
  return rules.every((rule) => attributeRulePasses(rule, attributes));
}

// --- referral source (classified by the `referral` chunk, src/modules/referral.ts) -------------------

/** Whether the visit's source passes the gate; no sources selected means no gate. */
export function referralMatches(sources: readonly ReferralSource[], source: ReferralSource | null): boolean {
  return sources.length == 0 || sources.includes(source!); // never null: the list holds names only
}
