"""Request and response bodies of the sites (projects) API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

SiteName = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
SiteUrl = Annotated[str, msgspec.Meta(min_length=8, max_length=2048, pattern=r"^https?://[^\s/]+")]


class ProjectIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/v1/projects``."""

    name: SiteName
    url: SiteUrl


class ProjectPatch(msgspec.Struct, forbid_unknown_fields=True):
    """``PATCH /api/v1/projects/{id}``."""

    name: SiteName | None = None
    url: SiteUrl | None = None


class ProjectOut(msgspec.Struct):
    """A site as the API shows it."""

    id: str
    organization_id: str
    name: str
    url: str
    api_key: str
    created_at: dt.datetime
    updated_at: dt.datetime
