"""``/api/v1/auth/*`` and ``/api/v1/me``."""

from __future__ import annotations

from litestar import Controller, Response, get, patch, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from segmently.domain.accounts import schemas, services, team
from segmently.domain.accounts.auth import Actor
from segmently.http.access import PUBLIC
from segmently.http.deps import CurrentActor, DbSession, KernelState
from segmently.http.protection import AppRateLimits, rate_limit
from segmently.kernel import Kernel


async def default_plan(kernel: Kernel) -> str:
    """The plan new organizations start on (the plans file may change it)."""
    return kernel.plans.default_plan


class AuthController(Controller):
    """Sign-up, sign-in and sign-out."""

    path = "/api/v1/auth"
    tags = ["auth"]

    @post(
        "/signup",
        operation_id="signup",
        status_code=HTTP_201_CREATED,
        middleware=[rate_limit("signup")],
        opt=PUBLIC,
    )
    async def signup(
        self, data: JSONBody[schemas.SignupIn], db_session: DbSession, kernel: KernelState
    ) -> schemas.AuthOut:
        """Create an account and its organization; returns a token (409 if the email is taken).

        With ``invitation_token`` the account joins the inviting organization instead.
        """
        if data.invitation_token:
            invitation, org = await team.open_invitation(db_session, data.invitation_token)
            user = await services.create_user(db_session, kernel.settings, data)
            membership = await team.accept(db_session, invitation, user)
            role = membership.role
        else:
            user, org = await services.signup(db_session, kernel.settings, data, await default_plan(kernel))
            role = "owner"
        return schemas.AuthOut(
            token=services.token_for(kernel.settings, user),
            user=services.user_out(user),
            organization=services.organization_out(org, role),
        )

    @post("/login", operation_id="login", status_code=200, middleware=[rate_limit("login")], opt=PUBLIC)
    async def login(
        self,
        data: JSONBody[schemas.LoginIn],
        db_session: DbSession,
        kernel: KernelState,
        rate_limits: AppRateLimits,
    ) -> schemas.AuthOut:
        """Exchange email and password for a 30-day token (limited per address as well as per IP)."""
        await rate_limits.hit("login_account", services.normalise_email(data.email))
        user = await services.login(
            db_session, data.email, data.password, rounds=kernel.settings.bcrypt_rounds
        )
        orgs = await services.memberships(db_session, user.id)
        current = next(
            (o for o in orgs if o[0].id == user.current_organization_id), orgs[0] if orgs else None
        )
        if current is None:
            from litestar.exceptions import PermissionDeniedException

            raise PermissionDeniedException("You do not belong to any organization")
        return schemas.AuthOut(
            token=services.token_for(kernel.settings, user),
            user=services.user_out(user),
            organization=services.organization_out(current[0], current[1]),
        )

    @post("/logout", operation_id="logout", status_code=HTTP_204_NO_CONTENT)
    async def logout(self, actor: CurrentActor, db_session: DbSession) -> None:
        """Sign out: every token issued to this user so far stops working."""
        await services.logout(db_session, actor.require_user())


class MeController(Controller):
    """The signed-in user's profile."""

    path = "/api/v1/me"
    tags = ["auth"]

    @get("/", operation_id="getMe")
    async def me(self, actor: CurrentActor, db_session: DbSession) -> schemas.MeOut:
        """The user, the organization this request acts in, and every organization they belong to."""
        return await _me(actor, db_session)

    @patch("/", operation_id="updateMe")
    async def update(
        self, data: JSONBody[schemas.ProfileIn], actor: CurrentActor, db_session: DbSession
    ) -> schemas.MeOut:
        """Change name or email."""
        await services.update_profile(db_session, actor.require_user(), data)
        return await _me(actor, db_session)

    @post("/password", operation_id="changePassword", status_code=200)
    async def change_password(
        self,
        data: JSONBody[schemas.PasswordChangeIn],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
    ) -> Response[dict[str, str]]:
        """Set a new password (the current one is required); returns a fresh token."""
        token = await services.change_password(db_session, kernel.settings, actor.require_user(), data)
        return Response({"token": token})


async def _me(actor: Actor, db_session: DbSession) -> schemas.MeOut:
    user = actor.require_user()
    orgs = await services.memberships(db_session, user.id)
    return schemas.MeOut(
        user=services.user_out(user),
        organization=services.organization_out(actor.organization, actor.role),
        organizations=[services.organization_out(o, r) for o, r in orgs],
    )
