"""Notification preferences (one row per person) and the mail outbox.

Preferences belong to the user, not to a membership: security alerts concern the account,
which is the same in every organization, and the master "email notifications" switch is a
person's choice about their own inbox. A user without a row has the defaults.

The mail outbox holds notification mails written in the transaction that causes them (an
alert, a password change); the outbox dispatcher sends them after the commit (see
``segmently.outbox``). ``key`` is unique, so one cause mails one person at most once.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from segmently.db.base import Base, IdColumn, new_id, utcnow


class NotificationPreference(Base):
    """What one person wants by email; no row means every default (all on)."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[str] = mapped_column(
        IdColumn, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    email_enabled: Mapped[bool] = mapped_column(default=True)
    experiment_results: Mapped[bool] = mapped_column(default=True)
    security_alerts: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class OutboxMail(Base):
    """One notification mail to one person: ``pending`` → ``sending`` → ``sent`` (or ``failed``)."""

    __tablename__ = "outbox_mails"
    __table_args__ = (Index("ix_outbox_mails_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(IdColumn, primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(160), unique=True)
    user_id: Mapped[str] = mapped_column(IdColumn, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[str | None] = mapped_column(IdColumn)
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]
