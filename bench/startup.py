"""Start-up benchmark: import and start-up time of Segmently, all plugins enabled vs all disabled.

Every sample runs in a fresh subprocess of ``sys.executable`` (the workspace venv):

* interpreter: wall time of a bare ``python -c pass`` (for reference);
* import: wall time of ``import segmently.app`` inside the child, i.e. the child's time minus its
  interpreter start;
* start-up: ``create_app(Settings.from_env())`` plus the ASGI lifespan startup until it reports
  ``lifespan.startup.complete`` (shutdown is not timed), against a SQLite data dir that the script
  creates in a temp dir and migrates once with ``segmently migrate``.

Import and start-up run with every installed plugin enabled and with all of them disabled through
``SEGMENTLY_DISABLED_PLUGINS``; the two configurations alternate, one warm-up run each is discarded,
and the script prints median and p90 of each and the ratio all-plugins / no-plugins.

Run from the workspace root:  uv run python bench/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = """
import time
t0 = time.perf_counter()
import segmently.app
t1 = time.perf_counter()
import asyncio, json
from segmently.settings import Settings

async def start(app):
    sent, received = asyncio.Queue(), asyncio.Queue()
    sent.put_nowait({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, sent.get, received.put))
    message = await received.get()
    started = time.perf_counter()
    assert message["type"] == "lifespan.startup.complete", message
    sent.put_nowait({"type": "lifespan.shutdown"})
    await received.get()
    await task
    return started

t2 = time.perf_counter()
app = segmently.app.create_app(Settings.from_env())
t3 = asyncio.run(start(app))
print(json.dumps({"import": t1 - t0, "startup": t3 - t2, "plugins": len(app.state.kernel.plugins.enabled)}))
"""


def run_child(env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[-1])


def bare_start(env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
    return time.perf_counter() - t0


def p90(xs: list[float]) -> float:
    return sorted(xs)[math.ceil(0.9 * len(xs)) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="samples per measurement (default 15)")
    runs = parser.parse_args().runs
    plugins = sorted({ep.name for ep in importlib.metadata.entry_points(group="segmently.plugins")})
    with tempfile.TemporaryDirectory(prefix="segmently-bench-") as data_dir:
        base = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTLY_")}
        base |= {"SEGMENTLY_DATA_DIR": data_dir, "SEGMENTLY_SECRET_KEY": "bench-" + "x" * 40}
        configs = {
            "all": base | {"SEGMENTLY_DISABLED_PLUGINS": ""},
            "none": base | {"SEGMENTLY_DISABLED_PLUGINS": ",".join(plugins)},
        }
        migrate = [sys.executable, "-c", "from segmently.cli import main; main()", "migrate"]
        subprocess.run(migrate, env=configs["all"], check=True, capture_output=True)
        for env in configs.values():  # warm-up: byte-code compilation, page cache
            run_child(env)
        bare: list[float] = []
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in configs}
        for i in range(runs):
            print(f"\rrun {i + 1}/{runs}", end="", file=sys.stderr, flush=True)
            bare.append(bare_start(base))
            for name, env in configs.items():
                samples[name].append(run_child(env))
        print(file=sys.stderr)
    assert {s["plugins"] for s in samples["all"]} == {len(plugins)}
    assert {s["plugins"] for s in samples["none"]} == {0}

    print(f"{runs} runs each; {len(plugins)} plugins ({', '.join(plugins)}); times in ms\n")
    print(f"{'':24}{'all plugins':>20}{'no plugins':>20}{'ratio all/none':>16}")
    print(f"{'':24}{'median':>10}{'p90':>10}{'median':>10}{'p90':>10}{'(median)':>16}")
    print(f"{'interpreter start':24}{statistics.median(bare) * 1e3:10.1f}{p90(bare) * 1e3:10.1f}")
    for key, label in (("import", "import segmently.app"), ("startup", "start-up")):
        row = {name: [s[key] * 1e3 for s in samples[name]] for name in configs}
        cells = "".join(f"{statistics.median(row[n]):10.1f}{p90(row[n]):10.1f}" for n in configs)
        ratio = statistics.median(row["all"]) / statistics.median(row["none"])
        print(f"{label:24}{cells}{ratio:16.2f}")


if __name__ == "__main__":
    main()
