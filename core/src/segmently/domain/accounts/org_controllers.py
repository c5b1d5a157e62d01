"""``/api/v1/organizations``, ``/api/v1/organization`` (team) and ``/api/v1/invitations``."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy import select

from segmently.db.base import utcnow
from segmently.db.models import Invitation, Membership, Organization, User
from segmently.domain.accounts import schemas, services, team
from segmently.domain.accounts.auth import Actor
from segmently.domain.sites.services import count_sites
from segmently.http.access import ADMIN, OWNER, PUBLIC
from segmently.http.deps import CurrentActor, DbSession, KernelState
from segmently.kernel import Kernel
from segmently.tiers import usage
from segmently.tiers.guards import check_limit_for, plan_of, require_feature_for


class OrganizationsController(Controller):
    """The organizations a user belongs to; Enterprise users can create more and switch."""

    path = "/api/v1/organizations"
    tags = ["organizations"]

    @get("/", operation_id="listOrganizations")
    async def list_organizations(
        self, actor: CurrentActor, db_session: DbSession
    ) -> list[schemas.OrganizationOut]:
        """Every organization the signed-in user belongs to, with their role."""
        user = actor.require_user()
        return [services.organization_out(o, r) for o, r in await services.memberships(db_session, user.id)]

    @post("/", operation_id="createOrganization", status_code=HTTP_201_CREATED)
    async def create_organization(
        self,
        data: JSONBody[schemas.OrganizationIn],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
    ) -> schemas.OrganizationOut:
        """Create another organization you own and switch to it (Enterprise)."""
        user = actor.require_user()
        await require_feature_for(kernel, actor.organization, "orgs.multiple")
        org = Organization(name=data.name.strip(), plan=kernel.plans.default_plan)
        db_session.add(org)
        await db_session.flush()
        db_session.add(Membership(organization_id=org.id, user_id=user.id, role="owner"))
        user.current_organization_id = org.id
        db_session.add(user)
        await db_session.flush()
        return services.organization_out(org, "owner")

    @post("/{organization_id:str}/switch", operation_id="switchOrganization", status_code=200)
    async def switch(
        self, organization_id: FromPath[str], actor: CurrentActor, db_session: DbSession
    ) -> schemas.OrganizationOut:
        """Make another of your organizations the current one for later requests."""
        user = actor.require_user()
        for org, role in await services.memberships(db_session, user.id):
            if org.id == organization_id:
                user.current_organization_id = org.id
                db_session.add(user)
                return services.organization_out(org, role)
        raise NotFoundException("You are not a member of this organization")


async def _detail(kernel: Kernel, actor: Actor, db_session: DbSession) -> schemas.OrganizationDetail:
    plan = await plan_of(kernel, actor.organization)
    counts = {
        "sites": await count_sites(db_session, actor.organization_id),
        "members": await team.seats_used(db_session, actor.organization_id),
    }
    badges = usage(kernel.plans, plan, counts)
    return schemas.OrganizationDetail(
        organization=services.organization_out(actor.organization, actor.role),
        plan=plan,
        usage={
            k: schemas.UsageOut(used=u.used, allowed=u.allowed, label=u.label, at_limit=u.at_limit)
            for k, u in badges.items()
        },
    )


class TeamController(Controller):
    """The current organization: plan and usage, members, invitations, ownership."""

    path = "/api/v1/organization"
    tags = ["team"]

    @get("/", operation_id="getOrganization")
    async def get_organization(
        self, actor: CurrentActor, db_session: DbSession, kernel: KernelState
    ) -> schemas.OrganizationDetail:
        """The organization this request acts in, its plan and usage badges ("1/1 sites")."""
        return await _detail(kernel, actor, db_session)

    @patch("/", operation_id="renameOrganization", opt=ADMIN)
    async def rename(
        self,
        data: JSONBody[schemas.OrganizationIn],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
    ) -> schemas.OrganizationDetail:
        """Rename the organization (admins)."""
        actor.require("admin", "rename the organization")
        actor.organization.name = data.name.strip()
        db_session.add(actor.organization)
        await db_session.flush()
        return await _detail(kernel, actor, db_session)

    @get("/members", operation_id="listMembers")
    async def list_members(self, actor: CurrentActor, db_session: DbSession) -> list[schemas.MemberOut]:
        """Members with role, status and, for each, why they cannot be removed (if so)."""
        everyone = await team.members(db_session, actor.organization_id)
        out = []
        for membership, user in everyone:
            reason = team.removal_blocker(actor, membership, everyone)
            out.append(
                schemas.MemberOut(
                    id=membership.id,
                    user_id=user.id,
                    email=user.email,
                    name=user.name,
                    role=membership.role,
                    status=membership.status,
                    joined_at=membership.created_at,
                    removable=reason is None,
                    remove_reason=reason,
                )
            )
        return out

    @patch("/members/{membership_id:str}", operation_id="changeMemberRole", opt=OWNER)
    async def change_role(
        self,
        membership_id: FromPath[str],
        data: JSONBody[schemas.RoleIn],
        actor: CurrentActor,
        db_session: DbSession,
    ) -> None:
        """Make a member an admin or a plain member (owner)."""
        await team.set_role(db_session, actor, membership_id, data.role)

    @post(
        "/members/{membership_id:str}/suspend",
        operation_id="suspendMember",
        opt=OWNER,
        status_code=HTTP_204_NO_CONTENT,
    )
    async def suspend(self, membership_id: FromPath[str], actor: CurrentActor, db_session: DbSession) -> None:
        """Block a member's access until activated (owner)."""
        await team.set_status(db_session, actor, membership_id, "suspended")

    @post(
        "/members/{membership_id:str}/activate",
        operation_id="activateMember",
        opt=OWNER,
        status_code=HTTP_204_NO_CONTENT,
    )
    async def activate(
        self, membership_id: FromPath[str], actor: CurrentActor, db_session: DbSession
    ) -> None:
        """Restore a suspended member (owner)."""
        await team.set_status(db_session, actor, membership_id, "active")

    @delete(
        "/members/{membership_id:str}",
        operation_id="removeMember",
        opt=OWNER,
        status_code=HTTP_204_NO_CONTENT,
    )
    async def remove(
        self, membership_id: FromPath[str], actor: CurrentActor, db_session: DbSession, kernel: KernelState
    ) -> None:
        """Remove a member (owner; not yourself, not the last active member or admin)."""
        await team.remove(db_session, actor, membership_id, kernel.plans.default_plan)

    @post("/transfer-ownership", operation_id="transferOwnership", opt=OWNER, status_code=HTTP_204_NO_CONTENT)
    async def transfer(
        self, data: JSONBody[schemas.TransferIn], actor: CurrentActor, db_session: DbSession
    ) -> None:
        """Make another active member the owner; you become an admin."""
        await team.transfer_ownership(db_session, actor, data.membership_id)

    @get("/invitations", operation_id="listInvitations")
    async def list_invitations(
        self, actor: CurrentActor, db_session: DbSession
    ) -> list[schemas.InvitationOut]:
        """Invitations of the organization, newest first."""
        rows = await db_session.scalars(
            select(Invitation)
            .where(Invitation.organization_id == actor.organization_id)
            .order_by(Invitation.created_at.desc())
        )
        return [team.invitation_out(i) for i in rows]

    @post("/invitations", operation_id="inviteMember", opt=ADMIN, status_code=HTTP_201_CREATED)
    async def invite(
        self,
        data: JSONBody[schemas.InvitationIn],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
    ) -> schemas.InvitationOut:
        """Invite someone by email (admins; the plan's member limit counts pending invitations)."""
        actor.require("admin", "invite members")
        await check_limit_for(
            kernel, actor.organization, "members", await team.seats_used(db_session, actor.organization_id)
        )
        invitation, token = await team.invite(db_session, actor, data)
        out = team.invitation_out(invitation)
        await team.send_invitation(kernel, actor, out, token)  # a 502 here saves nothing
        return out

    @delete(
        "/invitations/{invitation_id:str}",
        operation_id="cancelInvitation",
        opt=ADMIN,
        status_code=HTTP_204_NO_CONTENT,
    )
    async def cancel(self, invitation_id: FromPath[str], actor: CurrentActor, db_session: DbSession) -> None:
        """Cancel a pending invitation; its link stops working at once (admins)."""
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


