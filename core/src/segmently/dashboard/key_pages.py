"""The API keys page: management keys (shown once at creation) and each site's public key.

Gated like the API (``domain/accounts/keys``): admins list the management keys, the owner creates
and revokes them, creating needs the Enterprise plan. The full key is on the page that answers
the create and never again.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath, Parameter
from litestar.response import Redirect, Template
from sqlalchemy import select

from segmently.dashboard.errors import PAGE_ERRORS
from segmently.dashboard.forms import api_errors, build, field_problems, form_values
from segmently.dashboard.frame import page, redirect, static_url
from segmently.dashboard.settings_pages import fresh_key
from segmently.db.models import ManagementKey, Site
from segmently.domain.accounts import keys
from segmently.domain.accounts.auth import ROLE_RANK, Actor
from segmently.http.access import OWNER
from segmently.http.deps import CurrentActor, DbSession, KernelState
from segmently.http.idempotency import IdempotencyKeyInFlight, IdempotencyKeyReused, IdempotentCreate
from segmently.kernel import Kernel
from segmently.tiers import API_MANAGEMENT
from segmently.tiers.guards import require_feature_for
from segmently.tiers.limits import FeatureNotIncluded

NOTICES = {"revoked": "Key revoked: the Management API refuses it from the next request on."}
REPLAYED_KEY = (
    "This form was sent twice: the key was created by the first submit, and its full key was shown "
    "only then. If you did not copy it, revoke it and create another."
)


class KeyPages(Controller):
    """``/api-keys``: list, create (the key shown once) and revoke management keys."""

    path = "/api-keys"
    include_in_schema = False
    exception_handlers = PAGE_ERRORS

    async def _keys(
        self,
        request: Request[Any, Any, Any],
        actor: Actor,
        db_session: DbSession,
        kernel: Kernel,
        *,
        status_code: int = 200,
        notice: str | None = None,
        problem: str | None = None,
        values: dict[str, str] | None = None,
        errors: dict[str, str] | None = None,
        new_key: str | None = None,
    ) -> Template:
        sites = (
            await db_session.scalars(
                select(Site).where(Site.organization_id == actor.organization_id).order_by(Site.name)
            )
        ).all()
        is_admin = ROLE_RANK[actor.role] >= ROLE_RANK["admin"]
        listed: list[ManagementKey] = []
        if is_admin:  # the API lists keys to admins only
            listed = list(
                (
                    await db_session.scalars(
                        select(ManagementKey)
                        .where(ManagementKey.organization_id == actor.organization_id)
                        .order_by(ManagementKey.created_at.desc(), ManagementKey.id.desc())
                    )
                ).all()
            )
        active = sum(1 for key in listed if key.revoked_at is None)
        upgrade = None
        try:
            await require_feature_for(kernel, actor.organization, API_MANAGEMENT.key)
        except FeatureNotIncluded as exc:
            upgrade = exc.message
        if actor.role != "owner":
            create_blocker: str | None = (
                f"Only the owner of {actor.organization.name} can create or revoke keys."
            )
        elif active >= keys.MAX_ACTIVE_KEYS:
            create_blocker = keys.TOO_MANY
        else:
            create_blocker = None
        form = {"name": "", **(values or {})}
        form.setdefault("idempotency_key", uuid.uuid4().hex)
        response = await page(
            request,
            "api_keys.html",
            actor,
            db_session,
            kernel,
            "api-keys",
            status_code=status_code,
            sites=sites,
            keys=listed,
            active_keys=active,
            max_active=keys.MAX_ACTIVE_KEYS,
            is_admin=is_admin,
            upgrade=upgrade,
            create_blocker=create_blocker,
            notice=notice,
            problem=problem,
            values=form,
            errors=errors or {},
            new_key=new_key,
            static_css=static_url("settings.css"),
        )
        response.headers["Cache-Control"] = "no-store"  # a new key is on this page once: never keep a copy
        return response

    @get("/", name="dashboard:api-keys")
    async def api_keys(
        self,
        request: Request[Any, Any, Any],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
        notice: Annotated[str | None, Parameter(required=False)] = None,
    ) -> Template:
        """Management keys (admins see them; the owner creates and revokes) and each site's public key."""
        return await self._keys(request, actor, db_session, kernel, notice=NOTICES.get(notice or ""))

    @post("/", opt=OWNER, status_code=200)
    async def create_key(
        self, request: Request[Any, Any, Any], actor: CurrentActor, db_session: DbSession, kernel: KernelState
    ) -> Template | Redirect:
        """Create a ``seg_mgmt_`` key (owner; Enterprise); the answer shows it this once.

        The idempotency record keeps the key's name and prefix, never the key: a second submit of
        the same form creates nothing and says the key was shown to the first.
        """
        actor.require_user()
        actor.require("owner", "manage API keys")
        values = await form_values(request, ("name", "idempotency_key"))
        errors = field_problems(keys.ManagementKeyIn, {"name": values["name"]})
        if errors:
            return await self._keys(
                request, actor, db_session, kernel, status_code=400, values=values, errors=errors
            )
        data = build(keys.ManagementKeyIn, values)
        raw: list[str] = []

        async def create() -> keys.ManagementKeyOut:
            await require_feature_for(kernel, actor.organization, API_MANAGEMENT.key)
            made = await keys.issue_key(db_session, actor, data.name)
            raw.append(made.key)
            return keys.ManagementKeyOut(
                id=made.id,
                name=made.name,
                prefix=made.prefix,
                created_at=made.created_at,
                last_used_at=None,
                revoked_at=None,
            )

        try:
            await IdempotentCreate(values["idempotency_key"] or None).run(
                db_session,
                actor.organization_id,
                request,
                data,
                create=create,
                replay=lambda body: msgspec.convert(body, keys.ManagementKeyOut),
            )
        except IdempotencyKeyInFlight:
            await db_session.rollback()
            return redirect("/api-keys")
        except (IdempotencyKeyReused, FeatureNotIncluded) as exc:
            await db_session.rollback()
            problem = (
                exc.message
                if isinstance(exc, FeatureNotIncluded)
                else "This form was sent already: try again"
            )
            status = 402 if isinstance(exc, FeatureNotIncluded) else 400
            return await self._keys(
                request,
                actor,
                db_session,
                kernel,
                status_code=status,
                values=fresh_key(values),
                problem=problem,
            )
        except HTTPException as exc:  # a blank name (400), ten active keys already (409)
            if exc.status_code not in (400, 409):
                raise
            await db_session.rollback()
            errors, unplaced = api_errors(exc, ("name",))
            return await self._keys(
                request,
                actor,
                db_session,
                kernel,
                status_code=exc.status_code,
                values=values,
                errors=errors,
                problem=unplaced,
            )
        if not raw:
            return await self._keys(
                request, actor, db_session, kernel, values=fresh_key({}), problem=REPLAYED_KEY
            )
        return await self._keys(request, actor, db_session, kernel, values=fresh_key({}), new_key=raw[0])

    @post("/{key_id:str}/revoke", opt=OWNER)
    async def revoke_key(self, key_id: FromPath[str], actor: CurrentActor, db_session: DbSession) -> Redirect:
        """Revoke a key (owner; any plan); the Management API refuses it from the next request on."""
        actor.require_user()
        actor.require("owner", "manage API keys")
        await keys.revoke(db_session, await keys.get_key(db_session, actor, key_id))
        return redirect("/api-keys?notice=revoked")
