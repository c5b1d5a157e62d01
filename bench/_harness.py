"""What the HTTP benchmarks share: a real ``segmently serve`` on a fresh database, and the load generators.

:func:`served` starts the server (``segmently serve``, the workspace venv's Python) on a free loopback
port against a fresh database that it creates and migrates with ``segmently migrate``: a SQLite data
dir in a temp dir or a throwaway PostgreSQL database, dropped at the end. The server is stopped
(SIGTERM, then SIGKILL after 15 s) and the temp dir or the database removed on exit, also on error,
Ctrl-C or SIGTERM (:func:`parse_args` turns SIGTERM into an exit).

:func:`measure` drives one route with ``wrk`` (its output parsed from the JSON line that the caller's
Lua script writes in ``done``) or, without wrk, an asyncio ``httpx`` client; the rest prints the
medians over rounds as a table.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

CLI = [sys.executable, "-c", "from segmently.cli import main; main()"]
HOST = "127.0.0.1"
PASSWORD = "bench-password-" + "x" * 16  # a throwaway account on a throwaway database


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------ arguments ---


def add_backend_args(parser: argparse.ArgumentParser) -> None:
    """``--backend`` and ``--pg-url``."""
    parser.add_argument(
        "--backend", choices=["sqlite", "postgresql"], default="sqlite", help="default sqlite"
    )
    parser.add_argument(
        "--pg-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432",
        help="PostgreSQL server (no database name) for --backend postgresql",
    )


def add_load_args(parser: argparse.ArgumentParser) -> None:
    """``--rounds``, ``--duration``, ``--warmup``, ``--connections`` and ``--client``."""
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


def parse_args(parser: argparse.ArgumentParser) -> tuple[argparse.Namespace, str]:
    """The checked arguments and the load generator (``wrk`` or ``httpx``); SIGTERM exits from now on.

    ``--workers`` (if the parser has it) must be 1-16.
    """
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))  # clean up as on Ctrl-C
    workers = getattr(args, "workers", None)
    if not (
        (workers is None or 1 <= workers <= 16)
        and 1 <= args.rounds <= 20
        and 1 <= args.duration <= 60
        and 0 < args.warmup <= 10
        and 1 <= args.connections <= 256
    ):
        parser.error(
            "bounds: "
            + ("1-16 workers, " if workers is not None else "")
            + "1-20 rounds, 1-60 s duration, up to 10 s warm-up, 1-256 connections"
        )
    tool = args.client if args.client != "auto" else ("wrk" if shutil.which("wrk") else "httpx")
    if tool == "wrk" and not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install wrk), use --client httpx")
    return args, tool


# --------------------------------------------------------------------------- server ---


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


@dataclass(frozen=True)
class Server:
    """A running benchmark server: its base URL, the environment it runs with and its temp dir."""

    base: str
    env: dict[str, str]
    tmp: Path


@contextlib.contextmanager
def served(
    backend: str, pg_url: str, workers: int = 1, extra_env: dict[str, str] | None = None
) -> Iterator[Server]:
    """A migrated fresh database (SQLite in a temp dir, or PostgreSQL) and a server on it, until exit.

    The environment drops the caller's ``SEGMENTLY_*`` variables and sets a data dir, a secret key,
    cheap bcrypt (sign-up only) and then ``extra_env``.
    """
    port = free_port()
    base = f"http://{HOST}:{port}"
    with tempfile.TemporaryDirectory(prefix="segmently-bench-") as tmp, contextlib.ExitStack() as stack:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTLY_")}
        env |= {
            "SEGMENTLY_DATA_DIR": tmp,
            "SEGMENTLY_SECRET_KEY": "bench-" + "x" * 40,
            "SEGMENTLY_BCRYPT_ROUNDS": "10",  # sign-up only
        }
        env |= extra_env or {}
        if backend == "postgresql":
            env["SEGMENTLY_DATABASE_URL"] = stack.enter_context(postgres_database(pg_url))
        print(f"migrating a fresh {backend} database", file=sys.stderr)
        subprocess.run([*CLI, "migrate"], env=env, check=True, capture_output=True)
        print(f"starting segmently serve on {base} ({workers} worker(s))", file=sys.stderr)
        stack.enter_context(running_server(env, port, workers, Path(tmp) / "server.log"))
        yield Server(base=base, env=env, tmp=Path(tmp))


# --------------------------------------------------------------------- load generators ---


def run_wrk(
    url: str,
    headers: dict[str, str],
    seconds: float,
    connections: int,
    script: Path,
    script_args: tuple[str, ...] = (),
) -> dict[str, Any]:
    """One wrk run (one thread); ``script`` prints a JSON line in ``done``.

    The line has ``requests``, ``duration_us``, ``socket_errors``, ``status_errors``, ``p50_us``,
    ``p99_us`` and optionally ``unexpected`` (responses the script's own check refused) and
    ``first_bad`` (the first of those).
    """
    args = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"]
    args += ["-s", str(script)]
    for key, value in headers.items():
        args += ["-H", f"{key}: {value}"]
    args += [url, "--", *script_args] if script_args else [url]
    out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=seconds + 60)
    raw = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("{")))
    return {
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50": raw["p50_us"] / 1e3,
        "p99": raw["p99_us"] / 1e3,
        "requests": raw["requests"],
        # a 4xx/5xx is also one of wrk's status errors: the Lua check, if any, already counts it
        "errors": raw["socket_errors"] + max(raw["status_errors"], raw.get("unexpected", 0)),
        "first_bad": raw.get("first_bad", ""),
    }


async def httpx_load(
    url: str,
    headers: dict[str, str],
    seconds: float,
    connections: int,
    expect: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """``connections`` concurrent keep-alive GETs for ``seconds``; the same figures as :func:`run_wrk`.

    A response is an error unless it is ``expect`` (status, body length), or 2xx without ``expect``.
    """
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
                if expect is None:
                    ok = 200 <= response.status_code < 300
                else:
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
    args: argparse.Namespace,
    script: Path,
    expect: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Warm up, then measure one route for ``args.duration`` seconds; any failed response aborts.

    With ``expect`` (status, body length) the wrk script gets both as its arguments and every
    response must match them exactly; without, every response must be 2xx.
    """
    script_args = (str(expect[0]), str(expect[1])) if expect is not None else ()
    for seconds in (args.warmup, args.duration):
        if tool == "wrk":
            result = run_wrk(url, headers, seconds, args.connections, script, script_args)
        else:
            result = asyncio.run(httpx_load(url, headers, seconds, args.connections, expect))
        if result["errors"] and expect is None:
            raise RuntimeError(f"{url}: {result['errors']:.0f} failed requests of {result['requests']:.0f}")
        if result["errors"] and expect is not None:
            raise RuntimeError(
                f"{url} {headers}: {result['errors']:.0f} of {result['requests']:.0f} responses were not "
                f"status {expect[0]} with {expect[1]} bytes (first: {result['first_bad'] or 'socket error'})"
            )
    return result


# ------------------------------------------------------------------------- reporting ---

ROW_HEADER = f"{'':34}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}"


def medians(samples: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """Per route, the median over rounds of requests/s, p50 and p99."""
    return {
        name: {k: statistics.median(s[k] for s in rows) for k in ("rps", "p50", "p99")}
        for name, rows in samples.items()
    }


def row(label: str, m: dict[str, float]) -> str:
    """A table line: requests/s, p50 and p99 of one route."""
    return f"{label:34}{m['rps']:12.0f}{m['p50']:10.2f}{m['p99']:10.2f}"


def ratio_row(label: str, a: dict[str, float], b: dict[str, float]) -> str:
    """A table line: ``a`` / ``b`` for requests/s, p50 and p99."""
    return f"{label:34}{a['rps'] / b['rps']:12.2f}{a['p50'] / b['p50']:10.2f}{a['p99'] / b['p99']:10.2f}"


def spread(samples: dict[str, list[dict[str, Any]]]) -> str:
    """The closing line: requests/s of every round, per route."""
    per_round = {name: [round(s["rps"]) for s in rows] for name, rows in samples.items()}
    return f"\nrequests/s per round: {per_round}"
