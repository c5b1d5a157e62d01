"""An experiment's results: per-variant figures, the statistics, the winner and the breakdowns.

Three grouped scans (:mod:`segmently.domain.analytics.queries`) give every figure, so a
request costs O(visitors in the experiment). The readout (``confidence``, ``p_value``)
is the spec's pooled z-test; the winner comes from :func:`segmently.stats.decide`
(running-minimum sequential p-value, Holm, lift interval, SRM), whose new minima are
stored in ``variants.sequential_p_min`` only when they are lower than the stored ones.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, cast

from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from segmently.db.base import utcnow
from segmently.db.models import Experiment, Variant
from segmently.domain.accounts.auth import Actor
from segmently.domain.analytics import queries, schemas
from segmently.domain.analytics.breakdowns import (
    Arm,
    funnel_breakdown,
    goal_breakdown,
    percent,
    timeline,
)
from segmently.domain.events.ingest import running_experiment
from segmently.domain.experiments import services as experiments
from segmently.stats import (
    NO_WINNER_MESSAGE,
    ArmCounts,
    Decision,
    chance_to_beat_control,
    decide,
    pooled_z_test,
    welch_t_test_from_sums,
)

VARIANTS: Final = cast(Table, Variant.__table__)

ZERO_WEIGHT: Final = 1e-9
"""Stands in for a weight of 0 in the SRM check (any visitor in such a variant is a mismatch)."""

RUNNING: Final = ("live", "paused")


@dataclass(frozen=True, slots=True)
class VariantRow:
    """What the results read of a variant."""

    id: str
    key: str
    name: str
    weight: float
    sequential_p_min: float | None


@dataclass(slots=True)
class Totals:
    """One variant's sums over its visitors (and its primary-goal conversions)."""

    visitors: int = 0
    time_s: float = 0.0
    time_n: int = 0
    bounced: int = 0
    conversions: int = 0
    revenue: float = 0.0
    revenue_sq: float = 0.0


@dataclass(frozen=True, slots=True)
class Results:
    """The response and the running minima to store (variant id → new minimum)."""

    out: schemas.ResultsOut
    new_minima: dict[str, float]


async def variant_rows(session: AsyncSession, experiment_id: str) -> list[VariantRow]:
    """The experiment's variants in order, control first."""
    v = VARIANTS
    rows = await session.execute(
        select(v.c.id, v.c.key, v.c.name, v.c.weight, v.c.sequential_p_min)
        .where(v.c.experiment_id == experiment_id)
        .order_by(v.c.position)
    )
    return [VariantRow(*row) for row in rows]


async def experiment_results(session: AsyncSession, actor: Actor, experiment_id: str) -> schemas.ResultsOut:
    """The results of one of the caller's organization's experiments (404 for any other)."""
    return await results_of(session, await experiments.get(session, actor, experiment_id))


async def results_of(session: AsyncSession, experiment: Experiment) -> schemas.ResultsOut:
    """The results of an experiment already scoped to its organization by the caller.

    This is a look for the decision rule: a treatment's lower running minimum of the
    sequential p-value is stored (``UPDATE … WHERE new < old OR old IS NULL``, so
    concurrent looks never raise it).
    """
    variants = await variant_rows(session, experiment.id)
    await queries.prepare(session)
    has_funnels = bool((experiment.goals or {}).get("funnels"))
    results = build(
        experiment,
        variants,
        await queries.visitor_days(session, experiment.id),
        await queries.conversion_days(session, experiment.id),
        await queries.funnel_counts(session, experiment.id) if has_funnels else [],
        utcnow(),
    )
    await store_minima(session, results.new_minima)
    return results.out


async def store_minima(session: AsyncSession, minima: dict[str, float]) -> None:
    """Lower each variant's stored running minimum to ``minima[id]`` (never raise it)."""
    if not minima:
        return
    v = VARIANTS
    await session.execute(
        update(v)
        .where(
            v.c.id == bindparam("vid"),
            or_(v.c.sequential_p_min.is_(None), v.c.sequential_p_min > bindparam("p")),
        )
        .values(sequential_p_min=bindparam("p")),
        [{"vid": vid, "p": p} for vid, p in minima.items()],
    )


def _totals(
    variants: Sequence[VariantRow],
    visitor_days: Sequence[queries.VisitorDay],
    conversion_days: Sequence[queries.ConversionDay],
    primary_goal: str,
) -> tuple[dict[str, Totals], dict[tuple[str, str], tuple[int, float, float]]]:
    totals = {v.id: Totals() for v in variants}
    for d in visitor_days:
        t = totals.get(d.variant_id)
        if t is not None:
            t.visitors += d.visitors
            t.time_s += d.time_on_page_s
            t.time_n += d.time_on_page_n
            t.bounced += d.bounced
    by_goal: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for c in conversion_days:
        acc = by_goal[(c.variant_id, c.goal_id)]
        acc[0] += c.conversions
        acc[1] += c.revenue
        acc[2] += c.revenue_sq
    goals = {key: (int(n), r, r2) for key, (n, r, r2) in by_goal.items()}
    for vid, t in totals.items():
        t.conversions, t.revenue, t.revenue_sq = goals.get((vid, primary_goal), (0, 0.0, 0.0))
    return totals, goals


class ArmLike(Protocol):
    """What the decision reads of a variant (a stored ``Variant`` or a :class:`VariantRow`)."""

    @property
    def id(self) -> str:
        """The variant id counts are keyed by."""

    @property
    def key(self) -> str:
        """The variant key decisions name."""

    @property
    def weight(self) -> float:
        """The configured traffic weight (for the SRM check)."""

    @property
    def sequential_p_min(self) -> float | None:
        """The stored running minimum of the sequential p-value."""


