/**
 * Whether a visitor is in an experiment and in which variant, or why not: the server's
 * `segmently.assignment.evaluate`, check for check and in the spec's order.
 */

import { chooseVariant } from "./assign";
import { hashV2 } from "./hash";
import {
  type Device,
  type ReferralSource,
  attributesMatch,
  countryMatches,
  deviceForWidth,
  deviceMatches,
  referralMatches,
  urlMatches,
  visitorTypeMatches,
} from "./targeting";
import type { ExperimentConfig } from "./types";

/** What evaluation reads of an experiment of the config; missing lists mean no restriction. */
export type ExperimentRules = Pick<ExperimentConfig, "seed" | "url" | "ranges" | "targeting" | "audience">;

/** What evaluation needs of a visitor on a page. */
export interface VisitorContext {
  _visitorId: string;
  /** `location.href`; null when unknown, which fails any URL rule. */
  _url?: string | null;
  /** the device if known, else derived from `viewportWidth`; unknown fails device targeting. */
  _device?: Device | null;
  _viewportWidth?: number | null;
  /** ISO 3166-1 alpha-2 from the config (normalized by the server); null (not detected) passes country targeting. */
  _country?: string | null;
  /** whether the `_seg_visitor` cookie was already present. */
  _isReturning?: boolean;
  _attributes?: Readonly<Record<string, unknown>>;
  /** `document.referrer`. */
  _referrer?: string | null;
  /** the referral chunk's classification; without it a referral gate is not passed */
  _classify?: ((url: string, referrer: string | null | undefined) => ReferralSource) | null;
}

/** Why a visitor is left out. */
export type Reason = "url" | "device" | "country" | "visitor_type" | "attributes" | "referral" | "traffic";

/**
 * The index of the visitor's variant in `experiment.variants`, or the reason they are left out:
 * URL (any rule's pattern), device, country, visitor type, attribute rules, referral source gate,
 * then the traffic percentage through the bucket ranges (the config's, computed by the server from
 * the weights); the first failing check is the reason.
 */
export function evaluate(experiment: ExperimentRules, visitor: VisitorContext): number | Reason {
  const t = experiment.targeting;
  const a = experiment.audience;
  const url = visitor._url;
  const width = visitor._viewportWidth;
  const sources = a.referral_sources || [];
  const classify = visitor._classify;
  // `||` where `??` was meant: esbuild expands `??` for ES2018, and only null/undefined are falsy here
  if (!urlMatches(experiment.url, url)) return "url";
  if (!deviceMatches(t.devices || [], visitor._device || (width == null ? null : deviceForWidth(width)))) return "device";
  if (!countryMatches(t.countries || [], visitor._country)) return "country";
  if (!visitorTypeMatches(a.visitor_type || "all", !!visitor._isReturning)) return "visitor_type";
  if (!attributesMatch(a.attribute_rules || [], visitor._attributes || {})) return "attributes";
  // no page URL: no parameters and no own host
  if (sources.length > 0 && !referralMatches(sources, classify ? classify(url || "", visitor._referrer) : null)) {
    return "referral";
  }
  const i = chooseVariant(hashV2(experiment.seed, visitor._visitorId), experiment.ranges);
  return i < 0 ? "traffic" : i;
}
