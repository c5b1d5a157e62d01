"""The live events feed end to end over real HTTP on both backends, seeded through the real API."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import Table, insert

from segmently.db.engine import Database
from segmently.db.models import Event
from segmently.domain.events import live
from tests.core.accounts.test_auth import bearer, signup
from tests.core.accounts.test_team import set_plan
from tests.core.experiments.test_experiments import owner_site
from tests.core.experiments.test_public_api import live as live_experiment

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture(autouse=True)
def no_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Show events as soon as they are stored; the settle test sets the margin itself."""
    monkeypatch.setattr(live, "SETTLE_MARGIN", dt.timedelta(0))


async def send(client: httpx.AsyncClient, site: dict[str, Any], *events: dict[str, Any]) -> None:
    r = await client.post(
        "/api/v1/events/batch", json={"events": list(events)}, headers={"X-API-Key": site["api_key"]}
    )
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == len(events), r.text
    await asyncio.sleep(0.003)  # a later millisecond: with no margin, the feed's horizon is "now"


async def feed(
    client: httpx.AsyncClient, h: dict[str, str], site: dict[str, Any], **params: Any
) -> dict[str, Any]:
    r = await client.get(f"/api/v1/projects/{site['id']}/events/live", params=params, headers=h)
    assert r.status_code == 200, r.text
    return cast(dict[str, Any], r.json())


def pv(visitor: str, **more: Any) -> dict[str, Any]:
    return {"event_name": "page_view", "visitor_id": visitor, **more}


def names(body: dict[str, Any]) -> list[str]:
    return [e["visitor_id"] for e in body["events"]]


