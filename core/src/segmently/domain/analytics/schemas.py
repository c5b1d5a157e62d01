"""Wire shapes of the results, export and overview endpoints (every field: docs/analytics.md).

Units: rates, confidences, lifts and chances are percentages (``5.2`` means 5.2 %);
p-values are probabilities in [0, 1]; money is in the site's currency as tracked.
A treatment's statistical fields compare it with control; control's own are ``null``.
"""

from __future__ import annotations

import datetime as dt

import msgspec


class VariantResult(msgspec.Struct, kw_only=True):
    """One variant's figures on the primary goal, and how it compares with control."""

    id: str
    key: str
    name: str
    control: bool
    weight: float
    visitors: int
    conversions: int
    conversion_rate: float
    revenue: float
    revenue_per_visitor: float
    average_order_value: float | None
    avg_time_on_page: float | None
    bounce_rate: float
    confidence: float | None = None
    p_value: float | None = None
    sequential_p_value: float | None = None
    sequential_p_adjusted: float | None = None
    lift: float | None = None
    lift_ci: list[float] | None = None
    chance_to_beat_control: float | None = None
    revenue_p_value: float | None = None


class SrmOut(msgspec.Struct, kw_only=True):
    """Sample-ratio-mismatch check of the visitor split against the configured weights."""

    p_value: float
    ok: bool
    statistic: float


class WinnerOut(msgspec.Struct, kw_only=True):
    """The variant the winner rule declares (sequential test, Holm, lift interval, SRM)."""

    variant_key: str
    variant_name: str
    confidence: float
    lift: float
    conversion_rate: float
    sequential_p_adjusted: float


class GoalVariant(msgspec.Struct, kw_only=True):
    """One variant's conversions on one goal."""

    key: str
    conversions: int
    conversion_rate: float
    revenue: float
    confidence: float | None = None
    lift: float | None = None


class GoalResult(msgspec.Struct, kw_only=True):
    """One goal of the experiment, per variant."""

    id: str
    name: str
    type: str
    primary: bool
    variants: list[GoalVariant]


class FunnelStepResult(msgspec.Struct, kw_only=True):
    """Visitors of a variant who reached a step (completed it and every earlier one, in order)."""

    label: str
    count: int
    rate: float
    drop_off: float


class FunnelVariant(msgspec.Struct, kw_only=True):
    """One variant's way through a funnel."""

    key: str
    visitors: int
    steps: list[FunnelStepResult]
    completion_rate: float


class FunnelResult(msgspec.Struct, kw_only=True):
    """One funnel, per variant."""

    id: str
    name: str
    steps: list[str]
    variants: list[FunnelVariant]


class TimelinePoint(msgspec.Struct, kw_only=True):
    """One variant on one day: new visitors and conversions, and the cumulative rate so far."""

    key: str
    visitors: int
    conversions: int
    cumulative_visitors: int
    cumulative_conversions: int
    cumulative_conversion_rate: float


class TimelineDay(msgspec.Struct, kw_only=True):
    """One UTC day of the experiment."""

    date: str
    variants: list[TimelinePoint]


class ResultsOut(msgspec.Struct, kw_only=True):
    """``GET /api/v1/experiments/{id}/results``."""

    experiment_id: str
    name: str
    slug: str
    status: str
    primary_goal_id: str
    activated_at: dt.datetime | None
    duration_days: int | None
    generated_at: dt.datetime
    variants: list[VariantResult]
    srm: SrmOut
    winner: WinnerOut | None
    message: str | None
    goals: list[GoalResult]
    funnels: list[FunnelResult]
    timeline: list[TimelineDay]


class OverviewSummary(msgspec.Struct, kw_only=True):
    """Experiment counts by status (``active`` is another name for ``live``)."""

    total: int
    live: int
    active: int
    paused: int
    archived: int
    draft: int


class OverviewRow(msgspec.Struct, kw_only=True):
    """One experiment in the cross-site overview."""

    id: str
    name: str
    slug: str
    site_id: str
    site_name: str
    status: str
    visitors: int
    conversions: int
    conversion_rate: float
    created_at: dt.datetime
    activated_at: dt.datetime | None


class OverviewOut(msgspec.Struct, kw_only=True):
    """``GET /api/v1/analytics/overview``."""

    range: str
    since: dt.datetime | None
    sort: str
    order: str
    summary: OverviewSummary
    experiments: list[OverviewRow]
