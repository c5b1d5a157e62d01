"""Snippet benchmark: the core bundle's size and, in Chromium, the time from script start to reveal on a
page with 10 live experiments, Segmently's snippet vs GrowthBook's script-tag SDK (``auto.min.js``).

**Sizes.** The snippet is built with ``npm run build`` in ``snippet/`` into a temp dir
(``SNIPPET_OUTDIR``, so ``snippet/dist`` is left alone; ``npm ci`` first when ``node_modules`` is
missing or older than the lock file, under the tests' lock ``snippet/.npm.lock``), and whatever that
build writes is measured: ``segmently.js`` and every chunk beside it, minified bytes, gzip
(level 9, as ``gzip -9``) and Brotli (quality 11, as the server sends them to browsers that take
it). Beside it, GrowthBook's script-tag bundle
``node_modules/@growthbook/growthbook/dist/bundles/auto.min.js`` of ``bench/snippet/`` (the exact
version pinned in ``bench/snippet/package.json`` and its lock file: ``npm ci`` there first). Also the
config a first visit downloads: ``/s/{key}.js`` (core + the 10 experiments inlined) vs
``auto.min.js`` + GrowthBook's payload with the same experiments.

**Reveal.** A real ``segmently serve`` on a fresh SQLite database (``bench/_harness.served``; the
snippet dir is the build above) with one enterprise organization and two sites of 10 live
experiments each, created through the API. Each experiment is an A/B test whose URL rule matches
the page (``contains /page``), 100 % traffic, the control at weight 0 and one variation at 100,
whose change is one visual-editor change: the ``html`` of ``#exp-{i} .title`` (so every visitor
sees all 10 changes and the run is deterministic; assignment is still hashed per visitor). The two
sites differ only in the experiments' activation delay: the wizard's default (100 ms, "segmently
(delay 100)") and 0 ("segmently (delay 0)", what GrowthBook does: it has no such delay).

GrowthBook gets the same 10 experiments as visual-editor ("auto") experiments in its SDK payload
format (``experiments[]``: ``weights`` [0, 1], ``coverage`` 1, ``hashVersion`` 2, a regex URL
target ``/page``, the variation's ``domMutations``: ``set html`` of the same selector to the same
value), which ``auto.min.js`` applies with its DOM mutator, under its anti-flicker
(``data-anti-flicker``: the ``gb-anti-flicker`` class on ``<html>``, removed when ``init()``
resolves); ``data-no-streaming``: no SSE connection, which the static host cannot serve and the
snippet has no counterpart of. A small file server in its own process
(``bench/snippet/fileserver.py``) serves the demo pages on ``http://shop.test:<port>`` and
GrowthBook's bundle and payload (``/api/features/<clientKey>``, a static JSON file) on
``http://gb.test:<port>``: both SDKs load cross-origin, from loopback.

The page: a ``<head>`` with the SDK's tag first, then 10 sections ``#exp-{i}`` with an ``h2.title``.
Scenarios, each run ``--runs`` times (plus one discarded warm-up) in a fresh browser context, the
two SDKs alternating (which goes first alternates too):

* cold: a first visit; the config is fetched (ours ``/segmently.js`` + ``GET /api/v1/sdk/config``;
  GrowthBook ``auto.min.js`` + ``GET /api/features/<key>``);
* warm: the second page view of the same context (the script from the HTTP cache, the config from
  ``localStorage``: ours' stored config, revalidated in the background; GrowthBook's
  ``gbFeaturesCache``, fresh for 60 s);
* inline: a first visit with the config inlined (ours ``/s/{key}.js``: config and core in one
  response; GrowthBook ``window.growthbook_config.payload`` in the page).

Measured by an init script (``page.add_init_script``, before any of the page's scripts), all in
``performance.now()`` ms: *script start*, the SDK's first execution, i.e. its synchronous read of
``document.currentScript`` (both bundles read it at the top of their entry; the getter is wrapped);
*loaded*, the script's ``responseEnd`` (resource timing), so exec − loaded is its parse/compile;
*hidden*/*curtain off*, the curtain appearing and going (ours ``style#segmently-curtain``,
GrowthBook the ``gb-anti-flicker`` class), seen by a MutationObserver on the document, i.e. at the
end of the task that removed it, the earliest a frame without it can be painted; *changes in*, the
moment all 10 titles show their variation's text (same observer); the first contentful paint. **Reveal**
= max(curtain off, changes in) − script start: the page visible with every change. Every run must
hide the page and apply all 10 changes, else the script stops with an error. Printed: median and
p90 per SDK and scenario, the ratios ours/GrowthBook, and the goals (core ≤ 6 KB min+gzip; reveal
faster than GrowthBook, ≤ 50 ms warm). It exits non-zero only on errors, never on a missed goal.

Run from the workspace root:  uv run python bench/snippet/run.py [--runs 20]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import gzip
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ for _harness

import brotli
import httpx
from _harness import Owner, enterprise_owner, free_port, live_experiment, served

ROOT = Path(__file__).resolve().parents[2]
SNIPPET = ROOT / "snippet"
HERE = Path(__file__).resolve().parent
GB_PACKAGE = HERE / "node_modules" / "@growthbook" / "growthbook"
GB_BUNDLE = GB_PACKAGE / "dist" / "bundles" / "auto.min.js"
GB_CLIENT_KEY = "sdk-bench"
EXPERIMENTS = 10
CORE_GOAL_KB = 6.0
WARM_GOAL_MS = 50.0
CHROMIUM = os.environ.get("SEGMENTLY_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [  # as tests/browser/conftest.py launches it
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--host-resolver-rules=MAP *.test 127.0.0.1",
]
SCENARIOS = ("cold", "warm", "inline")
SDKS = ("segmently", "segmently-0", "growthbook")
OURS = ("segmently", "segmently-0")
LABELS = {
    "segmently": "segmently (delay 100)",
    "segmently-0": "segmently (delay 0)",
    "growthbook": "growthbook",
}


def original(i: int) -> str:
    return f"Original headline {i}"


def changed(i: int) -> str:
    return f"Headline {i}: try it free"


# ------------------------------------------------------------------------------- sizes ---


def gz(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def br(data: bytes) -> int:
    """Brotli at quality 11, as the server sends the snippet and the config to browsers that take it."""
    return len(brotli.compress(data, mode=brotli.MODE_TEXT, quality=11))


def npm(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> None:
    full = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0", **(env or {})}
    r = subprocess.run(["npm", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full)
    if r.returncode != 0:
        raise RuntimeError(f"npm {' '.join(args)} in {cwd} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")


def build_snippet(source: Path, outdir: Path) -> None:
    """``npm run build`` of ``source`` into ``outdir`` (``npm ci`` first when stale), under its lock."""
    with (source / ".npm.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            marker = source / "node_modules" / ".package-lock.json"
            if not marker.exists() or marker.stat().st_mtime < (source / "package-lock.json").stat().st_mtime:
                print("npm ci in snippet/", file=sys.stderr)
                npm(["ci", "--no-audit", "--no-fund"], source)
            npm(["run", "build"], source, env={"SNIPPET_OUTDIR": str(outdir)}, timeout=300)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    if not (outdir / "segmently.js").is_file():
        raise RuntimeError(f"npm run build wrote no {outdir / 'segmently.js'}")


def install_growthbook() -> str:
    """``npm ci`` in bench/snippet/ when needed; GrowthBook's installed version."""
    marker = HERE / "node_modules" / ".package-lock.json"
    if not marker.exists() or marker.stat().st_mtime < (HERE / "package-lock.json").stat().st_mtime:
        print("npm ci in bench/snippet/", file=sys.stderr)
        npm(["ci", "--no-audit", "--no-fund"], HERE)
    if not GB_BUNDLE.is_file():
        raise RuntimeError(f"no {GB_BUNDLE}")
    return str(json.loads((GB_PACKAGE / "package.json").read_text())["version"])


