"""Monthly partitions of ``events`` on PostgreSQL (SQLite keeps one table).

The migration creates ``events`` partitioned by range of ``created_at`` with a
default partition, so no event is ever refused for want of a partition. At start-up
(and daily from the scheduler) :func:`ensure_partitions` adds the current month and
the months ahead; the retention purge drops months older than every plan's window.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from segmently.db.engine import Database

log = logging.getLogger(__name__)

MONTHS_AHEAD = 2


def month_start(day: dt.datetime, offset: int = 0) -> dt.datetime:
    """The first instant (UTC) of ``day``'s month shifted by ``offset`` months."""
    months = day.year * 12 + day.month - 1 + offset
    return dt.datetime(months // 12, months % 12 + 1, 1, tzinfo=dt.UTC)


def partition_name(start: dt.datetime) -> str:
    """``events_p2026_11`` for the month starting at ``start``."""
    return f"events_p{start.year:04d}_{start.month:02d}"


async def ensure_partitions(db: Database, now: dt.datetime, months_ahead: int = MONTHS_AHEAD) -> list[str]:
    """Create the monthly partitions from this month to ``months_ahead`` later; returns those created.

    A month whose rows already sit in the default partition (a server down across a
    month boundary) is left there and logged: the rows stay readable, nothing is lost.
    """
    if db.is_sqlite:
        return []
    created = []
    for offset in range(months_ahead + 1):
        start, end = month_start(now, offset), month_start(now, offset + 1)
        name = partition_name(start)
        try:
            async with db.engine.begin() as conn:
                exists = await conn.scalar(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name})
                if exists:
                    continue
                # never queue ingestion behind this DDL for long: try again on the next run instead
                await conn.execute(text("SET LOCAL lock_timeout = '2s'"))
                await conn.execute(
                    text(
                        f"CREATE TABLE {name} PARTITION OF events "
                        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
                    )
                )
            created.append(name)
        except DBAPIError as exc:
            if "already exists" in str(exc):  # another worker or node created it a moment ago
                continue
            log.warning("could not create partition %s (its rows stay in events_default): %s", name, exc)
    return created
