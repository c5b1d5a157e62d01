/**
 * Engagement of each page view (the spec's "Automatic Tracking"), sent when the visitor leaves it:
 *
 * - `time_on_page {seconds}`: the time the page was visible (a background tab does not count), to
 *   0.1 s, at most a day (the server's limit). The server counts under 5 s as a bounce and leaves it
 *   out of the average time on page.
 * - `bounce`: the visitor left within 5 s of visible time without interacting (no click, tap or
 *   key press): the spec's "user leaves without interaction" and "<5 seconds on page or immediate
 *   exit". Every such page also sends its `time_on_page`, so the server's bounce flag is the same.
 *
 * Both at most once per page view; the runtime calls `leave()` on `pagehide` and before an SPA
 * navigation, `pageView()` when a page starts (a new `pageView()` leaves the previous page first).
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
): { pageView(at?: number): void; leave(at?: number): void; stop(): void } {
  let active = false;
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
    if (visibleMs < BOUNCE_MS && !interacted) emit("bounce");
  };

  doc.addEventListener("visibilitychange", onVisibility);
  for (const type of INTERACTIONS) win.addEventListener(type, onInteraction, true);
  return {
    pageView(at = now()) {
      leave(at);
      active = true;
      interacted = false;
      visibleMs = 0;
      visibleSince = doc.visibilityState === "visible" ? at : null;
    },
    leave,
    stop() {
      doc.removeEventListener("visibilitychange", onVisibility);
      for (const type of INTERACTIONS) win.removeEventListener(type, onInteraction, true);
    },
  };
}
