"""What the browser tests share: sites and live experiments through the API, rows from the database."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from playwright.async_api import Browser, Page

from tests.core.events.test_ingest import rows
from tests.core.experiments.test_experiments import owner_site

PASSWORD = "correct horse battery staple"  # dashboard sign-ups
ORIGINAL, CHANGED = "Original headline", "Variant headline"
HERO = f"<h1 class='hero'>{ORIGINAL}</h1><p class='lead'>Welcome</p><button class='cta'>Buy</button>"


async def shop_site(
    api: httpx.AsyncClient, database_url: str, plan: str = "enterprise"
) -> tuple[dict[str, str], dict[str, Any]]:
    """An owner on ``plan`` and a site; returns (auth headers, site)."""
    h, site = await owner_site(api, database_url, plan=plan)
    return h, site


def variants(*changes: dict[str, Any], control: float = 0, **extra: Any) -> list[dict[str, Any]]:
    """Control and ``variant_b`` (with ``changes``); by default every visitor gets ``variant_b``."""
    return [
        {"key": "control", "name": "Control", "weight": control},
        {"key": "variant_b", "name": "Variant B", "weight": 100 - control, "changes": list(changes), **extra},
    ]


async def experiment(
    api: httpx.AsyncClient,
    h: dict[str, str],
    site: dict[str, Any],
    *,
    start: bool = True,
    **over: Any,
) -> dict[str, Any]:
    """An experiment (live unless ``start=False``) whose variant_b rewrites the hero headline."""
    body: dict[str, Any] = {
        "name": over.pop("name", "Hero test"),
        "variants": over.pop("variants", None)
        or variants({"type": "text", "selector": "h1.hero", "text": CHANGED}),
        "targeting": over.pop("targeting", {"url_rules": [{"type": "contains", "value": "/"}]}),
        "goals": over.pop("goals", [{"type": "click", "name": "Buy", "selector": ".cta", "primary": True}]),
        "activation_delay_ms": over.pop("activation_delay_ms", 0),
        **over,
    }
    r = await api.post(f"/api/v1/projects/{site['id']}/experiments", json=body, headers=h)
    assert r.status_code == 201, r.text
    exp: dict[str, Any] = r.json()
    if start:
        started = await api.post(f"/api/v1/experiments/{exp['id']}/start", headers=h)
        assert started.status_code == 200, started.text
        exp = started.json()
    return exp


async def wait_rows(
    database_url: str, sql: str, count: int, timeout: float = 10.0, **params: Any
) -> list[Any]:
    """The rows of ``sql`` once there are ``count`` of them (the snippet sends about 1 s after an event)."""
    deadline = time.monotonic() + timeout
    got: list[Any] = []
    while time.monotonic() < deadline:
        got = await rows(database_url, sql, **params)
        if len(got) >= count:
            return got
        await asyncio.sleep(0.2)
    raise AssertionError(f"expected {count} rows of {sql!r} {params}, found {len(got)}: {got}")


async def events_of(database_url: str, site_id: str, name: str | None = None) -> list[Any]:
    """``(event_name, visitor_id, experiment_id, variant_id, url, event_data)`` of a site, oldest first."""
    where = " AND event_name = :n" if name else ""
    return await rows(
        database_url,
        "SELECT event_name, visitor_id, experiment_id, variant_id, url, event_data FROM events "
        f"WHERE site_id = :s{where} ORDER BY created_at, id",
        s=site_id,
        n=name,
    )


@contextlib.asynccontextmanager
async def fresh_page(browser: Browser, **options: Any) -> AsyncIterator[Page]:
    """A page in a context of its own (another visitor: no cookies, no storage), console errors kept.

    ``options`` go to ``browser.new_context`` (``viewport``, ``extra_http_headers`` …); the
    viewport is 1280×800 unless given, like the ``page`` fixture's.
    """
    options.setdefault("viewport", {"width": 1280, "height": 800})
    context = await browser.new_context(**options)
    try:
        p = await context.new_page()
        errors: list[str] = []
        p.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        p.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
        p.console_errors = errors  # type: ignore[attr-defined]
        yield p
    finally:
        await context.close()


async def revealed(page: Page) -> None:
    """Waits until the page is shown (the anti-flicker curtain, if any, is gone)."""
    await page.wait_for_function("getComputedStyle(document.documentElement).opacity === '1'")


async def tracking(page: Page) -> None:
    """Waits until the ``track`` chunk runs (after the reveal: goals, link decoration, GA4/Mixpanel)."""
    await page.wait_for_function("window.__segmentlyTrack !== undefined")


def data(value: Any) -> dict[str, Any]:
    """``event_data`` as stored: JSON text on SQLite, a decoded value on PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else (value or {})


def unexpected_errors(page: Page) -> list[str]:
    """Console errors besides Chromium's note on the 400 of a form shown again with its field errors."""
    errors: list[str] = page.console_errors  # type: ignore[attr-defined]
    return [e for e in errors if not ("Failed to load resource" in e and "status of 400 (Bad Request)" in e)]


async def shot(page: Page, name: str) -> None:
    """A full-page screenshot ``test-artifacts/browser/dashboard-{name}.png``."""
    from tests.browser.conftest import ARTIFACTS

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)
