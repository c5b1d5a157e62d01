"""Durable domain events: written with the change, delivered after commit, never lost.

A service calls :func:`emit` inside the transaction that makes the change, so the
event exists exactly when the change does. After the commit, the
:class:`OutboxDispatcher` hands each pending event to ``on_domain_event`` and
marks it done. A crash between delivery and marking means the event is delivered
again on the next start: delivery is *at least once*, and each event carries an
id to dedupe on.

The same dispatcher sends the kernel's notification mails (alert and security mails):
:func:`queue_mail` writes one ``outbox_mails`` row per person in the transaction that
causes it, and after the commit the dispatcher hands it to its mailer. A mail is sent *at
most once*: its unique key keeps a second row out, the row is claimed (``sending``) before
the SMTP conversation, and a row a crash left in ``sending`` is marked ``failed`` and
logged, never sent again. A mail the server refuses or cannot take is retried with the
same back-off as events, then given up (``failed``, logged) after :data:`MAIL_ATTEMPTS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from segmently.db.base import new_id, utcnow
from segmently.db.engine import Database
from segmently.db.locks import try_lock
from segmently.db.models.notifications import OutboxMail
from segmently.db.models.outbox import OutboxEvent
from segmently.hookspecs import DOMAIN_EVENT_TYPES, DomainEvent
from segmently.mail import Mail, Mailer, MailError
from segmently.plugins.host import HookFailure, PluginHost

log = logging.getLogger(__name__)
_SESSION_FLAG = "segmently.outbox.pending"
_wakeups: set[Callable[[], None]] = set()
MAX_BACKOFF_SECONDS = 300.0
BATCH = 200
MAIL_ATTEMPTS = 10
"""A notification mail is given up after this many refused sends (about 20 minutes of back-off)."""
MAIL_STALE_SECONDS = 600.0
"""A mail still ``sending`` this long after its claim was cut off by a crash: ``failed``, not resent."""


def emit(session: AsyncSession, event_type: str, organization_id: str | None, data: dict[str, Any]) -> str:
    """Write a domain event into the current transaction; returns its id.

    Raises:
        ValueError: ``event_type`` is not one of the documented domain events.
    """
    if event_type not in DOMAIN_EVENT_TYPES:
        raise ValueError(f"unknown domain event {event_type!r}")
    row = OutboxEvent(
        id=new_id(), event=event_type, organization_id=organization_id, data=data, created_at=utcnow()
    )
    session.add(row)
    session.sync_session.info[_SESSION_FLAG] = True
    return row.id


async def queue_mail(
    session: AsyncSession, *, key: str, user_id: str, organization_id: str | None, mail: Mail
) -> bool:
    """Write a notification mail into the current transaction; sent after commit by the dispatcher.

    Args:
        session: The transaction that causes the mail (the alert's, the password change's).
        key: What makes this mail unique (``alert:<alert id>:<user id>``…): a second mail with
            the same key is not written.
        user_id: The recipient's account.
        organization_id: The organization the mail is about, if any.
        mail: The mail itself.

    Returns:
        Whether a row was written (``False``: a mail with ``key`` exists already).
    """
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    result = await session.execute(
        insert(OutboxMail)
        .values(
            id=new_id(),
            key=key,
            user_id=user_id,
            organization_id=organization_id,
            to_address=mail.to,
            subject=mail.subject,
            text=mail.text,
            html=mail.html,
            status="pending",
            attempts=0,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(OutboxMail.id)
    )
    written = len(result.all()) == 1
    if written:
        session.sync_session.info[_SESSION_FLAG] = True
    return written


@event.listens_for(Session, "after_commit")
def _wake_dispatchers(session: Session) -> None:
    if session.info.pop(_SESSION_FLAG, False):
        for wake in list(_wakeups):
            wake()


@event.listens_for(Session, "after_soft_rollback")
def _forget_flag(session: Session, _previous: Any) -> None:
    session.info.pop(_SESSION_FLAG, None)


def to_domain_event(row: OutboxEvent) -> DomainEvent:
    """The hook payload of a stored outbox row."""
    return DomainEvent(
        id=row.id,
        event=row.event,
        organization_id=row.organization_id,
        timestamp=row.created_at,
        data=row.data,
    )


class OutboxDispatcher:
    """Delivers committed domain events; one runs in every app process.

    Its own process's commits wake it at once; events written by other processes
    (another node, the CLI) are found by polling every ``poll_seconds``. A
    cluster-wide lock makes one process deliver at a time.
    """

    def __init__(
        self, db: Database, host: PluginHost, poll_seconds: float = 2.0, mailer: Mailer | None = None
    ) -> None:
        self.db = db
        self.host = host
        self.poll_seconds = poll_seconds
        self.mailer = mailer
        """Sends the queued notification mails; without one they wait for a dispatcher that has one."""
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def _on_commit(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def start(self) -> None:
        """Start delivering in the background (events left by a crash go first)."""
        self._loop = asyncio.get_running_loop()
        _wakeups.add(self._on_commit)
        self._task = asyncio.create_task(self._run(), name="segmently-outbox")

    async def stop(self) -> None:
        """Stop delivering; undelivered events stay for the next start."""
        _wakeups.discard(self._on_commit)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.dispatch_pending()
            except Exception:  # a database blip must not stop delivery for good
                log.exception("outbox dispatch cycle failed; retrying")
            # asyncio.timeout, not wait_for: before Python 3.12 wait_for dropped a cancellation that
            # came as the wake-up did, so stop() right after a commit waited for good
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
            self._wake.clear()

    async def dispatch_pending(self) -> int:
        """Deliver every due event and send every due mail once; returns how many went out."""
        async with try_lock(self.db, "outbox") as held:
            if not held:
                return 0
            delivered = await self._dispatch_events()
            if self.mailer is not None:
                delivered += await self._send_mails(self.mailer)
            return delivered

    async def _dispatch_events(self) -> int:
        delivered = 0
        while True:
            now = utcnow()
            async with self.db.session() as session:
                rows = (
                    await session.scalars(
                        select(OutboxEvent)
                        .where(OutboxEvent.dispatched_at.is_(None))
                        .where(or_(OutboxEvent.next_attempt_at.is_(None), OutboxEvent.next_attempt_at <= now))
                        .order_by(OutboxEvent.created_at, OutboxEvent.id)
                        .limit(BATCH)
                    )
                ).all()
            for row in rows:
                delivered += await self._deliver(row)
            if len(rows) < BATCH:
                return delivered

    async def _deliver(self, row: OutboxEvent) -> int:
        try:
            await self.host.domain_event(to_domain_event(row))
        except HookFailure as exc:
            attempts = row.attempts + 1
            delay = min(MAX_BACKOFF_SECONDS, 2.0**attempts)
            log.error(
                "domain event %s (%s) not delivered, attempt %d, retry in %.0fs: %s",
                row.id,
                row.event,
                attempts,
                delay,
                exc,
            )
            async with self.db.session() as session:
                await session.execute(
                    update(OutboxEvent)
                    .where(OutboxEvent.id == row.id)
                    .values(
                        attempts=attempts,
                        last_error=str(exc)[:2000],
                        next_attempt_at=utcnow() + dt.timedelta(seconds=delay),
                    )
                )
            return 0
        async with self.db.session() as session:
            await session.execute(
                update(OutboxEvent).where(OutboxEvent.id == row.id).values(dispatched_at=utcnow())
            )
        return 1

    async def _send_mails(self, mailer: Mailer) -> int:
        sent = 0
        async with self.db.session() as session:
            stale = (
                await session.scalars(
                    select(OutboxMail).where(
                        OutboxMail.status == "sending",
                        OutboxMail.next_attempt_at <= utcnow(),
                    )
                )
            ).all()
            for row in stale:  # a crash cut the send short: it may have gone out, so never resend
                log.error(
                    "mail %s (%r to %s) was interrupted while sending and is not sent again",
                    row.key,
                    row.subject,
                    row.to_address,
                )
                row.status, row.last_error = "failed", "interrupted while sending"
        while True:
            now = utcnow()
            async with self.db.session() as session:
                rows = (
                    await session.scalars(
                        select(OutboxMail)
                        .where(OutboxMail.status == "pending")
                        .where(or_(OutboxMail.next_attempt_at.is_(None), OutboxMail.next_attempt_at <= now))
                        .order_by(OutboxMail.created_at, OutboxMail.id)
                        .limit(BATCH)
                    )
                ).all()
            for row in rows:
                sent += await self._send_mail(mailer, row)
            if len(rows) < BATCH:
                return sent

    async def _send_mail(self, mailer: Mailer, row: OutboxMail) -> int:
        attempts = row.attempts + 1
        async with self.db.session() as session:  # claim it: of two senders, one sends
            claimed = await session.execute(
                update(OutboxMail)
                .where(OutboxMail.id == row.id, OutboxMail.status == "pending")
                .values(
                    status="sending",
                    attempts=attempts,
                    next_attempt_at=utcnow() + dt.timedelta(seconds=MAIL_STALE_SECONDS),
                )
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return 0
        mail = Mail(to=row.to_address, subject=row.subject, text=row.text, html=row.html)
        try:
            await mailer.send(mail)
        except Exception as exc:  # MailError, or a mailer's own bug: retried, never lost silently
            done = attempts >= MAIL_ATTEMPTS
            delay = min(MAX_BACKOFF_SECONDS, 2.0**attempts)
            reason = str(exc) if isinstance(exc, MailError) else f"{type(exc).__name__}: {exc}"
            log.error(
                "mail %s (%r to %s) not sent, attempt %d, %s: %s",
                row.key,
                row.subject,
                row.to_address,
                attempts,
                "given up" if done else f"retry in {delay:.0f}s",
                reason,
            )
            async with self.db.session() as session:
                await session.execute(
                    update(OutboxMail)
                    .where(OutboxMail.id == row.id)
                    .values(
                        status="failed" if done else "pending",
                        last_error=reason[:2000],
                        next_attempt_at=None if done else utcnow() + dt.timedelta(seconds=delay),
                    )
                )
            return 0
        async with self.db.session() as session:
            await session.execute(
                update(OutboxMail)
                .where(OutboxMail.id == row.id)
                .values(status="sent", sent_at=utcnow(), next_attempt_at=None)
            )
        return 1
