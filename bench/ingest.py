"""Event ingestion benchmark: ``POST /api/v1/events/batch`` and ``/events/track`` against raw ``COPY``.

The script creates a throwaway PostgreSQL database on the server of ``--pg-url``, migrates it with
``segmently migrate``, starts ``segmently serve --workers 2`` (the workspace venv's Python) on a free
loopback port with the public rate limit lifted (``SEGMENTLY_RATE_LIMIT_PUBLIC``), and through the
API signs up one user, moves the organization to the enterprise plan (``segmently orgs set-plan``: no
monthly visitor cap), creates a site and one live A/B experiment (control and one variant, a primary
``custom_event`` goal ``purchase`` and a click goal). Then, on the same database:

1. page views: ``POST /events/batch`` with 100 ``page_view`` events per request (about 45 KB: UUID-
   length visitor, session and event ids, a shop URL with UTM parameters, device type, client
   timestamp and a small ``event_data`` object; 20 visitors with 5 page views each);
2. conversion-heavy mix, 100 events per request: 30 visitors, each with an ``assignment`` to the
   experiment (30 %), 20 of them converting (20 %: ten ``conversion`` events with revenue for the
   primary goal, ten ``purchase`` custom events with revenue and currency), the rest page views;
   every conversion is attributed, so each batch upserts 30 ``experiment_visitors`` and 20
   ``experiment_conversions`` rows besides its 100 events;
3. raw COPY-100: the same page-view rows (fresh UUIDv7 ``id``, the same ``created_at``, ids, data
   text and columns as the endpoint writes) with psycopg ``COPY events (...) FROM STDIN``, 100 rows
   per ``COPY`` and one commit each, from ``--connections`` threads with a connection each: the
   ceiling the endpoint is compared with (it writes no ``event_keys`` and reads no experiments);
4. ``POST /events/track`` (one page view) paced at ``--track-rate`` requests/s, open loop: request
   ``j`` is due at ``start + j / rate`` on one of 16 keep-alive sockets (threads), and its latency
   runs from that due time, so waiting behind a slow answer counts (wrk2 is not available; plain
   wrk is closed loop and its latency would hide queueing);
5. ``POST /events/track`` at saturation, closed loop on ``--track-connections`` connections (32 by
   default: single events need more in flight than batches to saturate two workers; with 8 the
   server waits on the database between requests and is far from busy).
6. the peer of phases 4 and 5: ``bench/bare_track.py``, a bare ASGI track endpoint (uvicorn with
   uvloop and httptools, 2 workers on ``SO_REUSEPORT`` sockets, one key compared, msgspec decoding,
   the server's own one-statement insert from a psycopg pool, the same ``202``) on the same
   database, under the same paced and saturating load: the least a track request costs on this
   machine and stack, so the track rows also print ours / bare.

Every event carries a unique ``event_id`` (and visitors are unique per request): in each request the
ids start with 16 fresh hex digits, so nothing is refused as a duplicate. ``--event-ids v7`` (the
default) makes them time-ordered like the UUIDv7 ids the snippet and the Python SDK send: 10 hex
digits of the clock (16 ms steps) and a counter, so the ``event_keys`` index takes them near its right
edge as it takes real clients' ids of the same minute. ``--event-ids random`` starts them with random
digits instead (wrk: 8 random, then a counter; the Python client: 16 random), as a third-party client
with UUIDv4 ids would: every key lands at a random place in the index.
Every response must be exactly ``202`` with ``{"accepted":N,"duplicates":0,"rejected":{}}``;
anything else aborts the run.

Load generators: ``wrk`` (one thread, a Lua script that builds each body from a pre-built template by
splicing in the fresh ids, and checks every response) for phases 1, 2 and 5 if it is on the PATH,
else (or with ``--client python``) a thread-per-connection keep-alive socket client in this process;
phase 4 always uses that client. Phases 1-3 alternate for ``--rounds`` rounds of ``--warmup`` s
(discarded) + ``--duration`` s; figures are medians over rounds. For each measured span the script
also reports where the CPU went (cores used by the server's processes, the PostgreSQL backends of the
bench database, PostgreSQL's WAL writer/checkpointer/background writer, the client, and the rest of
the machine), read from ``/proc``. At the end it counts the stored rows.

Before each measured span of phases 1, 2, 4 and 5 the script runs ``ANALYZE`` on the tables ingestion
reads (``experiment_visitors``, ``experiment_conversions``, ``event_keys``, ``experiments``,
``variants``), as autovacuum keeps their statistics current on a running install: on a fresh database
without statistics, the generic plan PostgreSQL picks for the server's prepared visitors lookup
filters all of the site's assigned visitors instead of using the index on ``visitor_id``, and its
cost grows with every batch. ``--no-analyze`` leaves statistics to autovacuum to show that behaviour.

The server is stopped and the database dropped at the end, also on error, Ctrl-C or SIGTERM.

Run from the workspace root:  uv run python bench/ingest.py [--rounds 3] [--duration 5]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
from _harness import (
    CHECKOUT_EXPERIMENT,
    CLI,
    HOST,
    PASSWORD,
    CpuMeter,
    Server,
    free_port,
    parse_args,
    run_wrk,
    served,
    socket_load,
)
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from segmently.db.base import new_id
from segmently.domain.events.ingest import EVENT_COLUMNS

BATCH = 100
TRACK_SOCKETS = 16
PLACEHOLDER = "@"  # replaced by 16 fresh hex digits per request; never appears elsewhere in a body
COPY_SQL = f"COPY events ({', '.join(EVENT_COLUMNS)}) FROM STDIN"
GOALS = {
    "page views": ("≥ 50,000 events/s", 50_000.0),
    "ratio": ("≥ 0.45", 0.45),
    "track p99": ("≤ 5 ms", 5.0),
    "track saturation": ("≥ 3,000 req/s", 3000.0),
}

# wrk, one thread. args: template file (one body a line, ids as @), expected response body, seed, and
# the ids' clock prefix (10 hex digits; empty: random ids).
WRK_SCRIPT = """
local threads = {}

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  templates = {}
  for line in io.lines(args[1]) do
    local parts = {}
    for part in (line .. "@"):gmatch("(.-)@") do table.insert(parts, part) end
    table.insert(templates, parts)
  end
  expected = args[2]
  math.randomseed(tonumber(args[3]))
  prefix = args[4]
  n = 0
  unexpected = 0
  first_bad = ""