def decide_on(
    variants: Sequence[ArmLike], counts: Mapping[str, tuple[int, int]], tuning: float
) -> Decision | None:
    """The decision rule on (visitors, primary-goal conversions) per variant id, control first.

    The results page and the scheduler's winner detection both decide through here.
    """
    if len(variants) < 2:
        return None
    arms = []
    for v in variants:
        visitors, conversions = counts.get(v.id, (0, 0))
        # conversions are credited to assigned visitors only; the clamp guards the stats against odd data
        arms.append(ArmCounts(v.key, visitors, min(conversions, visitors), v.sequential_p_min))
    weights = [v.weight if v.weight > 0 else ZERO_WEIGHT for v in variants]
    return decide(arms[0], arms[1:], weights, tuning=tuning)


def _decision(variants: Sequence[VariantRow], totals: dict[str, Totals], tuning: float) -> Decision | None:
    return decide_on(
        variants, {v.id: (totals[v.id].visitors, totals[v.id].conversions) for v in variants}, tuning
    )


def _variant_result(
    v: VariantRow, t: Totals, control: Totals | None, decision: Decision | None, index: int
) -> schemas.VariantResult:
    out = schemas.VariantResult(
        id=v.id,
        key=v.key,
        name=v.name,
        control=control is None,
        weight=v.weight,
        visitors=t.visitors,
        conversions=t.conversions,
        conversion_rate=percent(t.conversions, t.visitors),
        revenue=t.revenue,
        revenue_per_visitor=t.revenue / t.visitors if t.visitors else 0.0,
        average_order_value=t.revenue / t.conversions if t.conversions else None,
        avg_time_on_page=t.time_s / t.time_n if t.time_n else None,
        bounce_rate=percent(t.bounced, t.visitors),
    )
    if control is None:
        return out
    conv_c, conv_t = min(control.conversions, control.visitors), min(t.conversions, t.visitors)
    z = pooled_z_test(control.visitors, conv_c, t.visitors, conv_t)
    out.confidence, out.p_value = z.confidence, z.p_value
    out.chance_to_beat_control = 100.0 * chance_to_beat_control(control.visitors, conv_c, t.visitors, conv_t)
    if decision is not None:
        arm = decision.arms[index - 1]
        out.sequential_p_value, out.sequential_p_adjusted = arm.min_p, arm.adjusted_p
        if arm.lift is not None:
            out.lift = arm.lift.lift * 100.0
            out.lift_ci = [arm.lift.lo * 100.0, arm.lift.hi * 100.0]
    if control.visitors >= 2 and t.visitors >= 2:
        out.revenue_p_value = welch_t_test_from_sums(
            control.revenue, control.revenue_sq, control.visitors, t.revenue, t.revenue_sq, t.visitors
        ).p_value
    return out


def _timeline_bounds(experiment: Experiment, now: dt.datetime) -> list[dt.date]:
    if experiment.activated_at is None:
        return []
    bounds = [experiment.activated_at.astimezone(dt.UTC).date()]
    if experiment.status in RUNNING:
        bounds.append(now.astimezone(dt.UTC).date())
    return bounds


def build(
    experiment: Experiment,
    variants: Sequence[VariantRow],
    visitor_days: Sequence[queries.VisitorDay],
    conversion_days: Sequence[queries.ConversionDay],
    funnel_counts: Sequence[queries.FunnelCount],
    now: dt.datetime,
) -> Results:
    """Assemble the results from the aggregates (pure: no database access)."""
    goals_doc: dict[str, Any] = experiment.goals or {}
    running = running_experiment(experiment.id, goals_doc, with_funnels=False)
    primary = running.primary_goal
    totals, by_goal = _totals(variants, visitor_days, conversion_days, primary)
    decision = _decision(variants, totals, experiment.sequential_tuning)
    control = totals[variants[0].id] if variants else None
    rows = [
        _variant_result(v, totals[v.id], None if i == 0 else control, decision, i)
        for i, v in enumerate(variants)
    ]
    winner = None
    if decision is not None and decision.winner is not None:
        row = next(r for r in rows if r.key == decision.winner)
        arm = next(a for a in decision.arms if a.key == decision.winner)
        winner = schemas.WinnerOut(
            variant_key=row.key,
            variant_name=row.name,
            confidence=row.confidence or 0.0,
            lift=row.lift if row.lift is not None else 0.0,
            conversion_rate=row.conversion_rate,
            sequential_p_adjusted=arm.adjusted_p,
        )
    srm = (
        schemas.SrmOut(p_value=decision.srm.p_value, ok=decision.srm.ok, statistic=decision.srm.statistic)
        if decision is not None
        else schemas.SrmOut(p_value=1.0, ok=True, statistic=0.0)
    )
    arms = [Arm(v.id, v.key, totals[v.id].visitors) for v in variants]
    minima = {
        v.id: a.min_p
        for v, a in zip(variants[1:], decision.arms if decision else (), strict=False)
        if v.sequential_p_min is None or a.min_p < v.sequential_p_min
    }
    out = schemas.ResultsOut(
        experiment_id=experiment.id,
        name=experiment.name,
        slug=experiment.slug,
        status=experiment.status,
        primary_goal_id=primary,
        activated_at=experiment.activated_at,
        duration_days=(now - experiment.activated_at).days if experiment.activated_at else None,
        generated_at=now,
        variants=rows,
        srm=srm,
        winner=winner,
        message=None if winner else (decision.message if decision else None) or NO_WINNER_MESSAGE,
        goals=goal_breakdown(running.goals, primary, arms, by_goal),
        funnels=funnel_breakdown(goals_doc.get("funnels", []), arms, funnel_counts),
        timeline=timeline(arms, visitor_days, conversion_days, primary, _timeline_bounds(experiment, now)),
    )
    return Results(out=out, new_minima=minima)
