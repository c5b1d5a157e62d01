"""The kernel's scheduled jobs: experiment schedule, winner detection, duration alerts, retention.

Each takes the kernel's clock as "now" and is idempotent. Exactly-once effects
(one winner alert and one ``significance.reached`` per experiment) do not rest on
the job lock alone: the alert row is written in the same transaction as a
conditional ``UPDATE … SET winner_alert_sent = true WHERE winner_alert_sent = false``,
so two writers (two nodes, or the CLI beside a running server) can never both alert.
The alert mails (one per opted-in active member) are queued in that same transaction
(:mod:`segmently.domain.alerts.mails`) and sent by the outbox dispatcher after the commit.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from segmently.db.base import new_id
from segmently.db.models import (
    Alert,
    Experiment,
    ExperimentConversion,
    ExperimentVisitor,
    Organization,
    Variant,
)
from segmently.domain.alerts.mails import queue_alert_mails
from segmently.domain.analytics.results import decide_on, store_minima
from segmently.domain.events.ingest import primary_goal_id
from segmently.domain.events.partitions import ensure_partitions
from segmently.domain.events.retention import purge_expired
from segmently.domain.experiments.services import transition
from segmently.hookspecs import JobSpec
from segmently.kernel import Kernel
from segmently.outbox import emit
from segmently.stats import Decision, pooled_z_test
from segmently.tiers.guards import org_ref
from segmently.tiers.plans import ANALYTICS_WINNER_ALERTS

log = logging.getLogger(__name__)

RETENTION_CRON: Final = "17 3 * * *"
"""Daily, at 03:17 UTC (off the hour, when other cron jobs crowd)."""
PARTITIONS_CRON: Final = "7 2 * * *"
"""Daily: the months ahead of ``events`` exist long before their first event (PostgreSQL)."""
MIN_VISITORS_FOR_ALERT: Final = 30
"""The spec's floor: no winner alert before every variant has 30 visitors."""


# --------------------------------------------------------- experiment_schedule ---


async def run_experiment_schedule(kernel: Kernel) -> int:
    """Start drafts whose start date has come and pause live experiments whose end date has passed.

    Returns:
        How many experiments changed state.
    """
    now = kernel.clock()
    changed = 0
    async with kernel.db.session() as session:
        due = (
            await session.scalars(
                select(Experiment).where(
                    ((Experiment.status == "draft") & (Experiment.start_at <= now))
                    | ((Experiment.status == "live") & (Experiment.end_at <= now))
                )
            )
        ).all()
        for exp in due:
            action = "start" if exp.status == "draft" else "pause"
            if action == "start" and exp.end_at is not None and exp.end_at <= now:
                continue  # its window passed while it waited: never start it
            try:
                async with session.begin_nested():
                    await transition(session, kernel, None, exp, action, None)
            except Exception:
                log.exception(
                    "scheduled %s of experiment %s failed",
                    action,
                    exp.id,
                    extra={"job": "experiment_schedule"},
                )
                continue
            changed += 1
    return changed


# ------------------------------------------------------------ winner_detection ---


@dataclass(frozen=True, slots=True)
class Look:
    """One experiment's decision at this look."""

    experiment: Experiment
    variants: list[Variant]
    decision: Decision
    counts: dict[str, tuple[int, int]]  # variant id → (visitors, conversions on the primary goal)


async def arm_counts(
    session: AsyncSession, experiments: Sequence[Experiment]
) -> dict[str, dict[str, tuple[int, int]]]:
    """Visitors and primary-goal converters per variant of each experiment, in two aggregate queries."""
    ids = [e.id for e in experiments]
    out: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    ev, ec = ExperimentVisitor, ExperimentConversion
    for exp_id, variant_id, n in await session.execute(
        select(ev.experiment_id, ev.variant_id, func.count())
        .where(ev.experiment_id.in_(ids))
        .group_by(ev.experiment_id, ev.variant_id)
    ):
        out[exp_id][variant_id][0] = n
    primary = {e.id: primary_goal_id(e.goals or {}) for e in experiments}
    for exp_id, goal_id, variant_id, n in await session.execute(
        select(ec.experiment_id, ec.goal_id, ec.variant_id, func.count())
        .where(ec.experiment_id.in_(ids))
        .group_by(ec.experiment_id, ec.goal_id, ec.variant_id)
    ):
        if goal_id == primary[exp_id]:
            out[exp_id][variant_id][1] = n
    return {e: {v: (c[0], c[1]) for v, c in vs.items()} for e, vs in out.items()}


