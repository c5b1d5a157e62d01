/**
 * The on-site Test Panel (chunk `dist/preview.js`), loaded by the core when a page is opened with
 * `?segmently_preview=slug:variant` and on the next pages of that session. It shows the previewed experiment (and any other experiment
 * running on the page), the segment being shown, a dropdown to switch segment, "View Original"
 * (the URL without the parameter) and "Dashboard" (the experiment, in a new tab). Minimizing is
 * remembered for the browser session. Everything lives in a shadow root, so no style leaks either way.
 */

import { keepInBody } from "../core/attached";
import type { Assignment, ModuleHost } from "../core/host";
import type { ExperimentConfig } from "../core/types";

export const PREVIEW_PARAM = "segmently_preview";
/** sessionStorage key: "1" while the panel is minimized */
export const MINIMIZED_KEY = "segmently_preview_minimized";
const TAG = "segmently-preview";

export interface PreviewRequest {
  slug: string;
  /** the variant's key (or id) after the colon; "" when none was given */
  variant: string;
}

export interface PreviewPanel {
  /** the element appended to <body> (the shadow root's host) */
  element: HTMLElement;
  root: ShadowRoot;
  /** redraw from the host's current assignments */
  refresh(): void;
  stop(): void;
}

type Navigate = (url: string) => void;

function decode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, " "));
  } catch {
    return s;
  }
}

/** The first `segmently_preview` parameter of `search` (`?a=1&…`), split at its first colon. */
export function parsePreview(search: string): PreviewRequest | null {
  for (const pair of search.replace(/^\?/, "").split("&")) {
    const eq = pair.indexOf("=");
    if (eq < 0 || decode(pair.slice(0, eq)) !== PREVIEW_PARAM) continue;
    const value = decode(pair.slice(eq + 1)).trim();
    const colon = value.indexOf(":");
    const slug = colon < 0 ? value : value.slice(0, colon);
    if (slug) return { slug, variant: colon < 0 ? "" : value.slice(colon + 1) };
  }
  return null;
}

/**
 * `href` with its `segmently_preview` parameter set to `slug:variant` (in the first one's place, else
 * at the end) or, when `value` is null, removed. Every other parameter and the fragment stay as written.
 */
export function previewUrl(href: string, value: PreviewRequest | null): string {
  const hashAt = href.indexOf("#");
  const hash = hashAt < 0 ? "" : href.slice(hashAt);
  const noHash = hashAt < 0 ? href : href.slice(0, hashAt);
  const queryAt = noHash.indexOf("?");
  const path = queryAt < 0 ? noHash : noHash.slice(0, queryAt);
  const pairs = queryAt < 0 ? [] : noHash.slice(queryAt + 1).split("&").filter((p) => p !== "");
  const ours = value ? `${PREVIEW_PARAM}=${encodeURIComponent(value.slug)}:${encodeURIComponent(value.variant)}` : null;
  const out: string[] = [];
  let placed = false;
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (decode(eq < 0 ? pair : pair.slice(0, eq)) !== PREVIEW_PARAM) out.push(pair);
    else if (ours && !placed) {
      out.push(ours);
      placed = true;
    }
  }
  if (ours && !placed) out.push(ours);
  return path + (out.length ? `?${out.join("&")}` : "") + hash;
}

function readMinimized(win: Window): boolean {
  try {
    return win.sessionStorage.getItem(MINIMIZED_KEY) === "1";
  } catch {
    return false; // storage blocked (sandboxed frame, privacy mode): not remembered
  }
}

function writeMinimized(win: Window, minimized: boolean): void {
  try {
    if (minimized) win.sessionStorage.setItem(MINIMIZED_KEY, "1");
    else win.sessionStorage.removeItem(MINIMIZED_KEY);
  } catch {
    // not remembered
  }
}

const CSS = `
.panel{font:13px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111827;background:#fff;
border:1px solid #d1d5db;border-radius:8px;box-shadow:0 6px 24px rgba(0,0,0,.18);width:280px;max-width:calc(100vw - 32px);
max-height:calc(100vh - 32px);overflow:auto;box-sizing:border-box;text-align:left}
.raised{max-height:calc(100vh - 64px)}
.head{display:flex;align-items:center;justify-content:space-between;gap:8px;padding:8px 10px;background:#1d4ed8;color:#fff;border-radius:7px 7px 0 0}
.head strong{font-weight:600}
button,select,a{font:inherit}
.toggle{border:0;background:transparent;color:#fff;cursor:pointer;padding:0 4px;font-size:12px}
.body{padding:10px}
.min .body{display:none}
.min .head{border-radius:7px}
.exp{margin:0 0 10px}
.name{font-weight:600;margin:0 0 4px;word-break:break-word}
.status{font-weight:400;font-size:11px;color:#374151;background:#e5e7eb;border-radius:4px;padding:0 4px;margin-left:4px}
label{display:block;color:#374151;font-size:12px}
select{display:block;width:100%;margin:2px 0 4px;padding:3px;border:1px solid #d1d5db;border-radius:4px;background:#fff;color:#111827}
.note{margin:2px 0;color:#b45309;font-size:12px}
.links{display:flex;gap:8px;margin-top:4px}
a{color:#1d4ed8;text-decoration:underline;cursor:pointer}
`;