# ---------------------------------------------------------------------- experiments ---


def segmently_experiment(i: int, delay_ms: int | None) -> dict[str, Any]:
    """The ``i``-th experiment; ``delay_ms`` None: the wizard's default activation delay (100 ms)."""
    return ({} if delay_ms is None else {"activation_delay_ms": delay_ms}) | {
        "name": f"Bench experiment {i}",
        "variants": [
            {"key": "control", "name": "Control", "weight": 0},
            {
                "key": "variant_1",
                "name": "Variant",
                "weight": 100,
                "changes": [{"type": "html", "selector": f"#exp-{i} .title", "html": changed(i)}],
            },
        ],
        "targeting": {"url_rules": [{"type": "contains", "value": "/page"}], "traffic_percentage": 100},
        "goals": [{"type": "custom_event", "name": "Purchase", "primary": True, "event_name": "purchase"}],
    }


def growthbook_payload() -> dict[str, Any]:
    """The same 10 experiments in GrowthBook's SDK payload format, as visual-editor experiments."""
    experiments = []
    for i in range(EXPERIMENTS):
        experiments.append(
            {
                "key": f"bench-experiment-{i}",
                "changeId": f"change-{i}",
                "name": f"Bench experiment {i}",
                "seed": f"bench-experiment-{i}",
                "hashAttribute": "id",
                "hashVersion": 2,
                "weights": [0, 1],
                "coverage": 1,
                "urlPatterns": [{"include": True, "type": "regex", "pattern": "/page"}],
                "meta": [{"key": "0", "name": "Control"}, {"key": "1", "name": "Variant"}],
                "variations": [
                    {},
                    {
                        "domMutations": [
                            {
                                "selector": f"#exp-{i} .title",
                                "action": "set",
                                "attribute": "html",
                                "value": changed(i),
                            }
                        ]
                    },
                ],
            }
        )
    return {"features": {}, "experiments": experiments, "dateUpdated": "2026-11-26T00:00:00Z"}


