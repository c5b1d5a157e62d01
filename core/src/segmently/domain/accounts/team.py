"""Team rules: invitations, roles, suspension, removal, ownership and seats.

Each rule on a member has a ``*_blocker`` function (the reason an action is refused, or None)
that both the service refusing it and the dashboard's disabled buttons use.
"""

from __future__ import annotations

import datetime as dt
import logging

from litestar.exceptions import HTTPException, NotFoundException, PermissionDeniedException
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from segmently.db.base import utcnow
from segmently.db.models import Invitation, Membership, Organization, User
from segmently.domain.accounts import schemas
from segmently.domain.accounts.auth import Actor
from segmently.domain.accounts.security import random_token, sha256
from segmently.domain.accounts.services import Conflict, normalise_email
from segmently.http.errors import field_error
from segmently.kernel import Kernel
from segmently.mail import MailError, invitation_mail
from segmently.outbox import emit

log = logging.getLogger(__name__)

INVITATION_DAYS = 7
OWNER_ONLY = "Owner only"


async def seats_used(session: AsyncSession, organization_id: str) -> int:
    """Members besides the owner, plus pending invitations: what the plan's member limit counts."""
    members = await session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.organization_id == organization_id, Membership.role != "owner")
    )
    pending = await session.scalar(
        select(func.count())
        .select_from(Invitation)
        .where(
            Invitation.organization_id == organization_id,
            Invitation.accepted_at.is_(None),
            Invitation.cancelled_at.is_(None),
            Invitation.expires_at > utcnow(),
        )
    )
    return int(members or 0) + int(pending or 0)


async def invite(session: AsyncSession, actor: Actor, data: schemas.InvitationIn) -> tuple[Invitation, str]:
    """Create an invitation; returns it and the raw token (only ever sent by mail)."""
    email = normalise_email(data.email)
    existing_member = await session.scalar(
        select(Membership.id)
        .join(User, User.id == Membership.user_id)
        .where(Membership.organization_id == actor.organization_id, User.email == email)
    )
    if existing_member:
        raise Conflict(f"{email} is already a member of {actor.organization.name}")
    pending = await session.scalar(
        select(Invitation.id).where(
            Invitation.organization_id == actor.organization_id,
            Invitation.email == email,
            Invitation.accepted_at.is_(None),
            Invitation.cancelled_at.is_(None),
            Invitation.expires_at > utcnow(),
        )
    )
    if pending:
        raise Conflict(f"{email} already has a pending invitation: cancel it to send a new one")
    token = random_token(32)
    invitation = Invitation(
        organization_id=actor.organization_id,
        email=email,
        role=data.role,
        token_hash=sha256(token),
        invited_by=actor.user.id if actor.user else None,
        expires_at=utcnow() + dt.timedelta(days=INVITATION_DAYS),
    )
    session.add(invitation)
    await session.flush()
    emit(
        session,
        "member.invited",
        actor.organization_id,
        {"invitation_id": invitation.id, "email": email, "role": data.role},
    )
    return invitation, token


def invitation_out(invitation: Invitation) -> schemas.InvitationOut:
    """An invitation as the API answers it, with its status (pending, accepted, cancelled, expired)."""
    status = (
        "accepted"
        if invitation.accepted_at
        else "cancelled"
        if invitation.cancelled_at
        else "expired"
        if invitation.expires_at <= utcnow()
        else "pending"
    )
    return schemas.InvitationOut(
        id=invitation.id,
        email=invitation.email,
        role=invitation.role,
        status=status,
        expires_at=invitation.expires_at,
        created_at=invitation.created_at,
    )


