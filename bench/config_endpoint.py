"""Config endpoint benchmark: ``GET /api/v1/sdk/config`` with a warm cache (200 and 304) vs ``GET /health``.

The script starts a real server (``segmently serve``, 1 worker unless ``--workers N``, the workspace
venv's Python) on a free loopback port against a fresh database that it creates and migrates with
``segmently migrate``: a SQLite data dir in a temp dir (default) or, with ``--backend postgresql``, a
throwaway database created on the PostgreSQL server of ``--pg-url`` and dropped at the end. The
public rate limit is lifted (``SEGMENTLY_RATE_LIMIT_PUBLIC``) so that it never answers 429. Through
the API it signs up one user, moves the organization to the enterprise plan (``segmently orgs
set-plan``), creates a site, 10 experiments (2–3 variants with text, HTML, CSS and hide changes, URL
rules, device or country targeting on some, goals) that it starts, and 20 active flags, then drives
the server over loopback with a load generator holding ``--connections`` keep-alive connections:

* ``wrk`` (one thread) if it is on the PATH, with a Lua script that checks every response's status
  and body length;
* otherwise an asyncio ``httpx`` client with the same number of concurrent connections (slower than
  wrk: on a small machine the Python client competes with the server for CPU, so its figures are
  lower and not comparable with wrk's; the ratios still are).

Three routes, on the same server:

* ``GET /health``: the baseline (one ``SELECT 1`` on a pooled connection);
* config 200: ``GET /api/v1/sdk/config`` with ``X-API-Key``, always the same key and no
  ``If-None-Match``, so every request is served the full body from the warm in-memory cache (one
  query for the site, its organization and its config version, then the cached bytes);
* config 304: the same with ``If-None-Match: <the ETag>``: the same lookup, an empty body.

Each measurement is ``--warmup`` seconds (discarded; it also fills each worker's cache) then
``--duration`` seconds; the three routes alternate for ``--rounds`` rounds, and the script prints the
median over rounds of requests/s, p50 and p99 latency, and the ratios config / health. Every response
must be exactly 200 with the whole body (health, config 200) or 304 with none (config 304); any other
status, body or a socket error aborts the run. The server is stopped (SIGTERM, then SIGKILL after
15 s) and the temp dir or the PostgreSQL database removed at the end, also on error, Ctrl-C or
SIGTERM.

Run from the workspace root:  uv run python bench/config_endpoint.py [--backend postgresql] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

CLI = [sys.executable, "-c", "from segmently.cli import main; main()"]
HOST = "127.0.0.1"
PASSWORD = "bench-password-" + "x" * 16  # a throwaway account on a throwaway database
EXPERIMENTS = 10
FLAGS = 20

# wrk: one thread; args = expected status, expected body length. The worker thread counts responses
# that are not exactly that; done() collects the counts from the thread.
WRK_SCRIPT = """
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  expected_status = tonumber(args[1])
  expected_length = tonumber(args[2])
  unexpected = 0
  first_bad = ""
end

function response(status, headers, body)
  local length = body and #body or 0
  if status ~= expected_status or length ~= expected_length then
    if unexpected == 0 then
      first_bad = string.format("status %d, %d bytes", status, length)
    end
    unexpected = unexpected + 1
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  local bad, first = 0, ""
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("unexpected")
    if first == "" then first = thread:get("first_bad") end
  end
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "socket_errors": %d, "status_errors": %d, '
    .. '"unexpected": %d, "first_bad": "%s", "p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    bad, first, latency:percentile(50), latency:percentile(99)))
end
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def postgres_database(base_url: str) -> Iterator[str]:
    """A fresh, empty database on the server of ``base_url``; dropped on exit."""
    import psycopg
    from psycopg import sql

    name = f"segmently_bench_{secrets.token_hex(4)}"
    admin = base_url.replace("postgresql+psycopg://", "postgresql://", 1).rstrip("/") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{base_url.rstrip('/')}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextlib.contextmanager
