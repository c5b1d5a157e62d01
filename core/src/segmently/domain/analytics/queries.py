"""The aggregates results are built from: one ``GROUP BY`` scan of each per-visitor table.

Each function reads one experiment's rows of one table, grouped by variant (and goal,
day or funnel step), so a results request costs O(visitors in the experiment) and
never reads ``events``. Days are UTC calendar days, as ``YYYY-MM-DD`` strings.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final, cast

from sqlalchemy import Date, Table, case, func, literal_column, select, text
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from segmently.db.models import ExperimentConversion, ExperimentVisitor, FunnelProgress

VISITORS: Final = cast(Table, ExperimentVisitor.__table__)
CONVERSIONS: Final = cast(Table, ExperimentConversion.__table__)
FUNNELS: Final = cast(Table, FunnelProgress.__table__)


@dataclass(frozen=True, slots=True)
class VisitorDay:
    """Visitors of one variant assigned on one day, with their engagement."""

    variant_id: str
    day: str
    visitors: int
    time_on_page_s: float  # seconds of non-bounce time_on_page events
    time_on_page_n: int  # how many such events
    bounced: int  # visitors who bounced


@dataclass(frozen=True, slots=True)
class ConversionDay:
    """Visitors of one variant whose first conversion on one goal happened on one day."""

    variant_id: str
    goal_id: str
    day: str
    conversions: int  # converting visitors
    revenue: float  # Σ of each visitor's revenue on the goal
    revenue_sq: float  # Σ of its square (Welch's t-test on revenue per visitor)


@dataclass(frozen=True, slots=True)
class FunnelCount:
    """Visitors of one variant who completed exactly ``steps`` steps of one funnel, in order."""

    funnel_id: str
    variant_id: str
    steps: int
    visitors: int


def day_of(column: Any, dialect: str) -> ColumnElement[Any]:
    """The UTC calendar day of a timestamp column (a date on PostgreSQL, ``YYYY-MM-DD`` on SQLite)."""
    if dialect == "postgresql":
        # a literal zone, not a bound one: GROUP BY must repeat the select's expression exactly
        return sql_cast(func.timezone(literal_column("'UTC'"), column), Date)
    return func.date(column)  # SQLite stores UTC "YYYY-MM-DD HH:MM:SS.ffffff"


def day_text(value: dt.date | str) -> str:
    """A day from either backend as ``YYYY-MM-DD``."""
    return value if isinstance(value, str) else value.isoformat()


def dialect_of(session: AsyncSession) -> str:
    """The session's database dialect name (``postgresql`` or ``sqlite``)."""
    return session.get_bind().dialect.name


async def prepare(session: AsyncSession) -> None:
    """Per-transaction settings for the aggregates (PostgreSQL: no JIT).

    JIT compilation kicks in above ``jit_above_cost``, which a scan of a million visitors
    exceeds, and costs more (~50 ms) than it saves on these simple aggregates.
    """
    if dialect_of(session) == "postgresql":
        await session.execute(text("SET LOCAL jit = off"))


async def visitor_days(session: AsyncSession, experiment_id: str) -> list[VisitorDay]:
    """Visitors per variant per assignment day, with time-on-page sums and bounces."""
    ev = VISITORS
    day = day_of(ev.c.assigned_at, dialect_of(session)).label("day")
    rows = await session.execute(
        select(
            ev.c.variant_id,
            day,
            func.count(),
            func.coalesce(func.sum(ev.c.time_on_page_s), 0.0),
            func.coalesce(func.sum(ev.c.time_on_page_n), 0),
            func.coalesce(func.sum(case((ev.c.bounced, 1), else_=0)), 0),
        )
        .where(ev.c.experiment_id == experiment_id)
        .group_by(ev.c.variant_id, day)
    )
    return [
        VisitorDay(variant_id, day_text(d), int(n), float(s), int(k), int(b))
        for variant_id, d, n, s, k, b in rows
    ]


async def conversion_days(session: AsyncSession, experiment_id: str) -> list[ConversionDay]:
    """Converting visitors and revenue per variant, goal and day of first conversion."""
    ec = CONVERSIONS
    day = day_of(ec.c.first_at, dialect_of(session)).label("day")
    rows = await session.execute(
        select(
            ec.c.variant_id,
            ec.c.goal_id,
            day,
            func.count(),
            func.coalesce(func.sum(ec.c.revenue), 0.0),
            func.coalesce(func.sum(ec.c.revenue * ec.c.revenue), 0.0),
        )
        .where(ec.c.experiment_id == experiment_id)
        .group_by(ec.c.variant_id, ec.c.goal_id, day)
    )
    return [
        ConversionDay(variant_id, goal_id, day_text(d), int(n), float(r), float(r2))
        for variant_id, goal_id, d, n, r, r2 in rows
    ]


async def funnel_counts(session: AsyncSession, experiment_id: str) -> list[FunnelCount]:
    """Visitors per funnel, variant and number of steps completed."""
    fp = FUNNELS
    rows = await session.execute(
        select(fp.c.funnel_id, fp.c.variant_id, fp.c.steps, func.count())
        .where(fp.c.experiment_id == experiment_id)
        .group_by(fp.c.funnel_id, fp.c.variant_id, fp.c.steps)
    )
    return [FunnelCount(f, v, int(s), int(n)) for f, v, s, n in rows]
