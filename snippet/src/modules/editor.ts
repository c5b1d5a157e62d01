/**
 * Selection mode for the dashboard's Visual Editor (chunk `dist/editor.js`), which opens the
 * customer's page in an iframe. The chunk tells the dashboard it is ready, outlines the element
 * under the pointer, and on a click (kept from the page) sends that element's selector and details.
 * It talks to the dashboard's origin (`new URL(host.base).origin`) only, both ways; see the README's
 * "Chunks" section for the messages.
 */

import type { ModuleHost } from "../core/host";
import type { Change } from "../core/types";

export const MESSAGE_PREFIX = "segmently:";
const TEXT_MAX = 200;
const HTML_MAX = 2000;

export interface SelectedElement {
  type: "segmently:select";
  selector: string;
  tag: string;
  id: string;
  classes: string[];
  /** the element's text, whitespace collapsed, ≤ 200 characters */
  text: string;
  /** the short label the editor's element tiles show (first direct text, else a child's) */
  label: string;
  /** outerHTML, cut at 2,000 characters */
  html: string;
  /** viewport coordinates */
  rect: { x: number; y: number; width: number; height: number };
}

export interface EditorHandle {
  /** is selection mode on (hover outline, clicks kept from the page)? */
  readonly selecting: boolean;
  /** removes everything: listeners, outlines, previewed changes */
  destroy(): void;
}

// ---------------------------------------------------------------------------------------------
// Selectors

// ids and classes that frameworks generate (React useId, Ember, CSS-in-JS hashes) or that change
// with the element's state: a selector built on them would not find the element on the next load
const GENERATED_ID = /^(?:ember|react-|radix-|headlessui-|mui-)|\d{3,}|:/;
const SAFE_CLASS = /^-?[_a-zA-Z][_a-zA-Z0-9-]*$/;
const GENERATED_CLASS =
  /^(?:css|jss|sc|jsx|svelte|emotion|chakra|ng)-|\d{3,}|__[A-Za-z0-9]{5}$|^(?:is-|has-)?(?:active|hover|focus|focused|selected|open|visible|hidden)$/;

/** CSS.escape for an identifier (CSSOM's algorithm), for browsers and test DOMs without it. */
export function cssEscape(value: string): string {
  let out = "";
  for (let i = 0; i < value.length; i++) {
    const ch = value.charAt(i);
    const code = value.charCodeAt(i);
    if (code === 0) out += "\uFFFD";
    else if ((code >= 1 && code <= 31) || code === 127 || (/[0-9]/.test(ch) && (i === 0 || (i === 1 && value.charAt(0) === "-")))) {
      out += `\\${code.toString(16)} `;
    } else if (i === 0 && ch === "-" && value.length === 1) out += "\\-";
    else if (code >= 128 || /[-_a-zA-Z0-9]/.test(ch)) out += ch;
    else out += `\\${ch}`;
  }
  return out;
}

function matchesOne(doc: Document, selector: string): boolean {
  try {
    return doc.querySelectorAll(selector).length === 1;
  } catch {
    return false;
  }
}

function idSelector(el: Element): string | null {
  return el.id && !GENERATED_ID.test(el.id) ? `#${cssEscape(el.id)}` : null;
}

function stableClasses(el: Element): string[] {
  return Array.from(el.classList)
    .filter((c) => SAFE_CLASS.test(c) && !GENERATED_CLASS.test(c))
    .slice(0, 3);
}

/** `tag.class…`, plus `:nth-of-type(n)` when a sibling would match it too. */
function step(el: Element): string {
  const tag = el.tagName.toLowerCase();
  const classes = stableClasses(el);
  const simple = tag + classes.map((c) => `.${c}`).join("");
  const parent = el.parentElement;
  if (!parent) return simple;
  let index = 0;
  let position = 0;
  let twins = 0;
  for (const sibling of Array.from(parent.children)) {
    if (sibling.tagName !== el.tagName) continue;
    index++;
    if (sibling === el) position = index;
    else if (classes.every((c) => sibling.classList.contains(c))) twins++;
  }
  return twins > 0 ? `${simple}:nth-of-type(${position})` : simple;
}

