/**
 * Anti-flicker: the page stays hidden while the variant's changes apply, so a visitor never sees
 * the original first.
 *
 * Hidden with `opacity:0` on `<html>` rather than `visibility:hidden`: a descendant cannot undo
 * opacity (a site's own `visibility:visible` rule would show through a hidden page), and the
 * layout, focus and autofocus stay as they are. The curtain reveals itself after `timeoutMs`
 * (the spec's failsafe, 5 s by default) even when nobody calls `reveal()`.
 */

/** Draws the curtain; answers its `reveal`, which shows the page (once) and answers the ms it stayed
 * hidden, the same on every call. */
export function drawCurtain(doc: Document, timeoutMs: number, now: () => number = () => performance.now()): () => number {
  const start = now();
  const style = doc.createElement("style");
  style.id = "segmently-curtain";
  style.textContent = "html{opacity:0!important}";
  // the snippet may run before <head> exists
  (doc.head || doc.documentElement).appendChild(style);
  let hiddenMs: number | undefined;
  const reveal = () => {
    if (hiddenMs == undefined) {
      clearTimeout(failsafe);
      style.remove();
      hiddenMs = Math.round(now() - start);
    }
    return hiddenMs;
  };
  const failsafe = setTimeout(reveal, timeoutMs);
  return reveal;
}
