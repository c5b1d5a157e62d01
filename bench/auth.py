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
import asyncio
import contextlib
import json
import math
import os
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

import httpx

CLI = [sys.executable, "-c", "from segmently.cli import main; main()"]
HOST = "127.0.0.1"
PASSWORD = "bench-password-" + "x" * 16  # a throwaway account on a throwaway database

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
def running_server(env: dict[str, str], port: int, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``segmently serve`` with one worker, until it answers ``/health``; stopped on exit."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*CLI, "serve", "--host", HOST, "--port", str(port), "--workers", "1"],
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


def run_wrk(
    url: str, headers: dict[str, str], seconds: float, connections: int, script: Path
) -> dict[str, float]:
    args = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
    ]
    for key, value in headers.items():
        args += ["-H", f"{key}: {value}"]
    out = subprocess.run([*args, url], check=True, capture_output=True, text=True, timeout=seconds + 60)
    raw = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("{")))
    return {
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50": raw["p50_us"] / 1e3,
        "p99": raw["p99_us"] / 1e3,
        "requests": raw["requests"],
        "errors": raw["socket_errors"] + raw["status_errors"],
    }


async def _httpx_load(
    url: str, headers: dict[str, str], seconds: float, connections: int
) -> dict[str, float]:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    latencies: list[float] = []
    errors = 0

    async def worker(client: httpx.AsyncClient, until: float) -> None:
        nonlocal errors
        while time.perf_counter() < until:
            t0 = time.perf_counter()
            try:
                response = await client.get(url)
                ok = 200 <= response.status_code < 300
            except httpx.TransportError:
                ok = False
            latencies.append(time.perf_counter() - t0)
            errors += not ok

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
    }


def measure(
    tool: str, url: str, headers: dict[str, str], args: argparse.Namespace, script: Path
) -> dict[str, float]:
    """Warm up, then measure one route for ``args.duration`` seconds."""
    for seconds in (args.warmup, args.duration):
        if tool == "wrk":
            result = run_wrk(url, headers, seconds, args.connections, script)
        else:
            result = asyncio.run(_httpx_load(url, headers, seconds, args.connections))
        if result["errors"]:
            raise RuntimeError(f"{url}: {result['errors']:.0f} failed requests of {result['requests']:.0f}")
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
        1 <= args.rounds <= 20
        and 1 <= args.duration <= 60
        and 0 < args.warmup <= 10
        and 1 <= args.connections <= 256
    ):
        parser.error("bounds: 1-20 rounds, 1-60 s duration, up to 10 s warm-up, 1-256 connections")
    tool = args.client if args.client != "auto" else ("wrk" if shutil.which("wrk") else "httpx")
    if tool == "wrk" and not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install wrk), use --client httpx")

    load_before = os.getloadavg()[0]
    port = free_port()
    base = f"http://{HOST}:{port}"
    routes = {"unauthenticated": "/health", "authenticated": "/api/v1/me"}
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in routes}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="segmently-bench-") as tmp, contextlib.ExitStack() as stack:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTLY_")}
        env |= {
            "SEGMENTLY_DATA_DIR": tmp,
            "SEGMENTLY_SECRET_KEY": "bench-" + "x" * 40,
            "SEGMENTLY_BCRYPT_ROUNDS": "10",  # sign-up only; /api/v1/me does no hashing
        }
        if args.backend == "postgresql":
            env["SEGMENTLY_DATABASE_URL"] = stack.enter_context(postgres_database(args.pg_url))
        print(f"migrating a fresh {args.backend} database", file=sys.stderr)
        subprocess.run([*CLI, "migrate"], env=env, check=True, capture_output=True)
        print(f"starting segmently serve on {base} (1 worker)", file=sys.stderr)
        stack.enter_context(running_server(env, port, Path(tmp) / "server.log"))
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
        script = Path(tmp) / "report.lua"
        script.write_text(WRK_SCRIPT)
        for i in range(args.rounds):
            for name, path in routes.items():
                print(f"round {i + 1}/{args.rounds}: {name} GET {path}", file=sys.stderr, flush=True)
                headers = auth if name == "authenticated" else {}
                samples[name].append(measure(tool, base + path, headers, args, script))
    elapsed = time.monotonic() - started

    med = {
        name: {k: statistics.median(s[k] for s in rows) for k in ("rps", "p50", "p99")}
        for name, rows in samples.items()
    }
    print(
        f"{args.backend}, 1 worker, {tool} with {args.connections} connections, {args.rounds} rounds of "
        f"{args.warmup:g} s warm-up + {args.duration:g} s; medians over rounds ({elapsed:.0f} s in all); "
        f"1-min load average before the run {load_before:.2f}\n"
    )
    print(f"{'':34}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}")
    for name, path in routes.items():
        label = f"{name} GET {path}"
        print(f"{label:34}{med[name]['rps']:12.0f}{med[name]['p50']:10.2f}{med[name]['p99']:10.2f}")
    a, u = med["authenticated"], med["unauthenticated"]
    print(
        f"{'ratio authenticated/unauth.':34}{a['rps'] / u['rps']:12.2f}{a['p50'] / u['p50']:10.2f}"
        f"{a['p99'] / u['p99']:10.2f}"
    )
    spread = {name: [round(s["rps"]) for s in rows] for name, rows in samples.items()}
    print(f"\nrequests/s per round: {spread}")


if __name__ == "__main__":
    main()
