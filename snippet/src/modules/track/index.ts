/**
 * The `track` chunk (`dist/track.js`): what the core leaves until after the page is shown —
 * experiment goals, site conversion rules, engagement (time_on_page, bounce), cross-domain link
 * decoration, GA4 / Mixpanel impressions, behavioral triggers and the event queue (README "Chunks").
 *
 * The core loads it on every tracked page (not opted out, not in the visual editor). It registers
 * a `Tracker` with the host; the core's calls made while it loaded run then, in order, and the
 * clicks and submits the core saw meanwhile are replayed to goals and click triggers.
 */

import type { GoalTarget, ModuleHost, Running, Tracker } from "../../core/host";
import { crossDomainParam, decorateLink, documentCookieJar, isOptedOut } from "../../core/identity";
import { createEventQueue } from "../../core/queue";
import { type KeyValueStorage, browserStorage, isRecord, readJson, removeKey } from "../../core/storage";
import { trackEngagement } from "./engagement";
import { watchGoals } from "./goals";
import { watchRules } from "./rules";
import { onTrigger } from "./triggers";

/** The core's sticky assignments, `{visitor, variants: {experimentId: variantId}}` (src/runtime.ts `sticky()`). */
const ASSIGNMENTS_KEY = "seg_assignments";

type TrackWindow = Window & {
  __segmentlyTrack?: Tracker;
  gtag?: (...args: unknown[]) => void;
  mixpanel?: { track?: (...args: unknown[]) => void };
};

