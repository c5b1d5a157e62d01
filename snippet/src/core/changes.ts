/**
 * Applies one variant to the page in the spec's execution order: the visual editor's changes, then
 * the custom CSS, then the custom JavaScript; the editor's `js` changes run just before the custom
 * JavaScript (after all CSS is in, a difference only code that reads styles can notice). The server
 * serves each variant in that order (`segmently.domain.sdk.config.applied_variant`): `elements`,
 * `styles` (css changes that are style sheets, then the experiment's and the variant's custom CSS)
 * and `scripts` (`[label, code]`: js changes, then custom JS); this file applies them.
 *
 * - Element changes (hide, text, html, css with a selector) apply in list order; after an html
 *   change the selectors run again over its new HTML, so a change on a parent never wipes its
 *   child's: the page ends as if the ancestor's change came first. An html change with empty HTML
 *   is ignored (the editor's "not edited"); one never applies inside an element its selector
 *   matches, so its own HTML, or two html changes holding each other's elements, cannot loop.
 * - Elements that are not there yet (the snippet runs in `<head>`, an SPA renders later) get the
 *   change when they appear: one MutationObserver (children, not attributes) re-runs the
 *   selectors; each change applies at most once per element, so a page that later rewrites the
 *   element wins, while a re-rendered (new) element gets the change again. A text change is set
 *   again while the document is still parsed (the parser may append the element's original text
 *   after it), up to DOMContentLoaded.
 * - A `css` change with a selector sets inline declarations (`color: red; …`) on its elements;
 *   one holding a rule (`{`) is a style sheet like one without a selector (the server's split).
 * - JavaScript (`js` changes, then custom JS) runs once, after all the style sheets are in, each
 *   snippet on its own (`new Function(code)()`): a throw is reported with its label (`exp1: JS
 *   change 2 threw`) and the rest runs. It waits
 *   for DOMContentLoaded while the document is still loading, so `document.querySelector` finds
 *   the body's elements; style sheets and element changes do not wait.
 * - An invalid selector is reported once and its change skipped.
 *
 * The undo (an SPA left the experiment's URL) stops watching, drops JavaScript not yet run and
 * removes the injected style sheets; element changes already made stay until the page re-renders.
 */

import type { Change, VariantConfig } from "./types";

/** What `applyChanges` answers: the undo (see above). */
export type Applied = () => void;

type ElementChange = Exclude<Change, { type: "js" }> & { selector: string };

export function applyChanges(
  doc: Document,
  key: string,
  variant: Pick<VariantConfig, "elements" | "styles" | "scripts">,
  report: (message: string, error?: unknown) => void,
): Applied {
  const styles = variant.styles.map((text, i) => {
    const style = doc.createElement("style");
    style.id = `segmently-${key}-${i}`;
    style.textContent = text;
    return (doc.head || doc.documentElement).appendChild(style);
  });
  /** each change, the elements it is done with, and those a text change was set on while parsing */
  const targets: [ElementChange, WeakSet<Element>, WeakSet<Element>][] = [];
  for (const change of variant.elements as ElementChange[]) {
    try {
      // parses the selector without searching the page
      doc.createDocumentFragment().querySelector(change.selector);
      targets.push([change, new WeakSet(), new WeakSet()]);
    } catch (error) {
      report(`${key}: invalid selector "${change.selector}"`, error);
    }
  }

  const applyToElements = () => {
    let htmlChanged = false;
    for (const [change, done, parsed] of targets) {
      doc.querySelectorAll(change.selector).forEach((element) => {
        // an html change applies to the outermost match only, so its own HTML cannot feed it
        if (done.has(element) || (change.type == "html" && element.parentElement && element.parentElement.closest(change.selector))) return;
        if (change.type == "text" && doc.readyState == "loading") {
          // while the document is parsed, the parser may still append the element's original text
          // after the change: set again then (the text starts with ours), but never against
          // another writer (another experiment's change: each would undo the other forever); it
          // is set once more, and done, at DOMContentLoaded
          const text = element.textContent!;
          if (text != change.text && (!parsed.has(element) || text.startsWith(change.text))) element.textContent = change.text;
          parsed.add(element);
          return;
        }
        done.add(element);
        const style = (element as HTMLElement).style;
        if (change.type == "hide") {
          if (change.mode == "remove") element.remove();
          else style.setProperty("display", "none", "important");
        } else if (change.type == "text") element.textContent = change.text;
        else if (change.type == "css") style.cssText += ";" + change.css;
        else {
          element.innerHTML = change.html;
          htmlChanged = true;
        }
      });
    }
    // the new HTML may hold elements of other changes, e.g. a child's whose change it just wiped
    if (htmlChanged) applyToElements();
  };

  let observer: MutationObserver | undefined;
  if (targets.length) {
    applyToElements();
    observer = new MutationObserver(applyToElements);
    observer.observe(doc, { childList: true, subtree: true });
    if (doc.readyState == "loading") doc.addEventListener("DOMContentLoaded", applyToElements);
  }
  const runJs = () =>
    variant.scripts.forEach(([label, code]) => {
      try {
        new Function(code)();
      } catch (error) {
        report(`${key}: ${label} threw`, error);
      }
    });
  if (doc.readyState == "loading") doc.addEventListener("DOMContentLoaded", runJs);
  else runJs();

  return () => {
    if (observer) observer.disconnect();
    doc.removeEventListener("DOMContentLoaded", runJs);
    doc.removeEventListener("DOMContentLoaded", applyToElements);
    for (const style of styles) style.remove();
  };
}
