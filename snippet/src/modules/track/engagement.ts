/**
 * Engagement of each page view (the spec's "Automatic Tracking"):
 *
 * - `time_on_page {seconds}`: the time the page view was visible (a background tab does not count),
 *   to 0.1 s, at most a day (the server's limit), sent when the visitor leaves the page view: on
 *   `pagehide` and before an SPA navigation, so each page of a single-page app has its own. The
 *   server counts under 5 s as a bounce and leaves it out of the average time on page.
 * - `bounce`: the visitor left the site's page within 5 s of visible time without interacting (no
 *   click, tap or key press): the spec's "user leaves without interaction" and "<5 seconds on page
 *   or immediate exit". Sent only when the visitor really leaves (`exit()`, on `pagehide`), never for
 *   a page view an SPA navigation ended: a URL change (a site stripping `utm_*` with `replaceState`,
 *   a route change) is no leaving. Every such page view also sent its `time_on_page`.
 *
 * Both at most once per page view. The runtime calls `leave()` on `pagehide` and before an SPA
 * navigation alike (it cannot tell them apart for us), so the chunk tells them apart by what comes
 * next: `pagehide` is followed by the Tracker's `flush()`, which calls `exit()` (the bounce of the
 * page view just left is sent, then beaconed with the rest); an SPA navigation is followed by the
 * next `pageView()`, which drops it. `pageView()` when a page starts (a new `pageView()` leaves the
 * previous page first).
 */

import type { Emit } from "../../core/host";

export type { Emit } from "../../core/host";

const BOUNCE_MS = 5000;
const MAX_SECONDS = 86_400;
const INTERACTIONS = ["pointerdown", "keydown"];

export function trackEngagement(
  win: Window,
  doc: Document,
  emit: Emit,
  now: () => number = Date.now,
): { pageView(at?: number): void; leave(at?: number): void; exit(): void; stop(): void } {
  let active = false;
  /** the page view left last was a bounce, if the visitor really left (`exit()`) */
  let bounced = false;
  let interacted = false;
  let visibleMs = 0;
  let visibleSince: number | null = null;

  // `at`: when it happened, for calls the runtime made before this chunk had loaded
  const pause = (at = now()): void => {
    if (visibleSince !== null) visibleMs += Math.max(0, at - visibleSince);
    visibleSince = null;
  };
  const onVisibility = (): void => {
    if (doc.visibilityState !== "visible") pause();
    else if (active && visibleSince === null) visibleSince = now();
  };
  const onInteraction = (): void => {
    interacted = true;
  };
  const leave = (at?: number): void => {
    if (!active) return;
    active = false;
    pause(at);
    emit("time_on_page", { seconds: Math.min(MAX_SECONDS, Math.round(visibleMs / 100) / 10) });
    bounced = visibleMs < BOUNCE_MS && !interacted;
  };

  doc.addEventListener("visibilitychange", onVisibility);
  for (const type of INTERACTIONS) win.addEventListener(type, onInteraction, true);
  return {
    pageView(at = now()) {
      leave(at);
      bounced = false; // an SPA navigation: the visitor stayed
      active = true;
      interacted = false;
      visibleMs = 0;
      visibleSince = doc.visibilityState === "visible" ? at : null;
    },
    leave,
    exit() {
      leave();
      if (bounced) emit("bounce");
      bounced = false;
    },
    stop() {
      doc.removeEventListener("visibilitychange", onVisibility);
      for (const type of INTERACTIONS) win.removeEventListener(type, onInteraction, true);
    },
  };
}
