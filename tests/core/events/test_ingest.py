"""Event ingestion end to end over real HTTP on both backends."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from segmently.db.engine import Database
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


async def test_a_batch_is_stored_and_a_retry_never_duplicates(client: httpx.AsyncClient, database_url: str) -> None:
    h, site = await owner_site(client, database_url)
    events = [
        {"event_name": "page_view", "visitor_id": f"v{i}", "event_id": f"e{i}", "url": "https://shop.example.com/"}
        for i in range(20)
    ]
    r = await send(client, site["api_key"], events)
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 20, "duplicates": 0, "rejected": {}}
    again = await send(client, site["api_key"], [*events, {"event_name": "signup", "visitor_id": "v1", "event_id": "new"}])
    assert again.json() == {"accepted": 1, "duplicates": 20, "rejected": {}}
    stored = await rows(database_url, "SELECT count(*) FROM events WHERE site_id = :s", s=site["id"])
    assert stored[0][0] == 21
