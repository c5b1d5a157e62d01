"""Winner-detection benchmark: one ``run_winner_detection`` cycle over 1,000 live experiments of 10k visitors.

The script creates a throwaway PostgreSQL database on the server of ``--pg-url``, migrates it with
``segmently migrate`` and starts ``segmently serve`` (scheduler off) just long enough to make, through
the API, one user whose organization is moved to the enterprise plan (``segmently orgs set-plan``:
winner alerts, no experiment limit), a site and one live A/B experiment (control and one variant,
50/50, a primary ``custom_event`` goal). The server is then stopped and the experiment's rows are
cloned in SQL into ``--experiments`` live experiments (default 1,000): ``experiments`` rows with a
fresh UUIDv7 id (also the hash seed, as the API sets it), name, slug and goal id, and their
``variants`` rows, every other column copied from the API's row. Every experiment is dated 14 days
back (``activated_at``).

Each experiment gets ``--visitors`` visitors (default 10,000: 10M ``experiment_visitors`` rows in all)
split exactly 50/50 over 14 days, written with psycopg ``COPY ... (FORMAT BINARY)`` as in
``bench/results.py``, and primary-goal conversions with a base rate drawn per experiment from
5-15 %: in ``--winners`` of them (default 5 %) the variant converts 40 % more than control (a clear
winner), in as many the variant converts 30 % less (a clear loser, never alerted), in the rest both
arms convert exactly alike. Then ``VACUUM ANALYZE`` on the tables the job reads. The script decides
each experiment up front with ``segmently.stats`` (the same ``decide_on`` the job calls) to know
which alerts the job should raise.

The job (``segmently.domain.alerts.jobs.run_winner_detection``) reads the live experiments of
entitled organizations, their variants and, in two ``GROUP BY`` queries, the visitors and
primary-goal converters per variant of all of them; then for each experiment it decides, stores
the treatments' new running minima of the sequential p-value (one session and commit each) and,
for a winner, writes the alert, the ``significance.reached`` domain event and the
``winner_alert_sent`` flag. Measured:

- first look, in-process: the kernel built as the CLI builds it (``make_kernel(Settings.from_env())``)
  in this process, ``await run_winner_detection(kernel)``; before each cycle the alerts and domain
  events it wrote are deleted and the flags and stored minima cleared (not timed), so every cycle
  writes every minimum and raises every alert, the costliest look;
- next look, in-process: the cycle again without that reset: winners are already alerted and skipped,
  no minimum changes (the steady state between visitor arrivals);
- the job's two aggregate queries alone, through the app's session (``arm_counts``);
- peer, bare SQL: the same two ``GROUP BY`` queries with psycopg (one ``IN`` list of all the ids);
- ``segmently jobs run winner_detection`` as a subprocess (first look, reset before each run): the
  wall time including interpreter start-up, imports and the migration check, and the job's own time
  from its DEBUG log line.

The in-process looks, the aggregates and the bare SQL alternate for ``--cycles`` rounds after one
warm-up round; the subprocess runs ``--cli-runs`` times. Figures are medians. After a first look the
script checks, and prints, that the alerts raised are exactly the seeded winners (variant and all).
At the end it prints the ``EXPLAIN (ANALYZE, BUFFERS)`` of the two aggregates.

The server is stopped and the database dropped at the end, also on error, Ctrl-C or SIGTERM.

Run from the workspace root:  uv run python bench/scheduler.py [--experiments 1000] [--visitors 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
from _harness import (
    CHECKOUT_EXPERIMENT,
    CLI,
    ArmPlan,
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
from sqlalchemy import select

from segmently.db.base import new_id
from segmently.db.models import Experiment
from segmently.domain.alerts.jobs import arm_counts, run_winner_detection
from segmently.domain.analytics.results import decide_on
from segmently.kernel import Kernel, make_kernel
from segmently.settings import Settings

GOAL_S = 5.0
PERIOD_S = 60.0
DAYS = 14
WINNER_LIFT = 1.4
LOSER_LIFT = 0.7
RAN = re.compile(r"job winner_detection ran in ([0-9.]+) s")

EXPERIMENT = CHECKOUT_EXPERIMENT

VISITORS_SQL = (
    "SELECT experiment_id, variant_id, count(*) FROM experiment_visitors"
    " WHERE experiment_id IN ({ids}) GROUP BY experiment_id, variant_id"
)
CONVERSIONS_SQL = (
    "SELECT experiment_id, goal_id, variant_id, count(*) FROM experiment_conversions"
    " WHERE experiment_id IN ({ids}) GROUP BY experiment_id, goal_id, variant_id"
)
RESET = (
    "DELETE FROM alerts WHERE alert_type = 'winner_detected'",
    "DELETE FROM outbox_events WHERE event = 'significance.reached'",
    "UPDATE experiments SET winner_alert_sent = false WHERE winner_alert_sent",
    "UPDATE variants SET sequential_p_min = NULL WHERE sequential_p_min IS NOT NULL",
)


@dataclass(frozen=True)
class Seeded:
    """One experiment as generated: its variant ids (control first), goal, kind and planned counts."""

    id: str
    variants: tuple[str, str]
    goal_id: str
    kind: str  # winner | loser | null
    counts: dict[str, tuple[int, int]]  # variant id → (visitors, converters)


@dataclass(frozen=True)
class _Arm:
    """What ``decide_on`` reads of a variant."""

    id: str
    key: str
    weight: float
    sequential_p_min: float | None = None


# ----------------------------------------------------------------------------- setup ---


def clone(url: str, template: dict[str, Any], n: int) -> list[tuple[str, tuple[str, str], str]]:
    """``n - 1`` copies of the template experiment and its variants, in SQL with fresh ids.

    Returns (experiment id, (control id, variant id), primary goal id) of all ``n``, the template first.
    """
    out = [
        (
            template["id"],
            (template["variants"][0]["id"], template["variants"][1]["id"]),
            template["goals"][0]["id"],
        )
    ]
    ids = [new_id() for _ in range(n - 1)]
    goals = [new_id() for _ in range(n - 1)]
    started = dt.datetime.now(dt.UTC) - dt.timedelta(days=DAYS)
    with psycopg.connect(psycopg_url(url), autocommit=True) as conn:
        columns = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                " ORDER BY ordinal_position",
                ("experiments",),
            )
        ]
        copied = [c for c in columns if c not in ("id", "name", "slug", "hash_seed", "goals")]
        with conn.transaction():
            conn.execute(
                f"INSERT INTO experiments (id, name, slug, hash_seed, goals, {', '.join(copied)})"
                " SELECT n.id, e.name || ' ' || n.k, e.slug || '-' || n.k, n.id,"
                " jsonb_set(e.goals, '{goals,0,id}', to_jsonb(n.goal)),"
                f" {', '.join('e.' + c for c in copied)}"
                " FROM experiments e, unnest(%s::text[], %s::text[], %s::text[]) AS n(id, goal, k)"
                " WHERE e.id = %s",
                (ids, goals, [str(k + 2) for k in range(n - 1)], template["id"]),
            )
            vcolumns = [
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                    " ORDER BY ordinal_position",
                    ("variants",),
                )
            ]
            vcopied = [c for c in vcolumns if c not in ("id", "experiment_id")]
            variant_ids = [(new_id(), new_id()) for _ in range(n - 1)]
            conn.execute(
                f"INSERT INTO variants (id, experiment_id, {', '.join(vcopied)})"
                f" SELECT n.id, n.experiment_id, {', '.join('v.' + c for c in vcopied)}"
                " FROM variants v JOIN unnest(%s::text[], %s::text[], %s::text[])"
                " AS n(id, experiment_id, template) ON v.id = n.template",
                (
                    [v for pair in variant_ids for v in pair],
                    [e for e in ids for _ in range(2)],
                    [template["variants"][k]["id"] for _ in ids for k in range(2)],
                ),
            )
            conn.execute(
                "UPDATE experiments SET activated_at = %s, created_at = %s, updated_at = %s",
                (started, started, started),
            )
    out += [(e, pair, g) for e, pair, g in zip(ids, variant_ids, goals, strict=True)]
    return out


def plan(
    experiments: list[tuple[str, tuple[str, str], str]], visitors: int, winners: int, rng: random.Random
) -> list[Seeded]:
    """Which experiments get a winner or a loser, and every arm's exact visitors and converters."""
    order = list(range(len(experiments)))
    rng.shuffle(order)
    kinds = dict.fromkeys(order[:winners], "winner") | dict.fromkeys(order[winners : 2 * winners], "loser")
    out = []
    for i, (exp_id, variants, goal) in enumerate(experiments):
        kind = kinds.get(i, "null")
        base = rng.uniform(0.05, 0.15)
        half = visitors // 2
        rate = base * {"winner": WINNER_LIFT, "loser": LOSER_LIFT, "null": 1.0}[kind]
        counts = {
            variants[0]: (half, round(half * base)),
            variants[1]: (visitors - half, round((visitors - half) * rate)),
        }
        out.append(Seeded(exp_id, variants, goal, kind, counts))
    return out