function el<K extends keyof HTMLElementTagNameMap>(
  doc: Document,
  tag: K,
  className?: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = doc.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The experiments the panel lists: the requested one first, then drafts served for preview, then the rest running here. */
function listed(host: ModuleHost, request: PreviewRequest | null, assignments: Record<string, Assignment>): ExperimentConfig[] {
  const rank = (e: ExperimentConfig): number => (request && e.slug === request.slug ? 0 : e.preview ? 1 : 2);
  return host.config.experiments
    .filter((e) => rank(e) < 2 || assignments[e.slug] !== undefined)
    .sort((a, b) => rank(a) - rank(b));
}

function experimentBlock(
  doc: Document,
  host: ModuleHost,
  exp: ExperimentConfig,
  request: PreviewRequest | null,
  assignment: Assignment | undefined,
  here: () => string,
  navigate: Navigate,
): HTMLElement {
  const block = el(doc, "section", "exp");
  const name = el(doc, "div", "name", exp.name || exp.slug);
  name.appendChild(el(doc, "span", "status", exp.status));
  block.appendChild(name);

  const label = el(doc, "label", undefined, "Segment");
  const select = el(doc, "select");
  select.setAttribute("aria-label", `Segment of ${exp.name || exp.slug}`);
  if (!assignment) {
    const none = el(doc, "option", undefined, "— not shown on this page —");
    none.value = "";
    none.disabled = true;
    select.appendChild(none);
  }
  for (const v of exp.variants) {
    const option = el(doc, "option", undefined, v.name && v.name !== v.key ? `${v.name} (${v.key})` : v.key);
    option.value = v.key;
    select.appendChild(option);
  }
  select.value = assignment ? assignment.variantKey : "";
  select.addEventListener("change", () => {
    // the URL of now, not of the landing: an SPA may have moved on since the panel was drawn
    if (select.value) navigate(previewUrl(here(), { slug: exp.slug, variant: select.value }));
  });
  label.appendChild(select);
  block.appendChild(label);

  const requested = request && request.slug === exp.slug ? request : null;
  if (requested && requested.variant && !exp.variants.some((v) => v.key === requested.variant || v.id === requested.variant)) {
    block.appendChild(el(doc, "p", "note", `No segment "${requested.variant}" in this experiment.`));
  } else if (requested && !requested.variant && exp.forced === null) {
    // a later page of the session (no parameter to name it): the server found no such segment
    block.appendChild(el(doc, "p", "note", "The segment asked for is not in this experiment."));
  }
  if (!assignment) {
    block.appendChild(el(doc, "p", "note", "Not running on this page (check its URL and device targeting)."));
  }

  const links = el(doc, "div", "links");
  const dashboard = el(doc, "a", "dashboard", "Dashboard");
  dashboard.href = `${host.base}/experiments/${encodeURIComponent(exp.id)}`;
  dashboard.target = "_blank";
  dashboard.rel = "noopener";
  links.appendChild(dashboard);
  block.appendChild(links);
  return block;
}

function whenBody(win: Window, then: () => void): void {
  if (win.document.body) then();
  else win.document.addEventListener("DOMContentLoaded", then, { once: true });
}

/** `bottom`: 16px, or 48px above the free tier's badge (bottom-right, bottom 12px, about 26px tall, z-index above ours) */
const hostStyle = (bottom: number): string =>
  `all:initial!important;display:block!important;position:fixed!important;right:16px!important;bottom:${bottom}px!important;` +
  "z-index:2147483646!important;visibility:visible!important;opacity:1!important";

/** at most this many re-attachments (a page that swaps or clears <body>) within REPAIR_WINDOW_MS; then it stays off */
export { MAX_REPAIRS, REPAIR_WINDOW_MS } from "../core/attached";

interface PreviewWindow extends Window {
  __segmentlyPreview?: PreviewPanel;
}

/**
 * Shows the Test Panel for this page, once per window (a second call returns the first panel), or
 * returns null when nothing is previewed (no parameter, no experiment `forced` by the server and no
 * draft served for preview). On the next pages of a session (no parameter: the core's cookie) the
 * requested experiment is the one the server marked with `forced`, live ones included.
 * `navigate` opens a URL in this tab (the tests pass their own).
 */
export function startPreview(
  host: ModuleHost,
  win: Window,
  navigate: Navigate = (url) => win.location.assign(url),
): PreviewPanel | null {
  const w = win as PreviewWindow;
  if (w.__segmentlyPreview) return w.__segmentlyPreview;
  // `forced` (a number, or null for "no such segment") only comes on the experiment the preview asked for
  const forced = host.config.experiments.find((e) => e.forced !== undefined);
  const request = parsePreview(win.location.search) ?? (forced ? { slug: forced.slug, variant: "" } : null);
  if (!request && !host.config.experiments.some((e) => e.preview)) return null;

  const doc = win.document;
  const element = doc.createElement(TAG);
  const raised = !!host.config.badge;
  element.setAttribute("style", hostStyle(raised ? 48 : 16));
  const root = element.attachShadow({ mode: "open" });
  const style = el(doc, "style", undefined, CSS);
  const panel = el(doc, "div", "panel");
  panel.setAttribute("role", "region");
  panel.setAttribute("aria-label", "Segmently test panel");
  root.appendChild(style);
  root.appendChild(panel);

  let minimized = readMinimized(win);
  let drawn = "";
  const here = (): string => win.location.href;
  let original: HTMLAnchorElement | null = null;
  /** View Original: the current URL without the parameter (set when drawn, approached, focused and clicked) */
  const syncOriginal = (): void => {
    if (original) original.href = previewUrl(here(), null);
  };

  const draw = (force: boolean): void => {
    const assignments = host.assignments();
    const key = JSON.stringify(assignments);
    if (!force && key === drawn) return;
    drawn = key;
    while (panel.firstChild) panel.removeChild(panel.firstChild);
    panel.className = `panel${minimized ? " min" : ""}${raised ? " raised" : ""}`;

    const head = el(doc, "div", "head");
    head.appendChild(el(doc, "strong", undefined, "Segmently Test Panel"));
    const toggle = el(doc, "button", "toggle", minimized ? "▲" : "▼");
    toggle.type = "button";
    toggle.setAttribute("aria-expanded", String(!minimized));
    toggle.setAttribute("aria-label", minimized ? "Expand the test panel" : "Minimize the test panel");
    toggle.addEventListener("click", () => {
      minimized = !minimized;
      writeMinimized(win, minimized);
      draw(true);
    });
    head.appendChild(toggle);
    panel.appendChild(head);

    const body = el(doc, "div", "body");
    const exps = listed(host, request, assignments);
    if (request && !exps.some((e) => e.slug === request.slug)) {
      body.appendChild(el(doc, "p", "note", `No experiment "${request.slug}" is served to this site (check the slug).`));
    }
    for (const exp of exps) {
      body.appendChild(experimentBlock(doc, host, exp, request, assignments[exp.slug], here, navigate));
    }
    original = el(doc, "a", "original", "View Original");
    syncOriginal();
    original.addEventListener("focus", syncOriginal);
    // the core remembers the preview for the session (a cookie of the parameter's name): forget it too
    original.addEventListener("click", () => {
      syncOriginal(); // the link is followed after the event, with the href of now
      doc.cookie = `${PREVIEW_PARAM}=; path=/; SameSite=Lax; max-age=0`;
    });
    body.appendChild(original);
    panel.appendChild(body);
  };

  // assignments may arrive after the panel (activation delay, triggers): redraw when the pointer comes back
  // (and the URL may have changed since: an SPA navigation)
  const onEnter = (): void => {
    draw(false);
    syncOriginal();
  };
  element.addEventListener("pointerenter", onEnter);
  draw(true);

  // a page that swaps <body> (Turbo Drive, pjax) or clears it (hydration) gets the panel back in its
  // current body, up to MAX_REPAIRS times in REPAIR_WINDOW_MS
  const kept = keepInBody(doc, element, () =>
    host.report("the test panel keeps being removed from the page; it is not put back again on this page"),
  );

  const handle: PreviewPanel = {
    element,
    root,
    refresh: () => draw(false),
    stop: () => {
      kept.stop();
      element.removeEventListener("pointerenter", onEnter);
      element.remove();
      if (w.__segmentlyPreview === handle) delete w.__segmentlyPreview;
    },
  };
  w.__segmentlyPreview = handle;
  whenBody(win, () => {
    if (w.__segmentlyPreview === handle) kept.attach();
  });
  return handle;
}

// the built chunk starts itself with the host the core left on the window
if (typeof window !== "undefined" && window.__segmentlyHost) {
  try {
    startPreview(window.__segmentlyHost, window);
  } catch (error) {
    window.__segmentlyHost.report("the test panel failed to start", error);
  }
}