# --------------------------------------------------------------------------- pages ---


def page(tag: str) -> str:
    sections = "".join(
        f'<section class="exp" id="exp-{i}"><h2 class="title">{original(i)}</h2>'
        f"<p>Product {i}: a short description of the offer, as on a real landing page.</p>"
        f'<a class="cta" href="#buy-{i}">Buy now</a></section>'
        for i in range(EXPERIMENTS)
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Bench shop</title>"
        f"{tag}<style>body{{font:16px sans-serif;margin:0}}"
        ".exp{padding:12px;border-bottom:1px solid #ddd}</style>"
        f"</head><body><header><h1>Bench shop</h1></header>{sections}</body></html>"
    )


def write_site(root: Path, seg_base: str, keys: dict[str, str], gb_base: str) -> dict[tuple[str, str], str]:
    """The pages, bundle and payload the file server serves; (sdk, kind) -> page path."""
    (root / "api" / "features").mkdir(parents=True)
    payload = json.dumps(growthbook_payload())
    (root / "api" / "features" / GB_CLIENT_KEY).write_text(payload)
    (root / "auto.min.js").write_bytes(GB_BUNDLE.read_bytes())
    escaped = payload.replace("</", "<\\/")
    gb_attrs = (
        f'data-api-host="{gb_base}" data-client-key="{GB_CLIENT_KEY}" '
        'data-anti-flicker="true" data-no-streaming="true"'
    )
    pages = {}
    for sdk, api_key in keys.items():
        pages[(sdk, "tag")] = f'<script src="{seg_base}/segmently.js" data-api-key="{api_key}"></script>'
        pages[(sdk, "inline")] = f'<script src="{seg_base}/s/{api_key}.js"></script>'
    pages |= {
        ("growthbook", "tag"): f'<script src="{gb_base}/auto.min.js" {gb_attrs}></script>',
        ("growthbook", "inline"): (
            f"<script>window.growthbook_config={{payload:{escaped}}}</script>"
            f'<script src="{gb_base}/auto.min.js" {gb_attrs}></script>'
        ),
    }
    paths = {}
    for (sdk, kind), tag in pages.items():
        path = f"/page-{sdk}-{kind}.html"
        (root / path[1:]).write_text(page(tag))
        paths[(sdk, kind)] = path
    return paths


