/**
 * Whether a visitor is in an experiment and in which variant: the server's
 * `segmently.assignment.evaluate`, check for check.
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

/**
 * The index of the visitor's variant in `experiment.variants`, or -1 when they are left out: URL
 * (any rule's pattern), device, country, visitor type, attribute rules and the referral source gate
 * must all pass, then the bucket ranges (the config's, computed by the server from the weights and
 * the traffic percentage) place them. The server's `evaluate` also names the first failing check
 * (its reason); nothing on the page reads one, so the snippet answers in or out only.
 */
export function evaluate(experiment: ExperimentRules, visitor: VisitorContext): number {
  const t = experiment.targeting;
  const a = experiment.audience;
  const url = visitor._url;
  const width = visitor._viewportWidth;
  const sources = a.referral_sources || [];
  const classify = visitor._classify;
  // `||` where `??` was meant: esbuild expands `??` for ES2018, and only null/undefined are falsy here
  return urlMatches(experiment.url, url) &&
    deviceMatches(t.devices || [], visitor._device || (width == null ? null : deviceForWidth(width))) &&
    countryMatches(t.countries || [], visitor._country) &&
    visitorTypeMatches(a.visitor_type || "all", !!visitor._isReturning) &&
    attributesMatch(a.attribute_rules || [], visitor._attributes || {}) &&
    // classified only when there is a gate; no page URL: no parameters and no own host
    referralMatches(sources, sources.length && classify ? classify(url || "", visitor._referrer) : null)
    ? chooseVariant(hashV2(experiment.seed, visitor._visitorId), experiment.ranges)
    : -1;
}
