"""Authenticated-request benchmark: ``GET /api/v1/me`` (JWT + database check) vs ``GET /health``.

The script starts a real server (``segmently serve --workers 1``, the workspace venv's Python) on a
free loopback port against a fresh database that it creates and migrates with ``segmently migrate``:
a SQLite data dir in a temp dir (default) or, with ``--backend postgresql``, a throwaway database
created on the PostgreSQL server of ``--pg-url`` and dropped at the end. It signs up one user, then
drives the server over loopback with a load generator holding ``--connections`` keep-alive
connections:

* ``wrk`` (one thread) if it is on the PATH;
* otherwise an asyncio ``httpx`` client with the same number of concurrent connections (slower than
  wrk: on a small machine the Python client competes with the server for CPU, so its figures are
  lower and not comparable with wrk's; the ratio still is).

Two routes are measured:

* unauthenticated: ``GET /health``. The app has no unauthenticated route that skips the database
  (``/metrics`` renders the Prometheus registry, ``/schema`` the OpenAPI document), so the baseline
  does one database round trip, ``SELECT 1`` on a pooled connection;
* authenticated: ``GET /api/v1/me`` with ``Authorization: Bearer <token>``: JWT verification, the
  user by primary key and the membership joined with its organization (in the app-wide access
  guard's own session), then the user's organizations for the response body (in the request's
  session).

Each measurement is ``--warmup`` seconds (discarded) then ``--duration`` seconds; the two routes
alternate for ``--rounds`` rounds, and the script prints the median over rounds of requests/s, p50 and
p99 latency, and the ratios authenticated / unauthenticated. Any non-2xx response or socket error
aborts the run. The server is stopped (SIGTERM, then SIGKILL after 15 s) and the temp dir or the
PostgreSQL database removed at the end, also on error, Ctrl-C or SIGTERM.

Run from the workspace root:  uv run python bench/auth.py [--backend postgresql] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import httpx
from _harness import (
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

WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "socket_errors": %d, "status_errors": %d, '
    .. '"p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_backend_args(parser)
    add_load_args(parser)
    args, tool = parse_args(parser)

    load_before = os.getloadavg()[0]
    routes = {"unauthenticated": "/health", "authenticated": "/api/v1/me"}
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in routes}
    started = time.monotonic()
    with served(args.backend, args.pg_url) as server:
        base = server.base
        signup = httpx.post(
            f"{base}/api/v1/auth/signup",
            json={
                "email": "bench@example.com",
                "password": PASSWORD,
                "name": "Bench",
                "organization": "Bench",
            },
            timeout=30,
        )
        signup.raise_for_status()
        token = signup.json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{base}/api/v1/me", headers=auth, timeout=10).status_code == 200
        assert httpx.get(f"{base}/api/v1/me", timeout=10).status_code == 401
        script = server.tmp / "report.lua"
        script.write_text(WRK_SCRIPT)
        for i in range(args.rounds):
            for name, path in routes.items():
                print(f"round {i + 1}/{args.rounds}: {name} GET {path}", file=sys.stderr, flush=True)
                headers = auth if name == "authenticated" else {}
                samples[name].append(measure(tool, base + path, headers, args, script))
    elapsed = time.monotonic() - started

    med = medians(samples)
    print(
        f"{args.backend}, 1 worker, {tool} with {args.connections} connections, {args.rounds} rounds of "
        f"{args.warmup:g} s warm-up + {args.duration:g} s; medians over rounds ({elapsed:.0f} s in all); "
        f"1-min load average before the run {load_before:.2f}\n"
    )
    print(ROW_HEADER)
    for name, path in routes.items():
        print(row(f"{name} GET {path}", med[name]))
    print(ratio_row("ratio authenticated/unauth.", med["authenticated"], med["unauthenticated"]))
    print(spread(samples))


if __name__ == "__main__":
    main()
