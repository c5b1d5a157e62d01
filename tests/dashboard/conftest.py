"""Dashboard fixtures: assets built before any app is made, so pages link htmx."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dashboard import assets


@pytest.fixture(scope="session", autouse=True)
def dashboard_assets() -> Path:
    return assets.build()