async def send_invitation(
    kernel: Kernel, actor: Actor, invitation: schemas.InvitationOut, token: str
) -> None:
    """Mail the invitation link made with ``token`` to the invited address.

    Raises:
        HTTPException: 502 when the mail cannot be sent; the caller saves nothing, so the
            inviter sees the failure and can try again.
    """
    inviter = actor.user.name if actor.user else actor.organization.name
    mail = invitation_mail(
        invitation.email,
        actor.organization.name,
        inviter,
        invitation.role,
        f"{kernel.settings.base_url}/invitations/{token}",
        invitation.expires_at,
    )
    try:
        await kernel.mailer.send(mail)
    except MailError as exc:
        log.error("invitation mail to %s failed: %s", invitation.email, exc)
        raise HTTPException(status_code=502, detail=f"The invitation mail could not be sent: {exc}") from exc


async def open_invitation(session: AsyncSession, token: str) -> tuple[Invitation, Organization]:
    """The invitation behind ``token`` if it can still be accepted; else 400 on ``token`` with the reason."""
    row = (
        await session.execute(
            select(Invitation, Organization)
            .join(Organization, Organization.id == Invitation.organization_id)
            .where(Invitation.token_hash == sha256(token))
        )
    ).first()
    if row is None:
        raise field_error("token", "This invitation link is not valid")
    invitation, org = row
    if invitation.cancelled_at is not None:
        raise field_error("token", "This invitation was cancelled")
    if invitation.accepted_at is not None:
        raise field_error("token", "This invitation was already used")
    if invitation.expires_at <= utcnow():
        raise field_error("token", "This invitation has expired: ask for a new one")
    if org.status != "active":
        raise field_error("token", f"The organization {org.name} is suspended")
    return invitation, org


async def accept(session: AsyncSession, invitation: Invitation, user: User) -> Membership:
    """Make ``user`` a member as the invitation says; the invitation is used up."""
    if normalise_email(user.email) != invitation.email:
        raise PermissionDeniedException(
            f"This invitation was sent to {invitation.email}; sign in with that address to accept it"
        )
    already = await session.scalar(
        select(Membership).where(
            Membership.organization_id == invitation.organization_id, Membership.user_id == user.id
        )
    )
    if already is not None:
        raise Conflict("You are already a member of this organization")
    membership = Membership(organization_id=invitation.organization_id, user_id=user.id, role=invitation.role)
    invitation.accepted_at = utcnow()
    user.current_organization_id = invitation.organization_id
    session.add_all([membership, invitation, user])
    await session.flush()
    emit(
        session,
        "member.joined",
        invitation.organization_id,
        {"user_id": user.id, "email": user.email, "role": invitation.role},
    )
    return membership


async def members(session: AsyncSession, organization_id: str) -> list[tuple[Membership, User]]:
    """Every member with their user, owners first."""
    rows = await session.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.organization_id == organization_id)
        .order_by(Membership.created_at)
    )
    order = {"owner": 0, "admin": 1, "member": 2}
    return sorted(((m, u) for m, u in rows), key=lambda mu: order.get(mu[0].role, 3))


def _is_self(actor: Actor, target: Membership) -> bool:
    return actor.user is not None and target.user_id == actor.user.id


def removal_blocker(actor: Actor, target: Membership, team: list[tuple[Membership, User]]) -> str | None:
    """Why ``actor`` may not remove ``target`` (a short reason the UI shows), or None."""
    if actor.role != "owner":
        return OWNER_ONLY
    if _is_self(actor, target):
        return "You"
    active = [m for m, _ in team if m.status == "active"]
    if target.status == "active" and len(active) <= 1:
        return "Last member"
    admins = [m for m, _ in team if m.role in ("owner", "admin") and m.status == "active"]
    if target.role in ("owner", "admin") and target.status == "active" and len(admins) <= 1:
        return "Last admin"
    if target.role == "owner":
        return "Owner: transfer ownership first"
    return None


def role_blocker(actor: Actor, target: Membership) -> str | None:
    """Why ``actor`` may not make ``target`` an admin or a plain member, or None."""
    if actor.role != "owner":
        return OWNER_ONLY
    if target.role == "owner":
        return "Transfer ownership to change the owner's role"
    return None


