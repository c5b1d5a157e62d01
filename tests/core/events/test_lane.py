"""The events lane answers like the framework: headers, limits, metrics, bodies in pieces."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from segmently.app import create_app
from tests.conftest import serve_app
from tests.core.events.test_ingest import count, rows
from tests.core.experiments.test_experiments import owner_site
from tests.core.experiments.test_public_api import live

pytestmark = pytest.mark.usefixtures("backend")

TRACK = "/api/v1/events/track"
ORIGIN = "https://shop.example.com"
SHARED = (
    "access-control-allow-origin",
    "access-control-allow-headers",
    "access-control-allow-methods",
    "access-control-expose-headers",
    "vary",
    "x-content-type-options",
    "referrer-policy",
    "x-frame-options",
    "content-type",
)


def shared(r: httpx.Response) -> dict[str, str | None]:
    return {name: r.headers.get(name) for name in SHARED}


@pytest.mark.parametrize("cookie", [False, True], ids=["no-cookie", "cookie"])
async def test_a_stored_event_gets_the_same_cors_and_security_headers_as_a_refused_one(
    client: httpx.AsyncClient, database_url: str, cookie: bool
) -> None:
    _h, site = await owner_site(client, database_url)
    headers = {"X-API-Key": site["api_key"], "Origin": ORIGIN}
    if cookie:
        headers["Cookie"] = "seg_visitor_id=v1"
    client.cookies.clear()
    stored = await client.post(TRACK, json={"event_name": "page_view", "visitor_id": "v1"}, headers=headers)
    refused = await client.post(
        TRACK, json={"event_name": "page_view"}, headers=headers
    )  # the framework's 400
    assert stored.status_code == 202 and refused.status_code == 400
    assert stored.json() == {"accepted": 1, "duplicates": 0, "rejected": {}}
    assert shared(stored) == shared(refused)
    # a page on the customer's site may read the answer; it is never framed-denied
    assert stored.headers["access-control-allow-origin"] == (ORIGIN if cookie else "*")
    assert "x-frame-options" not in stored.headers
    assert stored.headers["x-content-type-options"] == "nosniff"


async def test_a_body_sent_in_pieces_is_read_whole_and_an_oversized_one_is_refused_whole(
    client: httpx.AsyncClient, database_url: str
) -> None:
    _h, site = await owner_site(client, database_url)
    key = {"X-API-Key": site["api_key"], "Content-Type": "application/json"}

    async def pieces(*parts: bytes) -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    body = b'{"event_name": "page_view", "visitor_id": "v1", "event_id": "e1"}'
    ok = await client.post(TRACK, content=pieces(body[:10], body[10:30], body[30:]), headers=key)
    assert ok.status_code == 202, ok.text
    assert ok.json()["accepted"] == 1
    # no Content-Length (chunked), 70 KB: past the 64 KB of /track after a few pieces
    filler = b'{"event_name": "page_view", "visitor_id": "v2", "event_data": {"x": "' + b"a" * 70_000 + b'"}}'
    big = await client.post(
        TRACK, content=pieces(*(filler[i : i + 8192] for i in range(0, len(filler), 8192))), headers=key
    )
    assert big.status_code == 413, big.text
    assert big.json()["detail"] == "body: is larger than the limit of 65,536 bytes"
    assert await count(database_url, "events", site["id"]) == 1


@pytest.fixture
async def limited(
    settings,
    plugins,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,  # type: ignore[no-untyped-def]
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    """A served app whose public rate limit is 3 requests a minute, a client and a site on it."""
    monkeypatch.setenv("SEGMENTLY_RATE_LIMIT_PUBLIC", "3/minute")
    async with serve_app(create_app(settings, plugins)) as base, httpx.AsyncClient(base_url=base) as c:
        _h, site = await owner_site(c, database_url)
        yield c, site


async def test_the_lane_counts_in_the_public_rate_limit_and_in_the_metrics(
    limited: tuple[httpx.AsyncClient, dict[str, Any]], database_url: str
) -> None:
    c, site = limited
    key = {"X-API-Key": site["api_key"]}
    before = tracked(await c.get("/metrics"))
    statuses = [
        (
            await c.post(TRACK, json={"event_name": "page_view", "visitor_id": f"v{i}"}, headers=key)
        ).status_code
        for i in range(4)
    ]
    assert statuses == [202, 202, 202, 429]
    assert await count(database_url, "events", site["id"]) == 3
    assert tracked(await c.get("/metrics")) == before + 3  # the process's registry: counted from before


async def test_a_request_the_framework_refuses_counts_once_in_the_rate_limit(
    limited: tuple[httpx.AsyncClient, dict[str, Any]], database_url: str
) -> None:
    # the lane counts a request, then hands a malformed one to the framework: not counted twice
    c, site = limited
    key = {"X-API-Key": site["api_key"]}
    bodies = [
        {"event_name": "page_view"},
        {"visitor_id": "v1"},
        {"event_name": "page_view", "visitor_id": "v2"},
    ]
    statuses = [(await c.post(TRACK, json=b, headers=key)).status_code for b in bodies]
    statuses.append(
        (await c.post(TRACK, json=bodies[2], headers={"X-API-Key": "seg_live_nobody"})).status_code
    )
    assert statuses == [400, 400, 202, 429]
    assert await count(database_url, "events", site["id"]) == 1


def tracked(metrics: httpx.Response) -> float:
    """``segmently_requests_total`` of stored ``/events/track`` requests."""
    for line in metrics.text.splitlines():
        if (
            line.startswith("segmently_requests_total{")
            and f'path="{TRACK}"' in line
            and 'status_code="202"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_a_lone_event_is_stored_exactly_as_sent(client: httpx.AsyncClient, database_url: str) -> None:
    _h, site = await owner_site(client, database_url)
    sent_at = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).replace(microsecond=678000)
    data = {"title": 'Café "Zürich" \\ ✓', "nested": {"n": [1, 2.5, None, True]}, "hidden_ms": 12}
    event = {
        "event_name": "page_view",
        "visitor_id": "visitor-ü",
        "event_id": "e-1",
        "session_id": "s-1",
        "url": "https://shop.example.com/p?q=a%20b&utm_source=x",
        "device_type": "mobile",
        "timestamp": sent_at.isoformat(),
        "event_data": data,
    }
    key = {"X-API-Key": site["api_key"]}
    # the first event reads the site's running experiments; the next one, a lone event nothing
    # attributes, takes PostgreSQL's one-statement path
    warm = await client.post(TRACK, json={"event_name": "page_view", "visitor_id": "w"}, headers=key)
    assert warm.status_code == 202
    r = await client.post(TRACK, json=event, headers=key)
    assert r.json() == {"accepted": 1, "duplicates": 0, "rejected": {}}
    (row,) = await rows(
        database_url,
        "SELECT event_name, visitor_id, client_event_id, session_id, url, device_type, created_at, "
        "event_data FROM events WHERE site_id = :s AND visitor_id <> 'w'",
        s=site["id"],
    )
    stored = row[7] if isinstance(row[7], dict) else json.loads(row[7])
    assert list(row[:6]) == ["page_view", "visitor-ü", "e-1", "s-1", event["url"], "mobile"]
    at = row[6] if isinstance(row[6], dt.datetime) else dt.datetime.fromisoformat(row[6])  # SQLite: text
    at = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
    assert at == sent_at
    assert stored == data


async def test_a_lone_page_view_naming_a_variant_still_assigns_the_visitor(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)
    variant = exp["variants"][1]["id"]
    key = {"X-API-Key": site["api_key"]}
    warm = await client.post(TRACK, json={"event_name": "page_view", "visitor_id": "w"}, headers=key)
    assert warm.status_code == 202  # the running experiment is now remembered
    view = {"event_name": "page_view", "visitor_id": "v1", "experiment_id": exp["id"], "variant_id": variant}
    assert (await client.post(TRACK, json=view, headers=key)).status_code == 202
    assigned = await rows(
        database_url,
        "SELECT variant_id FROM experiment_visitors WHERE experiment_id = :e AND visitor_id = 'v1'",
        e=exp["id"],
    )
    assert [r[0] for r in assigned] == [variant]
