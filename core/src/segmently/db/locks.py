"""Cluster-wide try-locks: exactly one process runs a guarded section at a time.

PostgreSQL uses a session advisory lock on a connection held for the section;
SQLite (one machine by definition) uses ``flock`` on a file beside the database.
Both are released by the operating system or server if the holder dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import text

from segmently.db.engine import Database

_memory_locks: dict[str, asyncio.Lock] = {}


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock``."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


@contextlib.asynccontextmanager
async def try_lock(db: Database, name: str) -> AsyncIterator[bool]:
    """Try to take the lock ``name``; yields whether this process holds it. Never waits."""
    if not db.is_sqlite:
        async with db.engine.connect() as conn:
            key = lock_key(name)
            got = bool((await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})).scalar())
            await conn.commit()
            try:
                yield got
            finally:
                if got:
                    await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    await conn.commit()
        return
    database = db.engine.url.database
    if not database or database == ":memory:":
        lock = _memory_locks.setdefault(name, asyncio.Lock())
        if lock.locked():
            yield False
            return
        async with lock:
            yield True
        return
    path = Path(f"{database}.{name}.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
