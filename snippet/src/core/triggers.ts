/**
 * Behavioral triggers (the spec's "Behavioral Targeting"): an experiment with any of them waits for
 * the visitor to scroll, stay or click before it is assigned and applied.
 *
 * - scroll: `(scrollY + innerHeight) ≥ scrollHeight · percent/100`, checked on every scroll and once
 *   the document is parsed (a short page on a tall screen fires without scrolling);
 * - time: a timer of `time_seconds` started when `onTrigger` is called (page load, or the SPA page);
 * - click: a click on an element matching `click_selector` or inside one (`closest`).
 *
 * The first to happen fires, once; every listener is then removed (at most once per page view).
 */

import type { Triggers } from "./types";

/** Whether the experiment waits for a behavioral trigger (any of scroll, time, click set). */
export function hasTriggers(t: Triggers | null | undefined): boolean {
  return !!t && (t.scroll_percent != null || t.time_seconds != null || !!t.click_selector);
}

/**
 * Calls `fire` once, when the first configured trigger happens, and removes the other listeners.
 * Returns a cancel function (SPA navigation, stop): after it `fire` is never called.
 */
export function onTrigger(win: Window, t: Triggers, fire: () => void): () => void {
  const doc = win.document;
  const percent = t.scroll_percent;
  const selector = t.click_selector;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let done = false;

  const cancel = (): void => {
    done = true;
    clearTimeout(timer);
    win.removeEventListener("scroll", onScroll);
    doc.removeEventListener("DOMContentLoaded", onScroll);
    doc.removeEventListener("click", onClick, true);
  };
  const trigger = (): void => {
    if (done) return;
    cancel();
    fire();
  };
  function onScroll(): void {
    if (percent != null && win.scrollY + win.innerHeight >= (doc.documentElement.scrollHeight * percent) / 100) {
      trigger();
    }
  }
  function onClick(event: Event): void {
    try {
      if ((event.target as Element).closest(selector as string)) trigger();
    } catch {
      // an invalid selector (or a click dispatched on the document itself) never matches
    }
  }

  if (t.time_seconds != null) timer = setTimeout(trigger, t.time_seconds * 1000);
  if (selector) doc.addEventListener("click", onClick, true);
  if (percent != null) {
    win.addEventListener("scroll", onScroll, { passive: true });
    if (doc.readyState === "loading") doc.addEventListener("DOMContentLoaded", onScroll);
    else onScroll();
  }
  return cancel;
}
