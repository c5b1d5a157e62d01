"""Event ingestion end to end over real HTTP on both backends."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import text, update

from segmently.app import create_app
from segmently.db.engine import Database
from segmently.db.models import Organization
from segmently.domain.events import ingest
from segmently.plugins import PluginHost
from tests.conftest import make_settings, serve_app
from tests.core.accounts.test_team import db_update
from tests.core.experiments.test_experiments import owner_site
from tests.core.experiments.test_public_api import live

pytestmark = pytest.mark.usefixtures("backend")


async def rows(database_url: str, sql: str, **params: Any) -> list[Any]:
    db = Database(database_url)
    try:
        async with db.engine.connect() as conn:
            return list((await conn.execute(text(sql), params)).all())
    finally:
        await db.dispose()


def ids(exp: dict[str, Any]) -> dict[str, str]:
    return {v["key"]: v["id"] for v in exp["variants"]}


async def send(client: httpx.AsyncClient, key: str, events: list[dict[str, Any]]) -> httpx.Response:
    return await client.post("/api/v1/events/batch", json={"events": events}, headers={"X-API-Key": key})


async def test_a_batch_is_stored_and_a_retry_never_duplicates(
    client: httpx.AsyncClient, database_url: str
) -> None:
    _h, site = await owner_site(client, database_url)
    events = [
        {
            "event_name": "page_view",
            "visitor_id": f"v{i}",
            "event_id": f"e{i}",
            "url": "https://shop.example.com/",
        }
        for i in range(20)
    ]
    r = await send(client, site["api_key"], events)
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 20, "duplicates": 0, "rejected": {}}
    again = await send(
        client, site["api_key"], [*events, {"event_name": "signup", "visitor_id": "v1", "event_id": "new"}]
    )
    assert again.json() == {"accepted": 1, "duplicates": 20, "rejected": {}}
    stored = await rows(database_url, "SELECT count(*) FROM events WHERE site_id = :s", s=site["id"])
    assert stored[0][0] == 21


async def count(database_url: str, table: str, site_id: str) -> int:
    return int(
        (await rows(database_url, f"SELECT count(*) FROM {table} WHERE site_id = :s", s=site_id))[0][0]
    )


async def test_the_key_comes_in_a_header_the_query_or_the_body_and_text_plain_is_json(
    client: httpx.AsyncClient, database_url: str
) -> None:
    _h, site = await owner_site(client, database_url)
    key = site["api_key"]
    one = {"event_name": "page_view", "visitor_id": "v1"}
    assert (await client.post("/api/v1/events/batch", json={"events": [one]})).status_code == 401
    wrong = await send(client, "seg_live_nope", [one])
    assert wrong.status_code == 401 and "Unknown site API key" in wrong.json()["detail"]
    beacon = await client.post(
        f"/api/v1/events/batch?api_key={key}",
        content=json.dumps({"events": [one]}),
        headers={"Content-Type": "text/plain;charset=UTF-8"},
    )
    assert beacon.status_code == 202 and beacon.json()["accepted"] == 1
    in_body = await client.post(
        "/api/v1/events/track",
        content=json.dumps({**one, "api_key": key}),
        headers={"Content-Type": "text/plain"},
    )
    assert in_body.status_code == 202 and in_body.json() == {"accepted": 1, "duplicates": 0, "rejected": {}}
    assert await count(database_url, "events", site["id"]) == 2


async def test_a_suspended_organization_is_refused(
    client: httpx.AsyncClient, app: Litestar, database_url: str
) -> None:
    app.state.kernel.site_keys.ttl = 0.2  # the key cache forgets within its TTL (5 s in production)
    h, site = await owner_site(client, database_url)
    me = (await client.get("/api/v1/me", headers=h)).json()
    org_id = me["organization"]["id"] if "organization" in me else me["organizations"][0]["id"]
    await db_update(
        database_url, update(Organization).where(Organization.id == org_id).values(status="suspended")
    )
    await asyncio.sleep(0.3)
    r = await send(client, site["api_key"], [{"event_name": "page_view", "visitor_id": "v1"}])
    assert r.status_code == 403 and "suspended" in r.json()["detail"]
    assert await count(database_url, "events", site["id"]) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                "events": [
                    {"event_name": "page_view", "visitor_id": "ok"},
                    {"event_name": "page_view", "visitor_id": 7},
                ]
            },
            "events[1].visitor_id",
        ),
        ({"events": [{"event_name": "page_view"}]}, "events[0]"),
        ({"events": [{"event_name": "", "visitor_id": "v"}]}, "events[0].event_name"),
        (
            {"events": [{"event_name": "page_view", "visitor_id": "v", "event_data": [1]}]},
            "events[0].event_data",
        ),
        (
            {"events": [{"event_name": "page_view", "visitor_id": "v", "event_data": {"hidden_ms": -1}}]},
            "events[0].event_data.hidden_ms",
        ),
        ({"events": [{"event_name": "time_on_page", "visitor_id": "v"}]}, "events[0].event_data"),
        ({"events": [{"event_name": "assignment", "visitor_id": "v"}]}, "events[0].experiment_id"),
        (
            {"events": [{"event_name": "page_view", "visitor_id": "v", "event_id": "x" * 65}]},
            "events[0].event_id",
        ),
        ({"events": [{"event_name": "page_view", "visitor_id": "v", "colour": "red"}]}, "events[0]"),
        ({"events": [{"event_name": "page_view", "visitor_id": "v"}] * 501}, "events"),
        ({"events": []}, "events"),
    ],
)
async def test_a_malformed_event_refuses_the_whole_batch_naming_the_field(
    client: httpx.AsyncClient, database_url: str, body: dict[str, Any], field: str
) -> None:
    _h, site = await owner_site(client, database_url)
    r = await client.post("/api/v1/events/batch", json=body, headers={"X-API-Key": site["api_key"]})
    assert r.status_code == 400, r.text
    fields = [e["field"] for e in r.json()["errors"]]
    assert any(f == field or f.startswith(field + ".") for f in fields), fields
    assert await count(database_url, "events", site["id"]) == 0


async def test_a_goal_id_credits_that_goal_only_and_a_goal_name_every_goal_of_that_name(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    goals = [{"type": "click", "name": "CTA click", "selector": "#cta", "primary": True}]
    first = await live(client, h, site, goals=goals)
    second = await live(client, h, site, name="Second test", slug="second-test", goals=goals)
    events: list[dict[str, Any]] = [
        {
            "event_name": "assignment",
            "visitor_id": visitor,
            "experiment_id": exp["id"],
            "variant_id": ids(exp)["control"],
        }
        for exp in (first, second)
        for visitor in ("by-id", "by-name")
    ]
    events += [
        {
            "event_name": "conversion",
            "visitor_id": "by-id",
            "event_data": {"goal_id": first["goals"][0]["id"], "goal_name": "CTA click"},
        },
        {"event_name": "conversion", "visitor_id": "by-name", "event_data": {"goal_name": "CTA click"}},
    ]
    assert (await send(client, site["api_key"], events)).json()["accepted"] == 6
    got = await rows(
        database_url,
        "SELECT experiment_id, visitor_id FROM experiment_conversions WHERE site_id = :s",
        s=site["id"],
    )
    assert sorted(map(tuple, got)) == sorted(
        [(first["id"], "by-id"), (first["id"], "by-name"), (second["id"], "by-name")]
    )


async def test_malformed_json_and_oversized_bodies(client: httpx.AsyncClient, database_url: str) -> None:
    _h, site = await owner_site(client, database_url)
    key = {"X-API-Key": site["api_key"], "Content-Type": "application/json"}
    broken = await client.post("/api/v1/events/batch", content=b'{"events": [', headers=key)
    assert broken.status_code == 400 and "Malformed JSON" in broken.json()["detail"]
    big = {
        "events": [{"event_name": "page_view", "visitor_id": "v", "event_data": {"pad": "x" * 4000}}] * 300
    }
    too_big = await client.post("/api/v1/events/batch", content=json.dumps(big), headers=key)
    assert too_big.status_code == 413
    assert too_big.json()["errors"] == [
        {"field": "body", "message": "is larger than the limit of 1,048,576 bytes"}
    ]
    assert await count(database_url, "events", site["id"]) == 0


async def test_conversions_are_credited_only_after_assignment_once_per_goal_with_revenue_summed(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    goals = [
        {"type": "custom_event", "name": "Purchase", "primary": True, "event_name": "purchase"},
        {"type": "click", "name": "CTA click", "selector": "#cta"},
    ]
    exp = await live(client, h, site, goals=goals)
    purchase, cta = exp["goals"][0]["id"], exp["goals"][1]["id"]
    v = ids(exp)
    key = site["api_key"]
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)

    def at(minutes: int) -> str:
        return (t0 + dt.timedelta(minutes=minutes)).isoformat()

    r = await send(
        client,
        key,
        [
            # "early" converted before being assigned: not credited
            {
                "event_name": "purchase",
                "visitor_id": "early",
                "timestamp": at(0),
                "event_data": {"revenue": 50},
            },
            {
                "event_name": "assignment",
                "visitor_id": "early",
                "experiment_id": exp["id"],
                "variant_id": v["control"],
                "timestamp": at(1),
            },
            # "buyer" buys twice (revenue and value), clicks the CTA by goal id and by name
            {
                "event_name": "assignment",
                "visitor_id": "buyer",
                "experiment_id": exp["id"],
                "variant_id": v["variant_b"],
                "timestamp": at(1),
            },
            {
                "event_name": "purchase",
                "visitor_id": "buyer",
                "timestamp": at(2),
                "event_data": {"revenue": 19.5},
            },
            {
                "event_name": "purchase",
                "visitor_id": "buyer",
                "timestamp": at(3),
                "event_data": {"value": 5.25},
            },
            {
                "event_name": "conversion",
                "visitor_id": "buyer",
                "timestamp": at(4),
                "event_data": {"goal_id": cta},
            },
            {
                "event_name": "conversion",
                "visitor_id": "buyer",
                "timestamp": at(5),
                "event_data": {"goal_name": "CTA click"},
            },
            # a conversion naming no goal counts for the primary goal
            {
                "event_name": "assignment",
                "visitor_id": "plain",
                "experiment_id": exp["id"],
                "variant_id": v["control"],
                "timestamp": at(1),
            },
            {
                "event_name": "conversion",
                "visitor_id": "plain",
                "timestamp": at(2),
                "event_data": {"value": 3},
            },
            # a visitor in no experiment converts: stored, credited nowhere
            {"event_name": "purchase", "visitor_id": "outsider", "timestamp": at(2)},
        ],
    )
    assert r.status_code == 202 and r.json()["accepted"] == 10, r.text
    got = await rows(
        database_url,
        "SELECT visitor_id, goal_id, variant_id, count, revenue FROM experiment_conversions "
        "WHERE experiment_id = :e ORDER BY visitor_id, goal_id",
        e=exp["id"],
    )
    want = sorted(
        [
            ("buyer", purchase, v["variant_b"], 2, 24.75),
            ("buyer", cta, v["variant_b"], 2, 0.0),
            ("plain", purchase, v["control"], 1, 3.0),
        ]
    )
    assert sorted(tuple(r) for r in got) == want
    # a later batch adds to the same rows (revenue summed across batches)
    await send(
        client, key, [{"event_name": "purchase", "visitor_id": "buyer", "event_data": {"revenue": 0.25}}]
    )
    again = await rows(
        database_url,
        "SELECT count, revenue FROM experiment_conversions "
        "WHERE experiment_id = :e AND visitor_id = 'buyer' AND goal_id = :g",
        e=exp["id"],
        g=purchase,
    )
    assert tuple(again[0]) == (3, 25.0)


async def test_assignments_are_sticky_and_unknown_experiments_are_refused(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)
    v = ids(exp)
    a = {"event_name": "assignment", "visitor_id": "v1", "experiment_id": exp["id"]}
    r = await send(
        client,
        site["api_key"],
        [
            {**a, "variant_id": v["control"]},
            {**a, "variant_id": v["variant_b"]},  # a second answer never moves the visitor
            {**a, "experiment_id": "not-an-experiment", "variant_id": v["control"]},
            {**a, "variant_id": "not-a-variant"},
        ],
    )
    assert r.json() == {"accepted": 2, "duplicates": 0, "rejected": {"unknown_experiment": 2}}
    got = await rows(
        database_url, "SELECT variant_id FROM experiment_visitors WHERE experiment_id = :e", e=exp["id"]
    )
    assert [g[0] for g in got] == [v["control"]]


async def test_funnels_advance_in_order_only(client: httpx.AsyncClient, database_url: str) -> None:
    h, site = await owner_site(client, database_url)
    funnel = {
        "name": "Checkout",
        "steps": [
            {"label": "Landing", "url": "/"},
            {"label": "Product", "url": "/product"},
            {"label": "Cart", "event_name": "add_to_cart"},
            {"label": "Done", "url": "/thanks"},
        ],
    }
    exp = await live(client, h, site, funnels=[funnel])
    v = ids(exp)
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)

    def journey(visitor: str, *steps: tuple[str, str | None]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [
            {
                "event_name": "assignment",
                "visitor_id": visitor,
                "experiment_id": exp["id"],
                "variant_id": v["control"],
                "timestamp": t0.isoformat(),
            }
        ]
        for i, (name, path) in enumerate(steps, start=1):
            e: dict[str, Any] = {
                "event_name": name,
                "visitor_id": visitor,
                "timestamp": (t0 + dt.timedelta(seconds=i)).isoformat(),
            }
            if path is not None:
                e["url"] = "https://shop.example.com" + path
            out.append(e)
        return out

    events = [
        *journey(
            "all",
            ("page_view", "/"),
            ("page_view", "/products/1"),
            ("add_to_cart", None),
            ("page_view", "/thanks"),
        ),
        *journey("skipper", ("page_view", "/"), ("page_view", "/thanks"), ("page_view", "/product")),
        *journey(
            "backwards",
            ("page_view", "/thanks"),
            ("add_to_cart", None),
            ("page_view", "/product"),
            ("page_view", "/"),
        ),
        *journey("deep-home", ("page_view", "/about"), ("page_view", "/product")),
    ]
    assert (await send(client, site["api_key"], events)).json()["accepted"] == len(events)
    got = {
        r[0]: r[1]
        for r in await rows(
            database_url,
            "SELECT visitor_id, steps FROM funnel_progress WHERE experiment_id = :e",
            e=exp["id"],
        )
    }
    # "/" matches the homepage only; "/product" matches any path containing it
    assert got == {"all": 4, "skipper": 2, "backwards": 1}


async def test_time_on_page_and_bounces_are_kept_per_visitor(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)
    v = ids(exp)
    a = {"event_name": "assignment", "experiment_id": exp["id"], "variant_id": v["control"]}
    await send(client, site["api_key"], [{**a, "visitor_id": "stays"}, {**a, "visitor_id": "leaves"}])
    await send(
        client,
        site["api_key"],
        [
            {"event_name": "time_on_page", "visitor_id": "stays", "event_data": {"seconds": 30}},
            {"event_name": "time_on_page", "visitor_id": "stays", "event_data": {"seconds": 12.5}},
            {"event_name": "time_on_page", "visitor_id": "leaves", "event_data": {"seconds": 2}},
        ],
    )
    got = {
        r[0]: (r[1], r[2], bool(r[3]))
        for r in await rows(
            database_url,
            "SELECT visitor_id, time_on_page_s, time_on_page_n, bounced "
            "FROM experiment_visitors WHERE experiment_id = :e",
            e=exp["id"],
        )
    }
    assert got == {"stays": (42.5, 2, False), "leaves": (0.0, 0, True)}


async def ingested_heard() -> list[Any]:
    """What the fixture plugin heard through ``on_events_ingested``, once it heard anything (5 s at most)."""
    from segmently_dummy import plugin as dummy

    for _ in range(100):
        heard = [p for hook, p in dummy.RECORDED if hook == "on_events_ingested"]
        if heard:
            break
        await asyncio.sleep(0.05)
    return heard


async def test_plugin_events_need_the_feature_and_plugins_hear_after_commit(
    client: httpx.AsyncClient, database_url: str
) -> None:

    _h, site = await owner_site(client, database_url, plan="professional")
    ping = {"event_name": "dummy_ping", "visitor_id": "v", "event_data": {"count": 1}}
    bad = await send(client, site["api_key"], [{**ping, "event_data": {"count": "one"}}])
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "events[0].event_data.count"
    r = await send(client, site["api_key"], [ping, {"event_name": "page_view", "visitor_id": "v"}])
    assert r.json() == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": {"not_entitled": 1},
    }  # dummy.pid is business
    heard = await ingested_heard()
    stored = await rows(database_url, "SELECT id FROM events WHERE site_id = :s", s=site["id"])
    assert heard == [[stored[0][0]]]


async def test_concurrent_single_events_each_get_their_own_answer(
    client: httpx.AsyncClient, database_url: str
) -> None:
    """/events/track requests arriving together share transactions; each answer stays its own."""
    from segmently_dummy import plugin as dummy

    _h, site = await owner_site(client, database_url, plan="professional")
    key = {"X-API-Key": site["api_key"]}
    bodies: list[dict[str, Any]] = [
        {"event_name": "page_view", "visitor_id": f"v{i}", "event_id": f"e{i}"} for i in range(30)
    ]
    bodies += [
        {"event_name": "page_view", "visitor_id": "v0", "event_id": "e0"},  # a retry of e0
        {"event_name": "dummy_ping", "visitor_id": "v1", "event_data": {"count": 1}},  # business only
        {"event_name": "assignment", "visitor_id": "v2", "experiment_id": "nope", "variant_id": "x"},
        {"event_name": "page_view", "visitor_id": "v3", "timestamp": "2001-01-01T00:00:00Z"},
    ]
    answers = await asyncio.gather(
        *(client.post("/api/v1/events/track", json=b, headers=key) for b in bodies)
    )
    assert {a.status_code for a in answers} == {202}
    got = [a.json() for a in answers]
    accepted = {"accepted": 1, "duplicates": 0, "rejected": {}}
    duplicate = {"accepted": 0, "duplicates": 1, "rejected": {}}
    # e0 and its retry: one of the two stored, the other a duplicate, whichever went first
    assert sorted([got[0], got[30]], key=lambda g: g["accepted"]) == [duplicate, accepted]
    assert got[1:30] == [accepted] * 29
    assert got[31:] == [
        {"accepted": 0, "duplicates": 0, "rejected": {"not_entitled": 1}},
        {"accepted": 0, "duplicates": 0, "rejected": {"unknown_experiment": 1}},
        {"accepted": 0, "duplicates": 0, "rejected": {"timestamp_too_old": 1}},
    ]
    assert await count(database_url, "events", site["id"]) == 30
    # a malformed one is refused alone
    bad = await client.post("/api/v1/events/track", json={"event_name": "page_view"}, headers=key)
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "visitor_id"
    assert dummy is not None


def fail_once(monkeypatch: pytest.MonkeyPatch, cls: type, method: str) -> list[int]:
    """Makes the first call of the async ``cls.method`` raise; returns the list its calls fill."""
    real, calls = getattr(cls, method), []

    async def first_fails(self: Any, *args: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("could not write to the disk")
        return await real(self, *args)

    monkeypatch.setattr(cls, method, first_fails)
    return calls


async def test_a_failed_transaction_fails_its_requests_only_and_their_retry_stores_once(
    client: httpx.AsyncClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segmently.domain.events.ingest import Ingestor

    _h, site = await owner_site(client, database_url)
    fail_once(monkeypatch, Ingestor, "commit")
    key = {"X-API-Key": site["api_key"]}
    bodies = [{"event_name": "page_view", "visitor_id": f"v{i}", "event_id": f"e{i}"} for i in range(4)]
    track = "/api/v1/events/track"
    answers = await asyncio.gather(*(client.post(track, json=b, headers=key) for b in bodies))
    failed = [b for b, a in zip(bodies, answers, strict=True) if a.status_code == 500]
    assert len(failed) >= 1 and all(a.status_code in (202, 500) for a in answers)
    assert await count(database_url, "events", site["id"]) == 4 - len(failed)
    for body in failed + bodies:  # the client resends what failed (and, to be sure, everything)
        await client.post(track, json=body, headers=key)
    assert await count(database_url, "events", site["id"]) == 4


async def test_old_timestamps_are_refused_and_future_ones_clamped(
    client: httpx.AsyncClient, database_url: str
) -> None:
    _h, site = await owner_site(client, database_url)
    now = dt.datetime.now(dt.UTC)
    r = await send(
        client,
        site["api_key"],
        [
            {
                "event_name": "page_view",
                "visitor_id": "v",
                "timestamp": (now - dt.timedelta(days=31)).isoformat(),
            },
            {
                "event_name": "page_view",
                "visitor_id": "v",
                "timestamp": (now + dt.timedelta(days=2)).isoformat(),
            },
            {"event_name": "page_view", "visitor_id": "v", "timestamp": "2026-11-01T10:00:00"},  # naive: UTC
        ],
    )
    assert r.json() == {"accepted": 2, "duplicates": 0, "rejected": {"timestamp_too_old": 1}}
    times = sorted(
        r[0]
        for r in await rows(database_url, "SELECT created_at FROM events WHERE site_id = :s", s=site["id"])
    )
    as_utc = [t if isinstance(t, dt.datetime) else dt.datetime.fromisoformat(t) for t in times]
    assert as_utc[0].replace(tzinfo=dt.UTC) == dt.datetime(2026, 11, 1, 10, tzinfo=dt.UTC)
    assert abs((as_utc[1].replace(tzinfo=dt.UTC) - now).total_seconds()) < 60


async def test_the_free_plan_caps_monthly_visitors(
    database_url: str, tmp_path: Path, plugins: PluginHost
) -> None:
    plans = tmp_path / "plans.toml"
    plans.write_text("[plans.free]\nmonthly_visitors = 3\n")
    app = create_app(make_settings(database_url, tmp_path, plans_file=plans), plugins)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as client:
        _h, site = await owner_site(client, database_url, plan="free")

        def pv(visitor: str) -> dict[str, str]:
            return {"event_name": "page_view", "visitor_id": visitor}

        first = await send(
            client, site["api_key"], [pv("a"), pv("b"), pv("a"), pv("c"), pv("d"), pv("e"), pv("d")]
        )
        assert first.json() == {"accepted": 4, "duplicates": 0, "rejected": {"visitor_limit": 3}}
        known = await send(client, site["api_key"], [pv("b"), pv("f")])  # counted visitors keep coming in
        assert known.json() == {"accepted": 1, "duplicates": 0, "rejected": {"visitor_limit": 1}}
        stored = await rows(
            database_url, "SELECT DISTINCT visitor_id FROM events WHERE site_id = :s", s=site["id"]
        )
        assert sorted(r[0] for r in stored) == ["a", "b", "c"]


@pytest.mark.postgresql_only
async def test_postgresql_stores_events_in_monthly_partitions(
    client: httpx.AsyncClient, database_url: str
) -> None:
    _h, site = await owner_site(client, database_url)
    await send(client, site["api_key"], [{"event_name": "page_view", "visitor_id": "v"}])
    got = await rows(
        database_url, "SELECT tableoid::regclass::text FROM events WHERE site_id = :s", s=site["id"]
    )
    now = dt.datetime.now(dt.UTC)
    assert got[0][0] == f"events_p{now.year:04d}_{now.month:02d}"


@pytest.mark.parametrize(("size", "small_batch"), [(3, None), (40, None), (40, 10)])
async def test_a_batch_of_only_duplicates_stores_nothing_and_says_so(
    client: httpx.AsyncClient,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    size: int,
    small_batch: int | None,
) -> None:
    # on PostgreSQL a request takes one statement; groups past SMALL_BATCH claim the ids and COPY
    # (SQLite: claim, then executemany); the bulk path runs where it should
    if small_batch is not None:
        monkeypatch.setattr(ingest, "SMALL_BATCH", small_batch)
    bulk, real = [], ingest.Ingestor._insert_events

    async def counted(self: ingest.Ingestor, conn: Any, site_id: str, stored: list[Any]) -> None:
        bulk.append(len(stored))
        await real(self, conn, site_id, stored)

    monkeypatch.setattr(ingest.Ingestor, "_insert_events", counted)
    _h, site = await owner_site(client, database_url)
    events = [{"event_name": "page_view", "visitor_id": f"v{i}", "event_id": f"e{i}"} for i in range(size)]
    assert (await send(client, site["api_key"], events)).json()["accepted"] == size
    one_statement = database_url.startswith("postgresql") and small_batch is None
    assert bulk == ([] if one_statement else [size])
    again = await send(client, site["api_key"], events)
    assert again.status_code == 202 and again.json() == {"accepted": 0, "duplicates": size, "rejected": {}}
    assert await count(database_url, "events", site["id"]) == size


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"url": "https://shop.example.com/\u0000"}, "events[1].url"),
        ({"visitor_id": "v\u0000"}, "events[1].visitor_id"),
        ({"event_data": {"note": "a\u0000b"}}, "events[1].event_data"),
    ],
)
async def test_a_nul_character_is_refused_by_name_on_both_backends(
    client: httpx.AsyncClient, database_url: str, event: dict[str, Any], field: str
) -> None:
    _h, site = await owner_site(client, database_url)
    good = {"event_name": "page_view", "visitor_id": "v"}
    r = await send(client, site["api_key"], [good, {**good, **event}])
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == field, r.text
    assert await count(database_url, "events", site["id"]) == 0


async def test_an_event_at_the_same_instant_as_its_assignment_counts_only_after_it(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)
    v = ids(exp)
    at = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    assign = {
        "event_name": "assignment",
        "experiment_id": exp["id"],
        "variant_id": v["control"],
        "timestamp": at,
    }
    convert = {"event_name": "conversion", "timestamp": at}
    r = await send(
        client,
        site["api_key"],
        [
            {**convert, "visitor_id": "before"},
            {**assign, "visitor_id": "before"},
            {**assign, "visitor_id": "after"},
            {**convert, "visitor_id": "after"},
        ],
    )
    assert r.json()["accepted"] == 4
    got = await rows(
        database_url, "SELECT visitor_id FROM experiment_conversions WHERE experiment_id = :e", e=exp["id"]
    )
    assert [g[0] for g in got] == ["after"]


async def test_the_visitor_cap_holds_under_concurrent_batches(
    database_url: str, tmp_path: Path, plugins: PluginHost
) -> None:
    plans = tmp_path / "plans.toml"
    plans.write_text("[plans.free]\nmonthly_visitors = 5\n")
    app = create_app(make_settings(database_url, tmp_path, plans_file=plans), plugins)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        _h, site = await owner_site(client, database_url, plan="free")
        answers = await asyncio.gather(
            *(
                send(client, site["api_key"], [{"event_name": "page_view", "visitor_id": f"v{i}"}])
                for i in range(30)
            )
        )
        assert sum(a.json()["accepted"] for a in answers) == 5
        assert sum(a.json()["rejected"].get("visitor_limit", 0) for a in answers) == 25
        stored = await rows(
            database_url, "SELECT count(DISTINCT visitor_id) FROM events WHERE site_id = :s", s=site["id"]
        )
        assert stored[0][0] == 5


async def test_revenue_must_be_a_finite_amount(client: httpx.AsyncClient, database_url: str) -> None:
    _h, site = await owner_site(client, database_url)
    r = await client.post(
        "/api/v1/events/batch",
        content=b'{"events": [{"event_name": "conversion", "visitor_id": "v", '
        b'"event_data": {"revenue": 1e999}}]}',
        headers={"X-API-Key": site["api_key"], "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "events[0].event_data.revenue", r.text
    assert await count(database_url, "events", site["id"]) == 0


async def test_a_conversion_that_arrives_before_its_earlier_assignment_is_credited_once(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    first = await live(client, h, site, name="First test")
    second = await live(client, h, site, name="Second test")
    a, b = ids(first), ids(second)
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)

    def at(minutes: int) -> str:
        return (t0 + dt.timedelta(minutes=minutes)).isoformat()

    key = site["api_key"]
    assign = {"event_name": "assignment", "visitor_id": "v"}
    # in the first test since minute 0; converts at minute 2 — this request arrives first …
    await send(
        client,
        key,
        [{**assign, "experiment_id": first["id"], "variant_id": a["control"], "timestamp": at(0)}],
    )
    await send(
        client,
        key,
        [{"event_name": "conversion", "visitor_id": "v", "timestamp": at(2), "event_data": {"value": 7}}],
    )
    # … and the second test's assignment at minute 1 arrives after it (another process, a beacon)
    await send(
        client,
        key,
        [{**assign, "experiment_id": second["id"], "variant_id": b["variant_b"], "timestamp": at(1)}],
    )
    # an assignment after the conversion does not pull it in
    third = await live(client, h, site, name="Third test")
    c = ids(third)
    await send(
        client,
        key,
        [{**assign, "experiment_id": third["id"], "variant_id": c["control"], "timestamp": at(3)}],
    )
    got = await rows(
        database_url,
        "SELECT experiment_id, count, revenue FROM experiment_conversions WHERE visitor_id = 'v'",
    )
    assert sorted(map(tuple, got)) == sorted([(first["id"], 1, 7.0), (second["id"], 1, 7.0)])


async def test_an_event_id_twice_in_one_batch_is_stored_once(
    client: httpx.AsyncClient, database_url: str
) -> None:
    _h, site = await owner_site(client, database_url)
    events = [
        {"event_name": "page_view", "visitor_id": "v1", "event_id": "same"},
        {"event_name": "page_view", "visitor_id": "v2", "event_id": "other"},
        {"event_name": "signup", "visitor_id": "v1", "event_id": "same"},  # a client's bug: the id again
    ]
    r = await send(client, site["api_key"], events)
    assert r.status_code == 202 and r.json() == {"accepted": 2, "duplicates": 1, "rejected": {}}
    stored = await rows(
        database_url, "SELECT client_event_id, event_name FROM events WHERE site_id = :s", s=site["id"]
    )
    assert sorted(stored) == [("other", "page_view"), ("same", "page_view")]  # the first one kept


async def test_a_batch_failing_after_its_first_writes_leaves_nothing_and_no_plugin_hears_of_it(
    client: httpx.AsyncClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The events, their ids, the assignment are written before the conversion is credited; a failure
    there rolls all of it back (500), plugins hear nothing, and the client's resend stores it once."""
    from segmently_dummy import plugin as dummy

    from segmently.domain.events.ingest import Ingestor

    h, site = await owner_site(client, database_url, plan="professional")
    exp = await live(client, h, site)
    v = ids(exp)
    calls = fail_once(monkeypatch, Ingestor, "_credit")
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    batch = [
        {
            "event_name": "assignment",
            "visitor_id": "buyer",
            "experiment_id": exp["id"],
            "variant_id": v["variant_b"],
            "event_id": "a1",
            "timestamp": t0.isoformat(),
        },
        {
            "event_name": "conversion",
            "visitor_id": "buyer",
            "event_id": "c1",
            "event_data": {"revenue": 30},
            "timestamp": (t0 + dt.timedelta(minutes=1)).isoformat(),
        },
        {"event_name": "page_view", "visitor_id": "browser", "event_id": "p1"},
    ]
    failed = await send(client, site["api_key"], batch)
    assert failed.status_code == 500 and calls == [1]
    for table in ("events", "event_keys"):
        assert await count(database_url, table, site["id"]) == 0, table
    for table in ("experiment_visitors", "experiment_conversions"):
        found = await rows(
            database_url, f"SELECT count(*) FROM {table} WHERE experiment_id = :e", e=exp["id"]
        )
        assert found[0][0] == 0, table
    await asyncio.sleep(0.3)
    assert [p for hook, p in dummy.RECORDED if hook == "on_events_ingested"] == []

    again = await send(client, site["api_key"], batch)
    assert again.status_code == 202 and again.json() == {"accepted": 3, "duplicates": 0, "rejected": {}}
    credited = await rows(
        database_url,
        "SELECT visitor_id, revenue FROM experiment_conversions WHERE experiment_id = :e",
        e=exp["id"],
    )
    assert [(visitor, float(revenue)) for visitor, revenue in credited] == [("buyer", 30.0)]
    heard = await ingested_heard()
    stored = await rows(database_url, "SELECT id FROM events WHERE site_id = :s", s=site["id"])
    assert len(heard) == 1 and sorted(heard[0]) == sorted(r[0] for r in stored)


async def test_a_beacon_batch_may_carry_its_key_in_the_body(
    client: httpx.AsyncClient, database_url: str
) -> None:
    _h, site = await owner_site(client, database_url)
    beacon = await client.post(
        "/api/v1/events/batch",
        content=json.dumps(
            {"api_key": site["api_key"], "events": [{"event_name": "page_view", "visitor_id": "v"}]}
        ),
        headers={"Content-Type": "text/plain;charset=UTF-8"},
    )
    assert beacon.status_code == 202 and beacon.json() == {"accepted": 1, "duplicates": 0, "rejected": {}}
    wrong = await client.post(
        "/api/v1/events/batch",
        content=json.dumps(
            {"api_key": "seg_live_nope", "events": [{"event_name": "page_view", "visitor_id": "v"}]}
        ),
        headers={"Content-Type": "text/plain"},
    )
    assert wrong.status_code == 401
    assert await count(database_url, "events", site["id"]) == 1
