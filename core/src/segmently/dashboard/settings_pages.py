"""Settings in five tabs (Profile, Security, Team & permissions, Notifications, Billing) and API keys.

Every post runs the services of the JSON API (``domain/accounts``: ``services``, ``team``,
``keys``) with the API's role rules, plan gates and messages; creates (invitations, management
keys) go through ``IdempotentCreate`` with a hidden key, so a double submit makes one object.
A button the user may not press is disabled and names the rule that forbids it.
"""

from __future__ import annotations

import logging
import uuid
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
from segmently.dashboard.frame import Link, navigation, page, redirect, signed_in, static_url
from segmently.db.base import utcnow
from segmently.db.models import Invitation, ManagementKey, Membership, Site, User
from segmently.domain.accounts import keys, schemas, services, team
from segmently.domain.accounts.auth import ROLE_RANK, Actor
from segmently.domain.sites.services import count_sites
from segmently.http.access import ADMIN, OWNER
from segmently.http.deps import CurrentActor, DbSession, KernelState
from segmently.http.idempotency import IdempotencyKeyInFlight, IdempotencyKeyReused, IdempotentCreate
from segmently.kernel import Kernel
from segmently.mail import MailError, invitation_mail
from segmently.tiers import API_MANAGEMENT, usage
from segmently.tiers.guards import check_limit_for, plan_of, require_feature_for
from segmently.tiers.limits import FeatureNotIncluded, LimitExceeded

log = logging.getLogger(__name__)