@contextlib.contextmanager
def file_server(root: Path, port: int) -> Iterator[None]:
    """bench/snippet/fileserver.py serving ``root`` on ``port``, until exit."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "fileserver.py"), str(root), str(port)],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        if proc.stdout is None or proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the file server did not start")
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -------------------------------------------------------------------------- browser ---

# Runs before any script of the page. All times are performance.now() ms.
INIT_SCRIPT = r"""
(() => {
  const b = (window.__bench = {
    exec: null, hidden: null, shownAt: null, changes: null, dcl: null, load: null, fcp: null,
  });
  const now = () => performance.now();
  const sdk = /\/segmently\.js|\/s\/seg_live_|\/auto\.min\.js/;
  const get = Object.getOwnPropertyDescriptor(Document.prototype, "currentScript").get;
  Object.defineProperty(Document.prototype, "currentScript", {
    configurable: true,
    get() {
      const s = get.call(this);
      if (b.exec === null && s && sdk.test(s.src || "")) b.exec = now();
      return s;
    },
  });
  const expected = EXPECTED;
  let wasHidden = false;
  const check = () => {
    const t = now();
    const html = document.documentElement;
    const hidden = !!document.getElementById("segmently-curtain") ||
      !!(html && html.classList.contains("gb-anti-flicker"));
    if (hidden && !wasHidden && b.hidden === null) b.hidden = t;
    if (!hidden && wasHidden) b.shownAt = t;
    wasHidden = hidden;
    if (b.changes === null && expected.every((t, i) => {
      const e = document.querySelector("#exp-" + i + " .title");
      return e !== null && e.textContent === t;
    })) b.changes = t;
  };
  // ours may draw and lift the curtain within one script run (a stored config, no delay): the
  // records still hold both, though the page never showed the curtain between two callbacks
  const curtain = (n) => n.nodeType === 1 && n.id === "segmently-curtain";
  const watch = (records) => {
    for (const r of records) {
      for (const n of r.addedNodes) {
        if (curtain(n) && b.hidden === null) { b.hidden = now(); wasHidden = true; }
      }
      for (const n of r.removedNodes) {
        if (curtain(n) && wasHidden) { b.shownAt = now(); wasHidden = false; }
      }
    }
    check();
  };
  new MutationObserver(watch).observe(document, {
    childList: true, subtree: true, attributes: true, attributeFilter: ["class"], characterData: true,
  });
  document.addEventListener("DOMContentLoaded", () => { b.dcl = now(); });
  window.addEventListener("load", () => { b.load = now(); });
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (e.name === "first-contentful-paint") b.fcp = e.startTime;
  }).observe({ type: "paint", buffered: true });
})();
"""

DONE = """() => { const b = window.__bench;
  return !!b && b.load !== null && b.changes !== null && b.shownAt !== null && b.fcp !== null; }"""

COLLECT = r"""
() => {
  const b = window.__bench;
  const rs = performance.getEntriesByType("resource");
  const script = rs.find((r) => /\/segmently\.js|\/s\/seg_live_|\/auto\.min\.js/.test(r.name));
  const config = rs.find((r) => /\/api\/v1\/sdk\/config|\/api\/features\//.test(r.name));
  return {
    ...b,
    loaded: script ? script.responseEnd : null,
    configStart: config ? config.startTime : null,
    configEnd: config ? config.responseEnd : null,
  };
}
"""


def visit(context: Any, url: str, errors: list[str]) -> dict[str, Any]:
    """One page view in ``context``; the init script's figures once the page is loaded and revealed."""
    page_ = context.new_page()
    page_.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page_.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page_.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    try:
        page_.goto(url, wait_until="load")
        try:
            page_.wait_for_function(DONE, timeout=10_000, polling=20)
        except Exception as exc:
            state = page_.evaluate(COLLECT)
            raise RuntimeError(f"{url}: the page was not revealed with all changes in 10 s: {state}") from exc
        result: dict[str, Any] = page_.evaluate(COLLECT)
    finally:
        page_.close()
    if result["exec"] is None or result["hidden"] is None:
        raise RuntimeError(f"{url}: the SDK did not start or never hid the page: {result}")
    return result


def run_once(
    browser: Any, shop: str, paths: dict[tuple[str, str], str], sdk: str, scenario: str
) -> tuple[dict[str, Any], list[str]]:
    """One measured page view of ``sdk`` in ``scenario`` in a fresh context: its figures, console errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(
        INIT_SCRIPT.replace("EXPECTED", json.dumps([changed(i) for i in range(EXPERIMENTS)]))
    )
    errors: list[str] = []
    try:
        kind = "inline" if scenario == "inline" else "tag"
        url = shop + paths[(sdk, kind)]
        if scenario == "warm":
            first = visit(context, url, [])  # the earlier visit: stores the config (and the script in cache)
            if first["configEnd"] is None:
                raise RuntimeError(f"{sdk}: the first visit fetched no config")
            time.sleep(0.2)
        result = visit(context, url, errors)
    finally:
        context.close()
    if scenario == "cold" and result["configEnd"] is None:
        raise RuntimeError(f"{sdk} cold: no config request seen")
    if scenario == "inline" and result["configEnd"] is not None and result["configStart"] < result["shownAt"]:
        raise RuntimeError(f"{sdk} inline: a config request before the reveal")
    return result, errors


def derived(r: dict[str, Any]) -> dict[str, float]:
    shown = max(r["shownAt"], r["changes"])
    return {
        "reveal": shown - r["exec"],  # script start -> visible with every change
        "from_loaded": shown - r["loaded"],  # incl. parse/compile
        "from_nav": shown,  # from navigation start
        "parse": r["exec"] - r["loaded"],
        "curtain_off": r["shownAt"] - r["exec"],
        "changes": r["changes"] - r["exec"],
        "fcp": (r["fcp"] - r["exec"]) if r["fcp"] is not None else float("nan"),
        "dcl": r["dcl"] - r["exec"],
        "config_ms": (r["configEnd"] - r["configStart"]) if r["configEnd"] is not None else float("nan"),
        "early": float(r["shownAt"] < r["changes"]),  # curtain gone before all changes were in
    }


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1] if len(values) > 1 else values[0]


# ----------------------------------------------------------------------------- main ---


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=20, help="measured page views per SDK and scenario (default 20)"
    )
    parser.add_argument(
        "--snippet",
        type=Path,
        default=SNIPPET,
        help="the snippet's source dir to build and measure (default snippet/)",
    )
    args = parser.parse_args()
    if not 1 <= args.runs <= 200:
        parser.error("1-200 runs")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        sys.exit(f"Chromium is not at {CHROMIUM} (apt-get install chromium, or SEGMENTLY_TEST_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    load_before = os.getloadavg()[0]
    started = time.monotonic()
    gb_version = install_growthbook()
    with tempfile.TemporaryDirectory(prefix="segmently-snippet-bench-") as tmp_name:
        tmp = Path(tmp_name)
        dist = tmp / "dist"
        print(f"npm run build in {args.snippet}", file=sys.stderr)
        build_snippet(args.snippet.resolve(), dist)
        sizes = {p.name: (len(b := p.read_bytes()), gz(b), br(b)) for p in sorted(dist.glob("*.js"))}
        gb_bytes = GB_BUNDLE.read_bytes()
        gb_size = (len(gb_bytes), gz(gb_bytes), br(gb_bytes))
        payload_bytes = json.dumps(growthbook_payload()).encode()

        public_limit = {"SEGMENTLY_RATE_LIMIT_PUBLIC": "100000000/minute", "SEGMENTLY_SNIPPET_DIR": str(dist)}
        with (
            served("sqlite", "", 1, public_limit) as server,
            httpx.Client(base_url=server.base, timeout=30) as client,
        ):
            print(f"creating two sites with {EXPERIMENTS} live experiments each", file=sys.stderr)
            owner = enterprise_owner(server, client)
            # the owner's site: the default activation delay; a second site: the same with delay 0
            second = client.post(
                "/api/v1/projects",
                json={"name": "Shop 0", "url": "https://shop0.example.com"},
                headers=owner.headers,
            )
            second.raise_for_status()
            keys: dict[str, str] = {}
            for sdk, site_id, delay in (
                ("segmently", owner.site_id, None),
                ("segmently-0", second.json()["id"], 0),
            ):
                on_site = Owner(token=owner.token, organization_id=owner.organization_id, site_id=site_id)
                for i in range(EXPERIMENTS):
                    live_experiment(client, on_site, segmently_experiment(i, delay))
                project = client.get(f"/api/v1/projects/{site_id}", headers=owner.headers)
                project.raise_for_status()
                keys[sdk] = project.json()["api_key"]
                config = client.get("/api/v1/sdk/config", headers={"X-API-Key": keys[sdk]})
                config.raise_for_status()
                served_config = config.json()
                delays = {e["delay"] for e in served_config["experiments"]}
                if len(served_config["experiments"]) != EXPERIMENTS or delays != {
                    100 if delay is None else delay
                }:
                    raise RuntimeError(f"unexpected config: {config.text[:2000]}")
            inline_js = client.get(f"/s/{keys['segmently']}.js").content
            core_js = client.get("/segmently.js").content
            if core_js != (dist / "segmently.js").read_bytes():
                raise RuntimeError("the server does not serve the build measured")

            site, fport = tmp / "site", free_port()
            paths = write_site(site, server.base, keys, f"http://gb.test:{fport}")
            samples: dict[tuple[str, str], list[dict[str, float]]] = {
                (s, c): [] for s in SDKS for c in SCENARIOS
            }
            errors: dict[str, list[str]] = {s: [] for s in SDKS}
            with file_server(site, fport), sync_playwright() as p:
                shop = f"http://shop.test:{fport}"
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    for round_ in range(args.runs + 1):  # round 0 is a warm-up, discarded
                        order = SDKS if round_ % 2 == 0 else SDKS[::-1]
                        print(
                            f"round {round_}/{args.runs}{' (warm-up)' if round_ == 0 else ''}",
                            file=sys.stderr,
                            flush=True,
                        )
                        for scenario in SCENARIOS:
                            for sdk in order:
                                result, errs = run_once(browser, shop, paths, sdk, scenario)
                                if round_ > 0:
                                    samples[(sdk, scenario)].append(derived(result))
                                    errors[sdk].extend(errs)
                finally:
                    browser.close()
    elapsed = time.monotonic() - started
    report(
        args,
        sizes,
        gb_version,
        gb_size,
        inline_js,
        core_js,
        config.content,
        payload_bytes,
        samples,
        errors,
        load_before,
        elapsed,
    )


def report(
    args: argparse.Namespace,
    sizes: dict[str, tuple[int, int, int]],
    gb_version: str,
    gb_size: tuple[int, int, int],
    inline_js: bytes,
    core_js: bytes,
    config: bytes,
    payload: bytes,
    samples: dict[tuple[str, str], list[dict[str, float]]],
    errors: dict[str, list[str]],
    load_before: float,
    elapsed: float,
) -> None:
    print(
        f"\n{args.runs} measured page views per SDK and scenario (+1 warm-up), fresh context each "
        f"({elapsed:.0f} s in all); 1-min load average before {load_before:.2f}, "
        f"after {os.getloadavg()[0]:.2f}\n"
    )
    print(f"{'size, bytes':44}{'min':>9}{'gzip -9':>9}{'brotli':>9}")
    for name, (raw, z, b) in sizes.items():
        label = "segmently.js (core)" if name == "segmently.js" else f"chunk {name}"
        print(f"{label:44}{raw:9,}{z:9,}{b:9,}")
    print(f"{f'GrowthBook {gb_version} auto.min.js':44}{gb_size[0]:9,}{gb_size[1]:9,}{gb_size[2]:9,}")
    core = sizes["segmently.js"]
    ratios = "".join(f"{c / g:9.2f}" for c, g in zip(core, gb_size, strict=True))
    print(f"{'ratio core / auto.min.js':44}{ratios}")
    print(f"{'first visit, inline: /s/{key}.js':44}{len(inline_js):9,}{gz(inline_js):9,}{br(inline_js):9,}")
    print(
        f"{'first visit, inline: auto.min.js + payload':44}"
        f"{gb_size[0] + len(payload):9,}{gb_size[1] + gz(payload):9,}{gb_size[2] + br(payload):9,}"
    )
    print(f"{'config: /api/v1/sdk/config body':44}{len(config):9,}{gz(config):9,}{br(config):9,}")
    print(f"{'config: GrowthBook payload':44}{len(payload):9,}{gz(payload):9,}{br(payload):9,}")
    kb = core[1] / 1024
    verdict = "met" if kb <= CORE_GOAL_KB else "missed"
    print(f"core goal ≤ {CORE_GOAL_KB:g} KB min+gzip: {kb:.2f} KB, {verdict}")
    print(f"core as browsers that take Brotli get it: {core[2] / 1024:.2f} KB\n")

    cols = [
        ("reveal", "reveal"),
        ("from_loaded", "+parse"),
        ("from_nav", "from nav"),
        ("parse", "parse"),
        ("curtain_off", "curtain"),
        ("changes", "changes"),
        ("dcl", "DCL"),
        ("fcp", "FCP"),
        ("config_ms", "config"),
    ]
    print(
        "ms from script start (medians; reveal also p90). reveal = visible with all 10 changes; +parse = from"
    )
    print(
        "the script's responseEnd; from nav = from navigation start; parse = responseEnd -> first execution;"
    )
    print("curtain = curtain off; changes = all 10 in; config = the config request's duration")
    header = f"{'':30}{'reveal':>8}{'p90':>8}" + "".join(f"{label:>9}" for key, label in cols[1:])
    print(header)
    med: dict[tuple[str, str], dict[str, float]] = {}
    for scenario in SCENARIOS:
        for sdk in SDKS:
            rows = samples[(sdk, scenario)]
            m = {k: statistics.median(r[k] for r in rows) for k, _ in cols}
            m["p90"] = p90([r["reveal"] for r in rows])
            m["early"] = sum(r["early"] for r in rows)
            med[(sdk, scenario)] = m
            line = f"{scenario + ' ' + LABELS[sdk]:30}{m['reveal']:8.1f}{m['p90']:8.1f}"
            line += "".join(f"{m[k]:9.1f}" for k, _ in cols[1:])
            print(line)
    print()
    for sdk in OURS:
        for scenario in SCENARIOS:
            a, b = med[(sdk, scenario)], med[("growthbook", scenario)]
            print(
                f"ratio {LABELS[sdk]} / growthbook, {scenario:6}: "
                f"reveal median {a['reveal'] / b['reveal']:.2f}, "
                f"p90 {a['p90'] / b['p90']:.2f}, from nav {a['from_nav'] / b['from_nav']:.2f}"
            )
    print()
    for sdk in OURS:
        for scenario in SCENARIOS:
            a, b = med[(sdk, scenario)], med[("growthbook", scenario)]
            faster = "met" if a["reveal"] < b["reveal"] else "missed"
            line = f"goal {LABELS[sdk]}, {scenario}: faster than GrowthBook (median) {faster}"
            if scenario in ("warm", "inline"):
                verdict = "met" if a["reveal"] <= WARM_GOAL_MS else "missed"
                line += f"; ≤ {WARM_GOAL_MS:g} ms: {a['reveal']:.1f} ms, {verdict}"
                line += f" (p90 {a['p90']:.1f} ms)"
            print(line)
    for sdk in SDKS:
        early = {s: int(med[(sdk, s)]["early"]) for s in SCENARIOS}
        print(f"{LABELS[sdk]}: curtain gone before all 10 changes were in (runs): {early}")
    for sdk, errs in errors.items():
        if errs:
            print(f"{sdk}: {len(errs)} console errors, first: {errs[0][:300]}")


if __name__ == "__main__":
    main()