def status_blocker(actor: Actor, target: Membership) -> str | None:
    """Why ``actor`` may not suspend or reactivate ``target``, or None."""
    if actor.role != "owner":
        return OWNER_ONLY
    if _is_self(actor, target):
        return "You cannot suspend yourself"
    if target.role == "owner":
        return "The owner cannot be suspended"
    return None


def transfer_blocker(actor: Actor, target: Membership) -> str | None:
    """Why ``actor`` may not make ``target`` the owner, or None."""
    if actor.role != "owner":
        return OWNER_ONLY
    if _is_self(actor, target):
        return "You already own this organization"
    if target.status != "active":
        return "Only an active member can become the owner"
    return None


async def membership_of(session: AsyncSession, actor: Actor, membership_id: str) -> Membership:
    """A membership of the caller's organization, else 404."""
    membership = await session.scalar(
        select(Membership).where(
            Membership.id == membership_id, Membership.organization_id == actor.organization_id
        )
    )
    if membership is None:
        raise NotFoundException("No such member")
    return membership


async def remove(session: AsyncSession, actor: Actor, membership_id: str, default_plan: str) -> None:
    """Remove a member, unless a removal rule forbids it (403 with the rule).

    Every user belongs to at least one organization: someone removed from their only one
    gets a new organization of their own (on ``default_plan``), as at sign-up.
    """
    target = await membership_of(session, actor, membership_id)
    reason = removal_blocker(actor, target, await members(session, actor.organization_id))
    if reason is not None:
        raise PermissionDeniedException(f"Cannot remove this member: {reason}")
    user = await session.get(User, target.user_id)
    await session.delete(target)
    if user is not None and user.current_organization_id == actor.organization_id:
        user.current_organization_id = await session.scalar(
            select(Membership.organization_id)
            .where(Membership.user_id == user.id, Membership.id != target.id)
            .limit(1)
        )
    if user is not None and user.current_organization_id is None:
        own = Organization(name=f"{user.name}'s organization", plan=default_plan)
        session.add(own)
        await session.flush()
        session.add(Membership(organization_id=own.id, user_id=user.id, role="owner"))
        user.current_organization_id = own.id
    await session.flush()
    emit(
        session,
        "member.removed",
        actor.organization_id,
        {"user_id": target.user_id, "email": user.email if user else None},
    )


async def set_status(session: AsyncSession, actor: Actor, membership_id: str, status: str) -> Membership:
    """Suspend or reactivate a member (owner only; never yourself or the owner)."""
    actor.require("owner", "suspend or activate members")
    target = await membership_of(session, actor, membership_id)
    if (reason := status_blocker(actor, target)) is not None:
        raise PermissionDeniedException(reason)
    target.status = status
    await session.flush()
    return target


async def set_role(session: AsyncSession, actor: Actor, membership_id: str, role: str) -> Membership:
    """Make a member an admin or a plain member (owner only; ownership moves by transfer)."""
    actor.require("owner", "change roles")
    target = await membership_of(session, actor, membership_id)
    if (reason := role_blocker(actor, target)) is not None:
        raise PermissionDeniedException(reason)
    target.role = role
    await session.flush()
    return target


async def transfer_ownership(session: AsyncSession, actor: Actor, membership_id: str) -> Membership:
    """Make another active member the owner; the previous owner becomes an admin."""
    actor.require("owner", "transfer ownership")
    user = actor.require_user()
    target = await membership_of(session, actor, membership_id)
    if (reason := transfer_blocker(actor, target)) is not None:
        raise field_error("membership_id", reason)
    mine = await session.scalar(
        select(Membership).where(
            Membership.organization_id == actor.organization_id, Membership.user_id == user.id
        )
    )
    assert mine is not None
    mine.role, target.role = "admin", "owner"
    await session.flush()
    emit(
        session,
        "team.ownership_transferred",
        actor.organization_id,
        {"from_user_id": user.id, "to_user_id": target.user_id},
    )
    return target
