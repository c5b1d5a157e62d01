"""The results page and the analytics table in Chromium: the charts are drawn, the numbers stay
reachable, the exports download, the table sorts by its headers.

Screenshots go to ``test-artifacts/browser/dashboard-results-*.png`` and ``dashboard-analytics-*.png``.
"""

from __future__ import annotations

from typing import Any

import httpx
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import ARTIFACTS, BROWSER
from tests.browser.support import shot, unexpected_errors
from tests.core.accounts.test_auth import bearer, signup
from tests.core.accounts.test_team import set_plan
from tests.core.analytics.seed import assign, convert, send, stamp
from tests.core.experiments.test_experiments import hero
from tests.dashboard.support import SESSION

pytestmark = BROWSER

FUNNEL = {"name": "Checkout", "steps": [{"label": "Home", "url": "/"}, {"label": "Paid", "url": "/thanks"}]}


async def launch(
    api: httpx.AsyncClient, h: dict[str, str], site: dict[str, Any], name: str
) -> dict[str, Any]:
    made = await api.post(
        f"/api/v1/projects/{site['id']}/experiments", json=hero(name=name, funnels=[FUNNEL]), headers=h
    )
    assert made.status_code == 201, made.text
    started = await api.post(f"/api/v1/experiments/{made.json()['id']}/start", headers=h)
    assert started.status_code == 200, started.text
    return started.json()  # type: ignore[no-any-return]


async def three_days(api: httpx.AsyncClient, key: str, exp: dict[str, Any], scale: int) -> None:
    """Visitors over three days (two, one and zero days ago); variant_b converts three times as often.

    Every other visitor opens the home page; converting ones go on to ``/thanks`` (the funnel).
    """
    events, later = [], []
    for days_ago, share in ((2, 1.0), (1, 1.3), (0, 0.7)):
        for variant, rate, extra in (("control", 5, 0), ("variant_b", 15, 10)):
            for i in range(int(scale * share) + extra):
                visitor = f"{exp['id'][:6]}-{variant}-{days_ago}-{i}"
                events.append(assign(exp, variant, visitor, timestamp=stamp(days_ago)))
                converts = i % 100 < rate
                if converts:
                    later.append(convert(visitor, 20.0, timestamp=stamp(days_ago)))
                if converts or i % 2 == 0:
                    later.append(
                        {"event_name": "page_view", "visitor_id": visitor, "url": "https://r.example/"}
                    )
                if converts:
                    later.append(
                        {"event_name": "page_view", "visitor_id": visitor, "url": "https://r.example/thanks"}
                    )
    await send(api, key, events)
    await send(api, key, later)


async def test_the_results_page_draws_its_charts_and_the_analytics_table_sorts(
    page: Page, browser: Browser, dashboard: str, database_url: str
) -> None:
    async with httpx.AsyncClient(base_url=dashboard, timeout=30) as api:
        body = await signup(api, "rita")
        await set_plan(database_url, body["organization"]["id"], "enterprise")
        h = bearer(body["token"])
        site = (
            await api.post(
                "/api/v1/projects", json={"name": "Rita shop", "url": "https://r.example"}, headers=h
            )
        ).json()
        big = await launch(api, h, site, "Hero test")
        small = await launch(api, h, site, "Button colour")
        await three_days(api, site["api_key"], big, 300)
        await three_days(api, site["api_key"], small, 20)
    await page.context.add_cookies([{"name": SESSION, "value": body["token"], "url": dashboard}])

    await page.goto(f"{dashboard}/experiments/{big['id']}")
    await expect(page.get_by_role("heading", name="Hero test", level=1)).to_be_visible()
    await expect(page.locator("#winner")).to_contain_text("Variant B wins")
    for metric in ("visitors", "rate"):
        canvas = page.locator(f'[data-chart="{metric}"] canvas')
        await expect(canvas).to_be_visible()
        size = await canvas.bounding_box()
        assert size and size["width"] > 200 and size["height"] > 100, (metric, size)
    # the legend names each variant; the table is still there for screen readers, shown on demand
    await expect(page.locator('[data-chart="visitors"] .u-legend')).to_contain_text("Variant B")
    table = page.locator("#timeline-table table")
    await expect(table).to_have_count(1)
    hidden = await page.locator("#timeline-table").bounding_box()
    assert hidden and hidden["width"] <= 1  # visually hidden, still in the accessibility tree
    toggle = page.get_by_role("button", name="Show the numbers")
    await toggle.focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("button", name="Hide the numbers")).to_have_attribute(
        "aria-expanded", "true"
    )
    await expect(table.locator("tbody tr")).to_have_count(3)
    await expect(table.locator("tbody tr").first).to_contain_text("300")  # two days ago: 300 in control
    funnel = page.locator("figure.funnel svg.funnel-chart")
    box = await funnel.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 50, box
    assert await funnel.locator("rect").count() == 4
    await shot(page, "results")

    # without JavaScript: no canvas, the timeline's table in plain sight, the funnel still drawn
    plain = await browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 800})
    try:
        await plain.add_cookies(await page.context.cookies())
        no_js = await plain.new_page()
        await no_js.goto(f"{dashboard}/experiments/{big['id']}")
        await expect(no_js.locator("#timeline-table table")).to_be_visible()
        await expect(no_js.locator("#timeline canvas")).to_have_count(0)
        await expect(no_js.locator("figure.funnel svg rect")).to_have_count(4)
        await no_js.screenshot(path=str(ARTIFACTS / "dashboard-results-no-js.png"), full_page=True)
    finally:
        await plain.close()

    async with page.expect_download() as download:
        await page.get_by_role("link", name="Export CSV").click()
    got = await download.value
    assert got.suggested_filename == "hero-test-results.csv"
    assert unexpected_errors(page) == []

    # the analytics table: the best lift, the winner, and sorting by a header
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Analytics").click()
    await page.wait_for_url(f"{dashboard}/analytics")
    names = page.locator("#overview tbody th a")
    await expect(names).to_have_text(["Button colour", "Hero test"])  # newest first
    await expect(page.locator("#overview tbody tr").last.locator(".winner-tag")).to_have_text("Variant B")
    await shot(page, "analytics")
    await page.locator("#overview thead").get_by_role("link", name="Visitors").click()
    await page.wait_for_url(f"{dashboard}/analytics?sort=visitors")
    await expect(names).to_have_text(["Hero test", "Button colour"])
    await expect(page.locator('#overview th[aria-sort="descending"]')).to_contain_text("Visitors")
    await page.locator("#overview thead").get_by_role("link", name="Visitors").click()
    await page.wait_for_url(f"{dashboard}/analytics?sort=visitors&order=asc")
    await expect(names).to_have_text(["Button colour", "Hero test"])
    await expect(page.locator('#overview th[aria-sort="ascending"]')).to_contain_text("Visitors")
    await shot(page, "analytics-sorted")
    await names.last.click()
    await page.wait_for_url(f"{dashboard}/experiments/{big['id']}")
    assert unexpected_errors(page) == []