/**
 * A selector that matches `target` and nothing else on its page: its own `#id` when unique, else a
 * `tag.class > …` chain (`:nth-of-type` only where a sibling is alike) from the element up, anchored at
 * the nearest ancestor with a unique id or at `body`, or ending sooner at a step with a class once unique.
 */
export function selectorFor(target: Element): string {
  const doc = target.ownerDocument;
  if (target === doc.documentElement) return "html";
  if (target === doc.body) return "body";
  const own = idSelector(target);
  if (own && matchesOne(doc, own)) return own;
  const parts: string[] = [];
  for (let el: Element = target; ; ) {
    const top = step(el);
    parts.unshift(top);
    const chain = parts.join(" > ");
    // a bare tag (`span`, `div:nth-of-type(2) > i`) may be unique today and not after the next deploy
    if (top.indexOf(".") > 0 && matchesOne(doc, chain)) return chain;
    const parent = el.parentElement;
    if (!parent || parent === doc.documentElement) return chain;
    if (parent === doc.body) return `body > ${chain}`;
    const anchor = idSelector(parent);
    if (anchor && matchesOne(doc, anchor)) return `${anchor} > ${chain}`;
    el = parent;
  }
}

// ---------------------------------------------------------------------------------------------
// Element details

function squash(s: string | null): string {
  return (s || "").replace(/\s+/g, " ").trim();
}

function directText(el: Element): string {
  for (const node of Array.from(el.childNodes)) {
    if (node.nodeType === 3 && squash(node.nodeValue)) return squash(node.nodeValue);
  }
  return "";
}

/** The spec's tile label: the first direct text, else the first child element's text, else the first descendant's direct text. */
function labelOf(el: Element): string {
  const own = directText(el);
  if (own) return own;
  const child = el.firstElementChild;
  if (child && squash(child.textContent)) return squash(child.textContent);
  for (const d of Array.from(el.querySelectorAll("*"))) {
    const t = directText(d);
    if (t) return t;
  }
  return "";
}

export function describe(el: Element): SelectedElement {
  const r = el.getBoundingClientRect();
  return {
    type: "segmently:select",
    selector: selectorFor(el),
    tag: el.tagName.toLowerCase(),
    id: el.id,
    classes: Array.from(el.classList),
    text: squash(el.textContent).slice(0, TEXT_MAX),
    label: labelOf(el).slice(0, TEXT_MAX),
    html: el.outerHTML.slice(0, HTML_MAX),
    rect: { x: r.x, y: r.y, width: r.width, height: r.height },
  };
}

// ---------------------------------------------------------------------------------------------
// Previewing changes (a small stand-in for the changes engine: undone before the next preview)

type Undo = () => void;

function matching(doc: Document, selector: string): Element[] {
  try {
    return Array.from(doc.querySelectorAll(selector));
  } catch {
    return [];
  }
}

function depth(el: Element | undefined): number {
  let n = 0;
  for (let p = el ? el.parentElement : null; p; p = p.parentElement) n++;
  return n;
}

function replaceChildren(el: Element, nodes: Node[]): void {
  while (el.firstChild) el.removeChild(el.firstChild);
  for (const node of nodes) el.appendChild(node);
}

/**
 * Shows `changes` (and a variant's `css`) on the page and returns how to undo them and how many
 * elements each change matched. Read as src/core/changes.ts reads them (a `css` change with a selector
 * and no `{` is inline declarations, an empty `html` change is "not edited"), but every change is
 * undone before the next preview, parents' changes go before their children's, a removal only hides,
 * and `js` is not run in the editor.
 */
