"""The retention purge: event data older than each organization's plan window goes.

Run daily by the scheduler and on demand by ``segmently purge``; safe to run twice
or to interrupt (each batch commits on its own). What goes, per organization, with
``before = now - retention_days`` of its plan (asked through ``get_plan``):

- ``events`` that happened before ``before``;
- ``event_keys`` (the client event ids that dedupe retries) stored before ``before``
  or 30 days ago, whichever is earlier: ingestion accepts events up to 30 days old, so
  a younger key still stops a late retry from being stored (and attributed) twice;
- ``monthly_visitors`` rows of past months: only the current month counts toward
  the visitor limit;
- the plugins' data, through ``on_purge(org, before)``.

Once per run, for the whole install: stored ``Idempotency-Key`` answers older than
:data:`IDEMPOTENCY_KEPT` and delivered ``outbox_events`` older than :data:`OUTBOX_KEPT`
(bookkeeping, not event data: without this both tables only ever grow).

On PostgreSQL, whole monthly partitions of ``events`` older than the longest window
of any plan are dropped first, which costs nothing per row; the rest is deleted row
by row in batches, each in its own transaction, so a large site never holds one
giant transaction.

Kept on purpose: ``experiment_visitors``, ``experiment_conversions`` and
``funnel_progress``. The plan's limit is about event data ("days event data is
kept"); these are one row per visitor per experiment, the sufficient statistics
every result is computed from, and deleting them would change (or empty) the
results of any experiment running longer than the window — three days on Free.
They go with their experiment or site, or with a visitor's deletion
(:mod:`segmently.domain.events.visitors`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, Final, cast

import msgspec
from sqlalchemy import CursorResult, Delete, Table, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from segmently.db.models import IdempotentRequest, MonthlyVisitor, Organization, Site
from segmently.db.models.outbox import OutboxEvent
from segmently.domain.events.ingest import MAX_AGE
from segmently.domain.events.purge import (
    delete_event_keys_before,
    delete_events_before,
    drop_partitions_before,
)
from segmently.hookspecs import PlanName
from segmently.kernel import Kernel
from segmently.plugins import HookFailure
from segmently.tiers.guards import org_ref

log = logging.getLogger(__name__)

RETENTION_BATCH: Final = 5_000
"""Rows deleted per transaction."""
IDEMPOTENCY_KEPT: Final = dt.timedelta(hours=24)
"""How long a create's stored answer is replayed for its ``Idempotency-Key`` (as Stripe does)."""
OUTBOX_KEPT: Final = dt.timedelta(days=30)
"""How long a delivered ``outbox_events`` row stays, for looking back at what was sent."""

MONTHLY: Final = cast(Table, MonthlyVisitor.__table__)

Progress = Callable[[int, int], None]
"""Called with (organizations done, organizations in all) after each organization."""


class OrganizationPurge(msgspec.Struct, kw_only=True):
    """What the purge deleted for one organization.

    Attributes:
        before: Event data older than this went (now minus the plan's retention days).
        keys_before: Client event ids stored before this went (``before``, or 30 days
            ago when that is earlier).
        plugins_failed: Plugins whose ``on_purge`` raised, and why; they are asked
            again on the next run.
    """

    organization_id: str
    plan: PlanName
    retention_days: int
    before: dt.datetime
    keys_before: dt.datetime
    events: int = 0
    event_keys: int = 0
    monthly_visitors: int = 0
    plugins_failed: dict[str, str] = {}


