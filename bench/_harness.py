"""What the HTTP benchmarks share: a real ``segmently serve`` on a fresh database, and the load generators.

:func:`served` starts the server (``segmently serve``, the workspace venv's Python) on a free loopback
port against a fresh database that it creates and migrates with ``segmently migrate``: a SQLite data
dir in a temp dir or a throwaway PostgreSQL database, dropped at the end. The server is stopped
(SIGTERM, then SIGKILL after 15 s) and the temp dir or the database removed on exit, also on error,
Ctrl-C or SIGTERM (:func:`parse_args` turns SIGTERM into an exit).

:func:`measure` drives one route with ``wrk`` (its output parsed from the JSON line that the caller's
Lua script writes in ``done``) or, without wrk, an asyncio ``httpx`` client; :func:`socket_load`
sends ``POST`` bodies from threads with a keep-alive socket each, closed loop or paced at a fixed
rate (latency from the intended send time); :class:`CpuMeter` says which processes used the CPU
during a measurement; the rest prints the medians over rounds as a table.

For the analytics benchmarks: :func:`enterprise_owner` and :func:`live_experiment` set up an
organization, a site and a live experiment through the API; :func:`copy_experiment_rows` writes an
experiment's per-visitor rows (visitors, conversions, funnel progress) with binary ``COPY`` on the
connections of :func:`copy_connections`; :func:`explain_plan` sums up an ``EXPLAIN ANALYZE`` in a line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
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
import threading
import time
from collections.abc import Callable, Iterator
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


def parse_args(parser: argparse.ArgumentParser, fallback: str = "httpx") -> tuple[argparse.Namespace, str]:
    """The checked arguments and the load generator (``wrk``, or ``fallback`` without it); SIGTERM exits.

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
    tool = args.client if args.client != "auto" else ("wrk" if shutil.which("wrk") else fallback)
    if tool == "wrk" and not shutil.which("wrk"):
        parser.error(f"wrk is not installed (apt-get install wrk), use --client {fallback}")
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
    """A running benchmark server: its base URL, the environment it runs with, its temp dir and its pid."""

    base: str
    env: dict[str, str]
    tmp: Path
    pid: int = 0


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
        proc = stack.enter_context(running_server(env, port, workers, Path(tmp) / "server.log"))
        yield Server(base=base, env=env, tmp=Path(tmp), pid=proc.pid)


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


