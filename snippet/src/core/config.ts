/**
 * The site's config (`GET /api/v1/sdk/config`), cached so a returning visitor's experiments apply
 * before any network answer.
 *
 * `loadConfig()` answers at once with, in order of precedence: the config `/s/{api_key}.js` inlined
 * before the core ran (no request at all), else the stored one (then revalidated with
 * `If-None-Match`: 304 keeps it, 200 replaces it), else none (then fetched). A failed request keeps
 * what is stored and reports once to the console; 401/403/404 (key revoked, organization
 * suspended, site deleted) forget it, so a gone site stops running experiments. A stored value that
 * is not valid JSON, or not a config (an object with a list of `experiments`), is discarded.
 */

import { type KeyValueStorage, isRecord, readJson, removeKey, writeJson } from "./storage";

/** The global `/s/{api_key}.js` sets before the core: `{config: {...}, etag?: "\"…\""}`. */
export const INLINE_CONFIG_GLOBAL = "__segmentlyConfig";
export const CONFIG_PATH = "/api/v1/sdk/config";
// "3": the shape with cookie domains (2: URL patterns and bucket ranges); an older stored shape is never read
const STORAGE_PREFIX = "seg_config3:";

/** What the config loader reads of the answer: an `XMLHttpRequest` once loaded (body included). */
export interface ConfigResponse {
  status: number;
  responseText: string;
  getResponseHeader(name: string): string | null;
}

/** Requests the config (`If-None-Match: etag` when given); rejects on a network error. */
export type FetchConfig = (url: string, etag?: string) => Promise<ConfigResponse>;

export interface ConfigLoad<T> {
  /** the config to apply now (inline or stored), or null to wait for `_update` */
  config: T | null;
  /**
   * settles (never rejects) once the network answered: the config to use from then on — the inline
   * one (no request), the stored one (304, or a failure), the new one (200), or null (gone, or a
   * failure with nothing stored)
   */
  _update: Promise<T | null>;
}

export interface ConfigCacheOptions<T> {
  /** Where the API lives, e.g. `https://ab.example.com` (no trailing slash). */
  _baseUrl: string;
  _apiKey: string;
  _fetchConfig: FetchConfig;
  /** null: no caching (e.g. a preview load, whose config must not be kept) */
  _storage?: KeyValueStorage | null;
  /** the value of `window[INLINE_CONFIG_GLOBAL]`, if any */
  _inline?: unknown;
  /** one console error (the runtime's `report`: "Segmently: " first, once per message) */
  _report: (message: string) => void;
  /** Runs the stored config's revalidation off the page's start (the runtime: after the parse). */
  _later: (fn: () => void) => unknown;
}

/**
 * The site's config for this page load: at once from the inline config, else the stored one (then
 * revalidated), else none (then fetched); `_update` settles once the network answered.
 */
export function loadConfig<T = Record<string, unknown>>(o: ConfigCacheOptions<T>): ConfigLoad<T> {
  const validate = (v: unknown): v is T => isRecord(v) && Array.isArray(v.experiments);
  const storage = o._storage || null;
  const key = STORAGE_PREFIX + o._apiKey;
  const inline = isRecord(o._inline) && o._inline.config;
  if (validate(inline)) return { config: inline, _update: Promise.resolve(inline) };
  const stored = readJson(storage, key);
  const cached =
    isRecord(stored) && typeof stored.etag == "string" && stored.etag && validate(stored.config)
      ? (stored as { etag: string; config: T })
      : null;
  if (!cached) removeKey(storage, key); // a broken or foreign value
  const kept = cached && cached.config;
  const say = (config: T | null, why: string) => (o._report("config " + why), config);
  const failed = (why: string) => say(kept, `failed (${why})${kept ? ", the cached one used" : ""}`);
  const url = `${o._baseUrl}${CONFIG_PATH}?api_key=${encodeURIComponent(o._apiKey)}`;
  const request = () => o._fetchConfig(url, cached ? cached.etag : undefined);
  // with a stored config the page starts from it: the revalidation waits (`_later`), off the page's
  // start; without one the request goes now, while the rest of the start-up runs
  const update = (kept ? new Promise((go) => o._later(go as () => void)).then(request) : new Promise<ConfigResponse>((go) => go(request())))
    .then((res) => {
      const status = res.status;
      if (status == 304 && cached) return kept;
      if (/^40[134]$/.test("" + status)) {
        removeKey(storage, key);
        return say(null, `refused (HTTP ${status})`);
      }
      if (status != 200) return failed(`HTTP ${status}`);
      let parsed: unknown;
      try {
        parsed = JSON.parse(res.responseText);
      } catch {
        return failed("not JSON");
      }
      if (!validate(parsed)) return failed("not a config");
      const etag = res.getResponseHeader("ETag");
      if (etag) writeJson(storage, key, { etag, config: parsed });
      else removeKey(storage, key); // cannot be revalidated: do not keep a copy that may be stale
      return parsed;
    })
    .catch(() => failed("network error"));
  return { config: kept, _update: update };
}
