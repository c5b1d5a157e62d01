/**
 * Behavioral triggers (the spec's "Behavioral Targeting"): an experiment with any of them waits for
 * the visitor to scroll, stay or click before it is assigned and applied.
 *
 * - scroll: `(scrollY + innerHeight + 1) ≥ scrollHeight · percent/100`, checked on every scroll and once
 *   the document is parsed (a short page on a tall screen fires without scrolling);
 * - time: `time_seconds` after `since` (when the runtime set the trigger up: page load, or the SPA page);
 * - click: a click on an element matching `click_selector` or inside one (`closest`).
 *
 * The first to happen fires, once; every listener is then removed (at most once per page view).
 */

import type { Triggers } from "../../core/types";

/**
 * Calls `fire` once, when the first configured trigger happens, and removes the other listeners.
 * Returns a cancel function (SPA navigation, stop): after it `fire` is never called. `clicks` were
 * made since `since`, before this chunk loaded: they count.
 */
export function onTrigger(
  win: Window,
  t: Triggers,
  fire: () => void,
  since = Date.now(),
  clicks: readonly Event[] = [],
): () => void {
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
    // a pixel's slack: zoomed, the page's bottom is a fractional scrollY short of the whole-pixel height
    if (percent != null && win.scrollY + win.innerHeight + 1 >= (doc.documentElement.scrollHeight * percent) / 100) {
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

  // the time counts from `since` (the runtime asked before this chunk had loaded)
  if (t.time_seconds != null) timer = setTimeout(trigger, t.time_seconds * 1000 - (Date.now() - since));
  if (selector) {
    doc.addEventListener("click", onClick, true);
    clicks.forEach((e) => e.type === "click" && onClick(e)); // seen by the core before this chunk loaded
  }
  if (percent != null) {
    win.addEventListener("scroll", onScroll, { passive: true });
    if (doc.readyState === "loading") doc.addEventListener("DOMContentLoaded", onScroll);
    else onScroll();
  }
  return cancel;
}
