"""The live events feed: a site's newest events, then only new ones, poll after poll.

Event ids are UUIDv7 strings minted at ingestion, so they sort by receipt time. But an
id is minted *before* its batch's transaction commits: a slow transaction on another
worker can commit ids lower than ones a poll has already returned. So the feed only
returns events that have *settled*: whose id-time is older than :data:`SETTLE_MARGIN`
(the horizon). Every transaction that minted an id before the horizon has committed by
then (ingestion transactions last milliseconds; the margin also covers clock skew
between workers), so nothing can still appear below it, and a cursor set at or below
the horizon never skips an event. The cost: the feed lags receipt by the margin.

A first call (no cursor) answers the newest ``limit`` settled events. A poll answers
the settled events after its cursor, oldest first up to ``limit`` (shown newest first),
so a burst is caught up over a few polls instead of being skipped; ``more`` says a poll
should follow at once. The cursor returned is the horizon, or the newest event returned
when the page was full. See ``docs/live_events.md``.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from sqlalchemy import ColumnElement, case, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from segmently.db.base import utcnow
from segmently.db.models import Event, Experiment, Variant
from segmently.domain.events.ingest import MAX_AGE
from segmently.http.errors import field_error
from segmently.http.pagination import decode_cursor, encode_cursor

RANGES: Final = ("all", "today", "1h", "24h", "7d")
"""The date range filter's values (the spec's All time, Today, Last 1 hour, 24 hours, 7 days)."""

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 500

SETTLE_MARGIN = dt.timedelta(seconds=2)
"""Events received more recently than this are held back until their batch surely committed."""

STATS_WINDOW: Final = dt.timedelta(days=7)
"""Longest window ``stats`` and ``event_types`` cover: ``range=all`` is capped to it."""

PILLS: Final = ("page_view", "conversion", "assignment", "time_on_page")
"""Event type pills the spec always shows; names seen on the site are added after them."""

_SINCE: Final = {"1h": dt.timedelta(hours=1), "24h": dt.timedelta(hours=24), "7d": dt.timedelta(days=7)}
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS: Final = dt.timedelta(milliseconds=1)
_OLDEST_AFTER_RECEIPT: Final = MAX_AGE + dt.timedelta(days=1)
"""How long before its receipt an event may have happened (clients date events up to MAX_AGE back)."""


class LiveEvent(msgspec.Struct, kw_only=True):
    """One row of the feed; ``received_at`` is when the server stored it (from its id)."""

    id: str
    event_name: str
    visitor_id: str
    experiment_id: str | None
    experiment_name: str | None
    variant_id: str | None
    variant_key: str | None
    url: str | None
    device_type: str | None
    event_data: dict[str, Any] | None
    created_at: dt.datetime
    received_at: dt.datetime


class LiveStats(msgspec.Struct, kw_only=True):
    """Counts over the events matching the filters in the stats window (see the docs)."""

    events: int
    unique_visitors: int
    conversions: int


class LiveFeed(msgspec.Struct, kw_only=True):
    """The answer to one call: pass ``cursor`` back on the next poll."""

    events: list[LiveEvent]
    cursor: str
    more: bool
    stats: LiveStats
    event_types: list[str]


@dataclass(frozen=True, slots=True)
class LiveQuery:
    """The feed's filters, checked."""

    event_name: str | None
    visitor: str | None
    range: str
    limit: int
    after: str | None  # id the cursor points after
    zone: zoneinfo.ZoneInfo | dt.timezone


def id_floor(at: dt.datetime) -> str:
    """The lowest UUIDv7 string whose embedded time is ``at``'s millisecond."""
    ms = (at - _EPOCH) // _MS
    return f"{ms >> 16:08x}-{ms & 0xFFFF:04x}-0000-0000-000000000000"


def received_at(event_id: str) -> dt.datetime:
    """When the server received an event: the time embedded in its UUIDv7 id."""
    return _EPOCH + int(event_id[:8] + event_id[9:13], 16) * _MS


def parse_query(
    event_type: str | None,
    visitor: str | None,
    range_: str | None,
    limit: int | None,
    cursor: str | None,
    tz: str | None,
) -> LiveQuery:
    """Check the query parameters; a 400 naming the field otherwise."""
    name = None if event_type in (None, "", "all") else event_type
    if name is not None and len(name) > 100:
        raise field_error("type", "must be at most 100 characters")
    wanted = (visitor or "").strip() or None
    if wanted is not None and len(wanted) > 200:
        raise field_error("visitor", "must be at most 200 characters")
    chosen = range_ or "all"
    if chosen not in RANGES:
        raise field_error("range", f"must be one of {', '.join(RANGES)}")
    size = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= size <= MAX_LIMIT:
        raise field_error("limit", f"must be between 1 and {MAX_LIMIT}")
    after = None
    if cursor:
        (after,) = decode_cursor(cursor, [Event.id])
        if not isinstance(after, str) or not _UUID.match(after):
            raise field_error("cursor", "is not a cursor this API returned")
    zone: zoneinfo.ZoneInfo | dt.timezone = dt.UTC
    if tz:
        try:
            zone = zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise field_error("tz", "is not a time zone name like Europe/Berlin") from None
    return LiveQuery(event_name=name, visitor=wanted, range=chosen, limit=size, after=after, zone=zone)


