"""Sign-up, sign-in and profile rules, and the operator's account commands.

bcrypt is slow on purpose (cost 12 is about 250 ms), so every hash and check runs in a
worker thread: the event loop keeps serving other requests meanwhile.
"""

from __future__ import annotations

from litestar.exceptions import ClientException, NotAuthorizedException, PermissionDeniedException
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from segmently.db.models import Membership, Organization, User
from segmently.domain.accounts import schemas
from segmently.domain.accounts.security import (
    DEFAULT_ROUNDS,
    hash_password_async,
    issue_token,
    verify_password_async,
)
from segmently.domain.alerts.mails import queue_password_changed_mail
from segmently.http.errors import field_error
from segmently.settings import Settings


class Conflict(ClientException):
    """409: the request clashes with existing data."""

    status_code = 409


def normalise_email(email: str) -> str:
    """Emails compare case-insensitively and without surrounding blanks."""
    return email.strip().lower()


def check_password(settings: Settings, password: str, field: str = "password") -> None:
    """400 on ``field`` unless the password is long enough."""
    if len(password) < settings.password_min_length:
        raise field_error(field, f"must be at least {settings.password_min_length} characters")


def user_out(user: User) -> schemas.UserOut:
    """The API view of a user."""
    return schemas.UserOut(
        id=user.id, email=user.email, name=user.name, status=user.status, created_at=user.created_at
    )


def organization_out(org: Organization, role: str | None = None) -> schemas.OrganizationOut:
    """The API view of an organization."""
    return schemas.OrganizationOut(id=org.id, name=org.name, plan=org.plan, status=org.status, role=role)


async def email_taken(session: AsyncSession, email: str) -> bool:
    """Whether an account uses ``email``."""
    return bool(await session.scalar(select(func.count()).select_from(User).where(User.email == email)))


async def create_user(session: AsyncSession, settings: Settings, data: schemas.SignupIn) -> User:
    """A new user (409 if the email is taken, 400 if the password is too short)."""
    email = normalise_email(data.email)
    check_password(settings, data.password)
    if await email_taken(session, email):
        raise Conflict("An account with this email already exists: sign in instead")
    user = User(
        email=email,
        name=data.name.strip(),
        password_hash=await hash_password_async(data.password, settings.bcrypt_rounds),
    )
    session.add(user)
    await session.flush()
    return user


async def signup(
    session: AsyncSession, settings: Settings, data: schemas.SignupIn, default_plan: str
) -> tuple[User, Organization]:
    """Create a user with a new organization they own (nothing is written on bad input)."""
    user = await create_user(session, settings, data)
    org = Organization(
        name=(data.organization or f"{data.name.strip()}'s organization").strip(), plan=default_plan
    )
    session.add(org)
    await session.flush()
    session.add(Membership(organization_id=org.id, user_id=user.id, role="owner"))
    user.current_organization_id = org.id
    await session.flush()
    return user, org


async def login(session: AsyncSession, email: str, password: str, rounds: int = DEFAULT_ROUNDS) -> User:
    """The user with these credentials; the same 401, in words and time, whether the account exists or not.

    A deleted account answers exactly like one that never existed. ``rounds`` is the bcrypt
    cost passwords are hashed with (``Settings.bcrypt_rounds``): an unknown account's password
    is checked against a hash of that cost, so it takes as long as a real check.
    """
    user = await session.scalar(select(User).where(User.email == normalise_email(email)))
    ok = await verify_password_async(password, user.password_hash if user is not None else None, rounds)
    if user is None or not ok or user.status == "deleted":
        raise NotAuthorizedException("Email or password is incorrect")
    if user.status == "suspended":
        raise PermissionDeniedException("Your account is suspended")
    return user


def token_for(settings: Settings, user: User) -> str:
    """A fresh 30-day token for ``user``."""
    return issue_token(settings.secret_key, user.id, user.token_version)


async def logout(session: AsyncSession, user: User) -> None:
    """Invalidate every token issued to ``user`` so far."""
    await session.execute(update(User).where(User.id == user.id).values(token_version=User.token_version + 1))