def _read_response(sock: socket.socket, buf: bytearray) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a ``Content-Length`` (no chunked bodies): status and body."""
    while (end := buf.find(b"\r\n\r\n")) < 0:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        buf += chunk
    head = bytes(buf[:end]).decode("latin-1")
    length = 0
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    total = end + 4 + length
    while len(buf) < total:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        buf += chunk
    body = bytes(buf[end + 4 : total])
    del buf[:total]
    return int(head[9:12]), body


def socket_load(
    base: str,
    path: str,
    headers: dict[str, str],
    body: Callable[[int], bytes],
    seconds: float,
    connections: int,
    expect: tuple[int, bytes],
    rate: float | None = None,
) -> dict[str, Any]:
    """Keep-alive ``POST``s from ``connections`` threads, one socket each; the figures of :func:`run_wrk`.

    ``body(n)`` is the body of the ``n``-th request (thread-safe; bodies may differ, e.g. unique ids).
    A response other than exactly ``expect`` (status, body) is an error. Closed loop without
    ``rate``: each connection sends as soon as its previous answer arrived, for ``seconds``; latency
    is from the send. Open loop with ``rate``: request ``j`` is due at ``start + j / rate`` on
    connection ``j % connections``, and its latency runs from that intended time, so time spent
    waiting behind a slow answer counts (no coordinated omission); the result also has ``lag_p99``
    (ms between due and actual send) and ``service_p50``/``service_p99`` (ms from the actual send).
    The client costs about 30-60 µs of CPU per request, under the GIL.
    """
    host, _, port = base.removeprefix("http://").partition(":")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    prefix = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{head}"
    counter = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    lags: list[float] = []
    services: list[float] = []
    failures: list[str] = []
    total = round(rate * seconds) if rate is not None else 0
    start = time.perf_counter() + 0.05
    until = start + seconds

    def worker(k: int) -> None:
        mine: list[float] = []
        my_lags: list[float] = []
        my_services: list[float] = []
        bad: list[str] = []
        sock: socket.socket | None = None
        buf = bytearray()
        j = k
        while True:
            if rate is None:
                if time.perf_counter() >= until:
                    break
                n = next(counter)
            else:
                if j >= total:
                    break
                n, due = j, start + j / rate
                j += connections
                if (wait := due - time.perf_counter()) > 0:
                    time.sleep(wait)
            data = body(n)
            request = f"{prefix}Content-Length: {len(data)}\r\n\r\n".encode() + data
            sent = time.perf_counter()
            try:
                if sock is None:
                    sock = socket.create_connection((host, int(port)), timeout=10)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.sendall(request)
                got = _read_response(sock, buf)
                ok = got == expect
                problem = f"status {got[0]}: {got[1][:120]!r}"
            except OSError as e:
                ok, problem = False, repr(e)
                if sock is not None:
                    sock.close()
                sock, buf = None, bytearray()
            done = time.perf_counter()
            if rate is None:
                mine.append(done - sent)
            else:
                mine.append(done - due)
                my_lags.append(sent - due)
                my_services.append(done - sent)
            if not ok:
                bad.append(problem)
        if sock is not None:
            sock.close()
        with lock:
            latencies.extend(mine)
            lags.extend(my_lags)
            services.extend(my_services)
            failures.extend(bad)

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start

    def pct(values: list[float], q: float) -> float:
        values.sort()
        return values[max(0, math.ceil(q * len(values)) - 1)] * 1e3 if values else math.nan

    result = {
        "rps": len(latencies) / elapsed,
        "p50": pct(latencies, 0.5),
        "p99": pct(latencies, 0.99),
        "requests": len(latencies),
        "errors": len(failures),
        "first_bad": failures[0] if failures else "",
    }
    if rate is not None:
        result |= {
            "lag_p99": pct(lags, 0.99),
            "service_p50": pct(services, 0.5),
            "service_p99": pct(services, 0.99),
        }
    return result


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


# ------------------------------------------------------------------ where the CPU goes ---

_PG_AUX = ("walwriter", "checkpointer", "background writer", "autovacuum launcher")


def _cpu_ticks(pid: int) -> int | None:
    """User + system clock ticks of one process so far, or None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])


def _process_tree(root: int) -> set[int]:
    """``root`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo.extend(children.get(pid, []))
    return tree


def _machine_busy() -> tuple[int, int]:
    """Busy and total clock ticks of all CPUs so far (``/proc/stat``)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values[:8]) - idle, sum(values[:8])


