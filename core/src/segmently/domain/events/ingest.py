"""The ingestion pipeline: validate, refuse per policy, then one transaction per batch.

In that transaction: client event ids (dedupe), the monthly visitor cap of capped
plans, the events themselves (``COPY`` on PostgreSQL, ``executemany`` on SQLite),
assignment upserts into ``experiment_visitors``, and the attribution of conversions,
engagement and funnel progress to every experiment the visitor was assigned to
before the event happened (ARCHITECTURE.md §3). The caller answers only after the
commit, so every read that follows sees the events.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast
from urllib.parse import urlsplit

import msgspec
from sqlalchemy import Table, bindparam, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from segmently.db.base import new_id
from segmently.db.models import (
    Event,
    EventKey,
    Experiment,
    ExperimentConversion,
    ExperimentVisitor,
    FunnelProgress,
    MonthlyVisitor,
    Variant,
)
from segmently.domain.events.schemas import (
    BOUNCE_SECONDS,
    KERNEL_EVENT_TYPES,
    MAX_BATCH_EVENTS,
    AnyData,
    ConversionData,
    EventIn,
    TimeOnPageData,
    revenue_of,
)
from segmently.domain.sdk.config import VERSION_PG, VERSION_SQLITE
from segmently.domain.sites.keys import SiteKey
from segmently.hookspecs import EventType, IngestedEvent, SiteRef
from segmently.http.errors import field_error, from_msgspec
from segmently.kernel import Kernel
from segmently.tiers.plans import EXPERIMENTS_FUNNELS, is_plan_name

log = logging.getLogger(__name__)

MAX_AGE: Final = dt.timedelta(days=30)
"""Older client timestamps are refused (``timestamp_too_old``); future ones are clamped to now."""

SMALL_BATCH: Final = MAX_BATCH_EVENTS
"""Up to this many events, PostgreSQL gets them in one statement (:data:`_PG_STORE`) instead of
claiming their ids and ``COPY``ing them: fewer round trips and less server CPU. Any one request
fits; only groups of several requests that :mod:`group_commit` merges past it take the ``COPY``
path (docs/benchmarks.md, "Any one request in one statement")."""
EXPERIMENTS_TTL: Final = 2.0
"""Seconds a node remembers a site's running experiments before it reads them again.

Within them every batch still checks the site's ``config_version`` (which every start, pause,
edit, archive and delete bumps), so a change applies to the next batch on every node."""
MAX_CACHED_SITES: Final = 50_000

NO_GOAL_ID: Final = "conversion"
"""Goal id conversions are credited to when an experiment defines no goal."""

EVENT_COLUMNS: Final = (
    "id",
    "created_at",
    "site_id",
    "event_name",
    "visitor_id",
    "session_id",
    "experiment_id",
    "variant_id",
    "event_data",
    "url",
    "device_type",
    "client_event_id",
)
_COPY_EVENTS: Final = f"COPY events ({', '.join(EVENT_COLUMNS)}) FROM STDIN"
_PG_STORE_ROWS: Final = (
    "SELECT * FROM json_to_recordset(%s::json) AS r(id text, created_at timestamptz, "
    "event_name text, visitor_id text, session_id text, experiment_id text, variant_id text, "
    "event_data jsonb, url text, device_type text, client_event_id text)"
)
_PG_STORE_CLAIM: Final = (
    "k AS (INSERT INTO event_keys (site_id, event_id, created_at) "
    "SELECT %s, client_event_id, %s FROM r WHERE client_event_id IS NOT NULL "
    "ON CONFLICT DO NOTHING RETURNING event_id)"
)
_PG_STORE_INSERT: Final = (
    "INSERT INTO events (id, created_at, site_id, event_name, visitor_id, session_id, experiment_id, "
    "variant_id, event_data, url, device_type, client_event_id) "
    "SELECT id, created_at, %s, event_name, visitor_id, session_id, experiment_id, variant_id, event_data, "
    "url, device_type, client_event_id FROM r "
    "WHERE client_event_id IS NULL OR client_event_id IN (SELECT event_id FROM k) RETURNING id"
)
_PG_STORE: Final = f"WITH r AS ({_PG_STORE_ROWS}), {_PG_STORE_CLAIM} {_PG_STORE_INSERT}"
"""Claim the client event ids and insert the new events in one statement (PostgreSQL).

