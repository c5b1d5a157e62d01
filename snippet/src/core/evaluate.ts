/**
 * Whether a visitor is in an experiment and in which variant, or why not: the server's
 * `segmently.assignment.evaluate`, check for check and in the spec's order.
 */

import { bucketRanges, chooseVariant, type WeightedVariant } from "./assign";
import { hashV2 } from "./hash";
import {
  type AttributeRule,
  type Device,
  type ReferralSource,
  type UrlRule,
  type VisitorType,
  attributesMatch,
  countryMatches,
  deviceForWidth,
  deviceMatches,
  referralMatches,
  urlMatches,
  visitorTypeMatches,
} from "./targeting";
import type { Triggers } from "./types";

/** What evaluation needs of an experiment; empty lists mean no restriction. */
export interface ExperimentRules {
  hashSeed: string;
  variants: readonly WeightedVariant[];
  trafficPercentage?: number;
  urlRules?: readonly UrlRule[];
  devices?: readonly Device[];
  countries?: readonly string[];
  visitorType?: VisitorType;
  attributeRules?: readonly AttributeRule[];
  referralSources?: readonly ReferralSource[];
}

/** What evaluation needs of a visitor on a page. */
export interface VisitorContext {
  visitorId: string;
  /** `location.href`; null when unknown, which fails any URL rule. */
  url?: string | null;
  /** the device if known, else derived from `viewportWidth`; unknown fails device targeting. */
  device?: Device | null;
  viewportWidth?: number | null;
  /** ISO 3166-1 alpha-2 from the config; null, "" or XX (not detected) passes country targeting. */
  country?: string | null;
  /** whether the `_seg_visitor` cookie was already present. */
  isReturning?: boolean;
  attributes?: Readonly<Record<string, unknown>>;
  /** `document.referrer`. */
  referrer?: string | null;
  /** the referral chunk's classification; without it a referral gate is not passed */
  classify?: ((url: string, referrer: string | null | undefined) => ReferralSource) | null;
}

export type Reason = "url" | "device" | "country" | "visitor_type" | "attributes" | "referral" | "traffic";

export type Decision =
  | { inExperiment: true; variantIndex: number; variantId: string; variantKey: string; bucket: number }
  | { inExperiment: false; reason: Reason };

/**
 * URL (any rule), device, country, visitor type, attribute rules, referral source gate, then the
 * traffic percentage through the bucket ranges; the first failing check is the reason.
 */
export function evaluate(experiment: ExperimentRules, visitor: VisitorContext): Decision {
  const out = (reason: Reason): Decision => ({ inExperiment: false, reason });
  const url = visitor.url;
  const width = visitor.viewportWidth;
  const traffic = experiment.trafficPercentage;
  const sources = experiment.referralSources || [];
  // `||` where `??` was meant: esbuild expands `??` for ES2018, and only null/undefined are falsy here
  if (!urlMatches(experiment.urlRules || [], url)) return out("url");
  if (!deviceMatches(experiment.devices || [], visitor.device || (width == null ? null : deviceForWidth(width)))) {
    return out("device");
  }
  if (!countryMatches(experiment.countries || [], visitor.country)) return out("country");
  if (!visitorTypeMatches(experiment.visitorType || "all", !!visitor.isReturning)) return out("visitor_type");
  if (!attributesMatch(experiment.attributeRules || [], visitor.attributes || {})) return out("attributes");
  // no page URL: no parameters and no own host
  const classify = visitor.classify;
  if (sources.length > 0 && !referralMatches(sources, classify ? classify(url || "", visitor.referrer) : null)) {
    return out("referral");
  }
  const ranges = bucketRanges(
    experiment.variants.map((v) => v.weight / 100),
    (traffic == null ? 100 : traffic) / 100,
  );
  const bucket = hashV2(experiment.hashSeed, visitor.visitorId);
  const i = chooseVariant(bucket, ranges);
  if (i < 0) return out("traffic");
  const v = experiment.variants[i]!;
  return { inExperiment: true, variantIndex: i, variantId: v.id, variantKey: v.key, bucket };
}

/** Whether the experiment waits for a behavioral trigger (any of scroll, time, click set). */
export function hasTriggers(t: Triggers | null | undefined): boolean {
  return !!t && (t.scroll_percent != null || t.time_seconds != null || !!t.click_selector);
}
