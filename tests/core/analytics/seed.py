"""Seeding experiment data through the real API: assignment, conversion and engagement events."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from tests.core.experiments.test_experiments import owner_site
from tests.core.experiments.test_public_api import live

BATCH = 500

__all__ = ["BATCH", "assign", "convert", "ids", "live", "owner_site", "populate", "send", "stamp"]


def ids(exp: dict[str, Any]) -> dict[str, str]:
    """Variant key → variant id, as the experiments API returned them."""
    return {v["key"]: v["id"] for v in exp["variants"]}


def stamp(days_ago: float = 0.0) -> str:
    """An ISO timestamp ``days_ago`` days before now."""
    return (dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)).isoformat()


async def send(client: httpx.AsyncClient, key: str, events: list[dict[str, Any]]) -> None:
    """POST the events in batches of at most 500; every event must be accepted."""
    for i in range(0, len(events), BATCH):
        chunk = events[i : i + BATCH]
        r = await client.post("/api/v1/events/batch", json={"events": chunk}, headers={"X-API-Key": key})
        assert r.status_code == 202, r.text
        assert r.json()["accepted"] == len(chunk), r.text


def assign(exp: dict[str, Any], variant: str, visitor: str, **extra: Any) -> dict[str, Any]:
    """An assignment event of ``visitor`` to the variant with key ``variant``."""
    return {
        "event_name": "assignment",
        "visitor_id": visitor,
        "experiment_id": exp["id"],
        "variant_id": ids(exp)[variant],
        **extra,
    }


def convert(visitor: str, revenue: float | None = None, **extra: Any) -> dict[str, Any]:
    """A conversion on the primary goal (with revenue when given)."""
    event: dict[str, Any] = {"event_name": "conversion", "visitor_id": visitor, **extra}
    if revenue is not None:
        event["event_data"] = {"revenue": revenue}
    return event


async def populate(
    client: httpx.AsyncClient,
    key: str,
    exp: dict[str, Any],
    counts: dict[str, tuple[int, int]],
    *,
    prefix: str = "v",
    revenue: float | None = None,
) -> dict[str, list[str]]:
    """Per variant key, ``(visitors, converting visitors)``; returns the visitor ids by variant.

    The first ``converting`` visitors of each variant convert once (with ``revenue`` if given).
    """
    who = {k: [f"{prefix}-{k}-{i}" for i in range(n)] for k, (n, _) in counts.items()}
    await send(client, key, [assign(exp, k, v) for k, vs in who.items() for v in vs])
    await send(client, key, [convert(v, revenue) for k, vs in who.items() for v in vs[: counts[k][1]]])
    return who
