"""``/api/v1/projects``: the organization's sites."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy import select

from segmently.db.models import Site
from segmently.domain.sites import schemas, services
from segmently.http.access import ADMIN
from segmently.http.deps import CurrentActor, DbSession, KernelState
from segmently.http.pagination import Page, paginate
from segmently.tiers.guards import check_limit_for


class ProjectController(Controller):
    """Sites: each has its own API key, experiments and analytics."""

    path = "/api/v1/projects"
    tags = ["projects"]

    @get("/", operation_id="listProjects")
    async def list_projects(
        self,
        actor: CurrentActor,
        db_session: DbSession,
        limit: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Page[schemas.ProjectOut]:
        """The organization's sites, newest first."""
        stmt = select(Site).where(Site.organization_id == actor.organization_id)
        rows, next_cursor = await paginate(db_session, stmt, [Site.created_at, Site.id], limit, cursor)
        return Page(items=[services.site_out(s) for s in rows], next_cursor=next_cursor)

    @post("/", operation_id="createProject", opt=ADMIN, status_code=HTTP_201_CREATED)
    async def create_project(
        self,
        data: JSONBody[schemas.ProjectIn],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
    ) -> schemas.ProjectOut:
        """Create a site with its API key (admins; the plan's site limit applies)."""
        actor.require("admin", "create sites")
        used = await services.count_sites(db_session, actor.organization_id)
        await check_limit_for(kernel, actor.organization, "sites", used)
        return services.site_out(await services.create_site(db_session, actor, data))

    @get("/{project_id:str}", operation_id="getProject")
    async def get_project(
        self, project_id: FromPath[str], actor: CurrentActor, db_session: DbSession
    ) -> schemas.ProjectOut:
        """One site of the organization."""
        return services.site_out(await services.get_site(db_session, actor, project_id))

    @patch("/{project_id:str}", operation_id="updateProject", opt=ADMIN)
    async def update_project(
        self,
        project_id: FromPath[str],
        data: JSONBody[schemas.ProjectPatch],
        actor: CurrentActor,
        db_session: DbSession,
    ) -> schemas.ProjectOut:
        """Rename a site or change its URL (admins)."""
        actor.require("admin", "change sites")
        site = await services.get_site(db_session, actor, project_id)
        return services.site_out(await services.update_site(db_session, site, data))

    @delete("/{project_id:str}", operation_id="deleteProject", opt=ADMIN, status_code=HTTP_204_NO_CONTENT)
    async def delete_project(
        self,
        project_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        confirm: FromQuery[str | None] = None,
    ) -> None:
        """Delete a site and all its data (admins; ``?confirm=<site name>``)."""
        actor.require("admin", "delete sites")
        site = await services.get_site(db_session, actor, project_id)
        await services.delete_site(db_session, site, confirm)

    @post("/{project_id:str}/regenerate-key", operation_id="regenerateProjectKey", opt=ADMIN, status_code=200)
    async def regenerate_key(
        self, project_id: FromPath[str], actor: CurrentActor, db_session: DbSession
    ) -> schemas.ProjectOut:
        """Issue a new API key; the old key stops working at once (admins)."""
        actor.require("admin", "regenerate API keys")
        site = await services.get_site(db_session, actor, project_id)
        return services.site_out(await services.regenerate_key(db_session, site))
