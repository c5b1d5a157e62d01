/**
 * The `crossdomain` chunk (`dist/crossdomain.js`): a page whose address carries `_sgmt_vid` (a link
 * from another host of the site's cross-domain list) loads it before identity is read, under the
 * curtain (README "Runtime", step 2). It registers `(url) => [id to adopt or null, URL without the
 * parameter or null]` (`adoption` of src/core/identity.ts, with this page's host and the host's
 * cross-domain list), so every other page view carries none of that parsing.
 */

import type { ModuleHost } from "../core/host";
import { adoption } from "../core/identity";

/** What the chunk registers as `"crossdomain"`. */
export type Adopt = (url: string) => [id: string | null, clean: string | null];

/** Registers the adoption with the core. */
export function startCrossDomain(host: ModuleHost, win: Window): Adopt {
  const adopt: Adopt = (url) => adoption(url, win.location.hostname, host.crossDomain);
  host.register("crossdomain", adopt);
  return adopt;
}

if (typeof window !== "undefined" && window.__segmentlyHost) startCrossDomain(window.__segmentlyHost, window);
