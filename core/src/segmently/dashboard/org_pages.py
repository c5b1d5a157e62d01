"""Session and organization pages: sign out, switch organization, Settings, API keys, Analytics."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy import select

from segmently.dashboard.errors import PAGE_ERRORS
from segmently.dashboard.frame import HOME, page, redirect, signed_out
from segmently.db.models import Site
from segmently.domain.accounts import services, team
from segmently.domain.sites.services import count_sites
from segmently.http.deps import CurrentActor, DbSession, KernelState
from segmently.tiers import usage
from segmently.tiers.guards import plan_of


class OrganizationPages(Controller):
    """What the header menus and the rest of the navigation lead to."""

    path = "/"
    include_in_schema = False
    exception_handlers = PAGE_ERRORS

    @post("/logout", name="dashboard:logout")
    async def logout(self, actor: CurrentActor, db_session: DbSession) -> Redirect:
        """Sign out: this and every other session of the user ends."""
        await services.logout(db_session, actor.require_user())
        return signed_out(redirect("/login"))

    @post("/organizations/{organization_id:str}/switch", name="dashboard:switch-organization")
    async def switch(
        self, organization_id: FromPath[str], actor: CurrentActor, db_session: DbSession
    ) -> Redirect:
        """Act in another of your organizations from now on (as the API's ``switchOrganization``)."""
        user = actor.require_user()
        for org, _ in await services.memberships(db_session, user.id):
            if org.id == organization_id:
                user.current_organization_id = org.id
                db_session.add(user)
                return redirect(HOME)
        raise NotFoundException("You are not a member of this organization")

    @get("/settings", name="dashboard:settings")
    async def settings(
        self, request: Request[Any, Any, Any], actor: CurrentActor, db_session: DbSession, kernel: KernelState
    ) -> Template:
        """The organization, your role, the plan and its usage badges."""
        plan = await plan_of(kernel, actor.organization)
        counts = {
            "sites": await count_sites(db_session, actor.organization_id),
            "members": await team.seats_used(db_session, actor.organization_id),
        }
        return await page(
            request,
            "settings.html",
            actor,
            db_session,
            kernel,
            "settings",
            badges=usage(kernel.plans, plan, counts),
        )

    @get("/api-keys", name="dashboard:api-keys")
    async def api_keys(
        self, request: Request[Any, Any, Any], actor: CurrentActor, db_session: DbSession, kernel: KernelState
    ) -> Template:
        """Each site's public API key (what its snippet tag carries)."""
        sites = (
            await db_session.scalars(
                select(Site).where(Site.organization_id == actor.organization_id).order_by(Site.name)
            )
        ).all()
        return await page(request, "api_keys.html", actor, db_session, kernel, "api-keys", sites=sites)

    @get("/analytics", name="dashboard:analytics")
    async def analytics(
        self, request: Request[Any, Any, Any], actor: CurrentActor, db_session: DbSession, kernel: KernelState
    ) -> Template:
        """Where experiment results will be; says so until those pages exist."""
        return await page(request, "analytics.html", actor, db_session, kernel, "analytics")