def iso(at: dt.datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def uuid7_at(at: dt.datetime) -> str:
    """A UUIDv7 whose embedded time is ``at`` (as ingestion would have minted it then)."""
    ms = (at - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)
    tail = uuid.uuid4().int & ((1 << 80) - 1)
    value = (ms << 80) | tail
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(uuid.UUID(int=value))


async def test_the_newest_events_come_first_with_every_column(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    happened = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
    await send(client, site, pv("v1"))
    await send(
        client,
        site,
        pv(
            "v2",
            url="https://shop.example.com/cart",
            device_type="mobile",
            event_data={"hidden_ms": 120},
            timestamp=iso(happened),
        ),
    )
    await send(client, site, {"event_name": "signup", "visitor_id": "v3", "event_data": {"plan": "pro"}})
    body = await feed(client, h, site)
    assert names(body) == ["v3", "v2", "v1"]
    assert body["more"] is False and body["cursor"]
    second = body["events"][1]
    assert set(second) == {
        "id", "event_name", "visitor_id", "experiment_id", "experiment_name", "variant_id",
        "variant_key", "url", "device_type", "event_data", "created_at", "received_at",
    }  # fmt: skip
    assert second["url"] == "https://shop.example.com/cart" and second["device_type"] == "mobile"
    assert second["event_data"] == {"hidden_ms": 120}
    assert second["experiment_name"] is None and second["variant_key"] is None
    assert dt.datetime.fromisoformat(second["created_at"]) == happened  # when it happened
    received = dt.datetime.fromisoformat(second["received_at"])  # when the server stored it
    assert abs(received - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=30)
    assert body["events"][0]["event_data"] == {"plan": "pro"}
    assert names(await feed(client, h, site, limit=2)) == ["v3", "v2"]


async def test_type_and_visitor_filters(client: httpx.AsyncClient, database_url: str) -> None:
    h, site = await owner_site(client, database_url)
    await send(
        client,
        site,
        pv("Alice_01"),
        pv("alice%x"),
        pv("aliceX01"),
        {"event_name": "signup", "visitor_id": "BOB"},
        {"event_name": "conversion", "visitor_id": "Alice_01"},
    )
    assert names(await feed(client, h, site, type="signup")) == ["BOB"]
    assert len((await feed(client, h, site, type="all"))["events"]) == 5
    assert names(await feed(client, h, site, type="conversion")) == ["Alice_01"]
    assert names(await feed(client, h, site, visitor="bob")) == ["BOB"]  # any case
    assert sorted(names(await feed(client, h, site, visitor="ALICE"))) == [
        "Alice_01", "Alice_01", "alice%x", "aliceX01",
    ]  # fmt: skip
    # LIKE wildcards are matched literally
    assert sorted(names(await feed(client, h, site, visitor="e_0"))) == ["Alice_01", "Alice_01"]
    assert names(await feed(client, h, site, visitor="%")) == ["alice%x"]
    assert names(await feed(client, h, site, visitor="alice", type="page_view", limit=1)) == ["aliceX01"]
    assert names(await feed(client, h, site, visitor="nobody")) == []


async def test_range_filters_on_when_events_happened(client: httpx.AsyncClient, database_url: str) -> None:
    h, site = await owner_site(client, database_url)
    now = dt.datetime.now(dt.UTC)
    await send(
        client,
        site,
        pv("eight-days", timestamp=iso(now - dt.timedelta(days=8))),
        pv("two-days", timestamp=iso(now - dt.timedelta(days=2))),
        pv("two-hours", timestamp=iso(now - dt.timedelta(hours=2))),
        pv("now"),
    )
    everything = await feed(client, h, site, range="all")
    assert sorted(names(everything)) == ["eight-days", "now", "two-days", "two-hours"]
    assert names(await feed(client, h, site, range="1h")) == ["now"]
    assert sorted(names(await feed(client, h, site, range="24h"))) == ["now", "two-hours"]
    assert sorted(names(await feed(client, h, site, range="7d"))) == ["now", "two-days", "two-hours"]
    today = names(await feed(client, h, site, range="today"))
    assert "now" in today and "two-days" not in today and "eight-days" not in today
    assert "now" in names(await feed(client, h, site, range="today", tz="Pacific/Kiritimati"))
    # stats cover the range, and at most the last 7 days (range=all)
    assert everything["stats"]["events"] == 3
    assert (await feed(client, h, site, range="1h"))["stats"]["events"] == 1
    assert (await feed(client, h, site, range="24h"))["stats"]["events"] == 2


async def test_polls_return_only_new_events_never_twice(client: httpx.AsyncClient, database_url: str) -> None:
    h, site = await owner_site(client, database_url)
    await send(client, site, pv("a1"), pv("a2"))
    first = await feed(client, h, site)
    assert names(first) == ["a2", "a1"]
    quiet = await feed(client, h, site, cursor=first["cursor"])
    assert quiet["events"] == [] and quiet["more"] is False
    await send(client, site, pv("b1"), pv("b2"))
    await send(client, site, pv("b3"))
    second = await feed(client, h, site, cursor=quiet["cursor"])
    assert names(second) == ["b3", "b2", "b1"]
    assert names(await feed(client, h, site, cursor=second["cursor"])) == []
    # a stale cursor still answers everything since it, once per event
    assert names(await feed(client, h, site, cursor=first["cursor"])) == ["b3", "b2", "b1"]
    # filters apply to polls too
    await send(client, site, pv("c1"), {"event_name": "signup", "visitor_id": "c2"})
    assert names(await feed(client, h, site, cursor=second["cursor"], type="signup")) == ["c2"]


async def test_a_burst_larger_than_the_limit_is_caught_up_without_gaps(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    await send(client, site, pv("old"))
    cursor = (await feed(client, h, site))["cursor"]
    await send(client, site, *(pv(f"n{i}") for i in range(7)))
    seen: list[str] = []
    pages = []
    while True:
        page = await feed(client, h, site, cursor=cursor, limit=3)
        pages.append(names(page))
        seen += reversed(names(page))
        cursor = page["cursor"]
        if not page["more"]:
            break
    assert pages == [["n2", "n1", "n0"], ["n5", "n4", "n3"], ["n6"]]  # oldest pages first, each newest first
    assert seen == [f"n{i}" for i in range(7)]


async def test_a_batch_that_commits_late_is_not_missed(
    client: httpx.AsyncClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ids are minted before the commit: a poll must not step over one still being committed."""
    h, site = await owner_site(client, database_url)
    monkeypatch.setattr(live, "SETTLE_MARGIN", dt.timedelta(seconds=2))
    start = dt.datetime.now(dt.UTC)
    clock: list[dt.datetime] = [start]
    monkeypatch.setattr(live, "utcnow", lambda: clock[0])
    await send(client, site, pv("early"))
    # just received: held back until it settles
    assert names(await feed(client, h, site)) == []
    clock[0] = start + dt.timedelta(seconds=5)
    first = await feed(client, h, site)
    assert names(first) == ["early"]
    # another worker minted this id at start+4s (after the horizon) and commits only now
    db = Database(database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(
                insert(cast(Table, Event.__table__)).values(
                    id=uuid7_at(start + dt.timedelta(seconds=4)),
                    created_at=start + dt.timedelta(seconds=4),
                    site_id=site["id"],
                    event_name="page_view",
                    visitor_id="late",
                )
            )
    finally:
        await db.dispose()
    clock[0] = start + dt.timedelta(seconds=5, milliseconds=500)
    waiting = await feed(client, h, site, cursor=first["cursor"])
    assert names(waiting) == []  # not settled yet
    clock[0] = start + dt.timedelta(seconds=7)
    assert names(await feed(client, h, site, cursor=waiting["cursor"])) == ["late"]
    assert names(await feed(client, h, site, cursor=first["cursor"])) == ["late"]


async def test_experiment_name_and_variant_key_are_resolved(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live_experiment(client, h, site)
    variant = next(v for v in exp["variants"] if v["key"] == "variant_b")
    await send(
        client,
        site,
        {
            "event_name": "assignment",
            "visitor_id": "v1",
            "experiment_id": exp["id"],
            "variant_id": variant["id"],
        },
        {"event_name": "conversion", "visitor_id": "v2", "experiment_id": "not-an-experiment"},
    )
    body = await feed(client, h, site)
    unknown, assigned = body["events"]
    assert assigned["experiment_id"] == exp["id"] and assigned["experiment_name"] == "Homepage Hero Test"
    assert assigned["variant_id"] == variant["id"] and assigned["variant_key"] == "variant_b"
    assert unknown["experiment_id"] == "not-an-experiment" and unknown["experiment_name"] is None


async def test_stats_and_event_types(client: httpx.AsyncClient, database_url: str) -> None:
    h, site = await owner_site(client, database_url)
    await send(
        client,
        site,
        pv("alice"),
        pv("bob"),
        pv("alice"),
        {"event_name": "conversion", "visitor_id": "alice"},
        {"event_name": "conversion", "visitor_id": "carol"},
        {"event_name": "signup", "visitor_id": "dave"},
    )
    body = await feed(client, h, site, limit=2)
    assert len(body["events"]) == 2
    # over every matching event in the window, not only the page loaded
    assert body["stats"] == {"events": 6, "unique_visitors": 4, "conversions": 2}
    assert (await feed(client, h, site, type="page_view"))["stats"] == {
        "events": 3, "unique_visitors": 2, "conversions": 0,
    }  # fmt: skip
    assert (await feed(client, h, site, visitor="ALI"))["stats"] == {
        "events": 3, "unique_visitors": 1, "conversions": 1,
    }  # fmt: skip
    assert body["event_types"] == ["page_view", "conversion", "assignment", "time_on_page", "signup"]
    # the selected pill stays even when nothing of it is in the window
    assert (await feed(client, h, site, type="refund"))["event_types"][-2:] == ["refund", "signup"]


async def test_free_plan_gets_402_naming_the_plan(client: httpx.AsyncClient, database_url: str) -> None:
    h, site = await owner_site(client, database_url, plan="free")
    r = await client.get(f"/api/v1/projects/{site['id']}/events/live", headers=h)
    assert r.status_code == 402, r.text
    assert r.json()["detail"] == "Live events need the Professional plan; you are on Free."
    await set_plan(database_url, site["organization_id"], "professional")
    assert (await client.get(f"/api/v1/projects/{site['id']}/events/live", headers=h)).status_code == 200


async def test_another_organizations_project_is_404(client: httpx.AsyncClient, database_url: str) -> None:
    _, site = await owner_site(client, database_url)
    await send(client, site, pv("secret-visitor"))
    other = await signup(client, "mallory")
    await set_plan(database_url, other["organization"]["id"], "enterprise")
    r = await client.get(f"/api/v1/projects/{site['id']}/events/live", headers=bearer(other["token"]))
    assert r.status_code == 404, r.text
    assert "secret-visitor" not in r.text
    anonymous = await client.get(f"/api/v1/projects/{site['id']}/events/live")
    assert anonymous.status_code == 401


async def test_bad_parameters_are_400_naming_the_field(client: httpx.AsyncClient, database_url: str) -> None:
    h, site = await owner_site(client, database_url)
    for params, field in [
        ({"range": "month"}, "range"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"tz": "Mars/Olympus_Mons"}, "tz"),
        ({"type": "x" * 101}, "type"),
    ]:
        r = await client.get(f"/api/v1/projects/{site['id']}/events/live", params=params, headers=h)
        assert r.status_code == 400, (params, r.text)
        assert [e["field"] for e in r.json()["errors"]] == [field], (params, r.text)
    assert len((await feed(client, h, site, limit=500))["events"]) == 0
