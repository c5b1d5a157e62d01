/**
 * The snippet on a customer's page: wires the browser-free modules of src/core to the real
 * document, in the spec's execution order (Advanced tab): curtain, config, identity, assignment,
 * changes, custom CSS and JS, activation delay, reveal, `page_view`; SPA navigations and
 * `window.Segmently` (README "Runtime"). What can wait until the page is shown (goals, conversion
 * rules, engagement, link decoration, GA4/Mixpanel, triggers, the event queue) is the `track`
 * chunk's; events recorded before it loaded wait in the outbox.
 *
 * Nothing here may break the page: every entry point (start, API methods, callbacks) is guarded,
 * errors go to the console once per message with a "Segmently:" prefix, and the page is revealed.
 */

import { type Applied, applyChanges } from "./core/changes";
import { type Curtain, drawCurtain } from "./core/antiflicker";
import { flagEnabled } from "./core/assign";
import { INLINE_CONFIG_GLOBAL, loadConfig } from "./core/config";
import { type VisitorContext, evaluate, hasTriggers } from "./core/evaluate";
import { HOST_GLOBAL, type Assignment, type Emit, type ModuleHost, type Tracker } from "./core/host";
import { type Identity, documentCookieJar, isOptedOut, loadIdentity, resetIdentity } from "./core/identity";
import { createOutbox } from "./core/outbox";
import { type KeyValueStorage, browserStorage, isRecord, readJson, removeKey, writeJson } from "./core/storage";
import { RESERVED_ATTRIBUTE_KEYS, deviceForWidth, urlMatches } from "./core/targeting";
import type { ExperimentConfig, SiteConfig, VariantConfig } from "./core/types";
import type { Referral } from "./modules/referral";

export const VERSION = "0.1.0";
/** sessionStorage key of the preview (`slug:variantKey`); the preview panel removes it for "View Original". */
export const PREVIEW_KEY = "segmently_preview";
/** query parameter, and the name of the dashboard's iframe, of the visual editor's frame mode */
const EDITOR_KEY = "segmently_editor";
const ASSIGNMENTS_KEY = "seg_assignments";
const ATTRIBUTES_KEY = "seg_attributes";
const FIRST_VISIT_TIMEOUT_MS = 5_000;
const MAX_HIDDEN_MS = 600_000; // the server refuses a page_view whose hidden_ms is larger

/** `window.Segmently` (spec: "JavaScript API", "Using Flags in Your Code"). */
export interface SegmentlyApi {
  readonly version: string;
  track(eventName: string, eventData?: Record<string, unknown>): void;
  trackConversion(eventData?: Record<string, unknown>): void;
  getVariant(experimentSlug: string): string | null;
  getVisitorId(): string | null;
  setAttributes(attributes: Record<string, unknown>): void;
  getAllAssignments(): Record<string, string>;
  reset(): void;
  isEnabled(flagKey: string): Promise<boolean>;
  getAllFlags(): Promise<Record<string, boolean>>;
}

/** Where the snippet came from: the API key and the server's base URL (no trailing slash). */
export interface Boot {
  apiKey: string;
  base: string;
  /** `window.__segmentlyConfig` of `/s/{api_key}.js` */
  inline?: unknown;
}

type Integrations = {
  [INLINE_CONFIG_GLOBAL]?: unknown;
  Segmently?: SegmentlyApi;
};

/** One experiment running on this page: its variant and what applying it did. */
interface Running {
  experiment: ExperimentConfig;
  variant: VariantConfig;
  applied: Applied;
  /** forced by `?segmently_preview`: no events, no goals */
  preview: boolean;
}

/**
 * Reads the `<script>` that loaded the core (or the inline config of `/s/{api_key}.js`) and starts
 * the snippet once per page: a second include keeps the first instance.
 */