class CpuMeter:
    """CPU used by the server's processes, PostgreSQL and this client, in cores, over a measured span.

    ``postgres`` is the backends connected to ``database`` (the server's pool or a baseline's
    connections), ``pg aux`` PostgreSQL's WAL writer, checkpointer and background writer (shared
    with anything else on that server); ``client`` is this process and the children it has waited
    for (``wrk``); ``other`` is the rest of the machine. Linux only (``/proc``).
    """

    def __init__(self, server_pid: int, pg_url: str, database: str) -> None:
        self.server_pid = server_pid
        self.admin = pg_url.replace("postgresql+psycopg://", "postgresql://", 1).rstrip("/") + "/postgres"
        self.database = database
        self.hz = os.sysconf("SC_CLK_TCK")

    def _groups(self) -> dict[str, set[int]]:
        import psycopg

        with psycopg.connect(self.admin, autocommit=True) as conn:
            rows = conn.execute("SELECT pid, datname, backend_type FROM pg_stat_activity").fetchall()
        return {
            "server": _process_tree(self.server_pid) if self.server_pid else set(),
            "postgres": {pid for pid, db, _ in rows if db == self.database},
            "pg aux": {pid for pid, db, kind in rows if db is None and kind in _PG_AUX},
        }

    def _snapshot(self) -> dict[str, Any]:
        own = os.times()
        return {
            "at": time.perf_counter(),
            "groups": {
                name: {pid: t for pid in pids if (t := _cpu_ticks(pid)) is not None}
                for name, pids in self._groups().items()
            },
            "client": own.user + own.system + own.children_user + own.children_system,
            "machine": _machine_busy(),
        }

    @contextlib.contextmanager
    def span(self) -> Iterator[dict[str, float]]:
        """Measure the ``with`` block; the yielded dict is filled with cores per group on exit."""
        cores: dict[str, float] = {}
        before = self._snapshot()
        try:
            yield cores
        finally:
            after = self._snapshot()
            wall = after["at"] - before["at"]
            for name, now in after["groups"].items():
                then = before["groups"][name]
                ticks = sum(t - then.get(pid, 0) for pid, t in now.items())
                cores[name] = ticks / self.hz / wall
            cores["client"] = (after["client"] - before["client"]) / wall
            busy = after["machine"][0] - before["machine"][0]
            total = after["machine"][1] - before["machine"][1]
            cores["machine"] = busy / max(1, total) * (os.cpu_count() or 1)
            cores["other"] = max(0.0, cores["machine"] - sum(v for k, v in cores.items() if k != "machine"))


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


# ------------------------------------------------------------------- experiment data ---


def psycopg_url(url: str) -> str:
    """A SQLAlchemy ``postgresql+psycopg://`` URL as a plain libpq URL for psycopg."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@dataclass(frozen=True)
class Owner:
    """A signed-up user whose organization is on the enterprise plan, with one site."""

    token: str
    organization_id: str
    site_id: str

    @property
    def headers(self) -> dict[str, str]:
        """The ``Authorization`` header of the user's session."""
        return {"Authorization": f"Bearer {self.token}"}


def enterprise_owner(server: Server, client: httpx.Client) -> Owner:
    """Sign up through the API, move the organization to enterprise (``orgs set-plan``), add a site."""
    signup = client.post(
        "/api/v1/auth/signup",
        json={"email": "bench@example.com", "password": PASSWORD, "name": "Bench", "organization": "Bench"},
    )
    signup.raise_for_status()
    body = signup.json()
    subprocess.run(
        [*CLI, "orgs", "set-plan", body["organization"]["id"], "enterprise"],
        env=server.env,
        check=True,
        capture_output=True,
    )
    headers = {"Authorization": f"Bearer {body['token']}"}
    site = client.post(
        "/api/v1/projects", json={"name": "Shop", "url": "https://shop.example.com"}, headers=headers
    )
    site.raise_for_status()
    return Owner(token=body["token"], organization_id=body["organization"]["id"], site_id=site.json()["id"])


def live_experiment(client: httpx.Client, owner: Owner, experiment: dict[str, Any]) -> dict[str, Any]:
    """Create ``experiment`` on the owner's site and start it; the experiment as the API returns it."""
    made = client.post(
        f"/api/v1/projects/{owner.site_id}/experiments", json=experiment, headers=owner.headers
    )
    if made.status_code != 201:
        raise RuntimeError(f"experiment: {made.status_code} {made.text}")
    started = client.post(f"/api/v1/experiments/{made.json()['id']}/start", headers=owner.headers)
    if started.status_code != 200:
        raise RuntimeError(f"start experiment: {started.status_code} {started.text}")
    return dict(made.json())


@dataclass(frozen=True)
class ArmPlan:
    """What to generate for one variant: visitors, and how many of them convert on the primary goal."""

    variant_id: str
    visitors: int
    converters: int


