"""Settings, Team & permissions: members, their roles and status, invitations, ownership.

The routes run ``domain/accounts/team`` as the API does, with its messages. A button this user
may not press is disabled and names the reason ``team``'s ``*_blocker`` functions give, the same
functions whose reasons the services raise on a forged post.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, Parameter
from litestar.response import Redirect, Template
from sqlalchemy import select

from segmently.dashboard.errors import PAGE_ERRORS
from segmently.dashboard.forms import api_errors, build, field_problems, form_values
from segmently.dashboard.frame import redirect
from segmently.dashboard.settings_pages import fresh_key, settings_page
from segmently.db.base import utcnow
from segmently.db.models import Invitation, Membership, User
from segmently.domain.accounts import schemas, team
from segmently.domain.accounts.auth import Actor
from segmently.http.access import ADMIN, OWNER
from segmently.http.deps import CurrentActor, DbSession, KernelState
from segmently.http.idempotency import IdempotencyKeyInFlight, IdempotencyKeyReused, IdempotentCreate
from segmently.kernel import Kernel
from segmently.tiers.guards import check_limit_for
from segmently.tiers.limits import LimitExceeded

NOTICES = {
    "invited": "Invitation sent.",
    "cancelled": "Invitation cancelled: its link no longer works.",
    "role": "Role changed.",
    "suspended": "Member suspended: they cannot sign in to this organization until activated.",
    "activated": "Member activated.",
    "removed": "Member removed.",
    "transferred": "Ownership transferred: you are now an admin.",
}
ROLES = {"admin": "Admin", "member": "Member"}
CHOOSE_ROLE = "Choose Admin or Member"


@dataclass(frozen=True, slots=True)
class MemberRow:
    """A member on the Team tab and, for each action, why this user may not take it (None: allowed)."""

    membership: Membership
    user: User
    blockers: dict[str, str | None]


def member_blockers(
    actor: Actor, target: Membership, everyone: list[tuple[Membership, User]]
) -> dict[str, str | None]:
    """Why ``actor`` may not change the role of, suspend or activate, remove or hand ownership to ``target``.

    Each reason is the one ``team`` refuses a forged post with (None: the button is enabled).
    """
    return {
        "role": team.role_blocker(actor, target),
        "status": team.status_blocker(actor, target),
        "remove": team.removal_blocker(actor, target, everyone),
        "transfer": team.transfer_blocker(actor, target),
    }


async def team_page(
    request: Request[Any, Any, Any],
    actor: Actor,
    db_session: DbSession,
    kernel: Kernel,
    *,
    status_code: int = 200,
    notice: str | None = None,
    problem: str | None = None,
    problem_kind: str = "error",
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    row_errors: dict[str, str] | None = None,
) -> Template:
    """The Team & permissions tab: members with their blockers, pending invitations, the seat limit."""
    everyone = await team.members(db_session, actor.organization_id)
    invitations = (
        await db_session.scalars(
            select(Invitation)
            .where(
                Invitation.organization_id == actor.organization_id,
                Invitation.accepted_at.is_(None),
                Invitation.cancelled_at.is_(None),
                Invitation.expires_at > utcnow(),
            )
            .order_by(Invitation.created_at.desc())
        )
    ).all()
    seats = await team.seats_used(db_session, actor.organization_id)
    seat_limit = None
    try:
        await check_limit_for(kernel, actor.organization, "members", seats)
    except LimitExceeded as exc:
        seat_limit = exc.message
    return await settings_page(
        request,
        actor,
        db_session,
        kernel,
        "team",
        status_code=status_code,
        notice=notice,
        problem=problem,
        problem_kind=problem_kind,
        values={"role": "member", **(values or {})},
        errors=errors,
        members=[MemberRow(m, u, member_blockers(actor, m, everyone)) for m, u in everyone],
        invitations=invitations,
        seat_limit=seat_limit,
        row_errors=row_errors or {},
    )


class TeamPages(Controller):
    """``/settings/team`` and the forms it posts: invite, cancel, and the owner's actions on members."""

    path = "/settings/team"
    include_in_schema = False
    exception_handlers = PAGE_ERRORS

    @get("/", name="dashboard:settings-team")
    async def show(
        self,
        request: Request[Any, Any, Any],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
        notice: Annotated[str | None, Parameter(required=False)] = None,
    ) -> Template:
        """Members, their actions (disabled with the reason when not allowed) and invitations."""
        return await team_page(request, actor, db_session, kernel, notice=NOTICES.get(notice or ""))

    @post("/invitations", opt=ADMIN)
    async def invite(
        self, request: Request[Any, Any, Any], actor: CurrentActor, db_session: DbSession, kernel: KernelState
    ) -> Template | Redirect:
        """Invite by email and role (admins; the plan's seats count pending invitations); one per form."""
        actor.require("admin", "invite members")
        values = await form_values(request, ("email", "role", "idempotency_key"))
        errors = field_problems(schemas.InvitationIn, {k: values[k] for k in ("email", "role")})
        if "role" in errors or values["role"] not in ROLES:
            errors["role"] = CHOOSE_ROLE
        if errors:
            return await team_page(
                request, actor, db_session, kernel, status_code=400, values=values, errors=errors
            )
        data = build(schemas.InvitationIn, values)
        tokens: list[str] = []  # the raw token of an invitation made now; a replay makes none

        async def create() -> schemas.InvitationOut:
            await check_limit_for(
                kernel,
                actor.organization,
                "members",
                await team.seats_used(db_session, actor.organization_id),
            )
            invitation, token = await team.invite(db_session, actor, data)
            tokens.append(token)
            return team.invitation_out(invitation)

        problem, kind, status, field_errors = None, "error", 400, {}
        try:
            _, out = await IdempotentCreate(values["idempotency_key"] or None).run(
                db_session,
                actor.organization_id,
                request,
                data,
                create=create,
                replay=lambda body: msgspec.convert(body, schemas.InvitationOut),
            )
            if tokens:
                await team.send_invitation(kernel, actor, out, tokens[0])
            return redirect("/settings/team?notice=invited")
        except IdempotencyKeyInFlight:  # the first submit is still sending it
            await db_session.rollback()
            return redirect("/settings/team")
        except IdempotencyKeyReused:
            problem = "This form was sent already: try again"
        except LimitExceeded as exc:
            problem, kind, status = exc.message, "upgrade", exc.status_code
        except HTTPException as exc:  # already a member or invited (409), the mail failed (502)
            if exc.status_code not in (400, 409, 502):
                raise
            status = exc.status_code
            if exc.status_code == 409:
                field_errors = {"email": exc.detail}
            else:
                field_errors, problem = api_errors(exc, ("email", "role"))
        await db_session.rollback()
        return await team_page(
            request,
            actor,
            db_session,
            kernel,
            status_code=status,
            values=fresh_key(values) if problem else values,
            errors=field_errors,
            problem=problem,
            problem_kind=kind,
        )

    @post("/invitations/{invitation_id:str}/cancel", opt=ADMIN)
    async def cancel_invitation(
        self, invitation_id: FromPath[str], actor: CurrentActor, db_session: DbSession
    ) -> Redirect:
        """Cancel a pending invitation (admins); its link stops working at once."""
        actor.require("admin", "cancel invitations")
        invitation = await db_session.scalar(
            select(Invitation).where(
                Invitation.id == invitation_id, Invitation.organization_id == actor.organization_id
            )
        )
        if invitation is None:
            raise NotFoundException("No such invitation")
        if invitation.accepted_at is None and invitation.cancelled_at is None:
            invitation.cancelled_at = utcnow()
        return redirect("/settings/team?notice=cancelled")

    @post("/members/{membership_id:str}/role", opt=OWNER)
    async def change_role(
        self,
        request: Request[Any, Any, Any],
        membership_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
    ) -> Template | Redirect:
        """Make a member an admin or a plain member (owner); a bad choice shows on that member's row."""
        await team.membership_of(db_session, actor, membership_id)
        role = (await form_values(request, ("role",)))["role"]
        if role not in ROLES:
            return await team_page(
                request,
                actor,
                db_session,
                kernel,
                status_code=400,
                row_errors={membership_id: CHOOSE_ROLE},
            )
        await team.set_role(db_session, actor, membership_id, role)
        return redirect("/settings/team?notice=role")

    @post("/members/{membership_id:str}/suspend", opt=OWNER)
    async def suspend(
        self, membership_id: FromPath[str], actor: CurrentActor, db_session: DbSession
    ) -> Redirect:
        """Block a member's access to the organization until activated (owner)."""
        await team.set_status(db_session, actor, membership_id, "suspended")
        return redirect("/settings/team?notice=suspended")

    @post("/members/{membership_id:str}/activate", opt=OWNER)
    async def activate(
        self, membership_id: FromPath[str], actor: CurrentActor, db_session: DbSession
    ) -> Redirect:
        """Restore a suspended member (owner)."""
        await team.set_status(db_session, actor, membership_id, "active")
        return redirect("/settings/team?notice=activated")

    @post("/members/{membership_id:str}/remove", opt=OWNER)
    async def remove(
        self, membership_id: FromPath[str], actor: CurrentActor, db_session: DbSession, kernel: KernelState
    ) -> Redirect:
        """Remove a member (owner); the removal rules refuse it with 403 and their reason."""
        await team.remove(db_session, actor, membership_id, kernel.plans.default_plan)
        return redirect("/settings/team?notice=removed")

    @post("/members/{membership_id:str}/transfer", opt=OWNER)
    async def transfer(
        self,
        request: Request[Any, Any, Any],
        membership_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
    ) -> Template | Redirect:
        """Make another active member the owner (owner); you become an admin."""
        try:
            await team.transfer_ownership(db_session, actor, membership_id)
        except HTTPException as exc:
            if exc.status_code != 400:
                raise
            await db_session.rollback()
            _, problem = api_errors(exc, ("-",))
            return await team_page(request, actor, db_session, kernel, status_code=400, problem=problem)
        return redirect("/settings/team?notice=transferred")