export function boot(win: Window, script: HTMLOrSVGScriptElement | null): void {
  const w = win as Window & Integrations;
  if (w.Segmently !== undefined) return;
  try {
    const inline = w[INLINE_CONFIG_GLOBAL];
    const given = isRecord(inline) ? inline : {};
    const src = script && script.getAttribute("src");
    const url = src ? new URL(src, win.location.href) : null;
    const apiKey = given.apiKey || (script && script.getAttribute("data-api-key"));
    // `{base}/segmently.js` or `{base}/s/{key}.js`: the base is the path before them
    const base = given.base || (url ? url.origin + url.pathname.replace(/(\/s)?\/[^/]*$/, "") : "");
    if (typeof apiKey !== "string" || !apiKey || typeof base !== "string") {
      console.error("Segmently: the script tag needs data-api-key");
      return;
    }
    start(win, { apiKey, base, inline });
  } catch (error) {
    console.error("Segmently: could not start", error);
  }
}

/** Runs the snippet on `win`'s page and defines `window.Segmently`; never throws. */
export function start(win: Window, { apiKey, base, inline }: Boot): SegmentlyApi {
  const w = win as Window & Integrations;
  const doc = win.document;
  const loc = win.location;
  const reported = new Set<string>();
  const report = (message: string, error?: unknown): void => {
    if (reported.has(message)) return;
    reported.add(message);
    console.error("Segmently: " + message, ...(error === undefined ? [] : [error]));
  };
  /** `fn` that reports instead of throwing into the page, answering `fallback`. */
  const guard =
    <A extends unknown[], R>(fn: (...args: A) => R, fallback?: R) =>
    (...args: A): R => {
      try {
        return fn(...args);
      } catch (error) {
        report("internal error", error);
        if (curtain) curtain.reveal(); // a broken snippet never keeps the page hidden
        return fallback as R;
      }
    };

  const jar = documentCookieJar(doc);
  const optedOut = isOptedOut(jar);
  const storage = optedOut ? null : browserStorage(win); // opted out: nothing kept either
  const query = new URLSearchParams(loc.search);
  let session: KeyValueStorage | null = null;
  try {
    session = win.sessionStorage;
  } catch {
    // blocked: the preview lasts one page
  }
  // the visual editor's frame: `?segmently_editor=1`, or the frame's name (kept when a link in it is followed)
  const editor = win.parent !== win && (query.get(EDITOR_KEY) === "1" || win.name === EDITOR_KEY);
  const tracking = !optedOut && !editor;

  // preview: `?segmently_preview=slug:variantKey`, remembered for the browser session (empty ends it)
  const asked = query.get(PREVIEW_KEY);
  if (asked) writeJson(session, PREVIEW_KEY, asked);
  else if (asked !== null) removeKey(session, PREVIEW_KEY);
  const [preview, previewSlug, previewKey] = /^([^:]+):(.+)/.exec(String(asked || readJson(session, PREVIEW_KEY))) || [];

  let config: SiteConfig | null = null;
  let started = false;
  let identity: Identity | null = null;
  let curtain: Curtain | null = null;
  let page = loc.href;
  let crossDomain: string[] = [];
  const running = new Map<string, Running>();
  const waiting = new Map<string, () => void>();
  const unidentified: Parameters<Emit>[] = [];
  const early: Event[] = [];
  const storedAttributes = readJson(storage, ATTRIBUTES_KEY);
  const attributes: Record<string, unknown> = isRecord(storedAttributes) ? storedAttributes : {};

  // --- chunks: `{base}/snippet/{name}.js`; calls for one wait until it registers ---------------------

  const chunks: Record<string, unknown> = {};
  const pending: Record<string, ((api: never) => void)[]> = {};
  const load = (src: string, failed?: () => void): void => {
    const script = doc.createElement("script");
    script.src = new URL(src, base + "/").href;
    script.async = true;
    if (failed) script.onerror = failed;
    (doc.head || doc.documentElement).appendChild(script);
  };
  const register = (name: string, api: unknown): void => {
    chunks[name] = api;
    for (const fn of pending[name] || []) fn(api as never);
    delete pending[name];
  };
  /** `fn(api)` now or once chunk `name` registered (it is loaded on the first call). */
  const need = <T>(name: string, fn: (api: T) => void, failed?: () => void): void => {
    const call = guard(fn);
    if (chunks[name]) call(chunks[name] as T);
    else if (pending[name]) pending[name].push(call as never);
    else {
      pending[name] = [call as never];
      load(`snippet/${name}.js`, failed);
    }
  };
  /** `fn(tracker)` now or once the `track` chunk is there; nothing when the page is not tracked. */
  const track = (fn: (t: Tracker) => void): void => {
    if (tracking) need("track", fn);
  };

  const identityOptions = { jar, hostname: loc.hostname, secure: loc.protocol === "https:" };
  const outbox = createOutbox(base, apiKey, storage, () => isOptedOut(jar));

  const send: Emit = (eventName, data, experimentId, variantId) => {
    const event = outbox.stamp({
      event_name: eventName,
      visitor_id: identity!.visitorId,
      experiment_id: experimentId,
      variant_id: variantId,
      event_data: data,
      url: page,
      device_type: deviceForWidth(win.innerWidth),
    });
    // the track chunk brings the queue; until it registers, the outbox holds and stores the events
    if (chunks.track) (chunks.track as Tracker).send(event);
    else outbox.hold(event);
  };
  /** Queues an event; before the visitor is known (first visit from a cross-domain link) it waits. */
  const emit: Emit = (...event) => {
    if (editor) return; // the visual editor's page view is nobody's visit
    if (identity === null) unidentified.push(event);
    else send(...event);
  };

  function identify(): Identity {
    if (identity === null) {
      identity = loadIdentity(identityOptions, loc.href, crossDomain);
      if (identity.cleanUrl !== null) {
        page = identity.cleanUrl; // before replaceState, so the SPA hook sees no navigation
        win.history.replaceState(win.history.state, "", identity.cleanUrl);
      }
      for (const event of unidentified.splice(0)) send(...event);
    }
    return identity;
  }

  // --- assignment ---------------------------------------------------------------------------------

  /** The stored (sticky) variant ids of this visitor, by experiment id. */
  function sticky(): Record<string, unknown> {
    const stored = readJson(storage, ASSIGNMENTS_KEY);
    return isRecord(stored) && identity && stored.visitor === identity.visitorId && isRecord(stored.variants)
      ? stored.variants
      : {};
  }

  /** Whether this is the visitor's first assignment to the experiment (then it is stored). */
  function remember(experimentId: string, variantId: string): boolean {
    const variants = sticky();
    if (variants[experimentId] === variantId) return false;
    variants[experimentId] = variantId;
    writeJson(storage, ASSIGNMENTS_KEY, { visitor: identity!.visitorId, variants });
    return true;
  }

  const experiments = (): ExperimentConfig[] => (config ? config.experiments : []);
  const urlRulesMatch = (e: ExperimentConfig): boolean => urlMatches(e.targeting.url_rules || [], page);

  /**
   * The experiments to apply now on this page, with their variants; behavioral ones get their
   * triggers set up instead. Order of the checks: preview, sticky assignment, evaluate().
   */
  function plan(): [ExperimentConfig, VariantConfig, boolean][] {
    const now: [ExperimentConfig, VariantConfig, boolean][] = [];
    const visitor: VisitorContext = {
      visitorId: identify().visitorId,
      url: page,
      viewportWidth: win.innerWidth,
      country: config && config.country,
      isReturning: identity!.isReturning,
      attributes,
      referrer: doc.referrer,
      classify: chunks.referral ? (chunks.referral as Referral).source : null,
    };
    const stored = sticky();
    for (const e of experiments()) {
      if (running.has(e.id) || waiting.has(e.id) || !urlRulesMatch(e)) continue;
      if (e.slug === previewSlug) {
        const forced = e.variants.find((v) => v.key === previewKey || v.id === previewKey);
        if (forced) now.push([e, forced, true]);
        else report(`preview: experiment '${e.slug}' has no variant '${previewKey}'`);
        continue;
      }
      if (e.preview || !tracking) continue;
      const kept = e.variants.find((v) => v.id === stored[e.id]);
      if (kept) {
        now.push([e, kept, false]); // assigned before: page-level URL rules only, no trigger
        continue;
      }
      const a = e.audience;
      const decision = evaluate(e, visitor);
      if (typeof decision != "number") continue;
      const variant = e.variants[decision]!;
      if (hasTriggers(a.triggers)) {
        // the track chunk watches the triggers; cancelled before it loaded, it never sets them up
        let cancel: (() => void) | null = null;
        const since = Date.now();
        const fire = guard(() => {
          waiting.delete(e.id);
          enter(e, variant, false);
        });
        waiting.set(e.id, () => (cancel ? cancel() : (cancel = () => {})));
        track((tracker) => {
          if (!cancel) cancel = tracker.trigger(a.triggers!, fire, since);
        });
      } else now.push([e, variant, false]);
    }
    return now;
  }

  /** Assigns (event once per visitor), forwards to GA4 / Mixpanel, then applies the variant. */
  function enter(experiment: ExperimentConfig, variant: VariantConfig, forced: boolean): void {
    if (!forced) {
      if (remember(experiment.id, variant.id)) emit("assignment", undefined, experiment.id, variant.id);
      track((t) => t.enter(experiment, variant));
    }
    const applied = applyChanges(
      doc,
      experiment.id,
      variant.changes || [],
      [experiment.custom_css, variant.custom_css || ""],
      [experiment.custom_js, variant.custom_js || ""],
      report,
    );
    running.set(experiment.id, { experiment, variant, applied, preview: forced });
    retarget();
  }

  /** Goals count for this page's assignments, previews excluded. */
  function retarget(): void {
    const targets = [...running.values()]
      .filter((r) => !r.preview)
      .map((r) => ({ experimentId: r.experiment.id, variantId: r.variant.id, goals: r.experiment.goals }));
    track((t) => t.targets(targets));
  }

  /** Forgets this page's experiments: what they injected goes, triggers stop. */
  function stopAll(keep: (r: Running) => boolean): void {
    for (const [id, r] of running) {
      if (keep(r)) continue;
      r.applied.undo();
      running.delete(id);
    }
    for (const cancel of waiting.values()) cancel();
    waiting.clear();
    retarget();
  }

  // --- the page -----------------------------------------------------------------------------------

  const pageView = (hiddenMs: number | null): void => {
    emit("page_view", hiddenMs === null ? undefined : { hidden_ms: Math.min(Math.round(hiddenMs), MAX_HIDDEN_MS) });
    const url = page;
    const at = Date.now();
    track((t) => t.view(url, at));
  };
  const newPage = (): void => {
    const url = page;
    track((t) => t.page(url));
  };

  /** The first config of the page is known (null: none could be loaded). */
  function init(site: SiteConfig | null): void {
    started = true;
    config = site;
    const settings: Partial<SiteConfig["settings"]> = (site && site.settings) || {};
    crossDomain = (settings.cross_domain || []).concat(...experiments().map((e) => e.cross_domain || []));
    identify();
    w[HOST_GLOBAL] = w[HOST_GLOBAL] || host(site!);
    const timeout = settings.anti_flicker_timeout_ms || FIRST_VISIT_TIMEOUT_MS;
    const referral = tracking ? experiments().filter((e) => !e.preview && (e.audience.referral_sources || []).length) : [];
    if (referral.length === 0) return show(site, settings);
    // the referral chunk classifies the visit; the curtain waits for it where it decides (or fails)
    let done = false;
    const go = guard(() => {
      if (!done) show(site, settings);
      done = true;
    });
    const stored = sticky();
    if (referral.some((e) => urlRulesMatch(e) && !stored[e.id])) {
      curtain = curtain || drawCurtain(doc, timeout);
      setTimeout(go, timeout);
      need("referral", go, go);
    } else {
      need("referral", () => {}); // for later SPA page views
      go();
    }
  }

  /** The page view once everything for evaluation is there: assignment, changes, reveal. */
  function show(site: SiteConfig | null, settings: Partial<SiteConfig["settings"]>): void {
    newPage();
    const now = plan();
    if (now.length > 0 && curtain === null) {
      curtain = drawCurtain(doc, settings.anti_flicker_timeout_ms || FIRST_VISIT_TIMEOUT_MS);
    }
    for (const [e, v, forced] of now) enter(e, v, forced);
    if (tracking) {
      // clicks and submits before the track chunk is there: it replays them (goals, click triggers)
      const keep = (event: Event) => chunks.track || early.push(event);
      doc.addEventListener("click", keep, true);
      doc.addEventListener("submit", keep, true);
    }
    watchNavigation();
    if (site !== null) {
      if (site.badge) load("snippet/badge.js");
      if (preview) load("snippet/preview.js");
      if (editor) load("snippet/editor.js");
      if (tracking) for (const m of site.modules || []) load(m.src);
    }
    // reveal once the changes are in and the activation delay has passed. Elements the parser adds
    // later get their changes from the changes engine's MutationObserver before they are painted;
    // custom JavaScript runs at DOMContentLoaded, so a variant with some waits for that.
    const delay = Math.max(0, ...now.map(([e]) => (e.delay == null ? settings.activation_delay_ms || 0 : e.delay)));
    const reveal = guard(() => pageView(curtain && curtain.reveal()));
    const afterDelay = () => (delay > 0 ? setTimeout(reveal, delay) : reveal());
    const scripted = now.some(([e, v]) => e.custom_js || v.custom_js || (v.changes || []).some((c) => c.type == "js"));
    if (now.length === 0) reveal();
    else if (scripted && doc.readyState === "loading") doc.addEventListener("DOMContentLoaded", afterDelay);
    else afterDelay();
    win.postMessage({ type: "segmently-snippet-ready", version: VERSION }, "*");
  }

  /** SPA navigations: pushState, replaceState and popstate that change the URL are page views. */
  function watchNavigation(): void {
    const navigated = guard(() => {
      // a new path or query is a page view; a fragment alone (an in-page anchor) is not
      if (loc.href.split("#")[0] === page.split("#")[0]) return;
      const at = Date.now();
      track((t) => t.leave(at)); // for the page being left, still under its URL
      page = loc.href;
      stopAll((r) => urlRulesMatch(r.experiment) && experiments().some((e) => e.id === r.experiment.id));
      newPage();
      for (const [e, v, forced] of plan()) enter(e, v, forced);
      pageView(null);
    });
    const history = win.history as History & Record<string, unknown>;
    for (const name of ["pushState", "replaceState"] as const) {
      const original = history[name];
      history[name] = function (this: History, ...args: Parameters<History["pushState"]>) {
        const result = original.apply(this, args);
        navigated();
        return result;
      };
    }
    win.addEventListener("popstate", navigated);
    win.addEventListener(
      "pagehide",
      guard(() => {
        const at = Date.now();
        track((t) => t.leave(at)); // only when the chunk is there: else no time_on_page
        if (chunks.track) (chunks.track as Tracker).flush();
        else outbox.beacon((url, body) => win.navigator.sendBeacon(url, body));
      }),
    );
  }

  function host(site: SiteConfig): ModuleHost {
    return {
      version: VERSION,
      base,
      apiKey,
      config: site,
      visitorId: () => identify().visitorId,
      assignments: () => {
        const out: Record<string, Assignment> = {};
        for (const { experiment: e, variant: v } of running.values()) {
          out[e.slug] = { experimentId: e.id, slug: e.slug, variantId: v.id, variantKey: v.key };
        }
        return out;
      },
      track: emit,
      report,
      module: (name) => (site.modules || []).find((m) => m.name === name),
      crossDomain,
      early,
      events: outbox.held,
      register,
    };
  }

  // --- window.Segmently ---------------------------------------------------------------------------

  /** Every experiment's variant key for this visitor: this page's, else the stored one. */
  function assignments(): Record<string, string> {
    const stored = sticky();
    const out: Record<string, string> = {};
    for (const e of experiments()) {
      const r = running.get(e.id);
      const variant = r ? r.variant : e.variants.find((v) => v.id === stored[e.id]);
      if (variant) out[e.slug] = variant.key;
    }
    return out;
  }

  const trackEvent = (eventName: string, eventData?: Record<string, unknown>): void => {
    if (typeof eventName !== "string" || eventName === "" || eventName.length > 100) {
      return report("track() needs an event name of 1 to 100 characters");
    }
    if (eventData !== undefined && !isRecord(eventData)) return report("track() event data must be an object");
    emit(eventName, eventData);
  };

  // settles once the network answered: flags use the freshest config (a kill switch acts at once)
  let settled: Promise<SiteConfig | null> = Promise.resolve(null);
  const flags = (): Promise<Record<string, boolean>> =>
    settled.then(
      guard((site: SiteConfig | null) => {
        const out: Record<string, boolean> = {};
        for (const f of (site && site.flags) || []) out[f.key] = flagEnabled(f.key, f.rollout, identify().visitorId);
        return out;
      }, {}),
    );

  const api: SegmentlyApi = Object.freeze({
    version: VERSION,
    track: guard(trackEvent),
    trackConversion: guard((eventData?: Record<string, unknown>) => trackEvent("conversion", eventData)),
    getVariant: guard((slug: string) => assignments()[slug] || null, null),
    getVisitorId: () => identity && identity.visitorId,
    setAttributes: guard((attrs: Record<string, unknown>) => {
      if (!isRecord(attrs)) return report("setAttributes() needs an object");
      for (const key of Object.keys(attrs)) if (!RESERVED_ATTRIBUTE_KEYS.has(key)) attributes[key] = attrs[key];
      writeJson(storage, ATTRIBUTES_KEY, attributes);
    }),
    getAllAssignments: guard(assignments, {}),
    reset: guard(() => {
      stopAll(() => false);
      removeKey(storage, ASSIGNMENTS_KEY);
      removeKey(storage, ATTRIBUTES_KEY);
      for (const key of Object.keys(attributes)) delete attributes[key];
      identity = resetIdentity(identityOptions, identify());
      track((t) => t.decorate());
    }),
    isEnabled: (key: string) => flags().then((all) => all[key] === true),
    getAllFlags: flags,
  });
  w.Segmently = api;

  try {
    const loaded = loadConfig<SiteConfig>({
      baseUrl: base,
      apiKey,
      // a preview fetches the draft and never caches it
      storage: preview ? null : storage,
      inline: preview ? undefined : inline,
      validate: (v): v is SiteConfig => isRecord(v) && Array.isArray(v.experiments),
      fetchConfig: (url, headers) =>
        win
          .fetch(preview ? `${url}&preview=${encodeURIComponent(preview)}` : url, { headers, credentials: "omit" })
          .then(async (r) => ({ status: r.status, etag: r.headers.get("ETag"), body: r.status === 200 ? await r.text() : null })),
    });
    // set before init: custom JS run by init may already ask for flags
    settled = loaded.update.then(
      guard(({ config: latest }) => {
        if (!started) init(latest);
        // a replaced (or gone) config is used from the next page view (SPA navigations included), not mid-page
        else config = latest;
        return config;
      }, null),
    );
    if (loaded.config !== null) init(loaded.config);
    else if (!editor && (!optedOut || preview)) curtain = drawCurtain(doc, FIRST_VISIT_TIMEOUT_MS);
  } catch (error) {
    report("could not start", error);
    if (curtain) curtain.reveal();
  }
  return api;
}
