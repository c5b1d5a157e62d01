"""``/api/v1/projects/{project_id}/flags`` and ``/api/v1/flags/{flag_id}``: a site's feature flags.

Members create and edit flags, admins delete them; creating and changing need a plan with
feature flags (Professional and up), reading and deleting do not, so a downgraded
organization can still see and clean up its flags.
"""

from __future__ import annotations

from typing import Any, Literal

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy import select

from segmently.db.models import Flag
from segmently.domain.flags import schemas, services
from segmently.domain.sites.services import get_site
from segmently.http.access import ADMIN
from segmently.http.deps import CurrentActor, DbSession, IdempotencyKey, IfMatch, KernelState
from segmently.http.idempotency import (
    VERSION_HANDLERS,
    IdempotentCreate,
    etag,
)
from segmently.http.pagination import Page, paginate
from segmently.tiers.guards import require_feature_for

FEATURE = "flags"
StatusFilter = Literal["active", "inactive", "archived", "all"]


def _with_etag(out: schemas.FlagOut, status_code: int = 200) -> Response[schemas.FlagOut]:
    return Response(out, status_code=status_code, headers={"ETag": etag(out.version)})


class FlagController(Controller):
    """Feature flags of a site."""

    path = "/api/v1"
    tags = ["flags"]
    exception_handlers = VERSION_HANDLERS

    @post("/projects/{project_id:str}/flags", operation_id="createFlag", status_code=HTTP_201_CREATED)
    async def create_flag(
        self,
        request: Request[Any, Any, Any],
        project_id: FromPath[str],
        data: JSONBody[schemas.FlagIn],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
        idempotency: IdempotencyKey = None,
    ) -> Response[schemas.FlagOut]:
        """Create a flag (Professional+); with an ``Idempotency-Key`` a repeat returns the first answer."""
        idem = IdempotentCreate(idempotency)
        site = await get_site(db_session, actor, project_id)
        await require_feature_for(kernel, actor.organization, FEATURE)

        async def create() -> schemas.FlagOut:
            return services.flag_out(await services.create_flag(db_session, site, data))

        status, out = await idem.run(
            db_session, actor.organization_id, request, data, create=create, replay=services.out_from_stored
        )
        return _with_etag(out, status)

    @get("/projects/{project_id:str}/flags", operation_id="listFlags")
    async def list_flags(
        self,
        project_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        status: FromQuery[StatusFilter | None] = None,
        limit: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Page[schemas.FlagOut]:
        """The site's flags, newest first: archived ones only with ``?status=archived`` or ``all``."""
        site = await get_site(db_session, actor, project_id)
        stmt = select(Flag).where(Flag.site_id == site.id, Flag.organization_id == actor.organization_id)
        if status is None:
            stmt = stmt.where(Flag.status != "archived")
        elif status != "all":
            stmt = stmt.where(Flag.status == status)
        rows, next_cursor = await paginate(db_session, stmt, [Flag.created_at, Flag.id], limit, cursor)
        return Page(items=[services.flag_out(f) for f in rows], next_cursor=next_cursor)

    @get("/flags/{flag_id:str}", operation_id="getFlag")
    async def get_flag(
        self, flag_id: FromPath[str], actor: CurrentActor, db_session: DbSession
    ) -> Response[schemas.FlagOut]:
        """One flag, with its version as ``ETag``."""
        return _with_etag(services.flag_out(await services.get_flag(db_session, actor, flag_id)))

    @patch("/flags/{flag_id:str}", operation_id="updateFlag")
    async def update_flag(
        self,
        flag_id: FromPath[str],
        data: JSONBody[schemas.FlagPatch],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
        if_match: IfMatch = None,
    ) -> Response[schemas.FlagOut]:
        """Change a flag (Professional+); a stale ``If-Match`` gets 412 with ``current_version``."""
        flag = await services.get_flag(db_session, actor, flag_id)
        await require_feature_for(kernel, actor.organization, FEATURE)
        flag = await services.update_flag(db_session, flag, data, if_match)
        return _with_etag(services.flag_out(flag))

    @delete("/flags/{flag_id:str}", operation_id="deleteFlag", opt=ADMIN, status_code=HTTP_204_NO_CONTENT)
    async def delete_flag(self, flag_id: FromPath[str], actor: CurrentActor, db_session: DbSession) -> None:
        """Delete a flag (admins); its key can then be used again."""
        actor.require("admin", "delete flags")
        await services.delete_flag(db_session, await services.get_flag(db_session, actor, flag_id))
