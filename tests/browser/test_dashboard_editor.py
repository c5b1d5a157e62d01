"""The visual editor in Chromium: the customer's page (with the snippet) in the editor's frame,
hover and click a heading, its selector, a new text previewed in the frame, saved into the variant,
then shown to a visitor who previews that variant.

Screenshots go to ``test-artifacts/browser/dashboard-editor-*.png``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Locator, Page, expect

from tests.browser.conftest import BROWSER, Shop, snippet_tag
from tests.browser.support import (
    CHANGED,
    HERO,
    ORIGINAL,
    fresh_page,
    revealed,
    shot,
    unexpected_errors,
    variants,
)
from tests.conftest import make_settings, serve_app
from tests.core.accounts.test_auth import bearer, signup
from tests.core.accounts.test_team import set_plan
from tests.dashboard.support import SESSION

pytestmark = BROWSER


@pytest.fixture
async def server(
    database_url: str, tmp_path: Path, snippet_dist: Path, plugins: object
) -> AsyncIterator[str]:
    """The server with both the dashboard's front-end files and the snippet built for this run."""
    from segmently.app import create_app
    from tests.dashboard import assets

    assets.build()
    settings = make_settings(database_url, tmp_path, snippet_dir=snippet_dist)
    async with serve_app(create_app(settings, plugins)) as base:  # type: ignore[arg-type]
        yield base


