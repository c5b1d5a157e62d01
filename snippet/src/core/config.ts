/**
 * The site's config (`GET /api/v1/sdk/config`), cached so a returning visitor's experiments apply
 * before any network answer.
 *
 * `load()` answers at once with, in order of precedence: the config `/s/{api_key}.js` inlined
 * before the core ran (no request at all), else the stored one (then revalidated with
 * `If-None-Match`: 304 keeps it, 200 replaces it), else none (then fetched). A failed request keeps
 * what is stored and reports once to the console; 401/403/404 (key revoked, organization
 * suspended, site deleted) forget it, so a gone site stops running experiments. A stored value that
 * is not valid JSON, or not a config, is discarded.
 */

import { type KeyValueStorage, isRecord, readJson, removeKey, writeJson } from "./storage";

/** The global `/s/{api_key}.js` sets before the core: `{config: {...}, etag?: "\"…\""}`. */
export const INLINE_CONFIG_GLOBAL = "__segmentlyConfig";
export const CONFIG_PATH = "/api/v1/sdk/config";
const STORAGE_PREFIX = "seg_config:";

export interface ConfigResponse {
  status: number;
  etag?: string | null;
  /** the response text (200 only) */
  body?: string | null;
}

/** `fetch` for the config; rejects on a network error. */
export type FetchConfig = (url: string, headers: Record<string, string>) => Promise<ConfigResponse>;

export type ConfigSource = "inline" | "cache" | "none";
/** What revalidation did: nothing to do (inline), kept (304, or error with a cache), replaced, failed, gone. */
export type ConfigOutcome = "inline" | "unchanged" | "replaced" | "failed" | "gone";

export interface ConfigLoad<T> {
  /** the config to apply now, or null to wait for `update` */
  config: T | null;
  source: ConfigSource;
  /** settles (never rejects) once the network answered: the config to use from then on */
  update: Promise<{ outcome: ConfigOutcome; config: T | null }>;
}

export interface ConfigCacheOptions<T> {
  /** Where the API lives, e.g. `https://ab.example.com`. */
  baseUrl: string;
  apiKey: string;
  fetchConfig: FetchConfig;
  /** null: no caching (e.g. a preview load, whose config must not be kept) */
  storage?: KeyValueStorage | null;
  /** the value of `window[INLINE_CONFIG_GLOBAL]`, if any */
  inline?: unknown;
  /** whether a parsed value is a config (default: any JSON object) */
  validate?: (value: unknown) => value is T;
  logger?: { error(message: string): void };
}

interface Stored<T> {
  etag: string;
  config: T;
}

/** The site's config for one page load. */
export class ConfigCache<T = Record<string, unknown>> {
  private readonly validate: (value: unknown) => value is T;
  private readonly storage: KeyValueStorage | null;
  private readonly key: string;
  private reported = false;

  constructor(private readonly o: ConfigCacheOptions<T>) {
    this.validate = o.validate ?? (isRecord as (value: unknown) => value is T);
    this.storage = o.storage ?? null;
    this.key = STORAGE_PREFIX + o.apiKey;
  }

  /** The config URL: the key in the query, so a first load is a simple request (no CORS preflight). */
  url(): string {
    return `${this.o.baseUrl.replace(/\/+$/, "")}${CONFIG_PATH}?api_key=${encodeURIComponent(this.o.apiKey)}`;
  }

  load(): ConfigLoad<T> {
    const inline = isRecord(this.o.inline) ? this.o.inline.config : undefined;
    if (inline !== undefined && this.validate(inline)) {
      return { config: inline, source: "inline", update: Promise.resolve({ outcome: "inline", config: inline }) };
    }
    const cached = this.readStored();
    return {
      config: cached?.config ?? null,
      source: cached === null ? "none" : "cache",
      update: this.revalidate(cached),
    };
  }

  private async revalidate(cached: Stored<T> | null): Promise<{ outcome: ConfigOutcome; config: T | null }> {
    const kept = cached?.config ?? null;
    let res: ConfigResponse;
    try {
      res = await this.o.fetchConfig(this.url(), cached === null ? {} : { "If-None-Match": cached.etag });
    } catch {
      return this.failed(kept, "the network request failed");
    }
    if (res.status === 304 && cached !== null) return { outcome: "unchanged", config: kept };
    if (res.status === 401 || res.status === 403 || res.status === 404) {
      removeKey(this.storage, this.key);
      this.report(`the config request was refused (HTTP ${res.status}); no experiment runs`);
      return { outcome: "gone", config: null };
    }
    if (res.status !== 200) return this.failed(kept, `HTTP ${res.status}`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(res.body ?? "");
    } catch {
      return this.failed(kept, "the response is not JSON");
    }
    if (!this.validate(parsed)) return this.failed(kept, "the response is not a config");
    if (res.etag) writeJson(this.storage, this.key, { etag: res.etag, config: parsed });
    else removeKey(this.storage, this.key); // cannot be revalidated: do not keep a copy that may be stale
    return { outcome: "replaced", config: parsed };
  }

  private failed(kept: T | null, why: string): { outcome: ConfigOutcome; config: T | null } {
    this.report(`could not load the config (${why})${kept === null ? "" : "; using the cached one"}`);
    return { outcome: "failed", config: kept };
  }

  private report(message: string): void {
    if (this.reported) return;
    this.reported = true;
    (this.o.logger ?? console).error(`Segmently: ${message}`);
  }

  private readStored(): Stored<T> | null {
    const value = readJson(this.storage, this.key);
    if (value === null) return null;
    if (isRecord(value) && typeof value.etag === "string" && value.etag !== "" && this.validate(value.config)) {
      return { etag: value.etag, config: value.config };
    }
    removeKey(this.storage, this.key);
    return null;
  }
}
