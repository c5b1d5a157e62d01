"""The Sites page: the list and "+ New Site" (one site's page is ``site_detail``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.exceptions import HTTPException
from litestar.params import Parameter
from litestar.response import Redirect, Template
from sqlalchemy import select

from segmently.dashboard.errors import PAGE_ERRORS
from segmently.dashboard.forms import api_errors, build, field_problems, form_values
from segmently.dashboard.frame import page, redirect
from segmently.db.models import Site
from segmently.domain.sites import schemas, services
from segmently.http.access import ADMIN
from segmently.http.deps import CurrentActor, DbSession, KernelState
from segmently.http.idempotency import IdempotencyKeyInFlight, IdempotencyKeyReused, IdempotentCreate
from segmently.kernel import Kernel
from segmently.tiers import usage
from segmently.tiers.guards import check_limit_for, plan_of
from segmently.tiers.limits import LimitExceeded

MAX_LISTED = 500
NOTICES = {"joined": "You joined {organization}.", "created": "Site created.", "deleted": "Site deleted."}


class SitePages(Controller):
    """The organization's sites."""

    path = "/sites"
    include_in_schema = False
    exception_handlers = PAGE_ERRORS

    async def _list(
        self,
        request: Request[Any, Any, Any],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: Kernel,
        *,
        status_code: int = 200,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        problem: str | None = None,
        notice: str | None = None,
    ) -> Template:
        sites = (
            await db_session.scalars(
                select(Site)
                .where(Site.organization_id == actor.organization_id)
                .order_by(Site.created_at.desc(), Site.id.desc())
                .limit(MAX_LISTED)
            )
        ).all()
        plan = await plan_of(kernel, actor.organization)
        used = await services.count_sites(db_session, actor.organization_id)
        badge = usage(kernel.plans, plan, {"sites": used})["sites"]
        upgrade = None
        if badge.at_limit:
            try:
                await check_limit_for(kernel, actor.organization, "sites", used)
            except LimitExceeded as exc:
                upgrade = exc.message
        form = dict(values or {})
        form.setdefault("idempotency_key", uuid.uuid4().hex)
        return await page(
            request,
            "sites.html",
            actor,
            db_session,
            kernel,
            "sites",
            status_code=status_code,
            sites=sites,
            badge=badge,
            upgrade=upgrade,
            values=form,
            errors=errors or {},
            problem=problem,
            notice=notice,
        )

    @get("/", name="dashboard:sites")
    async def list_sites(
        self,
        request: Request[Any, Any, Any],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
        notice: Annotated[str | None, Parameter(required=False)] = None,
    ) -> Template:
        """Every site of the organization, its usage badge and the "+ New Site" form."""
        shown = NOTICES.get(notice or "")
        return await self._list(
            request,
            actor,
            db_session,
            kernel,
            notice=shown.format(organization=actor.organization.name) if shown else None,
        )

    @post("/", opt=ADMIN)
    async def create_site(
        self, request: Request[Any, Any, Any], actor: CurrentActor, db_session: DbSession, kernel: KernelState
    ) -> Template | Redirect:
        """Create a site (admins; the plan's site limit applies); a repeated submit creates it once.

        The form carries an idempotency key made when it was rendered, used exactly as the
        API's ``Idempotency-Key``: a second post of the same form gets the first one's site.
        """
        values = await form_values(request, ("name", "url", "idempotency_key"))
        errors = field_problems(schemas.ProjectIn, values)
        if errors:
            return await self._list(
                request, actor, db_session, kernel, status_code=400, values=values, errors=errors
            )
        data = build(schemas.ProjectIn, values)

        async def create() -> schemas.ProjectOut:
            await check_limit_for(
                kernel,
                actor.organization,
                "sites",
                await services.count_sites(db_session, actor.organization_id),
            )
            return services.site_out(await services.create_site(db_session, actor, data))

        try:
            idem = IdempotentCreate(values["idempotency_key"] or None)
            _, out = await idem.run(
                db_session,
                actor.organization_id,
                request,
                data,
                create=create,
                replay=lambda body: msgspec.convert(body, schemas.ProjectOut),
            )
        except IdempotencyKeyInFlight:  # the first submit is still creating it: show the list
            await db_session.rollback()
            return redirect("/sites")
        except (IdempotencyKeyReused, LimitExceeded) as exc:
            await db_session.rollback()
            problem = (
                exc.message if isinstance(exc, LimitExceeded) else "This form was sent already: try again"
            )
            values.pop("idempotency_key")
            return await self._list(
                request, actor, db_session, kernel, status_code=400, values=values, problem=problem
            )
        except HTTPException as exc:  # a field error from the service, like the API's 400
            if exc.status_code != 400:
                raise
            await db_session.rollback()
            errors, unplaced = api_errors(exc, ("name", "url"))
            return await self._list(
                request,
                actor,
                db_session,
                kernel,
                status_code=400,
                values=values,
                errors=errors,
                problem=unplaced,
            )
        return redirect(f"/sites/{out.id}?notice=created")