def winner_message(look: Look) -> tuple[str, dict[str, Any]]:
    """The alert's text and data: variant, lift and confidence."""
    decision, variants = look.decision, look.variants
    key = decision.winner
    winner = next(v for v in variants if v.key == key)
    arm = next(a for a in decision.arms if a.key == key)
    control = variants[0]
    cv, cc = look.counts.get(control.id, (0, 0))
    tv, tc = look.counts.get(winner.id, (0, 0))
    confidence = pooled_z_test(cv, cc, tv, tc).confidence
    lift = arm.lift.lift * 100 if arm.lift is not None else 0.0
    message = (
        f"{look.experiment.name}: {winner.name} beats {control.name} by {lift:+.1f}% "
        f"with {confidence:.1f}% confidence"
    )
    return message, {
        "variant_key": winner.key,
        "variant_name": winner.name,
        "lift": lift,
        "confidence": confidence,
        "visitors": tv,
        "conversions": tc,
    }


async def run_winner_detection(kernel: Kernel) -> int:
    """One cycle over the live experiments of entitled organizations; returns alerts raised."""
    now = kernel.clock()
    async with kernel.db.session() as session:
        rows = (
            await session.execute(
                select(Experiment, Organization)
                .join(Organization, Organization.id == Experiment.organization_id)
                .where(
                    Experiment.status == "live",
                    Experiment.winner_alert_sent.is_(False),
                    Organization.status == "active",
                )
            )
        ).all()
        entitled: dict[str, bool] = {}
        experiments = []
        for exp, org in rows:
            if org.id not in entitled:
                plan = await kernel.plugins.plan(org_ref(org))
                entitled[org.id] = kernel.plans.includes(plan, ANALYTICS_WINNER_ALERTS.key)
            if entitled[org.id]:
                experiments.append(exp)
        if not experiments:
            return 0
        variants: dict[str, list[Variant]] = defaultdict(list)
        for v in (
            await session.scalars(
                select(Variant)
                .where(Variant.experiment_id.in_([e.id for e in experiments]))
                .order_by(Variant.experiment_id, Variant.position)
            )
        ).all():
            variants[v.experiment_id].append(v)
        counts = await arm_counts(session, experiments)
    raised = 0
    for exp in experiments:
        vs = variants.get(exp.id, [])
        if len(vs) < 2:
            continue
        try:
            raised += await _look_and_alert(kernel, exp, vs, counts.get(exp.id, {}), now)
        except Exception:
            log.exception(
                "winner detection failed for experiment %s", exp.id, extra={"job": "winner_detection"}
            )
    return raised


