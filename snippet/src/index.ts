/**
 * The core bundle's entry (`dist/segmently.js`): defines `window.Segmently`.
 *
 * This build holds the pure logic only (src/core: hashing, bucket ranges, targeting, evaluation;
 * ids, identity cookies, the event queue and the config cache behind injected interfaces, not yet
 * imported here). TODO(issue 7): the browser wiring of those, assignment and stickiness, changes
 * under anti-flicker, goals, then the JavaScript API on top of them. Until
 * then every API method only warns, once, that it is not implemented: none pretends to work.
 */

export const VERSION = "0.0.0-dev";

const API_METHODS = [
  "track",
  "trackConversion",
  "getVariant",
  "getVisitorId",
  "setAttributes",
  "getAllAssignments",
  "reset",
  "isEnabled",
  "getAllFlags",
] as const;

type ApiMethod = (typeof API_METHODS)[number];

export type SegmentlyApi = { readonly version: string } & { readonly [M in ApiMethod]: (...args: unknown[]) => undefined };

function notImplemented(name: ApiMethod): (...args: unknown[]) => undefined {
  let warned = false;
  return () => {
    if (!warned) {
      warned = true;
      console.warn(`Segmently.${name}() is not implemented in this build`);
    }
    return undefined;
  };
}

function createApi(): SegmentlyApi {
  const api: Record<string, unknown> = { version: VERSION };
  for (const name of API_METHODS) api[name] = notImplemented(name);
  return Object.freeze(api) as SegmentlyApi;
}

declare global {
  interface Window {
    Segmently?: SegmentlyApi;
  }
}

// a page that includes the snippet twice keeps the first instance
if (typeof window !== "undefined" && window.Segmently === undefined) {
  window.Segmently = createApi();
}
