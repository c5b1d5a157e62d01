/**
 * The `track` chunk (`dist/track.js`): what the core leaves until after the page is shown —
 * experiment goals, site conversion rules, engagement (time_on_page, bounce), cross-domain link
 * decoration, GA4 / Mixpanel impressions, behavioral triggers and the event queue (README "Chunks").
 *
 * The core loads it on every tracked page (not opted out, not in the visual editor). It registers
 * a `Tracker` with the host; the core's calls made while it loaded run then, in order, and the
 * clicks and submits the core saw meanwhile are replayed to goals and click triggers.
 */

import type { ModuleHost, Tracker } from "../../core/host";
import { crossDomainParam, decorateLink, documentCookieJar, isOptedOut } from "../../core/identity";
import { createEventQueue } from "../../core/queue";
import { browserStorage, removeKey } from "../../core/storage";
import { trackEngagement } from "./engagement";
import { watchGoals } from "./goals";
import { watchRules } from "./rules";
import { onTrigger } from "./triggers";

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
  const goals = watchGoals(doc, emit);
  const rules = watchRules(doc, storage, (host.config && host.config.conversion_rules) || [], emit);
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
  const tracker: Tracker = {
    page: goals.pageView,
    targets: (running) =>
      goals.setTargets(
        running.filter((r) => !r[3]).map(([e, v]) => ({ experimentId: e.id, variantId: v.id, goals: e.goals })),
      ),
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
      engagement.pageView(at);
      rules.check(url);
    },
    leave: engagement.leave,
    decorate: () => decorate(doc),
    trigger: (t, fire, since) => onTrigger(win, t, fire, since, early),
    send: queue.enqueue,
    flush: queue.flushOnPageHide,
  };
  w.__segmentlyTrack = tracker;
  host.register("track", tracker);
  for (const event of early) goals.replay(event);
  early = [];
  return tracker;
}

if (typeof window !== "undefined" && window.__segmentlyHost) {
  try {
    startTrack(window.__segmentlyHost, window);
  } catch (error) {
    window.__segmentlyHost.report("tracking failed to start", error);
  }
}
