"""Per-goal, per-funnel and per-day breakdowns of the results, from the grouped aggregates."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from segmently.domain.analytics import schemas
from segmently.domain.analytics.queries import ConversionDay, FunnelCount, VisitorDay
from segmently.stats import pooled_z_test


@dataclass(frozen=True, slots=True)
class Arm:
    """A variant as the breakdowns need it: id, key, and its visitors."""

    id: str
    key: str
    visitors: int


def percent(part: float, whole: float) -> float:
    """``part / whole`` in percent; 0 when ``whole`` is 0."""
    return part / whole * 100.0 if whole else 0.0


def relative_lift(control_rate: float, rate: float) -> float | None:
    """Relative lift in percent (``+30.0`` means 30 % better); ``None`` when control's rate is 0."""
    return (rate / control_rate - 1.0) * 100.0 if control_rate else None


def goal_breakdown(
    goals: Sequence[dict[str, Any]],
    primary_goal: str,
    arms: Sequence[Arm],
    conversions: dict[tuple[str, str], tuple[int, float, float]],
) -> list[schemas.GoalResult]:
    """Every goal, per variant: converting visitors, rate, revenue, z-test confidence and lift vs control.

    Args:
        goals: The experiment's goals (``id``, ``name``, ``type``); may be empty.
        primary_goal: Id of the primary goal (the synthetic ``conversion`` when there is no goal).
        arms: The variants, control first.
        conversions: ``(variant_id, goal_id)`` → (converting visitors, revenue, Σ revenue²).
    """
    listed = list(goals) or [{"id": primary_goal, "name": "Conversion", "type": "conversion"}]
    out = []
    control = arms[0] if arms else None
    for goal in listed:
        gid = str(goal["id"])
        rows = []
        base = conversions.get((control.id, gid), (0, 0.0, 0.0))[0] if control else 0
        for arm in arms:
            n, revenue, _ = conversions.get((arm.id, gid), (0, 0.0, 0.0))
            row = schemas.GoalVariant(
                key=arm.key, conversions=n, conversion_rate=percent(n, arm.visitors), revenue=revenue
            )
            if control is not None and arm is not control:
                row.confidence = pooled_z_test(
                    control.visitors, min(base, control.visitors), arm.visitors, min(n, arm.visitors)
                ).confidence
                row.lift = relative_lift(percent(base, control.visitors), row.conversion_rate)
            rows.append(row)
        out.append(
            schemas.GoalResult(
                id=gid,
                name=str(goal.get("name") or gid),
                type=str(goal.get("type") or "custom_event"),
                primary=gid == primary_goal,
                variants=rows,
            )
        )
    return out


def funnel_breakdown(
    funnels: Sequence[dict[str, Any]], arms: Sequence[Arm], counts: Sequence[FunnelCount]
) -> list[schemas.FunnelResult]:
    """Each funnel per variant: visitors reaching each step (all earlier steps done, in order).

    A variant's funnel starts with all its visitors; step ``k`` counts the visitors whose
    progress is at least ``k``. ``rate`` is relative to the variant's visitors, ``drop_off``
    the share lost since the previous step (since entry for the first step).
    """
    done: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
    for c in counts:
        done[(c.funnel_id, c.variant_id)][c.steps] = c.visitors
    out = []
    for funnel in funnels:
        fid = str(funnel.get("id") or "")
        if not fid:
            continue
        labels = [str(s.get("label") or f"Step {i + 1}") for i, s in enumerate(funnel.get("steps", []))]
        per_variant = []
        for arm in arms:
            progress = done.get((fid, arm.id), {})
            steps = []
            previous = arm.visitors
            for k, label in enumerate(labels, start=1):
                reached = sum(n for s, n in progress.items() if s >= k)
                lost = percent(previous - reached, previous) if previous else 0.0
                steps.append(
                    schemas.FunnelStepResult(
                        label=label, count=reached, rate=percent(reached, arm.visitors), drop_off=lost
                    )
                )
                previous = reached
            per_variant.append(
                schemas.FunnelVariant(
                    key=arm.key,
                    visitors=arm.visitors,
                    steps=steps,
                    completion_rate=steps[-1].rate if steps else 0.0,
                )
            )
        out.append(
            schemas.FunnelResult(
                id=fid, name=str(funnel.get("name") or fid), steps=labels, variants=per_variant
            )
        )
    return out


def timeline(
    arms: Sequence[Arm],
    visitor_days: Sequence[VisitorDay],
    conversion_days: Sequence[ConversionDay],
    primary_goal: str,
    bounds: Sequence[dt.date],
) -> list[schemas.TimelineDay]:
    """One entry per UTC day from the first to the last day with data (or ``bounds``), gaps filled.

    Per variant and day: visitors assigned that day, visitors whose first primary-goal
    conversion happened that day, and the cumulative conversion rate up to that day.
    """
    ids = {arm.id for arm in arms}
    new_visitors: dict[tuple[str, str], int] = defaultdict(int)
    new_conversions: dict[tuple[str, str], int] = defaultdict(int)
    days: set[dt.date] = set(bounds)
    for v in visitor_days:
        if v.variant_id in ids:
            new_visitors[(v.day, v.variant_id)] += v.visitors
            days.add(dt.date.fromisoformat(v.day))
    for c in conversion_days:
        if c.variant_id in ids and c.goal_id == primary_goal:
            new_conversions[(c.day, c.variant_id)] += c.conversions
            days.add(dt.date.fromisoformat(c.day))
    if not days or not arms:
        return []
    first, last = min(days), max(days)
    cumulative = {arm.id: [0, 0] for arm in arms}
    out = []
    for offset in range((last - first).days + 1):
        day = (first + dt.timedelta(days=offset)).isoformat()
        points = []
        for arm in arms:
            visitors, converted = new_visitors[(day, arm.id)], new_conversions[(day, arm.id)]
            acc = cumulative[arm.id]
            acc[0] += visitors
            acc[1] += converted
            points.append(
                schemas.TimelinePoint(
                    key=arm.key,
                    visitors=visitors,
                    conversions=converted,
                    cumulative_visitors=acc[0],
                    cumulative_conversions=acc[1],
                    cumulative_conversion_rate=percent(acc[1], acc[0]),
                )
            )
        out.append(schemas.TimelineDay(date=day, variants=points))
    return out
