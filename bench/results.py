"""Results benchmark: ``GET /api/v1/experiments/{id}/results`` at 100k, 1M and 5M visitors, against bare SQL.

The script creates a throwaway PostgreSQL database on the server of ``--pg-url``, migrates it with
``segmently migrate``, starts ``segmently serve --workers 1`` (the workspace venv's Python) on a free
loopback port, with its scheduler off (``SEGMENTLY_SCHEDULER=off``: no job reads the tables while
they are timed), and, through the API, signs up one user, moves the organization to the enterprise
plan (``segmently orgs set-plan``), creates a site and one live A/B experiment: control and one
variant (50/50), a primary ``custom_event`` goal ``purchase`` and a four-step funnel (home, product, cart,
checkout). The experiment's ``activated_at`` is then set 14 days back, as if it had run that long.

For each scale in ``--scales`` (visitors; default 100k, 1M, 5M, loaded cumulatively into the same
experiment) it writes, with psycopg ``COPY ... (FORMAT BINARY)`` on three connections, the rows
ingestion would have left (see ``_harness.copy_experiment_rows``): ``experiment_visitors`` split
exactly 50/50, ``assigned_at`` spread evenly over the 14 days, 30 % bounced and the others with 0-4
time-on-page events; ``experiment_conversions`` for exactly 10 % of the control's and 11 % of the
variant's visitors (one or two conversions with revenue); ``funnel_progress`` for about 25 % of the
visitors (1-4 steps). Then ``VACUUM ANALYZE`` on the three tables (an insert-only table is vacuumed
by autovacuum too; the visibility map it sets lets index-only scans skip the heap).

The results query depends on visitors, not events: it reads these three per-visitor tables with one
``GROUP BY`` each and never ``events``, which the script checks in the ``EXPLAIN`` of every query.
The issue's scales count events; a visitor stands for at least one event (its assignment) and here
for about 3.2 (assignment, time-on-page or bounce, conversions, funnel steps, page views not
counted), so N visitors is the harder case for N events. The table shows those implied events.
``--events N`` loads N rows into ``events`` after the last scale and measures that scale again.

At each scale, after 2 warm-ups each, it times ``--requests`` requests alternating between:

- HTTP: ``GET /api/v1/experiments/{id}/results`` with the user's bearer token, one keep-alive httpx
  connection, wall time to the full body (checked: the visitors and conversions it reports must be
  the rows written);
- bare SQL, the limit: the same three aggregates (visitors per variant and day, converters per
  variant, goal and day, funnel visitors per step) with psycopg on one connection, in a transaction
  with ``SET LOCAL jit = off`` as the app does, all rows fetched.

It prints the medians, the ratio HTTP / bare SQL, the ratio to the goal (300 ms at 1M visitors), the
milliseconds per million visitors at each scale (linear growth keeps it flat) and the execution time
and plan shape of each query from ``EXPLAIN (ANALYZE, BUFFERS)``. With ``--try-fixes`` it also
measures each scale, in the bench database only (the migrations are not touched), with candidate
fixes applied one after the other (see ``FIXES``): a covering index ``experiment_visitors
(experiment_id, variant_id) INCLUDE (assigned_at, time_on_page_s, time_on_page_n, bounced)``, then
also extended statistics (``ndistinct``) on the ``GROUP BY`` keys of the visitors and conversions
queries, then the statistics alone; everything is dropped again before the next scale.

The server is stopped and the database dropped at the end, also on error, Ctrl-C or SIGTERM.

Run from the workspace root:  uv run python bench/results.py [--scales 100000,1000000,5000000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import random
import signal
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
from _harness import (
    CHECKOUT_EXPERIMENT,
    ArmPlan,
    Generated,
    Owner,
    copy_connections,
    copy_experiment_rows,
    enterprise_owner,
    explain_plan,
    live_experiment,
    psycopg_url,
    served,
)
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from segmently.db.base import new_id
from segmently.domain.events.ingest import EVENT_COLUMNS

GOAL_MS = 300.0
GOAL_AT = 1_000_000
DAYS = 14
RATES = (0.10, 0.11)  # converters among control's and the variant's visitors
COVERING_INDEX = "bench_experiment_visitors_covering"
TABLES = ("experiment_visitors", "experiment_conversions", "funnel_progress")

# the statements queries.visitor_days, conversion_days and funnel_counts send (constants inlined)
QUERIES = {
    "visitors": (
        "SELECT variant_id, CAST(timezone('UTC', assigned_at) AS DATE) AS day, count(*),"
        " coalesce(sum(time_on_page_s), 0.0), coalesce(sum(time_on_page_n), 0),"
        " coalesce(sum(CASE WHEN bounced THEN 1 ELSE 0 END), 0)"
        " FROM experiment_visitors WHERE experiment_id = %(e)s"
        " GROUP BY variant_id, CAST(timezone('UTC', assigned_at) AS DATE)"
    ),
    "conversions": (
        "SELECT variant_id, goal_id, CAST(timezone('UTC', first_at) AS DATE) AS day, count(*),"
        " coalesce(sum(revenue), 0.0), coalesce(sum(revenue * revenue), 0.0)"
        " FROM experiment_conversions WHERE experiment_id = %(e)s"
        " GROUP BY variant_id, goal_id, CAST(timezone('UTC', first_at) AS DATE)"
    ),
    "funnel": (
        "SELECT funnel_id, variant_id, steps, count(*) FROM funnel_progress"
        " WHERE experiment_id = %(e)s GROUP BY funnel_id, variant_id, steps"
    ),
}

EXPERIMENT = {
    **CHECKOUT_EXPERIMENT,
    "funnels": [
        {
            "name": "Checkout",
            "steps": [
                {"label": "Home", "url": "/"},
                {"label": "Product", "url": "/product"},
                {"label": "Cart", "url": "/cart"},
                {"label": "Checkout", "url": "/checkout", "event_name": "purchase"},
            ],
        }
    ],
}


@dataclass(frozen=True)
class Setup:
    """The experiment under test: its id, the variants (control first), the goal and funnel ids."""

    experiment_id: str
    site_id: str
    variants: list[str]
    goal_id: str
    funnel_id: str


@dataclass
class Row:
    """One measured configuration: a scale, maybe with a fix or a filled ``events`` table."""

    label: str
    visitors: int
    events: int
    http: list[float] = field(default_factory=list)
    sql: list[float] = field(default_factory=list)
    plans: dict[str, str] = field(default_factory=dict)


# ----------------------------------------------------------------------------- setup ---


def set_up(server: Any, client: httpx.Client) -> tuple[Owner, Setup]:
    """The enterprise owner and the live experiment, made through the API and dated 14 days back."""
    owner = enterprise_owner(server, client)
    made = live_experiment(client, owner, EXPERIMENT)
    started = dt.datetime.now(dt.UTC) - dt.timedelta(days=DAYS)
    with psycopg.connect(psycopg_url(server.env["SEGMENTLY_DATABASE_URL"]), autocommit=True) as conn:
        conn.execute(
            "UPDATE experiments SET activated_at = %s, created_at = %s WHERE id = %s",
            (started, started, made["id"]),
        )
    return owner, Setup(
        experiment_id=made["id"],
        site_id=owner.site_id,
        variants=[v["id"] for v in made["variants"]],
        goal_id=made["goals"][0]["id"],
        funnel_id=made["funnels"][0]["id"],
    )


def vacuum_analyze(url: str, tables: tuple[str, ...] = TABLES) -> None:
    """``VACUUM (ANALYZE)`` the tables: statistics and the visibility map, as autovacuum leaves them."""
    with psycopg.connect(psycopg_url(url), autocommit=True) as conn:
        for table in tables:
            conn.execute(f"VACUUM (ANALYZE) {table}")


def load_events(url: str, setup: Setup, n: int, rng: random.Random, progress: Progress) -> None:
    """``n`` page views of the experiment's site in ``events`` (text COPY, as ingestion writes them)."""
    task = progress.add_task(f"COPY {n:,} events", total=n)
    now = time.time()
    data = json.dumps({"title": "Shop", "referrer": "https://www.google.com/", "viewport": "390x844"})
    with psycopg.connect(psycopg_url(url)) as conn:
        for start in range(0, n, 250_000):
            with conn.cursor().copy(f"COPY events ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
                for i in range(start, min(n, start + 250_000)):
                    at = dt.datetime.fromtimestamp(now - rng.random() * DAYS * 86400, dt.UTC)
                    visitor = f"{rng.getrandbits(64):016x}"
                    copy.write_row(
                        (
                            new_id(),
                            at,
                            setup.site_id,
                            "page_view",
                            visitor,
                            visitor,
                            None,
                            None,
                            data,
                            f"https://shop.example.com/product/{i % 5000}",
                            "mobile",
                            f"{rng.getrandbits(64):016x}",
                        )
                    )
            conn.commit()
            progress.update(task, completed=min(n, start + 250_000))
    vacuum_analyze(url, ("events",))


# --------------------------------------------------------------------------- measure ---


def http_once(client: httpx.Client, path: str, owner: Owner) -> tuple[float, dict[str, Any]]:
    """One results request: wall ms to the whole body, and the body."""
    t0 = time.perf_counter()
    response = client.get(path, headers=owner.headers)
    elapsed = (time.perf_counter() - t0) * 1e3
    if response.status_code != 200:
        raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
    return elapsed, response.json()


def sql_once(conn: psycopg.Connection[Any], experiment_id: str) -> float:
    """The three aggregates in one transaction without JIT, all rows fetched: wall ms."""
    t0 = time.perf_counter()
    with conn.transaction():
        conn.execute("SET LOCAL jit = off")
        for query in QUERIES.values():
            conn.execute(query, {"e": experiment_id}).fetchall()
    return (time.perf_counter() - t0) * 1e3


def check_body(body: dict[str, Any], expected: Generated) -> None:
    """The response counts every visitor and converter written."""
    visitors = sum(v["visitors"] for v in body["variants"])
    conversions = sum(v["conversions"] for v in body["variants"])
    if (visitors, conversions) != (expected.visitors, expected.conversions):
        raise RuntimeError(
            f"results report {visitors} visitors and {conversions} conversions, "
            f"{expected.visitors} and {expected.conversions} were written"
        )


def explain(conn: psycopg.Connection[Any], experiment_id: str) -> dict[str, str]:
    """Per query: execution ms and the plan's node chain, from ``EXPLAIN (ANALYZE, BUFFERS)``.

    Raises if any plan reads a table other than the three per-visitor tables (``events`` above all).
    """
    out = {}
    with conn.transaction():
        conn.execute("SET LOCAL jit = off")
        for name, query in QUERIES.items():
            out[name], relations = explain_plan(conn, query, {"e": experiment_id})
            if not relations <= set(TABLES):
                raise RuntimeError(f"the {name} query reads {sorted(relations)}")
    return out


def measure(
    row: Row, client: httpx.Client, owner: Owner, setup: Setup, url: str, expected: Generated, args: Any
) -> Row:
    """2 warm-ups each, then ``args.requests`` alternating HTTP and bare-SQL timings; the plans."""
    path = f"/api/v1/experiments/{setup.experiment_id}/results"
    with psycopg.connect(psycopg_url(url), autocommit=True) as conn:
        for _ in range(args.warmups):
            _, body = http_once(client, path, owner)
            check_body(body, expected)
            sql_once(conn, setup.experiment_id)
        for _ in range(args.requests):
            elapsed, body = http_once(client, path, owner)
            row.http.append(elapsed)
            row.sql.append(sql_once(conn, setup.experiment_id))
        check_body(body, expected)
        row.plans = explain(conn, setup.experiment_id)
    return row


FIXES: list[tuple[str, list[str], tuple[str, ...]]] = [
    # (label, statements on top of the previous step, tables to VACUUM ANALYZE after them)
    (
        "covering index",
        [
            f"CREATE INDEX {COVERING_INDEX} ON experiment_visitors (experiment_id, variant_id)"
            " INCLUDE (assigned_at, time_on_page_s, time_on_page_n, bounced)"
        ],
        ("experiment_visitors",),
    ),
    (
        "covering index + statistics",
        [
            "CREATE STATISTICS bench_visitor_days (ndistinct) ON variant_id,"
            " (CAST(timezone('UTC', assigned_at) AS DATE)) FROM experiment_visitors",
            "CREATE STATISTICS bench_conversion_days (ndistinct) ON variant_id, goal_id,"
            " (CAST(timezone('UTC', first_at) AS DATE)) FROM experiment_conversions",
        ],
        ("experiment_visitors", "experiment_conversions"),
    ),
    ("statistics", [f"DROP INDEX {COVERING_INDEX}"], ("experiment_visitors",)),
]
"""Candidate fixes, tried in this order at each scale with ``--try-fixes`` (bench database only).

The covering index lets the visitors query read (experiment_id, variant_id, assigned_at, time on
page, bounced) from the index alone. The statistics give the planner the number of groups of
each ``GROUP BY`` (without them it assumes one group per row, so it never aggregates in parallel
and sorts conversions instead of hashing them).
"""
UNDO_FIXES = ("DROP STATISTICS bench_visitor_days", "DROP STATISTICS bench_conversion_days")


def apply(url: str, statements: list[str] | tuple[str, ...], tables: tuple[str, ...]) -> float:
    """Run DDL statements, then VACUUM ANALYZE ``tables``; seconds taken."""
    t0 = time.perf_counter()
    with psycopg.connect(psycopg_url(url), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
    if tables:
        vacuum_analyze(url, tables)
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------- report ---


def report(rows: list[Row], args: Any, load_before: float, elapsed: float, sizes: dict[str, str]) -> None:
    """The table of medians, the growth check and the plans."""
    print(
        f"\nPostgreSQL, segmently serve --workers 1, one keep-alive connection; {args.warmups} warm-ups, "
        f"then median of {args.requests} requests alternating HTTP / bare SQL ({elapsed:.0f} s in all); "
        f"1-min load average before {load_before:.2f}, after {os.getloadavg()[0]:.2f}"
    )
    print(f"table sizes at the end (heap + indexes): {sizes}\n")
    print(
        f"{'':36}{'visitors':>10}{'events≥':>11}{'HTTP ms':>9}{'min':>7}{'max':>7}{'SQL ms':>8}"
        f"{'HTTP/SQL':>9}{'/goal':>7}{'ms per 1M':>10}"
    )
    for r in rows:
        http, sql = statistics.median(r.http), statistics.median(r.sql)
        verdict = ""
        if r.visitors == GOAL_AT:
            verdict = f"   ≤ {GOAL_MS:.0f} ms: {'met' if http <= GOAL_MS else 'MISSED'}"
        print(
            f"{r.label:36}{r.visitors:10,}{r.events:11,}{http:9.1f}{min(r.http):7.1f}{max(r.http):7.1f}"
            f"{sql:8.1f}{http / sql:9.2f}{http / GOAL_MS:7.2f}{http / r.visitors * 1e6:10.1f}{verdict}"
        )
    plain = [r for r in rows if r.label.endswith(" visitors")]
    if len(plain) >= 2:
        print("\ngrowth between scales (linear: the ratio of visitors):")
        for a, b in itertools.pairwise(plain):
            ha, hb = statistics.median(a.http), statistics.median(b.http)
            sa, sb = statistics.median(a.sql), statistics.median(b.sql)
            added = (b.visitors - a.visitors) / 1e6
            print(
                f"  {a.visitors:,} → {b.visitors:,}: visitors ×{b.visitors / a.visitors:.1f}, "
                f"HTTP ×{hb / ha:.2f}, SQL ×{sb / sa:.2f}; marginal HTTP {(hb - ha) / added:.1f} ms "
                f"per 1M visitors, SQL {(sb - sa) / added:.1f}"
            )
    print("\nEXPLAIN (ANALYZE, BUFFERS), jit off: execution time and plan (parent <- children)")
    for r in rows:
        print(f"  {r.label}:")
        for name, line in r.plans.items():
            print(f"    {name:12}{line}")
    per = {
        f"{r.visitors:,}{' ' + r.label.strip() if r.label.startswith(' ') else ''}": (
            [round(x, 1) for x in r.http],
            [round(x, 1) for x in r.sql],
        )
        for r in rows
    }
    print(f"\nHTTP and SQL ms per request: {per}")


def table_sizes(url: str) -> dict[str, str]:
    """Heap and indexes of the three tables and of ``events`` (all its partitions)."""
    query = (
        "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c"
        " WHERE c.oid = %(t)s::regclass"
        " OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = %(t)s::regclass)"
    )
    with psycopg.connect(psycopg_url(url)) as conn:
        sizes = {t: conn.execute(query, {"t": t}).fetchone() for t in (*TABLES, "events")}
    return {t: str(row[0]) if row else "?" for t, row in sizes.items()}


# ------------------------------------------------------------------------------ main ---


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pg-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432",
        help="PostgreSQL server (no database)",
    )
    parser.add_argument(
        "--scales", default="100000,1000000,5000000", help="visitors, ascending, comma-separated"
    )
    parser.add_argument("--requests", type=int, default=9, help="timed requests per scale (default 9)")
    parser.add_argument("--warmups", type=int, default=2, help="warm-up requests per scale (default 2)")
    parser.add_argument(
        "--try-fixes",
        action="store_true",
        help="also measure each scale with a covering index and/or extended statistics (see FIXES)",
    )
    parser.add_argument(
        "--events", type=int, default=0, help="rows to load into events after the last scale (default 0)"
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    scales = [int(s) for s in args.scales.split(",")]
    if scales != sorted(set(scales)) or not (scales[0] >= 1000 and scales[-1] <= 20_000_000):
        parser.error("scales: ascending, 1,000 to 20,000,000 visitors")
    if not (7 <= args.requests <= 100 and 1 <= args.warmups <= 10 and 0 <= args.events <= 50_000_000):
        parser.error("bounds: 7-100 requests, 1-10 warm-ups, up to 50,000,000 events")

    console = Console(stderr=True)
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    rng = random.Random(20261126)
    rows: list[Row] = []
    with (
        served("postgresql", args.pg_url, workers=1, extra_env={"SEGMENTLY_SCHEDULER": "off"}) as server,
        httpx.Client(base_url=server.base, timeout=300) as client,
    ):
        url = server.env["SEGMENTLY_DATABASE_URL"]
        owner, setup = set_up(server, client)
        console.print(f"experiment {setup.experiment_id} on site {setup.site_id}")
        written = Generated()
        progress = Progress(
            TextColumn("{task.description:34}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        with progress, copy_connections(url) as conns:
            task = progress.add_task("loading visitors", total=scales[-1])
            until = time.time()
            for scale in scales:
                add = scale - written.visitors
                arms = [
                    ArmPlan(vid, n, round(n * rate))
                    for vid, n, rate in zip(setup.variants, (add // 2, add - add // 2), RATES, strict=True)
                ]
                progress.update(task, description=f"COPY visitors up to {scale:,}")
                t0 = time.perf_counter()
                more = copy_experiment_rows(
                    conns,
                    setup.experiment_id,
                    setup.site_id,
                    setup.goal_id,
                    setup.funnel_id,
                    arms,
                    until - DAYS * 86400,
                    until,
                    rng,
                    lambda n: progress.advance(task, n),
                )
                loaded = time.perf_counter() - t0
                for name in ("visitors", "conversions", "funnel", "events"):
                    setattr(written, name, getattr(written, name) + getattr(more, name))
                progress.update(task, description=f"VACUUM ANALYZE at {scale:,}")
                t0 = time.perf_counter()
                vacuum_analyze(url)
                console.print(
                    f"{scale:,} visitors: {more.visitors:,} rows added in {loaded:.0f} s "
                    f"({more.visitors / loaded:,.0f} visitors/s, with {more.conversions:,} conversions and "
                    f"{more.funnel:,} funnel rows); VACUUM ANALYZE {time.perf_counter() - t0:.0f} s"
                )
                progress.update(task, description=f"measuring at {scale:,}")
                row = measure(
                    Row(f"{scale:,} visitors", scale, written.events),
                    client,
                    owner,
                    setup,
                    url,
                    written,
                    args,
                )
                rows.append(row)
                console.print(
                    f"  HTTP {statistics.median(row.http):.1f} ms, SQL {statistics.median(row.sql):.1f} ms"
                )
                if args.try_fixes:
                    for label, statements, tables in FIXES:
                        progress.update(task, description=f"{label} at {scale:,}")
                        took = apply(url, statements, tables)
                        row = measure(
                            Row(f"  with {label}", scale, written.events),
                            client,
                            owner,
                            setup,
                            url,
                            written,
                            args,
                        )
                        rows.append(row)
                        http, sql = statistics.median(row.http), statistics.median(row.sql)
                        console.print(
                            f"  with {label} ({took:.0f} s to set up): HTTP {http:.1f} ms, SQL {sql:.1f} ms"
                        )
                    apply(url, UNDO_FIXES, TABLES[:2])
            if args.events:
                load_events(url, setup, args.events, rng, progress)
                rows.append(
                    measure(
                        Row(f"  + {args.events:,} rows in events", scales[-1], written.events),
                        client,
                        owner,
                        setup,
                        url,
                        written,
                        args,
                    )
                )
        sizes = table_sizes(url)
        log = (server.tmp / "server.log").read_text()
        if "Traceback" in log or " ERROR " in log:
            console.print(f"[red]the server logged errors:[/red]\n{log[-3000:]}")
    report(rows, args, load_before, time.monotonic() - started, sizes)


if __name__ == "__main__":
    main()
