"""A visitor's data rights: export everything held about one visitor of a site, or delete it.

The kernel's rows (``events``, ``event_keys``, ``experiment_visitors``,
``experiment_conversions``, ``funnel_progress``, ``monthly_visitors``) are read or
deleted in one transaction; plugins answer through ``export_visitor`` and are told of
a deletion through ``on_purge`` after the commit (docs/data_rights.md).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final, cast

import msgspec
from sqlalchemy import CursorResult, Table, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from segmently.db.base import utcnow
from segmently.db.models import (
    Experiment,
    ExperimentConversion,
    ExperimentVisitor,
    FunnelProgress,
    MonthlyVisitor,
    Organization,
    Site,
    Variant,
)
from segmently.domain.events.purge import EVENT_KEYS, EVENTS
from segmently.hookspecs import OrgRef, SiteRef
from segmently.kernel import Kernel
from segmently.tiers.guards import org_ref

EXPORT_FORMAT: Final = "segmently.visitor-export/1"
KEY_CHUNK: Final = 500
"""Client event ids per ``DELETE … IN`` (well under every backend's bound-parameter limit)."""

VISITORS: Final = cast(Table, ExperimentVisitor.__table__)
CONVERSIONS: Final = cast(Table, ExperimentConversion.__table__)
FUNNELS: Final = cast(Table, FunnelProgress.__table__)
MONTHLY: Final = cast(Table, MonthlyVisitor.__table__)


class VisitorEvent(msgspec.Struct, kw_only=True):
    """One stored event of the visitor."""

    id: str
    created_at: dt.datetime
    event_name: str
    client_event_id: str | None
    session_id: str | None
    experiment_id: str | None
    variant_id: str | None
    url: str | None
    device_type: str | None
    event_data: dict[str, Any] | None


class VisitorAssignment(msgspec.Struct, kw_only=True):
    """The visitor's variant in one experiment, and their engagement after assignment.

    ``experiment_slug`` and ``variant_key`` (here and below) are None only when the
    experiment or variant no longer exists; the row is exported regardless.
    """

    experiment_id: str
    experiment_slug: str | None
    variant_id: str
    variant_key: str | None
    assigned_at: dt.datetime
    time_on_page_s: float
    time_on_page_n: int
    bounced: bool


class VisitorConversion(msgspec.Struct, kw_only=True):
    """The visitor's conversions on one goal of one experiment."""

    experiment_id: str
    experiment_slug: str | None
    goal_id: str
    variant_id: str
    variant_key: str | None
    first_at: dt.datetime
    count: int
    revenue: float


class VisitorFunnel(msgspec.Struct, kw_only=True):
    """How far the visitor got through one funnel of one experiment."""

    experiment_id: str
    experiment_slug: str | None
    funnel_id: str
    variant_id: str
    variant_key: str | None
    steps: int
    updated_at: dt.datetime


class VisitorExport(msgspec.Struct, kw_only=True):
    """Every row the kernel holds about one visitor of a site, and each plugin's data.

    Attributes:
        format: Names this document's shape (``segmently.visitor-export/1``).
        counted_months: Months (``2026-11``) the visitor counted toward the
            organization's monthly visitor limit (capped plans only).
        plugins: Each plugin's answer to ``export_visitor``, by plugin name (plugins
            holding nothing are left out).
        plugins_failed: Plugins whose export failed, and why: the document lacks
            their data.
    """

    format: str = EXPORT_FORMAT
    site_id: str
    visitor_id: str
    exported_at: dt.datetime
    events: list[VisitorEvent]
    assignments: list[VisitorAssignment]
    conversions: list[VisitorConversion]
    funnel_progress: list[VisitorFunnel]
    counted_months: list[str]
    plugins: dict[str, Any]
    plugins_failed: dict[str, str]


class VisitorDeletion(msgspec.Struct, kw_only=True):
    """What a visitor's deletion removed.

    Attributes:
        deleted: Rows deleted per kernel table (committed together).
        plugins_purged: Plugins that deleted their data about the visitor.
        plugins_not_purged: Plugins that did not, and why; their data may remain.
    """

    site_id: str
    visitor_id: str
    deleted: dict[str, int]
    plugins_purged: list[str]
    plugins_not_purged: dict[str, str]


class VisitorSite(msgspec.Struct, frozen=True, kw_only=True):
    """The site a visitor belongs to and its organization, as the hooks see them."""

    site: SiteRef
    org: OrgRef


def visitor_site(site: Site, org: Organization) -> VisitorSite:
    """Hook views of a site and its organization."""
    return VisitorSite(
        site=SiteRef(id=site.id, organization_id=site.organization_id, name=site.name, url=site.url),
        org=org_ref(org),
    )


async def find_visitor_site(kernel: Kernel, site_id: str) -> VisitorSite | None:
    """The site with ``site_id`` in any organization (the operator's CLI), or None."""
    async with kernel.db.sessions() as session:
        row = (
            await session.execute(
                select(Site, Organization)
                .join(Organization, Organization.id == Site.organization_id)
                .where(Site.id == site_id)
            )
        ).first()
    return None if row is None else visitor_site(row[0], row[1])


async def export_visitor(kernel: Kernel, target: VisitorSite, visitor_id: str) -> VisitorExport:
    """Everything held about ``visitor_id`` on the site: the kernel's rows, then the plugins' data."""
    site_id = target.site.id
    async with kernel.db.engine.connect() as conn:
        if not kernel.db.is_sqlite:  # one snapshot for every table read below
            await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            events = await _events(conn, site_id, visitor_id)
            assignments = await _assignments(conn, site_id, visitor_id)
            conversions = await _conversions(conn, site_id, visitor_id)
            funnels = await _funnels(conn, site_id, visitor_id)
            months = list(
                (
                    await conn.execute(
                        select(MONTHLY.c.month)
                        .where(
                            MONTHLY.c.organization_id == target.site.organization_id,
                            MONTHLY.c.visitor_id == visitor_id,
                        )
                        .order_by(MONTHLY.c.month)
                    )
                ).scalars()
            )
    plugins = await kernel.plugins.export_visitor(target.site, visitor_id)
    return VisitorExport(
        site_id=site_id,
        visitor_id=visitor_id,
        exported_at=utcnow(),
        events=events,
        assignments=assignments,
        conversions=conversions,
        funnel_progress=funnels,
        counted_months=months,
        plugins=plugins.data,
        plugins_failed=plugins.failed,
    )


async def delete_visitor(kernel: Kernel, target: VisitorSite, visitor_id: str) -> VisitorDeletion:
    """Delete every kernel row about ``visitor_id`` in one transaction, then tell the plugins.

    The plugins hear of it only after the commit; one that fails (or cannot target one
    visitor) is logged and reported in ``plugins_not_purged``, never as purged.
    """
    site_id = target.site.id
    e, k = EVENTS, EVENT_KEYS
    deleted: dict[str, int] = {}
    async with kernel.db.engine.begin() as conn:
        client_ids = [
            i
            for i in (
                await conn.execute(
                    select(e.c.client_event_id).where(e.c.site_id == site_id, e.c.visitor_id == visitor_id)
                )
            ).scalars()
            if i is not None
        ]
        deleted["events"] = await _delete(
            conn, delete(e).where(e.c.site_id == site_id, e.c.visitor_id == visitor_id)
        )
        deleted["event_keys"] = 0
        for i in range(0, len(client_ids), KEY_CHUNK):
            chunk = client_ids[i : i + KEY_CHUNK]
            deleted["event_keys"] += await _delete(
                conn, delete(k).where(k.c.site_id == site_id, k.c.event_id.in_(chunk))
            )
        for name, table in (
            ("experiment_conversions", CONVERSIONS),
            ("funnel_progress", FUNNELS),
            ("experiment_visitors", VISITORS),
        ):
            deleted[name] = await _delete(
                conn, delete(table).where(table.c.site_id == site_id, table.c.visitor_id == visitor_id)
            )
        deleted["monthly_visitors"] = await _delete(
            conn,
            delete(MONTHLY).where(
                MONTHLY.c.organization_id == target.site.organization_id, MONTHLY.c.visitor_id == visitor_id
            ),
        )
    plugins = await kernel.plugins.purge_visitor(target.org, target.site, visitor_id)
    return VisitorDeletion(
        site_id=site_id,
        visitor_id=visitor_id,
        deleted=deleted,
        plugins_purged=plugins.purged,
        plugins_not_purged=plugins.not_purged,
    )


async def _delete(conn: AsyncConnection, stmt: Any) -> int:
    result = cast(CursorResult[Any], await conn.execute(stmt))
    return int(result.rowcount)


async def _events(conn: AsyncConnection, site_id: str, visitor_id: str) -> list[VisitorEvent]:
    e = EVENTS
    rows = await conn.execute(
        select(
            e.c.id,
            e.c.created_at,
            e.c.event_name,
            e.c.client_event_id,
            e.c.session_id,
            e.c.experiment_id,
            e.c.variant_id,
            e.c.url,
            e.c.device_type,
            e.c.event_data,
        )
        .where(e.c.site_id == site_id, e.c.visitor_id == visitor_id)
        .order_by(e.c.created_at, e.c.id)
    )
    return [VisitorEvent(**row._asdict()) for row in rows]


async def _assignments(conn: AsyncConnection, site_id: str, visitor_id: str) -> list[VisitorAssignment]:
    v = VISITORS
    rows = await conn.execute(
        select(
            v.c.experiment_id,
            Experiment.slug.label("experiment_slug"),
            v.c.variant_id,
            Variant.key.label("variant_key"),
            v.c.assigned_at,
            v.c.time_on_page_s,
            v.c.time_on_page_n,
            v.c.bounced,
        )
        .outerjoin(Experiment, Experiment.id == v.c.experiment_id)
        .outerjoin(Variant, Variant.id == v.c.variant_id)
        .where(v.c.site_id == site_id, v.c.visitor_id == visitor_id)
        .order_by(v.c.assigned_at, v.c.experiment_id)
    )
    return [VisitorAssignment(**row._asdict()) for row in rows]


async def _conversions(conn: AsyncConnection, site_id: str, visitor_id: str) -> list[VisitorConversion]:
    c = CONVERSIONS
    rows = await conn.execute(
        select(
            c.c.experiment_id,
            Experiment.slug.label("experiment_slug"),
            c.c.goal_id,
            c.c.variant_id,
            Variant.key.label("variant_key"),
            c.c.first_at,
            c.c.count,
            c.c.revenue,
        )
        .outerjoin(Experiment, Experiment.id == c.c.experiment_id)
        .outerjoin(Variant, Variant.id == c.c.variant_id)
        .where(c.c.site_id == site_id, c.c.visitor_id == visitor_id)
        .order_by(c.c.first_at, c.c.experiment_id, c.c.goal_id)
    )
    return [VisitorConversion(**row._asdict()) for row in rows]


async def _funnels(conn: AsyncConnection, site_id: str, visitor_id: str) -> list[VisitorFunnel]:
    f = FUNNELS
    rows = await conn.execute(
        select(
            f.c.experiment_id,
            Experiment.slug.label("experiment_slug"),
            f.c.funnel_id,
            f.c.variant_id,
            Variant.key.label("variant_key"),
            f.c.steps,
            f.c.updated_at,
        )
        .outerjoin(Experiment, Experiment.id == f.c.experiment_id)
        .outerjoin(Variant, Variant.id == f.c.variant_id)
        .where(f.c.site_id == site_id, f.c.visitor_id == visitor_id)
        .order_by(f.c.experiment_id, f.c.funnel_id)
    )
    return [VisitorFunnel(**row._asdict()) for row in rows]