The rows come as one JSON array (:func:`_store_json`): psycopg then adapts one string instead
of eleven arrays, about a third less client CPU for a lone event; read as ``json``, not ``jsonb``,
which PostgreSQL would first build in full (docs/benchmarks.md)."""
_PG_STORE_IF_CURRENT: Final = (  # constants only; the values are parameters
    f"WITH v AS ({VERSION_PG}), c AS (SELECT 1 FROM v WHERE config_version = %s), "  # noqa: S608
    f"r AS ({_PG_STORE_ROWS} WHERE EXISTS (SELECT 1 FROM c)), {_PG_STORE_CLAIM}, "
    f"w AS ({_PG_STORE_INSERT}) "
    "SELECT id FROM w UNION ALL SELECT NULL WHERE NOT EXISTS (SELECT 1 FROM c)"
)
""":data:`_PG_STORE` only while the site's ``config_version`` is the one given, for events stored
without a transaction on the strength of the remembered experiments. Otherwise (a launch, a pause,
an edit, an archive since) it stores nothing and answers one NULL row. The check is the config's own
version read (a primary-key lookup) inside the statement: no round trip more."""
_NEW_KEYS_PG: Final = (
    "INSERT INTO event_keys (site_id, event_id, created_at) "
    "SELECT %s, k, %s FROM unnest(%s::text[]) AS k ON CONFLICT DO NOTHING RETURNING event_id"
)


EVENTS: Final = cast(Table, Event.__table__)
EVENT_KEYS: Final = cast(Table, EventKey.__table__)
CONVERSIONS: Final = cast(Table, ExperimentConversion.__table__)
VISITORS: Final = cast(Table, ExperimentVisitor.__table__)
FUNNELS: Final = cast(Table, FunnelProgress.__table__)
MONTHLY: Final = cast(Table, MonthlyVisitor.__table__)


_CONVERSION_COLUMNS: Final = (
    "experiment_id",
    "goal_id",
    "visitor_id",
    "variant_id",
    "site_id",
    "first_at",
    "count",
    "revenue",
)
_FUNNEL_COLUMNS: Final = (
    "experiment_id",
    "funnel_id",
    "visitor_id",
    "variant_id",
    "site_id",
    "steps",
    "updated_at",
)

# PostgreSQL: one statement per batch with arrays (``unnest``), not one per row; lookups go
# through the unique indexes with ``= ANY`` so even a generic prepared plan uses them.
_PG_ASSIGN: Final = (
    "INSERT INTO experiment_visitors (id, experiment_id, variant_id, site_id, visitor_id, assigned_at) "
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[]) "
    "ON CONFLICT (experiment_id, visitor_id) DO NOTHING"
)
_PG_ASSIGNMENTS_OF: Final = (
    "SELECT experiment_id, visitor_id, variant_id, assigned_at FROM experiment_visitors "
    "WHERE experiment_id = ANY(%s) AND visitor_id = ANY(%s)"
)
_PG_CONVERT: Final = (
    "INSERT INTO experiment_conversions AS c "
    "(experiment_id, goal_id, visitor_id, variant_id, site_id, first_at, count, revenue) "
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[], "
    "%s::int[], %s::float8[]) "
    "ON CONFLICT (experiment_id, goal_id, visitor_id) DO UPDATE SET count = c.count + excluded.count, "
    "revenue = c.revenue + excluded.revenue, first_at = LEAST(c.first_at, excluded.first_at)"
)
_PG_ENGAGE: Final = (
    "UPDATE experiment_visitors AS ev SET time_on_page_s = ev.time_on_page_s + u.s, "
    "time_on_page_n = ev.time_on_page_n + u.n, bounced = ev.bounced OR u.b "
    "FROM unnest(%s::text[], %s::text[], %s::float8[], %s::int[], %s::bool[]) AS u(e, v, s, n, b) "
    "WHERE ev.experiment_id = u.e AND ev.visitor_id = u.v"
)
_PG_EARLIER_EVENTS: Final = (
    "SELECT id, created_at, event_name, visitor_id, event_data::text, url FROM events "
    "WHERE site_id = %s AND visitor_id = ANY(%s) AND created_at >= %s AND event_name = ANY(%s)"
)
# the key says "funnel" (it was the funnel lock first): every node takes the same one per visitor
_PG_LOCK_VISITORS: Final = (
    "SELECT pg_advisory_xact_lock(hashtextextended('funnel:' || %s || ':' || v, 0)) "
    "FROM unnest(%s::text[]) WITH ORDINALITY AS u(v, n) ORDER BY n"
)
_PG_FUNNELS_OF: Final = (
    "SELECT experiment_id, funnel_id, visitor_id, steps FROM funnel_progress "
    "WHERE experiment_id = ANY(%s) AND visitor_id = ANY(%s)"
)
_PG_FUNNEL: Final = (
    "INSERT INTO funnel_progress AS f "
    "(experiment_id, funnel_id, visitor_id, variant_id, site_id, steps, updated_at) "
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::int[], "
    "%s::timestamptz[]) "
    "ON CONFLICT (experiment_id, funnel_id, visitor_id) DO UPDATE "
    "SET steps = GREATEST(f.steps, excluded.steps), updated_at = excluded.updated_at"
)


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> tuple[list[Any], ...]:
    """Rows turned into one list per column, for ``unnest``."""
    return tuple([r[i] for r in rows] for i in range(width))


async def _driver(conn: AsyncConnection) -> Any:
    """The psycopg connection under ``conn``, in the same transaction."""
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    return driver


async def _pg_execute(conn: AsyncConnection, sql: str, params: Sequence[Any]) -> None:
    await (await _driver(conn)).execute(sql, params)


async def _pg_fetch(conn: AsyncConnection, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    cur = await (await _driver(conn)).execute(sql, params)
    return list(await cur.fetchall())


@dataclass(slots=True)
class Accepted:
    """An event that passed validation and policy, ready to store."""

    index: int
    event: EventIn
    at: dt.datetime
    data_text: str | None
    data: Any = None  # decoded event_data for the names whose data the kernel reads
    owner: int = 0  # the request it came in (several /track requests share one transaction)


@dataclass(frozen=True, slots=True)
class FunnelStep:
    """One funnel step: a page path rule and/or an event name."""

    url: str | None  # None: no URL rule; "/": homepage only; else "path contains"
    event_name: str | None

    def matches(self, event_name: str, path: str | None) -> bool:
        """Whether an event satisfies the step (a page view on the path, or the named event)."""
        if self.event_name is not None and event_name == self.event_name:
            return True
        if self.url is None or event_name != "page_view" or path is None:
            return False
        return path == "/" if self.url == "/" else self.url in path


@dataclass(slots=True)
class RunningExperiment:
    """What attribution needs of a live or paused experiment."""

    id: str
    variants: set[str] = field(default_factory=set)
    goals: list[dict[str, Any]] = field(default_factory=list)
    primary_goal: str = NO_GOAL_ID
    funnels: list[tuple[str, tuple[FunnelStep, ...]]] = field(default_factory=list)

    def goals_for(self, event_name: str, data: Any) -> list[str]:
        """Goal ids an event counts for (see the module docstring of the issue's rules)."""
        hits = [
            g["id"]
            for g in self.goals
            if g.get("type") == "custom_event" and g.get("event_name") == event_name
        ]
        if event_name == "conversion":
            named_id = data.goal_id if isinstance(data, ConversionData) else None
            named = data.goal_name if isinstance(data, ConversionData) else None
            if named_id is None and named is None:
                hits.append(self.primary_goal)
            elif named_id is not None:  # an id names one goal of one experiment; its name is not asked
                hits.extend(g["id"] for g in self.goals if g["id"] == named_id)
            else:
                hits.extend(g["id"] for g in self.goals if g.get("name") == named)
        return list(dict.fromkeys(hits))


def _funnel_step(raw: dict[str, Any]) -> FunnelStep:
    url = raw.get("url") or ""
    event_name = raw.get("event_name")
    if url in ("", "/"):
        # an empty URL with an event name is an event-only step; without one, the homepage
        return FunnelStep(url=None if event_name and not url else "/", event_name=event_name)
    return FunnelStep(url=url, event_name=event_name)


def primary_goal_id(goals_doc: dict[str, Any]) -> str:
    """The goal that conversions naming no goal count for, and results and decisions read.

    The goal marked primary, else the first goal, else :data:`NO_GOAL_ID`.
    """
    goals = [g for g in goals_doc.get("goals", []) if g.get("id")]
    return next((g["id"] for g in goals if g.get("primary")), goals[0]["id"] if goals else NO_GOAL_ID)


def running_experiment(exp_id: str, goals_doc: dict[str, Any], with_funnels: bool) -> RunningExperiment:
    """Build the attribution view of an experiment from its stored goals document."""
    goals = [g for g in goals_doc.get("goals", []) if g.get("id")]
    primary = primary_goal_id(goals_doc)
    funnels = (
        [(f["id"], tuple(_funnel_step(s) for s in f.get("steps", []))) for f in goals_doc.get("funnels", [])]
        if with_funnels
        else []
    )
    return RunningExperiment(
        id=exp_id, goals=goals, primary_goal=primary, funnels=[f for f in funnels if f[0]]
    )


def _path_of(url: str | None) -> str | None:
    if not url:
        return None
    try:
        return urlsplit(url).path or "/"
    except ValueError:
        return None


class Ingestor:
    """Validates and stores batches of events for one kernel (one per app)."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.postgres = kernel.db.engine.dialect.name == "postgresql"
        self._insert = pg_insert if self.postgres else sqlite_insert
        types: dict[str, EventType] = dict(KERNEL_EVENT_TYPES)
        for plugin_types in kernel.plugins.event_types().values():
            for t in plugin_types:
                types.setdefault(t.name, t)
        self.types = types
        self._decoders = {  # data only checked to be an object needs no decoder
            name: msgspec.json.Decoder(t.data_type) for name, t in types.items() if t.data_type is not AnyData
        }
        self._has_listeners = bool(kernel.plugins.pm.hook.on_events_ingested.get_hookimpls())
        # (site, funnels) → (expiry, the site's config_version they were read at, the experiments)
        self._cache: dict[tuple[str, bool], tuple[float, int | None, dict[str, RunningExperiment]]] = {}

    # ------------------------------------------------------------ validate ---

    def validate(
        self, events: Sequence[EventIn], now: dt.datetime, maybe_nul: bool = True
    ) -> tuple[list[Accepted], dict[str, int]]:
        """Check every event; a malformed one refuses the whole batch (400 naming its field).

        Returns:
            The events that may be stored and the policy refusals counted by reason
            (only ``timestamp_too_old`` here; entitlement, experiments and the visitor
            cap are checked against the site in :meth:`commit`).
        """
        accepted: list[Accepted] = []
        rejected: dict[str, int] = {}
        oldest = now - MAX_AGE
        decoders = self._decoders
        for i, e in enumerate(events):
            raw = bytes(e.event_data)
            if maybe_nul:
                _refuse_nul(i, e, raw)
            data_text: str | None = None
            data: Any = None
            if raw and raw != b"null":
                if raw[:1] != b"{":
                    raise field_error(f"events[{i}].event_data", "must be a JSON object")
                data_text = raw.decode()
            decoder = decoders.get(e.event_name)
            if decoder is not None and (
                e.event_name == "time_on_page"
                or (data_text is not None and (e.event_name != "page_view" or b'"hidden_ms"' in raw))
            ):  # a page view's data is only read for hidden_ms: most skip decoding
                try:
                    data = decoder.decode(raw or b"null")
                except msgspec.ValidationError as exc:
                    raise from_msgspec(exc, f"events[{i}].event_data") from None
            if e.event_name == "assignment" and (e.experiment_id is None or e.variant_id is None):
                raise field_error(
                    f"events[{i}].experiment_id", "an assignment names experiment_id and variant_id"
                )
            at = now
            if e.timestamp is not None:
                ts = e.timestamp if e.timestamp.tzinfo else e.timestamp.replace(tzinfo=dt.UTC)
                if ts < oldest:
                    rejected["timestamp_too_old"] = rejected.get("timestamp_too_old", 0) + 1
                    continue
                at = min(ts, now)
            accepted.append(Accepted(index=i, event=e, at=at, data_text=data_text, data=data))
        return accepted, rejected

    # -------------------------------------------------------------- ingest ---

    async def commit(
        self,
        site: SiteKey,
        now: dt.datetime,
        accepted: list[Accepted],
        rejected: list[dict[str, int]],
    ) -> tuple[list[Tally], list[tuple[Accepted, str]]]:
        """Store validated events of one or more requests (``Accepted.owner`` indexes ``rejected``).

        One transaction for all of them. Returns each request's tally (``rejected[owner]``,
        the refusals of its validation, is extended) and, when a plugin listens, the stored
        events with their ids.
        """
        plan = site.plan if is_plan_name(site.plan) else "free"
        plans = self.kernel.plans
        tallies = [Tally(rejected=r) for r in rejected]
        kept: list[Accepted] = []
        for a in accepted:
            feature = self.types[a.event.event_name].feature if a.event.event_name in self.types else None
            if feature is not None and not plans.includes(plan, feature):
                tallies[a.owner].refuse("not_entitled")
            else:
                kept.append(a)
        offered = kept  # from here on, whatever is not stored nor refused was a duplicate
        kept = _dedupe_in_batch(kept)
        cap = plans.plan(plan).limits.get("monthly_visitors")
        with_funnels = plans.includes(plan, EXPERIMENTS_FUNNELS.key)
        known = self._remembered(site.site_id, with_funnels, kept) if len(kept) <= SMALL_BATCH else None
        stored: list[tuple[Accepted, str]] | None = [] if not kept else None
        if (
            self.postgres
            and cap is None
            and known is not None
            and kept
            and _attributes_nothing(known[1], kept)
        ):
            # None: the site's experiments changed since they were read (a launch, an archive)
            stored = await self._store_alone(site.site_id, now, kept, known[0])
        if stored is None:
            stored = await self._store_in_transaction(site, now, kept, tallies, cap, with_funnels)
        for a, _ in stored:
            tallies[a.owner].stored += 1
        for a in offered:
            tallies[a.owner].duplicates += 1
        for t in tallies:
            t.duplicates -= t.stored + t.refused_later
        return tallies, (stored if self._has_listeners else [])

    async def _store_in_transaction(
        self,
        site: SiteKey,
        now: dt.datetime,
        kept: list[Accepted],
        tallies: list[Tally],
        cap: int | None,
        with_funnels: bool,
    ) -> list[tuple[Accepted, str]]:
        """The events checked against the running experiments and the visitor cap, stored and attributed."""
        stored: list[tuple[Accepted, str]] = []
        # the site's config version, then (when it changed) its experiments; on SQLite read on the
        # event loop's thread before the transaction (docs/benchmarks.md: 0.1 ms, not 1.2 ms)
        db = self.kernel.db
        version = None if self.postgres else await db.sqlite_first(VERSION_SQLITE, (site.site_id,))
        async with db.engine.begin() as conn:
            if self.postgres:  # one primary-key lookup in the transaction
                version = next(iter(await _pg_fetch(conn, VERSION_PG, (site.site_id,))), None)
            experiments = await self._experiments_of(
                conn, site.site_id, with_funnels, kept, None if version is None else version[0]
            )
            kept = _refuse_missing(kept, _check_assignments(kept, experiments), tallies, "unknown_experiment")
            if cap is not None and kept:
                admitted = await self._visitor_cap(conn, site, cap, now, kept)
                kept = _refuse_missing(kept, admitted, tallies, "visitor_limit")
            if kept:
                stored = await self._store(conn, site.site_id, now, kept)
                kept = [a for a, _ in stored]
            if kept and experiments:
                await self._attribute(conn, site.site_id, experiments, kept, {i for _, i in stored})
        return stored

    async def _store_alone(
        self, site_id: str, now: dt.datetime, kept: list[Accepted], version: int | None
    ) -> list[tuple[Accepted, str]] | None:
        """Events no experiment attributes (at most :data:`SMALL_BATCH`): one autocommitted statement.

        The statement claims the client event ids and inserts the new events at once, so it
        is as all-or-nothing as a transaction, without ``BEGIN`` and ``COMMIT`` round trips.
        It stores them only while the site's config is at ``version``, the one the remembered
        experiments were read at; None if it is not (nothing was stored).
        """
        ids = [new_id() for _ in kept]
        rows = _store_json(kept, ids)
        async with self.kernel.db.autocommit() as conn:
            cur = await conn.execute(_PG_STORE_IF_CURRENT, (site_id, version, rows, site_id, now, site_id))
            written = {row[0] for row in await cur.fetchall()}
        if None in written:
            return None
        return [(a, event_id) for a, event_id in zip(kept, ids, strict=True) if event_id in written]

    async def notify(self, site: SiteKey, events: list[IngestedEvent]) -> None:
        """After the commit: ``on_events_ingested`` for the plugins switched on for the site."""
        if events:
            await self.kernel.plugins.events_ingested(
                SiteRef(id=site.site_id, organization_id=site.organization_id, name=site.name, url=site.url),
                events,
            )

    # ------------------------------------------------------------- stages ---

    async def _experiments_of(
        self,
        conn: AsyncConnection,
        site_id: str,
        with_funnels: bool,
        kept: list[Accepted],
        version: int | None,
    ) -> dict[str, RunningExperiment]:
        """The site's running experiments, remembered for ``EXPERIMENTS_TTL`` seconds.

        ``version`` is the site's ``config_version`` read just before: remembered experiments
        read at another version are read again (every start, pause, edit, archive and delete
        bumps it), as they are when an event names an experiment or variant they lack.
        """
        known = self._remembered(site_id, with_funnels, kept)
        if known is not None and known[0] == version:
            return known[1]
        key, now = (site_id, with_funnels), time.monotonic()
        fresh = await self._running_experiments(conn, site_id, with_funnels)  # read after the version
        if len(self._cache) >= MAX_CACHED_SITES:
            self._cache.clear()
        self._cache[key] = (now + EXPERIMENTS_TTL, version, fresh)
        return fresh

    def _remembered(
        self, site_id: str, with_funnels: bool, kept: list[Accepted]
    ) -> tuple[int | None, dict[str, RunningExperiment]] | None:
        """The remembered config version and running experiments, unless stale or lacking one ``kept`` names.

        The caller checks the version against the site's before it relies on them.
        """
        hit = self._cache.get((site_id, with_funnels))
        if hit is None or hit[0] <= time.monotonic():
            return None
        known = hit[2]
        for a in kept:
            e = a.event
            if e.experiment_id is not None and e.variant_id is not None:
                exp = known.get(e.experiment_id)
                if exp is None or e.variant_id not in exp.variants:
                    return None
        return hit[1], known

    async def _running_experiments(
        self, conn: AsyncConnection, site_id: str, with_funnels: bool
    ) -> dict[str, RunningExperiment]:
        rows = await conn.execute(
            select(Experiment.id, Experiment.goals, Variant.id)
            .join(Variant, Variant.experiment_id == Experiment.id)
            .where(Experiment.site_id == site_id, Experiment.status.in_(("live", "paused")))
        )
        out: dict[str, RunningExperiment] = {}
        for exp_id, goals_doc, variant_id in rows:
            exp = out.get(exp_id)
            if exp is None:
                exp = out[exp_id] = running_experiment(exp_id, goals_doc or {}, with_funnels)
            exp.variants.add(variant_id)
        return out

    async def _visitor_cap(
        self,
        conn: AsyncConnection,
        site: SiteKey,
        cap: int,
        now: dt.datetime,
        kept: list[Accepted],
    ) -> list[Accepted]:
        """Admit new visitors of the month while the organization is under its cap; the events admitted."""
        org, month = site.organization_id, now.strftime("%Y-%m")
        # one batch at a time counts and admits: per organization on PostgreSQL; on SQLite a
        # write that changes nothing takes the database's write lock before the counts are read
        if self.postgres:
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"visitors:{org}"})
        else:
            await conn.execute(text("DELETE FROM monthly_visitors WHERE 0"))
        visitors = list(dict.fromkeys(a.event.visitor_id for a in kept))
        mv = MONTHLY
        known = set(
            (
                await conn.execute(
                    select(mv.c.visitor_id).where(
                        mv.c.organization_id == org, mv.c.month == month, mv.c.visitor_id.in_(visitors)
                    )
                )
            ).scalars()
        )
        used = (
            await conn.execute(
                select(func.count()).select_from(mv).where(mv.c.organization_id == org, mv.c.month == month)
            )
        ).scalar_one()
        new = [v for v in visitors if v not in known]
        room = max(0, cap - used)
        admitted, refused = new[:room], set(new[room:])
        if admitted:
            await conn.execute(
                self._insert(mv).on_conflict_do_nothing(),
                [{"organization_id": org, "month": month, "visitor_id": v} for v in admitted],
            )
        if not refused:
            return kept
        return [a for a in kept if a.event.visitor_id not in refused]

    async def _store(
        self, conn: AsyncConnection, site_id: str, now: dt.datetime, kept: list[Accepted]
    ) -> list[tuple[Accepted, str]]:
        """Claim the client event ids and write the events whose id is new; returns them with their ids.

        On PostgreSQL up to :data:`SMALL_BATCH` events (``/events/track``, a beacon, any one
        batch) go in one statement, one round trip; a bigger group claims the ids in one statement
        and ``COPY``s the events (measured by ``bench/ingest.py``).
        """
        if not self.postgres or len(kept) > SMALL_BATCH:
            kept, _ = await self._claim_event_ids(conn, site_id, now, kept)
            stored = [(a, new_id()) for a in kept]
            if stored:
                await self._insert_events(conn, site_id, stored)
            return stored
        ids = [new_id() for _ in kept]
        rows = _store_json(kept, ids)
        written = {row[0] for row in await _pg_fetch(conn, _PG_STORE, (rows, site_id, now, site_id))}
        return [(a, event_id) for a, event_id in zip(kept, ids, strict=True) if event_id in written]

    async def _claim_event_ids(
        self, conn: AsyncConnection, site_id: str, now: dt.datetime, kept: list[Accepted]
    ) -> tuple[list[Accepted], int]:
        """Record the batch's client event ids; events whose id was stored before are duplicates."""
        ids = [a.event.event_id for a in kept if a.event.event_id is not None]
        if not ids:
            return kept, 0
        if self.postgres:
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            cur = await driver.execute(_NEW_KEYS_PG, (site_id, now, ids))
            new = {row[0] for row in await cur.fetchall()}
        else:
            ek = EVENT_KEYS
            result = await conn.execute(
                sqlite_insert(ek)
                .values([{"site_id": site_id, "event_id": k, "created_at": now} for k in ids])
                .on_conflict_do_nothing()
                .returning(ek.c.event_id)
            )
            new = set(result.scalars())
        if len(new) == len(ids):
            return kept, 0
        out = [a for a in kept if a.event.event_id is None or a.event.event_id in new]
        return out, len(kept) - len(out)

    async def _insert_events(
        self, conn: AsyncConnection, site_id: str, stored: list[tuple[Accepted, str]]
    ) -> None:
        if self.postgres:
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            async with driver.cursor().copy(_COPY_EVENTS) as copy:
                for a, event_id in stored:
                    await copy.write_row(_row(a, event_id, site_id))
            return
        await conn.execute(
            EVENTS.insert(),
            [
                {
                    "id": event_id,
                    "created_at": a.at,
                    "site_id": site_id,
                    "event_name": a.event.event_name,
                    "visitor_id": a.event.visitor_id,
                    "session_id": a.event.session_id,
                    "experiment_id": a.event.experiment_id,
                    "variant_id": a.event.variant_id,
                    "event_data": msgspec.json.decode(a.data_text) if a.data_text else None,
                    "url": a.event.url,
                    "device_type": a.event.device_type,
                    "client_event_id": a.event.event_id,
                }
                for a, event_id in stored
            ],
        )

    async def _attribute(
        self,
        conn: AsyncConnection,
        site_id: str,
        experiments: dict[str, RunningExperiment],
        kept: list[Accepted],
        batch_ids: set[str],
    ) -> None:
        """Assignments, then conversions, engagement and funnels of assigned visitors.

        A visitor newly assigned by this batch may have sent events after that moment in an
        earlier request (another SDK process, a beacon racing a fetch): those stored events
        are credited to the new assignment too.

        On PostgreSQL the batch first takes a transaction lock per visitor it assigns or
        credits (in sorted order, so two batches never wait on each other in a cycle): a batch
        assigning a visitor and one carrying the visitor's conversion take turns, and the
        second reads what the first committed (else each misses the other's uncommitted row
        and the conversion is never credited). SQLite's write lock, held since the events were
        written, does the same. The funnel progress of these visitors is read under it too.
        """
        first = _first_assignments(experiments, kept)
        relevant = _relevant_names(experiments.values())
        funnels_on_pages = any(
            s.url is not None for e in experiments.values() for _, f in e.funnels for s in f
        )
        later = [
            a
            for a in kept
            if a.event.event_name != "assignment"
            and (a.event.event_name in relevant or (funnels_on_pages and a.event.event_name == "page_view"))
        ]
        if not later and not first:
            return
        visitors = sorted({a.event.visitor_id for a in later} | {v for _, v in first})
        if self.postgres:
            await _pg_execute(conn, _PG_LOCK_VISITORS, (site_id, visitors))
        batch_assigned = await self._upsert_assignments(conn, site_id, first)
        assignments: dict[str, list[tuple[str, str, dt.datetime]]] = defaultdict(list)
        new: dict[str, list[tuple[str, str, dt.datetime]]] = defaultdict(list)
        for exp_id, visitor_id, variant_id, assigned_at in await self._assignments_of(
            conn, site_id, list(experiments), visitors
        ):
            assignments[visitor_id].append((exp_id, variant_id, assigned_at))
            mine = batch_assigned.get((exp_id, visitor_id))
            if mine is not None and mine[0] == variant_id and mine[1] == assigned_at:
                new[visitor_id].append((exp_id, variant_id, assigned_at))  # this batch wrote it
        order = {key: index for key, (_, _, index) in batch_assigned.items()}
        if later and assignments:
            later.sort(key=lambda a: (a.at, a.index))
            await self._credit(conn, site_id, experiments, assignments, later, order)
        if new:
            names = relevant | ({"page_view"} if funnels_on_pages else set())
            earlier = await self._stored_events(conn, site_id, new, names, batch_ids)
            if earlier:
                await self._credit(conn, site_id, experiments, new, earlier, {})

    async def _stored_events(
        self,
        conn: AsyncConnection,
        site_id: str,
        assigned: dict[str, list[tuple[str, str, dt.datetime]]],
        names: set[str],
        batch_ids: set[str],
    ) -> list[Accepted]:
        """Events stored by earlier requests of these visitors since their new assignments."""
        since = min(at for rows in assigned.values() for _, _, at in rows)
        found: list[tuple[Any, ...]]
        if self.postgres:  # the visitor index with = ANY; event_data as text, decoded only when read
            found = await _pg_fetch(conn, _PG_EARLIER_EVENTS, (site_id, list(assigned), since, sorted(names)))
        else:
            ev = EVENTS
            found = [
                (i, at, name, v, msgspec.json.encode(data).decode() if data is not None else None, url)
                for i, at, name, v, data, url in await conn.execute(
                    select(
                        ev.c.id, ev.c.created_at, ev.c.event_name, ev.c.visitor_id, ev.c.event_data, ev.c.url
                    ).where(
                        ev.c.site_id == site_id,
                        ev.c.visitor_id.in_(list(assigned)),
                        ev.c.created_at >= since,
                        ev.c.event_name.in_(sorted(names)),
                    )
                )
            ]
        out = []
        for event_id, at, name, visitor_id, text_data, url in found:
            if event_id in batch_ids:
                continue  # this batch's own events are credited already
            decoded: Any = None
            if text_data is not None and name in ("conversion", "time_on_page"):
                decoded = msgspec.json.decode(
                    text_data, type=ConversionData if name == "conversion" else TimeOnPageData
                )
            event = EventIn(event_name=name, visitor_id=visitor_id, url=url)
            out.append(Accepted(index=-1, event=event, at=at, data_text=text_data, data=decoded))
        out.sort(key=lambda a: a.at)
        return out

    async def _upsert_assignments(
        self,
        conn: AsyncConnection,
        site_id: str,
        first: dict[tuple[str, str], tuple[str, dt.datetime, int]],
    ) -> dict[tuple[str, str], tuple[str, dt.datetime, int]]:
        """Upsert the batch's first assignments (:func:`_first_assignments`); returns ``first``."""
        if not first:
            return {}
        rows = [  # sorted by key: concurrent batches lock rows in one order, never deadlock
            (new_id(), exp_id, variant_id, site_id, visitor_id, at)
            for (exp_id, visitor_id), (variant_id, at, _) in sorted(first.items())
        ]
        if self.postgres:
            await _pg_execute(conn, _PG_ASSIGN, _columns(rows, 6))
            return first
        await conn.execute(
            sqlite_insert(VISITORS).on_conflict_do_nothing(index_elements=["experiment_id", "visitor_id"]),
            [
                dict(
                    zip(
                        ("id", "experiment_id", "variant_id", "site_id", "visitor_id", "assigned_at"),
                        r,
                        strict=True,
                    )
                )
                for r in rows
            ],
        )
        return first

    async def _credit(
        self,
        conn: AsyncConnection,
        site_id: str,
        experiments: dict[str, RunningExperiment],
        assignments: dict[str, list[tuple[str, str, dt.datetime]]],
        later: list[Accepted],
        order: dict[tuple[str, str], int],
    ) -> None:
        """Credit each event to the experiments its visitor was in before it happened.

        ``order`` holds the batch position of this batch's assignments: an event with the
        same time as its assignment counts only when it comes after it in the batch.
        """
        conversions: dict[
            tuple[str, str, str], list[Any]
        ] = {}  # (exp, goal, visitor) → [variant, first, n, revenue]
        engagement: dict[tuple[str, str], list[Any]] = {}  # (exp, visitor) → [seconds, n, bounced]
        funnel_events: list[tuple[Accepted, str, str, RunningExperiment]] = []
        for a in later:
            name = a.event.event_name
            for exp_id, variant_id, assigned_at in assignments.get(a.event.visitor_id, ()):
                if assigned_at > a.at or (
                    assigned_at == a.at and order.get((exp_id, a.event.visitor_id), -1) > a.index
                ):
                    continue  # happened before the visitor was in this experiment
                exp = experiments[exp_id]
                goals = exp.goals_for(name, a.data)
                if goals:
                    revenue = (
                        revenue_of(a.data) if isinstance(a.data, ConversionData) else _revenue_of_text(a)
                    )
                    for goal in goals:
                        key = (exp_id, goal, a.event.visitor_id)
                        hit = conversions.get(key)
                        if hit is None:
                            conversions[key] = [variant_id, a.at, 1, revenue]
                        else:
                            hit[2] += 1
                            hit[3] += revenue
                if name == "time_on_page" and isinstance(a.data, TimeOnPageData):
                    acc = engagement.setdefault((exp_id, a.event.visitor_id), [0.0, 0, False])
                    if a.data.seconds < BOUNCE_SECONDS:
                        acc[2] = True
                    else:
                        acc[0] += a.data.seconds
                        acc[1] += 1
                elif name == "bounce":
                    engagement.setdefault((exp_id, a.event.visitor_id), [0.0, 0, False])[2] = True
                if exp.funnels:
                    funnel_events.append((a, exp_id, variant_id, exp))
        if conversions:
            await self._upsert_conversions(conn, site_id, conversions)
        if engagement:
            await self._add_engagement(conn, engagement)
        if funnel_events:
            await self._advance_funnels(conn, site_id, funnel_events)

    async def _upsert_conversions(
        self, conn: AsyncConnection, site_id: str, conversions: dict[tuple[str, str, str], list[Any]]
    ) -> None:
        rows = [
            (e, g, v, variant, site_id, first, n, revenue)
            for (e, g, v), (variant, first, n, revenue) in sorted(conversions.items())
        ]
        if self.postgres:
            await _pg_execute(conn, _PG_CONVERT, _columns(rows, 8))
            return
        ec = CONVERSIONS
        stmt = sqlite_insert(ec)
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["experiment_id", "goal_id", "visitor_id"],
                set_={
                    "count": ec.c.count + stmt.excluded.count,
                    "revenue": ec.c.revenue + stmt.excluded.revenue,
                    "first_at": func.min(ec.c.first_at, stmt.excluded.first_at),
                },
            ),
            [dict(zip(_CONVERSION_COLUMNS, r, strict=True)) for r in rows],
        )

    async def _add_engagement(
        self, conn: AsyncConnection, engagement: dict[tuple[str, str], list[Any]]
    ) -> None:
        rows = [(e, v, sec, n, b) for (e, v), (sec, n, b) in sorted(engagement.items())]
        if self.postgres:
            await _pg_execute(conn, _PG_ENGAGE, _columns(rows, 5))
            return
        ev = VISITORS
        await conn.execute(
            update(ev)
            .where(ev.c.experiment_id == bindparam("e"), ev.c.visitor_id == bindparam("v"))
            .values(
                time_on_page_s=ev.c.time_on_page_s + bindparam("s"),
                time_on_page_n=ev.c.time_on_page_n + bindparam("n"),
                bounced=or_(ev.c.bounced, bindparam("b")),
            )
            .execution_options(synchronize_session=False),
            [{"e": e, "v": v, "s": sec, "n": n, "b": b} for e, v, sec, n, b in rows],
        )

    async def _assignments_of(
        self, conn: AsyncConnection, site_id: str, experiment_ids: list[str], visitors: list[str]
    ) -> list[tuple[str, str, str, dt.datetime]]:
        """Assignments of these visitors to these experiments, through the unique index."""
        if self.postgres:
            return [tuple(r) for r in await _pg_fetch(conn, _PG_ASSIGNMENTS_OF, (experiment_ids, visitors))]
        ev = VISITORS
        result = await conn.execute(
            select(ev.c.experiment_id, ev.c.visitor_id, ev.c.variant_id, ev.c.assigned_at).where(
                ev.c.site_id == site_id, ev.c.visitor_id.in_(visitors), ev.c.experiment_id.in_(experiment_ids)
            )
        )
        return [(e, v, var, at) for e, v, var, at in result]

    async def _advance_funnels(
        self,
        conn: AsyncConnection,
        site_id: str,
        funnel_events: list[tuple[Accepted, str, str, RunningExperiment]],
    ) -> None:
        """Advance each visitor's funnels one step per matching event, in order only.

        Progress is read, then written: two batches of one visitor take turns (the visitor's
        transaction lock, taken by :meth:`_attribute` for every visitor it credits), so
        neither advances from a stale step.
        """
        visitors = sorted({a.event.visitor_id for a, *_ in funnel_events})
        experiment_ids = list({exp_id for _, exp_id, _, _ in funnel_events})
        progress: dict[tuple[str, str, str], int] = {}
        if self.postgres:
            found = await _pg_fetch(conn, _PG_FUNNELS_OF, (experiment_ids, visitors))
        else:
            fp = FUNNELS
            found = list(
                await conn.execute(
                    select(fp.c.experiment_id, fp.c.funnel_id, fp.c.visitor_id, fp.c.steps).where(
                        fp.c.site_id == site_id,
                        fp.c.visitor_id.in_(visitors),
                        fp.c.experiment_id.in_(experiment_ids),
                    )
                )
            )
        for e, f, v, steps in found:
            progress[(e, f, v)] = steps
        changed: dict[tuple[str, str, str], tuple[str, int, dt.datetime]] = {}
        for a, exp_id, variant_id, exp in funnel_events:
            path = _path_of(a.event.url)
            for funnel_id, steps in exp.funnels:
                key = (exp_id, funnel_id, a.event.visitor_id)
                done = progress.get(key, 0)
                if done < len(steps) and steps[done].matches(a.event.event_name, path):
                    progress[key] = done + 1
                    changed[key] = (variant_id, done + 1, a.at)
        if not changed:
            return
        rows = [
            (e, f, v, variant, site_id, steps, at)
            for (e, f, v), (variant, steps, at) in sorted(changed.items())
        ]
        if self.postgres:
            await _pg_execute(conn, _PG_FUNNEL, _columns(rows, 7))
            return
        fp = FUNNELS
        stmt = sqlite_insert(fp)
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["experiment_id", "funnel_id", "visitor_id"],
                set_={
                    "steps": func.max(fp.c.steps, stmt.excluded.steps),
                    "updated_at": stmt.excluded.updated_at,
                },
            ),
            [dict(zip(_FUNNEL_COLUMNS, r, strict=True)) for r in rows],
        )


