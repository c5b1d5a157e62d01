// The targeting cases of tests/fixtures/targeting_cases.json, answered by segmently.targeting on the
// server (every case of tests/core/test_targeting.py and more): the snippet must answer alike.
import { describe, expect, test } from "vitest";
import casesText from "../../tests/fixtures/targeting_cases.json?raw";
import { type ExperimentRules, type VisitorContext, evaluate } from "../src/core/evaluate";
import { hashV2 } from "../src/core/hash";
import {
  type AttributeRule,
  type Device,
  type ReferralSource,
  type VisitorType,
  attributeRulePasses,
  attributesMatch,
  countryMatches,
  deviceForWidth,
  deviceMatches,
  referralMatches,
  urlMatches,
  visitorTypeMatches,
} from "../src/core/targeting";
import { classifyReferral, referralSourceOf } from "../src/modules/referral";

type Attributes = Record<string, unknown>;

type UrlRule = { type: string; value: string };

interface PyExperiment {
  hash_seed: string;
  variants: { id: string; key: string; weight: number }[];
  traffic_percentage: number;
  url_rules: UrlRule[];
  devices: Device[];
  countries: string[];
  visitor_type: VisitorType;
  attribute_rules: AttributeRule[];
  referral_sources: ReferralSource[];
  /** what the config serves beside the stored targeting (segmently.assignment.snippet_rules) */
  snippet: { url: string[]; ranges: [number, number][]; countries: string[]; devices: Device[] };
}

interface PyVisitor {
  visitor_id: string;
  url: string | null;
  device: Device | null;
  viewport_width: number | null;
  country: string | null;
  is_returning: boolean;
  attributes: Attributes;
  referrer: string | null;
  /** the country as the config serves it (normalized) */
  served_country: string | null;
}

interface PyDecision {
  in_experiment: boolean;
  variant_index: number;
  variant_id: string | null;
  variant_key: string | null;
  bucket: number | null;
  reason: string | null;
}

interface Cases {
  url_rules: { rule: UrlRule; pattern: string; url: string; matches: boolean }[];
  url_rule_lists: { rules: UrlRule[]; patterns: string[]; url: string | null; matches: boolean }[];
  device_for_width: { width: number; device: Device }[];
  device_targeting: { devices: Device[]; device: Device | null; served: Device[]; matches: boolean }[];
  country_targeting: {
    countries: string[];
    country: string | null;
    served: { countries: string[]; country: string | null };
    matches: boolean;
  }[];
  visitor_type: { visitor_type: VisitorType; is_returning: boolean; matches: boolean }[];
  attribute_rules: { rules: AttributeRule[]; attributes: Attributes; passes: boolean }[];
  referral: { params: Record<string, string>; referrer: string | null; own_host: string | null; source: ReferralSource }[];
  referral_from_url: { url: string; referrer: string | null; source: ReferralSource }[];
  evaluate: { experiment: PyExperiment; visitor: PyVisitor; decision: PyDecision }[];
}

const cases = JSON.parse(casesText) as Cases;

/** Each row whose answer differs, with the answer; empty when all agree (one readable assertion). */
function disagreements<T>(rows: T[], answer: (row: T) => unknown, expected: (row: T) => unknown): string[] {
  const out: string[] = [];
  for (const row of rows) {
    const got = answer(row);
    if (JSON.stringify(got) !== JSON.stringify(expected(row))) out.push(`${JSON.stringify(row)} → ${JSON.stringify(got)}`);
  }
  return out;
}

const params = (p: Record<string, string>) => ({ get: (name: string) => p[name] });