async def memberships(session: AsyncSession, user_id: str) -> list[tuple[Organization, str]]:
    """Every organization the user belongs to, with the role there."""
    rows = await session.execute(
        select(Organization, Membership.role)
        .join(Membership, Membership.organization_id == Organization.id)
        .where(Membership.user_id == user_id)
        .order_by(Organization.created_at)
    )
    return [(org, role) for org, role in rows]


async def update_profile(session: AsyncSession, user: User, data: schemas.ProfileIn) -> User:
    """Change name and/or email (409 if the email is someone else's)."""
    if data.email is not None:
        email = normalise_email(data.email)
        if email != user.email and await email_taken(session, email):
            raise Conflict("Another account uses this email")
        user.email = email
    if data.name is not None:
        user.name = data.name.strip()
    session.add(user)
    await session.flush()
    return user


async def change_password(
    session: AsyncSession, settings: Settings, user: User, data: schemas.PasswordChangeIn
) -> str:
    """Set a new password after checking the current one; returns a new token (older ones stop working)."""
    if not await verify_password_async(data.current_password, user.password_hash):
        raise field_error("current_password", "is not your current password")
    check_password(settings, data.new_password, "new_password")
    user.password_hash = await hash_password_async(data.new_password, settings.bcrypt_rounds)
    user.token_version += 1
    session.add(user)
    await session.flush()
    # the security alert, in this transaction: sent after the commit, never for a refused change
    await queue_password_changed_mail(session, settings.base_url, user)
    return token_for(settings, user)


# ---------------------------------------------------------------- operator ---


class AccountCommandError(Exception):
    """An operator's account command that cannot be carried out; the message says why."""


async def user_by_email(session: AsyncSession, email: str) -> User:
    """The account with ``email`` (compared case-insensitively), deleted ones included."""
    email = normalise_email(email)
    user = await session.scalar(select(User).where(User.email == email))
    if user is None:
        raise AccountCommandError(f"no user with email {email!r}")
    return user


async def sole_owned_with_members(session: AsyncSession, user: User) -> list[Organization]:
    """Organizations ``user`` is the only owner of that have other members (deleted accounts aside)."""
    owned = (
        await session.scalars(
            select(Organization)
            .join(Membership, Membership.organization_id == Organization.id)
            .where(Membership.user_id == user.id, Membership.role == "owner")
            .order_by(Organization.created_at)
        )
    ).all()
    blocked = []
    for org in owned:
        others = (
            await session.scalars(
                select(Membership.role)
                .join(User, User.id == Membership.user_id)
                .where(
                    Membership.organization_id == org.id,
                    Membership.user_id != user.id,
                    User.status != "deleted",
                )
            )
        ).all()
        if others and "owner" not in others:
            blocked.append(org)
    return blocked


async def set_account_status(session: AsyncSession, email: str, status: str) -> tuple[User, bool]:
    """Suspend (``suspended``) or reactivate (``active``) the account with ``email``.

    Takes effect from the next request: the database is checked on every one. A deleted
    account is refused (it stays gone). Returns the user and whether anything changed.
    """
    user = await user_by_email(session, email)
    if user.status == "deleted":
        raise AccountCommandError(f"the account of {user.email} is deleted")
    changed = user.status != status
    if changed:
        await session.execute(update(User).where(User.id == user.id).values(status=status))
    return user, changed


async def delete_account(session: AsyncSession, email: str) -> tuple[User, bool]:
    """Mark the account with ``email`` deleted and revoke its tokens; nothing else is changed.

    From the next request on its tokens get 401 and its login answers as for an unknown
    account. Refused while it is the only owner of an organization with other members.
    Returns the user and whether anything changed (False when it was deleted already).
    """
    user = await user_by_email(session, email)
    if user.status == "deleted":
        return user, False
    blocked = await sole_owned_with_members(session, user)
    if blocked:
        names = ", ".join(f"{org.name!r} ({org.id})" for org in blocked)
        which = "the organization {}, which has" if len(blocked) == 1 else "the organizations {}, which have"
        raise AccountCommandError(
            f"{user.email} is the only owner of {which.format(names)} other members: transfer ownership first"
        )
    await session.execute(
        update(User).where(User.id == user.id).values(status="deleted", token_version=User.token_version + 1)
    )
    return user, True