_TEXT_FIELDS: Final = (
    "event_name",
    "visitor_id",
    "event_id",
    "session_id",
    "experiment_id",
    "variant_id",
    "url",
    "device_type",
)


def _refuse_nul(i: int, e: EventIn, raw: bytes) -> None:
    """PostgreSQL text and jsonb cannot hold NUL: refuse it by name on both backends (400)."""
    for name in _TEXT_FIELDS:
        value = getattr(e, name)
        if value is not None and "\x00" in value:
            raise field_error(f"events[{i}].{name}", "must not contain the NUL character (\\u0000)")
    if b"\\u0000" in raw:
        raise field_error(f"events[{i}].event_data", "must not contain the NUL character (\\u0000)")


def _row(a: Accepted, event_id: str, site_id: str | None) -> tuple[Any, ...]:
    """An event's columns in :data:`EVENT_COLUMNS` order (without ``site_id`` when it is None)."""
    e = a.event
    head = (event_id, a.at) if site_id is None else (event_id, a.at, site_id)
    return (
        *head,
        e.event_name,
        e.visitor_id,
        e.session_id,
        e.experiment_id,
        e.variant_id,
        a.data_text,
        e.url,
        e.device_type,
        e.event_id,
    )


class _StoreRow(msgspec.Struct):
    """One row of :data:`_PG_STORE`'s JSON, named as its columns."""

    id: str
    created_at: dt.datetime
    event_name: str
    visitor_id: str
    session_id: str | None
    experiment_id: str | None
    variant_id: str | None
    event_data: msgspec.Raw | None
    url: str | None
    device_type: str | None
    client_event_id: str | None


