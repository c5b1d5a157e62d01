"""Deleting event rows: a deleted site's, and old ones in batches for the retention purge.

``events`` and ``event_keys`` have no foreign keys (bulk inserts stay near raw
``COPY`` speed), so nothing cascades to them: code that deletes a site deletes its
rows here, in the same transaction. The per-visitor analytics rows
(``experiment_visitors``, ``experiment_conversions``, ``funnel_progress``) cascade
from their experiment and site.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence
from typing import Any, Final, cast

from sqlalchemy import CursorResult, Table, delete, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from segmently.db.engine import Database
from segmently.db.models import Event, EventKey
from segmently.domain.events.partitions import month_start

log = logging.getLogger(__name__)

EVENTS: Final = cast(Table, Event.__table__)
EVENT_KEYS: Final = cast(Table, EventKey.__table__)
MONTH_PARTITION: Final = re.compile(r"^events_p(\d{4})_(\d{2})$")
DROP_LOCK_TIMEOUT: Final = "5s"
"""Dropping a partition locks ``events``; give up rather than stall ingestion behind a long query."""


async def delete_site_events(db: AsyncSession | AsyncConnection, site_ids: Sequence[str]) -> int:
    """Delete every event and client event id of the sites, in the caller's transaction.

    Call it in the transaction that deletes the sites (for an organization, with all
    of its sites).

    Returns:
        How many events were deleted.
    """
    if not site_ids:
        return 0
    result = cast(CursorResult[Any], await db.execute(delete(EVENTS).where(EVENTS.c.site_id.in_(site_ids))))
    await db.execute(delete(EVENT_KEYS).where(EVENT_KEYS.c.site_id.in_(site_ids)))
    return int(result.rowcount)


async def delete_events_before(db: Database, site_id: str, before: dt.datetime, batch: int) -> int:
    """Delete a site's events that happened before ``before``, ``batch`` rows per transaction.

    Walks the site's events in id order (``ix_events_site_id_id``) from where the last
    batch stopped, so no batch scans rows an earlier one already looked at.

    Returns:
        How many events were deleted.
    """
    e = EVENTS
    total, last = 0, ""
    while True:
        oldest = (
            select(e.c.id)
            .where(e.c.site_id == site_id, e.c.created_at < before, e.c.id > last)
            .order_by(e.c.id)
            .limit(batch)
        )
        async with db.engine.begin() as conn:
            ids = list(
                (
                    await conn.execute(
                        delete(e)
                        .where(e.c.site_id == site_id, e.c.created_at < before, e.c.id.in_(oldest))
                        .returning(e.c.id)
                    )
                ).scalars()
            )
        total += len(ids)
        if len(ids) < batch:
            return total
        last = max(ids)


async def delete_event_keys_before(db: Database, site_id: str, before: dt.datetime, batch: int) -> int:
    """Delete a site's client event ids stored before ``before``, one chunk of ``batch`` keys at a time.

    ``event_keys`` is indexed by its primary key only, so the site's keys are walked in
    key order, chunk by chunk, each chunk in its own transaction: one pass per run.

    Returns:
        How many keys were deleted.
    """
    k = EVENT_KEYS
    total, last = 0, ""
    while True:
        chunk = (
            select(k.c.event_id)
            .where(k.c.site_id == site_id, k.c.event_id > last)
            .order_by(k.c.event_id)
            .limit(batch)
            .subquery()
        )
        async with db.engine.begin() as conn:
            high = await conn.scalar(select(func.max(chunk.c.event_id)))
            if high is None:
                return total
            result = await conn.execute(
                delete(k).where(
                    k.c.site_id == site_id, k.c.event_id > last, k.c.event_id <= high, k.c.created_at < before
                )
            )
        total += int(result.rowcount)
        last = high


async def drop_partitions_before(db: Database, before: dt.datetime) -> list[str]:
    """Drop the monthly partitions of ``events`` (PostgreSQL) whose whole month lies before ``before``.

    ``events_default`` is never dropped: it may hold rows of any month, and the
    row-wise purge deletes its old ones. A partition that cannot be locked within
    :data:`DROP_LOCK_TIMEOUT` stays (logged); its rows go row-wise instead.

    Returns:
        The names of the dropped partitions.
    """
    if db.is_sqlite:
        return []
    async with db.engine.connect() as conn:
        names = list(
            (
                await conn.execute(
                    text(
                        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                        "WHERE i.inhparent = 'events'::regclass ORDER BY c.relname"
                    )
                )
            ).scalars()
        )
    dropped = []
    for name in names:
        match = MONTH_PARTITION.match(name)
        if match is None:
            continue
        start = dt.datetime(int(match[1]), int(match[2]), 1, tzinfo=dt.UTC)
        if month_start(start, 1) > before:
            continue
        try:
            async with db.engine.begin() as conn:
                await conn.execute(text(f"SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'"))
                await conn.execute(text(f'DROP TABLE "{name}"'))  # name matched MONTH_PARTITION
        except DBAPIError as exc:
            log.warning("could not drop partition %s (its rows are deleted row-wise): %s", name, exc)
            continue
        dropped.append(name)
    return dropped
