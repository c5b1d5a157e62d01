"""The outbox table: domain events written in the transaction that causes them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from segmently.db.base import Base, IdColumn, new_id, utcnow


class OutboxEvent(Base):
    """One domain event awaiting (or done with) delivery to ``on_domain_event``."""

    __tablename__ = "outbox_events"
    __table_args__ = (Index("ix_outbox_events_pending", "dispatched_at", "created_at"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    event: Mapped[str] = mapped_column(String(64))
    organization_id: Mapped[str | None] = mapped_column(IdColumn, index=True)
    data: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    dispatched_at: Mapped[dt.datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
