/**
 * The shapes of `GET /api/v1/sdk/config` (built by `core/src/segmently/domain/sdk/config.py`) that
 * the snippet reads. Types only: nothing here reaches the bundle.
 */

import type { BucketRange } from "./assign";
import type { AttributeRule, Device, ReferralSource, VisitorType } from "./targeting";

/** One visual-editor change (`segmently.domain.experiments.schemas.Change`). */
export type Change =
  | { type: "hide"; selector: string; mode?: "hide" | "remove" }
  | { type: "text"; selector: string; text: string }
  | { type: "html"; selector: string; html: string }
  | { type: "css"; css: string; selector?: string | null }
  | { type: "js"; code: string };

/**
 * One variant as the server serves it for applying (`segmently.domain.sdk.config.applied_variant`),
 * in the spec's execution order: its element changes, then its style sheets (css changes that are
 * style sheets, the experiment's and the variant's custom CSS), then its scripts (js changes, then
 * the experiment's and the variant's custom JS).
 */
export interface VariantConfig {
  id: string;
  key: string;
  name: string;
  weight: number;
  /** hide, text, html and css-with-a-selector changes, in list order */
  elements: Exclude<Change, { type: "js" }>[];
  styles: string[];
  /** `[label, code]`, e.g. `["JS change 2", "…"]`, `["custom JS 1", "…"]` */
  scripts: [string, string][];
}

/** Behavioral triggers (Audience tab): the first to fire wins, at most once per page view. */
export interface Triggers {
  scroll_percent?: number | null;
  time_seconds?: number | null;
  click_selector?: string | null;
}

export interface Goal {
  id: string;
  type: "click" | "form_submit" | "page_view" | "custom_event";
  name: string;
  primary?: boolean;
  selector?: string | null;
  url?: string | null;
  event_name?: string | null;
}

export interface FunnelStep {
  label: string;
  url?: string;
  event_name?: string | null;
}

export interface Funnel {
  id: string;
  name: string;
  steps: FunnelStep[];
}

export interface ExperimentConfig {
  id: string;
  slug: string;
  name: string;
  seed: string;
  type: "ab" | "mvt";
  status: string;
  /** served because `?segmently_preview=slug:variant` asked for this draft */
  preview: boolean;
  /**
   * a preview's config only, on the experiment of the previewed slug: the index of the variant the
   * page shows (null: no variant has that key or id; the test panel says so)
   */
  forced?: number | null;
  /** activation delay, ms */
  delay: number;
  /** what the dashboard set (the URL rules and traffic percentage come as `url` and `ranges`) */
  targeting: {
    devices?: Device[];
    /** upper-cased by the server */
    countries?: string[];
  };
  /** each URL rule as a regular expression (`segmently.targeting.url_pattern`); none: every URL */
  url: string[];
  /** each variant's bucket range, from the weights and the traffic percentage (`segmently.assignment.bucket_ranges`) */
  ranges: BucketRange[];
  audience: {
    visitor_type?: VisitorType;
    attribute_rules?: AttributeRule[];
    /** null (or absent) when none is set: then the experiment is not behavioral */
    triggers?: Triggers | null;
    referral_sources?: ReferralSource[];
  };
  goals: Goal[];
  funnels: Funnel[];
  cross_domain: string[];
  ga4: boolean;
  mixpanel: boolean;
  variants: VariantConfig[];
}

/** One step of a site conversion rule (`segmently.domain.sites.settings_schemas.ConversionStep`). */
export interface ConversionStep {
  method: "page_url" | "url_param" | "local_storage" | "cookie";
  value: string;
  parse_json?: boolean;
  property_path?: string | null;
}

export interface ConversionRule {
  id: string;
  name: string;
  event_type: "conversion" | "login" | "registration";
  steps: ConversionStep[];
}

/** A lazily loaded chunk named by a plugin's `snippet_modules` hook (or the kernel's own). */
export interface ModuleConfig {
  name: string;
  src: string;
  config?: Record<string, unknown>;
}

export interface SiteConfig {
  site: { id: string; url: string };
  /** the visitor's country as the server saw it (ISO 3166-1 alpha-2, upper-cased), or null when not detected */
  country: string | null;
  plan: string;
  /** show the free-tier "Powered by Segmently" badge */
  badge: boolean;
  experiments: ExperimentConfig[];
  flags: { key: string; rollout: number }[];
  conversion_rules: ConversionRule[];
  /** `cross_domain`: the site's hosts and every served experiment's, joined by the server */
  settings: {
    cross_domain: string[];
    /** the registrable domains of the site's URL and of the cross-domain hosts, where cookies go */
    cookie_domains: string[];
    activation_delay_ms: number;
    anti_flicker_timeout_ms: number;
  };
  modules: ModuleConfig[];
}
