"""``GET /api/v1/analytics/overview``: every experiment of the organization, filtered and sorted."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event, update

from segmently.db.engine import Database
from segmently.db.models import Experiment, ExperimentVisitor, Organization
from segmently.domain.accounts.auth import Actor
from segmently.domain.analytics.overview import overview as overview_service
from segmently.domain.analytics.results import experiment_results
from tests.core.accounts.test_auth import bearer, signup
from tests.core.accounts.test_team import db_update
from tests.core.analytics.seed import live, owner_site, populate
from tests.core.experiments.test_experiments import hero

pytestmark = pytest.mark.usefixtures("backend")
OVERVIEW = "/api/v1/analytics/overview"


async def overview(client: httpx.AsyncClient, h: dict[str, str], **params: str) -> dict[str, Any]:
    r = await client.get(OVERVIEW, params=params, headers=h)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def names(body: dict[str, Any]) -> list[str]:
    return [e["name"] for e in body["experiments"]]


async def world(client: httpx.AsyncClient, database_url: str) -> tuple[dict[str, str], dict[str, Any]]:
    """Site 1: Alpha (live, 30 visitors, 6 conv), Beta (paused, 10/4); site 2: Gamma (live, 50/5),
    Delta (draft), Epsilon (archived)."""
    h, shop = await owner_site(client, database_url)
    blog = (
        await client.post(
            "/api/v1/projects", json={"name": "Blog", "url": "https://blog.example.com"}, headers=h
        )
    ).json()
    alpha = await live(client, h, shop, name="Alpha")
    beta = await live(client, h, shop, name="Beta")
    gamma = await live(client, h, blog, name="Gamma")
    delta = (
        await client.post(f"/api/v1/projects/{blog['id']}/experiments", json=hero(name="Delta"), headers=h)
    ).json()
    eps = await live(client, h, blog, name="Epsilon")
    await populate(client, shop["api_key"], alpha, {"control": (15, 2), "variant_b": (15, 4)}, prefix="a")
    await populate(client, shop["api_key"], beta, {"control": (5, 2), "variant_b": (5, 2)}, prefix="b")
    await populate(client, blog["api_key"], gamma, {"control": (25, 2), "variant_b": (25, 3)}, prefix="g")
    assert (await client.post(f"/api/v1/experiments/{beta['id']}/pause", headers=h)).status_code == 200
    assert (await client.post(f"/api/v1/experiments/{eps['id']}/archive", headers=h)).status_code == 200
    return h, {"shop": shop, "blog": blog, "alpha": alpha, "beta": beta, "gamma": gamma, "delta": delta}


async def test_rows_summary_filters_and_sorting(client: httpx.AsyncClient, database_url: str) -> None:
    h, w = await world(client, database_url)
    body = await overview(client, h)
    assert body["summary"] == {"total": 5, "live": 2, "active": 2, "paused": 1, "archived": 1, "draft": 1}
    assert names(body) == ["Epsilon", "Delta", "Gamma", "Beta", "Alpha"]  # newest first
    alpha = next(e for e in body["experiments"] if e["name"] == "Alpha")
    assert alpha == {
        "id": w["alpha"]["id"],
        "name": "Alpha",
        "slug": w["alpha"]["slug"],
        "site_id": w["shop"]["id"],
        "site_name": "Shop",
        "status": "live",
        "visitors": 30,
        "conversions": 6,
        "conversion_rate": pytest.approx(20.0),
        "created_at": alpha["created_at"],
        "activated_at": alpha["activated_at"],
    }
    assert alpha["activated_at"] is not None
    delta = next(e for e in body["experiments"] if e["name"] == "Delta")
    assert (delta["visitors"], delta["conversion_rate"], delta["activated_at"]) == (0, 0.0, None)

    assert names(await overview(client, h, sort="visitors")) == ["Gamma", "Alpha", "Beta", "Epsilon", "Delta"]
    assert names(await overview(client, h, sort="conversions", order="asc"))[-2:] == ["Gamma", "Alpha"]
    assert names(await overview(client, h, sort="rate"))[:3] == ["Beta", "Alpha", "Gamma"]  # 40, 20, 10 %
    assert names(await overview(client, h, sort="date", order="asc")) == [
        "Alpha",
        "Beta",
        "Gamma",
        "Delta",
        "Epsilon",
    ]

    shop = await overview(client, h, site_id=w["shop"]["id"])
    assert sorted(names(shop)) == ["Alpha", "Beta"] and shop["summary"]["total"] == 2
    live_only = await overview(client, h, status="active")
    assert sorted(names(live_only)) == ["Alpha", "Gamma"] and live_only["summary"]["total"] == 5
    assert names(await overview(client, h, status="paused")) == ["Beta"]
    assert names(await overview(client, h, status="draft", site_id=w["blog"]["id"])) == ["Delta"]

    for bad in ({"sort": "name"}, {"range": "1y"}, {"status": "running"}, {"order": "up"}):
        r = await client.get(OVERVIEW, params=bad, headers=h)
        assert r.status_code == 400, (bad, r.text)


async def test_the_range_counts_the_window_cohort(client: httpx.AsyncClient, database_url: str) -> None:
    h, _ = await world(client, database_url)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=45)
    # four of Alpha's control visitors (two of whom converted) joined 45 days ago
    await db_update(
        database_url,
        update(ExperimentVisitor)
        .where(ExperimentVisitor.visitor_id.in_([f"a-control-{i}" for i in range(4)]))
        .values(assigned_at=old),
    )
    # Delta (a draft without visitors) was created 45 days ago; Epsilon is archived without visitors
    await db_update(database_url, update(Experiment).where(Experiment.name == "Delta").values(created_at=old))
    await db_update(
        database_url, update(Experiment).where(Experiment.name == "Epsilon").values(created_at=old)
    )
    month = await overview(client, h, range="30d")
    assert month["range"] == "30d" and month["since"] is not None
    assert sorted(names(month)) == ["Alpha", "Beta", "Gamma"]
    alpha = next(e for e in month["experiments"] if e["name"] == "Alpha")
    assert (alpha["visitors"], alpha["conversions"]) == (26, 4)
    assert month["summary"] == {"total": 3, "live": 2, "active": 2, "paused": 1, "archived": 0, "draft": 0}
    everything = await overview(client, h, range="all")
    assert everything["since"] is None and everything["summary"]["total"] == 5
    assert next(e for e in everything["experiments"] if e["name"] == "Alpha")["visitors"] == 30


async def test_another_organization_sees_only_its_own(client: httpx.AsyncClient, database_url: str) -> None:
    h, w = await world(client, database_url)
    other = bearer((await signup(client, "mallory"))["token"])
    body = await overview(client, other)
    assert body["experiments"] == [] and body["summary"]["total"] == 0
    r = await client.get(OVERVIEW, params={"site_id": w["shop"]["id"]}, headers=other)
    assert r.status_code == 404 and w["shop"]["id"] not in r.text
    assert (await client.get(OVERVIEW)).status_code == 401
    assert (await overview(client, h))["summary"]["total"] == 5


@contextmanager
def count_queries(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)


async def looks(database_url: str, org_id: str, experiment_id: str) -> tuple[int, list[str]]:
    """Statements of one overview and one results call, on a database of our own (no background jobs)."""
    db = Database(database_url)
    try:
        async with db.session() as session:
            org = await session.get_one(Organization, org_id)
            actor = Actor(user=None, organization=org, role="owner", via="token")
            with count_queries(db) as seen:
                body = await overview_service(session, actor)
                await experiment_results(session, actor, experiment_id)
            await session.commit()
        return body.summary.total, seen
    finally:
        await db.dispose()


async def test_query_count_does_not_grow_with_experiments(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    org_id = (await client.get("/api/v1/me", headers=h)).json()["organization"]["id"]
    exp = await live(client, h, site, name="First")
    await populate(client, site["api_key"], exp, {"control": (3, 1), "variant_b": (3, 1)})
    await looks(database_url, org_id, exp["id"])  # the first look stores the running minimum
    total, one = await looks(database_url, org_id, exp["id"])
    assert total == 1
    for i in range(4):
        more = await live(client, h, site, name=f"More {i}")
        await populate(
            client, site["api_key"], more, {"control": (3, 1), "variant_b": (3, 1)}, prefix=f"m{i}"
        )
    total, five = await looks(database_url, org_id, exp["id"])
    assert total == 5
    assert len(five) == len(one), five
    assert not any("FROM events" in q for q in five)