class PurgeReport(msgspec.Struct, kw_only=True):
    """What one run of the retention purge did.

    Attributes:
        now: The instant the windows were measured from.
        partitions_dropped: Monthly partitions of ``events`` dropped whole (PostgreSQL).
        organizations: One entry per organization.
        idempotent_requests: Stored ``Idempotency-Key`` answers deleted (older than
            :data:`IDEMPOTENCY_KEPT`).
        outbox_events: Delivered outbox rows deleted (delivered before :data:`OUTBOX_KEPT`).
    """

    now: dt.datetime
    partitions_dropped: list[str]
    organizations: list[OrganizationPurge]
    idempotent_requests: int = 0
    outbox_events: int = 0

    def total(self, table: str) -> int:
        """Rows deleted row-wise from ``table`` (``events``, ``event_keys``, ``monthly_visitors``)."""
        return sum(int(getattr(o, table)) for o in self.organizations)

    @property
    def plugins_failed(self) -> dict[str, list[str]]:
        """Organization ids by plugin, for every plugin whose ``on_purge`` raised."""
        out: dict[str, list[str]] = {}
        for o in self.organizations:
            for plugin in o.plugins_failed:
                out.setdefault(plugin, []).append(o.organization_id)
        return out


async def purge_expired(
    kernel: Kernel,
    now: dt.datetime,
    *,
    batch_size: int = RETENTION_BATCH,
    progress: Progress | None = None,
) -> PurgeReport:
    """Delete the event data every organization's plan no longer keeps (see the module docstring).

    Args:
        kernel: The app's kernel (database, plugins, plans).
        now: When the windows end (UTC); the scheduler passes the current time.
        batch_size: Rows per delete transaction.
        progress: Told after each organization.

    Returns:
        What was deleted, per organization.
    """
    now = now.astimezone(dt.UTC)  # months of monthly_visitors are UTC months
    longest = max(plan.limits.retention_days for plan in kernel.plans.plans())
    dropped = await drop_partitions_before(kernel.db, now - dt.timedelta(days=longest))
    async with kernel.db.sessions() as session:
        orgs = list((await session.scalars(select(Organization).order_by(Organization.id))).all())
    report = PurgeReport(now=now, partitions_dropped=dropped, organizations=[])
    async with kernel.db.engine.begin() as conn:
        report.idempotent_requests = await _deleted(
            conn, delete(IdempotentRequest).where(IdempotentRequest.created_at < now - IDEMPOTENCY_KEPT)
        )
        report.outbox_events = await _deleted(
            conn, delete(OutboxEvent).where(OutboxEvent.dispatched_at < now - OUTBOX_KEPT)
        )
    for done, org in enumerate(orgs, start=1):
        report.organizations.append(await _purge_organization(kernel, org, now, batch_size))
        if progress is not None:
            progress(done, len(orgs))
    return report


async def _deleted(conn: AsyncConnection, statement: Delete) -> int:
    return int(cast(CursorResult[Any], await conn.execute(statement)).rowcount)


async def _purge_organization(
    kernel: Kernel, org: Organization, now: dt.datetime, batch_size: int
) -> OrganizationPurge:
    ref = org_ref(org)
    plan = await kernel.plugins.plan(ref)
    days = kernel.plans.plan(plan).limits.retention_days
    before = now - dt.timedelta(days=days)
    out = OrganizationPurge(
        organization_id=org.id,
        plan=plan,
        retention_days=days,
        before=before,
        keys_before=min(before, now - MAX_AGE),
    )
    async with kernel.db.sessions() as session:
        site_ids = list((await session.scalars(select(Site.id).where(Site.organization_id == org.id))).all())
    for site_id in site_ids:
        out.events += await delete_events_before(kernel.db, site_id, out.before, batch_size)
        out.event_keys += await delete_event_keys_before(kernel.db, site_id, out.keys_before, batch_size)
    async with kernel.db.engine.begin() as conn:
        out.monthly_visitors = await _deleted(
            conn,
            delete(MONTHLY).where(
                MONTHLY.c.organization_id == org.id, MONTHLY.c.month < now.strftime("%Y-%m")
            ),
        )
    try:
        await kernel.plugins.purge(ref, out.before)
    except HookFailure as exc:
        log.error("%s", exc, extra={"organization_id": org.id})
        out.plugins_failed = {name: f"failed ({type(e).__name__})" for name, e in exc.failures}
    return out
