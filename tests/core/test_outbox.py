"""Domain events are written with the change, delivered after commit, and survive a crash."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from segmently_dummy import plugin as dummy
from sqlalchemy import func, select, update

from segmently.db.engine import Database
from segmently.db.models import OutboxEvent
from segmently.outbox import OutboxDispatcher, emit
from segmently.plugins import PluginHost
from tests.conftest import SECRET, free_port

pytestmark = pytest.mark.usefixtures("backend")
SEGMENTLY = str(Path(sys.executable).parent / "segmently")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


async def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def pending_count(db: Database) -> int:
    async with db.session() as s:
        return int(await s.scalar(select(func.count()).where(OutboxEvent.dispatched_at.is_(None))) or 0)


def delivered_ids() -> list[str]:
    return [e.id for h, e in dummy.RECORDED if h == "on_domain_event"]


async def test_committed_event_is_delivered_right_after_commit(server: str, db: Database) -> None:
    async with db.session() as s:
        event_id = emit(s, "project.created", None, {"project_id": "p1", "name": "Shop"})

    async def delivered() -> bool:
        return event_id in delivered_ids()

    await wait_for(delivered)
    event = next(e for h, e in dummy.RECORDED if h == "on_domain_event" and e.id == event_id)
    assert (event.event, event.organization_id, event.data) == (
        "project.created",
        None,
        {"project_id": "p1", "name": "Shop"},
    )
    await wait_for(lambda: _zero(db))


async def _zero(db: Database) -> bool:
    return await pending_count(db) == 0


async def test_rolled_back_change_leaves_no_event(db: Database, plugins: PluginHost) -> None:
    with pytest.raises(RuntimeError):
        async with db.session() as s:
            emit(s, "project.deleted", None, {"project_id": "p1"})
            raise RuntimeError("the change failed")
    async with db.session() as s:
        assert await s.scalar(select(func.count()).select_from(OutboxEvent)) == 0
    assert await OutboxDispatcher(db, plugins).dispatch_pending() == 0


async def test_unknown_event_type_is_refused(db: Database) -> None:
    async with db.session() as s:
        with pytest.raises(ValueError, match="unknown domain event"):
            emit(s, "project.renamed", None, {})


async def test_failed_delivery_is_retried_later_not_lost(
    db: Database, plugins: PluginHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with db.session() as s:
        failing = emit(s, "member.invited", None, {"note": "flaky"})
        fine = emit(s, "member.joined", None, {"note": "ok"})
    monkeypatch.setenv("DUMMY_PLUGIN_FAIL", "flaky")
    dispatcher = OutboxDispatcher(db, plugins)
    assert await dispatcher.dispatch_pending() == 1  # the other event is not held up
    async with db.session() as s:
        row = await s.get(OutboxEvent, failing)
        assert row is not None
        assert row.dispatched_at is None and row.attempts == 1
        assert "dummy delivery failure" in (row.last_error or "")
        assert row.next_attempt_at is not None and row.next_attempt_at > dt.datetime.now(dt.UTC)
    assert await dispatcher.dispatch_pending() == 0  # backing off
    monkeypatch.delenv("DUMMY_PLUGIN_FAIL")
    async with db.session() as s:  # time passes
        await s.execute(update(OutboxEvent).values(next_attempt_at=dt.datetime.now(dt.UTC)))
    assert await dispatcher.dispatch_pending() == 1
    assert delivered_ids() == [fine, failing]


async def test_only_one_dispatcher_delivers_at_a_time(db: Database, plugins: PluginHost) -> None:
    async with db.session() as s:
        for i in range(20):
            emit(s, "experiment.created", None, {"n": i})
    a, b = OutboxDispatcher(db, plugins), OutboxDispatcher(db, plugins)
    counts = await asyncio.gather(a.dispatch_pending(), b.dispatch_pending())
    assert sorted(counts) == [0, 20]
    assert len(delivered_ids()) == 20


async def test_stop_ends_delivery_even_when_a_commit_woke_it_then(db: Database, plugins: PluginHost) -> None:
    """A server stopping right after a request that emitted an event (SIGTERM, a test's server).

    The commit wakes the dispatcher; a stop whose cancellation arrived while that wake-up was on
    its way was lost in ``asyncio.wait_for`` (before Python 3.12), which returned the wake-up: the
    dispatcher went on for good and the server never finished stopping. Each round stops it a
    different number of event-loop turns after the commit, so one of them lands in that moment.
    """
    for turns in range(6):
        dispatcher = OutboxDispatcher(db, plugins, poll_seconds=60)
        await dispatcher.start()
        await asyncio.sleep(0.05)  # idle: waiting to be woken
        dispatcher._on_commit()  # what a commit that emitted an event calls (from any thread)
        for _ in range(turns):
            await asyncio.sleep(0)
        task = dispatcher._task
        assert task is not None
        # a stop() that hangs is waited for 5 s; cancelling the task below lets it end too
        await asyncio.wait({asyncio.ensure_future(dispatcher.stop())}, timeout=5)
        ended = task.done()
        if not ended:  # what the hung stop() left running
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert ended, f"stop() {turns} loop turns after a commit's wake-up left the dispatcher running"


def _server(
    database_url: str, data_dir: Path, record: Path, port: int, **extra: str
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEGMENTLY_", "DUMMY_PLUGIN_"))}
    env.update(
        SEGMENTLY_DATABASE_URL=database_url,
        SEGMENTLY_DATA_DIR=str(data_dir),
        SEGMENTLY_SECRET_KEY=SECRET,
        SEGMENTLY_OUTBOX_POLL_SECONDS="0.2",
        DUMMY_PLUGIN_RECORD=str(record),
        **extra,
    )
    with open(data_dir / f"server-{port}.log", "wb") as log:
        return subprocess.Popen(
            [SEGMENTLY, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=log
        )


async def test_crash_midway_through_dispatch_loses_nothing(
    database_url: str, db: Database, tmp_path: Path
) -> None:
    async with db.session() as s:
        ids = [emit(s, "experiment.started", None, {"n": i}) for i in range(5)]
    record = tmp_path / "delivered.jsonl"

    def recorded() -> list[str]:
        if not record.exists():
            return []
        return [json.loads(line)["payload"]["id"] for line in record.read_text().splitlines()]

    # 1st start: the plugin process dies (os._exit) while handing over the third event
    port = free_port()
    first = _server(database_url, tmp_path, record, port, DUMMY_PLUGIN_CRASH_AFTER="2")
    assert first.wait(timeout=60) == 9, (tmp_path / f"server-{port}.log").read_text()[-2000:]
    assert recorded() == ids[:2]
    assert await pending_count(db) == 3

    # next start: everything left is delivered, at least once each, with its id
    port = free_port()
    second = _server(database_url, tmp_path, record, port)
    try:
        await wait_for(lambda: _zero(db), timeout=30)
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://127.0.0.1:{port}/health")).status_code == 200
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    assert set(recorded()) == set(ids)
    assert recorded()[:2] == ids[:2] and sorted(recorded()[2:]) == sorted(ids[2:])
