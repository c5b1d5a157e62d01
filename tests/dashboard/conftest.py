"""Dashboard fixtures: assets built before any app is made, so pages link htmx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.dashboard import assets


@pytest.fixture(scope="session", autouse=True)
def dashboard_assets() -> Path:
    return assets.build()


@pytest.fixture
async def api(client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A second client for the JSON API with Bearer tokens (no session cookie, so no CSRF)."""
    async with httpx.AsyncClient(base_url=client.base_url, timeout=30) as c:
        yield c
