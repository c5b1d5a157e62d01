"""Settings in five tabs (Profile, Security, Team & permissions, Notifications, Billing).

This module renders every tab (:func:`settings_page`) and holds the routes of Profile, Security,
Notifications and Billing; Team & permissions is in ``team_pages``, the API keys page in
``key_pages``. Every post runs the services of the JSON API (``domain/accounts``) with the API's
role rules, plan gates and messages; creates (invitations, management keys) go through
``IdempotentCreate`` with a hidden key (:func:`fresh_key`), so a double submit makes one object.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.exceptions import HTTPException
from litestar.params import Parameter
from litestar.response import Redirect, Template

from segmently.dashboard.errors import PAGE_ERRORS
from segmently.dashboard.forms import api_errors, build, field_problems, form_values
from segmently.dashboard.frame import Link, navigation, page, redirect, signed_in, static_url
from segmently.domain.accounts import schemas, services, team
from segmently.domain.accounts.auth import ROLE_RANK, Actor
from segmently.domain.alerts.mails import Preferences, preferences_of, save_preferences
from segmently.domain.sites.services import count_sites
from segmently.http.access import ADMIN
from segmently.http.deps import CurrentActor, DbSession, KernelState
from segmently.kernel import Kernel
from segmently.tiers import usage
from segmently.tiers.guards import plan_of

TABS: tuple[tuple[str, str], ...] = (
    ("profile", "Profile"),
    ("security", "Security"),
    ("team", "Team & permissions"),
    ("notifications", "Notifications"),
    ("billing", "Billing"),
)
OWN_TABS = tuple(key for key, _ in TABS if key != "team")  # the tabs this module's routes show
NOTICES = {
    "profile": "Profile saved.",
    "organization": "Organization renamed.",
    "password": "Password changed. Every other session has ended; this one stays signed in.",
    "notifications": "Notification settings saved.",
}
NOTIFICATION_CHOICES = ("email_enabled", "experiment_results", "security_alerts")


def billing_link(nav: list[Link]) -> Link | None:
    """The billing plugin's page, when a plugin put one in this organization's navigation."""
    return next(
        (link for link in nav if link.key.startswith("plugin:") and "billing" in link.href.lower()), None
    )


def fresh_key(values: dict[str, str]) -> dict[str, str]:
    """The form values with a new ``idempotency_key`` for the next create."""
    return {**values, "idempotency_key": uuid.uuid4().hex}


async def settings_page(
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
    **tab_context: Any,
) -> Template:
    """``settings.html`` showing ``tab``, with the usage badges and ``tab_context`` for its template.

    Args:
        request: The request being answered.
        actor: The signed-in user.
        db_session: The request's session.
        kernel: The kernel (plans, settings, plugins).
        tab: A key of :data:`TABS`.
        status_code: 400, 402, 409… when the page answers a refused form.
        notice: The green line after a done action.
        problem: A message that belongs to no field; ``problem_kind`` "upgrade" adds the plan link.
        problem_kind: "error" or "upgrade".
        values: What the form shows (what was typed, after a refusal).
        errors: Field errors by field name.
        tab_context: What the tab's own template needs besides (the members, invitations…).
    """
    user = actor.require_user()
    plan = await plan_of(kernel, actor.organization)
    badges = usage(
        kernel.plans,
        plan,
        {
            "sites": await count_sites(db_session, actor.organization_id),
            "members": await team.seats_used(db_session, actor.organization_id),
        },
    )
    defaults = (
        {"name": user.name, "email": user.email, "org_name": actor.organization.name}
        if tab == "profile"
        else {}
    )
    form = {**defaults, **(values or {})}
    form.setdefault("idempotency_key", uuid.uuid4().hex)
    if tab == "billing":
        tab_context["billing"] = billing_link(await navigation(kernel, actor, plan))
    if tab == "notifications":
        tab_context["preferences"] = await preferences_of(db_session, user.id)
    return await page(
        request,
        "settings.html",
        actor,
        db_session,
        kernel,
        "settings",
        status_code=status_code,
        tabs=TABS,
        tab=tab,
        badges=badges,
        notice=notice,
        problem=problem,
        problem_kind=problem_kind,
        values=form,
        errors=errors or {},
        is_admin=ROLE_RANK[actor.role] >= ROLE_RANK["admin"],
        password_min_length=kernel.settings.password_min_length,
        static_css=static_url("settings.css"),
        **tab_context,
    )


class SettingsPages(Controller):
    """``/settings/{tab}`` for every tab but Team & permissions, and the forms of Profile and Security."""

    path = "/settings"
    include_in_schema = False
    exception_handlers = PAGE_ERRORS

    @get(["/", *(f"/{key}" for key in OWN_TABS)], name="dashboard:settings")
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
        tab = tab if tab in OWN_TABS else "profile"
        return await settings_page(request, actor, db_session, kernel, tab, notice=NOTICES.get(notice or ""))

    @post("/profile")
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
                    return await settings_page(
                        request,
                        actor,
                        db_session,
                        kernel,
                        "profile",
                        status_code=400,
                        values=values,
                        problem=problem,
                    )
        return await settings_page(
            request, actor, db_session, kernel, "profile", status_code=400, values=values, errors=errors
        )

    @post("/organization", opt=ADMIN)
    async def rename_organization(
        self, request: Request[Any, Any, Any], actor: CurrentActor, db_session: DbSession, kernel: KernelState
    ) -> Template | Redirect:
        """Rename the organization (admins, like ``PATCH /api/v1/organization``)."""
        actor.require("admin", "rename the organization")
        values = await form_values(request, ("org_name",))
        problems = field_problems(schemas.OrganizationIn, {"name": values["org_name"].strip()})
        errors = {"org_name": problems["name"]} if problems else {}
        if errors:
            return await settings_page(
                request, actor, db_session, kernel, "profile", status_code=400, values=values, errors=errors
            )
        actor.organization.name = values["org_name"].strip()
        db_session.add(actor.organization)
        await db_session.flush()
        return redirect("/settings/profile?notice=organization")

    @post("/password")
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
        return await settings_page(
            request, actor, db_session, kernel, "security", status_code=400, errors=errors
        )

    @post("/notifications")
    async def save_notifications(
        self, request: Request[Any, Any, Any], actor: CurrentActor, db_session: DbSession
    ) -> Redirect:
        """Your own notification choices: a ticked box is on, an unticked one off (no JavaScript needed)."""
        user = actor.require_user()
        form = await request.form()
        await save_preferences(
            db_session, user.id, Preferences(**{name: name in form for name in NOTIFICATION_CHOICES})
        )
        return redirect("/settings/notifications?notice=notifications")
