"""One site's page in Chromium: experiment quick actions, copying the install tag, the "Would fire"
tester with and without JavaScript, deleting the site.

Screenshots go to ``test-artifacts/browser/dashboard-site-*.png``.
"""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import ARTIFACTS, BROWSER
from tests.browser.support import PASSWORD, shot, unexpected_errors
from tests.core.accounts.test_auth import bearer
from tests.core.accounts.test_team import set_plan
from tests.core.experiments.test_experiments import hero
from tests.dashboard.support import SESSION

pytestmark = BROWSER


async def session_token(page: Page) -> str:
    cookies = await page.context.cookies()
    return next(c["value"] for c in cookies if c["name"] == SESSION)


async def test_run_an_experiment_copy_the_tag_test_a_rule_and_delete_the_site(
    page: Page, browser: Browser, dashboard: str, database_url: str
) -> None:
    await page.goto(f"{dashboard}/signup")
    await page.get_by_label("Your name").fill("Ann")
    await page.get_by_label("Email").fill("ann@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_label("Organization name").fill("Ann's shop")
    await page.get_by_role("button", name="Create account").click()
    await page.wait_for_url(f"{dashboard}/sites")
    await page.get_by_label("Site name").fill("Ann's shop")
    await page.get_by_label("Site URL").fill("https://shop.example")
    await page.get_by_role("button", name="Create Site").click()
    await page.wait_for_url(f"{dashboard}/sites/*")
    site_page = page.url.split("?")[0]
    site_id = site_page.rsplit("/", 1)[1]

    # a draft experiment, made with the JSON API and the session's token (the Enterprise plan)
    me = await (await page.request.get(f"{dashboard}/api/v1/me")).json()
    await set_plan(database_url, me["organization"]["id"], "enterprise")
    async with httpx.AsyncClient(base_url=dashboard, timeout=10) as api:
        made = await api.post(
            f"/api/v1/projects/{site_id}/experiments",
            json=hero(name="Hero test"),
            headers=bearer(await session_token(page)),
        )
        assert made.status_code == 201, made.text
    await page.goto(site_page)
    draft = page.locator("section.state-group", has=page.locator("#group-draft"))
    live = page.locator("section.state-group", has=page.locator("#group-live"))
    paused = page.locator("section.state-group", has=page.locator("#group-paused"))
    archived = page.locator("#group-archived")
    await expect(draft.locator(".experiment-name")).to_have_text(["Hero test"])
    await expect(live.get_by_text("No live experiments.")).to_be_visible()
    await shot(page, "site-draft")

    await draft.get_by_role("button", name="Start Hero test").click()
    await expect(
        page.get_by_role("status").filter(has_text="Experiment started: it is live.")
    ).to_be_visible()
    await expect(live.locator(".experiment-name")).to_have_text(["Hero test"])
    await expect(live.get_by_role("link", name="Results of Hero test")).to_have_attribute(
        "href", f"/experiments/{made.json()['id']}"
    )
    await shot(page, "site-live")
    await live.get_by_role("button", name="Pause Hero test").click()
    await expect(page.get_by_text("Experiment paused. Its data is kept.")).to_be_visible()
    await expect(paused.locator(".experiment-name")).to_have_text(["Hero test"])
    await paused.get_by_role("button", name="Archive Hero test").click()
    await expect(page.get_by_text("Experiment archived.")).to_be_visible()
    await expect(archived.get_by_role("button", name="Reinstate Hero test")).to_be_hidden()  # collapsed
    await archived.locator("summary").click()
    await expect(archived.locator("summary")).to_have_text("Archived (1)")
    await shot(page, "site-archived")
    await archived.get_by_role("button", name="Reinstate Hero test").click()
    await expect(page.get_by_text("Experiment reinstated as a draft.")).to_be_visible()
    await expect(draft.locator(".experiment-name")).to_have_text(["Hero test"])
    await expect(archived.locator("summary")).to_have_text("Archived (0)")

    # copy the install tag: Chromium lets the page read the clipboard once permission is granted
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=dashboard)
    tag = (await page.locator("#tag-js").text_content() or "").strip()
    assert tag.endswith(f'/segmently.js" data-api-key="{await api_key(page)}"></script>')
    copy = page.locator('button[data-copy="tag-js"]')
    await copy.focus()
    await page.keyboard.press("Enter")  # reachable and usable from the keyboard
    await expect(copy).to_have_text("Copied the install tag")
    assert await page.evaluate("() => navigator.clipboard.readText()") == tag
    await expect(page.locator("#copy-status")).to_have_text("Copied to the clipboard.")
    await shot(page, "site-copied")

    # the tester with htmx: the answer replaces the tester, the page stays
    tester = page.locator("#rule-tester")
    await tester.get_by_label("Condition").select_option("page_url")
    await tester.get_by_label("Path or parameter name").fill("/thanks")
    await tester.get_by_label("Test URL").fill("https://shop.example/thanks?order=7")
    await tester.get_by_role("button", name="Test").click()
    await expect(page.locator("#rule-tester .fire-result")).to_have_text("Would fire")
    assert page.url.split("?")[0] == site_page
    await page.locator("#rule-tester").get_by_label("Test URL").fill("/cart")
    await page.locator("#rule-tester").get_by_role("button", name="Test").click()
    await expect(page.locator("#rule-tester .fire-result")).to_have_text("Would not fire")
    await shot(page, "site-tester-htmx")

    # the same form without JavaScript: a normal post that answers with the whole page
    plain = await browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 800})
    try:
        await plain.add_cookies(await page.context.cookies())
        no_js = await plain.new_page()
        await no_js.goto(site_page)
        await expect(no_js.locator('button[data-copy="tag-js"]')).to_be_hidden()  # no copy button without JS
        form = no_js.locator("#rule-tester")
        await form.get_by_label("Condition").select_option("url_param")
        await form.get_by_label("Path or parameter name").fill("payment_intent")
        await form.get_by_label("Test URL").fill("/done?payment_intent=pi_1")
        await form.get_by_role("button", name="Test").click()
        await no_js.wait_for_url(f"{site_page}/rule-test")
        await expect(no_js.locator("#rule-tester .fire-result")).to_have_text("Would fire")
        await expect(no_js.get_by_role("heading", name="Ann's shop", exact=True)).to_be_visible()
        await no_js.screenshot(path=str(ARTIFACTS / "dashboard-site-tester-no-js.png"), full_page=True)
    finally:
        await plain.close()

    # the danger zone: the wrong name is refused next to the field, the right one deletes
    confirm = page.get_by_label("Type the site's name to confirm")
    await confirm.fill("Ann shop")
    await page.get_by_role("button", name="Delete Site").click()
    await expect(page.locator("#f-confirm-error")).to_have_text(
        "Type the site's name (Ann's shop) to confirm deleting it and all its data"
    )
    await expect(confirm).to_have_attribute("aria-invalid", "true")
    await shot(page, "site-delete-refused")
    await confirm.fill("Ann's shop")
    await page.get_by_role("button", name="Delete Site").click()
    await page.wait_for_url(f"{dashboard}/sites?notice=deleted")
    await expect(page.get_by_text("Site deleted.")).to_be_visible()
    await expect(page.get_by_text("No sites yet")).to_be_visible()
    await shot(page, "site-deleted")
    assert unexpected_errors(page) == []


async def api_key(page: Page) -> str:
    return (await page.locator("#api-key").text_content() or "").strip()
