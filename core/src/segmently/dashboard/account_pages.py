"""Pages a visitor reaches signed out: sign-in, sign-up, password reset, invitation links.

They call the services the JSON API calls (``domain/accounts``), under the same rate limits,
and set the session cookie that ``domain/accounts/auth.py`` reads.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.background_tasks import BackgroundTask
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.params import FromPath, Parameter, QueryParameter
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from segmently.dashboard.errors import PAGE_ERRORS
from segmently.dashboard.forms import api_errors, build, field_problems, form_values
from segmently.dashboard.frame import HOME, login_url, redirect, render, safe_next, signed_in
from segmently.db.models import Invitation, Organization
from segmently.domain.accounts import schemas, services, team
from segmently.domain.accounts.auth import Actor, authenticate
from segmently.domain.accounts.controllers import default_plan
from segmently.domain.accounts.reset import (
    REQUESTED_DETAIL,
    PasswordResetConfirmIn,
    complete_reset,
    issue_reset,
    reset_url,
    send_reset_mail,
)
from segmently.http.access import PUBLIC
from segmently.http.deps import DbSession, KernelState
from segmently.http.protection import AppRateLimits, rate_limit

NextParam = Annotated[str | None, QueryParameter(name="next", required=False)]
JOINED = "/sites?notice=joined"


async def signed_in_actor(request: Request[Any, Any, Any], session: AsyncSession) -> Actor | None:
    """The caller when their session cookie is valid, else None (these pages serve both)."""
    if not request.cookies.get("segmently_session") and not request.headers.get("authorization"):
        return None
    try:
        return await authenticate(request, session)
    except (NotAuthorizedException, PermissionDeniedException):
        return None


def _invite(invitation: Invitation, org: Organization) -> dict[str, str]:
    """What the invitation sign-up form shows (read before a rollback expires the rows)."""
    return {"email": invitation.email, "role": invitation.role, "organization": org.name}


class AccountPages(Controller):
    """Sign-in, sign-up, password reset and invitation acceptance."""

    path = "/"
    opt = PUBLIC
    include_in_schema = False
    exception_handlers = PAGE_ERRORS

    @get("/", name="dashboard:home")
    async def home(self) -> Redirect:
        """The dashboard's front door: the Sites page (which asks anonymous visitors to sign in)."""
        return redirect(HOME)

    @get("/login", name="dashboard:login")
    async def login_form(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        next_: NextParam = None,
        email: Annotated[str | None, Parameter(required=False)] = None,
    ) -> Template | Redirect:
        """The sign-in form; a signed-in visitor goes straight on."""
        if await signed_in_actor(request, db_session) is not None:
            return redirect(safe_next(next_))
        return render(
            request,
            "login.html",
            next=safe_next(next_),
            values={"email": email or ""},
            errors={},
            problem=None,
        )

    @post("/login", middleware=[rate_limit("login")])
    async def login(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        kernel: KernelState,
        rate_limits: AppRateLimits,
    ) -> Template | Redirect:
        """Check the credentials, set the session cookie and go to ``next``."""
        values = await form_values(request, ("email", "password", "next"))
        target = safe_next(values.pop("next"))
        errors = {k: "is required" for k, v in values.items() if not v}

        def again(problem: str | None = None, status: int = 400) -> Template:
            return render(
                request,
                "login.html",
                status_code=status,
                next=target,
                values={"email": values["email"]},
                errors=errors,
                problem=problem,
            )

        if errors:
            return again()
        await rate_limits.hit("login_account", services.normalise_email(values["email"]))
        try:
            user = await services.login(
                db_session, values["email"], values["password"], rounds=kernel.settings.bcrypt_rounds
            )
        except (NotAuthorizedException, PermissionDeniedException) as exc:
            return again(exc.detail, exc.status_code)
        orgs = await services.memberships(db_session, user.id)
        if not orgs:
            return again("You do not belong to any organization", 403)
        if user.current_organization_id not in {org.id for org, _ in orgs}:
            user.current_organization_id = orgs[0][0].id
        return signed_in(redirect(target), kernel, services.token_for(kernel.settings, user))

    @get("/signup", name="dashboard:signup")
    async def signup_form(
        self, request: Request[Any, Any, Any], db_session: DbSession
    ) -> Template | Redirect:
        """The sign-up form: name, email, password, organization."""
        if await signed_in_actor(request, db_session) is not None:
            return redirect(HOME)
        return render(request, "signup.html", values={}, errors={}, problem=None)

    @post("/signup", middleware=[rate_limit("signup")])
    async def signup(
        self, request: Request[Any, Any, Any], db_session: DbSession, kernel: KernelState
    ) -> Template | Redirect:
        """Create the account and its organization, sign in, and land on Sites."""
        values = await form_values(request, ("name", "email", "password", "organization"))
        errors = field_problems(schemas.SignupIn, values)
        if not errors:
            try:
                services.check_password(kernel.settings, values["password"])
                data = build(schemas.SignupIn, values)
                user, _ = await services.signup(db_session, kernel.settings, data, await default_plan(kernel))
            except services.Conflict as exc:
                errors["email"] = exc.detail
            except HTTPException as exc:
                errors, problem = api_errors(exc)
                if problem:
                    errors["email"] = problem
            else:
                return signed_in(redirect(HOME), kernel, services.token_for(kernel.settings, user))
        await db_session.rollback()
        values.pop("password")
        return render(request, "signup.html", status_code=400, values=values, errors=errors, problem=None)

    @get("/forgot-password", name="dashboard:forgot-password")
    async def forgot_form(self, request: Request[Any, Any, Any]) -> Template:
        """Ask for a reset link by email."""
        return render(request, "forgot.html", values={}, errors={}, sent=None)

    @post("/forgot-password", middleware=[rate_limit("password_reset")])
    async def forgot(
        self, request: Request[Any, Any, Any], db_session: DbSession, kernel: KernelState
    ) -> Template:
        """Mail a reset link if an active account uses the address; the answer is the same either way."""
        values = await form_values(request, ("email",))
        try:
            found = await issue_reset(db_session, values["email"])
        except HTTPException as exc:
            errors, _ = api_errors(exc)
            return render(request, "forgot.html", status_code=400, values=values, errors=errors, sent=None)
        mail = None
        if found is not None:
            user, token = found
            mail = BackgroundTask(
                send_reset_mail, kernel.mailer, user.email, reset_url(kernel.settings, token)
            )
        page = render(request, "forgot.html", values=values, errors={}, sent=REQUESTED_DETAIL)
        page.background = mail
        return page

    @get("/reset-password", name="dashboard:reset-password")
    async def reset_form(
        self, request: Request[Any, Any, Any], token: Annotated[str, Parameter(required=False)] = ""
    ) -> Template:
        """Choose a new password (the token comes from the mail's link)."""
        return render(request, "reset.html", token=token, errors={}, problem=None)

    @post("/reset-password", middleware=[rate_limit("password_reset")])
    async def reset(
        self, request: Request[Any, Any, Any], db_session: DbSession, kernel: KernelState
    ) -> Template | Redirect:
        """Set the new password, end every other session, and sign in."""
        values = await form_values(request, ("token", "new_password"))
        errors = field_problems(PasswordResetConfirmIn, values)
        problem = errors.pop("token", None)
        if not errors and problem is None:
            try:
                token = await complete_reset(
                    db_session, kernel.settings, build(PasswordResetConfirmIn, values)
                )
            except HTTPException as exc:
                errors, problem = api_errors(exc)
                problem = errors.pop("token", problem)
            else:
                return signed_in(redirect(HOME), kernel, token)
        await db_session.rollback()
        return render(
            request, "reset.html", status_code=400, token=values["token"], errors=errors, problem=problem
        )

    @get("/invitations/{token:str}", name="dashboard:invitation")
    async def invitation(
        self, request: Request[Any, Any, Any], token: FromPath[str], db_session: DbSession
    ) -> Template | Redirect:
        """Follow an invitation link: join at once when signed in, else sign in or sign up first."""
        try:
            invitation, org = await team.open_invitation(db_session, token)
        except HTTPException as exc:
            return render(
                request, "invitation.html", status_code=400, problem=api_errors(exc)[0].get("token")
            )
        actor = await signed_in_actor(request, db_session)
        if actor is not None and actor.user is not None:
            try:
                await team.accept(db_session, invitation, actor.user)
            except HTTPException as exc:
                await db_session.rollback()
                return render(request, "invitation.html", status_code=exc.status_code, problem=exc.detail)
            return redirect(JOINED)
        if await services.email_taken(db_session, invitation.email):
            return redirect(login_url(f"/invitations/{token}", invitation.email))
        return render(
            request, "invitation.html", problem=None, invite=_invite(invitation, org), values={}, errors={}
        )

    @post("/invitations/{token:str}", middleware=[rate_limit("signup")])
    async def join(
        self,
        request: Request[Any, Any, Any],
        token: FromPath[str],
        db_session: DbSession,
        kernel: KernelState,
    ) -> Template | Redirect:
        """Sign up as the invited address and join the organization."""
        try:
            invitation, org = await team.open_invitation(db_session, token)
        except HTTPException as exc:
            return render(
                request, "invitation.html", status_code=400, problem=api_errors(exc)[0].get("token")
            )
        invite = _invite(invitation, org)
        values = await form_values(request, ("name", "password"))
        errors = field_problems(schemas.SignupIn, values)
        if not errors:
            try:
                services.check_password(kernel.settings, values["password"])
                data = build(schemas.SignupIn, values, email=invitation.email, invitation_token=token)
                user = await services.create_user(db_session, kernel.settings, data)
                await team.accept(db_session, invitation, user)
            except HTTPException as exc:
                errors, problem = api_errors(exc)
                if problem:
                    await db_session.rollback()
                    return render(request, "invitation.html", status_code=exc.status_code, problem=problem)
            else:
                return signed_in(redirect(JOINED), kernel, services.token_for(kernel.settings, user))
        await db_session.rollback()
        values.pop("password")
        return render(
            request,
            "invitation.html",
            status_code=400,
            problem=None,
            invite=invite,
            values=values,
            errors=errors,
        )