export function previewChanges(doc: Document, changes: Change[], css = ""): { undo: Undo; matched: number[] } {
  const undos: Undo[] = [];
  const matched: number[] = changes.map(() => 0);
  const inline = (change: Change): boolean => change.type === "css" && !!change.selector && change.css.indexOf("{") < 0;
  const selectorOf = (change: Change): string | null =>
    change.type === "hide" || change.type === "text" || change.type === "html" || inline(change)
      ? (change as { selector: string }).selector
      : null;
  const dom = changes
    .map((change, i) => {
      const selector = selectorOf(change);
      return { change, i, depth: selector ? depth(matching(doc, selector)[0]) : 0 };
    })
    .sort((a, b) => a.depth - b.depth);
  const sheets: string[] = css ? [css] : [];
  for (const { change, i } of dom) {
    if (change.type === "js" || (change.type === "html" && !change.html)) continue;
    if (change.type === "css" && !inline(change)) {
      sheets.push(change.css);
      matched[i] = change.selector ? matching(doc, change.selector).length : 0;
      continue;
    }
    const els = matching(doc, selectorOf(change)!); // after the parents' changes, which may have replaced these
    matched[i] = els.length;
    for (const el of els) {
      if (change.type === "hide" || change.type === "css") {
        const style = (el as HTMLElement).style;
        if (!style) continue;
        const before = el.getAttribute("style");
        if (change.type === "css") style.cssText += `;${change.css}`;
        else style.setProperty("display", "none", "important");
        undos.push(() => (before === null ? el.removeAttribute("style") : el.setAttribute("style", before)));
      } else if (change.type === "text" || change.type === "html") {
        const saved = Array.from(el.childNodes);
        if (change.type === "text") el.textContent = change.text;
        else el.innerHTML = change.html;
        undos.push(() => replaceChildren(el, saved));
      }
    }
  }
  if (sheets.length) {
    const style = doc.createElement("style");
    style.setAttribute("data-segmently-editor", "");
    style.textContent = sheets.join("\n");
    (doc.head || doc.documentElement).appendChild(style);
    undos.push(() => style.remove());
  }
  return { undo: () => undos.reverse().forEach((u) => u()), matched };
}

// ---------------------------------------------------------------------------------------------
// Selection mode

const BOX_STYLE =
  "all:initial!important;position:fixed!important;pointer-events:none!important;z-index:2147483647!important;" +
  "box-sizing:border-box!important;border-radius:2px!important;";
const HOVER_LOOK = "border:2px solid #2563eb!important;background:rgba(37,99,235,.12)!important;";
const SELECTED_LOOK = "border:2px dashed #f59e0b!important;background:rgba(245,158,11,.08)!important;";

/** an outline we own: no page event ever targets it */
function createBox(doc: Document, look: string): { el: HTMLElement; show(target: Element | null): void } {
  const el = doc.createElement("segmently-editor-box");
  const show = (target: Element | null): void => {
    if (!target || !target.isConnected) {
      el.setAttribute("style", `${BOX_STYLE}display:none!important;`);
      return;
    }
    const r = target.getBoundingClientRect();
    el.setAttribute(
      "style",
      `${BOX_STYLE}${look}display:block!important;left:${r.left}px!important;top:${r.top}px!important;` +
        `width:${r.width}px!important;height:${r.height}px!important;`,
    );
  };
  show(null);
  return { el, show };
}

// what a click on the page would set off: all of it stays with us while selecting
const KEPT_EVENTS = ["click", "dblclick", "auxclick", "mousedown", "mouseup", "pointerdown", "pointerup", "touchstart", "touchend"];

function asElement(target: EventTarget | null): Element | null {
  return target && (target as Node).nodeType === 1 ? (target as Element) : null;
}

function isOurs(el: Element): boolean {
  return el.tagName.toLowerCase().indexOf("segmently-") === 0;
}

interface EditorWindow extends Window {
  __segmentlyEditor?: EditorHandle;
}

/**
 * Starts selection mode when the page is inside a frame (the Visual Editor's iframe); on a top-level
 * page it does nothing and returns null. Once per window: a second call returns the first handle.
 */
