/**
 * What the core hands a lazily loaded chunk (`dist/<name>.js`): the chunk's IIFE reads
 * `window[HOST_GLOBAL]` when it runs and starts itself with it. Chunks are built separately from
 * the core (never bundled into it), so this file holds types and the global's name only.
 */

import type { QueuedEvent } from "./queue";
import type { ExperimentConfig, Goal, ModuleConfig, SiteConfig, Triggers, VariantConfig } from "./types";

export const HOST_GLOBAL = "__segmentlyHost";

/** Queues one event; `experimentId`/`variantId` attribute it to an assignment. */
export type Emit = (eventName: string, data?: Record<string, unknown>, experimentId?: string, variantId?: string) => void;

export interface Assignment {
  experimentId: string;
  slug: string;
  variantId: string;
  variantKey: string;
}

/**
 * One experiment running on this page: its variant, the undo of its changes, and whether
 * `?segmently_preview` forced it (no events, no goals).
 */
export type Running = [experiment: ExperimentConfig, variant: VariantConfig, undo: () => void, preview: boolean];

/** One assignment on this page (previews excluded) and the goals of its experiment. */
export interface GoalTarget {
  experimentId: string;
  variantId: string;
  goals: readonly Goal[];
}

/**
 * The `track` chunk (`src/modules/track/`), as the core calls it. Calls made before the chunk
 * loaded wait in the core and run, in order, when it registers; `at` is when they happened.
 */
export interface Tracker {
  /** A page view starts (load or SPA navigation): page_view goals, the once-per-page reset. */
  page(url: string): void;
  /** The experiments running on the page changed: goals count for them (previews excluded). */
  targets(running: readonly Running[]): void;
  /** An experiment was applied for the visitor: GA4 / Mixpanel impression. */
  enter(experiment: ExperimentConfig, variant: VariantConfig): void;
  /** `page_view` was sent: engagement starts, conversion rules are checked. */
  view(url: string, at: number): void;
  /** The visitor leaves the page view (SPA navigation, pagehide): its time_on_page (a bounce waits for `flush()`). */
  leave(at: number): void;
  /** Links to the cross-domain hosts get `_sgmt_vid` (again after `reset()`). */
  decorate(): void;
  /** Calls `fire` once, at the first of the triggers; returns the cancel function. */
  trigger(triggers: Triggers, fire: () => void, since: number): () => void;
  /** Queues a stamped event (the queue batches, retries and stores it). */
  send(event: QueuedEvent): void;
  /** `pagehide` (after `leave()`): the bounce of the page view left, then what is unsent goes by `sendBeacon`. */
  flush(): void;
}

export interface ModuleHost {
  version: string;
  /** where the server lives, e.g. `https://ab.example.com` (no trailing slash) */
  base: string;
  apiKey: string;
  config: SiteConfig;
  visitorId(): string;
  /** the visitor's current assignments on this page, by experiment slug */
  assignments(): Record<string, Assignment>;
  /** queue an event like `Segmently.track` (attributed to `experimentId`/`variantId` when given) */
  track: Emit;
  /** one console error, prefixed "Segmently:" */
  report(message: string, error?: unknown): void;
  /** the module's own entry of `config.modules` (plugins' settings) */
  module(name: string): ModuleConfig | undefined;
  /** the site's and its experiments' cross-domain hosts */
  crossDomain: string[];
  /** clicks and submits the core saw before the `track` chunk registered (it replays them) */
  early: Event[];
  /** events recorded before the `track` chunk registered (its queue takes them over) */
  events: QueuedEvent[];
  /** A kernel chunk hands the core its API (`"track"`: a `Tracker`); calls waiting for it run now. */
  register(name: string, api: unknown): void;
}

declare global {
  interface Window {
    __segmentlyHost?: ModuleHost;
  }
}
