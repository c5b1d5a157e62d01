"""Visitor events and the per-visitor rows analytics reads (ARCHITECTURE.md §3, §6).

``events`` is append-only and has no foreign keys, so bulk inserts stay close to
raw ``COPY`` speed; on PostgreSQL it is partitioned by month on ``created_at``
(the migration creates it so; see :mod:`segmently.domain.events.partitions`).
Rows of a deleted site are removed by :func:`segmently.domain.events.purge.delete_site_events`.

``experiment_visitors`` (one row per visitor per experiment), ``experiment_conversions``
(one row per visitor per goal) and ``funnel_progress`` (one row per visitor per
funnel) are maintained in the ingestion transaction, so results cost O(visitors in
the experiment), never a scan of events.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from segmently.db.base import Base, IdColumn

PARTITION_NAME = re.compile(r"^events_p\d{4}_\d{2}$|^events_default$")
"""Names of the monthly partitions of ``events`` (PostgreSQL); the models don't list them."""


class Event(Base):
    """One visitor event, as sent by the snippet, an SDK or a server.

    ``id`` is a UUIDv7 minted at ingestion (its time is when the server received the
    event; the live feed pages on it); ``created_at`` is when the event happened.

    No primary key in the database: ``id`` is minted by the server and never sent twice (client
    retries are deduplicated by ``event_keys``), every read by id names its site and goes
    through ``(site_id, id)`` (the live feed, the purge), and a key on a partitioned table must
    hold ``created_at``, so it would be one more index to write per event, read by nothing
    (docs/benchmarks.md). The mapper still takes ``(id, created_at)`` as the row's identity.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_site_id_id", "site_id", "id"),
        Index("ix_events_site_id_visitor_id", "site_id", "visitor_id"),
        {"postgresql_partition_by": "RANGE (created_at)"},
    )

    id: Mapped[str] = mapped_column(IdColumn)
    created_at: Mapped[dt.datetime] = mapped_column()
    site_id: Mapped[str] = mapped_column(IdColumn)
    event_name: Mapped[str] = mapped_column(String(100))
    visitor_id: Mapped[str] = mapped_column(String(200))
    session_id: Mapped[str | None] = mapped_column(String(200))
    experiment_id: Mapped[str | None] = mapped_column(String(64))
    variant_id: Mapped[str | None] = mapped_column(String(64))
    event_data: Mapped[dict[str, Any] | None]
    url: Mapped[str | None] = mapped_column(Text)
    device_type: Mapped[str | None] = mapped_column(String(32))
    client_event_id: Mapped[str | None] = mapped_column(String(64))

    __mapper_args__ = {"primary_key": [id, created_at]}  # the identity without a database key


class EventKey(Base):
    """A client ``event_id`` already stored for a site: a retried batch never duplicates.

    Kept as long as the site's events, and at least the 30 days ingestion accepts late
    events for (see :mod:`segmently.domain.events.retention`).
    """

    __tablename__ = "event_keys"

    site_id: Mapped[str] = mapped_column(IdColumn, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[dt.datetime]


class MonthlyVisitor(Base):
    """A visitor counted toward an organization's monthly visitor cap (capped plans only)."""

    __tablename__ = "monthly_visitors"

    organization_id: Mapped[str] = mapped_column(
        IdColumn, ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # 2026-11
    visitor_id: Mapped[str] = mapped_column(String(200), primary_key=True)


class ExperimentConversion(Base):
    """One visitor's conversions on one goal of one experiment: first time, count, revenue."""

    __tablename__ = "experiment_conversions"
    __table_args__ = (Index("ix_experiment_conversions_site_id_visitor_id", "site_id", "visitor_id"),)

    experiment_id: Mapped[str] = mapped_column(
        IdColumn, ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    goal_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    visitor_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    variant_id: Mapped[str] = mapped_column(IdColumn)
    site_id: Mapped[str] = mapped_column(IdColumn)
    first_at: Mapped[dt.datetime]
    count: Mapped[int] = mapped_column(default=1)
    revenue: Mapped[float] = mapped_column(default=0.0)


class FunnelProgress(Base):
    """How many steps of a funnel one visitor has completed, in order."""

    __tablename__ = "funnel_progress"
    __table_args__ = (Index("ix_funnel_progress_site_id_visitor_id", "site_id", "visitor_id"),)

    experiment_id: Mapped[str] = mapped_column(
        IdColumn, ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    funnel_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    visitor_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    variant_id: Mapped[str] = mapped_column(IdColumn)
    site_id: Mapped[str] = mapped_column(IdColumn)
    steps: Mapped[int]
    updated_at: Mapped[dt.datetime]
