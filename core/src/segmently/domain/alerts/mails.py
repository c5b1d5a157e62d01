"""Notification mails: experiment results alerts and security alerts, by each person's choices.

Nothing here talks to the mail server. Each function writes ``outbox_mails`` rows with
:func:`segmently.outbox.queue_mail` in the caller's transaction (the alert's, the password
change's), so a mail exists exactly when its cause does; the outbox dispatcher sends it after
the commit, at most once (see ``segmently.outbox`` and docs/scheduler.md).

The choices are stored per person (``notification_preferences``, one row per user; no row
means the defaults): security alerts are about the account, which is the same in every
organization, and "email notifications" is a person's choice about their own inbox.
"""

from __future__ import annotations

import html
import logging

import msgspec
from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from segmently.db.base import utcnow
from segmently.db.models import Membership, Organization, User
from segmently.db.models.notifications import NotificationPreference
from segmently.mail import Mail
from segmently.outbox import queue_mail

log = logging.getLogger(__name__)

ALERT_SUBJECTS = {
    "winner_detected": "Winner found: {name}",
    "max_duration_exceeded": "{name} ran past its maximum duration",
}


class Preferences(msgspec.Struct, frozen=True, kw_only=True):
    """What one person receives by email.

    Attributes:
        email_enabled: The master switch: off, no notification mail at all (invitations and
            password reset links are not notifications and always go out).
        experiment_results: Winner and maximum-duration alerts of the organizations one is an
            active member of.
        security_alerts: A mail when the account's password is changed.
    """

    email_enabled: bool = True
    experiment_results: bool = True
    security_alerts: bool = True


DEFAULTS = Preferences()


async def preferences_of(session: AsyncSession, user_id: str) -> Preferences:
    """The person's choices (the defaults until they save some)."""
    row = await session.get(NotificationPreference, user_id)
    if row is None:
        return DEFAULTS
    return Preferences(
        email_enabled=row.email_enabled,
        experiment_results=row.experiment_results,
        security_alerts=row.security_alerts,
    )


async def save_preferences(session: AsyncSession, user_id: str, preferences: Preferences) -> None:
    """Store the person's choices (in the caller's transaction)."""
    row = await session.get(NotificationPreference, user_id)
    if row is None:
        row = NotificationPreference(user_id=user_id)
        session.add(row)
    row.email_enabled = preferences.email_enabled
    row.experiment_results = preferences.experiment_results
    row.security_alerts = preferences.security_alerts
    row.updated_at = utcnow()
    await session.flush()


def _wants(*flags: ColumnElement[bool]) -> ColumnElement[bool]:
    """No preference row, or every flag on."""
    return or_(NotificationPreference.user_id.is_(None), and_(*flags))


def _document(title: str, paragraphs: list[str]) -> str:
    body = "".join(f"<p>{p}</p>\n" for p in paragraphs)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>\n"
        f'<body style="font-family: sans-serif; line-height: 1.5">\n{body}</body></html>\n'
    )


def alert_mail(
    to: str, organization_name: str, subject: str, message: str, link: str, settings_link: str
) -> Mail:
    """The mail of one experiment results alert."""
    organization = " ".join(organization_name.split())
    text = (
        f"Hello,\n\n{message}\n\n"
        f"Open the experiment:\n{link}\n\n"
        f"You receive this because experiment results alerts are on for your account in "
        f"{organization}. Change what reaches you: {settings_link}\n"
    )
    e = html.escape
    doc = _document(
        subject,
        [
            "Hello,",
            e(message),
            f'<a href="{e(link)}">Open the experiment</a><br>{e(link)}',
            f"You receive this because experiment results alerts are on for your account in "
            f'{e(organization)}. <a href="{e(settings_link)}">Change what reaches you</a>.',
        ],
    )
    return Mail(to=to, subject=f"[{organization}] {subject}", text=text, html=doc)


async def queue_alert_mails(
    session: AsyncSession,
    base_url: str,
    *,
    alert_id: str,
    alert_type: str,
    organization_id: str,
    experiment_id: str,
    experiment_name: str,
    message: str,
) -> int:
    """One mail per active member of the organization who wants experiment results alerts.

    Written in the alert's own transaction; returns how many mails were queued.
    """
    organization = await session.get(Organization, organization_id)
    if organization is None:
        return 0
    recipients = (
        await session.execute(
            select(User.id, User.email)
            .join(Membership, Membership.user_id == User.id)
            .outerjoin(NotificationPreference, NotificationPreference.user_id == User.id)
            .where(
                Membership.organization_id == organization_id,
                Membership.status == "active",
                User.status == "active",
                _wants(
                    NotificationPreference.email_enabled.is_(True),
                    NotificationPreference.experiment_results.is_(True),
                ),
            )
            .order_by(User.id)
        )
    ).all()
    one_line = " ".join(experiment_name.split())
    subject = ALERT_SUBJECTS.get(alert_type, "{name}: experiment alert").format(name=one_line)
    link = f"{base_url}/experiments/{experiment_id}"
    queued = 0
    for user_id, email in recipients:
        mail = alert_mail(
            email, organization.name, subject, message, link, f"{base_url}/settings/notifications"
        )
        queued += await queue_mail(
            session,
            key=f"alert:{alert_id}:{user_id}",
            user_id=user_id,
            organization_id=organization_id,
            mail=mail,
        )
    return queued


def password_changed_mail(to: str, when: str, reset_link: str, settings_link: str) -> Mail:
    """The security alert after a password change."""
    subject = "Your Segmently password was changed"
    text = (
        f"Hello,\n\n"
        f"The password of the Segmently account for {to} was changed on {when}. "
        f"Every other session of the account has ended.\n\n"
        f"If you did not change it, choose a new password now:\n{reset_link}\n"
        f"and tell the owner of your organization.\n\n"
        f"You receive this because security alerts are on for your account. "
        f"Change what reaches you: {settings_link}\n"
    )
    e = html.escape
    doc = _document(
        subject,
        [
            "Hello,",
            f"The password of the Segmently account for {e(to)} was changed on {e(when)}. "
            "Every other session of the account has ended.",
            f'If you did not change it, <a href="{e(reset_link)}">choose a new password now</a> '
            "and tell the owner of your organization.",
            "You receive this because security alerts are on for your account. "
            f'<a href="{e(settings_link)}">Change what reaches you</a>.',
        ],
    )
    return Mail(to=to, subject=subject, text=text, html=doc)


async def queue_password_changed_mail(session: AsyncSession, base_url: str, user: User) -> bool:
    """Mail ``user`` that their password changed, if they want security alerts.

    Call it in the password change's transaction, after ``token_version`` went up (it makes
    the mail's key unique to this change). Returns whether a mail was queued.
    """
    wanted = await preferences_of(session, user.id)
    if not (wanted.email_enabled and wanted.security_alerts):
        return False
    mail = password_changed_mail(
        user.email,
        utcnow().strftime("%Y-%m-%d %H:%M UTC"),
        f"{base_url}/forgot-password",
        f"{base_url}/settings/notifications",
    )
    return await queue_mail(
        session,
        key=f"password-changed:{user.id}:{user.token_version}",
        user_id=user.id,
        organization_id=None,
        mail=mail,
    )
