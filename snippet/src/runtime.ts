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

import { applyChanges } from "./core/changes";
import { drawCurtain } from "./core/antiflicker";
import { hashV2 } from "./core/hash";
import { type ConfigLoad, INLINE_CONFIG_GLOBAL, loadConfig } from "./core/config";
import { type VisitorContext, evaluate } from "./core/evaluate";
import { HOST_GLOBAL, type Assignment, type Emit, type ModuleHost, type Running, type Tracker } from "./core/host";
import { CROSS_DOMAIN_PARAM, type Identity, type IdentityOptions, adoption, documentCookieJar, isListedHost, isOptedOut, loadIdentity, readCookie, resetIdentity } from "./core/identity";
import { createOutbox } from "./core/outbox";
import { browserStorage, isRecord, readJson, removeKey, writeJson } from "./core/storage";
import { RESERVED_ATTRIBUTE_KEYS, deviceForWidth, urlMatches } from "./core/targeting";
import type { ExperimentConfig, SiteConfig, VariantConfig } from "./core/types";
import type { Referral } from "./modules/referral";

export const VERSION = "0.1.0";
/** the preview's parameter, and its session cookie (`slug:variantKey`), which the panel's "View Original" removes */
export const PREVIEW_KEY = "segmently_preview";
/** query parameter, and the name of the dashboard's iframe, of the visual editor's frame mode */
const EDITOR_KEY = "segmently_editor";
const ASSIGNMENTS_KEY = "seg_assignments";
const ATTRIBUTES_KEY = "seg_attributes";
const FIRST_VISIT_TIMEOUT_MS = 5_000;
const BOUNCE_MS = 5_000; // left sooner without interacting: a bounce (as the track chunk's engagement)
const MAX_HIDDEN_MS = 600_000; // the server refuses a page_view whose hidden_ms is larger
const MAX_URL = 2048; // the server's limit for an event's url

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

type Integrations = {
  [INLINE_CONFIG_GLOBAL]?: unknown;
  Segmently?: SegmentlyApi;
};


/**
 * Reads the `<script>` that loaded the core (or the inline config of `/s/{api_key}.js`) and starts
 * the snippet once per page: a second include keeps the first instance.
 */
export function boot(win: Window, script: HTMLOrSVGScriptElement | null): void {
  const w = win as Window & Integrations;
  if (w.Segmently) return;
  try {
    const inline = w[INLINE_CONFIG_GLOBAL];
    const given = isRecord(inline) ? inline : {};
    const attribute = (name: string) => script && script.getAttribute(name);
    const src = attribute("src");
    const url = src ? new URL(src, win.location.href) : null;
    const apiKey = given.apiKey || attribute("data-api-key");
    // `{base}/segmently.js` or `{base}/s/{key}.js`: the base is the path before them
    const base = given.base || (url ? url.origin + url.pathname.replace(/(\/s)?\/[^/]*$/, "") : "");
    if (typeof apiKey == "string" && apiKey && typeof base == "string") start(win, apiKey, base, inline);
    else console.error("Segmently: no data-api-key");
  } catch (error) {
    console.error("Segmently: could not start", error);
  }
}

/**
 * Runs the snippet on `win`'s page and defines `window.Segmently`; never throws. Where the snippet
 * came from: the API key and the server's base URL (no trailing slash); `inline` is
 * `window.__segmentlyConfig` of `/s/{api_key}.js`.
 */
