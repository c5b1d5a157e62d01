/**
 * The free tier's "Powered by Segmently" badge (chunk `dist/badge.js`): small, fixed bottom-right,
 * a link to segmently.us, shown when the site's config says `badge: true` (the server decides by plan).
 * It sits in a closed shadow root behind `!important` inline styles, so the page's CSS can neither
 * restyle nor hide it with ordinary rules, and it is put back when a script removes or hides it —
 * up to a limit, so it never loops fighting a script that keeps doing so.
 */

import { keepInBody } from "../core/attached";
import type { ModuleHost } from "../core/host";

/** at most this many repairs (re-attach or restyle) within REPAIR_WINDOW_MS; one more and the badge gives up */
export { MAX_REPAIRS, REPAIR_WINDOW_MS } from "../core/attached";
export const BADGE_URL = "https://segmently.us";
export const BADGE_TEXT = "Powered by Segmently";

const TAG = "segmently-badge";

const HOST_STYLE =
  "all:initial!important;display:block!important;position:fixed!important;right:12px!important;bottom:12px!important;" +
  "left:auto!important;top:auto!important;z-index:2147483647!important;visibility:visible!important;opacity:1!important;" +
  "transform:none!important;clip-path:none!important;filter:none!important;pointer-events:auto!important;margin:0!important";

const SHADOW_HTML =
  "<style>" +
  "a{all:initial!important;display:inline-flex!important;align-items:center!important;gap:6px!important;" +
  "padding:5px 9px 5px 6px!important;background:#fff!important;color:#374151!important;border:1px solid #e5e7eb!important;" +
  "border-radius:999px!important;box-shadow:0 1px 4px rgba(0,0,0,.15)!important;cursor:pointer!important;" +
  'font:500 11px/1 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif!important;text-decoration:none!important;white-space:nowrap!important}' +
  "a:hover{color:#1d4ed8!important}" +
  "svg{display:block!important;width:14px!important;height:14px!important}" +
  "</style>" +
  `<a href="${BADGE_URL}" target="_blank" rel="noopener" title="${BADGE_TEXT}">` +
  '<svg viewBox="0 0 16 16" aria-hidden="true"><rect width="16" height="16" rx="4" fill="#1d4ed8"/>' +
  '<path d="M4 11V8M8 11V5M12 11V7" stroke="#fff" stroke-width="2" stroke-linecap="round"/></svg>' +
  `<span>${BADGE_TEXT}</span></a>`;

export interface BadgeHandle {
  /** the element on the page (its shadow root is closed: `element.shadowRoot` is null) */
  element: HTMLElement;
  /** the closed shadow root, for tests */
  root: ShadowRoot;
  stop(): void;
}

interface BadgeWindow extends Window {
  __segmentlyBadge?: BadgeHandle;
}

/** Shows the badge when `host.config.badge` is set (once per window); null otherwise. */
export function startBadge(host: ModuleHost, win: Window): BadgeHandle | null {
  const w = win as BadgeWindow;
  if (w.__segmentlyBadge) return w.__segmentlyBadge;
  if (!host.config.badge) return null;

  const doc = win.document;
  const element = doc.createElement(TAG);
  element.setAttribute("style", HOST_STYLE);
  const root = element.attachShadow({ mode: "closed" });
  root.innerHTML = SHADOW_HTML;

  // removed, moved into another element, restyled or given other attributes: put back as it was
  const kept = keepInBody(
    doc,
    element,
    () => host.report(`the "${BADGE_TEXT}" badge keeps being removed; it is not put back again on this page`),
    () => element.getAttribute("style") === HOST_STYLE && element.attributes.length === 1,
    () => {
      for (const attr of Array.from(element.attributes)) if (attr.name !== "style") element.removeAttribute(attr.name);
      element.setAttribute("style", HOST_STYLE);
    },
  );
  const show = (): void => {
    if (w.__segmentlyBadge === handle) kept.attach();
  };

  const handle: BadgeHandle = {
    element,
    root,
    stop: () => {
      kept.stop();
      element.remove();
      if (w.__segmentlyBadge === handle) delete w.__segmentlyBadge;
    },
  };
  w.__segmentlyBadge = handle;
  if (doc.body) show();
  else doc.addEventListener("DOMContentLoaded", show, { once: true });
  return handle;
}

// the built chunk starts itself with the host the core left on the window
if (typeof window !== "undefined" && window.__segmentlyHost) {
  try {
    startBadge(window.__segmentlyHost, window);
  } catch (error) {
    window.__segmentlyHost.report("the badge failed to start", error);
  }
}
