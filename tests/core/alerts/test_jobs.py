"""Scheduled jobs with a controlled clock on both backends: schedule, winners, durations, the bell."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import httpx
import pytest
from litestar import Litestar

from segmently.db.base import utcnow
from segmently.domain.alerts.jobs import (
    kernel_jobs,
    run_duration_alerts,
    run_experiment_schedule,
    run_winner_detection,
)
from segmently.hookspecs import JobSpec
from segmently.kernel import Kernel
from segmently.scheduler import Jobs, Outcome
from tests.core.events.test_ingest import ids, rows, send
from tests.core.experiments.test_experiments import hero, owner_site
from tests.core.experiments.test_public_api import live

pytestmark = pytest.mark.usefixtures("backend")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def kernel_of(app: Litestar, clock: Clock | None = None) -> Kernel:
    kernel: Kernel = app.state.kernel
    if clock is not None:
        kernel.clock = clock
    return kernel


async def populate(
    client: httpx.AsyncClient,
    key: str,
    exp: dict[str, Any],
    counts: dict[str, tuple[int, int]],
    tag: str = "v",
) -> None:
    """``counts``: variant key → (visitors, converters); assignments first, conversions after."""
    v = ids(exp)
    assigned, converted = [], []
    for k, (visitors, converters) in counts.items():
        for i in range(visitors):
            vid = f"{tag}-{k}-{i}"
            assigned.append(
                {
                    "event_name": "assignment",
                    "visitor_id": vid,
                    "experiment_id": exp["id"],
                    "variant_id": v[k],
                }
            )
            if i < converters:
                converted.append(
                    {"event_name": "conversion", "visitor_id": vid, "event_data": {"revenue": 10}}
                )
    for events in (assigned, converted):
        for i in range(0, len(events), 500):
            r = await send(client, key, events[i : i + 500])
            assert r.status_code == 202 and not r.json()["rejected"], r.text


async def outbox(database_url: str, event: str) -> list[Any]:
    return await rows(database_url, "SELECT data FROM outbox_events WHERE event = :e", e=event)


async def test_one_winner_alert_and_one_significance_event_per_experiment(
    app: Litestar, client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)
    await populate(client, site["api_key"], exp, {"control": (1000, 50), "variant_b": (1000, 120)})
    kernel = kernel_of(app)
    assert [await run_winner_detection(kernel) for _ in range(3)] == [1, 0, 0]
    bell = (await client.get("/api/v1/alerts", headers=h)).json()
    assert bell["unread"] == 1
    (alert,) = bell["alerts"]
    assert alert["alert_type"] == "winner_detected" and alert["experiment_id"] == exp["id"]
    assert alert["read"] is False and alert["link"] == f"/experiments/{exp['id']}/results"
    assert "Variant B" in alert["message"] and "+140.0%" in alert["message"]
    assert alert["data"]["confidence"] == pytest.approx(99.9) and alert["data"]["variant_key"] == "variant_b"
    events = await outbox(database_url, "significance.reached")
    assert len(events) == 1
    minima = await rows(
        database_url, "SELECT sequential_p_min FROM variants WHERE experiment_id = :e", e=exp["id"]
    )
    assert sorted(m[0] is None for m in minima) == [False, True]  # control has none
    assert (await client.post(f"/api/v1/alerts/{alert['id']}/read", headers=h)).json() == {
        "marked": 1,
        "unread": 0,
    }


async def test_no_winner_below_thirty_visitors_or_without_a_clear_result(
    app: Litestar, client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)
    kernel = kernel_of(app)
    await populate(client, site["api_key"], exp, {"control": (29, 0), "variant_b": (29, 29)}, tag="few")
    assert await run_winner_detection(kernel) == 0  # 100 % vs 0 %, but under 30 visitors per variant
    await populate(client, site["api_key"], exp, {"control": (200, 20), "variant_b": (200, 24)}, tag="more")
    assert await run_winner_detection(kernel) == 0
    assert (await client.get("/api/v1/alerts", headers=h)).json() == {"unread": 0, "alerts": []}


async def test_plans_without_winner_alerts_get_none(
    app: Litestar, client: httpx.AsyncClient, database_url: str
) -> None:
    from tests.core.accounts.test_team import set_plan

    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)
    await populate(client, site["api_key"], exp, {"control": (500, 25), "variant_b": (500, 100)})
    me = (await client.get("/api/v1/me", headers=h)).json()
    await set_plan(database_url, me["organization"]["id"], "free")
    assert await run_winner_detection(kernel_of(app)) == 0


async def test_auto_pause_at_significance(
    app: Litestar, client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site, advanced={"auto_pause_at_significance": True})
    await populate(client, site["api_key"], exp, {"control": (500, 25), "variant_b": (500, 100)})
    assert await run_winner_detection(kernel_of(app)) == 1
    assert (await client.get(f"/api/v1/experiments/{exp['id']}", headers=h)).json()["status"] == "paused"
    assert len(await outbox(database_url, "experiment.paused")) == 1


async def test_max_duration_alert_fires_once_and_only_without_a_winner(
    app: Litestar, client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    clock = Clock(utcnow())
    kernel = kernel_of(app, clock)
    slow = await live(client, h, site, advanced={"max_duration_days": 14})
    won = await live(client, h, site, name="Won already", advanced={"max_duration_days": 14})
    await populate(client, site["api_key"], won, {"control": (500, 25), "variant_b": (500, 100)})
    assert await run_winner_detection(kernel) == 1
    clock.now += dt.timedelta(days=13, hours=23)
    assert await run_duration_alerts(kernel) == 0
    clock.now += dt.timedelta(hours=2)
    assert [await run_duration_alerts(kernel) for _ in range(3)] == [1, 0, 0]
    bell = (await client.get("/api/v1/alerts", headers=h)).json()
    assert sorted((a["alert_type"], a["experiment_id"]) for a in bell["alerts"]) == sorted(
        [("max_duration_exceeded", slow["id"]), ("winner_detected", won["id"])]
    )
    assert bell["alerts"][0]["alert_type"] == "max_duration_exceeded"  # newest first
    assert (await client.post("/api/v1/alerts/read-all", headers=h)).json() == {"marked": 2, "unread": 0}


async def test_scheduled_start_and_end(app: Litestar, client: httpx.AsyncClient, database_url: str) -> None:
    h, site = await owner_site(client, database_url)
    t0 = utcnow().replace(microsecond=0) + dt.timedelta(days=1)
    clock = Clock(t0 - dt.timedelta(minutes=1))
    kernel = kernel_of(app, clock)
    window = {"start_at": t0.isoformat(), "end_at": (t0 + dt.timedelta(hours=2)).isoformat()}
    exp = (
        await client.post(f"/api/v1/projects/{site['id']}/experiments", json=hero(advanced=window), headers=h)
    ).json()
    status = lambda: client.get(f"/api/v1/experiments/{exp['id']}", headers=h)  # noqa: E731
    assert await run_experiment_schedule(kernel) == 0
    assert (await status()).json()["status"] == "draft"
    clock.now = t0 + dt.timedelta(seconds=30)
    assert [await run_experiment_schedule(kernel) for _ in range(2)] == [1, 0]
    started = (await status()).json()
    assert started["status"] == "live" and started["activated_at"].startswith(t0.date().isoformat())
    clock.now = t0 + dt.timedelta(hours=2, seconds=30)
    assert await run_experiment_schedule(kernel) == 1
    assert (await status()).json()["status"] == "paused"
    assert len(await outbox(database_url, "experiment.started")) == 1
    assert len(await outbox(database_url, "experiment.paused")) == 1
    assert await run_experiment_schedule(kernel) == 0  # a paused one with a past end date stays paused


async def test_a_failing_job_is_logged_with_its_name_and_the_next_run_recovers(
    app: Litestar, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    kernel = kernel_of(app)
    calls: list[int] = []

    async def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("database went away")

    jobs = Jobs(kernel, [*kernel_jobs(kernel), JobSpec(name="flaky", func=flaky, seconds=60)])
    assert {"experiment_schedule", "winner_detection", "duration_alerts", "dummy_tick"} <= set(jobs.specs)
    with caplog.at_level(logging.ERROR):
        assert await jobs.run("flaky") is Outcome.FAILED
    assert "job flaky failed" in caplog.text and "database went away" in caplog.text
    assert await jobs.run("flaky") is Outcome.RAN


async def test_a_job_another_process_is_running_is_skipped(app: Litestar, client: httpx.AsyncClient) -> None:
    from segmently.db.locks import try_lock

    kernel = kernel_of(app)
    ran: list[int] = []

    async def work() -> None:
        ran.append(1)

    jobs = Jobs(kernel, [JobSpec(name="work", func=work, seconds=60)])
    async with try_lock(kernel.db, "job:work") as held:
        assert held
        assert await jobs.run("work") is Outcome.SKIPPED
    assert await jobs.run("work") is Outcome.RAN and ran == [1]


async def test_alerts_belong_to_their_organization(
    app: Litestar, client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)
    await populate(client, site["api_key"], exp, {"control": (500, 25), "variant_b": (500, 100)})
    await run_winner_detection(kernel_of(app))
    alert_id = (await client.get("/api/v1/alerts", headers=h)).json()["alerts"][0]["id"]
    other, _ = await owner_site(client, database_url, tag="mallory")
    assert (await client.get("/api/v1/alerts", headers=other)).json() == {"unread": 0, "alerts": []}
    assert (await client.post(f"/api/v1/alerts/{alert_id}/read", headers=other)).status_code == 404
    assert (await client.get("/api/v1/alerts", headers=h)).json()["unread"] == 1


@pytest.mark.postgresql_only
async def test_a_database_gone_during_a_cycle_loses_and_duplicates_nothing(
    app: Litestar, client: httpx.AsyncClient, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)
    await populate(client, site["api_key"], exp, {"control": (500, 25), "variant_b": (500, 100)})
    kernel = kernel_of(app)
    jobs = Jobs(kernel, kernel_jobs(kernel))
    assert await jobs.run("experiment_schedule") is Outcome.RAN  # the pool holds live connections now
    # the database drops every connection (a restart, a failover) just before the next cycle
    await rows(
        database_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    # the stale connections are dropped and the cycle goes through at once, not a tick later
    with caplog.at_level(logging.ERROR):
        assert await jobs.run("winner_detection") is Outcome.RAN
    assert "job winner_detection failed" not in caplog.text
    assert [await jobs.run("winner_detection") for _ in range(3)] == [Outcome.RAN] * 3
    bell = (await client.get("/api/v1/alerts", headers=h)).json()
    assert [a["alert_type"] for a in bell["alerts"]] == ["winner_detected"]
    assert len(await outbox(database_url, "significance.reached")) == 1


@pytest.mark.postgresql_only
async def test_the_daily_partition_job_adds_the_months_ahead(
    app: Litestar, client: httpx.AsyncClient, database_url: str
) -> None:
    clock = Clock(utcnow() + dt.timedelta(days=120))
    kernel = kernel_of(app, clock)
    jobs = Jobs(kernel, kernel_jobs(kernel))
    assert await jobs.run("event_partitions") is Outcome.RAN
    assert await jobs.run("event_partitions") is Outcome.RAN  # again: nothing to do, no error
    later = clock.now + dt.timedelta(days=62)
    name = f"events_p{later.year:04d}_{later.month:02d}"
    got = await rows(database_url, "SELECT to_regclass(:n) IS NOT NULL", n=name)
    assert got[0][0] is True
