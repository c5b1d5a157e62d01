"""The experiment wizard: a new draft from its details, then one page per tab, then the launch.

Every tab saves its part of the configuration with ``experiments.services.update`` and the
version the page was drawn with (the API's ``If-Match``), so a change made meanwhile by another
member is refused with the API's message instead of overwritten. The API's field errors show
under the inputs that caused them (inputs are named by the API's paths, see ``wizard_forms``).
"""

from __future__ import annotations

import math
import re
import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, Parameter
from litestar.response import Redirect, Template

from segmently.dashboard import wizard_tabs as tabs
from segmently.dashboard.errors import PAGE_ERRORS
from segmently.dashboard.forms import if_match
from segmently.dashboard.frame import page, redirect, static_url
from segmently.dashboard.wizard_forms import Checker, names, one, read, read_form, shown
from segmently.dashboard.wizard_patch import patch_of
from segmently.dashboard.wizard_review import FEATURES, locked_features, review
from segmently.db.models import Experiment, Site
from segmently.domain.accounts.auth import Actor
from segmently.domain.experiments import schemas, services
from segmently.domain.experiments.validation import MVT_CELL_WARNING
from segmently.domain.sites.services import get_site
from segmently.http.deps import CurrentActor, DbSession, KernelState
from segmently.http.idempotency import IdempotencyKeyInFlight, IdempotencyKeyReused, IdempotentCreate
from segmently.kernel import Kernel
from segmently.tiers.guards import check_limit_for, require_feature_for
from segmently.tiers.limits import FeatureNotIncluded, LimitExceeded

NEW_FIELDS = ("name", "description", "hypothesis", "type", "idempotency_key")
_MSGSPEC_AT = re.compile(r"^(?P<message>.*?) - at `(?P<path>[^`]*)`$", re.S)


def record(c: Checker, exc: HTTPException) -> str | None:
    """Put the API's field errors in ``c``; returns the message when the error names no field."""
    items = [i for i in (exc.extra if isinstance(exc.extra, list) else []) if isinstance(i, dict)]
    for item in items:
        c.add(str(item.get("key", "")), str(item.get("message", "")))
    return None if items else exc.detail


def cell_count(state: dict[str, Any]) -> int:
    """Cells of the sections on the form (the product of their variation counts)."""
    sections = state.get("sections") or []
    return math.prod(len(s["variations"]) for s in sections) if sections else 0


