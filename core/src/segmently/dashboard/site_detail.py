"""One site's page: experiments by state, install tags, settings, conversion rules, danger zone.

The experiments carry their quick actions; the conversion rules come with the "Would fire" tester.

Every post runs the same domain services as the JSON API (``domain/experiments/services``,
``domain/sites/services``, ``domain/sites/settings``) and redirects back with a notice; a refusal
(a plan limit, an illegal move, a bad field) shows the page again with the API's message.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, Parameter
from litestar.response import Redirect, Template
from sqlalchemy import select

from segmently.dashboard.errors import PAGE_ERRORS
from segmently.dashboard.forms import api_errors, build, field_problems, form_values, humanise, if_match
from segmently.dashboard.frame import page, redirect, render
from segmently.db.models import Experiment, Site
from segmently.domain.accounts.auth import ROLE_RANK, Actor
from segmently.domain.experiments import services as experiments
from segmently.domain.sites import schemas, services
from segmently.domain.sites.settings import installed_plugins, site_settings, step_errors, would_fire
from segmently.domain.sites.settings_schemas import ConversionStep
from segmently.http.access import ADMIN
from segmently.http.deps import CurrentActor, DbSession, KernelState
from segmently.kernel import Kernel
from segmently.tiers.limits import LimitExceeded

STATES = ("live", "draft", "paused")
"""The open groups, in the order the page shows them (archived comes last, collapsed)."""
ACTIONS: dict[str, tuple[str, ...]] = {
    "draft": ("start", "archive"),
    "live": ("pause", "archive"),
    "paused": ("resume", "archive"),
    "archived": ("reinstate",),
}
"""The quick actions of each state (``experiments.services.TRANSITIONS`` allows exactly these)."""
NOTICES = {
    "start": "Experiment started: it is live.",
    "pause": "Experiment paused. Its data is kept.",
    "resume": "Experiment resumed: it is live again.",
    "archive": "Experiment archived.",
    "reinstate": "Experiment reinstated as a draft.",
    "saved": "Site settings saved.",
    "created": "Site created.",
}
TEST_METHODS = {"page_url": "Page URL", "url_param": "URL parameter"}


def is_admin(actor: Actor) -> bool:
    """Whether the caller may change or delete the site (admins and the owner)."""
    return ROLE_RANK[actor.role] >= ROLE_RANK["admin"]


async def experiments_by_state(db_session: DbSession, site: Site) -> dict[str, list[Experiment]]:
    """The site's experiments, newest first, in one list per state."""
    rows = (
        await db_session.scalars(
            select(Experiment)
            .where(Experiment.site_id == site.id, Experiment.organization_id == site.organization_id)
            .order_by(Experiment.created_at.desc(), Experiment.id.desc())
        )
    ).all()
    groups: dict[str, list[Experiment]] = {state: [] for state in (*STATES, "archived")}
    for row in rows:
        groups.setdefault(row.status, []).append(row)
    return groups


def tester_problems(values: dict[str, str]) -> tuple[dict[str, str], ConversionStep | None]:
    """The tester's field errors (named like its inputs), or the step to test."""
    errors: dict[str, str] = {}
    if values["step_method"] not in TEST_METHODS:
        errors["step_method"] = "Choose Page URL or URL parameter"
    if not values["step_value"].strip():
        errors["step_value"] = "is required"
    if not values["test_url"].strip():
        errors["test_url"] = "is required"
    if "step_method" in errors or "step_value" in errors:
        return errors, None
    step = msgspec.convert({"method": values["step_method"], "value": values["step_value"]}, ConversionStep)
    for _, message in step_errors(step, "step"):
        errors["step_value"] = humanise("step_value", message)
    return errors, None if errors else step


