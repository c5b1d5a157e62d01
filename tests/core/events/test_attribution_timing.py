"""Attribution right after an experiment changes, and of a visitor's requests that arrive together."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
import pytest

from segmently.domain.events import ingest
from tests.core.events.test_ingest import ids, rows, send
from tests.core.experiments.test_experiments import hero, owner_site
from tests.core.experiments.test_public_api import live

pytestmark = pytest.mark.usefixtures("backend")


async def credited(database_url: str, experiment_id: str) -> list[tuple[Any, ...]]:
    got = await rows(
        database_url,
        "SELECT visitor_id, variant_id, count FROM experiment_conversions WHERE experiment_id = :e "
        "ORDER BY visitor_id",
        e=experiment_id,
    )
    return [tuple(x) for x in got]


async def test_a_conversion_right_after_launch_is_credited_to_a_server_side_assignment(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    key = site["api_key"]
    # the site's traffic before the launch: the server now remembers "no running experiment"
    await send(client, key, [{"event_name": "page_view", "visitor_id": "other"}])
    exp = (await client.post(f"/api/v1/projects/{site['id']}/experiments", json=hero(), headers=h)).json()
    assert (await client.post(f"/api/v1/experiments/{exp['id']}/start", headers=h)).status_code == 200
    a = await client.post(
        f"/api/v1/experiments/{exp['slug']}/assign",
        json={"visitor_id": "v1", "targeting_data": {"url": "https://shop.example.com/"}},
        headers={"X-API-Key": key},
    )
    assert a.json()["in_experiment"] is True  # stored in experiment_visitors at once
    r = await send(client, key, [{"event_name": "conversion", "visitor_id": "v1"}])
    assert r.json()["accepted"] == 1
    assert await credited(database_url, exp["id"]) == [("v1", a.json()["variant"]["id"], 1)]


async def test_an_archived_experiment_takes_no_more_assignments_or_conversions_at_once(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)
    v = ids(exp)
    key = site["api_key"]
    assign = {"event_name": "assignment", "experiment_id": exp["id"], "variant_id": v["control"]}
    assert (await send(client, key, [{**assign, "visitor_id": "before"}])).json()["accepted"] == 1
    archived = await client.post(f"/api/v1/experiments/{exp['id']}/archive", headers=h)
    assert archived.status_code == 200, archived.text
    r = await send(
        client,
        key,
        [{**assign, "visitor_id": "after"}, {"event_name": "conversion", "visitor_id": "before"}],
    )
    assert r.json() == {"accepted": 1, "duplicates": 0, "rejected": {"unknown_experiment": 1}}
    assigned = await rows(
        database_url, "SELECT visitor_id FROM experiment_visitors WHERE experiment_id = :e", e=exp["id"]
    )
    assert [x[0] for x in assigned] == ["before"]
    assert await credited(database_url, exp["id"]) == []  # its results stay as they were at archiving


async def test_an_assignment_to_a_variant_removed_a_moment_ago_is_refused_not_a_server_error(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)
    v = ids(exp)
    key = site["api_key"]
    assign = {"event_name": "assignment", "experiment_id": exp["id"]}
    r = await send(client, key, [{**assign, "visitor_id": "v1", "variant_id": v["variant_b"]}])
    assert r.json()["accepted"] == 1
    assert (await client.post(f"/api/v1/experiments/{exp['id']}/pause", headers=h)).status_code == 200
    edited = await client.patch(
        f"/api/v1/experiments/{exp['id']}",
        json={
            "variants": [
                {"key": "control", "name": "Control", "weight": 50},
                {"key": "variant_c", "name": "Variant C", "weight": 50},
            ]
        },
        headers=h,
    )
    assert edited.status_code == 200, edited.text
    assert (await client.post(f"/api/v1/experiments/{exp['id']}/resume", headers=h)).status_code == 200
    r = await send(client, key, [{**assign, "visitor_id": "v2", "variant_id": v["variant_b"]}])
    assert r.status_code == 202, r.text  # a 500 on both backends: the variant's row is gone
    assert r.json() == {"accepted": 0, "duplicates": 0, "rejected": {"unknown_experiment": 1}}


async def test_a_conversion_racing_its_assignment_is_credited(
    client: httpx.AsyncClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fetch carrying the assignment and the pagehide beacon carrying the conversion arrive together."""
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)  # primary goal: custom_event "conversion"
    v = ids(exp)
    key = site["api_key"]
    real = ingest.Ingestor._stored_events

    async def slow(self: ingest.Ingestor, *args: Any, **kwargs: Any) -> list[ingest.Accepted]:
        found = await real(self, *args, **kwargs)
        await asyncio.sleep(0.5)  # the assigning transaction is still open (a slow commit under load)
        return found

    monkeypatch.setattr(ingest.Ingestor, "_stored_events", slow)
    assignment = {
        "event_name": "assignment",
        "visitor_id": "v1",
        "event_id": "a1",
        "experiment_id": exp["id"],
        "variant_id": v["variant_b"],
    }

    async def beacon() -> httpx.Response:
        await asyncio.sleep(0.1)  # sent after the assignment: its event is later
        return await send(client, key, [{"event_name": "conversion", "visitor_id": "v1", "event_id": "c1"}])

    a, b = await asyncio.gather(send(client, key, [assignment]), beacon())
    assert a.json()["accepted"] == 1 and b.json()["accepted"] == 1
    assert await credited(database_url, exp["id"]) == [("v1", v["variant_b"], 1)]


async def test_a_conversion_whose_earlier_assignment_arrives_while_it_is_stored_is_credited(
    client: httpx.AsyncClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other order: the conversion's transaction is under way when its assignment's request comes."""
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)
    v = ids(exp)
    key = site["api_key"]
    real = ingest.Ingestor._assignments_of

    async def slow(self: ingest.Ingestor, *args: Any, **kwargs: Any) -> list[Any]:
        found = await real(self, *args, **kwargs)
        if not found:  # the conversion's batch found no assignment; its commit is slow under load
            await asyncio.sleep(0.5)
        return found

    monkeypatch.setattr(ingest.Ingestor, "_assignments_of", slow)
    # the visitor was assigned a minute ago (another SDK process), that request comes late
    assignment = {
        "event_name": "assignment",
        "visitor_id": "v1",
        "event_id": "a1",
        "experiment_id": exp["id"],
        "variant_id": v["control"],
        "timestamp": (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat(),
    }

    async def late() -> httpx.Response:
        await asyncio.sleep(0.1)
        return await send(client, key, [assignment])

    b, a = await asyncio.gather(
        send(client, key, [{"event_name": "conversion", "visitor_id": "v1", "event_id": "c1"}]), late()
    )
    assert a.json()["accepted"] == 1 and b.json()["accepted"] == 1
    assert await credited(database_url, exp["id"]) == [("v1", v["control"], 1)]
