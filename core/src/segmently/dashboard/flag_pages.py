"""A site's Feature Flags page: the list with usage snippets, "New Flag", rollout, kill switch, delete.

Every post runs the JSON API's services (``domain/flags/services``) and the same plan gate:
creating and changing a flag need the ``flags`` feature (Professional+), reading and deleting do
not, so a downgraded organization still sees and cleans up its flags.
"""

from __future__ import annotations

import math
import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, Parameter
from litestar.response import Redirect, Template
from sqlalchemy import select

from segmently.dashboard.errors import PAGE_ERRORS
from segmently.dashboard.forms import api_errors, build, field_problems, form_values
from segmently.dashboard.frame import page, redirect
from segmently.db.models import Flag, Site
from segmently.domain.accounts.auth import Actor
from segmently.domain.flags import schemas, services
from segmently.domain.flags.controllers import FEATURE
from segmently.domain.sites.services import get_site
from segmently.http.access import ADMIN
from segmently.http.deps import CurrentActor, DbSession, KernelState
from segmently.http.idempotency import IdempotencyKeyInFlight, IdempotencyKeyReused, IdempotentCreate
from segmently.kernel import Kernel
from segmently.tiers.guards import require_feature_for
from segmently.tiers.limits import FeatureNotIncluded

FIELDS = ("key", "name", "rollout_percentage", "status", "idempotency_key")
NOTICES = {
    "created": "Flag created.",
    "rollout": "Rollout saved.",
    "killed": "Flag turned off for every visitor.",
    "activated": "Flag active again.",
    "deleted": "Flag deleted.",
}
MOVES: dict[str, tuple[schemas.NewStatus, str]] = {
    "kill": ("inactive", "killed"),
    "activate": ("active", "activated"),
}
"""The kill switch and its undo: the status each sets and the notice shown after."""


def rollout_of(text: str) -> tuple[float | None, str | None]:
    """The rollout percentage typed in a form, or what is wrong with it (the API's range: 0–100)."""
    if not text.strip():
        return None, "is required"
    try:
        number = float(text.strip().rstrip("%"))
    except ValueError:
        return None, "must be a number between 0 and 100"
    if not math.isfinite(number):
        return None, "must be a number between 0 and 100"
    try:
        return msgspec.convert(number, schemas.Rollout), None
    except msgspec.ValidationError:
        return None, "must be between 0 and 100"


def checked(values: dict[str, str]) -> tuple[dict[str, str], dict[str, Any]]:
    """The "New Flag" form's field errors, and the rollout as a number (the form posts text)."""
    errors = field_problems(schemas.FlagIn, {k: v for k, v in values.items() if k != "rollout_percentage"})
    rollout, problem = rollout_of(values["rollout_percentage"])
    if problem:
        errors["rollout_percentage"] = problem
    return errors, {"rollout_percentage": rollout}


async def site_flag(db_session: DbSession, actor: Actor, site: Site, flag_id: str) -> Flag:
    """The flag if it belongs to this site of the caller's organization; 404 otherwise."""
    flag = await services.get_flag(db_session, actor, flag_id)
    if flag.site_id != site.id:
        raise NotFoundException("No such flag")
    return flag