end

function request()
  n = n + 1
  local base
  if prefix == "" then
    base = string.format("%08x%08x", math.random(0, 0x7fffffff), n)
  else
    base = string.format("%s%06x", prefix, n)
  end
  return wrk.format(nil, nil, nil, table.concat(templates[n % #templates + 1], base))
end

function response(status, headers, body)
  if status ~= 202 or body ~= expected then
    if unexpected == 0 then
      first_bad = string.format("status %d: %s", status, (body or ""):sub(1, 120):gsub('[^%w%s:,_%.{}]', ''))
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

# ---------------------------------------------------------------------------------- data ---

PAGES = [
    ("/", "Shop – Home"),
    ("/pricing", "Pricing – Shop"),
    ("/product/{n}", "Trail running shoe {n} – Shop"),
    ("/product/{n}/reviews", "Reviews of product {n} – Shop"),
    ("/blog/spring-sale", "Spring sale: up to 40% off – Shop blog"),
    ("/cart", "Your cart – Shop"),
    ("/checkout", "Checkout – Shop"),
]
REFERRERS = ["https://www.google.com/", "https://duckduckgo.com/", "", "https://news.example.org/article/42"]
DEVICES = [("desktop", "1440x900"), ("mobile", "390x844"), ("tablet", "820x1180")]


class Event(msgspec.Struct, omit_defaults=True):
    """An event as the snippet sends it; ids hold :data:`PLACEHOLDER`."""

    event_name: str
    visitor_id: str
    event_id: str
    session_id: str
    url: str
    device_type: str
    timestamp: dt.datetime
    event_data: dict[str, Any]
    experiment_id: str | None = None
    variant_id: str | None = None


def _id(kind: str, n: int) -> str:
    return f"{PLACEHOLDER}-{kind}{n:03d}-4000-8000-0000"  # 36 characters once spliced, like a UUID


class Batches:
    """Events as the snippet sends them, with ids holding the placeholder (deterministic from ``rng``)."""

    def __init__(self, rng: random.Random, now: dt.datetime) -> None:
        self.rng = rng
        self.now = now
        self.serial = 0

    def page_view(self, visitor: int, at: dt.datetime, **extra: Any) -> Event:
        self.serial += 1
        path, title = self.rng.choice(PAGES)
        n = self.rng.randint(100, 9999)
        device, viewport = DEVICES[visitor % len(DEVICES)]
        return Event(
            event_name="page_view",
            visitor_id=_id("v", visitor),
            event_id=_id("e", self.serial % 1000),
            session_id=_id("s", visitor),
            url=f"https://shop.example.com{path.format(n=n)}?utm_source=newsletter&utm_medium=email",
            device_type=device,
            timestamp=at,
            event_data={
                "hidden_ms": self.rng.randint(0, 120),
                "title": title.format(n=n),
                "referrer": self.rng.choice(REFERRERS),
                "viewport": viewport,
            },
            **extra,
        )

    def page_views(self) -> list[Event]:
        """20 visitors with 5 page views each, a second apart."""
        self.serial = 0
        start = self.now - dt.timedelta(minutes=5)
        return [
            self.page_view(v, start + dt.timedelta(seconds=10 * v + i)) for v in range(20) for i in range(5)
        ]

    def mix(self, experiment_id: str, variants: list[str]) -> list[Event]:
        """30 assigned visitors: 30 assignments, 20 conversions with revenue, 50 page views."""
        self.serial = 0
        start = self.now - dt.timedelta(minutes=5)
        out: list[Event] = []
        for v in range(30):
            at = start + dt.timedelta(seconds=10 * v)
            assigned = {"experiment_id": experiment_id, "variant_id": variants[v % len(variants)]}
            out.append(self.page_view(v, at, **assigned))
            out[-1].event_name, out[-1].event_data = "assignment", {"changes_applied": 3}
            out += [self.page_view(v, at + dt.timedelta(seconds=1 + i)) for i in range(2 if v < 20 else 1)]
            if v < 20:
                converted = self.page_view(v, at + dt.timedelta(seconds=5))
                revenue = round(self.rng.uniform(9, 250), 2)
                if v < 10:
                    converted.event_name, converted.event_data = "conversion", {"revenue": revenue}
                else:
                    converted.event_name = "purchase"
                    converted.event_data = {"revenue": revenue, "currency": "EUR", "items": v % 4 + 1}
                out.append(converted)
        assert len(out) == BATCH
        return out

    def track(self) -> list[Event]:
        self.serial = 0
        return [self.page_view(self.rng.randint(0, 999), self.now - dt.timedelta(seconds=30))]


def body_template(events: list[Event]) -> str:
    """The request body as one line of JSON, ids holding the placeholder."""
    return msgspec.json.encode({"events": events} if len(events) > 1 else events[0]).decode()


def copy_rows(events: list[Event], site_id: str) -> list[tuple[Any, ...]]:
    """The rows the endpoint writes for ``events``, without ``id``; ids still start with the placeholder."""
    return [
        (
            e.timestamp,
            site_id,
            e.event_name,
            e.visitor_id,
            e.session_id,
            e.experiment_id,
            e.variant_id,
            msgspec.json.encode(e.event_data).decode(),
            e.url,
            e.device_type,
            e.event_id,
        )
        for e in events
    ]


TIME_ORDERED = True
"""``--event-ids v7``: the ids' first 16 hex digits follow the clock (see the module's docstring)."""
_serial = itertools.count()


def clock_prefix() -> str:
    """10 hex digits of the clock in 16 ms steps: later calls never sort before earlier ones."""
    return f"{time.time_ns() >> 24:010x}"


def fresh_base() -> str:
    """The 16 hex digits that start every id of one request."""
    if TIME_ORDERED:
        return f"{clock_prefix()}{next(_serial) & 0xFFFFFF:06x}"
    return f"{random.getrandbits(32):08x}{random.getrandbits(32):08x}"


# ----------------------------------------------------------------------------- the site ---


def populate(server: Server) -> tuple[str, str, str, list[str]]:
    """An enterprise organization, a site and a live experiment: (API key, site id, experiment, variants)."""
    with httpx.Client(base_url=server.base, timeout=30) as client:
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
            env=server.env,
            check=True,
            capture_output=True,
        )
        client.headers["Authorization"] = f"Bearer {body['token']}"
        site = client.post("/api/v1/projects", json={"name": "Shop", "url": "https://shop.example.com"})
        site.raise_for_status()
        experiment = {
            **CHECKOUT_EXPERIMENT,
            "goals": [
                *CHECKOUT_EXPERIMENT["goals"],
                {"type": "click", "name": "CTA click", "selector": ".cta"},
            ],
        }
        made = client.post(f"/api/v1/projects/{site.json()['id']}/experiments", json=experiment)
        if made.status_code != 201:
            raise RuntimeError(f"experiment: {made.status_code} {made.text}")
        started = client.post(f"/api/v1/experiments/{made.json()['id']}/start")
        if started.status_code != 200:
            raise RuntimeError(f"start experiment: {started.status_code} {started.text}")
        variants = [v["id"] for v in made.json()["variants"]]
    return site.json()["api_key"], site.json()["id"], made.json()["id"], variants


# ------------------------------------------------------------------------------ phases ---


def expected(accepted: int) -> bytes:
    return msgspec.json.encode({"accepted": accepted, "duplicates": 0, "rejected": {}})


def http_phase(
    tool: str,
    server: Server,
    path: str,
    key: str,
    templates: list[str],
    per_request: int,
    seconds: float,
    connections: int,
    meter: CpuMeter | None = None,
) -> dict[str, Any]:
    """One closed-loop run; with ``meter``, also the cores used (``cpu``)."""
    answer = expected(per_request)
    headers = {"X-API-Key": key}
    cpu: dict[str, float] = {}
    with meter.span() if meter is not None else contextlib.nullcontext(cpu) as cpu:
        if tool == "wrk":
            file = server.tmp / f"templates-{fresh_base()}.txt"
            file.write_text("\n".join(templates) + "\n")
            script = server.tmp / "ingest.lua"
            script.write_text(WRK_SCRIPT)
            prefix = clock_prefix() if TIME_ORDERED else ""
            args = (str(file), answer.decode(), str(random.getrandbits(31)), prefix)
            result = run_wrk(server.base + path, headers, seconds, connections, script, args)
        else:
            parts = [t.encode().split(PLACEHOLDER.encode()) for t in templates]

            def body(n: int) -> bytes:
                return fresh_base().encode().join(parts[n % len(parts)])

            result = socket_load(
                server.base,
                path,
                headers | {"Content-Type": "application/json"},
                body,
                seconds,
                connections,
                (202, answer),
            )
    if result["errors"]:
        raise RuntimeError(
            f"{path}: {result['errors']} of {result['requests']} responses were not 202 {answer.decode()} "
            f"(first: {result['first_bad'] or 'socket error'})"
        )
    return result | {"events": result["rps"] * per_request, "cpu": cpu}


def copy_phase(
    pg_url: str,
    rows: list[list[tuple[Any, ...]]],
    warmup: float,
    seconds: float,
    connections: int,
    meter: CpuMeter,
) -> dict[str, Any]:
    """Raw COPY-100 from ``connections`` threads: rows/s over ``seconds`` after ``warmup``."""
    dsn = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    conns = [psycopg.connect(dsn) for _ in range(connections)]
    counts = [0] * connections
    stop = threading.Event()
    failures: list[BaseException] = []

    def worker(k: int) -> None:
        conn, n = conns[k], k
        try:
            while not stop.is_set():
                base = fresh_base()
                with conn.cursor() as cur, cur.copy(COPY_SQL) as copy:
                    for at, site, name, vis, ses, exp, var, data, url, device, eid in rows[n % len(rows)]:
                        copy.write_row(
                            (
                                new_id(),
                                at,
                                site,
                                name,
                                base + vis[1:],
                                base + ses[1:],
                                exp,
                                var,
                                data,
                                url,
                                device,
                                base + eid[1:],
                            )
                        )
                conn.commit()
                counts[k] += len(rows[n % len(rows)])
                n += connections
        except BaseException as e:
            failures.append(e)
            stop.set()

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(connections)]
    try:
        for t in threads:
            t.start()
        time.sleep(warmup)
        with meter.span() as cpu:
            before, t0 = sum(counts), time.perf_counter()
            stop.wait(seconds)
            after, t1 = sum(counts), time.perf_counter()
        stop.set()
        for t in threads:
            t.join()
    finally:
        stop.set()
        for conn in conns:
            conn.close()
    if failures:
        raise RuntimeError(f"COPY baseline failed: {failures[0]!r}")
    return {"events": (after - before) / (t1 - t0), "cpu": cpu}


def paced_track(
    server: Server,
    key: str,
    templates: list[str],
    args: argparse.Namespace,
    meter: CpuMeter,
    ready: Callable[[], None],
) -> dict[str, Any]:
    """Phase 4: ``/events/track`` open loop at ``args.track_rate``; ``ready`` runs after the warm-up."""
    parts = [t.encode().split(PLACEHOLDER.encode()) for t in templates]

    def body(n: int) -> bytes:
        return fresh_base().encode().join(parts[n % len(parts)])

    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    answer, path = (202, expected(1)), "/api/v1/events/track"
    socket_load(server.base, path, headers, body, args.warmup, TRACK_SOCKETS, answer, args.track_rate)
    ready()
    with meter.span() as cpu:
        paced = socket_load(
            server.base, path, headers, body, args.track_seconds, TRACK_SOCKETS, answer, args.track_rate
        )
    if paced["errors"]:
        raise RuntimeError(f"/events/track: {paced['errors']} failed (first: {paced['first_bad']})")
    return paced | {"cpu": cpu, "events": paced["rps"]}


def analyze(url: str) -> None:
    """Fresh planner statistics for the tables ingestion reads, as autovacuum keeps them on a live install."""
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("ANALYZE experiment_visitors, experiment_conversions, event_keys, experiments, variants")


# ---------------------------------------------------------------------------- progress ---


class Plan:
    """A rich progress bar over the planned seconds of all phases, moved by the wall clock."""

    def __init__(self, console: Console, total: float) -> None:
        self.progress = Progress(
            TextColumn("{task.description:44}"),
            BarColumn(),
            TextColumn("{task.completed:>4.0f}/{task.total:.0f} s"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task("starting", total=total)
        self.done = 0.0

    @contextlib.contextmanager
    def phase(self, label: str, seconds: float) -> Iterator[None]:
        """Advance the bar by ``seconds`` over the block, at the wall clock's pace."""
        stop = threading.Event()
        start = time.monotonic()
        self.progress.update(self.task, description=label)

        def tick() -> None:
            while not stop.wait(0.2):
                self.progress.update(self.task, completed=self.done + min(seconds, time.monotonic() - start))

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            yield
        finally:
            stop.set()
            ticker.join()
            self.done += seconds
            self.progress.update(self.task, completed=self.done)


# ----------------------------------------------------------------------------- report ---

CPU_GROUPS = ("server", "postgres", "pg aux", "client", "other")


def cpu_line(label: str, samples: list[dict[str, Any]]) -> str:
    """Median cores per group, then CPU µs per event (track: per request) of the app side and PostgreSQL.

    For raw COPY the server side is the COPY client itself.
    """
    cells = "".join(f"{statistics.median(s['cpu'].get(g, 0.0) for s in samples):>9.2f}" for g in CPU_GROUPS)
    side = "client" if label == "raw COPY" else "server"
    per_event = [
        f"{statistics.median(s['cpu'].get(g, 0.0) / s['events'] * 1e6 for s in samples):>9.0f}"
        for g in (side, "postgres")
    ]
    return f"{label:34}{cells}{''.join(per_event)}"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


@contextlib.contextmanager
def bare_server(server: Server, site_id: str, api_key: str, workers: int = 2) -> Iterator[Server]:
    """``bench/bare_track.py`` on the same database with ``workers`` workers, until exit."""
    port = free_port()
    url = server.env["SEGMENTLY_DATABASE_URL"]
    script = Path(__file__).with_name("bare_track.py")
    with (server.tmp / "bare.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(script), str(port), str(workers), url, site_id, api_key],
            env=server.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers go with it
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"bare_track.py did not start:\n{(server.tmp / 'bare.log').read_text()}")
            time.sleep(0.1)
        time.sleep(0.5)  # the second worker binds its socket too
        yield Server(base=f"http://{HOST}:{port}", env=server.env, tmp=server.tmp, pid=proc.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)


def report(
    args: argparse.Namespace,
    tool: str,
    samples: dict[str, list[dict[str, Any]]],
    paced: dict[str, Any],
    bare_paced: dict[str, Any],
    elapsed: float,
    load_before: float,
    stored: dict[str, int],
) -> None:
    med = {name: statistics.median(s["events"] for s in rows) for name, rows in samples.items()}
    pv, mix, raw, sat = med["page views"], med["mix"], med["raw COPY"], med["track saturation"]
    bare_sat = med["bare saturation"]
    p50 = {
        name: statistics.median(s["p50"] for s in rows)
        for name, rows in samples.items()
        if name != "raw COPY"
    }
    p99 = {
        name: statistics.median(s["p99"] for s in rows)
        for name, rows in samples.items()
        if name != "raw COPY"
    }
    print(
        f"\nPostgreSQL, segmently serve --workers 2, load by {tool} ({args.connections} connections, "
        f"{args.track_connections} for /events/track saturation; /events/track paced by the socket "
        f"client on {TRACK_SOCKETS} sockets); {args.rounds} rounds of "
        f"{args.warmup:g} s warm-up + {args.duration:g} s, medians over rounds ({elapsed:.0f} s in all); "
        f"client event ids {'time-ordered (v7)' if TIME_ORDERED else 'random'}; "
        f"1-min load average before {load_before:.2f}, after {os.getloadavg()[0]:.2f}; "
        f"{'no ANALYZE' if args.no_analyze else 'ANALYZE before each measured span'}\n"
        f"stored: {stored}\n"
    )
    print(f"{'':34}{'events/s':>10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}   goal")
    print(
        f"{'page views, batches of 100':34}{pv:10.0f}{pv / BATCH:9.0f}{p50['page views']:9.1f}"
        f"{p99['page views']:9.1f}   {GOALS['page views'][0]}: {verdict(pv >= GOALS['page views'][1])}"
    )
    print(
        f"{'conversion mix, batches of 100':34}{mix:10.0f}{mix / BATCH:9.0f}"
        f"{p50['mix']:9.1f}{p99['mix']:9.1f}"
    )
    print(f"{f'raw COPY-100, {args.connections} connections':34}{raw:10.0f}{raw / BATCH:9.0f}")
    print(
        f"{'ratio page views / raw COPY':34}{pv / raw:10.2f}{'':27}   {GOALS['ratio'][0]}: "
        f"{verdict(pv / raw >= GOALS['ratio'][1])}"
    )
    print(f"{'ratio conversion mix / raw COPY':34}{mix / raw:10.2f}")
    print(f"{'ratio conversion mix / page views':34}{mix / pv:10.2f}")
    print(
        f"{f'/events/track paced {args.track_rate:g}/s':34}{'':10}{paced['rps']:9.0f}{paced['p50']:9.2f}"
        f"{paced['p99']:9.2f}   p99 {GOALS['track p99'][0]}: {verdict(paced['p99'] <= GOALS['track p99'][1])}"
    )
    print(
        f"{'  (from the actual send)':34}{'':19}{paced['service_p50']:9.2f}{paced['service_p99']:9.2f}"
        f"   send lag p99 {paced['lag_p99']:.2f} ms"
    )
    print(
        f"{'  bare endpoint, same pacing':34}{'':10}{bare_paced['rps']:9.0f}{bare_paced['p50']:9.2f}"
        f"{bare_paced['p99']:9.2f}   p99 ours / bare {paced['p99'] / bare_paced['p99']:.2f}"
    )
    print(
        f"{'/events/track saturation':34}{'':10}{sat:9.0f}{p50['track saturation']:9.1f}"
        f"{p99['track saturation']:9.1f}   {GOALS['track saturation'][0]}: "
        f"{verdict(sat >= GOALS['track saturation'][1])}"
    )
    print(
        f"{'  bare endpoint, saturation':34}{'':10}{bare_sat:9.0f}{p50['bare saturation']:9.1f}"
        f"{p99['bare saturation']:9.1f}   ours / bare {sat / bare_sat:.2f}"
    )
    print("\nwhere the CPU went: cores used, then CPU µs per event (track: per request); medians")
    print(f"{'':34}" + "".join(f"{g:>9}" for g in CPU_GROUPS) + f"{'µs app':>9}{'µs pg':>9}")
    for name, rows in samples.items():
        print(cpu_line(name, rows))
    print(cpu_line(f"track paced {args.track_rate:g}/s", [paced]))
    print(cpu_line(f"bare paced {args.track_rate:g}/s", [bare_paced]))
    per_round = {name: [round(s["events"]) for s in rows] for name, rows in samples.items()}
    print(f"\nevents/s (track: requests/s) per round: {per_round}")


# -------------------------------------------------------------------------------- main ---


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pg-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432",
        help="PostgreSQL server (no database)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of phases 1-3 (default 3)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per phase (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds discarded before each (default 1)")
    parser.add_argument("--connections", type=int, default=8, help="client connections (default 8)")
    parser.add_argument(
        "--track-rate", type=float, default=500.0, help="paced /events/track req/s (default 500)"
    )
    parser.add_argument("--track-seconds", type=float, default=10.0, help="paced phase length (default 10)")
    parser.add_argument(
        "--track-connections",
        type=int,
        default=32,
        help="client connections of the /events/track saturation phase (default 32)",
    )
    parser.add_argument(
        "--client",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="wrk if installed (auto), or python",
    )
    parser.add_argument(
        "--event-ids",
        choices=["v7", "random"],
        default="v7",
        help="client event ids time-ordered like the snippet's UUIDv7 (default) or random like UUIDv4",
    )
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="leave planner statistics to autovacuum (a fresh database's plans)",
    )
    args, tool = parse_args(parser, fallback="python")
    global TIME_ORDERED
    TIME_ORDERED = args.event_ids == "v7"
    if not (10 <= args.track_rate <= 20_000 and 1 <= args.track_seconds <= 60):
        parser.error("bounds: track rate 10-20000 req/s, 1-60 s")

    console = Console(stderr=True)
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    rng = random.Random(20261126)
    limits = {"SEGMENTLY_RATE_LIMIT_PUBLIC": "1000000000/minute"}
    with served("postgresql", args.pg_url, workers=2, extra_env=limits) as server:
        database = server.env["SEGMENTLY_DATABASE_URL"].rsplit("/", 1)[1]
        api_key, site_id, experiment_id, variants = populate(server)
        batches = Batches(rng, dt.datetime.now(dt.UTC).replace(microsecond=0))
        pv_events = [batches.page_views() for _ in range(16)]
        page_views = [body_template(b) for b in pv_events]
        mix = [body_template(batches.mix(experiment_id, variants)) for _ in range(16)]
        track = [body_template(batches.track()) for _ in range(64)]
        rows = [copy_rows(b, site_id) for b in pv_events]
        meter = CpuMeter(server.pid, args.pg_url, database)
        console.print(
            f"site {site_id}, experiment {experiment_id}; bodies of {len(page_views[0]) // 1024} KB "
            f"(page views), {len(mix[0]) // 1024} KB (mix), {len(track[0])} B (track); load by {tool}"
        )

        span = args.warmup + args.duration
        plan = Plan(console, args.rounds * 3 * span + 2 * (args.warmup + args.track_seconds + span))
        samples: dict[str, list[dict[str, Any]]] = {
            "page views": [],
            "mix": [],
            "raw COPY": [],
            "track saturation": [],
            "bare saturation": [],
        }

        def ready() -> None:
            if not args.no_analyze:
                analyze(server.env["SEGMENTLY_DATABASE_URL"])

        def http(name: str, path: str, templates: list[str], n: int, connections: int) -> Callable[[], None]:
            def run() -> None:
                http_phase(tool, server, path, api_key, templates, n, args.warmup, connections)
                ready()
                result = http_phase(
                    tool, server, path, api_key, templates, n, args.duration, connections, meter
                )
                samples[name].append(result)
                console.print(f"  {name}: {result['events']:,.0f} events/s, p99 {result['p99']:.1f} ms")

            return run

        def raw() -> None:
            url = server.env["SEGMENTLY_DATABASE_URL"]
            result = copy_phase(url, rows, args.warmup, args.duration, args.connections, meter)
            samples["raw COPY"].append(result)
            console.print(f"  raw COPY: {result['events']:,.0f} rows/s")

        phases = {
            "page views": http("page views", "/api/v1/events/batch", page_views, BATCH, args.connections),
            "raw COPY": raw,
            "mix": http("mix", "/api/v1/events/batch", mix, BATCH, args.connections),
        }
        with plan.progress:
            for i in range(args.rounds):
                for name, run in phases.items():
                    with plan.phase(f"round {i + 1}/{args.rounds}: {name}", span):
                        run()
            with plan.phase(
                f"/events/track paced at {args.track_rate:g}/s", args.warmup + args.track_seconds
            ):
                paced = paced_track(server, api_key, track, args, meter, ready)
            with plan.phase("/events/track saturation", span):
                http("track saturation", "/api/v1/events/track", track, 1, args.track_connections)()
            with bare_server(server, site_id, api_key) as bare:
                bare_meter = CpuMeter(bare.pid, args.pg_url, database)
                with plan.phase(
                    f"bare endpoint paced at {args.track_rate:g}/s", args.warmup + args.track_seconds
                ):
                    bare_paced = paced_track(bare, api_key, track, args, bare_meter, ready)
                with plan.phase("bare endpoint saturation", span):
                    path, n = "/api/v1/events/track", args.track_connections
                    http_phase(tool, bare, path, api_key, track, 1, args.warmup, n)
                    ready()
                    result = http_phase(tool, bare, path, api_key, track, 1, args.duration, n, bare_meter)
                    samples["bare saturation"].append(result)
        with psycopg.connect(server.env["SEGMENTLY_DATABASE_URL"].replace("+psycopg", "")) as conn:
            stored = {}
            for table in ("events", "event_keys", "experiment_visitors", "experiment_conversions"):
                row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
                stored[table] = int(row[0]) if row else -1
        log = (server.tmp / "server.log").read_text()
        if "Traceback" in log or " ERROR " in log:
            console.print(f"[red]the server logged errors:[/red]\n{log[-3000:]}")
    report(args, tool, samples, paced, bare_paced, time.monotonic() - started, load_before, stored)


if __name__ == "__main__":
    main()
