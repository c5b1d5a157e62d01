"""Public site API keys → site → organization, cached for at most 5 seconds per process.

The snippet's endpoints take a site key on every request; a short cache keeps them
off the database, and a suspended organization's keys stop working within 5 s on
every node (ARCHITECTURE.md §8).
"""

from __future__ import annotations

import re
import time
from typing import Any

import msgspec
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from sqlalchemy import select

from segmently.db.engine import Database
from segmently.db.models import Organization, Site

TTL_SECONDS = 5.0
MAX_ENTRIES = 50_000
KEY_FORMAT = re.compile(r"seg_live_[A-Za-z0-9_-]{8,128}")
"""What a site key looks like (``seg_live_`` and 32 hex digits when made); any other string is unknown."""


class SiteKey(msgspec.Struct, frozen=True, kw_only=True):
    """What a site key stands for."""

    site_id: str
    organization_id: str
    organization_name: str
    organization_status: str
    plan: str
    name: str
    url: str


def key_from(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The site key of a request: ``X-API-Key``, else ``?api_key=`` (``sendBeacon`` cannot set headers)."""
    return connection.headers.get("x-api-key") or connection.query_params.get("api_key")


class SiteKeys:
    """Looks up site keys, remembering each answer (found or not) for ``TTL_SECONDS``."""

    def __init__(self, db: Database, ttl: float = TTL_SECONDS) -> None:
        self.db = db
        self.ttl = ttl
        self._cache: dict[str, tuple[float, SiteKey | None]] = {}

    async def lookup(self, api_key: str) -> SiteKey | None:
        """The site behind ``api_key``, or None.

        A string that is not shaped like a key is unknown without a query (nor a cache entry): no
        NUL or other byte a database refuses reaches it.
        """
        if not KEY_FORMAT.fullmatch(api_key):
            return None
        now = time.monotonic()
        hit = self._cache.get(api_key)
        if hit is not None and hit[0] > now:
            return hit[1]
        async with self.db.sessions() as session:
            row = (
                await session.execute(
                    select(Site, Organization)
                    .join(Organization, Organization.id == Site.organization_id)
                    .where(Site.api_key == api_key)
                )
            ).first()
        found = None
        if row is not None:
            site, org = row
            found = SiteKey(
                site_id=site.id,
                organization_id=org.id,
                organization_name=org.name,
                organization_status=org.status,
                plan=org.plan,
                name=site.name,
                url=site.url,
            )
        if len(self._cache) >= MAX_ENTRIES:
            self._cache.clear()
        self._cache[api_key] = (now + self.ttl, found)
        return found

    async def require(self, api_key: str | None) -> SiteKey:
        """The site behind ``api_key``; 401 for a missing or unknown key, 403 for a suspended organization."""
        if not api_key:
            raise NotAuthorizedException("Missing site API key: send X-API-Key: seg_live_…")
        site = await self.lookup(api_key)
        if site is None:
            raise NotAuthorizedException("Unknown site API key")
        if site.organization_status != "active":
            raise PermissionDeniedException("This site's organization is suspended")
        return site
