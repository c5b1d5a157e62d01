"""Public endpoints a customer's site calls with its API key: config, assignment, flags."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from segmently import assignment
from segmently.db.base import new_id, utcnow
from segmently.db.models import Experiment, ExperimentVisitor, Flag, Variant
from segmently.domain.sdk.config import ConfigCache, rules_of
from segmently.http.access import SITE, current_site
from segmently.http.deps import DbSession, KernelState
from segmently.http.errors import field_error
from segmently.http.precompressed import NO_COMPRESSION, respond
from segmently.http.protection import RateLimits, rate_limit
from segmently.kernel import Kernel

MAX_PREVIEW = 200  # a slug and a variant's key or id, with room to spare
NO_NUL = "must not contain a NUL character"  # PostgreSQL text holds none: no slug or visitor has one

PUBLIC_SITE = {**SITE, "embeddable": True, "exclude_from_csrf": True}


class TargetingData(msgspec.Struct, forbid_unknown_fields=False):
    """What the caller knows about the visitor's page view."""

    url: str | None = None
    device: Literal["desktop", "tablet", "mobile"] | None = None
    viewport_width: float | None = None
    country: str | None = None
    is_returning: bool = False
    attributes: dict[str, Any] = {}
    referrer: str | None = None


class AssignIn(msgspec.Struct):
    """``POST /api/v1/experiments/{slug}/assign``."""

    visitor_id: str
    targeting_data: TargetingData = msgspec.field(default_factory=TargetingData)


class AssignedVariant(msgspec.Struct):
    """The variant a visitor sees."""

    id: str
    key: str
    name: str


class AssignOut(msgspec.Struct):
    """Whether the visitor is in the experiment, and with which variant (null when not)."""

    experiment: str
    in_experiment: bool
    variant: AssignedVariant | None
    reason: str | None = None


def country_of(request: Request[Any, Any, Any], kernel: Kernel) -> str | None:
    """The visitor's country: the trusted proxy header, else the client IP in the MaxMind database."""
    return kernel.countries.of(request, RateLimits.of(request.app).client_ip(request.scope))


class SdkController(Controller):
    """What the snippet and server SDKs call."""

    path = "/api/v1"
    tags = ["public API"]
    opt = PUBLIC_SITE
    middleware = [rate_limit("public")]  # per IP and endpoint: generous, many visitors share an IP

    @get("/sdk/config", operation_id="sdkConfig", opt=NO_COMPRESSION)
    async def config(
        self,
        request: Request[Any, Any, Any],
        db_session: DbSession,
        kernel: KernelState,
        preview: FromQuery[str | None] = None,
    ) -> Response[bytes]:
        """Everything the snippet needs for this site in one response; ``If-None-Match`` → 304.

        ``?preview=slug:variant`` also serves that experiment while it is a draft, and tells the
        snippet which variant to force (``forced``).
        """
        if preview is not None and len(preview) > MAX_PREVIEW:
            raise field_error("preview", f"must be at most {MAX_PREVIEW} characters (slug:variant)")
        if preview is not None and "\x00" in preview:
            raise field_error("preview", NO_NUL)
        site = current_site(request)
        country = country_of(request, kernel)
        cache: ConfigCache = request.app.state.config_cache
        built = await cache.get(db_session, kernel, site, country, preview or None)
        if built is None:
            raise NotFoundException("This site no longer exists")
        headers = {"ETag": built.etag, "Cache-Control": "private, no-cache"}  # per visitor country
        vary = kernel.settings.country_header or None
        return respond(request, built.content, "application/json", headers, vary)

    @post("/experiments/{experiment_id:str}/assign", operation_id="assignVisitor", status_code=200)
    async def assign(
        self,
        request: Request[Any, Any, Any],
        experiment_id: FromPath[str],
        data: JSONBody[AssignIn],
        db_session: DbSession,
        kernel: KernelState,
    ) -> AssignOut:
        """Assign a visitor (targeting evaluated here; a stored assignment wins) and record it.

        The path segment is the experiment's slug.
        """
        site, slug = current_site(request), experiment_id
        if "\x00" in slug:
            raise field_error("slug", NO_NUL)
        if not data.visitor_id or len(data.visitor_id) > 200:
            raise field_error("visitor_id", "must be 1 to 200 characters")
        if "\x00" in data.visitor_id:
            raise field_error("visitor_id", NO_NUL)
        experiment = await db_session.scalar(
            select(Experiment).where(Experiment.site_id == site.site_id, Experiment.slug == slug)
        )
        if experiment is None or experiment.status == "archived":
            state = "is archived" if experiment else "does not exist on this site"
            raise NotFoundException(f"The experiment '{slug}' {state}")
        if experiment.status != "live":
            return AssignOut(experiment=slug, in_experiment=False, variant=None, reason=experiment.status)
        variants = list(
            (
                await db_session.scalars(
                    select(Variant).where(Variant.experiment_id == experiment.id).order_by(Variant.position)
                )
            ).all()
        )
        by_id = {v.id: v for v in variants}
        stored = await db_session.scalar(
            select(ExperimentVisitor.variant_id).where(
                ExperimentVisitor.experiment_id == experiment.id,
                ExperimentVisitor.visitor_id == data.visitor_id,
            )
        )
        if stored in by_id:
            v = by_id[stored]
            return AssignOut(
                experiment=slug, in_experiment=True, variant=AssignedVariant(v.id, v.key, v.name)
            )
        t = data.targeting_data
        visitor = assignment.VisitorContext(
            visitor_id=data.visitor_id,
            url=t.url,
            device=t.device,
            viewport_width=t.viewport_width,
            country=t.country or country_of(request, kernel),
            is_returning=t.is_returning,
            attributes=t.attributes,
            referrer=t.referrer,
        )
        decision = assignment.evaluate(rules_of(experiment, variants), visitor)
        if not decision.in_experiment or decision.variant_id is None:
            return AssignOut(experiment=slug, in_experiment=False, variant=None, reason=decision.reason)
        insert = pg_insert if kernel.db.engine.dialect.name == "postgresql" else sqlite_insert
        await db_session.execute(
            insert(ExperimentVisitor)
            .values(
                id=new_id(),
                experiment_id=experiment.id,
                variant_id=decision.variant_id,
                site_id=site.site_id,
                visitor_id=data.visitor_id,
                assigned_at=utcnow(),
            )
            .on_conflict_do_nothing()
        )
        winner = await db_session.scalar(
            select(ExperimentVisitor.variant_id).where(
                ExperimentVisitor.experiment_id == experiment.id,
                ExperimentVisitor.visitor_id == data.visitor_id,
            )
        )
        v = by_id[winner or decision.variant_id]  # a concurrent first assignment wins over ours
        return AssignOut(experiment=slug, in_experiment=True, variant=AssignedVariant(v.id, v.key, v.name))

    @get("/flags", operation_id="visitorFlags")
    async def flags(
        self, request: Request[Any, Any, Any], db_session: DbSession, visitor_id: FromQuery[str]
    ) -> dict[str, dict[str, bool]]:
        """Every flag of the site, on or off for this visitor."""
        site = current_site(request)
        rows = (
            await db_session.execute(
                select(Flag.key, Flag.status, Flag.rollout_percentage).where(
                    Flag.site_id == site.site_id, Flag.status != "archived"
                )
            )
        ).all()
        flags = [(key, rollout, status == "active") for key, status, rollout in rows]
        return {"flags": assignment.flags_enabled(flags, visitor_id)}
