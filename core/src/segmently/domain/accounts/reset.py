"""Password reset by one-time token.

``POST /api/v1/auth/password-reset`` answers the same 202, in words and (as far as we can)
in time, whether or not an account uses the address: a token is generated and the database
is asked once either way, and the mail goes out after the response is sent. Only the
SHA-256 of a token is stored; it works once, for 60 minutes, and using it ends every
session of the account and every other reset link it has outstanding.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from typing import Annotated, Any, cast

import msgspec
from litestar import Controller, Response, post
from litestar.background_tasks import BackgroundTask
from litestar.params import JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED
from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from segmently.db.base import utcnow
from segmently.db.models import PasswordReset, User
from segmently.domain.accounts import schemas, services
from segmently.domain.accounts.security import hash_password, random_token, sha256
from segmently.domain.alerts.mails import queue_password_changed_mail
from segmently.http.access import PUBLIC
from segmently.http.deps import DbSession, KernelState
from segmently.http.errors import field_error
from segmently.http.protection import rate_limit
from segmently.mail import Mailer, MailError, password_reset_mail
from segmently.settings import Settings

log = logging.getLogger(__name__)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")  # as sign-up checks it (blanks around it are forgiven)
_EMAIL_MAX = 254

RESET_VALID_MINUTES = 60
REQUESTED_DETAIL = "If an account exists for this email, a reset link is on its way."
INVALID_LINK = "This reset link is not valid: ask for a new one"
USED_LINK = "This reset link was already used: ask for a new one if you need it"
EXPIRED_LINK = (
    f"This reset link has expired (links work for {RESET_VALID_MINUTES} minutes): ask for a new one"
)
SUSPENDED_ACCOUNT = "This reset link cannot be used: the account is suspended"


class PasswordResetIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/v1/auth/password-reset``."""

    email: Annotated[str, msgspec.Meta(max_length=300)]


class PasswordResetRequestedOut(msgspec.Struct):
    """The same answer whether or not an account uses the address."""

    detail: str


class PasswordResetConfirmIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/v1/auth/password-reset/confirm``: the token from the mail's link and the new password."""

    token: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    new_password: schemas.Password


class PasswordResetDoneOut(msgspec.Struct):
    """A fresh token for the account (every older one stopped working)."""

    token: str


def reset_url(settings: Settings, token: str) -> str:
    """The dashboard link that carries a reset token (``random_token`` is URL-safe already)."""
    return f"{settings.base_url}/reset-password?token={token}"


async def issue_reset(session: AsyncSession, email: str) -> tuple[User, str] | None:
    """Store a new reset token for the active account using ``email``.

    Returns the account and the raw token, or None when no active account uses the
    address. Both paths generate and hash a token and make one more database round
    trip, so the answer takes about as long either way.
    """
    email = services.normalise_email(email)
    if not _EMAIL.fullmatch(email) or len(email) > _EMAIL_MAX:
        raise field_error("email", "is not an email address")
    user = await session.scalar(select(User).where(User.email == email))
    token = random_token()
    digest = sha256(token)
    if user is None or user.status != "active":
        await session.scalar(select(PasswordReset.id).where(PasswordReset.token_hash == digest))
        return None
    session.add(
        PasswordReset(
            user_id=user.id,
            token_hash=digest,
            expires_at=utcnow() + dt.timedelta(minutes=RESET_VALID_MINUTES),
        )
    )
    await session.flush()
    return user, token


async def send_reset_mail(mailer: Mailer, to: str, url: str) -> None:
    """Send the reset mail (after the response); a failure is logged, never shown to the caller."""
    try:
        await mailer.send(password_reset_mail(to, url, RESET_VALID_MINUTES))
    except MailError as exc:
        log.error("password reset mail to %s was not sent: %s", to, exc, extra={"mail_to": to})
    except Exception:
        log.exception("password reset mail to %s was not sent", to, extra={"mail_to": to})


async def complete_reset(session: AsyncSession, settings: Settings, data: PasswordResetConfirmIn) -> str:
    """Set the new password with a valid token; returns a fresh session token.

    Nothing is written on bad input: 400 on ``token`` (unknown, used, expired, account
    suspended or deleted) or ``new_password`` (too short).
    """
    reset = await session.scalar(select(PasswordReset).where(PasswordReset.token_hash == sha256(data.token)))
    if reset is None:
        raise field_error("token", INVALID_LINK)
    if reset.used_at is not None:
        raise field_error("token", USED_LINK)
    if reset.expires_at <= utcnow():
        raise field_error("token", EXPIRED_LINK)
    user = await session.get(User, reset.user_id)
    if user is None or user.status == "deleted":
        raise field_error("token", INVALID_LINK)
    if user.status != "active":
        raise field_error("token", SUSPENDED_ACCOUNT)
    services.check_password(settings, data.new_password, "new_password")
    # bcrypt takes a while on purpose: keep the event loop free meanwhile
    password_hash = await asyncio.to_thread(hash_password, data.new_password, settings.bcrypt_rounds)
    now = utcnow()
    # claim the token atomically: of two concurrent confirmations, exactly one wins
    claimed = cast(
        "CursorResult[Any]",
        await session.execute(
            update(PasswordReset)
            .where(PasswordReset.id == reset.id, PasswordReset.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        ),
    )
    if claimed.rowcount != 1:
        raise field_error("token", USED_LINK)
    # every other outstanding link of the account stops working too
    await session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    user.password_hash = password_hash
    user.token_version += 1  # every session issued so far ends
    await session.flush()
    await queue_password_changed_mail(session, settings.base_url, user)
    return services.token_for(settings, user)


class PasswordResetController(Controller):
    """``/api/v1/auth/password-reset``: request a reset mail, then set a new password with its token."""

    path = "/api/v1/auth/password-reset"
    opt = PUBLIC
    tags = ["auth"]

    @post(
        "/",
        operation_id="requestPasswordReset",
        status_code=HTTP_202_ACCEPTED,
        middleware=[rate_limit("password_reset")],
    )
    async def request_reset(
        self, data: JSONBody[PasswordResetIn], db_session: DbSession, kernel: KernelState
    ) -> Response[PasswordResetRequestedOut]:
        """Mail a one-time reset link (valid 60 minutes) if an active account uses the address.

        The answer is the same whether or not such an account exists.
        """
        found = await issue_reset(db_session, data.email)
        body = PasswordResetRequestedOut(detail=REQUESTED_DETAIL)
        if found is None:
            return Response(body, status_code=HTTP_202_ACCEPTED)
        user, token = found
        mail = BackgroundTask(send_reset_mail, kernel.mailer, user.email, reset_url(kernel.settings, token))
        return Response(body, status_code=HTTP_202_ACCEPTED, background=mail)

    @post(
        "/confirm",
        operation_id="confirmPasswordReset",
        status_code=200,
        middleware=[rate_limit("password_reset")],
    )
    async def confirm_reset(
        self, data: JSONBody[PasswordResetConfirmIn], db_session: DbSession, kernel: KernelState
    ) -> PasswordResetDoneOut:
        """Set a new password with the token from the mail; returns a fresh token.

        Every earlier session of the account and every other reset link it has stop working.
        """
        return PasswordResetDoneOut(token=await complete_reset(db_session, kernel.settings, data))
