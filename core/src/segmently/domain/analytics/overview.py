"""The organization's cross-site overview: every experiment with its visitors and conversions.

Three queries whatever the number of experiments: the experiments with their site
names, visitors grouped by experiment, and converting visitors grouped by experiment
and goal (the primary goal is picked per experiment with the ingestion's rule).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final, Literal

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from segmently.db.base import utcnow
from segmently.db.models import Experiment, Site
from segmently.domain.accounts.auth import Actor
from segmently.domain.analytics import schemas
from segmently.domain.analytics.breakdowns import percent
from segmently.domain.analytics.queries import CONVERSIONS, VISITORS
from segmently.domain.events.ingest import running_experiment
from segmently.domain.sites.services import get_site

Range = Literal["7d", "30d", "90d", "all"]
Status = Literal["live", "active", "paused", "archived", "draft"]
Sort = Literal["date", "visitors", "conversions", "rate"]
Order = Literal["asc", "desc"]

RANGE_DAYS: Final[dict[str, int]] = {"7d": 7, "30d": 30, "90d": 90}


def _org_experiments(actor: Actor, site_id: str | None) -> Select[Any]:
    stmt = select(Experiment.id).where(Experiment.organization_id == actor.organization_id)
    return stmt.where(Experiment.site_id == site_id) if site_id else stmt


async def overview(
    session: AsyncSession,
    actor: Actor,
    *,
    site_id: str | None = None,
    status: Status | None = None,
    time_range: Range = "all",
    sort: Sort = "date",
    order: Order = "desc",
) -> schemas.OverviewOut:
    """Experiments of the caller's organization with their figures, filtered and sorted.

    With a range other than ``all``, visitors are those assigned in the window and
    conversions those of these visitors on the primary goal; an experiment is listed when
    it was created in the window, is live, or had visitors assigned in it. The summary
    counts the listed experiments before the status filter.

    Raises:
        NotFoundException: ``site_id`` is not a site of the organization.
    """
    if site_id:
        await get_site(session, actor, site_id)
    since = utcnow() - dt.timedelta(days=RANGE_DAYS[time_range]) if time_range in RANGE_DAYS else None
    stmt = (
        select(
            Experiment.id,
            Experiment.name,
            Experiment.slug,
            Experiment.site_id,
            Site.name,
            Experiment.status,
            Experiment.goals,
            Experiment.created_at,
            Experiment.activated_at,
        )
        .join(Site, Site.id == Experiment.site_id)
        .where(Experiment.organization_id == actor.organization_id)
    )
    if site_id:
        stmt = stmt.where(Experiment.site_id == site_id)
    experiments = (await session.execute(stmt)).all()
    scope = _org_experiments(actor, site_id)

    ev, ec = VISITORS, CONVERSIONS
    visitors_stmt = (
        select(ev.c.experiment_id, func.count())
        .where(ev.c.experiment_id.in_(scope))
        .group_by(ev.c.experiment_id)
    )
    conversions_stmt = (
        select(ec.c.experiment_id, ec.c.goal_id, func.count())
        .where(ec.c.experiment_id.in_(scope))
        .group_by(ec.c.experiment_id, ec.c.goal_id)
    )
    if since is not None:
        visitors_stmt = visitors_stmt.where(ev.c.assigned_at >= since)
        # the cohort: conversions of the visitors assigned in the window
        conversions_stmt = conversions_stmt.join(
            ev, (ev.c.experiment_id == ec.c.experiment_id) & (ev.c.visitor_id == ec.c.visitor_id)
        ).where(ev.c.assigned_at >= since)
    visitors = {e: int(n) for e, n in await session.execute(visitors_stmt)}
    conversions = {(e, g): int(n) for e, g, n in await session.execute(conversions_stmt)}

    rows: list[schemas.OverviewRow] = []
    for eid, name, slug, sid, site_name, st, goals, created_at, activated_at in experiments:
        n = visitors.get(eid, 0)
        if since is not None and created_at < since and st != "live" and n == 0:
            continue
        primary = running_experiment(eid, goals or {}, with_funnels=False).primary_goal
        c = conversions.get((eid, primary), 0)
        rows.append(
            schemas.OverviewRow(
                id=eid,
                name=name,
                slug=slug,
                site_id=sid,
                site_name=site_name,
                status=st,
                visitors=n,
                conversions=c,
                conversion_rate=percent(c, n),
                created_at=created_at,
                activated_at=activated_at,
            )
        )
    count = {s: sum(r.status == s for r in rows) for s in ("live", "paused", "archived", "draft")}
    summary = schemas.OverviewSummary(total=len(rows), active=count["live"], **count)
    wanted = "live" if status == "active" else status
    listed = [r for r in rows if wanted is None or r.status == wanted]
    key = {
        "date": lambda r: (r.created_at, r.id),
        "visitors": lambda r: (r.visitors, r.created_at, r.id),
        "conversions": lambda r: (r.conversions, r.created_at, r.id),
        "rate": lambda r: (r.conversion_rate, r.created_at, r.id),
    }[sort]
    listed.sort(key=key, reverse=order == "desc")
    return schemas.OverviewOut(
        range=time_range, since=since, sort=sort, order=order, summary=summary, experiments=listed
    )
