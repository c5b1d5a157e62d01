"""Team rules: invitations, roles, suspension, removal, ownership and seats."""

from __future__ import annotations

import datetime as dt

from litestar.exceptions import NotFoundException, PermissionDeniedException
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from segmently.db.base import utcnow
from segmently.db.models import Invitation, Membership, Organization, User
from segmently.domain.accounts import schemas
from segmently.domain.accounts.auth import Actor
from segmently.domain.accounts.security import random_token, sha256
from segmently.domain.accounts.services import Conflict, normalise_email
from segmently.http.errors import field_error
from segmently.outbox import emit

INVITATION_DAYS = 7


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


def removal_blocker(actor: Actor, target: Membership, team: list[tuple[Membership, User]]) -> str | None:
    """Why ``actor`` may not remove ``target`` (a short reason the UI shows), or None."""
    if actor.role != "owner":
        return "Owner only"
    if actor.user is not None and target.user_id == actor.user.id:
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
    if actor.user is not None and target.user_id == actor.user.id:
        raise PermissionDeniedException("You cannot suspend yourself")
    if target.role == "owner":
        raise PermissionDeniedException("The owner cannot be suspended")
    target.status = status
    await session.flush()
    return target


async def set_role(session: AsyncSession, actor: Actor, membership_id: str, role: str) -> Membership:
    """Make a member an admin or a plain member (owner only; ownership moves by transfer)."""
    actor.require("owner", "change roles")
    target = await membership_of(session, actor, membership_id)
    if target.role == "owner":
        raise PermissionDeniedException("Transfer ownership to change the owner's role")
    target.role = role
    await session.flush()
    return target


async def transfer_ownership(session: AsyncSession, actor: Actor, membership_id: str) -> Membership:
    """Make another active member the owner; the previous owner becomes an admin."""
    actor.require("owner", "transfer ownership")
    user = actor.require_user()
    target = await membership_of(session, actor, membership_id)
    if target.user_id == user.id:
        raise field_error("membership_id", "You already own this organization")
    if target.status != "active":
        raise field_error("membership_id", "Only an active member can become the owner")
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
