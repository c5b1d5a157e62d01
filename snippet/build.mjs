// Builds dist/: segmently.js (the minified core every page loads, an IIFE for a classic
// <script>) and, beside it, one file per lazily loaded chunk found in src/modules/
// (src/modules/<name>.ts or src/modules/<name>/index.ts → dist/<name>.js).
// SNIPPET_OUTDIR=<dir> builds there instead of dist/ (the Python tests build into their own folder).
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import * as esbuild from "esbuild";

const common = {
  bundle: true,
  minify: true,
  target: ["es2018"],
  platform: "browser",
  legalComments: "none",
  logLevel: "warning",
};

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
await esbuild.build({ ...common, entryPoints: { segmently: "src/index.ts" }, outdir, format: "iife" });
const chunks = chunkEntries();
if (Object.keys(chunks).length > 0) {
  // each chunk is self-contained: the core never includes it, and it never pulls the core in twice
  await esbuild.build({ ...common, entryPoints: chunks, outdir, format: "iife" });
}
