"""Sites: create, read, change, delete; API keys."""

from __future__ import annotations

from litestar.exceptions import NotFoundException
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from segmently.db.base import utcnow
from segmently.db.models import Site
from segmently.domain.accounts.auth import Actor
from segmently.domain.accounts.security import site_api_key
from segmently.domain.events.purge import delete_site_events
from segmently.domain.sdk.config import bump
from segmently.domain.sites import schemas
from segmently.http.errors import field_error
from segmently.outbox import emit


def site_out(site: Site) -> schemas.ProjectOut:
    """The API view of a site."""
    return schemas.ProjectOut(
        id=site.id,
        organization_id=site.organization_id,
        name=site.name,
        url=site.url,
        api_key=site.api_key,
        created_at=site.created_at,
        updated_at=site.updated_at,
    )


async def count_sites(session: AsyncSession, organization_id: str) -> int:
    """How many sites the organization has (for the plan's limit)."""
    return int(
        await session.scalar(
            select(func.count()).select_from(Site).where(Site.organization_id == organization_id)
        )
        or 0
    )


async def get_site(session: AsyncSession, actor: Actor, site_id: str) -> Site:
    """The site if it belongs to the caller's organization; 404 otherwise (never another's data)."""
    site = await session.scalar(
        select(Site).where(Site.id == site_id, Site.organization_id == actor.organization_id)
    )
    if site is None:
        raise NotFoundException("No such site")
    return site


async def create_site(session: AsyncSession, actor: Actor, data: schemas.ProjectIn) -> Site:
    """Create a site with a fresh API key and emit ``project.created``."""
    site = Site(
        organization_id=actor.organization_id,
        name=data.name.strip(),
        url=data.url.rstrip("/"),
        api_key=site_api_key(),
    )
    session.add(site)
    await session.flush()
    emit(
        session,
        "project.created",
        actor.organization_id,
        {"project_id": site.id, "name": site.name, "url": site.url},
    )
    return site


async def update_site(session: AsyncSession, site: Site, data: schemas.ProjectPatch) -> Site:
    """Rename a site or change its URL."""
    if data.name is not None:
        site.name = data.name.strip()
    if data.url is not None:
        site.url = data.url.rstrip("/")
    site.updated_at = utcnow()
    await session.flush()
    await bump(session, site.id)
    return site


async def delete_site(session: AsyncSession, site: Site, confirm: str | None) -> None:
    """Delete a site and all its data; ``confirm`` must repeat the site's name."""
    if confirm is None or confirm.strip() != site.name:
        raise field_error(
            "confirm", f"type the site's name ({site.name}) to confirm deleting it and all its data"
        )
    emit(session, "project.deleted", site.organization_id, {"project_id": site.id, "name": site.name})
    await delete_site_events(session, [site.id])  # no foreign keys: nothing cascades to events
    await session.delete(site)
    await session.flush()


async def regenerate_key(session: AsyncSession, site: Site) -> Site:
    """Give the site a new API key; the old one stops working at once."""
    site.api_key = site_api_key()
    site.updated_at = utcnow()
    await session.flush()
    return site
