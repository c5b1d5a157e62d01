"""Settings (organization, plan and usage, your account) and the API keys page."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template
from sqlalchemy import select

from segmently.dashboard.errors import PAGE_ERRORS
from segmently.dashboard.frame import page
from segmently.db.models import Site
from segmently.domain.accounts import team
from segmently.domain.sites.services import count_sites
from segmently.http.deps import CurrentActor, DbSession, KernelState
from segmently.tiers import usage
from segmently.tiers.guards import plan_of


class SettingsPages(Controller):
    """``/settings`` and ``/api-keys``."""

    path = "/"
    include_in_schema = False
    exception_handlers = PAGE_ERRORS

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
