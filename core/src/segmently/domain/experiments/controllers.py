"""``/api/v1/projects/{id}/experiments`` and ``/api/v1/experiments/{id}``."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy import select

from segmently.db.models import Experiment
from segmently.domain.experiments import schemas, services
from segmently.domain.sites.services import get_site
from segmently.http.access import ADMIN
from segmently.http.deps import CurrentActor, DbSession, IdempotencyKey, IfMatch, KernelState
from segmently.http.idempotency import IdempotentCreate
from segmently.http.pagination import Page, paginate


def _etag(out: schemas.ExperimentOut, status_code: int = 200) -> Response[schemas.ExperimentOut]:
    return Response(out, status_code=status_code, headers={"ETag": f'"{out.version}"'})


class SiteExperimentsController(Controller):
    """A site's experiments."""

    path = "/api/v1/projects/{project_id:str}/experiments"
    tags = ["experiments"]

    @post("/", operation_id="createExperiment", status_code=HTTP_201_CREATED)
    async def create_experiment(
        self,
        request: Request[Any, Any, Any],
        project_id: FromPath[str],
        data: JSONBody[schemas.ExperimentIn],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
        idempotency: IdempotencyKey = None,
    ) -> Response[schemas.ExperimentOut]:
        """Create a draft experiment from the whole wizard (the plan's experiment limit and gates apply).

        With an ``Idempotency-Key`` header, repeating the request returns the first answer instead
        of a second experiment (a double-submitted form creates one object).
        """
        idem = IdempotentCreate(idempotency)
        site = await get_site(db_session, actor, project_id)

        async def create() -> schemas.ExperimentOut:
            experiment, warnings = await services.create(db_session, kernel, actor, site, data)
            variants = await services.variants_of(db_session, experiment.id)
            return services.to_out(experiment, variants, warnings)

        status, out = await idem.run(
            db_session,
            actor.organization_id,
            request,
            data,
            create=create,
            replay=lambda body: msgspec.convert(body, schemas.ExperimentOut),
        )
        return _etag(out, status)

    @get("/", operation_id="listExperiments")
    async def list_experiments(
        self,
        project_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        status: FromQuery[str | None] = None,
        limit: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Page[schemas.ExperimentOut]:
        """The site's experiments, newest first; ``?status=live`` filters."""
        site = await get_site(db_session, actor, project_id)
        stmt = select(Experiment).where(Experiment.site_id == site.id)
        if status:
            stmt = stmt.where(Experiment.status == status)
        rows, next_cursor = await paginate(
            db_session, stmt, [Experiment.created_at, Experiment.id], limit, cursor
        )
        items = [services.to_out(e, await services.variants_of(db_session, e.id)) for e in rows]
        return Page(items=items, next_cursor=next_cursor)


def _lifecycle_action(action: str, summary: str) -> Any:
    """A ``POST /{action}`` handler moving the experiment through its lifecycle (one per action)."""

    async def act(
        self: ExperimentController,
        experiment_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
        if_match: IfMatch = None,
    ) -> Response[schemas.ExperimentOut]:
        experiment = await services.get(db_session, actor, experiment_id)
        await services.transition(db_session, kernel, actor, experiment, action, if_match)
        return _etag(services.to_out(experiment, await services.variants_of(db_session, experiment.id)))

    act.__name__ = act.__qualname__ = action
    act.__doc__ = summary
    return post(f"/{action}", operation_id=f"{action}Experiment", status_code=200)(act)


class ExperimentController(Controller):
    """One experiment: read, change, move through its lifecycle, delete."""

    path = "/api/v1/experiments/{experiment_id:str}"
    tags = ["experiments"]

    @get("/", operation_id="getExperiment")
    async def get_experiment(
        self, experiment_id: FromPath[str], actor: CurrentActor, db_session: DbSession
    ) -> Response[schemas.ExperimentOut]:
        """The experiment's whole configuration; ``ETag`` carries its version."""
        experiment = await services.get(db_session, actor, experiment_id)
        return _etag(services.to_out(experiment, await services.variants_of(db_session, experiment.id)))

    @patch("/", operation_id="updateExperiment")
    async def update_experiment(
        self,
        experiment_id: FromPath[str],
        data: JSONBody[schemas.ExperimentPatch],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
        if_match: IfMatch = None,
    ) -> Response[schemas.ExperimentOut]:
        """Change a draft or paused experiment; a stale ``If-Match`` gets 412 with the current version."""
        experiment = await services.get(db_session, actor, experiment_id)
        warnings = await services.update(db_session, kernel, actor, experiment, data, if_match)
        return _etag(
            services.to_out(experiment, await services.variants_of(db_session, experiment.id), warnings)
        )

    @delete("/", operation_id="deleteExperiment", status_code=HTTP_204_NO_CONTENT, opt=ADMIN)
    async def delete_experiment(
        self, experiment_id: FromPath[str], actor: CurrentActor, db_session: DbSession
    ) -> None:
        """Delete the experiment and its data for good (admins)."""
        await services.delete(db_session, await services.get(db_session, actor, experiment_id))

    start = _lifecycle_action("start", "Draft → live (MVT cells are generated now).")
    pause = _lifecycle_action("pause", "Live → paused (data is kept).")
    resume = _lifecycle_action("resume", "Paused → live.")
    archive = _lifecycle_action("archive", "Any state → archived.")
    reinstate = _lifecycle_action(
        "reinstate", "Archived → draft (counts against the plan's experiment limit again)."
    )