class InvitationController(Controller):
    """Following an invitation link."""

    path = "/api/v1/invitations"
    tags = ["team"]

    @get("/{token:str}", operation_id="previewInvitation", opt=PUBLIC)
    async def preview(self, token: FromPath[str], db_session: DbSession) -> schemas.InvitationPreview:
        """Who invites whom, and whether that email has an account (sign in) or not (sign up)."""
        invitation, org = await team.open_invitation(db_session, token)
        inviter = await db_session.get(User, invitation.invited_by) if invitation.invited_by else None
        return schemas.InvitationPreview(
            organization_name=org.name,
            email=invitation.email,
            role=invitation.role,
            inviter_name=inviter.name if inviter else None,
            account_exists=await services.email_taken(db_session, invitation.email),
            expires_at=invitation.expires_at,
        )

    @post("/{token:str}/accept", operation_id="acceptInvitation", status_code=200)
    async def accept(
        self, token: FromPath[str], actor: CurrentActor, db_session: DbSession
    ) -> schemas.OrganizationOut:
        """Join the organization as the signed-in user (whose email the invitation names)."""
        user = actor.require_user()
        invitation, org = await team.open_invitation(db_session, token)
        membership = await team.accept(db_session, invitation, user)
        return services.organization_out(org, membership.role)
