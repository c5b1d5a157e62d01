/**
 * What the core hands a lazily loaded chunk (`dist/<name>.js`): the chunk's IIFE reads
 * `window[HOST_GLOBAL]` when it runs and starts itself with it. Chunks are built separately from
 * the core (never bundled into it), so this file holds types and the global's name only.
 */

import type { ModuleConfig, SiteConfig } from "./types";

export const HOST_GLOBAL = "__segmentlyHost";

export interface Assignment {
  experimentId: string;
  slug: string;
  variantId: string;
  variantKey: string;
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
  track(eventName: string, data?: Record<string, unknown>, experimentId?: string, variantId?: string): void;
  /** one console error, prefixed "Segmently:" */
  report(message: string, error?: unknown): void;
  /** the module's own entry of `config.modules` (plugins' settings) */
  module(name: string): ModuleConfig | undefined;
}

declare global {
  interface Window {
    __segmentlyHost?: ModuleHost;
  }
}
