"""Feature flags: create (idempotent), read, change (versioned), delete.

Status: ``active`` and ``inactive`` switch back and forth freely (inactive is the kill
switch); ``archived`` is final, as the spec says ("permanently disabled"): an archived
flag cannot be changed any more, only deleted (by an admin), which also frees its key.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.exceptions import ClientException, NotFoundException
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from segmently.db.base import utcnow
from segmently.db.models import Flag, Site
from segmently.domain.accounts.auth import Actor
from segmently.domain.flags import schemas
from segmently.domain.sdk.config import bump
from segmently.http.idempotency import PreconditionFailed, check_if_match

WHAT = "This flag"


class Conflict(ClientException):
    """409: the request clashes with existing data or with the flag's state."""

    status_code = 409


def flag_out(flag: Flag) -> schemas.FlagOut:
    """The API view of a flag."""
    return schemas.FlagOut(
        id=flag.id,
        key=flag.key,
        name=flag.name,
        description=flag.description,
        status=flag.status,
        rollout_percentage=flag.rollout_percentage,
        version=flag.version,
        created_at=flag.created_at,
        updated_at=flag.updated_at,
    )


def out_from_stored(body: dict[str, Any]) -> schemas.FlagOut:
    """A stored (replayed) answer as the response type."""
    return msgspec.convert(body, schemas.FlagOut)


async def get_flag(session: AsyncSession, actor: Actor, flag_id: str) -> Flag:
    """The flag if it belongs to the caller's organization; 404 otherwise."""
    flag = await session.scalar(
        select(Flag).where(Flag.id == flag_id, Flag.organization_id == actor.organization_id)
    )
    if flag is None:
        raise NotFoundException("No such flag")
    return flag


def _taken(key: str) -> Conflict:
    return Conflict(
        detail=f"A flag with the key '{key}' already exists on this site",
        extra=[{"key": "key", "message": f"'{key}' is taken on this site"}],
    )


async def create_flag(session: AsyncSession, site: Site, data: schemas.FlagIn) -> Flag:
    """A new flag on ``site``; 409 naming the key if the site has a flag with that key."""
    existing = await session.scalar(select(Flag.id).where(Flag.site_id == site.id, Flag.key == data.key))
    if existing is not None:
        raise _taken(data.key)
    now = utcnow()
    flag = Flag(
        organization_id=site.organization_id,
        site_id=site.id,
        key=data.key,
        name=data.name.strip(),
        description=data.description.strip(),
        status=data.status,
        rollout_percentage=float(data.rollout_percentage),
        version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(flag)
    try:
        await session.flush()
    except IntegrityError:  # a concurrent create of the same key committed first
        raise _taken(data.key) from None
    await bump(session, site.id)
    return flag


def _changes(flag: Flag, data: schemas.FlagPatch) -> dict[str, Any]:
    wanted: dict[str, Any] = {
        "name": data.name.strip() if data.name is not None else None,
        "description": data.description.strip() if data.description is not None else None,
        "status": data.status,
        "rollout_percentage": float(data.rollout_percentage) if data.rollout_percentage is not None else None,
    }
    return {k: v for k, v in wanted.items() if v is not None and getattr(flag, k) != v}


async def update_flag(
    session: AsyncSession, flag: Flag, data: schemas.FlagPatch, if_match: str | None
) -> Flag:
    """Apply a PATCH: 412 on a stale ``If-Match``, 409 on an archived flag; bumps ``version``.

    A PATCH that changes nothing leaves the flag (and its version) as it is. The write
    is conditional on the version read, so of two concurrent updates one gets 412.
    """
    check_if_match(if_match, flag.version, WHAT)
    if flag.status == "archived":
        raise Conflict(
            detail=f"The flag '{flag.key}' is archived, which is permanent: it cannot be changed. "
            "Create a new flag, or have an admin delete this one to reuse its key"
        )
    changes = _changes(flag, data)
    if not changes:
        return flag
    read_version = flag.version
    new_version = await session.scalar(
        update(Flag)
        .where(Flag.id == flag.id, Flag.version == read_version)
        .values(**changes, version=read_version + 1, updated_at=utcnow())
        .returning(Flag.version)
        .execution_options(synchronize_session=False)
    )
    if new_version is None:  # someone else wrote between our read and our write
        current = await session.scalar(select(Flag.version).where(Flag.id == flag.id))
        if current is None:
            raise NotFoundException("No such flag")
        raise PreconditionFailed(current, WHAT)
    await session.refresh(flag)
    await bump(session, flag.site_id)  # the kill switch is served from the next config fetch on
    return flag


async def delete_flag(session: AsyncSession, flag: Flag) -> None:
    """Delete a flag for good (its key can be used again)."""
    await session.delete(flag)
    await session.flush()
    await bump(session, flag.site_id)
