"""The retention purge and site deletion remove event data, on both backends."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from segmently_dummy import plugin as dummy
from sqlalchemy import insert, text, update

from segmently.db.base import new_id
from segmently.db.engine import Database
from segmently.db.models import IdempotentRequest
from segmently.db.models.outbox import OutboxEvent
from segmently.domain.events.partitions import month_start, partition_name
from segmently.domain.events.purge import EVENT_KEYS, EVENTS
from segmently.domain.events.retention import purge_expired
from tests.conftest import SECRET
from tests.core.events.test_ingest import ids, rows, send
from tests.core.experiments.test_experiments import owner_site
from tests.core.experiments.test_public_api import live
from tests.core.test_cli import SEGMENTLY, clean_env

pytestmark = pytest.mark.usefixtures("backend")
DAY = dt.timedelta(days=1)


async def seed_old(
    database_url: str,
    site_id: str,
    *,
    events: Sequence[dt.datetime] = (),
    keys: Sequence[tuple[str, dt.datetime]] = (),
    months: Sequence[tuple[str, str]] = (),
) -> None:
    """Rows older than ingestion accepts, written as they would have been back then."""
    db = Database(database_url)
    try:
        async with db.engine.begin() as conn:
            if events:
                await conn.execute(
                    insert(EVENTS),
                    [
                        {
                            "id": new_id(),
                            "created_at": at,
                            "site_id": site_id,
                            "event_name": "page_view",
                            "visitor_id": "old",
                        }
                        for at in events
                    ],
                )
            if keys:
                await conn.execute(
                    insert(EVENT_KEYS),
                    [{"site_id": site_id, "event_id": k, "created_at": at} for k, at in keys],
                )
            for org, month in months:
                await conn.execute(
                    text(
                        "INSERT INTO monthly_visitors (organization_id, month, visitor_id) "
                        "VALUES (:o, :m, 'old')"
                    ),
                    {"o": org, "m": month},
                )
    finally:
        await db.dispose()


async def count(database_url: str, table: str, site_id: str) -> int:
    found = await rows(database_url, f"SELECT count(*) FROM {table} WHERE site_id = :s", s=site_id)
    return int(found[0][0])


async def site_with_events(
    client: httpx.AsyncClient, database_url: str, plan: str, tag: str, now: dt.datetime
) -> tuple[dict[str, str], dict[str, Any]]:
    """A site whose events happened 1, 5 and 20 days ago (sent now), plus older rows written directly."""
    h, site = await owner_site(client, database_url, plan=plan, tag=tag)
    sent = [
        {
            "event_name": "page_view",
            "visitor_id": "v",
            "event_id": name,
            "timestamp": (now - days * DAY).isoformat(),
        }
        for name, days in (("fresh", 1), ("mid", 5), ("old", 20))
    ]
    assert (await send(client, site["api_key"], sent)).json()["accepted"] == 3
    await seed_old(
        database_url,
        site["id"],
        events=[now - 400 * DAY],
        keys=[("ancient", now - 400 * DAY), ("ten-days", now - 10 * DAY)],
        months=[(site["organization_id"], "2020-01")],
    )
    return h, site


async def test_each_organization_keeps_its_plans_window_of_event_data(
    client: httpx.AsyncClient, app: Litestar, database_url: str
) -> None:
    now = dt.datetime.now(dt.UTC)
    _, free = await site_with_events(client, database_url, "free", "fran", now)
    h, pro = await site_with_events(client, database_url, "professional", "pat", now)
    _, ent = await site_with_events(client, database_url, "enterprise", "eve", now)
    _, billed = await site_with_events(client, database_url, "free", "bill", now)
    dummy.PLAN_ANSWERS[billed["organization_id"]] = "enterprise"  # the billing plugin has the last word
    # a professional experiment whose visitor was assigned and converted 20 days ago
    exp = await live(client, h, pro)
    journey = [
        {
            "event_name": "assignment",
            "visitor_id": "p",
            "experiment_id": exp["id"],
            "variant_id": ids(exp)["control"],
            "event_id": "assigned",
            "timestamp": (now - 20 * DAY).isoformat(),
        },
        {
            "event_name": "conversion",
            "visitor_id": "p",
            "event_id": "bought",
            "timestamp": (now - 19 * DAY).isoformat(),
        },
    ]
    assert (await send(client, pro["api_key"], journey)).json()["accepted"] == 2

    report = await purge_expired(app.state.kernel, now, batch_size=2)

    by_org = {o.organization_id: o for o in report.organizations}
    expected = {  # name: (site, plan, retention days, events deleted, event keys deleted, events left)
        "free": (free, "free", 3, 3, 1, 1),
        "pro": (pro, "professional", 7, 4, 1, 2),
        "ent": (ent, "enterprise", 365, 1, 1, 3),
        "billed": (billed, "enterprise", 365, 1, 1, 3),
    }
    for name, (site, plan, days, events, keys, left) in expected.items():
        got = by_org[site["organization_id"]]
        assert (got.plan, got.retention_days, got.before) == (plan, days, now - days * DAY), name
        assert (got.events, got.event_keys, got.monthly_visitors) == (events, keys, 1), name
        assert got.plugins_failed == {}
        assert got.keys_before == now - max(days, 30) * DAY  # a late retry stays a duplicate
        assert await count(database_url, "events", site["id"]) == left, name
        assert (
            "on_purge",
            {"org": site["organization_id"], "before": got.before.isoformat()},
        ) in dummy.RECORDED
    # the free organization's visitors of this month still count toward its limit
    month = now.strftime("%Y-%m")
    current = await rows(
        database_url,
        "SELECT month FROM monthly_visitors WHERE organization_id = :o",
        o=free["organization_id"],
    )
    assert {m for (m,) in current} == {month}
    # results keep their per-visitor rows although the events behind them are gone
    assert await count(database_url, "experiment_visitors", pro["id"]) == 1
    assert await count(database_url, "experiment_conversions", pro["id"]) == 1
    assert report.total("events") == 9

    again = await purge_expired(app.state.kernel, now)
    assert again.total("events") == again.total("event_keys") == again.total("monthly_visitors") == 0


@pytest.mark.postgresql_only
async def test_months_past_every_plans_window_are_dropped_as_whole_partitions(
    client: httpx.AsyncClient, app: Litestar, database_url: str
) -> None:
    now = dt.datetime.now(dt.UTC)
    _, site = await owner_site(client, database_url, plan="enterprise")
    old, kept = month_start(now, -17), month_start(now, -6)  # enterprise keeps 365 days
    for start in (old, kept):
        await rows_commit(
            database_url,
            f"CREATE TABLE {partition_name(start)} PARTITION OF events "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{month_start(start, 1).isoformat()}')",
        )
    await seed_old(database_url, site["id"], events=[old + DAY, kept + DAY])

    report = await purge_expired(app.state.kernel, now)

    assert report.partitions_dropped == [partition_name(old)]
    exists = await rows(
        database_url,
        "SELECT to_regclass(:a) IS NULL, to_regclass(:b) IS NULL",
        a=partition_name(old),
        b=partition_name(kept),
    )
    assert exists[0] == (True, False)
    assert await count(database_url, "events", site["id"]) == 1  # the row of the kept month
    assert partition_name(month_start(now)) not in report.partitions_dropped


async def rows_commit(database_url: str, sql: str) -> None:
    db = Database(database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text(sql))
    finally:
        await db.dispose()


async def test_deleting_a_site_deletes_its_events_and_event_keys(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    _, other = await owner_site(client, database_url, tag="bob")
    for s in (site, other):
        batch = [{"event_name": "page_view", "visitor_id": f"v{i}", "event_id": f"e{i}"} for i in range(5)]
        assert (await send(client, s["api_key"], batch)).json()["accepted"] == 5
    r = await client.delete(f"/api/v1/projects/{site['id']}", params={"confirm": "Shop"}, headers=h)
    assert r.status_code == 204, r.text
    assert await count(database_url, "events", site["id"]) == 0
    assert await count(database_url, "event_keys", site["id"]) == 0
    assert await count(database_url, "events", other["id"]) == 5
    assert await count(database_url, "event_keys", other["id"]) == 5


async def test_purge_command_runs_the_purge_now(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC)
    _, site = await owner_site(client, database_url, plan="professional")
    await seed_old(
        database_url,
        site["id"],
        events=[now - 9 * DAY, now - 400 * DAY],
        keys=[("young", now - 9 * DAY), ("old", now - 40 * DAY)],
    )
    env = clean_env(
        SEGMENTLY_DATABASE_URL=database_url, SEGMENTLY_SECRET_KEY=SECRET, SEGMENTLY_DATA_DIR=str(tmp_path)
    )

    def purge(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SEGMENTLY, "purge", *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    r = await asyncio.to_thread(purge)
    assert r.returncode == 0, r.stderr
    assert "deleted 2 events, 1 event keys and 0 monthly visitor rows in 1 organizations" in r.stdout
    assert await count(database_url, "events", site["id"]) == 0
    assert await count(database_url, "event_keys", site["id"]) == 1  # the young key outlives its event
    second = await asyncio.to_thread(purge, "--json")
    report = json.loads(second.stdout)
    assert [o["events"] for o in report["organizations"]] == [0]
    assert report["organizations"][0]["retention_days"] == 7


async def test_the_purge_forgets_idempotency_keys_after_a_day_and_delivered_outbox_rows_after_30_days(
    client: httpx.AsyncClient, app: Litestar, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    url = f"/api/v1/projects/{site['id']}/flags"
    for key in ("old-form", "new-form"):
        r = await client.post(url, json={"key": key, "name": key}, headers={**h, "Idempotency-Key": key})
        assert r.status_code == 201, r.text
    now = dt.datetime.now(dt.UTC)
    db = Database(database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(
                update(IdempotentRequest)
                .where(IdempotentRequest.key == "old-form")
                .values(created_at=now - dt.timedelta(hours=25))
            )
            await conn.execute(
                insert(OutboxEvent),
                [
                    {"id": name, "event": "test.event", "data": {}, "created_at": at, "dispatched_at": done}
                    for name, at, done in (
                        ("delivered-long-ago", now - 40 * DAY, now - 31 * DAY),
                        ("delivered-lately", now - 40 * DAY, now - 29 * DAY),
                        ("never-delivered", now - 40 * DAY, None),
                    )
                ],
            )
    finally:
        await db.dispose()

    report = await purge_expired(app.state.kernel, now)

    assert (report.idempotent_requests, report.outbox_events) == (1, 1)
    kept = await rows(database_url, "SELECT key FROM idempotent_requests ORDER BY key")
    assert [k for (k,) in kept] == ["new-form"]
    left = await rows(database_url, "SELECT id FROM outbox_events WHERE event = 'test.event' ORDER BY id")
    assert [i for (i,) in left] == ["delivered-lately", "never-delivered"]
    # the forgotten key is free again: the same form sent a day later creates a new flag
    again = await client.post(
        url, json={"key": "old-form-2", "name": "x"}, headers={**h, "Idempotency-Key": "old-form"}
    )
    assert again.status_code == 201, again.text
