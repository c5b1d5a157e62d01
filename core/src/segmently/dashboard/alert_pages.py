"""The Alerts page and the bell: its badge (polled) and its panel (loaded when opened).

Mark read and mark all read answer an htmx request with the panel again plus the badge
(swapped out of band); a plain form post goes back to the Alerts page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from segmently.dashboard.errors import PAGE_ERRORS
from segmently.dashboard.frame import csrf_token, page, redirect
from segmently.db.models import Alert
from segmently.domain.accounts.auth import Actor
from segmently.domain.alerts import services
from segmently.domain.alerts.controllers import AlertOut, alert_out
from segmently.http.deps import CurrentActor, DbSession, KernelState

PANEL_SIZE = 20
PAGE_SIZE = 200


async def newest(session: AsyncSession, organization_id: str, limit: int) -> Sequence[AlertOut]:
    """The organization's alerts, newest first, as the API shows them."""
    rows = await session.scalars(
        select(Alert)
        .where(Alert.organization_id == organization_id)
        .order_by(Alert.created_at.desc(), Alert.id.desc())
        .limit(limit)
    )
    return [alert_out(a) for a in rows]


async def _panel(request: Request[Any, Any, Any], actor: Actor, session: AsyncSession, oob: bool) -> Template:
    return Template(
        template_name="_alert_panel.html",
        context={
            "csrf_token": csrf_token(request),
            "alerts": await newest(session, actor.organization_id, PANEL_SIZE),
            "unread": await services.unread_count(session, actor.organization_id),
            "oob": oob,
        },
    )


class AlertPages(Controller):
    """Alerts of the current organization; every member reads and marks them."""

    path = "/alerts"
    include_in_schema = False
    exception_handlers = PAGE_ERRORS

    @get("/", name="dashboard:alerts")
    async def list_alerts(
        self, request: Request[Any, Any, Any], actor: CurrentActor, db_session: DbSession, kernel: KernelState
    ) -> Template:
        """Every recent alert with its link and read state."""
        alerts = await newest(db_session, actor.organization_id, PAGE_SIZE)
        return await page(request, "alerts.html", actor, db_session, kernel, "alerts", alerts=alerts)

    @get("/panel", name="dashboard:alert-panel")
    async def panel(
        self, request: Request[Any, Any, Any], actor: CurrentActor, db_session: DbSession
    ) -> Template:
        """The bell's panel (an htmx fragment)."""
        return await _panel(request, actor, db_session, oob=False)

    @get("/badge", name="dashboard:alert-badge")
    async def badge(self, actor: CurrentActor, db_session: DbSession) -> Template:
        """The bell's unread count (an htmx fragment, polled)."""
        unread = await services.unread_count(db_session, actor.organization_id)
        return Template(template_name="_alert_badge.html", context={"unread": unread, "oob": False})

    @post("/{alert_id:str}/read")
    async def mark_read(
        self,
        request: Request[Any, Any, Any],
        alert_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
    ) -> Template | Redirect:
        """Mark one alert read (another organization's alert is 404)."""
        await services.mark_read(db_session, actor.organization_id, alert_id)
        return await self._after(request, actor, db_session)

    @post("/read-all")
    async def mark_all_read(
        self, request: Request[Any, Any, Any], actor: CurrentActor, db_session: DbSession
    ) -> Template | Redirect:
        """Mark every alert of the organization read."""
        await services.mark_all_read(db_session, actor.organization_id)
        return await self._after(request, actor, db_session)

    async def _after(
        self, request: Request[Any, Any, Any], actor: Actor, session: AsyncSession
    ) -> Template | Redirect:
        if request.headers.get("hx-request"):
            return await _panel(request, actor, session, oob=True)
        return redirect("/alerts")
