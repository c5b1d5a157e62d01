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
import os
import random
import subprocess
import sys
import time
from typing import Any

import httpx
from _harness import (
    CLI,
    PASSWORD,
    ROW_HEADER,
    add_backend_args,
    add_load_args,
    measure,
    medians,
    parse_args,
    ratio_row,
    row,
    served,
    spread,
)

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_backend_args(parser)
    parser.add_argument("--workers", type=int, default=1, help="server worker processes (default 1)")
    add_load_args(parser)
    args, tool = parse_args(parser)

    load_before = os.getloadavg()[0]
    samples: dict[str, list[dict[str, Any]]] = {"health": [], "config 200": [], "config 304": []}
    started = time.monotonic()
    public_limit = {"SEGMENTLY_RATE_LIMIT_PUBLIC": "100000000/minute"}
    with served(args.backend, args.pg_url, args.workers, public_limit) as server:
        base = server.base
        print(f"creating a site with {EXPERIMENTS} live experiments and {FLAGS} flags", file=sys.stderr)
        api_key, config_bytes = populate(base, server.env)
        key = {"X-API-Key": api_key}
        etag = httpx.get(f"{base}/api/v1/sdk/config", headers=key, timeout=10).headers["etag"]
        health_bytes = len(httpx.get(f"{base}/health", timeout=10).content)
        # route: (path, headers, (expected status, expected body length))
        routes: dict[str, tuple[str, dict[str, str], tuple[int, int]]] = {
            "health": ("/health", {}, (200, health_bytes)),
            "config 200": ("/api/v1/sdk/config", key, (200, config_bytes)),
            "config 304": ("/api/v1/sdk/config", key | {"If-None-Match": etag}, (304, 0)),
        }
        script = server.tmp / "check.lua"
        script.write_text(WRK_SCRIPT)
        for i in range(args.rounds):
            for name, (path, headers, expect) in routes.items():
                print(f"round {i + 1}/{args.rounds}: {name} GET {path}", file=sys.stderr, flush=True)
                samples[name].append(measure(tool, base + path, headers, args, script, expect))
    elapsed = time.monotonic() - started

    med = medians(samples)
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
    print(ROW_HEADER)
    for name, label in labels.items():
        print(row(label, med[name]))
    for name in ("config 200", "config 304"):
        print(ratio_row(f"ratio {name}/health", med[name], med["health"]))
    print(spread(samples))


if __name__ == "__main__":
    main()