def expected_winners(seeded: list[Seeded], tuning: float) -> dict[str, str]:
    """Experiment id → winning variant key, as ``decide_on`` rules on the planned counts."""
    out = {}
    for s in seeded:
        arms = [_Arm(s.variants[0], "control", 50.0), _Arm(s.variants[1], "variant_1", 50.0)]
        decision = decide_on(arms, s.counts, tuning)
        if decision is not None and decision.winner is not None:
            out[s.id] = decision.winner
    return out


def load(url: str, owner_site: str, seeded: list[Seeded], rng: random.Random, console: Console) -> float:
    """The visitors and conversions of every experiment by COPY, then VACUUM ANALYZE; seconds taken."""
    total = sum(sum(v for v, _ in s.counts.values()) for s in seeded)
    progress = Progress(
        TextColumn("{task.description:30}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    until = time.time()
    t0 = time.perf_counter()
    with progress, copy_connections(url) as conns:
        task = progress.add_task("COPY visitors", total=total)
        for s in seeded:
            copy_experiment_rows(
                conns,
                s.id,
                owner_site,
                s.goal_id,
                None,
                [ArmPlan(v, n, c) for v, (n, c) in s.counts.items()],
                until - DAYS * 86400,
                until,
                rng,
                lambda n: progress.advance(task, n),
            )
        progress.update(task, description="VACUUM ANALYZE")
        with psycopg.connect(psycopg_url(url), autocommit=True) as conn:
            for table in ("experiment_visitors", "experiment_conversions", "experiments", "variants"):
                conn.execute(f"VACUUM (ANALYZE) {table}")
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- measure ---


def reset(url: str) -> None:
    """Undo a look's writes: alerts, their domain events, the alerted flags and the stored minima."""
    with psycopg.connect(psycopg_url(url), autocommit=True) as conn, conn.transaction():
        for statement in RESET:
            conn.execute(statement)


def alerts(url: str) -> dict[str, str]:
    """Experiment id → alerted variant key, from the ``alerts`` table."""
    with psycopg.connect(psycopg_url(url)) as conn:
        rows = conn.execute(
            "SELECT experiment_id, data->>'variant_key' FROM alerts WHERE alert_type = 'winner_detected'"
        ).fetchall()
    return {str(e): str(k) for e, k in rows}


def explain(url: str, ids: list[str]) -> dict[str, str]:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of the job's two aggregates, one line each."""
    marks = ", ".join(["%s"] * len(ids))
    with psycopg.connect(psycopg_url(url)) as conn:
        return {
            name: explain_plan(conn, query.format(ids=marks), ids)[0]
            for name, query in (("visitors", VISITORS_SQL), ("conversions", CONVERSIONS_SQL))
        }


def bare_sql(conn: psycopg.Connection[Any], ids: list[str]) -> float:
    """The job's two aggregates with psycopg, all rows fetched: seconds."""
    marks = ", ".join(["%s"] * len(ids))
    t0 = time.perf_counter()
    with conn.transaction():
        conn.execute(VISITORS_SQL.format(ids=marks), ids).fetchall()
        conn.execute(CONVERSIONS_SQL.format(ids=marks), ids).fetchall()
    return time.perf_counter() - t0


async def app_aggregates(kernel: Kernel) -> float:
    """``arm_counts`` over all live experiments in the app's session (experiments loaded first): seconds."""
    async with kernel.db.session() as session:
        experiments = (await session.scalars(select(Experiment).where(Experiment.status == "live"))).all()
        t0 = time.perf_counter()
        await arm_counts(session, experiments)
        return time.perf_counter() - t0


async def cycle(kernel: Kernel) -> tuple[float, int]:
    """One ``run_winner_detection``: seconds and alerts raised."""
    t0 = time.perf_counter()
    raised = await run_winner_detection(kernel)
    return time.perf_counter() - t0, raised


def check(url: str, seeded: list[Seeded], expected: dict[str, str], raised: int) -> str:
    """A line comparing the alerts in the database with the seeded winners and the up-front decisions."""
    got = alerts(url)
    kinds = {s.id: s.kind for s in seeded}
    winners = {s.id for s in seeded if s.kind == "winner"}
    hits = sum(1 for e, k in got.items() if e in winners and k == "variant_1")
    others = {kind: sum(1 for e in got if kinds[e] == kind) for kind in ("loser", "null")}
    same = got == expected
    return (
        f"{len(got)} alerts ({raised} counted by the job): {hits} of {len(winners)} seeded winners with the "
        f"right variant, {others['loser']} seeded losers, {others['null']} null experiments; "
        f"{'identical to' if same else 'DIFFERENT from'} the {len(expected)} winners decided up front"
    )


def cli_run(env: dict[str, str]) -> tuple[float, float]:
    """``segmently jobs run winner_detection`` as a subprocess: wall seconds, and the job's own (its log)."""
    t0 = time.perf_counter()
    out = subprocess.run(
        [*CLI, "jobs", "run", "winner_detection"],
        env=env | {"SEGMENTLY_LOG_LEVEL": "DEBUG"},
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - t0
    if out.returncode != 0 or "job winner_detection: ran" not in out.stdout:
        raise RuntimeError(f"jobs run failed ({out.returncode}): {out.stdout}\n{out.stderr[-2000:]}")
    job = next((float(m.group(1)) for m in RAN.finditer(out.stderr)), float("nan"))
    return wall, job


# ---------------------------------------------------------------------------- report ---


def report(
    samples: dict[str, list[float]],
    args: argparse.Namespace,
    sanity: list[str],
    plans: dict[str, str],
    load_before: float,
    elapsed: float,
    loaded: float,
    sizes: dict[str, str],
) -> None:
    """The medians against the goal and the period, and the sanity checks."""
    med = {k: statistics.median(v) for k, v in samples.items() if v}
    print(
        f"\nPostgreSQL; {args.experiments:,} live experiments × {args.visitors:,} visitors "
        f"({args.experiments * args.visitors:,} experiment_visitors rows, loaded and vacuumed in "
        f"{loaded:.0f} s); {args.cycles} rounds after one warm-up, {args.cli_runs} CLI runs; medians "
        f"({elapsed:.0f} s in all); "
        f"1-min load average before {load_before:.2f}, after {os.getloadavg()[0]:.2f}"
    )
    print(f"table sizes (heap + indexes): {sizes}\n")
    print(f"{'seconds':46}{'median':>9}{'min':>8}{'max':>8}{'/goal':>8}{'/period':>9}   goal")
    rows = [
        ("first look, in-process (writes everything)", "first"),
        ("next look, in-process (nothing new)", "next"),
        ("jobs run subprocess, wall (first look)", "cli wall"),
        ("jobs run subprocess, the job's own time", "cli job"),
        ("the two aggregates via the app (arm_counts)", "app sql"),
        ("peer: the two aggregates, bare SQL", "bare sql"),
    ]
    for label, key in rows:
        if key not in med:
            continue
        v = samples[key]
        verdict = ""
        if key in ("first", "cli job"):
            verdict = f"   ≤ {GOAL_S:g} s: {'met' if med[key] <= GOAL_S else 'MISSED'}"
        print(
            f"{label:46}{med[key]:9.3f}{min(v):8.3f}{max(v):8.3f}{med[key] / GOAL_S:8.2f}"
            f"{med[key] / PERIOD_S:9.3f}{verdict}"
        )
    print(
        f"\nratios: first look / bare SQL {med['first'] / med['bare sql']:.1f}, "
        f"aggregates via the app / bare SQL {med['app sql'] / med['bare sql']:.2f}; "
        f"first look minus the aggregates: {med['first'] - med['app sql']:.3f} s "
        f"({(med['first'] - med['app sql']) / args.experiments * 1e3:.2f} ms per experiment); "
        f"CLI start-up and exit: {med['cli wall'] - med['cli job']:.2f} s"
    )
    print("\nEXPLAIN (ANALYZE, BUFFERS) of the two aggregates: execution time and plan (parent <- children)")
    for name, line in plans.items():
        print(f"  {name:12}{line}")
    print("\nsanity checks (alerts in the database after a first look):")
    for line in sanity:
        print(f"  {line}")
    print(f"\nseconds per round: { {k: [round(x, 3) for x in v] for k, v in samples.items()} }")


# ------------------------------------------------------------------------------ main ---


async def rounds(
    env: dict[str, str],
    url: str,
    args: argparse.Namespace,
    seeded: list[Seeded],
    expected: dict[str, str],
    samples: dict[str, list[float]],
    sanity: list[str],
    console: Console,
) -> None:
    """In-process looks, app aggregates and bare SQL, alternating; a warm-up round first."""
    kernel = make_kernel(Settings.from_env(env))
    ids = [s.id for s in seeded]
    try:
        with psycopg.connect(psycopg_url(url), autocommit=True) as conn:
            for r in range(args.cycles + 1):
                reset(url)
                first, raised = await cycle(kernel)
                if r <= 1:
                    sanity.append(f"in-process, round {r}: " + check(url, seeded, expected, raised))
                nxt, again = await cycle(kernel)
                if again:
                    sanity.append(f"in-process, round {r}: the next look raised {again} more alerts")
                app = await app_aggregates(kernel)
                bare = bare_sql(conn, ids)
                console.print(
                    f"{'warm-up' if r == 0 else f'round {r}'}: first look {first:.3f} s ({raised} alerts), "
                    f"next look {nxt:.3f} s, aggregates via the app {app:.3f} s, bare SQL {bare:.3f} s"
                )
                if r > 0:
                    samples["first"].append(first)
                    samples["next"].append(nxt)
                    samples["app sql"].append(app)
                    samples["bare sql"].append(bare)
    finally:
        await kernel.db.dispose()


def table_sizes(url: str) -> dict[str, str]:
    """Heap and indexes of the tables the job reads."""
    with psycopg.connect(psycopg_url(url)) as conn:
        return {
            t: str(row[0])
            if (row := conn.execute("SELECT pg_size_pretty(pg_total_relation_size(%s))", (t,)).fetchone())
            else "?"
            for t in ("experiment_visitors", "experiment_conversions", "variants", "experiments")
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pg-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432",
        help="PostgreSQL server (no database)",
    )
    parser.add_argument("--experiments", type=int, default=1000, help="live experiments (default 1000)")
    parser.add_argument(
        "--visitors", type=int, default=10_000, help="visitors per experiment (default 10000)"
    )
    parser.add_argument(
        "--winners", type=float, default=0.05, help="share with a clear winner (default 0.05)"
    )
    parser.add_argument("--cycles", type=int, default=5, help="measured in-process rounds (default 5)")
    parser.add_argument("--cli-runs", type=int, default=3, help="segmently jobs run repeats (default 3)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    if not (
        2 <= args.experiments <= 10_000
        and 100 <= args.visitors <= 1_000_000
        and args.experiments * args.visitors <= 50_000_000
        and 0 <= args.winners <= 0.5
        and 1 <= args.cycles <= 50
        and 1 <= args.cli_runs <= 20
    ):
        parser.error("bounds: 2-10,000 experiments, 100-1,000,000 visitors each (50M in all), winners ≤ 0.5")

    console = Console(stderr=True)
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    rng = random.Random(20261126)
    samples: dict[str, list[float]] = {
        k: [] for k in ("first", "next", "app sql", "bare sql", "cli wall", "cli job")
    }
    sanity: list[str] = []
    with served("postgresql", args.pg_url, workers=1, extra_env={"SEGMENTLY_SCHEDULER": "off"}) as server:
        env = server.env
        url = env["SEGMENTLY_DATABASE_URL"]
        with httpx.Client(base_url=server.base, timeout=60) as client:
            owner = enterprise_owner(server, client)
            template = live_experiment(client, owner, EXPERIMENT)
        os.kill(server.pid, signal.SIGTERM)  # the API is no longer needed: nothing else runs on the database
        experiments = clone(url, template, args.experiments)
        seeded = plan(experiments, args.visitors, round(args.winners * args.experiments), rng)
        with psycopg.connect(psycopg_url(url)) as conn:
            row = conn.execute("SELECT sequential_tuning FROM experiments WHERE id = %s", (template["id"],))
            tuning = float(next(iter(row))[0])
        expected = expected_winners(seeded, tuning)
        console.print(
            f"{len(experiments):,} live experiments; {sum(s.kind == 'winner' for s in seeded)} seeded "
            f"winners, {sum(s.kind == 'loser' for s in seeded)} losers; decided up front: "
            f"{len(expected)} winners"
        )
        loaded = load(url, owner.site_id, seeded, rng, console)
        asyncio.run(rounds(env, url, args, seeded, expected, samples, sanity, console))
        for r in range(args.cli_runs):
            reset(url)
            wall, job = cli_run(env)
            samples["cli wall"].append(wall)
            samples["cli job"].append(job)
            if r == 0:
                sanity.append("segmently jobs run: " + check(url, seeded, expected, len(alerts(url))))
            console.print(f"jobs run {r + 1}: {wall:.2f} s wall, the job {job:.3f} s")
        sizes = table_sizes(url)
        plans = explain(url, [s.id for s in seeded])
    report(samples, args, sanity, plans, load_before, time.monotonic() - started, loaded, sizes)


if __name__ == "__main__":
    main()
