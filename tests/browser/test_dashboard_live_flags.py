"""The Live events page and the Feature Flags page in Chromium: events appear while the page is open,
Pause stops the polls, Resume brings what arrived; a flag is created and killed.

Screenshots go to ``test-artifacts/browser/dashboard-live-*.png`` and ``dashboard-flags-*.png``.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx
import pytest
from playwright.async_api import Page, Request, expect

from segmently.domain.events import live
from tests.browser.conftest import BROWSER
from tests.browser.support import shot, unexpected_errors
from tests.core.accounts.test_auth import bearer, signup
from tests.core.accounts.test_team import set_plan
from tests.dashboard.support import SESSION

pytestmark = BROWSER


async def send(api: httpx.AsyncClient, key: str, *visitors: str) -> None:
    events = [{"event_name": "page_view", "visitor_id": v} for v in visitors]
    r = await api.post("/api/v1/events/batch", json={"events": events}, headers={"X-API-Key": key})
    assert r.status_code == 202, r.text


async def test_live_events_appear_pause_and_resume_then_a_flag_is_created_and_killed(
    page: Page, dashboard: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "SETTLE_MARGIN", dt.timedelta(0))  # the server runs in this process
    async with httpx.AsyncClient(base_url=dashboard, timeout=10) as api:
        body = await signup(api, "vera")
        await set_plan(database_url, body["organization"]["id"], "professional")
        made = await api.post(
            "/api/v1/projects",
            json={"name": "Vera shop", "url": "https://vera.example"},
            headers=bearer(body["token"]),
        )
        site = made.json()
        key = site["api_key"]
        await page.context.add_cookies([{"name": SESSION, "value": body["token"], "url": dashboard}])
        polls: list[str] = []

        def count(request: Request) -> None:
            if "/live/rows" in request.url:
                polls.append(request.url)

        page.on("request", count)
        await page.goto(f"{dashboard}/sites/{site['id']}/live")
        await expect(page.get_by_role("heading", name="Live events")).to_be_visible()
        await expect(page.get_by_text("No events yet.")).to_be_visible()

        await send(api, key, "visitor_first01")
        rows = page.locator("#live-rows tr")
        await expect(rows.first).to_contain_text("visitor_first01", timeout=4_500)
        await expect(page.locator("#stat-events")).to_have_text("1")
        await send(api, key, "visitor_second2")
        await expect(rows.first).to_contain_text("visitor_second2", timeout=4_500)
        await expect(rows).to_have_count(2)  # prepended, nothing repeated
        await shot(page, "live-events")

        pause = page.get_by_role("button", name="Pause")
        await pause.click()
        await expect(page.get_by_role("button", name="Resume")).to_be_visible()
        before = len(polls)
        await send(api, key, "visitor_paused3")
        await asyncio.sleep(4)
        assert len(polls) == before  # paused: no request at all
        await expect(rows).to_have_count(2)
        await shot(page, "live-paused")

        await page.get_by_role("button", name="Resume").click()
        await expect(rows.first).to_contain_text("visitor_paused3", timeout=2_000)
        assert len(polls) > before

        await page.get_by_role("link", name="Feature Flags").click()
        await expect(page.get_by_role("heading", name="Feature flags")).to_be_visible()
        await page.get_by_label("Flag name").fill("New checkout")
        await page.get_by_label("Flag key").fill("Bad Key")
        await page.get_by_role("button", name="Create Flag").click()
        await expect(page.locator("#f-key-error")).to_have_text("Flag key has the wrong format")
        await page.get_by_label("Flag key").fill("new-checkout-ui")
        await page.get_by_label("Rollout (%)").fill("100")
        await page.get_by_label("Status").select_option("active")
        await page.get_by_role("button", name="Create Flag").click()
        await expect(page.get_by_text("Flag created.")).to_be_visible()
        await expect(page.get_by_text("Segmently.isEnabled('new-checkout-ui')")).to_be_visible()
        await shot(page, "flags-created")
        served = await api.get("/api/v1/flags", params={"visitor_id": "v1"}, headers={"X-API-Key": key})
        assert served.json()["flags"] == {"new-checkout-ui": True}

        await page.get_by_role("button", name="Kill switch new-checkout-ui").click()
        await expect(page.get_by_text("Flag turned off for every visitor.")).to_be_visible()
        await expect(page.locator("#flag-new-checkout-ui")).to_contain_text("Inactive")
        served = await api.get("/api/v1/flags", params={"visitor_id": "v1"}, headers={"X-API-Key": key})
        assert served.json()["flags"] == {"new-checkout-ui": False}
        await shot(page, "flags-killed")
    assert unexpected_errors(page) == []