TABS: tuple[tuple[str, str], ...] = (
    ("profile", "Profile"),
    ("security", "Security"),
    ("team", "Team & permissions"),
    ("notifications", "Notifications"),
    ("billing", "Billing"),
)
TAB_KEYS = frozenset(key for key, _ in TABS)
NOTICES = {
    "profile": "Profile saved.",
    "organization": "Organization renamed.",
    "password": "Password changed. Every other session has ended; this one stays signed in.",
    "invited": "Invitation sent.",
    "cancelled": "Invitation cancelled: its link no longer works.",
    "role": "Role changed.",
    "suspended": "Member suspended: they cannot sign in to this organization until activated.",
    "activated": "Member activated.",
    "removed": "Member removed.",
    "transferred": "Ownership transferred: you are now an admin.",
    "revoked": "Key revoked: the Management API refuses it from the next request on.",
}
OWNER_ONLY = "Owner only"
ROLES = {"admin": "Admin", "member": "Member"}
CHOOSE_ROLE = "Choose Admin or Member"
REPLAYED_KEY = (
    "This form was sent twice: the key was created by the first submit, and its full key was shown "
    "only then. If you did not copy it, revoke it and create another."
)


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

    The same rules, in short words, as ``team.set_role``, ``set_status``, ``transfer_ownership``
    (their messages) and ``team.removal_blocker`` (its reasons), which refuse a forged post.
    """
    owner = actor.role == "owner"
    me = actor.user is not None and target.user_id == actor.user.id
    role = (
        OWNER_ONLY
        if not owner
        else "Transfer ownership to change the owner's role"
        if target.role == "owner"
        else None
    )
    status = (
        OWNER_ONLY
        if not owner
        else "You cannot suspend yourself"
        if me
        else "The owner cannot be suspended"
        if target.role == "owner"
        else None
    )
    transfer = (
        OWNER_ONLY
        if not owner
        else "You already own this organization"
        if me
        else "Only an active member can become the owner"
        if target.status != "active"
        else None
    )
    return {
        "role": role,
        "status": status,
        "remove": team.removal_blocker(actor, target, everyone),
        "transfer": transfer,
    }


def invitation_out(invitation: Invitation) -> schemas.InvitationOut:
    """A fresh invitation as the API answers it (what an idempotent replay gives back)."""
    return schemas.InvitationOut(
        id=invitation.id,
        email=invitation.email,
        role=invitation.role,
        status="pending",
        expires_at=invitation.expires_at,
        created_at=invitation.created_at,
    )


def billing_link(nav: list[Link]) -> Link | None:
    """The billing plugin's page, when a plugin put one in this organization's navigation."""
    return next(
        (link for link in nav if link.key.startswith("plugin:") and "billing" in link.href.lower()), None
    )


def fresh_key(values: dict[str, str]) -> dict[str, str]:
    """The form values with a new ``idempotency_key`` for the next create."""
    return {**values, "idempotency_key": uuid.uuid4().hex}


class SettingsPages(Controller):
    """``/settings/{tab}`` with the forms each tab posts, and ``/api-keys``."""

    path = "/"
    include_in_schema = False
    exception_handlers = PAGE_ERRORS

    # ------------------------------------------------------------------ settings ---

    async def _tab(
        self,
        request: Request[Any, Any, Any],
        actor: Actor,
        db_session: DbSession,
        kernel: Kernel,
        tab: str,
        *,
        status_code: int = 200,
        notice: str | None = None,
        problem: str | None = None,
        problem_kind: str = "error",
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        row_errors: dict[str, str] | None = None,
    ) -> Template:
        user = actor.require_user()
        plan = await plan_of(kernel, actor.organization)
        seats = await team.seats_used(db_session, actor.organization_id)
        badges = usage(
            kernel.plans,
            plan,
            {"sites": await count_sites(db_session, actor.organization_id), "members": seats},
        )
        defaults = {
            "profile": {"name": user.name, "email": user.email, "org_name": actor.organization.name},
            "team": {"role": "member"},
        }
        form = {**defaults.get(tab, {}), **(values or {})}
        form.setdefault("idempotency_key", uuid.uuid4().hex)
        context: dict[str, Any] = {
            "tabs": TABS,
            "tab": tab,
            "badges": badges,
            "notice": notice,
            "problem": problem,
            "problem_kind": problem_kind,
            "values": form,
            "errors": errors or {},
            "row_errors": row_errors or {},
            "is_admin": ROLE_RANK[actor.role] >= ROLE_RANK["admin"],
            "password_min_length": kernel.settings.password_min_length,
            "static_css": static_url("settings.css"),
        }
        if tab == "team":
            everyone = await team.members(db_session, actor.organization_id)
            context["members"] = [MemberRow(m, u, member_blockers(actor, m, everyone)) for m, u in everyone]
            context["invitations"] = (
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
            try:
                await check_limit_for(kernel, actor.organization, "members", seats)
                context["seat_limit"] = None
            except LimitExceeded as exc:
                context["seat_limit"] = exc.message
        if tab == "billing":
            context["billing"] = billing_link(await navigation(kernel, actor, plan))
        return await page(
            request,
            "settings.html",
            actor,
            db_session,
            kernel,
            "settings",
            status_code=status_code,
            **context,
        )

    @get(["/settings", *(f"/settings/{key}" for key, _ in TABS)], name="dashboard:settings")
    async def settings(
        self,
        request: Request[Any, Any, Any],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
        notice: Annotated[str | None, Parameter(required=False)] = None,
    ) -> Template:
        """One tab of the settings, by its path (``/settings`` is Profile)."""
        tab = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        tab = tab if tab in TAB_KEYS else "profile"
        return await self._tab(request, actor, db_session, kernel, tab, notice=NOTICES.get(notice or ""))

    @post("/settings/profile")
    async def save_profile(
        self, request: Request[Any, Any, Any], actor: CurrentActor, db_session: DbSession, kernel: KernelState
    ) -> Template | Redirect:
        """Change your name and email (``PATCH /api/v1/me``); an email of another account is refused."""
        user = actor.require_user()
        values = await form_values(request, ("name", "email"))
        errors = field_problems(schemas.ProfileIn, values)
        errors.update({k: "is required" for k, v in values.items() if not v.strip()})
        if not errors:
            try:
                await services.update_profile(db_session, user, build(schemas.ProfileIn, values))
                return redirect("/settings/profile?notice=profile")
            except HTTPException as exc:
                if exc.status_code not in (400, 409):
                    raise
                await db_session.rollback()
                errors, problem = api_errors(exc, ("name", "email"))
                if exc.status_code == 409:
                    errors, problem = {"email": exc.detail}, None
                if problem:
                    return await self._tab(
                        request,
                        actor,
                        db_session,
                        kernel,
                        "profile",
                        status_code=400,
                        values=values,
                        problem=problem,
                    )
        return await self._tab(
            request, actor, db_session, kernel, "profile", status_code=400, values=values, errors=errors
        )

    @post("/settings/organization", opt=ADMIN)
    async def rename_organization(
        self, request: Request[Any, Any, Any], actor: CurrentActor, db_session: DbSession, kernel: KernelState
    ) -> Template | Redirect:
        """Rename the organization (admins, like ``PATCH /api/v1/organization``)."""
        actor.require("admin", "rename the organization")
        values = await form_values(request, ("org_name",))
        problems = field_problems(schemas.OrganizationIn, {"name": values["org_name"].strip()})
        errors = {"org_name": problems["name"]} if problems else {}
        if errors:
            return await self._tab(
                request, actor, db_session, kernel, "profile", status_code=400, values=values, errors=errors
            )
        actor.organization.name = values["org_name"].strip()
        db_session.add(actor.organization)
        await db_session.flush()
        return redirect("/settings/profile?notice=organization")

    @post("/settings/password")
    async def change_password(
        self, request: Request[Any, Any, Any], actor: CurrentActor, db_session: DbSession, kernel: KernelState
    ) -> Template | Redirect:
        """A new password after the current one: every other session ends, this browser gets a new cookie."""
        user = actor.require_user()
        values = await form_values(request, ("current_password", "new_password"))
        errors = field_problems(schemas.PasswordChangeIn, values)
        if not errors:
            try:
                token = await services.change_password(
                    db_session, kernel.settings, user, build(schemas.PasswordChangeIn, values)
                )
                return signed_in(redirect("/settings/security?notice=password"), kernel, token)
            except HTTPException as exc:
                if exc.status_code != 400:
                    raise
                await db_session.rollback()
                errors, _ = api_errors(exc, ("current_password", "new_password"))
        return await self._tab(request, actor, db_session, kernel, "security", status_code=400, errors=errors)

    # ---------------------------------------------------------------------- team ---

    @post("/settings/team/invitations", opt=ADMIN)
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
            return await self._tab(
                request, actor, db_session, kernel, "team", status_code=400, values=values, errors=errors
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
            return invitation_out(invitation)

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
                await self._send_invitation(kernel, actor, out, tokens[0])
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
        return await self._tab(
            request,
            actor,
            db_session,
            kernel,
            "team",
            status_code=status,
            values=fresh_key(values) if problem else values,
            errors=field_errors,
            problem=problem,
            problem_kind=kind,
        )

    async def _send_invitation(
        self, kernel: Kernel, actor: Actor, invitation: schemas.InvitationOut, token: str
    ) -> None:
        """The invitation mail, as the API sends it; 502 (nothing saved) when it cannot be sent."""
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
            raise HTTPException(
                status_code=502, detail=f"The invitation mail could not be sent: {exc}"
            ) from exc

    @post("/settings/team/invitations/{invitation_id:str}/cancel", opt=ADMIN)
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

    @post("/settings/team/members/{membership_id:str}/role", opt=OWNER)
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
            return await self._tab(
                request,
                actor,
                db_session,
                kernel,
                "team",
                status_code=400,
                row_errors={membership_id: CHOOSE_ROLE},
            )
        await team.set_role(db_session, actor, membership_id, role)
        return redirect("/settings/team?notice=role")

    @post("/settings/team/members/{membership_id:str}/suspend", opt=OWNER)
    async def suspend(
        self, membership_id: FromPath[str], actor: CurrentActor, db_session: DbSession
    ) -> Redirect:
        """Block a member's access to the organization until activated (owner)."""
        await team.set_status(db_session, actor, membership_id, "suspended")
        return redirect("/settings/team?notice=suspended")

    @post("/settings/team/members/{membership_id:str}/activate", opt=OWNER)
    async def activate(
        self, membership_id: FromPath[str], actor: CurrentActor, db_session: DbSession
    ) -> Redirect:
        """Restore a suspended member (owner)."""
        await team.set_status(db_session, actor, membership_id, "active")
        return redirect("/settings/team?notice=activated")

    @post("/settings/team/members/{membership_id:str}/remove", opt=OWNER)
    async def remove(
        self, membership_id: FromPath[str], actor: CurrentActor, db_session: DbSession, kernel: KernelState
    ) -> Redirect:
        """Remove a member (owner); the removal rules refuse it with 403 and their reason."""
        await team.remove(db_session, actor, membership_id, kernel.plans.default_plan)
        return redirect("/settings/team?notice=removed")

    @post("/settings/team/members/{membership_id:str}/transfer", opt=OWNER)
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
            return await self._tab(
                request, actor, db_session, kernel, "team", status_code=400, problem=problem
            )
        return redirect("/settings/team?notice=transferred")

    # ------------------------------------------------------------------ API keys ---

    async def _keys(
        self,
        request: Request[Any, Any, Any],
        actor: Actor,
        db_session: DbSession,
        kernel: Kernel,
        *,
        status_code: int = 200,
        notice: str | None = None,
        problem: str | None = None,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        new_key: str | None = None,
    ) -> Template:
        sites = (
            await db_session.scalars(
                select(Site).where(Site.organization_id == actor.organization_id).order_by(Site.name)
            )
        ).all()
        is_admin = ROLE_RANK[actor.role] >= ROLE_RANK["admin"]
        listed: list[ManagementKey] = []
        if is_admin:  # the API lists keys to admins only
            listed = list(
                (
                    await db_session.scalars(
                        select(ManagementKey)
                        .where(ManagementKey.organization_id == actor.organization_id)
                        .order_by(ManagementKey.created_at.desc(), ManagementKey.id.desc())
                    )
                ).all()
            )
        active = sum(1 for key in listed if key.revoked_at is None)
        upgrade = None
        try:
            await require_feature_for(kernel, actor.organization, API_MANAGEMENT.key)
        except FeatureNotIncluded as exc:
            upgrade = exc.message
        if actor.role != "owner":
            create_blocker: str | None = (
                f"Only the owner of {actor.organization.name} can create or revoke keys."
            )
        elif active >= keys.MAX_ACTIVE_KEYS:
            create_blocker = keys.TOO_MANY
        else:
            create_blocker = None
        form = {"name": "", **(values or {})}
        form.setdefault("idempotency_key", uuid.uuid4().hex)
        response = await page(
            request,
            "api_keys.html",
            actor,
            db_session,
            kernel,
            "api-keys",
            status_code=status_code,
            sites=sites,
            keys=listed,
            active_keys=active,
            max_active=keys.MAX_ACTIVE_KEYS,
            is_admin=is_admin,
            upgrade=upgrade,
            create_blocker=create_blocker,
            notice=notice,
            problem=problem,
            values=form,
            errors=errors or {},
            new_key=new_key,
            static_css=static_url("settings.css"),
        )
        response.headers["Cache-Control"] = "no-store"  # a new key is on this page once: never keep a copy
        return response

    @get("/api-keys", name="dashboard:api-keys")
    async def api_keys(
        self,
        request: Request[Any, Any, Any],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
        notice: Annotated[str | None, Parameter(required=False)] = None,
    ) -> Template:
        """Management keys (admins see them; the owner creates and revokes) and each site's public key."""
        return await self._keys(request, actor, db_session, kernel, notice=NOTICES.get(notice or ""))

    @post("/api-keys", opt=OWNER, status_code=200)
    async def create_key(
        self, request: Request[Any, Any, Any], actor: CurrentActor, db_session: DbSession, kernel: KernelState
    ) -> Template | Redirect:
        """Create a ``seg_mgmt_`` key (owner; Enterprise); the answer shows it this once.

        The idempotency record keeps the key's name and prefix, never the key: a second submit of
        the same form creates nothing and says the key was shown to the first.
        """
        actor.require_user()
        actor.require("owner", "manage API keys")
        values = await form_values(request, ("name", "idempotency_key"))
        errors = field_problems(keys.ManagementKeyIn, {"name": values["name"]})
        if errors:
            return await self._keys(
                request, actor, db_session, kernel, status_code=400, values=values, errors=errors
            )
        data = build(keys.ManagementKeyIn, values)
        raw: list[str] = []

        async def create() -> keys.ManagementKeyOut:
            await require_feature_for(kernel, actor.organization, API_MANAGEMENT.key)
            made = await keys.issue_key(db_session, actor, data.name)
            raw.append(made.key)
            return keys.ManagementKeyOut(
                id=made.id,
                name=made.name,
                prefix=made.prefix,
                created_at=made.created_at,
                last_used_at=None,
                revoked_at=None,
            )

        try:
            await IdempotentCreate(values["idempotency_key"] or None).run(
                db_session,
                actor.organization_id,
                request,
                data,
                create=create,
                replay=lambda body: msgspec.convert(body, keys.ManagementKeyOut),
            )
        except IdempotencyKeyInFlight:
            await db_session.rollback()
            return redirect("/api-keys")
        except (IdempotencyKeyReused, FeatureNotIncluded) as exc:
            await db_session.rollback()
            problem = (
                exc.message
                if isinstance(exc, FeatureNotIncluded)
                else "This form was sent already: try again"
            )
            status = 402 if isinstance(exc, FeatureNotIncluded) else 400
            return await self._keys(
                request,
                actor,
                db_session,
                kernel,
                status_code=status,
                values=fresh_key(values),
                problem=problem,
            )
        except HTTPException as exc:  # a blank name (400), ten active keys already (409)
            if exc.status_code not in (400, 409):
                raise
            await db_session.rollback()
            errors, unplaced = api_errors(exc, ("name",))
            return await self._keys(
                request,
                actor,
                db_session,
                kernel,
                status_code=exc.status_code,
                values=values,
                errors=errors,
                problem=unplaced,
            )
        if not raw:
            return await self._keys(
                request, actor, db_session, kernel, values=fresh_key({}), problem=REPLAYED_KEY
            )
        return await self._keys(request, actor, db_session, kernel, values=fresh_key({}), new_key=raw[0])

    @post("/api-keys/{key_id:str}/revoke", opt=OWNER)
    async def revoke_key(self, key_id: FromPath[str], actor: CurrentActor, db_session: DbSession) -> Redirect:
        """Revoke a key (owner; any plan); the Management API refuses it from the next request on."""
        actor.require_user()
        actor.require("owner", "manage API keys")
        await keys.revoke(db_session, await keys.get_key(db_session, actor, key_id))
        return redirect("/api-keys?notice=revoked")
