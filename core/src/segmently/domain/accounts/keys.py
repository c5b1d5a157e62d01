"""Management API keys: ``seg_mgmt_…``, shown once, stored as SHA-256, owner-only, at most 10 active.

A key works on the Management API (``/api/v1/manage/…``) only, with the admin role in its
organization there; every other path of the API refuses it with 403, and the Management API
takes nothing else (see :mod:`segmently.domain.accounts.auth`). A revoked key is refused from
the next request on. Creating a key needs the Enterprise
plan; listing and revoking do not, so keys can still be reviewed and revoked after a downgrade.
"""

from __future__ import annotations

import datetime as dt

import msgspec
from litestar import Controller, delete, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from segmently.db.base import utcnow
from segmently.db.models import ManagementKey, Organization
from segmently.domain.accounts import schemas
from segmently.domain.accounts.auth import Actor
from segmently.domain.accounts.security import management_key, sha256
from segmently.domain.accounts.services import Conflict
from segmently.http.access import ADMIN, OWNER
from segmently.http.deps import CurrentActor, DbSession, KernelState
from segmently.http.errors import field_error
from segmently.http.pagination import Page, paginate
from segmently.tiers.guards import require_feature_for

MAX_ACTIVE_KEYS = 10
PREFIX_LENGTH = 12
TOO_MANY = f"An organization can have at most {MAX_ACTIVE_KEYS} active management keys; revoke one first"


class ManagementKeyIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/v1/organization/management-keys``."""

    name: schemas.Name


class ManagementKeyCreatedOut(msgspec.Struct):
    """A new key; ``key`` is shown here and never again (copy it now)."""

    id: str
    name: str
    prefix: str
    key: str
    created_at: dt.datetime


class ManagementKeyOut(msgspec.Struct):
    """A key as listed: its name and first characters, never the key itself."""

    id: str
    name: str
    prefix: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


def key_out(key: ManagementKey) -> ManagementKeyOut:
    """The API view of a stored key."""
    return ManagementKeyOut(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


async def count_active(session: AsyncSession, organization_id: str) -> int:
    """How many keys of the organization are not revoked."""
    return int(
        await session.scalar(
            select(func.count())
            .select_from(ManagementKey)
            .where(ManagementKey.organization_id == organization_id, ManagementKey.revoked_at.is_(None))
        )
        or 0
    )


async def issue_key(session: AsyncSession, actor: Actor, name: str) -> ManagementKeyCreatedOut:
    """Create a key for the actor's organization (409 when 10 are active already)."""
    name = name.strip()
    if not name:
        raise field_error("name", "must not be blank")
    # Write-lock the organization row first, so concurrent creations count one after the
    # other and the limit holds: a row lock on PostgreSQL, the database write lock on SQLite.
    await session.execute(
        update(Organization)
        .where(Organization.id == actor.organization_id)
        .values(status=Organization.status)
        .execution_options(synchronize_session=False)
    )
    if await count_active(session, actor.organization_id) >= MAX_ACTIVE_KEYS:
        raise Conflict(TOO_MANY)
    raw = management_key()
    key = ManagementKey(
        organization_id=actor.organization_id,
        name=name,
        key_hash=sha256(raw),
        prefix=raw[:PREFIX_LENGTH],
        created_by=actor.user.id if actor.user is not None else None,
        created_at=utcnow(),
    )
    session.add(key)
    await session.flush()
    return ManagementKeyCreatedOut(
        id=key.id, name=key.name, prefix=key.prefix, key=raw, created_at=key.created_at
    )


async def get_key(session: AsyncSession, actor: Actor, key_id: str) -> ManagementKey:
    """A key of the actor's organization; 404 otherwise (another organization's keys do not exist here)."""
    key = await session.scalar(
        select(ManagementKey).where(
            ManagementKey.id == key_id, ManagementKey.organization_id == actor.organization_id
        )
    )
    if key is None:
        raise NotFoundException("No such management key")
    return key


async def revoke(session: AsyncSession, key: ManagementKey) -> None:
    """Revoke ``key`` (revoking it again keeps the first revocation time)."""
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()


class ManagementKeyController(Controller):
    """``/api/v1/organization/management-keys``: create (shown once), list, revoke.

    These routes take a signed-in user's session: the keys they manage are accepted by the
    Management API (``/api/v1/manage/…``) only, so a key cannot manage keys.
    """

    path = "/api/v1/organization/management-keys"
    tags = ["management keys"]

    @post("/", operation_id="createManagementKey", opt=OWNER, status_code=HTTP_201_CREATED)
    async def create_key(
        self,
        data: JSONBody[ManagementKeyIn],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
    ) -> ManagementKeyCreatedOut:
        """Create a ``seg_mgmt_`` key (owner; Enterprise plan; at most 10 active).

        The key is in this response only: it is stored as a hash and cannot be shown again.
        """
        actor.require_user()
        actor.require("owner", "manage API keys")
        await require_feature_for(kernel, actor.organization, "api.management")
        return await issue_key(db_session, actor, data.name)

    @get("/", operation_id="listManagementKeys", opt=ADMIN)
    async def list_keys(
        self,
        actor: CurrentActor,
        db_session: DbSession,
        limit: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Page[ManagementKeyOut]:
        """The organization's keys, revoked ones included, newest first (admins; never the keys)."""
        actor.require("admin", "see API keys")
        stmt = select(ManagementKey).where(ManagementKey.organization_id == actor.organization_id)
        rows, next_cursor = await paginate(
            db_session, stmt, [ManagementKey.created_at, ManagementKey.id], limit, cursor
        )
        return Page(items=[key_out(k) for k in rows], next_cursor=next_cursor)

    @delete("/{key_id:str}", operation_id="revokeManagementKey", opt=OWNER, status_code=HTTP_204_NO_CONTENT)
    async def revoke_key(self, key_id: FromPath[str], actor: CurrentActor, db_session: DbSession) -> None:
        """Revoke a key (owner); it is refused from the next request on."""
        actor.require_user()
        actor.require("owner", "manage API keys")
        await revoke(db_session, await get_key(db_session, actor, key_id))