def running_server(
    env: dict[str, str], port: int, workers: int, log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``segmently serve`` with ``workers`` workers, until it answers ``/health``; stopped on exit."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*CLI, "serve", "--host", HOST, "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with code {proc.returncode}:\n{log_path.read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://{HOST}:{port}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready after 60 s:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def experiment(i: int, rng: random.Random) -> dict[str, Any]:
    """The wizard's configuration of the ``i``-th experiment: varied, as on a real site."""
    k = rng.choice([2, 2, 3])
    weights = {2: [50, 50], 3: [34, 33, 33]}[k]
    variants: list[dict[str, Any]] = [{"key": "control", "name": "Control", "weight": weights[0]}]
    for j in range(1, k):
        variants.append(
            {
                "key": f"variant_{j}",
                "name": f"Variant {j}",
                "weight": weights[j],
                "changes": [
                    {"type": "text", "selector": f"#hero-{i} h1", "text": f"Headline {i}.{j}: try it free"},
                    {"type": "html", "selector": ".cta", "html": f"<a class='btn btn-{j}'>Start now</a>"},
                    {"type": "css", "css": f".btn-{j}{{background:#0a7;padding:12px 24px}}"},
                    {"type": "hide", "selector": ".promo-banner"},
                ][: rng.randint(1, 4)],
            }
        )
    paths = ["/", "/pricing", "/product/", "/blog/", "/checkout"]
    targeting: dict[str, Any] = {
        "url_rules": [
            {"type": rng.choice(["contains", "starts_with"]), "value": p}
            for p in rng.sample(paths, rng.randint(1, 2))
        ],
        "traffic_percentage": rng.choice([25, 50, 100]),
    }
    if rng.random() < 0.5:
        targeting["devices"] = rng.sample(["desktop", "tablet", "mobile"], 2)
    if rng.random() < 0.3:
        targeting["countries"] = rng.sample(["US", "GB", "DE", "FR", "CA"], 2)
    goals = [{"type": "custom_event", "name": "Purchase", "primary": True, "event_name": "purchase"}]
    if rng.random() < 0.5:
        goals.append({"type": "click", "name": "CTA click", "selector": ".cta a"})
    return {"name": f"Bench experiment {i}", "variants": variants, "targeting": targeting, "goals": goals}


def populate(base: str, env: dict[str, str]) -> tuple[str, int]:
    """An enterprise organization with one site, its live experiments and flags: (API key, config size)."""
    rng = random.Random(20261125)
    with httpx.Client(base_url=base, timeout=30) as client:
        signup = client.post(
            "/api/v1/auth/signup",
            json={
                "email": "bench@example.com",
                "password": PASSWORD,
                "name": "Bench",
                "organization": "Bench",
            },
        )
        signup.raise_for_status()
        body = signup.json()
        subprocess.run(
            [*CLI, "orgs", "set-plan", body["organization"]["id"], "enterprise"],
            env=env,
            check=True,
            capture_output=True,
        )
        client.headers["Authorization"] = f"Bearer {body['token']}"
        site = client.post("/api/v1/projects", json={"name": "Shop", "url": "https://shop.example.com"})
        site.raise_for_status()
        site_id, api_key = site.json()["id"], site.json()["api_key"]
        for i in range(EXPERIMENTS):
            made = client.post(f"/api/v1/projects/{site_id}/experiments", json=experiment(i, rng))
            if made.status_code != 201:
                raise RuntimeError(f"experiment {i}: {made.status_code} {made.text}")
            started = client.post(f"/api/v1/experiments/{made.json()['id']}/start")
            if started.status_code != 200:
                raise RuntimeError(f"start experiment {i}: {started.status_code} {started.text}")
        for i in range(FLAGS):
            flag = {
                "key": f"flag-{i}",
                "name": f"Flag {i}",
                "status": "active",
                "rollout_percentage": rng.choice([0, 5, 10, 25, 50, 90, 100]),
            }
            made = client.post(f"/api/v1/projects/{site_id}/flags", json=flag)
            if made.status_code != 201:
                raise RuntimeError(f"flag {i}: {made.status_code} {made.text}")
        del client.headers["Authorization"]
        config = client.get("/api/v1/sdk/config", headers={"X-API-Key": api_key})
        config.raise_for_status()
        served = config.json()
        if (len(served["experiments"]), len(served["flags"]), served["plan"]) != (
            EXPERIMENTS,
            FLAGS,
            "enterprise",
        ):
            raise RuntimeError(f"unexpected config: {served}")
        if client.get("/api/v1/sdk/config").status_code != 401:
            raise RuntimeError("the config endpoint answered without a key")
    return api_key, len(config.content)


def run_wrk(
    url: str,
    headers: dict[str, str],
    expect: tuple[int, int],
    seconds: float,
    connections: int,
    script: Path,
) -> dict[str, Any]:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"]
    args += ["-s", str(script)]
    for key, value in headers.items():
        args += ["-H", f"{key}: {value}"]
    out = subprocess.run(
        [*args, url, "--", str(expect[0]), str(expect[1])],
        check=True,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    raw = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("{")))
    return {
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50": raw["p50_us"] / 1e3,
        "p99": raw["p99_us"] / 1e3,
        "requests": raw["requests"],
        # a 4xx/5xx is also one of wrk's status errors: the Lua check already counts it
        "errors": raw["socket_errors"] + max(raw["status_errors"], raw["unexpected"]),
        "first_bad": raw["first_bad"],
    }


async def _httpx_load(
    url: str, headers: dict[str, str], expect: tuple[int, int], seconds: float, connections: int
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    latencies: list[float] = []
    errors = 0
    first_bad = ""

    async def worker(client: httpx.AsyncClient, until: float) -> None:
        nonlocal errors, first_bad
        while time.perf_counter() < until:
            t0 = time.perf_counter()
            try:
                response = await client.get(url)
                got = f"status {response.status_code}, {len(response.content)} bytes"
                ok = (response.status_code, len(response.content)) == expect
            except httpx.TransportError as e:
                got, ok = repr(e), False
            latencies.append(time.perf_counter() - t0)
            if not ok:
                errors += 1
                first_bad = first_bad or got

    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=10) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client, started + seconds) for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[max(0, math.ceil(q * len(latencies)) - 1)] * 1e3

    return {
        "rps": len(latencies) / elapsed,
        "p50": pct(0.5),
        "p99": pct(0.99),
        "requests": len(latencies),
        "errors": errors,
        "first_bad": first_bad,
    }


