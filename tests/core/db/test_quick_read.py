"""``Database.sqlite_first``: the SQLite backend's small reads on the event loop's thread."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import text

from segmently.db.engine import Database


@asynccontextmanager
async def database(url: str, *statements: str) -> AsyncIterator[Database]:
    """A database at ``url`` after ``statements`` (run through the engine), disposed at exit."""
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
        yield db
    finally:
        await db.dispose()


async def test_a_quick_read_sees_every_commit_of_the_engine_at_once(tmp_path: Path) -> None:
    async with database(
        f"sqlite+aiosqlite:///{tmp_path}/quick.db",
        "CREATE TABLE sites (id TEXT PRIMARY KEY, config_version INTEGER)",
        "INSERT INTO sites VALUES ('a', 1)",
    ) as db:
        read = "SELECT config_version FROM sites WHERE id = ?"
        assert await db.sqlite_first(read, ("a",)) == (1,)
        assert await db.sqlite_first(read, ("b",)) is None
        async with db.engine.begin() as conn:  # another connection commits: the next read sees it
            await conn.execute(text("UPDATE sites SET config_version = 2 WHERE id = 'a'"))
        assert await db.sqlite_first(read, ("a",)) == (2,)
        # read-only: nothing is ever written through it, nor through the engine instead
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await db.sqlite_first("DELETE FROM sites RETURNING id", ())
        assert await db.sqlite_first(read, ("a",)) == (2,)


async def test_an_in_memory_database_is_read_through_the_engine() -> None:
    # a second connection to ":memory:" would open another, empty database
    table = ("CREATE TABLE t (x INTEGER)", "INSERT INTO t VALUES (7)")
    async with database("sqlite+aiosqlite://", *table) as db:
        assert await db.sqlite_first("SELECT x FROM t WHERE x = ?", (7,)) == (7,)


async def test_an_event_loop_of_another_thread_reads_through_it_too(tmp_path: Path) -> None:
    # Litestar's test client runs the app in a thread of its own: the same Database, another loop
    async with database(
        f"sqlite+aiosqlite:///{tmp_path}/threads.db", "CREATE TABLE t (x INTEGER)", "INSERT INTO t VALUES (3)"
    ) as db:
        assert await db.sqlite_first("SELECT x FROM t", ()) == (3,)  # opened on this thread
        elsewhere = await asyncio.to_thread(asyncio.run, db.sqlite_first("SELECT x + 1 FROM t", ()))
        assert elsewhere == (4,)