def range_start(query: LiveQuery, now: dt.datetime) -> dt.datetime | None:
    """When the chosen range begins (None for all time); ``today`` is midnight in ``tz``."""
    if query.range == "all":
        return None
    if query.range == "today":
        local = now.astimezone(query.zone)
        return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)
    return now - _SINCE[query.range]


def _since(at: dt.datetime) -> list[ColumnElement[bool]]:
    # an event happens no later than it is received, so created_at >= at also bounds its id:
    # the (site_id, id) index serves the scan, and PostgreSQL prunes older partitions
    return [Event.created_at >= at, Event.id >= id_floor(at)]


def _filters(site_id: str, query: LiveQuery, horizon: str) -> list[ColumnElement[bool]]:
    conds = [Event.site_id == site_id, Event.id < horizon]
    if query.event_name is not None:
        conds.append(Event.event_name == query.event_name)
    if query.visitor is not None:
        conds.append(Event.visitor_id.icontains(query.visitor, autoescape=True))
    return conds


async def live_feed(session: AsyncSession, site_id: str, query: LiveQuery) -> LiveFeed:
    """One call of the feed for a site of the caller's organization (checked by the caller)."""
    now = utcnow()
    horizon = id_floor(now - SETTLE_MARGIN)
    if query.after is not None:
        horizon = max(horizon, query.after)  # a cursor never moves back (clocks of other workers)
    start = range_start(query, now)
    conds = _filters(site_id, query, horizon)
    if start is not None:
        conds += _since(start)
    columns = (
        Event.id,
        Event.event_name,
        Event.visitor_id,
        Event.experiment_id,
        Event.variant_id,
        Event.url,
        Event.device_type,
        Event.event_data,
        Event.created_at,
    )
    more = False
    if query.after is None:
        stmt = select(*columns).where(*conds).order_by(Event.id.desc()).limit(query.limit)
        rows = list((await session.execute(stmt)).all())
    else:
        # a redundant bound on created_at, so PostgreSQL prunes the older monthly partitions
        conds += [
            Event.id > query.after,
            Event.created_at >= received_at(query.after) - _OLDEST_AFTER_RECEIPT,
        ]
        stmt = select(*columns).where(*conds).order_by(Event.id).limit(query.limit + 1)
        rows = list((await session.execute(stmt)).all())
        more = len(rows) > query.limit
        rows = rows[: query.limit][::-1]
    cursor = rows[0].id if more else horizon
    stats_start = max(start or now - STATS_WINDOW, now - STATS_WINDOW)
    return LiveFeed(
        events=await _resolve(session, site_id, rows),
        cursor=encode_cursor([cursor]),
        more=more,
        stats=await _stats(session, site_id, query, horizon, stats_start),
        event_types=await _event_types(session, site_id, query, stats_start),
    )


async def _stats(
    session: AsyncSession, site_id: str, query: LiveQuery, horizon: str, since: dt.datetime
) -> LiveStats:
    conversions = func.coalesce(func.sum(case((Event.event_name == "conversion", 1), else_=0)), 0)
    stmt = select(func.count(), func.count(distinct(Event.visitor_id)), conversions).where(
        *_filters(site_id, query, horizon), *_since(since)
    )
    events, visitors, converted = (await session.execute(stmt)).one()
    return LiveStats(events=int(events), unique_visitors=int(visitors), conversions=int(converted))


async def _event_types(
    session: AsyncSession, site_id: str, query: LiveQuery, since: dt.datetime
) -> list[str]:
    stmt = select(Event.event_name).distinct().where(Event.site_id == site_id, *_since(since))
    seen = set((await session.scalars(stmt)).all())
    if query.event_name is not None:
        seen.add(query.event_name)  # the selected pill stays even when the window has none
    return [*PILLS, *sorted(seen.difference(PILLS))]


async def _resolve(session: AsyncSession, site_id: str, rows: Sequence[Any]) -> list[LiveEvent]:
    """The events with their experiment's name and variant's key (only this site's experiments)."""
    experiment_ids = {r.experiment_id for r in rows if r.experiment_id}
    variant_ids = {r.variant_id for r in rows if r.variant_id}
    names: dict[str, str] = {}
    keys: dict[str, str] = {}
    if experiment_ids:
        found = await session.execute(
            select(Experiment.id, Experiment.name).where(
                Experiment.site_id == site_id, Experiment.id.in_(experiment_ids)
            )
        )
        names = dict(found.all())
    if variant_ids:
        found_keys = await session.execute(
            select(Variant.id, Variant.key)
            .join(Experiment, Experiment.id == Variant.experiment_id)
            .where(Experiment.site_id == site_id, Variant.id.in_(variant_ids))
        )
        keys = dict(found_keys.all())
    return [
        LiveEvent(
            id=r.id,
            event_name=r.event_name,
            visitor_id=r.visitor_id,
            experiment_id=r.experiment_id,
            experiment_name=names.get(r.experiment_id) if r.experiment_id else None,
            variant_id=r.variant_id,
            variant_key=keys.get(r.variant_id) if r.variant_id else None,
            url=r.url,
            device_type=r.device_type,
            event_data=r.event_data,
            created_at=r.created_at,
            received_at=received_at(r.id),
        )
        for r in rows
    ]