def measure(
    tool: str,
    url: str,
    headers: dict[str, str],
    expect: tuple[int, int],
    args: argparse.Namespace,
    script: Path,
) -> dict[str, Any]:
    """Warm up, then measure one route for ``args.duration`` seconds; every response must be ``expect``."""
    for seconds in (args.warmup, args.duration):
        if tool == "wrk":
            result = run_wrk(url, headers, expect, seconds, args.connections, script)
        else:
            result = asyncio.run(_httpx_load(url, headers, expect, seconds, args.connections))
        if result["errors"]:
            raise RuntimeError(
                f"{url} {headers}: {result['errors']:.0f} of {result['requests']:.0f} responses were not "
                f"status {expect[0]} with {expect[1]} bytes (first: {result['first_bad'] or 'socket error'})"
            )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backend", choices=["sqlite", "postgresql"], default="sqlite", help="default sqlite"
    )
    parser.add_argument(
        "--pg-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432",
        help="PostgreSQL server (no database name) for --backend postgresql",
    )
    parser.add_argument("--workers", type=int, default=1, help="server worker processes (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per route (default 3)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per round (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds discarded before each (default 1)")
    parser.add_argument("--connections", type=int, default=10, help="keep-alive connections (default 10)")
    parser.add_argument(
        "--client",
        choices=["auto", "wrk", "httpx"],
        default="auto",
        help="load generator: wrk if installed (auto), or the asyncio httpx client",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))  # clean up as on Ctrl-C
    if not (
        1 <= args.workers <= 16
        and 1 <= args.rounds <= 20
        and 1 <= args.duration <= 60
        and 0 < args.warmup <= 10
        and 1 <= args.connections <= 256
    ):
        parser.error(
            "bounds: 1-16 workers, 1-20 rounds, 1-60 s duration, up to 10 s warm-up, 1-256 connections"
        )
    tool = args.client if args.client != "auto" else ("wrk" if shutil.which("wrk") else "httpx")
    if tool == "wrk" and not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install wrk), use --client httpx")

    load_before = os.getloadavg()[0]
    port = free_port()
    base = f"http://{HOST}:{port}"
    samples: dict[str, list[dict[str, Any]]] = {"health": [], "config 200": [], "config 304": []}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="segmently-bench-") as tmp, contextlib.ExitStack() as stack:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTLY_")}
        env |= {
            "SEGMENTLY_DATA_DIR": tmp,
            "SEGMENTLY_SECRET_KEY": "bench-" + "x" * 40,
            "SEGMENTLY_BCRYPT_ROUNDS": "10",  # sign-up only
            "SEGMENTLY_RATE_LIMIT_PUBLIC": "100000000/minute",
        }
        if args.backend == "postgresql":
            env["SEGMENTLY_DATABASE_URL"] = stack.enter_context(postgres_database(args.pg_url))
        print(f"migrating a fresh {args.backend} database", file=sys.stderr)
        subprocess.run([*CLI, "migrate"], env=env, check=True, capture_output=True)
        print(f"starting segmently serve on {base} ({args.workers} worker(s))", file=sys.stderr)
        stack.enter_context(running_server(env, port, args.workers, Path(tmp) / "server.log"))
        print(f"creating a site with {EXPERIMENTS} live experiments and {FLAGS} flags", file=sys.stderr)
        api_key, config_bytes = populate(base, env)
        key = {"X-API-Key": api_key}
        etag = httpx.get(f"{base}/api/v1/sdk/config", headers=key, timeout=10).headers["etag"]
        health_bytes = len(httpx.get(f"{base}/health", timeout=10).content)
        # route: (path, headers, (expected status, expected body length))
        routes: dict[str, tuple[str, dict[str, str], tuple[int, int]]] = {
            "health": ("/health", {}, (200, health_bytes)),
            "config 200": ("/api/v1/sdk/config", key, (200, config_bytes)),
            "config 304": ("/api/v1/sdk/config", key | {"If-None-Match": etag}, (304, 0)),
        }
        script = Path(tmp) / "check.lua"
        script.write_text(WRK_SCRIPT)
        for i in range(args.rounds):
            for name, (path, headers, expect) in routes.items():
                print(f"round {i + 1}/{args.rounds}: {name} GET {path}", file=sys.stderr, flush=True)
                samples[name].append(measure(tool, base + path, headers, expect, args, script))
    elapsed = time.monotonic() - started

    med = {
        name: {k: statistics.median(s[k] for s in rows) for k in ("rps", "p50", "p99")}
        for name, rows in samples.items()
    }
    total = {name: sum(s["requests"] for s in rows) for name, rows in samples.items()}
    print(
        f"{args.backend}, {args.workers} worker(s), {tool} with {args.connections} connections, "
        f"{args.rounds} rounds of {args.warmup:g} s warm-up + {args.duration:g} s; medians over rounds "
        f"({elapsed:.0f} s in all); 1-min load average before the run {load_before:.2f}, after "
        f"{os.getloadavg()[0]:.2f}\n"
        f"config: {EXPERIMENTS} live experiments, {FLAGS} flags, {config_bytes} bytes; every measured "
        f"response checked: {total}\n"
    )
    labels = {
        "health": "GET /health",
        "config 200": "config 200 (full body)",
        "config 304": "config 304 (If-None-Match)",
    }
    print(f"{'':34}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}")
    for name, label in labels.items():
        print(f"{label:34}{med[name]['rps']:12.0f}{med[name]['p50']:10.2f}{med[name]['p99']:10.2f}")
    h = med["health"]
    for name in ("config 200", "config 304"):
        c = med[name]
        label = f"ratio {name}/health"
        print(f"{label:34}{c['rps'] / h['rps']:12.2f}{c['p50'] / h['p50']:10.2f}{c['p99'] / h['p99']:10.2f}")
    spread = {name: [round(s["rps"]) for s in rows] for name, rows in samples.items()}
    print(f"\nrequests/s per round: {spread}")


if __name__ == "__main__":
    main()
