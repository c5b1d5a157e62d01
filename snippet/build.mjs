// Builds dist/: segmently.js (the minified core every page loads, an IIFE for a classic
// <script>) and, beside it, one file per lazily loaded chunk found in src/modules/
// (src/modules/<name>.ts or src/modules/<name>/index.ts → dist/<name>.js).
// SNIPPET_OUTDIR=<dir> builds there instead of dist/ (the Python tests build into their own folder).
// esbuild bundles and minifies; terser then minifies its output once more (about 5 % less gzip:
// its name mangling and repeated compress passes do better than esbuild's single pass).
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as esbuild from "esbuild";
import { minify } from "terser";

// Property mangling only for the internal naming scheme: a property whose name is `_` followed by
// a letter (`identity._visitorId`, `outbox._hold`) is renamed. Nothing outside the snippet's own
// objects has such a name: config and event fields are snake_case words, DOM and JavaScript names
// never start with a single `_`, the globals start with `__` (`__segmentlyHost`), and quoted
// names are never mangled. Objects that cross between bundles (the host, the Tracker, the config,
// events) have no such property, so each bundle renaming its own is consistent.
const MANGLED = /^_[A-Za-z]/;

const common = {
  bundle: true,
  minify: true,
  mangleProps: MANGLED,
  target: ["es2018"],
  platform: "browser",
  legalComments: "none",
  logLevel: "warning",
  write: false,
};

// safe options only: no `unsafe*`, no `pure_getters` (a getter such as document.cookie may throw)
const TERSER = { ecma: 2018, compress: { passes: 3 }, mangle: true, format: { comments: false } };

// Chromium's file-level compile hint (V8's "explicit compile hints", Chrome 136+): every function
// of the file is compiled with the script instead of on its first call. Nearly every function of
// the core runs during its start, so this spares the lazy compiles that held the page: about 7 ms
// of a first visit's start in the bench (docs/benchmarks.md). It has to be the file's first line
// (the server's /s/{key}.js keeps it first); other browsers read a comment. Not for the chunks,
// much of which only runs on later events.
const COMPILE_HINT = "//# allFunctionsCalledOnLoad\n";

async function build(options, hint = "") {
  const result = await esbuild.build(options);
  mkdirSync(outdir, { recursive: true });
  for (const file of result.outputFiles) {
    const min = await minify(file.text, TERSER);
    writeFileSync(file.path, hint + min.code);
  }
}

function chunkEntries() {
  const dir = "src/modules";
  if (!existsSync(dir)) return {};
  const entries = {};
  for (const item of readdirSync(dir, { withFileTypes: true })) {
    if (item.isFile() && item.name.endsWith(".ts") && !item.name.endsWith(".d.ts")) {
      entries[item.name.slice(0, -3)] = join(dir, item.name);
    } else if (item.isDirectory() && existsSync(join(dir, item.name, "index.ts"))) {
      entries[item.name] = join(dir, item.name, "index.ts");
    }
  }
  return entries;
}

const outdir = process.env.SNIPPET_OUTDIR || "dist";
rmSync(outdir, { recursive: true, force: true });
await build({ ...common, entryPoints: { segmently: "src/index.ts" }, outdir, format: "iife" }, COMPILE_HINT);
const chunks = chunkEntries();
if (Object.keys(chunks).length > 0) {
  // each chunk is self-contained: the core never includes it, and it never pulls the core in twice
  await build({ ...common, entryPoints: chunks, outdir, format: "iife" });
}
