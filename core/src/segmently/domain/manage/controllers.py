"""``/api/v1/manage``: the Management API, reached with a management key (``seg_mgmt_…``) only.

Authentication (see :mod:`segmently.domain.accounts.auth`) accepts nothing but a management
key under this path, and checks on every request that the key is not revoked, that its
organization is active and that its plan includes the Management API. Everything here is
scoped to the key's organization.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec
from litestar import Controller, get, patch
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath, FromQuery, JSONBody
from sqlalchemy import select

from segmently.db.models import Experiment, Site
from segmently.domain.accounts.auth import MANAGE_NEEDS_KEY, Actor
from segmently.domain.accounts.services import Conflict
from segmently.domain.experiments import services as experiments
from segmently.domain.experiments.schemas import ExperimentOut
from segmently.domain.sites import services as sites
from segmently.http.deps import CurrentActor, DbSession, KernelState


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

    @get("/experiments", operation_id="manageListExperiments")
    async def list_experiments(
        self, actor: CurrentActor, db_session: DbSession, project_id: FromQuery[str | None] = None
    ) -> ManagedExperimentsOut:
        """The organization's experiments, optionally of one site, oldest first."""
        _require_key(actor)
        stmt = select(Experiment).where(Experiment.organization_id == actor.organization_id)
        if project_id is not None:
            stmt = stmt.where(Experiment.site_id == (await sites.get_site(db_session, actor, project_id)).id)
        rows = list((await db_session.scalars(stmt.order_by(Experiment.created_at, Experiment.id))).all())
        return ManagedExperimentsOut(
            experiments=[experiments.to_out(e, await experiments.variants_of(db_session, e.id)) for e in rows]
        )

    @get("/experiments/{experiment_id:str}", operation_id="manageGetExperiment")
    async def get_experiment(
        self, experiment_id: FromPath[str], actor: CurrentActor, db_session: DbSession
    ) -> ExperimentOut:
        """The full configuration of one experiment: variants with their changes, goals, targeting."""
        _require_key(actor)
        experiment = await experiments.get(db_session, actor, experiment_id)
        return experiments.to_out(experiment, await experiments.variants_of(db_session, experiment.id))

    @patch("/experiments/{experiment_id:str}", operation_id="manageUpdateExperiment")
    async def update_experiment(
        self,
        experiment_id: FromPath[str],
        data: JSONBody[ManagedExperimentPatch],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
    ) -> ExperimentOut:
        """Change status (``active`` is another name for ``live``) and/or traffic percentage."""
        _require_key(actor)
        experiment = await experiments.get(db_session, actor, experiment_id)
        if data.traffic_percentage is not None:
            await experiments.set_traffic(db_session, experiment, data.traffic_percentage)
        if data.status is not None:
            target = "live" if data.status == "active" else data.status
            if target != experiment.status:
                action = MOVES.get((experiment.status, target))
                if action is None:
                    raise Conflict(f"Cannot move an experiment from {experiment.status} to {target}")
                await experiments.transition(db_session, kernel, actor, experiment, action, None)
        return experiments.to_out(experiment, await experiments.variants_of(db_session, experiment.id))


# (from, to) -> lifecycle action
MOVES = {
    ("draft", "live"): "start",
    ("paused", "live"): "resume",
    ("live", "paused"): "pause",
    ("draft", "archived"): "archive",
    ("live", "archived"): "archive",
    ("paused", "archived"): "archive",
    ("archived", "draft"): "reinstate",
}


class ManagedExperimentPatch(msgspec.Struct, forbid_unknown_fields=True):
    """``PATCH /api/v1/manage/experiments/{id}``."""

    status: Literal["draft", "active", "live", "paused", "archived"] | None = None
    traffic_percentage: Annotated[float, msgspec.Meta(ge=0, le=100)] | None = None


class ManagedExperimentsOut(msgspec.Struct):
    """``GET /api/v1/manage/experiments``."""

    experiments: list[ExperimentOut]