_ENCODE_ROWS: Final = msgspec.json.Encoder()


def _store_json(kept: list[Accepted], ids: list[str]) -> str:
    """The events as the JSON array :data:`_PG_STORE` reads (``event_data`` passed through as sent)."""
    rows = []
    for a, event_id in zip(kept, ids, strict=True):
        e = a.event
        data = msgspec.Raw(a.data_text.encode()) if a.data_text is not None else None
        rows.append(
            _StoreRow(
                event_id,
                a.at,
                e.event_name,
                e.visitor_id,
                e.session_id,
                e.experiment_id,
                e.variant_id,
                data,
                e.url,
                e.device_type,
                e.event_id,
            )
        )
    return _ENCODE_ROWS.encode(rows).decode()


def _attributes_nothing(experiments: dict[str, RunningExperiment], kept: list[Accepted]) -> bool:
    """Whether none of ``kept`` assigns (an assignment, a page view naming a variant) or is credited."""
    if not experiments:
        return True
    relevant = _relevant_names(experiments.values())
    if any(s.url is not None for e in experiments.values() for _, f in e.funnels for s in f):
        relevant.add("page_view")
    return not any(
        a.event.event_name == "assignment"
        or a.event.event_name in relevant
        or (a.event.experiment_id is not None and a.event.variant_id is not None)
        for a in kept
    )


