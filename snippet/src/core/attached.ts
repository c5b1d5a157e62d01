/**
 * Keeps a chunk's element (the free tier's badge, the test panel) in the page's current `<body>`:
 * a page that swaps `<body>` (Turbo Drive, pjax) or clears it (hydration) gets it back in its new
 * one, and so does one that moves it or, where `intact()` says so, alters it (`restore()` first).
 * At most `MAX_REPAIRS` repairs within `REPAIR_WINDOW_MS`: a page that keeps removing it wins, the
 * watching stops and `gaveUp()` runs once.
 *
 * Bundled into the chunks that use it, never into the core.
 */

export const MAX_REPAIRS = 10;
export const REPAIR_WINDOW_MS = 10_000;

export interface Attached {
  /** Appends the element to `<body>` (there must be one) and starts watching. */
  attach(): void;
  /** Stops watching (the element stays where it is). */
  stop(): void;
}

export function keepInBody(
  doc: Document,
  element: HTMLElement,
  gaveUp: () => void,
  intact: () => boolean = () => true,
  restore: () => void = () => {},
): Attached {
  const repairs: number[] = [];
  let observedBody: HTMLElement | null = null;
  let stopped = false;

  const observer = new MutationObserver(() => check());
  const stop = (): void => {
    stopped = true;
    observer.disconnect();
  };
  const watchBody = (): void => {
    const body = doc.body;
    if (body && body !== observedBody) {
      observedBody = body;
      observer.observe(body, { childList: true });
    }
  };
  const check = (): void => {
    if (stopped) return;
    watchBody(); // a swapped <body> is watched from now on
    if (!doc.body || (element.parentNode === doc.body && intact())) return;
    const now = Date.now();
    while (repairs.length && now - repairs[0]! > REPAIR_WINDOW_MS) repairs.shift();
    if (repairs.length >= MAX_REPAIRS) {
      stop();
      gaveUp();
      return;
    }
    repairs.push(now);
    restore();
    doc.body.appendChild(element);
  };

  return {
    attach() {
      doc.body.appendChild(element);
      watchBody();
      observer.observe(doc.documentElement, { childList: true });
      observer.observe(element, { attributes: true });
    },
    stop,
  };
}
