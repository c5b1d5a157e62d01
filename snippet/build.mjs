// Builds dist/: segmently.js (the minified core every page loads, an IIFE for a classic
// <script>) and, beside it, one file per lazily loaded chunk found in src/modules/
// (src/modules/<name>.ts or src/modules/<name>/index.ts → dist/<name>.js).
// SNIPPET_OUTDIR=<dir> builds there instead of dist/ (the Python tests build into their own folder).
// esbuild bundles and minifies; UglifyJS then minifies its output once more (its name mangling and
// repeated compress passes do better than esbuild's single pass: 7,313 → 6,945 bytes gzip at first
// with terser, then 6,721 → 6,551 with UglifyJS instead, whose options below gzip best).
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as esbuild from "esbuild";
import UglifyJS from "uglify-js";

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

// Safe options only: no `unsafe*`, and `pure_getters` off (its default, "strict", may drop a property
// read whose value is unused, and a getter such as document.cookie may throw). Three passes; no
// inlining of single-use functions into their callers and `let`/`const` kept as written, which the
// minified text shows as more characters and gzip as fewer bytes (−151 on the core).
const UGLIFY = {
  compress: { passes: 3, inline: false, varify: false, hoist_funs: true, pure_getters: false },
  mangle: true,
};

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
    const min = UglifyJS.minify(file.text, UGLIFY);
    if (min.error) throw min.error;
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