describe("the shared targeting cases", () => {
  test("every section has cases", () => {
    for (const rows of Object.values(cases)) {
      if (Array.isArray(rows)) expect(rows.length).toBeGreaterThan(5);
    }
  });

  // the server writes each rule as a pattern (tests/core/test_targeting.py holds the patterns to the
  // rules in Python's re): here JavaScript's RegExp must read them alike
  test("URL rules, as the patterns the config serves", () => {
    expect(disagreements(cases.url_rules, (r) => urlMatches([r.pattern], r.url), (r) => r.matches)).toEqual([]);
  });

  test("URL rule lists combine with OR", () => {
    expect(disagreements(cases.url_rule_lists, (r) => urlMatches(r.patterns, r.url), (r) => r.matches)).toEqual([]);
  });

  test("device from the viewport width", () => {
    expect(disagreements(cases.device_for_width, (r) => deviceForWidth(r.width), (r) => r.device)).toEqual([]);
  });

  test("device targeting", () => {
    expect(disagreements(cases.device_targeting, (r) => deviceMatches(r.served, r.device), (r) => r.matches)).toEqual(
      [],
    );
  });

  test("country targeting", () => {
    expect(
      disagreements(
        cases.country_targeting,
        (r) => countryMatches(r.served.countries, r.served.country),
        (r) => r.matches,
      ),
    ).toEqual([]);
  });

  test("visitor type", () => {
    expect(
      disagreements(cases.visitor_type, (r) => visitorTypeMatches(r.visitor_type, r.is_returning), (r) => r.matches),
    ).toEqual([]);
  });

  test("attribute rules, the 7 operators and reserved keys", () => {
    expect(disagreements(cases.attribute_rules, (r) => attributesMatch(r.rules, r.attributes), (r) => r.passes)).toEqual(
      [],
    );
  });

  test("referral source classification", () => {
    expect(
      disagreements(cases.referral, (r) => classifyReferral(params(r.params), r.referrer, r.own_host), (r) => r.source),
    ).toEqual([]);
  });

  test("referral source of a page URL", () => {
    expect(disagreements(cases.referral_from_url, (r) => referralSourceOf(r.url, r.referrer), (r) => r.source)).toEqual(
      [],
    );
  });

  test("evaluation, check for check in the spec's order", () => {
    // the server's experiment as the config serves it
    const experiment = (e: PyExperiment): ExperimentRules => ({
      seed: e.hash_seed,
      url: e.snippet.url,
      ranges: e.snippet.ranges,
      targeting: { devices: e.snippet.devices, countries: e.snippet.countries },
      audience: {
        visitor_type: e.visitor_type,
        attribute_rules: e.attribute_rules,
        referral_sources: e.referral_sources,
      },
    });
    const visitor = (v: PyVisitor): VisitorContext => ({
      _visitorId: v.visitor_id,
      _url: v.url,
      _device: v.device,
      _viewportWidth: v.viewport_width,
      _country: v.served_country,
      _isReturning: v.is_returning,
      _attributes: v.attributes,
      _referrer: v.referrer,
      _classify: referralSourceOf,
    });
    // evaluate() answers the variant's index or -1; the rest of the server's decision follows from it
    // (but the reason: the snippet only needs in or out, and every check is held to the server's above)
    const decision = (e: PyExperiment, v: PyVisitor, answer: number) =>
      answer >= 0
        ? {
            in_experiment: true,
            variant_index: answer,
            variant_id: e.variants[answer]!.id,
            variant_key: e.variants[answer]!.key,
            bucket: hashV2(e.hash_seed, v.visitor_id),
          }
        : { in_experiment: false, variant_index: -1, variant_id: null, variant_key: null, bucket: null };
    expect(
      disagreements(
        cases.evaluate,
        (r) => decision(r.experiment, r.visitor, evaluate(experiment(r.experiment), visitor(r.visitor))),
        ({ decision: { reason: _, ...d } }) => d,
      ),
    ).toEqual([]);
    // the cases leave visitors out by every check (without any one of them, some case is decided wrongly)
    const reasons = new Set(cases.evaluate.map((r) => r.decision.reason));
    for (const reason of [null, "url", "device", "country", "visitor_type", "attributes", "referral", "traffic"]) {
      expect(reasons, `no case excluded by ${reason}`).toContain(reason);
    }
  });
});

describe("JavaScript-only inputs", () => {
  test("inherited keys and reserved keys are never attributes", () => {
    const attrs = JSON.parse('{"__proto__": "x", "plan": "pro"}') as Attributes;
    expect(attributeRulePasses({ key: "__proto__", operator: "exists" }, attrs)).toBe(false);
    expect(attributeRulePasses({ key: "toString", operator: "exists" }, {})).toBe(false);
    expect(attributeRulePasses({ key: "plan", operator: "exists" }, Object.create({ plan: "pro" }) as Attributes)).toBe(
      false,
    );
  });

  test("undefined counts as absent, like null", () => {
    expect(attributeRulePasses({ key: "a", operator: "exists" }, { a: undefined })).toBe(false);
    expect(attributeRulePasses({ key: "a", operator: "not_equals", value: "x" }, { a: undefined })).toBe(true);
    expect(attributeRulePasses({ key: "a", operator: "equals", value: undefined }, { a: "x" })).toBe(false);
  });

  test("a value String() throws on fails the rule instead of throwing", () => {
    const attrs: Attributes = { s: Symbol("x"), o: Object.create(null) as object };
    expect(attributeRulePasses({ key: "s", operator: "equals", value: "x" }, attrs)).toBe(false);
    expect(attributeRulePasses({ key: "o", operator: "contains", value: "x" }, attrs)).toBe(false);
    expect(attributeRulePasses({ key: "o", operator: "greater_than", value: "1" }, attrs)).toBe(false);
    expect(attributeRulePasses({ key: "s", operator: "exists" }, attrs)).toBe(true);
  });

  test("a URLSearchParams feeds the referral classification", () => {
    expect(classifyReferral(new URLSearchParams("utm_medium=cpc"), "", "a.com")).toBe("paid");
    expect(classifyReferral(new URLSearchParams(""), "", "a.com")).toBe("direct");
  });

  test("the referral gate", () => {
    expect(referralMatches([], "other")).toBe(true);
    expect(referralMatches(["paid", "email"], "email")).toBe(true);
    expect(referralMatches(["paid"], "organic")).toBe(false);
  });
});
