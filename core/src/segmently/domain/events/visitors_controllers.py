"""``/api/v1/projects/{id}/visitors/{visitor_id}``: a visitor's data rights (export, deletion)."""

from __future__ import annotations

from litestar import Controller, delete, get
from litestar.params import FromPath

from segmently.domain.events import visitors
from segmently.domain.sites.services import get_site
from segmently.http.access import ADMIN
from segmently.http.deps import CurrentActor, DbSession, KernelState


class VisitorController(Controller):
    """What the kernel and the plugins hold about one visitor of a site (admins and owners)."""

    path = "/api/v1/projects/{project_id:str}/visitors"
    tags = ["visitors"]

    @get("/{visitor_id:str}/export", operation_id="exportVisitor", opt=ADMIN)
    async def export_visitor(
        self,
        project_id: FromPath[str],
        visitor_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
    ) -> visitors.VisitorExport:
        """Every row held about the visitor, with each plugin's data, as one JSON document."""
        actor.require("admin", "export a visitor's data")
        site = await get_site(db_session, actor, project_id)
        target = visitors.visitor_site(site, actor.organization)
        return await visitors.export_visitor(kernel, target, visitor_id)

    @delete("/{visitor_id:str}", operation_id="deleteVisitor", opt=ADMIN, status_code=200)
    async def delete_visitor(
        self,
        project_id: FromPath[str],
        visitor_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
    ) -> visitors.VisitorDeletion:
        """Delete everything about the visitor in one transaction, then tell the plugins; counts per table."""
        actor.require("admin", "delete a visitor's data")
        site = await get_site(db_session, actor, project_id)
        target = visitors.visitor_site(site, actor.organization)
        return await visitors.delete_visitor(kernel, target, visitor_id)