VISITOR_COLUMNS = (
    "id",
    "experiment_id",
    "variant_id",
    "site_id",
    "visitor_id",
    "assigned_at",
    "time_on_page_s",
    "time_on_page_n",
    "bounced",
)
VISITOR_TYPES = ("varchar",) * 5 + ("timestamptz", "float8", "int4", "bool")
CONVERSION_COLUMNS = (
    "experiment_id",
    "goal_id",
    "visitor_id",
    "variant_id",
    "site_id",
    "first_at",
    "count",
    "revenue",
)
CONVERSION_TYPES = ("varchar",) * 5 + ("timestamptz", "int4", "float8")
FUNNEL_COLUMNS = ("experiment_id", "funnel_id", "visitor_id", "variant_id", "site_id", "steps", "updated_at")
FUNNEL_TYPES = ("varchar",) * 5 + ("int4", "timestamptz")
FUNNEL_STEPS = (1, 1, 1, 1, 2, 2, 2, 3, 3, 4)  # of the visitors who enter the funnel: 40 % stop at step 1


@dataclass
class Generated:
    """Rows written by :func:`copy_experiment_rows`, and the fewest events that would have produced them."""

    visitors: int = 0
    conversions: int = 0
    funnel: int = 0
    events: int = (
        0  # assignment, time_on_page, bounce, conversion and funnel-step events; page views not counted
    )


def _visitor_id(rng: random.Random) -> str:
    """A random UUIDv4-shaped visitor id, as the snippet makes (``rng.getrandbits``: reproducible)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


@contextlib.contextmanager
def copy_connections(url: str) -> Iterator[list[Any]]:
    """Three psycopg connections to ``url``'s database, for :func:`copy_experiment_rows`; closed on exit."""
    import psycopg

    conns = []
    try:
        for _ in range(3):
            conns.append(psycopg.connect(psycopg_url(url)))
        yield conns
    finally:
        for conn in conns:
            conn.close()


def copy_experiment_rows(
    conns: list[Any],
    experiment_id: str,
    site_id: str,
    goal_id: str,
    funnel_id: str | None,
    arms: list[ArmPlan],
    since: float,
    until: float,
    rng: random.Random,
    advance: Callable[[int], None],
    funnel_share: float = 0.25,
    bounce_share: float = 0.30,
    chunk: int = 250_000,
) -> Generated:
    """Write one experiment's per-visitor rows with binary ``COPY``, as ingestion would leave them.

    ``experiment_visitors``: every arm's visitors interleaved at random (exact counts per arm), with
    ``assigned_at`` rising evenly from ``since`` to ``until`` (epoch seconds; rows in the order
    ingestion appends them), ``bounce_share`` bounced, the others with 0-4 time-on-page events of
    5-300 s. ``experiment_conversions``: exactly ``converters`` visitors of each arm, chosen at random,
    with one or two conversions on ``goal_id`` and revenue. ``funnel_progress`` (unless ``funnel_id``
    is None): ``funnel_share`` of the visitors, with 1-4 steps. Ids are UUIDv7 (``new_id``). The three
    tables are written through the three connections ``conns`` (:func:`copy_connections`) at once,
    committed every ``chunk`` visitors; ``advance(n)`` is called with the visitors written since its
    previous call.
    """
    from segmently.db.base import new_id

    total = sum(a.visitors for a in arms)
    left = [a.visitors for a in arms]
    to_convert = [a.converters for a in arms]
    out = Generated()
    span = until - since
    done = reported = 0
    while done < total:
        n = min(chunk, total - done)
        with contextlib.ExitStack() as stack:
            copies = []
            for conn, table, columns, types in (
                (conns[0], "experiment_visitors", VISITOR_COLUMNS, VISITOR_TYPES),
                (conns[1], "experiment_conversions", CONVERSION_COLUMNS, CONVERSION_TYPES),
                (conns[2], "funnel_progress", FUNNEL_COLUMNS, FUNNEL_TYPES),
            ):
                copy = stack.enter_context(
                    conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)")
                )
                copy.set_types(list(types))
                copies.append(copy)
            visitors, conversions, funnels = copies
            for i in range(done, done + n):
                remaining = total - i
                pick, r = 0, rng.random() * remaining
                while r >= left[pick]:  # an arm with probability left / remaining: exact counts
                    r -= left[pick]
                    pick += 1
                arm = arms[pick]
                converts = rng.random() * left[pick] < to_convert[pick]  # selection sampling
                left[pick] -= 1
                visitor = _visitor_id(rng)
                at = dt.datetime.fromtimestamp(since + (i + rng.random()) / total * span, dt.UTC)
                if rng.random() < bounce_share:
                    seconds, views, bounced = 0.0, 0, True
                else:
                    views, bounced = rng.choice((0, 1, 1, 2, 2, 3, 4)), False
                    seconds = sum(rng.uniform(5.0, 300.0) for _ in range(views))
                visitors.write_row(
                    (
                        new_id(),
                        experiment_id,
                        arm.variant_id,
                        site_id,
                        visitor,
                        at,
                        seconds,
                        views,
                        bounced,
                    )
                )
                out.events += 1 + views + bounced
                if converts:
                    to_convert[pick] -= 1
                    count = 1 if rng.random() < 0.8 else 2
                    revenue = round(sum(rng.uniform(9.0, 250.0) for _ in range(count)), 2)
                    first = at + dt.timedelta(seconds=rng.uniform(20.0, 1800.0))
                    conversions.write_row(
                        (experiment_id, goal_id, visitor, arm.variant_id, site_id, first, count, revenue)
                    )
                    out.conversions += 1
                    out.events += count
                if funnel_id is not None and rng.random() < funnel_share:
                    steps = rng.choice(FUNNEL_STEPS)
                    last = at + dt.timedelta(seconds=rng.uniform(5.0, 900.0))
                    funnels.write_row(
                        (experiment_id, funnel_id, visitor, arm.variant_id, site_id, steps, last)
                    )
                    out.funnel += 1
                    out.events += steps
                if (i + 1) % 10_000 == 0:
                    advance(i + 1 - reported)
                    reported = i + 1
        for conn in conns:
            conn.commit()
        done += n
        advance(done - reported)
        reported = done
        out.visitors += n
    return out


