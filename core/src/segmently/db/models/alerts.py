"""The notification center: alerts the scheduler raises for an organization."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from segmently.db.base import Base, IdColumn, new_id, utcnow


class Alert(Base):
    """One alert (``winner_detected``, ``max_duration_exceeded``); at most one per experiment and type."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("experiment_id", "alert_type", name="uq_alerts_experiment_type"),
        Index("ix_alerts_organization_id_created_at", "organization_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    organization_id: Mapped[str] = mapped_column(IdColumn, ForeignKey("organizations.id", ondelete="CASCADE"))
    experiment_id: Mapped[str | None] = mapped_column(
        IdColumn, ForeignKey("experiments.id", ondelete="CASCADE")
    )
    alert_type: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]]
    read: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