/** Starts tracking on `win`'s page (once per window) and registers it with the core. */
export function startTrack(host: ModuleHost, win: Window): Tracker {
  const w = win as TrackWindow;
  if (w.__segmentlyTrack) return w.__segmentlyTrack;
  const doc = win.document;
  const emit = host.track;
  const crossDomain = host.crossDomain;
  const storage = browserStorage(win);
  // configs stored in the shapes before `seg_config3:` are never read again: they go here, after the reveal
  for (const old of ["seg_config:", "seg_config2:"]) removeKey(storage, old + host.apiKey);
  const config = host.config;
  const goals = watchGoals(doc, emit);
  const conversionRules = (config && config.conversion_rules) || [];
  const rules = watchRules(doc, storage, conversionRules, emit, conversionRules.length ? tabStorage(win) : null);
  const engagement = trackEngagement(win, doc, emit);
  // what the core saw before this chunk ran: replayed to click triggers set up now, then to goals
  let early = host.early.splice(0);

  /** Links (in `node`) to the listed cross-domain hosts get `_sgmt_vid`. */
  const decorate = (node: Node): void => {
    if (crossDomain.length === 0 || (node.nodeType !== 1 && node.nodeType !== 9)) return;
    const root = node as Element;
    const links: Element[] = [...root.querySelectorAll("a[href]")];
    if (root.tagName === "A") links.push(root);
    for (const link of links as HTMLAnchorElement[]) {
      const id = host.visitorId();
      if (crossDomainParam(link.href)[0] === id) continue; // also ends the observer's echo
      const next = decorateLink(link.href, id, crossDomain, win.location.hostname);
      if (next !== null) link.href = next;
    }
  };
  if (crossDomain.length > 0) {
    decorate(doc);
    new MutationObserver((records) => {
      try {
        for (const r of records) {
          if (r.type === "attributes") decorate(r.target);
          else r.addedNodes.forEach(decorate);
        }
      } catch (error) {
        host.report("internal error", error);
      }
    }).observe(doc, { childList: true, subtree: true, attributes: true, attributeFilter: ["href"] });
  }

  // created just before registering: from then on the core sends every event here, none in between
  const jar = documentCookieJar(doc);
  const queue = createEventQueue({
    baseUrl: host.base,
    apiKey: host.apiKey,
    storage,
    isOptedOut: () => isOptedOut(jar),
    send: (url, body, headers) =>
      // keepalive lets a batch outlive the page, but browsers refuse keepalive bodies over 64 KB
      win
        .fetch(url, { method: "POST", body, headers, credentials: "omit", keepalive: body.length < 60_000 })
        .then((r) => ({ status: r.status, retryAfter: parseFloat(r.headers.get("Retry-After")!) })),
    beacon: typeof win.navigator.sendBeacon === "function" ? (url, body) => win.navigator.sendBeacon(url, body) : null,
    held: host.events.splice(0),
  });

  /**
   * Goals count for the experiments running on the page (previews excluded) and for the visitor's
   * sticky assignments in the config's other experiments: a bucketed visitor converts on a goal's
   * page outside the experiment's URL rules too (the spec's Page View goal: "whenever a bucketed
   * visitor lands on that URL"). The core hands the running ones only; the stored ones are read here
   * (another visitor's, a draft served for a preview and a previewed experiment are left out). An
   * experiment counts once: running, else stored.
   */
  let running: readonly Running[] = [];
  const retarget = (): void => {
    const targets: GoalTarget[] = [];
    const here = new Set<string>();
    for (const [e, v, , forced] of running) {
      here.add(e.id);
      if (!forced) targets.push({ experimentId: e.id, variantId: v.id, goals: e.goals });
    }
    const stored = readJson(storage, ASSIGNMENTS_KEY);
    const variants =
      isRecord(stored) && stored.visitor === host.visitorId() && isRecord(stored.variants) ? stored.variants : {};
    for (const e of (config && config.experiments) || []) {
      const v = !here.has(e.id) && !e.preview && !e.variants[e.forced!] && e.variants.find((x) => x.id === variants[e.id]);
      if (v) targets.push({ experimentId: e.id, variantId: v.id, goals: e.goals });
    }
    goals.setTargets(targets);
  };

  const tracker: Tracker = {
    page(url) {
      goals.pageView(url);
      retarget(); // read again: assigned since (an earlier page, another tab), or reset()
    },
    targets(next) {
      running = next;
      retarget();
    },
    enter(e, v) {
      try {
        if (e.ga4 && typeof w.gtag === "function") {
          w.gtag("event", "experiment_impression", {
            experiment_id: e.slug,
            experiment_name: e.name,
            variant_id: v.id,
            variant_name: v.name,
          });
        }
        if (e.mixpanel && w.mixpanel && typeof w.mixpanel.track === "function") {
          w.mixpanel.track("$experiment_started", {
            "Experiment name": e.name,
            "Experiment ID": e.slug,
            "Variant name": v.name,
            "Variant ID": v.id,
          });
        }
      } catch (error) {
        host.report("GA4 / Mixpanel forwarding failed", error);
      }
    },
    view(url, at) {
      engagement.pageView(at); // after an SPA navigation's leave(): no bounce, the visitor stayed
      rules.check(url);
    },
    // leave() comes before an SPA navigation and on pagehide alike; flush() only on pagehide (the
    // core calls leave() then flush()): the bounce of the page view left goes then (engagement.ts)
    leave: engagement.leave,
    decorate: () => decorate(doc),
    trigger: (t, fire, since) => onTrigger(win, t, fire, since, early),
    send: queue.enqueue,
    flush() {
      engagement.exit();
      queue.flushOnPageHide();
    },
  };
  w.__segmentlyTrack = tracker;
  host.register("track", tracker);
  for (const event of early) goals.replay(event);
  early = [];
  return tracker;
}

/** `sessionStorage`: this tab's own (it survives reloads), or null when blocked. */
function tabStorage(win: Window): KeyValueStorage | null {
  try {
    return win.sessionStorage || null;
  } catch {
    return null;
  }
}

if (typeof window !== "undefined" && window.__segmentlyHost) {
  try {
    startTrack(window.__segmentlyHost, window);
  } catch (error) {
    window.__segmentlyHost.report("tracking failed to start", error);
  }
}
