/**
 * Targeting predicates, identical to `segmently.targeting` on the server: URL rules (as the
 * config's patterns), device, country, visitor type, attribute rules and the referral source gate
 * (the classification is the `referral` chunk's, src/modules/referral.ts).
 *
 * Pure functions on plain values; every choice the spec leaves open is the server's, documented in
 * `core/src/segmently/targeting.py`, and both sides are held to `tests/fixtures/targeting_cases.json`.
 */

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

/**
 * Whether any of an experiment's URL patterns matches `url`; no patterns match every URL, an unknown
 * URL matches none. The config serves each URL rule as a pattern (`url`, built by
 * `segmently.targeting.url_pattern` with the rules' semantics); an invalid regex rule never matches.
 */
export function urlMatches(patterns: readonly string[], url: string | null | undefined): boolean {
  return (
    patterns.length == 0 ||
    (url != null &&
      patterns.some((pattern) => {
        try {
          return new RegExp(pattern).test(url);
        } catch {
          return false;
        }
      }))
  );
}

/** Everything before the first `sep` (all of `s` without one), whether there was one, and the rest. */
export function partition(s: string, sep: string): [string, boolean, string] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, false, ""] : [s.slice(0, i), true, s.slice(i + sep.length)];
}

// --- device, country, visitor type ---------------------------------------------------------------

/** The device type of a viewport width in CSS pixels: desktop ≥ 1024, tablet 768–1023, mobile < 768. */
export function deviceForWidth(viewportWidth: number): Device {
  if (viewportWidth >= DESKTOP_MIN_WIDTH) return "desktop";
  if (viewportWidth >= TABLET_MIN_WIDTH) return "tablet";
  return "mobile";
}

/**
 * Whether `device` is targeted; no devices is every device, even an unknown one. The config serves
 * none for all three (segmently.assignment.snippet_rules).
 */
export function deviceMatches(devices: readonly Device[], device: Device | null | undefined): boolean {
  // includes(null) is false: the list holds device names only
  return devices.length == 0 || devices.includes(device!);
}

/**
 * Whether the visitor's country is targeted; no countries, or an undetected one (null), lets
 * through. Both come as the config serves them: the countries upper-cased, the visitor's normalized.
 */
export function countryMatches(countries: readonly string[], country: string | null | undefined): boolean {
  return countries.length == 0 || country == null || countries.includes(country);
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
