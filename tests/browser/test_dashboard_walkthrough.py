"""A new user's whole way in Chromium: sign up → create a site → copy the snippet → make and launch an
A/B test with the wizard (its variant changed in the visual editor on the shop's page) → visitors
come and convert → the results show their numbers and a winner → the alert bell says so.

Some visitors are real browsers on the shop's page (the copied tag, the snippet, the click goal);
the bulk of the population comes through the events API, as in the scheduler's tests. Screenshots
go to ``test-artifacts/browser/dashboard-walkthrough-*.png``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import BROWSER, Shop
from tests.browser.support import (
    CHANGED,
    HERO,
    ORIGINAL,
    PASSWORD,
    fresh_page,
    revealed,
    shot,
    unexpected_errors,
    wait_rows,
)
from tests.conftest import make_settings, serve_app, tcp_socket
from tests.core.accounts.test_auth import bearer
from tests.core.accounts.test_team import set_plan
from tests.core.alerts.test_jobs import populate
from tests.core.alerts.test_jobs_cli import env_for
from tests.core.test_cli import run
from tests.dashboard.support import SESSION

pytestmark = BROWSER

BROWSER_VISITORS = 6
POPULATION = {"control": (600, 30), "variant_b": (600, 120)}  # visitors, converters: B converts 4x,
# so B wins (Holm-adjusted sequential p ≈ 0.013) however the browser visitors split and buy


@pytest.fixture
async def server(
    database_url: str, tmp_path: Path, snippet_dist: Path, plugins: object
) -> AsyncIterator[str]:
    """The server with the dashboard's front-end files and the snippet built for this run, its
    ``SEGMENTLY_BASE_URL`` its own address (the install tag the site page shows points there)."""
    from segmently.app import create_app
    from tests.dashboard import assets

    assets.build()
    with tcp_socket() as sock:
        base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        settings = make_settings(database_url, tmp_path, snippet_dir=snippet_dist, base_url=base_url)
        async with serve_app(create_app(settings, plugins), sock) as base:  # type: ignore[arg-type]
            assert base == base_url
            yield base


async def save_and_continue(page: Page, following: str) -> None:
    await page.get_by_role("button", name="Save and continue").click()
    await expect(page.locator(".wizard-tabs [aria-current='step']")).to_have_text(following)


async def test_sign_up_to_a_winner_in_the_alert_bell(
    page: Page, browser: Browser, server: str, shop: Shop, database_url: str, tmp_path: Path
) -> None:
    # sign up and create the site (on the Enterprise plan: winner alerts)
    await page.goto(f"{server}/signup")
    await page.get_by_label("Your name").fill("Ann")
    await page.get_by_label("Email").fill("ann@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_label("Organization name").fill("Ann's shop")
    await page.get_by_role("button", name="Create account").click()
    await page.wait_for_url(f"{server}/sites")
    me = await (await page.request.get(f"{server}/api/v1/me")).json()
    await set_plan(database_url, me["organization"]["id"], "enterprise")
    await page.get_by_label("Site name").fill("Ann's shop")
    await page.get_by_label("Site URL").fill(shop.url("/"))
    await page.get_by_role("button", name="Create Site").click()
    await page.wait_for_url(f"{server}/sites/*")
    site_page = page.url.split("?")[0]
    await shot(page, "walkthrough-site")

    # copy the install tag and put it on the shop's page, as the owner of the shop would
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    await page.get_by_role("button", name="Copy the install tag", exact=True).click()
    tag = await page.evaluate("() => navigator.clipboard.readText()")
    assert tag.startswith(f'<script src="{server}/segmently.js" data-api-key="seg_live_'), tag
    shop.add("/", HERO, tag=tag)

    # the wizard: details, then the variants' tab
    await page.get_by_role("link", name="New experiment").click()
    await page.get_by_label("Experiment name").fill("Hero test")
    await page.get_by_label("Hypothesis").fill("A sharper headline sells more")
    await save_and_continue(page, "Variants")
    experiment_id = page.url.split("/")[4]

    # the visual editor, from the variant's row: click the heading in the frame, give it a new text
    await page.get_by_role("link", name="Visual editor for Variant B").click()
    await expect(page.locator("#frame-status")).to_have_text(
        "Connected: click an element of the page to select it."
    )
    frame = page.frame_locator("#editor-frame")
    await frame.locator("h1.hero").click()
    await expect(page.get_by_label("Selector")).to_have_value("h1.hero")
    await page.get_by_label("New text").fill(CHANGED)
    await expect(frame.locator("h1.hero")).to_have_text(CHANGED)
    await page.get_by_role("button", name="Add change").click()
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.get_by_text("Changes saved.")).to_be_visible()
    await shot(page, "walkthrough-editor")

    # back in the wizard: the variant's change is counted; a click goal; no activation delay; launch
    await page.goto(f"{server}/experiments/{experiment_id}/edit/variants")
    await expect(page.locator(".changes-count")).to_have_text(["0 changes", "1 change"])
    await save_and_continue(page, "Targeting")
    await save_and_continue(page, "Audience")
    await save_and_continue(page, "Goals & funnels")
    await page.get_by_role("button", name="+ Add goal").click()
    await page.get_by_label("Goal name 1").fill("Buy")
    await page.get_by_label("CSS selector of goal 1").fill(".cta")
    await page.get_by_label("Primary goal (goal 1)").check()
    await save_and_continue(page, "Advanced")
    await page.get_by_label("Activation delay").select_option("0")
    await save_and_continue(page, "Integrations")
    await save_and_continue(page, "Review & launch")
    await shot(page, "walkthrough-review")
    await page.get_by_role("button", name="Launch experiment").click()
    await page.wait_for_url(f"{site_page}?notice=start")
    await expect(page.get_by_text("Experiment started: it is live.")).to_be_visible()

    # real visitors on the shop: each sees its variant's headline; every other one buys
    seen = {"control": [0, 0], "variant_b": [0, 0]}
    for i in range(BROWSER_VISITORS):
        async with fresh_page(browser) as visitor:
            await visitor.goto(shop.url("/"))
            await revealed(visitor)
            variant = await visitor.evaluate("() => Segmently.getVariant('hero-test')")
            assert variant in seen, variant
            headline = CHANGED if variant == "variant_b" else ORIGINAL
            await expect(visitor.locator("h1.hero")).to_have_text(headline)
            seen[variant][0] += 1
            vid = await visitor.evaluate("() => Segmently.getVisitorId()")
            bought = i % 2 == 0
            if bought:
                await visitor.locator("button.cta").click()
                seen[variant][1] += 1
            # the visitor leaves: pagehide sends what is queued by sendBeacon; the context closes
            # once it has arrived (closing it sooner may cancel a beacon still on its way)
            await visitor.goto("about:blank")
            table = "experiment_conversions" if bought else "experiment_visitors"
            await wait_rows(database_url, f"SELECT 1 FROM {table} WHERE visitor_id = :v", 1, v=vid)
            assert unexpected_errors(visitor) == []

    # the rest of the population through the events API
    token = next(c["value"] for c in await page.context.cookies() if c["name"] == SESSION)
    async with httpx.AsyncClient(base_url=server, timeout=30) as api:
        exp = (await api.get(f"/api/v1/experiments/{experiment_id}", headers=bearer(token))).json()
        site = (await api.get(f"/api/v1/projects/{exp['project_id']}", headers=bearer(token))).json()
        await populate(api, site["api_key"], exp, POPULATION)
        expected = {k: (POPULATION[k][0] + n, POPULATION[k][1] + c) for k, (n, c) in seen.items()}
        for _ in range(100):  # the browsers' last events arrive by beacon
            results = (
                await api.get(f"/api/v1/experiments/{experiment_id}/results", headers=bearer(token))
            ).json()
            got = {v["key"]: (v["visitors"], v["conversions"]) for v in results["variants"]}
            if got == expected:
                break
            await asyncio.sleep(0.1)
        assert got == expected

    # the results page shows those numbers and the winner
    await page.goto(f"{server}/experiments/{experiment_id}")
    for key, (visitors, conversions) in expected.items():
        card = page.locator(f"#variant-{key}")
        await expect(card.locator("[data-metric='visitors']")).to_have_text(f"{visitors:,}")
        await expect(card.locator("[data-metric='conversions']")).to_have_text(f"{conversions:,}")
    await expect(page.locator("#winner")).to_contain_text("Variant B wins")
    await shot(page, "walkthrough-results")

    # the scheduler's winner detection raises the alert; the bell shows it
    # in a thread: the server runs in this event loop and must not be frozen while the CLI writes
    out = await asyncio.to_thread(run, "jobs", "run", "winner_detection", env=env_for(database_url, tmp_path))
    assert out.returncode == 0 and "job winner_detection: ran" in out.stdout, out.stderr
    await page.reload()
    badge = page.locator("#alert-badge")
    await expect(badge).to_be_visible()
    await expect(badge).to_have_text("1 unread")
    await page.locator("#bell summary").click()
    item = page.locator("#alert-panel .alert-item.unread")
    await expect(item).to_have_count(1)
    await expect(item).to_contain_text("Variant B")
    await expect(item).to_contain_text("Hero test")
    await shot(page, "walkthrough-bell")
    assert unexpected_errors(page) == []
