"""Two real servers on one PostgreSQL database, schedulers ticking: one alert and one event per experiment."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import signal
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import text

from segmently.db.engine import Database
from tests.conftest import free_port
from tests.core.alerts.test_jobs import populate
from tests.core.events.test_ingest import rows
from tests.core.experiments.test_experiments import owner_site
from tests.core.experiments.test_public_api import live
from tests.core.test_outbox import _server, pending_count, wait_for

RAN = re.compile(r"job winner_detection ran")


def cycles(logs: list[Path]) -> int:
    return sum(len(RAN.findall(p.read_text())) for p in logs if p.exists())


@pytest.mark.postgresql_only
async def test_two_nodes_raise_each_alert_and_domain_event_exactly_once(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path, app: Litestar
) -> None:
    # only the two nodes deliver: the test's own server (the client's) would otherwise take a
    # turn now and then, and its deliveries are not written to the nodes' record file
    await app.state.kernel.outbox.stop()
    h, site = await owner_site(client, database_url)
    exps = [
        await live(client, h, site, name=f"Test {i}", advanced={"max_duration_days": 1}) for i in range(6)
    ]
    record = tmp_path / "delivered.jsonl"
    ports = [free_port(), free_port()]
    nodes = [
        _server(
            database_url,
            tmp_path,
            record,
            port,
            SEGMENTLY_JOB_INTERVAL_SECONDS="0.05",
            SEGMENTLY_LOG_LEVEL="DEBUG",
        )
        for port in ports
    ]
    logs = [tmp_path / f"server-{port}.log" for port in ports]
    db = Database(database_url)
    try:
        async with httpx.AsyncClient() as probe:

            async def up() -> bool:
                try:
                    answers = [await probe.get(f"http://127.0.0.1:{p}/health") for p in ports]
                    return all(a.status_code == 200 for a in answers)
                except httpx.TransportError:
                    return False

            await wait_for(up, timeout=60)
        await asyncio.sleep(0.5)
        # while both schedulers tick: three experiments cross significance …
        for i, exp in enumerate(exps[:3]):
            await populate(
                client, site["api_key"], exp, {"control": (600, 30), "variant_b": (600, 90)}, tag=f"t{i}"
            )
        # … and four cross their maximum duration (Test 0 has a winner by then: no duration alert)
        await wait_for(lambda: _alerts(database_url, "winner_detected", 3), timeout=60)
        async with db.session() as s:
            await s.execute(
                text("UPDATE experiments SET activated_at = :t WHERE id IN (:a, :b, :c, :d)"),
                {
                    "t": dt.datetime.now(dt.UTC) - dt.timedelta(days=2),
                    "a": exps[0]["id"],
                    "b": exps[3]["id"],
                    "c": exps[4]["id"],
                    "d": exps[5]["id"],
                },
            )
        await wait_for(lambda: _alerts(database_url, "max_duration_exceeded", 3), timeout=60)

        async def enough_cycles() -> bool:
            return cycles(logs) >= 100

        await wait_for(enough_cycles, timeout=120)
        await asyncio.sleep(1.0)  # more cycles after the last crossing: nothing new may appear

        async def delivered_all() -> bool:
            return await pending_count(db) == 0

        await wait_for(delivered_all, timeout=30)
    finally:
        for node in nodes:
            node.send_signal(signal.SIGTERM)
        for node in nodes:
            node.wait(timeout=30)
        await db.dispose()
    per_node = [len(RAN.findall(p.read_text())) for p in logs]
    assert sum(per_node) >= 100 and all(n > 0 for n in per_node), per_node  # both nodes took turns
    alerts = await rows(database_url, "SELECT experiment_id, alert_type FROM alerts")
    assert sorted(map(tuple, alerts)) == sorted(
        [(e["id"], "winner_detected") for e in exps[:3]]
        + [(e["id"], "max_duration_exceeded") for e in exps[3:]]
    )
    events = await rows(database_url, "SELECT data FROM outbox_events WHERE event = 'significance.reached'")
    data = [e[0] if isinstance(e[0], dict) else json.loads(e[0]) for e in events]
    assert sorted(d["experiment_id"] for d in data) == sorted(e["id"] for e in exps[:3])
    delivered = [json.loads(line)["payload"] for line in record.read_text().splitlines()]
    reached = [d["data"]["experiment_id"] for d in delivered if d["event"] == "significance.reached"]
    assert sorted(reached) == sorted(e["id"] for e in exps[:3])


async def _alerts(database_url: str, kind: str, n: int) -> bool:
    got = await rows(database_url, "SELECT count(*) FROM alerts WHERE alert_type = :k", k=kind)
    return int(got[0][0]) >= n