def explain_plan(conn: Any, query: str, params: Any) -> tuple[str, set[str]]:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of a query on a psycopg connection, in one line, and the tables it read.

    The line: execution ms, the plan's nodes breadth-first (parent <- children, with the table,
    index and parallel workers), and the shared buffers hit and read.
    """
    row = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {query}", params).fetchone()
    plan = (row[0] if row else [{}])[0]
    nodes: list[str] = []
    relations: set[str] = set()
    todo = [plan["Plan"]]
    while todo:
        node = todo.pop(0)
        label = {"Hashed": "HashAggregate", "Sorted": "GroupAggregate"}.get(
            node.get("Strategy", ""), node["Node Type"]
        )
        if node.get("Partial Mode", "Simple") != "Simple":
            label = f"{node['Partial Mode']} {label}"
        if "Relation Name" in node:
            relations.add(node["Relation Name"])
            label += f" on {node['Relation Name']}"
            if "Index Name" in node:
                label += f" using {node['Index Name']}"
        if node.get("Workers Launched"):
            label += f" ({node['Workers Launched']} workers)"
        nodes.append(label)
        todo.extend(node.get("Plans", []))
    hit = plan["Plan"].get("Shared Hit Blocks", 0)
    read = plan["Plan"].get("Shared Read Blocks", 0)
    line = f"{plan['Execution Time']:7.1f} ms  {' <- '.join(nodes)}  (buffers hit {hit:,}, read {read:,})"
    return line, relations


CHECKOUT_EXPERIMENT: dict[str, Any] = {
    "name": "Checkout button",
    "variants": [
        {"key": "control", "name": "Control", "weight": 50},
        {
            "key": "variant_1",
            "name": "Green button",
            "weight": 50,
            "changes": [{"type": "css", "css": ".cta{background:#0a7}"}],
        },
    ],
    "targeting": {"url_rules": [{"type": "contains", "value": "/"}]},
    "goals": [{"type": "custom_event", "name": "Purchase", "primary": True, "event_name": "purchase"}],
}
"""The A/B test the benchmarks create (control and one variant, a primary ``purchase`` goal)."""