def _first_assignments(
    experiments: dict[str, RunningExperiment], kept: list[Accepted]
) -> dict[tuple[str, str], tuple[str, dt.datetime, int]]:
    """The batch's first assignment per (experiment, visitor): ``(variant, time, batch index)``.

    ``assignment`` events and page views naming a variant of a running experiment assign.
    """
    first: dict[tuple[str, str], tuple[str, dt.datetime, int]] = {}
    for a in kept:
        e = a.event
        if e.experiment_id is None or e.variant_id is None or e.event_name not in ("assignment", "page_view"):
            continue
        exp = experiments.get(e.experiment_id)
        if exp is None or e.variant_id not in exp.variants:
            continue
        key = (e.experiment_id, e.visitor_id)
        if key not in first or a.at < first[key][1]:
            first[key] = (e.variant_id, a.at, a.index)
    return first


def _dedupe_in_batch(kept: list[Accepted]) -> list[Accepted]:
    seen: set[str] = set()
    out: list[Accepted] = []
    for a in kept:
        key = a.event.event_id
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        out.append(a)
    return out


def _check_assignments(kept: list[Accepted], experiments: dict[str, RunningExperiment]) -> list[Accepted]:
    """The events but assignments to experiments not running on this site (or to unknown variants)."""
    out = []
    for a in kept:
        e = a.event
        if e.event_name == "assignment":
            exp = experiments.get(e.experiment_id or "")
            if exp is None or e.variant_id not in exp.variants:
                continue
        out.append(a)
    return out


