"""Experiment results and the cross-site analytics table."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template

from segmently.dashboard.errors import PAGE_ERRORS
from segmently.dashboard.frame import page
from segmently.http.deps import CurrentActor, DbSession, KernelState


class ResultsPages(Controller):
    """``/analytics`` (and, to come, each experiment's results)."""

    path = "/"
    include_in_schema = False
    exception_handlers = PAGE_ERRORS

    @get("/analytics", name="dashboard:analytics")
    async def analytics(
        self, request: Request[Any, Any, Any], actor: CurrentActor, db_session: DbSession, kernel: KernelState
    ) -> Template:
        """Where experiment results will be; says so until those pages exist."""
        return await page(request, "analytics.html", actor, db_session, kernel, "analytics")