export function start(win: Window, apiKey: string, base: string, inline: unknown): SegmentlyApi {
  const w = win as Window & Integrations;
  const doc = win.document;
  const loc = win.location;
  const history = win.history as History & Record<string, unknown>;
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
        if (curtain) curtain(); // a broken snippet never keeps the page hidden
        return fallback as R;
      }
    };

  const jar = documentCookieJar(doc, true); // the start-up reads the cookies once
  const optedOut = isOptedOut(jar);
  const storage = optedOut ? null : browserStorage(win); // opted out: nothing kept either
  const query = new URLSearchParams(loc.search);
  // the visual editor's frame: `?segmently_editor=1`, or the frame's name (kept when a link in it is followed)
  const editor = win.parent !== win && (query.get(EDITOR_KEY) === "1" || win.name === EDITOR_KEY);
  const tracking = !optedOut && !editor;

  // preview: `?segmently_preview=slug:variantKey`, remembered for the browser session (empty ends it)
  // in a session cookie, read with the others (sessionStorage would cost every page its own read)
  const asked = query.get(PREVIEW_KEY);
  // (not from the editor's frame: its session cookie would start a preview on the site's own tabs)
  if (asked !== null && !optedOut && !editor) jar.set(`${PREVIEW_KEY}=${encodeURIComponent(asked)}; path=/; SameSite=Lax${asked ? "" : "; max-age=0"}`);
  // the visual editor always works on the original page
  const preview = !editor && (asked ?? readCookie(jar, PREVIEW_KEY));
  // the curtain is never drawn in the visual editor, nor for an opted-out visitor (but in a preview)
  const veiled = !editor && (!optedOut || !!preview);

  /**
   * `fn` a task after the document is parsed: what the first paint does not need (chunks, the
   * page's event, the stored config's revalidation) must not hold up the parser, which still has
   * to reach the elements the changes are for.
   */
  const later = (fn: () => void): unknown =>
    doc.readyState == "loading" ? doc.addEventListener("DOMContentLoaded", () => setTimeout(fn)) : setTimeout(fn);

  // the config first: without a stored one its request goes out now, while the rest starts up
  let loaded: ConfigLoad<SiteConfig> | null = null;
  try {
    loaded = loadConfig<SiteConfig>({
      _baseUrl: base,
      _apiKey: apiKey,
      _report: report,
      _later: later,
      // a preview fetches the draft and never caches it
      _storage: preview ? null : storage,
      _inline: preview ? undefined : inline,
      // an XMLHttpRequest, not fetch(): its answer reaches the page in one task (`load`, body
      // included), where a fetch() takes one for the headers and another for the body, each
      // waiting behind the page's own loading work (docs/benchmarks.md)
      _fetchConfig: (url, etag) =>
        new Promise((answer, fail) => {
          const xhr = new (win as Window & typeof globalThis).XMLHttpRequest();
          xhr.open("GET", preview ? `${url}&preview=${encodeURIComponent(preview)}` : url);
          if (etag) xhr.setRequestHeader("If-None-Match", etag);
          // `loadend` ends every request: loaded, with the whole body, or failed, aborted (`stop()`,
          // an extension) or timed out, with status 0, without a body
          xhr.onloadend = () => (xhr.status ? answer(xhr) : fail());
          xhr.send();
        }),
    });
  } catch (error) {
    report("could not start", error);
  }

  /** the config of this page view (a revalidated one replaces it for the next page view) */
  let config: SiteConfig | null | undefined;
  /** the first config of the page (null: none could be loaded; undefined: not known yet) and its settings */
  let site: SiteConfig | null | undefined;
  let settings: Partial<SiteConfig["settings"]> = {};
  let identity: Identity | null = null;
  /** reset() was called before the visitor was known: the first identity is a new visitor */
  let fresh: unknown;
  /** the curtain's reveal, once drawn */
  let curtain: (() => number) | undefined;
  let timeout = FIRST_VISIT_TIMEOUT_MS;
  let page = loc.href;
  const running = new Map<string, Running>();
  /** the cancels of the behavioral triggers set up on this page view; `generation` counts their resets */
  const cancels: (() => void)[] = [];
  let generation = 0;
  const unidentified: Parameters<Emit>[] = [];
  /** the hosts that share the visitor through `_sgmt_vid` links (the settings' and the experiments' lists) */
  let crossDomain: string[] = [];
  const early: Event[] = [];
  /**
   * For a page left before the track chunk ran: when the visitor began to see this page view (its
   * reveal or SPA navigation; 0: not shown, or hidden then), the clicks and submits before it,
   * and the page views whose engagement the core sent (the chunk must not count those again)
   */
  let shownAt: number | undefined = 0;
  let clicksBefore = 0;
  let views = 0;
  const storedAttributes = readJson(storage, ATTRIBUTES_KEY);
  const attributes: Record<string, unknown> = isRecord(storedAttributes) ? storedAttributes : {};
  const hide = (): unknown => (curtain = curtain || drawCurtain(doc, timeout));

  // --- chunks: `{base}/snippet/{name}.js`; calls for one wait until it registers ---------------------

  const chunks: Record<string, unknown> = {};
  const pending: Record<string, ((api: never) => void)[]> = {};
  // inserting a script costs a few ms: after the parse, or a task later for a chunk the curtain waits for
  const load = (src: string, failed?: () => void): unknown =>
    (failed ? setTimeout : later)(() => {
      const script = doc.createElement("script");
      script.src = new URL(src, base + "/").href;
      script.async = true;
      if (failed) script.onerror = failed;
      (doc.head || doc.documentElement).appendChild(script);
    });
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
  /** `tracker[method](...args)`, the arguments taken now (the URL, `Date.now()`), the call when the chunk is there. */
  const call = <K extends keyof Tracker>(method: K, ...args: Parameters<Tracker[K]>): void =>
    track((t) => (t[method] as (...a: unknown[]) => void)(...args));

  const identityOptions: IdentityOptions = { _jar: jar, _hostname: loc.hostname, _secure: loc.protocol === "https:", _storage: storage };
  const outbox = createOutbox(base, apiKey, storage, () => isOptedOut(jar));

  const send: Emit = (eventName, data, experimentId, variantId) => {
    const event = outbox._stamp({
      event_name: eventName,
      visitor_id: identity!._visitorId,
      experiment_id: experimentId,
      variant_id: variantId,
      event_data: data,
      url: page.slice(0, MAX_URL), // a longer one would have the server refuse the whole batch
      device_type: deviceForWidth(win.innerWidth),
    });
    // the track chunk brings the queue; until it registers, the outbox holds and stores the events
    if (chunks.track) (chunks.track as Tracker).send(event);
    else outbox._hold(event);
  };
  /** Queues an event; before the visitor is known (first visit from a cross-domain link) it waits. */
  /** the load's `page_view`, until it is sent: a task after the reveal, or before any other event */
  let view: (() => void) | null = null;
  const sendView = (): void => {
    const v = view;
    view = null;
    if (v) v();
  };
  const emit: Emit = (...event) => {
    sendView();
    if (editor) return; // the visual editor's page view is nobody's visit
    if (identity) send(...event);
    else unidentified.push(event);
  };

  function identify(): Identity {
    if (!identity) {
      const [id, clean] = adoption(loc.href, loc.hostname, crossDomain);
      identity = loadIdentity(identityOptions, id);
      if (fresh) identity = resetIdentity(identityOptions, identity);
      // the URL now (an SPA may have changed it since the start), before replaceState, so the SPA hook
      // sees no navigation: the events waiting for the visitor, the referral decision go under it
      page = clean || loc.href;
      if (clean) history.replaceState(history.state, "", clean);
      for (const event of unidentified.splice(0)) send(...event);
    }
    return identity;
  }

  // --- assignment ---------------------------------------------------------------------------------

  /** The stored (sticky) variant ids of this visitor, by experiment id. */
  /** this task's read of the sticky assignments (see `sticky`), and whether their write is due */
  let assigned: Record<string, unknown> | undefined;
  let saving = 0;
  function sticky(): Record<string, unknown> {
    if (!assigned) {
      // read once per task (another tab may write between tasks); `enter` writes it back once
      const stored = readJson(storage, ASSIGNMENTS_KEY);
      assigned =
        isRecord(stored) && identity && stored.visitor === identity._visitorId && isRecord(stored.variants)
          ? stored.variants
          : {};
      Promise.resolve().then(() => (assigned = undefined));
    }
    return assigned;
  }

  const experiments = (): ExperimentConfig[] => (config ? config.experiments : []);
  const urlRulesMatch = (e: ExperimentConfig): boolean => urlMatches(e.url, page);

  /**
   * The experiments to apply now on this page, with their variants; behavioral ones get their
   * triggers set up instead. Order of the checks: preview, sticky assignment, evaluate().
   */
  function plan(): [ExperimentConfig, VariantConfig, boolean][] {
    const now: [ExperimentConfig, VariantConfig, boolean][] = [];
    const visitor: VisitorContext = {
      ...identify(), // _visitorId, _isReturning
      _url: page,
      _viewportWidth: win.innerWidth,
      _country: config && config.country,
      _attributes: attributes,
      _referrer: doc.referrer,
      _classify: chunks.referral ? (chunks.referral as Referral).source : null,
    };
    const stored = sticky();
    for (const e of experiments()) {
      if (running.has(e.id) || !urlRulesMatch(e)) continue;
      // a preview: the server names the variant (`forced`) on the previewed experiment
      const forced = e.variants[e.forced!];
      if (forced) {
        now.push([e, forced, true]);
        continue;
      }
      if (e.preview || !tracking) continue;
      const kept = e.variants.find((v) => v.id === stored[e.id]);
      if (kept) {
        now.push([e, kept, false]); // assigned before: page-level URL rules only, no trigger
        continue;
      }
      const triggers = e.audience.triggers;
      const variant = e.variants[evaluate(e, visitor)];
      if (!variant) continue;
      if (triggers) {
        // the track chunk watches the triggers; stopped before it loaded, it never sets them up
        const since = Date.now();
        const mine = generation;
        track((t) => {
          if (mine == generation) cancels.push(t.trigger(triggers!, guard(() => enter(e, variant, false)), since));
        });
      } else now.push([e, variant, false]);
    }
    return now;
  }

  /** Assigns (event once per visitor), forwards to GA4 / Mixpanel, then applies the variant. */
  function enter(experiment: ExperimentConfig, variant: VariantConfig, forced: boolean): void {
    const id = experiment.id;
    if (!forced) {
      // the assignment event goes once per visitor and experiment: when the sticky entry is written
      const variants = sticky();
      if (variants[id] !== variant.id) {
        // the task's new assignments in one write, at its end
        if (!saving) {
          saving = 1;
          const visitor = identity!._visitorId;
          Promise.resolve().then(() => {
            saving = 0;
            writeJson(storage, ASSIGNMENTS_KEY, { visitor, variants });
          });
        }
        variants[id] = variant.id;
        emit("assignment", undefined, id, variant.id);
      }
      call("enter", experiment, variant);
    }
    const undo = applyChanges(doc, id, variant, report);
    running.set(id, [experiment, variant, undo, forced]);
    retarget();
  }

  /** Goals count for this page's assignments (previews excluded: the track chunk leaves them out). */
  function retarget(): void {
    call("targets", [...running.values()]);
  }

  /** Forgets this page's experiments but those `keep` keeps: what they injected goes, triggers stop. */
  function stopAll(keep: (r: Running) => unknown): void {
    for (const [id, r] of running) {
      if (keep(r)) continue;
      r[2]();
      running.delete(id);
    }
    generation++;
    for (const cancel of cancels.splice(0)) cancel();
    retarget();
  }

  // --- the page -----------------------------------------------------------------------------------

  /** A page view starts (load, SPA navigation): assignment and changes, with the curtain up first on a load. */
  function enterPage(load?: boolean): [ExperimentConfig, VariantConfig, boolean][] {
    call("page", page);
    const now = plan();
    if (load && now.length > 0) hide();
    for (const [e, v, forced] of now) enter(e, v, forced);
    return now;
  }

  /** `page_view`; `hiddenMs` (whole ms, from the curtain's reveal) when the page was hidden */
  const pageView = (hiddenMs?: number): void => {
    emit("page_view", hiddenMs == null ? undefined : { hidden_ms: Math.min(hiddenMs, MAX_HIDDEN_MS) });
    const [url, at, n] = [page, Date.now(), views];
    track((t) => n == views && t.view(url, at));
  };

  /** The first config of the page is known (null: none could be loaded). */
  function init(first: SiteConfig | null): void {
    config = site = first;
    settings = (first && first.settings) || {};
    timeout = settings.anti_flicker_timeout_ms || FIRST_VISIT_TIMEOUT_MS;
    crossDomain = settings.cross_domain || []; // the site's and every experiment's (the server joins them)
    identityOptions._domains = settings.cookie_domains;
    identify();
    w[HOST_GLOBAL] = w[HOST_GLOBAL] || {
      version: VERSION,
      base,
      apiKey,
      config: first!,
      visitorId: () => identify()._visitorId,
      assignments: () => {
        const out: Record<string, Assignment> = {};
        for (const [e, v] of running.values()) {
          out[e.slug] = { experimentId: e.id, slug: e.slug, variantId: v.id, variantKey: v.key };
        }
        return out;
      },
      track: emit,
      report,
      module: (name) => (first!.modules || []).find((m) => m.name === name),
      crossDomain,
      early,
      events: outbox._held,
      register,
    };
    // the referral chunk classifies the visit where it decides (the curtain waits), then the page
    const referral = tracking ? experiments().filter((e) => !e.preview && (e.audience.referral_sources || []).length) : [];
    const stored = sticky();
    if (referral.some((e) => urlRulesMatch(e) && !stored[e.id])) wait("referral", show);
    else {
      if (referral.length) need("referral", () => {}); // for later SPA page views
      show();
    }
  }

  /**
   * The page waits (up to the curtain's failsafe) for chunk `name`, hidden where a curtain may be
   * drawn at all; `then()` runs once, also when the chunk fails to load.
   */
  function wait(name: string, then: () => void): void {
    let done = 0;
    const go = guard(() => done++ || then());
    if (veiled) hide();
    setTimeout(go, timeout);
    need(name, go, go);
  }

  /** The page view once everything for evaluation is there: assignment, changes, reveal. */
  function show(): void {
    page = loc.href; // an SPA may have changed it while the config loaded
    const now = enterPage(true);
    if (tracking) {
      // clicks and submits before the track chunk is there: it replays them (goals, click triggers).
      // A link to a listed domain followed meanwhile gets its `_sgmt_vid` here, as the chunk would
      // have given it (the navigation reads the href after the capture phase). This is the chunk's
      // `decorateLink` (core/identity.ts) done on the anchor's own parsed parts: the same result for
      // a link with a query of name=value pairs, 115 bytes less than bundling `decorateLink` here
      const keep = guard((event: Event) => {
        if (chunks.track) return;
        early.push(event);
        const target = event.target as Element;
        const link = event.type == "click" && target.closest && (target.closest("a[href]") as HTMLAnchorElement | null);
        if (link && /^https?:$/.test(link.protocol) && link.hostname != loc.hostname && isListedHost(link.hostname, crossDomain)) {
          link.search = link.search
            .slice(1)
            .split("&")
            .filter((p) => p && p.split("=")[0] != CROSS_DOMAIN_PARAM)
            .concat(`${CROSS_DOMAIN_PARAM}=${encodeURIComponent(identity!._visitorId)}`)
            .join("&");
        }
      });
      doc.addEventListener("click", keep, true);
      doc.addEventListener("submit", keep, true);
    }
    // the page is shown (once): the curtain goes, and the load's page view is due
    let shown = 0;
    const reveal = guard(() => {
      if (shown++) return;
      const hidden = curtain && curtain();
      shownAt = doc.visibilityState == "hidden" ? 0 : Date.now();
      view = () => pageView(hidden);
      later(guard(sendView)); // the page shows first; its event after the parse (or at pagehide)
    });
    // SPA navigations: pushState, replaceState and popstate that change the URL are page views
    const navigated = guard(() => {
      // a new path or query is a page view; a fragment alone (an in-page anchor) is not
      if (loc.href.split("#")[0] === page.split("#")[0]) return;
      // a navigation while the page is hidden (activation delay, a variant's script waiting for
      // DOMContentLoaded) shows it: the app has moved on, and the load's page view goes first
      reveal();
      sendView(); // the load's page view before the next one
      call("leave", Date.now()); // for the page being left, still under its URL
      page = loc.href;
      shownAt = Date.now();
      clicksBefore = early.length;
      // by the config of this page view (a revalidated one may have changed the rules)
      stopAll(([r]) => experiments().some((e) => e.id === r.id && urlRulesMatch(e)));
      enterPage();
      pageView();
    });
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
        sendView();
        if (chunks.track) {
          call("leave", Date.now());
          (chunks.track as Tracker).flush();
        } else {
          // left before the track chunk ran: what it would have sent goes with the beacon. This page
          // view's engagement (wall time since it was shown, 0 s for a page hidden at its reveal; a
          // click or a submit is an interaction), then the goals of the clicks and submits it never
          // saw (once per goal)
          if (shownAt != null) {
            const ms = shownAt && Math.max(0, Date.now() - shownAt);
            emit("time_on_page", { seconds: Math.min(Math.round(ms / 100) / 10, 86_400) });
            if (ms < BOUNCE_MS && early.length == clicksBefore) emit("bounce");
            shownAt = undefined;
            views++; // restored from the back/forward cache, the chunk does not count this page view again
          }
          const done = new Set<string>();
          for (const event of early.splice(0)) {
            for (const [e, v, , forced] of running.values()) {
              for (const g of forced ? [] : e.goals || []) {
                try {
                  if (g.type == (event.type == "submit" ? "form_submit" : "click") && (event.target as Element).closest(g.selector!) && !done.has(e.id + g.id)) {
                    done.add(e.id + g.id);
                    emit("conversion", { goal_id: g.id, goal_name: g.name }, e.id, v.id);
                  }
                } catch {
                  // an invalid selector never matches
                }
              }
            }
          }
          outbox._beacon((url, body) => win.navigator.sendBeacon(url, body));
        }
      }),
    );
    if (site) {
      if (site.badge) load("snippet/badge.js");
      if (preview) load("snippet/preview.js");
      if (editor) load("snippet/editor.js");
      if (tracking) for (const m of site.modules || []) load(m.src);
    }
    // reveal once the changes are in and the activation delay has passed. Elements the parser adds
    // later get their changes from the changes engine's MutationObserver before they are painted;
    // custom JavaScript runs at DOMContentLoaded, so a variant with some waits for that.
    const delay = Math.max(0, ...now.map(([e]) => e.delay));
    const afterDelay = () => (delay > 0 ? setTimeout(reveal, delay) : reveal());
    const scripted = now.some(([, v]) => v.scripts.length);
    if (now.length === 0) reveal();
    else if (scripted && doc.readyState === "loading") doc.addEventListener("DOMContentLoaded", afterDelay);
    else afterDelay();
    win.postMessage({ type: "segmently-snippet-ready", version: VERSION }, "*");
  }

  // --- window.Segmently ---------------------------------------------------------------------------

  /** Every experiment's variant key for this visitor: this page's, else the stored one. */
  function assignments(): Record<string, string> {
    const stored = sticky();
    const out: Record<string, string> = {};
    for (const e of experiments()) {
      const variant = e.variants.find((v) => v.id === stored[e.id]);
      if (variant) out[e.slug] = variant.key;
    }
    // what this page shows, also when a revalidated config no longer has it (undone from the next page view)
    for (const [e, v] of running.values()) out[e.slug] = v.key;
    return out;
  }

  /** `data` as JSON carries it, a copy taken now; undefined where JSON cannot (a cycle, a BigInt) */
  const copy = (data: unknown): unknown => {
    try {
      return JSON.parse(JSON.stringify(data));
    } catch {
      // refused: held, it would fail the write of every event held with it
    }
  };
  const trackEvent = (eventName: string, eventData?: Record<string, unknown>): void => {
    let data: unknown;
    if (typeof eventName != "string" || eventName === "" || eventName.length > 100) {
      report("track(): the name must be 1-100 characters");
    } else if (eventData !== undefined && !isRecord((data = copy(eventData)))) {
      report("track(): the data must be a JSON object");
    } else emit(eventName, data as Record<string, unknown> | undefined);
  };

  // settles once the network answered: flags use the freshest config (a kill switch acts at once)
  let settled: Promise<SiteConfig | null | undefined> = Promise.resolve(null);
  const flags = (): Promise<Record<string, boolean>> =>
    settled.then(
      guard((latest) => {
        const out: Record<string, boolean> = {};
        // flagEnabled() of src/core/assign.ts
        for (const f of (latest && latest.flags) || []) out[f.key] = hashV2(f.key, identify()._visitorId) < f.rollout / 100;
        return out;
      }, {}),
    );

  const api: SegmentlyApi = Object.freeze({
    version: VERSION,
    track: guard(trackEvent),
    trackConversion: guard((eventData?: Record<string, unknown>) => trackEvent("conversion", eventData)),
    getVariant: guard((slug: string) => assignments()[slug] || null, null),
    getVisitorId: () => identity && identity._visitorId,
    setAttributes: guard((attrs: Record<string, unknown>) => {
      if (!isRecord(attrs)) return report("setAttributes(): the attributes must be an object");
      for (const key of Object.keys(attrs)) if (!RESERVED_ATTRIBUTE_KEYS.has(key)) attributes[key] = attrs[key];
      writeJson(storage, ATTRIBUTES_KEY, attributes);
    }),
    getAllAssignments: guard(assignments, {}),
    reset: guard(() => {
      stopAll(() => 0);
      removeKey(storage, ASSIGNMENTS_KEY);
      assigned = undefined;
      removeKey(storage, ATTRIBUTES_KEY);
      for (const key of Object.keys(attributes)) delete attributes[key];
      // before the config (a first visit): once the cookie domain is known, as the config names it
      if (identity) identity = resetIdentity(identityOptions, identity);
      else fresh = 1;
      call("decorate");
    }),
    isEnabled: (key: string) => flags().then((all) => all[key] === true),
    getAllFlags: flags,
  });
  w.Segmently = api;

  try {
    if (!loaded) return api;
    // set before init: custom JS run by init may already ask for flags
    settled = loaded._update.then(
      guard((latest) => {
        if (site === undefined) init(latest);
        // a replaced (or gone) config is used from the next page view (SPA navigations included), not mid-page
        else config = latest;
        return config;
      }, null),
    );
    if (loaded.config) init(loaded.config);
    else if (veiled) hide();
  } catch (error) {
    report("could not start", error);
    if (curtain) curtain();
  }
  return api;
}