def _refuse_missing(
    before: list[Accepted], after: list[Accepted], tallies: list[Tally], reason: str
) -> list[Accepted]:
    """Count the events of ``before`` that ``after`` dropped as refused for ``reason``; returns ``after``."""
    if len(after) < len(before):
        left = {id(a) for a in after}
        for a in before:
            if id(a) not in left:
                tallies[a.owner].refuse(reason, later=True)
    return after


@dataclass(slots=True)
class Tally:
    """What became of one request's events."""

    rejected: dict[str, int]
    stored: int = 0
    duplicates: int = 0
    refused_later: int = 0  # refused after the duplicates were counted in

    def refuse(self, reason: str, later: bool = False) -> None:
        """Count one event refused for ``reason``."""
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        self.refused_later += later


def _relevant_names(experiments: Iterable[RunningExperiment]) -> set[str]:
    names = {"conversion", "time_on_page", "bounce"}
    for exp in experiments:
        names.update(
            g["event_name"] for g in exp.goals if g.get("type") == "custom_event" and g.get("event_name")
        )
        names.update(s.event_name for _, steps in exp.funnels for s in steps if s.event_name)
    return names


def _revenue_of_text(a: Accepted) -> float:
    """Revenue of a custom event that counts for a goal: decode its data only then."""
    if not a.data_text:
        return 0.0
    try:
        data = msgspec.json.decode(a.data_text)
    except msgspec.DecodeError:  # pragma: no cover - validated as an object on the way in
        return 0.0
    return revenue_of(data) if isinstance(data, dict) else 0.0


def ingested_event(site_id: str, a: Accepted, event_id: str) -> IngestedEvent:
    """What ``on_events_ingested`` hears of one stored event."""
    e = a.event
    return IngestedEvent(
        event_id=event_id,
        event_name=e.event_name,
        visitor_id=e.visitor_id,
        site_id=site_id,
        timestamp=a.at,
        session_id=e.session_id,
        experiment_id=e.experiment_id,
        variant_id=e.variant_id,
        url=e.url,
        event_data=msgspec.json.decode(a.data_text) if a.data_text else None,
    )