async def test_point_at_a_heading_change_its_text_save_and_a_visitor_sees_it(
    page: Page, browser: Browser, server: str, shop: Shop, database_url: str
) -> None:
    async with httpx.AsyncClient(base_url=server, timeout=10) as api:
        body = await signup(api, "ann")
        await set_plan(database_url, body["organization"]["id"], "enterprise")
        h = bearer(body["token"])
        site = (
            await api.post("/api/v1/projects", json={"name": "Ann's shop", "url": shop.url("/")}, headers=h)
        ).json()
        made = await api.post(
            f"/api/v1/projects/{site['id']}/experiments",
            json={"name": "Hero test", "variants": variants(control=50), "activation_delay_ms": 0},
            headers=h,
        )
        assert made.status_code == 201, made.text
        experiment = made.json()
    more = "<p><a class='more' href='/about'>About us</a></p>"
    shop.add("/", HERO + more, tag=snippet_tag(server, site["api_key"]))
    shop.add("/about", "<h1>About</h1>", tag=snippet_tag(server, site["api_key"]))

    await page.context.add_cookies([{"name": SESSION, "value": body["token"], "url": server}])
    editor = f"{server}/experiments/{experiment['id']}/editor?variant=variant_b"
    await page.goto(editor)
    status = page.locator("#frame-status")
    await expect(status).to_have_text("Connected: click an element of the page to select it.")
    await expect(page.get_by_role("link", name="Variant B")).to_have_attribute("aria-current", "page")
    await expect(page.get_by_text("No changes yet: Variant B shows the page as it is.")).to_be_visible()

    # hover, then click the heading in the frame: the panel shows the element and its selector
    frame = page.frame_locator("#editor-frame")
    heading = frame.locator("h1.hero")
    await heading.hover()
    await expect(frame.locator("segmently-editor-box").first).to_have_attribute(
        "style", re.compile("display:block")
    )
    await heading.click()
    selector = page.get_by_label("Selector")
    await expect(selector).to_have_value("h1.hero")
    await expect(page.locator("#match-count")).to_have_text("1 element matches.")
    facts = page.locator("#selected-facts")
    await expect(facts).to_contain_text("<h1>")
    await expect(facts).to_contain_text(ORIGINAL)
    new_text = page.get_by_label("New text")
    await expect(new_text).to_be_focused()
    await expect(new_text).to_have_value(ORIGINAL)
    assert [p for p in shop.hits if p == "/about"] == []  # the click was the editor's, not the page's

    # a new text is previewed in the frame as it is typed
    await new_text.fill(CHANGED)
    await expect(heading).to_have_text(CHANGED)
    await shot(page, "editor-selected")

    # the selector is editable; the count follows it
    await selector.fill("h1, p.lead")
    await expect(page.locator("#match-count")).to_have_text("2 elements match.")
    await selector.fill("h1.nothing")
    await expect(page.locator("#match-count")).to_have_text("No element matches this selector.")
    await selector.fill("h1.hero")
    await expect(page.locator("#match-count")).to_have_text("1 element matches.")

    # Add change (from the keyboard): into the list, with what it matched on this page
    await page.get_by_role("button", name="Add change").focus()
    await page.keyboard.press("Enter")
    rows = page.locator("#change-rows > li")
    await expect(rows).to_have_count(1)
    await expect_row(rows.first, "Text", "h1.hero", "1 match", CHANGED)
    await expect(page.locator("#dirty")).to_have_text("Unsaved changes")
    await expect(heading).to_have_text(CHANGED)
    # a hide change of the lead paragraph, previewed, then removed again
    await page.get_by_label("Change", exact=True).select_option("hide")
    await expect(page.get_by_label("New text")).to_be_hidden()
    await selector.fill("p.lead")
    await page.get_by_role("button", name="Add change").click()
    await expect(rows).to_have_count(2)
    await expect(frame.locator("p.lead")).to_be_hidden()
    await page.get_by_role("button", name="Remove change 2 (Hide p.lead)").click()
    await expect(rows).to_have_count(1)
    await expect(frame.locator("p.lead")).to_be_visible()

    await page.get_by_role("button", name="Save changes").click()
    await page.wait_for_url(f"{editor}&notice=saved")
    await expect(page.get_by_text("Changes saved.")).to_be_visible()
    await expect(rows).to_have_count(1)
    await expect_row(rows.first, "Text", "h1.hero", "1 match", CHANGED)
    await expect(heading).to_have_text(CHANGED)  # the saved changes are previewed on arrival
    await shot(page, "editor-saved")

    async with httpx.AsyncClient(base_url=server, timeout=10) as api:
        saved = (await api.get(f"/api/v1/experiments/{experiment['id']}", headers=h)).json()
    variant_b = next(v for v in saved["variants"] if v["key"] == "variant_b")
    assert variant_b["changes"] == [{"type": "text", "selector": "h1.hero", "text": CHANGED}]
    assert saved["variants"][0]["changes"] == []

    # Navigate: clicks reach the page again, so its links work
    await page.get_by_role("button", name="Navigate").click()
    await expect(page.get_by_role("button", name="Navigate")).to_have_attribute("aria-pressed", "true")
    await frame.locator("a.more").click()
    await expect(frame.locator("h1")).to_have_text("About")
    assert "/about" in shop.hits
    # the page the link led to is in editor mode too: back to Select, its heading can be picked
    await expect(page.locator("#frame-status")).to_have_text("Navigate: links and buttons of the page work.")
    await page.get_by_role("button", name="Select", exact=True).click()
    await frame.locator("h1").click()
    await expect(page.locator("#selected-facts")).to_contain_text("About")

    # a visitor previewing the variant gets the new text
    async with fresh_page(browser) as visitor:
        await visitor.goto(shop.url(f"/?segmently_preview={experiment['slug']}:variant_b"))
        await revealed(visitor)
        await expect(visitor.locator("h1.hero")).to_have_text(CHANGED)
    assert unexpected_errors(page) == []

    # without JavaScript: the list, and one change added by selector (a missing one is refused)
    plain = await browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 800})
    try:
        await plain.add_cookies([{"name": SESSION, "value": body["token"], "url": server}])
        no_js = await plain.new_page()
        await no_js.goto(editor)
        await expect_row(no_js.locator("#change-rows > li").first, "Text", "h1.hero", "", CHANGED)
        await no_js.get_by_label("Change", exact=True).select_option("hide")
        await no_js.get_by_role("button", name="Add change").click()
        await expect(no_js.locator("#f-selector-error")).to_have_text("Selector is required")
        await expect(no_js.get_by_label("Selector")).to_have_attribute("aria-invalid", "true")
        await shot(no_js, "editor-no-js-refused")
        await no_js.get_by_label("Selector").fill("button.cta")
        await no_js.get_by_role("button", name="Add change").click()
        await no_js.wait_for_url(f"{editor}&notice=added")
        await expect(no_js.locator("#change-rows > li")).to_have_count(2)
        await expect_row(no_js.locator("#change-rows > li").nth(1), "Hide", "button.cta", "", "")
        await shot(no_js, "editor-no-js")
    finally:
        await plain.close()


async def expect_row(row: Locator, kind: str, selector: str, matched: str, value: str) -> None:
    """One change of the list: its kind, selector, what it matched on the framed page, its value."""
    await expect(row.locator(".change-kind")).to_have_text(kind)
    await expect(row.locator(".change-selector")).to_have_text(selector)
    for part, text in ((".matched", matched), (".change-value", value)):
        if text:
            await expect(row.locator(part)).to_have_text(text)
        else:
            await expect(row.locator(part)).to_have_count(0)