class FlagPages(Controller):
    """``/sites/{id}/flags`` and the forms it posts."""

    path = "/sites/{site_id:str}/flags"
    include_in_schema = False
    exception_handlers = PAGE_ERRORS

    async def _show(
        self,
        request: Request[Any, Any, Any],
        actor: Actor,
        db_session: DbSession,
        kernel: Kernel,
        site: Site,
        *,
        status_code: int = 200,
        notice: str | None = None,
        problem: str | None = None,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        row_errors: dict[str, str] | None = None,
    ) -> Template:
        flags = (
            await db_session.scalars(
                select(Flag)
                .where(Flag.site_id == site.id, Flag.organization_id == actor.organization_id)
                .order_by(Flag.created_at.desc(), Flag.id.desc())
            )
        ).all()
        upgrade = None
        try:
            await require_feature_for(kernel, actor.organization, FEATURE)
        except FeatureNotIncluded as exc:
            upgrade = exc.message
        form = {"rollout_percentage": "0", "status": "inactive", **(values or {})}
        form.setdefault("idempotency_key", uuid.uuid4().hex)
        return await page(
            request,
            "flags.html",
            actor,
            db_session,
            kernel,
            "sites",
            status_code=status_code,
            site=site,
            flags=flags,
            upgrade=upgrade,
            notice=notice,
            problem=problem,
            values=form,
            errors=errors or {},
            row_errors=row_errors or {},
        )

    @get("/", name="dashboard:flags")
    async def list_flags(
        self,
        request: Request[Any, Any, Any],
        site_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
        notice: Annotated[str | None, Parameter(required=False)] = None,
    ) -> Template:
        """The site's flags: key, rollout, status, usage snippet; the "New Flag" form (another org's: 404)."""
        site = await get_site(db_session, actor, site_id)
        return await self._show(request, actor, db_session, kernel, site, notice=NOTICES.get(notice or ""))

    @post("/")
    async def create_flag(
        self,
        request: Request[Any, Any, Any],
        site_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
    ) -> Template | Redirect:
        """Create a flag (Professional+); a repeated submit of the same form creates it once."""
        site = await get_site(db_session, actor, site_id)
        values = await form_values(request, FIELDS)
        errors, numbers = checked(values)
        if errors:
            return await self._show(
                request, actor, db_session, kernel, site, status_code=400, values=values, errors=errors
            )
        text_fields = {k: v for k, v in values.items() if k != "rollout_percentage"}
        data = build(schemas.FlagIn, text_fields, **numbers)

        async def create() -> schemas.FlagOut:
            await require_feature_for(kernel, actor.organization, FEATURE)
            return services.flag_out(await services.create_flag(db_session, site, data))

        try:
            await IdempotentCreate(values["idempotency_key"] or None).run(
                db_session,
                actor.organization_id,
                request,
                data,
                create=create,
                replay=services.out_from_stored,
            )
        except IdempotencyKeyInFlight:  # the first submit is still creating it: show the list
            await db_session.rollback()
            return redirect(f"/sites/{site_id}/flags")
        except (IdempotencyKeyReused, FeatureNotIncluded) as exc:
            await db_session.rollback()
            site = await get_site(db_session, actor, site_id)  # the rollback expired it
            problem = (
                exc.message
                if isinstance(exc, FeatureNotIncluded)
                else "This form was sent already: try again"
            )
            values.pop("idempotency_key")
            return await self._show(
                request, actor, db_session, kernel, site, status_code=400, values=values, problem=problem
            )
        except HTTPException as exc:  # a taken key (409) or another field error of the service
            if exc.status_code not in (400, 409):
                raise
            await db_session.rollback()
            site = await get_site(db_session, actor, site_id)  # the rollback expired it
            errors, unplaced = api_errors(exc, FIELDS)
            return await self._show(
                request,
                actor,
                db_session,
                kernel,
                site,
                status_code=exc.status_code,
                values=values,
                errors=errors,
                problem=unplaced,
            )
        return redirect(f"/sites/{site.id}/flags?notice=created")

    @post("/{flag_id:str}/rollout")
    async def set_rollout(
        self,
        request: Request[Any, Any, Any],
        site_id: FromPath[str],
        flag_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
    ) -> Template | Redirect:
        """Change a flag's rollout percentage (Professional+); a bad value shows next to its row."""
        site = await get_site(db_session, actor, site_id)
        flag = await site_flag(db_session, actor, site, flag_id)
        values = await form_values(request, ("rollout_percentage",))
        rollout, problem = rollout_of(values["rollout_percentage"])
        if problem:
            wrong = {flag.id: f"Rollout {problem}"}
            return await self._show(
                request, actor, db_session, kernel, site, status_code=400, row_errors=wrong
            )
        await require_feature_for(kernel, actor.organization, FEATURE)
        await services.update_flag(db_session, flag, schemas.FlagPatch(rollout_percentage=rollout), None)
        return redirect(f"/sites/{site.id}/flags?notice=rollout")

    @post("/{flag_id:str}/kill")
    async def kill(
        self,
        site_id: FromPath[str],
        flag_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
    ) -> Redirect:
        """The kill switch: the flag is off for every visitor from the next config fetch (Professional+)."""
        return await self._switch(site_id, flag_id, "kill", actor, db_session, kernel)

    @post("/{flag_id:str}/activate")
    async def activate(
        self,
        site_id: FromPath[str],
        flag_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
    ) -> Redirect:
        """Turn a killed (inactive) flag on again for its rollout (Professional+)."""
        return await self._switch(site_id, flag_id, "activate", actor, db_session, kernel)

    async def _switch(
        self, site_id: str, flag_id: str, move: str, actor: Actor, db_session: DbSession, kernel: Kernel
    ) -> Redirect:
        site = await get_site(db_session, actor, site_id)
        flag = await site_flag(db_session, actor, site, flag_id)
        await require_feature_for(kernel, actor.organization, FEATURE)
        status, notice = MOVES[move]
        await services.update_flag(db_session, flag, schemas.FlagPatch(status=status), None)
        return redirect(f"/sites/{site.id}/flags?notice={notice}")

    @post("/{flag_id:str}/delete", opt=ADMIN)
    async def delete_flag(
        self, site_id: FromPath[str], flag_id: FromPath[str], actor: CurrentActor, db_session: DbSession
    ) -> Redirect:
        """Delete a flag for good (admins; any plan); its key can then be used again."""
        site = await get_site(db_session, actor, site_id)
        await services.delete_flag(db_session, await site_flag(db_session, actor, site, flag_id))
        return redirect(f"/sites/{site.id}/flags?notice=deleted")