class SiteDetailPages(Controller):
    """``/sites/{id}`` and the forms it posts."""

    path = "/sites/{site_id:str}"
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
        problem_kind: str = "error",
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        tested: bool | None = None,
    ) -> Template:
        settings = await site_settings(db_session, site.id, installed_plugins(kernel))
        form = {"name": site.name, "url": site.url, "step_method": "page_url", **(values or {})}
        return await page(
            request,
            "site.html",
            actor,
            db_session,
            kernel,
            "sites",
            status_code=status_code,
            site=site,
            base_url=kernel.settings.base_url,
            groups=await experiments_by_state(db_session, site),
            states=STATES,
            actions=ACTIONS,
            rules=settings.conversion_rules,
            methods=TEST_METHODS,
            can_admin=is_admin(actor),
            notice=notice,
            problem=problem,
            problem_kind=problem_kind,
            values=form,
            errors=errors or {},
            tested=tested,
        )

    @get("/", name="dashboard:site")
    async def show_site(
        self,
        request: Request[Any, Any, Any],
        site_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
        notice: Annotated[str | None, Parameter(required=False)] = None,
    ) -> Template:
        """One site: experiments by state, install tags, settings, rules, danger zone (another org's: 404)."""
        site = await services.get_site(db_session, actor, site_id)
        return await self._show(request, actor, db_session, kernel, site, notice=NOTICES.get(notice or ""))

    @post("/experiments/{experiment_id:str}/{action:str}")
    async def move_experiment(
        self,
        request: Request[Any, Any, Any],
        site_id: FromPath[str],
        experiment_id: FromPath[str],
        action: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
    ) -> Template | Redirect:
        """Start, pause, resume, archive or reinstate one of the site's experiments (like the API).

        The form carries the version it was rendered with: a change made meanwhile is refused.
        """
        site = await services.get_site(db_session, actor, site_id)
        experiment = await experiments.get(db_session, actor, experiment_id)
        if experiment.site_id != site.id or action not in NOTICES or action not in experiments.TRANSITIONS:
            raise NotFoundException("No such experiment")
        version = (await form_values(request, ("version",)))["version"]
        try:
            await experiments.transition(db_session, kernel, actor, experiment, action, if_match(version))
        except (LimitExceeded, HTTPException) as exc:
            status = exc.status_code
            if isinstance(exc, HTTPException) and status not in (400, 409, 412):
                raise
            await db_session.rollback()
            message = exc.message if isinstance(exc, LimitExceeded) else exc.detail
            site = await services.get_site(db_session, actor, site_id)
            return await self._show(
                request,
                actor,
                db_session,
                kernel,
                site,
                status_code=status,
                problem=message,
                problem_kind="upgrade" if isinstance(exc, LimitExceeded) else "error",
            )
        return redirect(f"/sites/{site.id}?notice={action}")

    @post("/settings", opt=ADMIN)
    async def save_settings(
        self,
        request: Request[Any, Any, Any],
        site_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
    ) -> Template | Redirect:
        """Rename the site or change its URL (admins); bad fields are shown next to each field."""
        actor.require("admin", "change sites")
        site = await services.get_site(db_session, actor, site_id)
        values = await form_values(request, ("name", "url"))
        errors = field_problems(schemas.ProjectIn, values)
        if not errors:
            try:
                await services.update_site(db_session, site, build(schemas.ProjectPatch, values))
                return redirect(f"/sites/{site.id}?notice=saved")
            except HTTPException as exc:
                if exc.status_code != 400:
                    raise
                await db_session.rollback()
                site = await services.get_site(db_session, actor, site_id)
                errors, _ = api_errors(exc, ("name", "url"))
        return await self._show(
            request, actor, db_session, kernel, site, status_code=400, values=values, errors=errors
        )

    @post("/rule-test", status_code=200)
    async def test_rule(
        self,
        request: Request[Any, Any, Any],
        site_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
    ) -> Template:
        """Would a Page URL or URL parameter condition fire on a URL? htmx gets the tester back alone."""
        site = await services.get_site(db_session, actor, site_id)
        values = await form_values(request, ("step_method", "step_value", "test_url"))
        errors, step = tester_problems(values)
        tested = would_fire(step, values["test_url"]) if step is not None else None
        status = 400 if errors else 200
        if request.headers.get("hx-request"):
            # a 200 even with errors: htmx swaps only successful answers by default
            return render(
                request,
                "_rule_tester.html",
                site=site,
                values=values,
                errors=errors,
                tested=tested,
                methods=TEST_METHODS,
            )
        return await self._show(
            request,
            actor,
            db_session,
            kernel,
            site,
            status_code=status,
            values=values,
            errors=errors,
            tested=tested,
        )

    @post("/delete", opt=ADMIN)
    async def delete_site(
        self,
        request: Request[Any, Any, Any],
        site_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
    ) -> Template | Redirect:
        """Delete the site and all its data (admins) once its name is typed, like ``?confirm=``."""
        actor.require("admin", "delete sites")
        site = await services.get_site(db_session, actor, site_id)
        values = await form_values(request, ("confirm",))
        try:
            await services.delete_site(db_session, site, values["confirm"])
        except HTTPException as exc:
            if exc.status_code != 400:
                raise
            await db_session.rollback()
            site = await services.get_site(db_session, actor, site_id)
            errors, _ = api_errors(exc, ("confirm",))
            errors = {k: v[:1].upper() + v[1:] for k, v in errors.items()}
            return await self._show(
                request, actor, db_session, kernel, site, status_code=400, values=values, errors=errors
            )
        return redirect("/sites?notice=deleted")
