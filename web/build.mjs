// Copies the dashboard's third-party front-end files (htmx, uPlot for the results charts) into the
// kernel's static folder.
// Output: core/src/segmently/dashboard/static/dist/ (gitignored), or DASHBOARD_ASSETS_OUTDIR.
// Each file is written to a temporary name and renamed, so a server reading the folder while
// another build runs never sees half a file.
import { copyFileSync, mkdirSync, renameSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const outdir = resolve(
  process.env.DASHBOARD_ASSETS_OUTDIR ?? join(here, "..", "core", "src", "segmently", "dashboard", "static", "dist"),
);
const files = [
  ["node_modules/htmx.org/dist/htmx.min.js", "htmx.min.js"],
  ["node_modules/uplot/dist/uPlot.iife.min.js", "uPlot.iife.min.js"],
  ["node_modules/uplot/dist/uPlot.min.css", "uPlot.min.css"],
];

mkdirSync(outdir, { recursive: true });
for (const [from, to] of files) {
  const target = join(outdir, to);
  const temporary = `${target}.${process.pid}.tmp`;
  copyFileSync(join(here, from), temporary);
  renameSync(temporary, target);
  console.log(`${to}: ${statSync(target).size} bytes`);
}
