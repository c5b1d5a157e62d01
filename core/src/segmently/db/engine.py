"""Engines and sessions for SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 10_000


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine; SQLite gets WAL, a busy timeout and foreign keys.

    WAL and the busy timeout let the CLI and a running server write the same file.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
        # no pre-ping: it costs a round trip on every checkout of the hot paths; a connection
        # found dead raises once and SQLAlchemy then recycles every older pooled connection
    kwargs.setdefault("connect_args", {"connect_timeout": 5})
    return create_async_engine(url, **kwargs)


SQLITE_QUICK_READ_TIMEOUT_S = 0.05
"""The longest :meth:`Database.sqlite_first` waits on the event loop for a locked file before it
takes the engine's connection instead."""

_ENGINE_INSTEAD: Final = re.compile("locked|busy|unable to open|no file to read")
"""What sends :meth:`Database.sqlite_first` to the engine: the file locked or not openable."""

AUTOCOMMIT_POOL_SIZE = 4
"""Connections per process of :meth:`Database.autocommit` at most (beside the engine's pool)."""


class Database:
    """One engine and its session factory; a session commits before a response is sent."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = create_engine(url, **engine_kwargs)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._autocommit: AsyncConnectionPool[AsyncConnection[Any]] | None = None
        self._opening: asyncio.Future[None] | None = None
        self._quick: sqlite3.Connection | None = None

    @property
    def is_sqlite(self) -> bool:
        """Whether this is the embedded SQLite backend."""
        return self.engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction, committed on success and rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> bool:
        """Whether the database answers a trivial query."""
        try:
            async with asyncio.timeout(5), self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection[Any]]:
        """PostgreSQL only: a pooled psycopg connection in autocommit mode, for one-statement work.

        A statement alone is atomic; without ``BEGIN`` and ``COMMIT`` it costs one round trip
        instead of three, and psycopg's pool hands it out for a fraction of the engine's
        checkout (``bench/ingest.py``, docs/benchmarks.md). The pool opens on first use.
        """
        pool = self._autocommit
        if pool is None:
            conninfo = make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
            pool = self._autocommit = AsyncConnectionPool(
                conninfo,
                min_size=1,
                max_size=AUTOCOMMIT_POOL_SIZE,
                kwargs={"autocommit": True, "connect_timeout": 5},
                open=False,
            )
            self._opening = asyncio.ensure_future(pool.open(wait=False))
        if self._opening is not None:  # every first user waits for the one opening
            await asyncio.shield(self._opening)
            self._opening = None
        async with pool.connection() as conn:
            yield conn

    async def sqlite_first(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        """SQLite only: the first row of one small read (``?`` parameters), or None.

        Read on the event loop's own thread through a read-only connection of this process: an
        indexed row takes tens of microseconds there, where the engine's connection hands the
        statement, the fetch and the reset on return each to its worker thread and back (1.2 ms
        against 0.1 ms for the config's version read, docs/benchmarks.md). WAL readers never wait
        for writers; should the file still be locked (a checkpoint), it waits at most
        :data:`SQLITE_QUICK_READ_TIMEOUT_S`, then reads through the engine.
        """
        try:
            return self._quick_read(sql, params)
        except sqlite3.OperationalError as exc:
            if not _ENGINE_INSTEAD.search(str(exc)):
                raise  # the statement itself is wrong (a write is refused too): no second try
            async with self.engine.connect() as conn:
                found = (await conn.exec_driver_sql(sql, tuple(params))).first()
            return None if found is None else tuple(found)

    def _quick_read(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        if self._quick is None:
            path = make_url(self.url).database or ":memory:"
            if path == ":memory:":  # another connection would open another, empty database
                raise sqlite3.OperationalError("no file to read")
            uri = Path(path).absolute().as_uri() + "?mode=ro"
            # any thread's event loop may read through it (one statement at a time; Python's
            # sqlite3 serializes a connection's calls)
            self._quick = sqlite3.connect(
                uri,
                uri=True,
                timeout=SQLITE_QUICK_READ_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
            )
        row: tuple[Any, ...] | None = self._quick.execute(sql, params).fetchone()
        return row

    async def dispose(self) -> None:
        """Close every pooled connection."""
        quick, self._quick = self._quick, None
        if quick is not None:
            quick.close()
        if self._autocommit is not None:
            pool, self._autocommit, self._opening = self._autocommit, None, None
            await pool.close()
        await self.engine.dispose()