async def _look_and_alert(
    kernel: Kernel,
    exp: Experiment,
    variants: list[Variant],
    counts: dict[str, tuple[int, int]],
    now: dt.datetime,
) -> int:
    decision = decide_on(variants, counts, exp.sequential_tuning)
    if decision is None:
        return 0
    async with kernel.db.session() as session:
        await store_minima(
            session, {v.id: arm.min_p for v, arm in zip(variants[1:], decision.arms, strict=True)}
        )
        enough = all(counts.get(v.id, (0, 0))[0] >= MIN_VISITORS_FOR_ALERT for v in variants)
        if decision.winner is None or not enough:
            return 0
        claimed = await session.execute(
            update(Experiment)
            .where(
                Experiment.id == exp.id, Experiment.winner_alert_sent.is_(False), Experiment.status == "live"
            )
            .values(winner_alert_sent=True)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return 0  # another writer alerted first
        message, data = winner_message(Look(exp, variants, decision, counts))
        alert_id = new_id()
        session.add(
            Alert(
                id=alert_id,
                organization_id=exp.organization_id,
                experiment_id=exp.id,
                alert_type="winner_detected",
                message=message,
                data=data,
                created_at=now,
            )
        )
        emit(
            session,
            "significance.reached",
            exp.organization_id,
            {"experiment_id": exp.id, "experiment_name": exp.name, "project_id": exp.site_id, **data},
        )
        await queue_alert_mails(
            session,
            kernel.settings.base_url,
            alert_id=alert_id,
            alert_type="winner_detected",
            organization_id=exp.organization_id,
            experiment_id=exp.id,
            experiment_name=exp.name,
            message=message,
        )
        if (exp.advanced or {}).get("auto_pause_at_significance"):
            live = await session.get(Experiment, exp.id)
            if live is not None and live.status == "live":
                await transition(session, kernel, None, live, "pause", None)
    return 1


# ------------------------------------------------------------- duration_alerts ---


async def run_duration_alerts(kernel: Kernel) -> int:
    """Alert once for each live experiment past its maximum duration without a winner alert."""
    now = kernel.clock()
    insert = pg_insert if kernel.db.engine.dialect.name == "postgresql" else sqlite_insert
    raised = 0
    async with kernel.db.session() as session:
        live = (
            await session.scalars(
                select(Experiment).where(
                    Experiment.status == "live",
                    Experiment.winner_alert_sent.is_(False),
                    Experiment.activated_at.is_not(None),
                )
            )
        ).all()
        for exp in live:
            days = (exp.advanced or {}).get("max_duration_days")
            if not days or exp.activated_at is None or exp.activated_at + dt.timedelta(days=days) > now:
                continue
            # lock the experiment's row the way the winner claim does and re-check it under the
            # lock: a winner alert committed meanwhile (another node's cycle) wins, never both
            unclaimed = await session.execute(
                update(Experiment)
                .where(Experiment.id == exp.id, Experiment.winner_alert_sent.is_(False))
                .values(winner_alert_sent=False)
                .execution_options(synchronize_session=False)
            )
            if unclaimed.rowcount != 1:  # type: ignore[attr-defined]
                continue
            message = f"{exp.name} has run {days} days without a clear winner"
            result = await session.execute(
                insert(Alert)
                .values(
                    id=new_id(),
                    organization_id=exp.organization_id,
                    experiment_id=exp.id,
                    alert_type="max_duration_exceeded",
                    message=message,
                    data={"max_duration_days": days, "activated_at": exp.activated_at.isoformat()},
                    read=False,
                    created_at=now,
                )
                .on_conflict_do_nothing(index_elements=["experiment_id", "alert_type"])
                .returning(Alert.id)
            )
            for (alert_id,) in result.all():  # none when another writer inserted it first
                raised += 1
                await queue_alert_mails(
                    session,
                    kernel.settings.base_url,
                    alert_id=alert_id,
                    alert_type="max_duration_exceeded",
                    organization_id=exp.organization_id,
                    experiment_id=exp.id,
                    experiment_name=exp.name,
                    message=message,
                )
    return raised


# ------------------------------------------------------------- the job list ---


def kernel_jobs(kernel: Kernel) -> list[JobSpec]:
    """The kernel's jobs, bound to ``kernel``."""

    async def experiment_schedule() -> None:
        await run_experiment_schedule(kernel)

    async def winner_detection() -> None:
        await run_winner_detection(kernel)

    async def duration_alerts() -> None:
        await run_duration_alerts(kernel)

    async def event_partitions() -> None:
        await ensure_partitions(kernel.db, kernel.clock())

    async def retention_purge() -> None:
        report = await purge_expired(kernel, kernel.clock())
        for plugin, orgs in report.plugins_failed.items():
            log.error(
                "plugin %s failed to purge %d organizations",
                plugin,
                len(orgs),
                extra={"job": "retention_purge"},
            )

    every = kernel.settings.job_interval_seconds
    return [
        JobSpec(name="experiment_schedule", func=experiment_schedule, seconds=every),
        JobSpec(name="winner_detection", func=winner_detection, seconds=every),
        JobSpec(name="duration_alerts", func=duration_alerts, seconds=every),
        JobSpec(name="retention_purge", func=retention_purge, cron=RETENTION_CRON),
        JobSpec(name="event_partitions", func=event_partitions, cron=PARTITIONS_CRON),
    ]
