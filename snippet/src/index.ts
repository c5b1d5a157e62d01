/**
 * The core bundle's entry (`dist/segmently.js`): starts the snippet for the `<script>` that loaded
 * it and defines `window.Segmently` (src/runtime.ts; README "Runtime").
 *
 * `document.currentScript` is read now, synchronously: it is null once this script has run.
 */

import { type SegmentlyApi, boot } from "./runtime";

declare global {
  interface Window {
    Segmently?: SegmentlyApi;
  }
}

if (typeof window !== "undefined") boot(window, document.currentScript);