export function startEditor(host: ModuleHost, win: Window): EditorHandle | null {
  const w = win as EditorWindow;
  if (w.__segmentlyEditor) return w.__segmentlyEditor;
  if (win.parent === win) return null; // never take over a visitor's page

  let origin: string;
  try {
    origin = new URL(host.base).origin;
  } catch (error) {
    host.report("the visual editor needs an absolute server address", error);
    return null;
  }
  const doc = win.document;
  const post = (message: Record<string, unknown>): void => {
    try {
      win.parent.postMessage(message, origin);
    } catch (error) {
      host.report("could not reach the visual editor", error);
    }
  };

  const hover = createBox(doc, HOVER_LOOK);
  const selected = createBox(doc, SELECTED_LOOK);
  let hovered: Element | null = null;
  let chosen: Element | null = null;
  let selecting = false;
  let undoPreview: Undo = () => {};

  const reposition = (): void => {
    hover.show(selecting ? hovered : null);
    selected.show(chosen);
  };

  const onOver = (event: Event): void => {
    const target = asElement(event.target);
    if (!target || isOurs(target)) return;
    hovered = target;
    hover.show(target);
  };
  const onLeave = (event: Event): void => {
    if (!(event as MouseEvent).relatedTarget) {
      hovered = null;
      hover.show(null);
    }
  };
  const keep = (event: Event): void => {
    event.preventDefault();
    event.stopPropagation();
    event.stopImmediatePropagation();
    const target = asElement(event.target);
    if (event.type !== "click" || !target || isOurs(target)) return;
    chosen = target;
    selected.show(target);
    post(describe(target) as unknown as Record<string, unknown>);
  };

  const setSelecting = (on: boolean): void => {
    if (on === selecting) return;
    selecting = on;
    if (on) {
      for (const type of KEPT_EVENTS) win.addEventListener(type, keep, true);
      doc.addEventListener("mouseover", onOver, true);
      doc.addEventListener("mouseout", onLeave, true);
    } else {
      for (const type of KEPT_EVENTS) win.removeEventListener(type, keep, true);
      doc.removeEventListener("mouseover", onOver, true);
      doc.removeEventListener("mouseout", onLeave, true);
    }
    if (!on) hovered = null;
    reposition();
  };

  const onMessage = (event: MessageEvent): void => {
    if (event.origin !== origin) return; // only the dashboard may drive the editor
    const data = event.data as { type?: unknown; changes?: unknown; css?: unknown; selector?: unknown } | null;
    if (!data || typeof data.type !== "string" || data.type.indexOf(MESSAGE_PREFIX) !== 0) return;
    switch (data.type) {
      case "segmently:apply": {
        undoPreview();
        const changes = Array.isArray(data.changes) ? (data.changes as Change[]) : [];
        const result = previewChanges(doc, changes, typeof data.css === "string" ? data.css : "");
        undoPreview = result.undo;
        reposition();
        post({ type: "segmently:applied", matched: result.matched });
        break;
      }
      case "segmently:highlight": {
        const found = typeof data.selector === "string" ? matching(doc, data.selector) : [];
        chosen = found[0] || null;
        if (chosen && typeof (chosen as HTMLElement).scrollIntoView === "function") {
          (chosen as HTMLElement).scrollIntoView({ block: "nearest" });
        }
        selected.show(chosen);
        post({ type: "segmently:matches", selector: data.selector, count: found.length });
        break;
      }
      case "segmently:start":
        setSelecting(true);
        break;
      case "segmently:stop":
        setSelecting(false);
        break;
    }
  };

  win.addEventListener("message", onMessage);
  win.addEventListener("scroll", reposition, true);
  win.addEventListener("resize", reposition);
  doc.documentElement.appendChild(hover.el);
  doc.documentElement.appendChild(selected.el);
  setSelecting(true);

  const handle: EditorHandle = {
    get selecting() {
      return selecting;
    },
    destroy: () => {
      setSelecting(false);
      undoPreview();
      win.removeEventListener("message", onMessage);
      win.removeEventListener("scroll", reposition, true);
      win.removeEventListener("resize", reposition);
      hover.el.remove();
      selected.el.remove();
      if (w.__segmentlyEditor === handle) delete w.__segmentlyEditor;
    },
  };
  w.__segmentlyEditor = handle;
  post({ type: "segmently:editor-ready", version: host.version, url: win.location.href });
  return handle;
}

// the built chunk starts itself with the host the core left on the window
if (typeof window !== "undefined" && window.__segmentlyHost) {
  try {
    startEditor(window.__segmentlyHost, window);
  } catch (error) {
    window.__segmentlyHost.report("the visual editor failed to start", error);
  }
}