class ExperimentPages(Controller):
    """``/sites/{id}/experiments/new``, ``/experiments/{id}/edit/{tab}`` and the launch."""

    path = "/"
    include_in_schema = False
    exception_handlers = PAGE_ERRORS

    async def _new(
        self,
        request: Request[Any, Any, Any],
        actor: Actor,
        db_session: DbSession,
        kernel: Kernel,
        site: Site,
        *,
        status_code: int = 200,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        problem: str | None = None,
        problem_kind: str = "error",
    ) -> Template:
        upgrade = None
        try:
            used = await services.count_experiments(db_session, actor.organization_id)
            await check_limit_for(kernel, actor.organization, "experiments", used)
        except LimitExceeded as exc:
            upgrade = exc.message
        form = {"type": "ab", **(values or {})}
        form.setdefault("idempotency_key", uuid.uuid4().hex)
        return await page(
            request,
            "experiment_new.html",
            actor,
            db_session,
            kernel,
            "sites",
            status_code=status_code,
            site=site,
            values=form,
            errors=errors or {},
            problem=problem,
            problem_kind=problem_kind,
            upgrade=upgrade,
            locked=await locked_features(kernel, actor.organization),
            shown=shown,
            wizard_css=static_url("wizard.css"),
        )

    async def _tab(
        self,
        request: Request[Any, Any, Any],
        actor: Actor,
        db_session: DbSession,
        kernel: Kernel,
        experiment: Experiment,
        tab: str,
        *,
        status_code: int = 200,
        state: dict[str, Any] | None = None,
        version: str | None = None,
        errors: dict[str, str] | None = None,
        problem: str | None = None,
        problem_kind: str = "error",
        notice: str | None = None,
    ) -> Template:
        site = await get_site(db_session, actor, experiment.site_id)
        variants = await services.variants_of(db_session, experiment.id)
        cfg = services.config_of(experiment, variants)
        state = state if state is not None else tabs.state_of(tab, cfg)
        errors = dict(errors or {})
        placed = set(names(tabs.shape_of(tab, cfg.type), state)) if tab != "review" else set()
        unplaced = [shown(k, v) if k else v for k, v in errors.items() if k not in placed]
        if unplaced:
            problem = "; ".join(filter(None, [problem, *unplaced]))
        cells = cell_count(state)
        position = tabs.TABS.index(tab)
        return await page(
            request,
            "experiment_wizard.html",
            actor,
            db_session,
            kernel,
            "sites",
            status_code=status_code,
            experiment=experiment,
            site=site,
            cfg=cfg,
            tab=tab,
            tabs=tabs,
            previous=tabs.TABS[position - 1] if position else None,
            state=state,
            version=version if version is not None else str(experiment.version),
            errors={k: v for k, v in errors.items() if k in placed},
            problem=problem,
            problem_kind=problem_kind,
            notice=notice,
            editable=experiment.status in services.EDITABLE,
            counts={v.key: len(v.changes.get("changes", [])) for v in variants},
            cells=cells,
            cell_warning=cells > MVT_CELL_WARNING,
            review=review(experiment, site, cfg, variants) if tab == "review" else None,
            locked=await locked_features(kernel, actor.organization),
            features=FEATURES,
            shown=shown,
            wizard_css=static_url("wizard.css"),
            wizard_js=static_url("wizard.js"),
        )

    @staticmethod
    async def _check_integrations(
        kernel: Kernel, actor: Actor, state: dict[str, Any], cfg: schemas.ExperimentIn
    ) -> None:
        """402 for a GA4 or Mixpanel setting the plan lacks (a stored one may stay after a downgrade)."""
        for key, field in (("ga4", "measurement_id"), ("mixpanel", "project_token")):
            typed = (
                state["integrations"][key][field].upper()
                if key == "ga4"
                else state["integrations"][key][field]
            )
            stored = cfg.integrations.get(key)
            if typed and not (isinstance(stored, dict) and stored.get(field) == typed):
                await require_feature_for(kernel, actor.organization, f"integrations.{key}")

    @get("/sites/{site_id:str}/experiments/new", name="dashboard:experiment-new")
    async def new_experiment(
        self,
        request: Request[Any, Any, Any],
        site_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
    ) -> Template:
        """The Details tab of a new experiment (name, description, hypothesis, A/B or MVT)."""
        site = await get_site(db_session, actor, site_id)
        return await self._new(request, actor, db_session, kernel, site)

    @post("/sites/{site_id:str}/experiments/new")
    async def create_experiment(
        self,
        request: Request[Any, Any, Any],
        site_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
    ) -> Template | Redirect:
        """Create the draft (a 50/50 test, or one MVT section) and go on to its Variants tab.

        The form's idempotency key works like the API's ``Idempotency-Key``: a second post of
        the same form lands on the first one's experiment.
        """
        site = await get_site(db_session, actor, site_id)
        form = await read_form(request)
        values = {name: one(form, name) for name in NEW_FIELDS}
        c = Checker()
        fields = {name: c.value(name, values[name], schemas.ExperimentIn, name) for name in NEW_FIELDS[:4]}
        if c.errors:
            return await self._new(
                request, actor, db_session, kernel, site, status_code=400, values=values, errors=c.errors
            )
        data = msgspec.convert({**fields, **tabs.starter(fields["type"])}, schemas.ExperimentIn)

        async def create() -> schemas.ExperimentOut:
            experiment, warnings = await services.create(db_session, kernel, actor, site, data)
            return services.to_out(
                experiment, await services.variants_of(db_session, experiment.id), warnings
            )

        try:
            _, out = await IdempotentCreate(values["idempotency_key"] or None).run(
                db_session,
                actor.organization_id,
                request,
                data,
                create=create,
                replay=lambda body: msgspec.convert(body, schemas.ExperimentOut),
            )
        except IdempotencyKeyInFlight:  # the first submit is still creating it
            await db_session.rollback()
            return redirect(f"/sites/{site_id}")
        except (IdempotencyKeyReused, LimitExceeded, FeatureNotIncluded) as exc:
            await db_session.rollback()
            site = await get_site(db_session, actor, site_id)
            plan_refusal = isinstance(exc, LimitExceeded | FeatureNotIncluded)
            values.pop("idempotency_key")
            return await self._new(
                request,
                actor,
                db_session,
                kernel,
                site,
                status_code=402 if plan_refusal else 400,
                values=values,
                problem=exc.detail if plan_refusal else "This form was sent already: try again",
                problem_kind="upgrade" if plan_refusal else "error",
            )
        except HTTPException as exc:
            if exc.status_code != 400:
                raise
            await db_session.rollback()
            site = await get_site(db_session, actor, site_id)
            problem = record(c, exc)
            return await self._new(
                request,
                actor,
                db_session,
                kernel,
                site,
                status_code=400,
                values=values,
                errors=c.errors,
                problem=problem,
            )
        return redirect(f"/experiments/{out.id}/edit/variants?notice=created")

    @get("/experiments/{experiment_id:str}/edit")
    async def edit_experiment(
        self, experiment_id: FromPath[str], actor: CurrentActor, db_session: DbSession
    ) -> Redirect:
        """The wizard's first tab."""
        experiment = await services.get(db_session, actor, experiment_id)
        return redirect(f"/experiments/{experiment.id}/edit/details")

    @get("/experiments/{experiment_id:str}/edit/{tab:str}", name="dashboard:experiment-tab")
    async def show_tab(
        self,
        request: Request[Any, Any, Any],
        experiment_id: FromPath[str],
        tab: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
        notice: Annotated[str | None, Parameter(required=False)] = None,
    ) -> Template:
        """One tab of the wizard (another organization's experiment: 404)."""
        experiment = await services.get(db_session, actor, experiment_id)
        if tab not in tabs.TABS:
            raise NotFoundException("No such tab")
        return await self._tab(
            request, actor, db_session, kernel, experiment, tab, notice=tabs.NOTICES.get(notice or "")
        )

    @post("/experiments/{experiment_id:str}/edit/{tab:str}")
    async def save_tab(
        self,
        request: Request[Any, Any, Any],
        experiment_id: FromPath[str],
        tab: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
    ) -> Template | Redirect:
        """Save a tab and go to the next (or previous) one; "+ Add" and "Remove" redraw it unsaved.

        Nothing is saved when any field is wrong; every wrong field shows its error.
        """
        experiment = await services.get(db_session, actor, experiment_id)
        if tab not in tabs.TABS or tab == "review":
            raise NotFoundException("No such tab")
        form = await read_form(request)
        version = one(form, "version")
        state = read(tabs.shape_of(tab, experiment.kind), form)
        show = {"state": state, "version": version}
        if op := one(form, "op"):
            tabs.edit(state, op)
            return await self._tab(request, actor, db_session, kernel, experiment, tab, **show)
        cfg = services.config_of(experiment, await services.variants_of(db_session, experiment.id))
        c = Checker()
        patch = patch_of(tab, state, cfg, c)
        if not c.errors:
            try:
                data = msgspec.convert(patch, schemas.ExperimentPatch)
            except msgspec.ValidationError as exc:
                match = _MSGSPEC_AT.match(str(exc))
                c.add(match.group("path") if match else "", match.group("message") if match else str(exc))
        if c.errors:
            return await self._tab(
                request, actor, db_session, kernel, experiment, tab, status_code=400, errors=c.errors, **show
            )
        try:
            if tab == "integrations":
                await self._check_integrations(kernel, actor, state, cfg)
            await services.update(db_session, kernel, actor, experiment, data, if_match(version))
        except (HTTPException, LimitExceeded, FeatureNotIncluded) as exc:
            status = exc.status_code
            if isinstance(exc, HTTPException) and status not in (400, 409, 412):
                raise
            await db_session.rollback()
            experiment = await services.get(db_session, actor, experiment_id)
            problem = exc.detail if not isinstance(exc, HTTPException) or status != 400 else record(c, exc)
            if status == 409 and problem and "slug" in problem:
                c.add("slug", problem)
                problem = None
            return await self._tab(
                request,
                actor,
                db_session,
                kernel,
                experiment,
                tab,
                status_code=status,
                errors=c.errors,
                problem=problem,
                problem_kind="error" if isinstance(exc, HTTPException) else "upgrade",
                **show,
            )
        position = tabs.TABS.index(tab)
        target = {"back": tabs.TABS[max(position - 1, 0)], "stay": tab}.get(
            one(form, "go"), tabs.TABS[position + 1]
        )
        return redirect(f"/experiments/{experiment.id}/edit/{target}?notice={tab}")

    @post("/experiments/{experiment_id:str}/launch")
    async def launch(
        self,
        request: Request[Any, Any, Any],
        experiment_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
    ) -> Template | Redirect:
        """Start the draft (``services.transition`` to live) once the plan still covers its features."""
        experiment = await services.get(db_session, actor, experiment_id)
        version = one(await read_form(request), "version")
        try:
            cfg = services.config_of(experiment, await services.variants_of(db_session, experiment.id))
            await services.check_plan(kernel, actor, cfg)
            await services.transition(db_session, kernel, actor, experiment, "start", if_match(version))
        except (HTTPException, LimitExceeded, FeatureNotIncluded) as exc:
            status = exc.status_code
            if isinstance(exc, HTTPException) and status not in (400, 409, 412):
                raise
            await db_session.rollback()
            experiment = await services.get(db_session, actor, experiment_id)
            return await self._tab(
                request,
                actor,
                db_session,
                kernel,
                experiment,
                "review",
                status_code=status,
                problem=exc.detail,
                problem_kind="error" if isinstance(exc, HTTPException) else "upgrade",
            )
        return redirect(f"/sites/{experiment.site_id}?notice=start")
