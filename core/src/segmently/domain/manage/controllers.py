"""``/api/v1/manage``: the Management API, reached with a management key (``seg_mgmt_…``) only.

Authentication (see :mod:`segmently.domain.accounts.auth`) accepts nothing but a management
key under this path, and checks on every request that the key is not revoked, that its
organization is active and that its plan includes the Management API. Everything here is
scoped to the key's organization.
"""

from __future__ import annotations

import datetime as dt

import msgspec
from litestar import Controller, get
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath
from sqlalchemy import select

from segmently.db.models import Site
from segmently.domain.accounts.auth import MANAGE_NEEDS_KEY, Actor
from segmently.domain.sites import services as sites
from segmently.http.deps import CurrentActor, DbSession


class ManagedProjectOut(msgspec.Struct):
    """A site as the Management API shows it."""

    id: str
    name: str
    url: str
    api_key: str
    created_at: dt.datetime


class ManagedProjectsOut(msgspec.Struct):
    """``GET /api/v1/manage/projects``: every site of the key's organization."""

    projects: list[ManagedProjectOut]


def managed_project_out(site: Site) -> ManagedProjectOut:
    """The Management API view of a site."""
    return ManagedProjectOut(
        id=site.id, name=site.name, url=site.url, api_key=site.api_key, created_at=site.created_at
    )


def _require_key(actor: Actor) -> None:
    # authenticate() already refuses anything else here; this keeps the handlers safe on their own.
    if actor.via != "management_key":
        raise PermissionDeniedException(MANAGE_NEEDS_KEY)


class ManageController(Controller):
    """The Management API for an organization's own backend."""

    path = "/api/v1/manage"
    tags = ["management API"]

    @get("/projects", operation_id="manageListProjects")
    async def list_projects(self, actor: CurrentActor, db_session: DbSession) -> ManagedProjectsOut:
        """All sites of the key's organization, oldest first."""
        _require_key(actor)
        rows = await db_session.scalars(
            select(Site)
            .where(Site.organization_id == actor.organization_id)
            .order_by(Site.created_at, Site.id)
        )
        return ManagedProjectsOut(projects=[managed_project_out(s) for s in rows])

    @get("/projects/{project_id:str}", operation_id="manageGetProject")
    async def get_project(
        self, project_id: FromPath[str], actor: CurrentActor, db_session: DbSession
    ) -> ManagedProjectOut:
        """One site of the key's organization (404 for any other)."""
        _require_key(actor)
        return managed_project_out(await sites.get_site(db_session, actor, project_id))
