"""The experiment wizard in Chromium: a new user makes an A/B test through every tab (the Variants
tab with the keyboard only), meets a field error next to its field, and launches it.

Screenshots go to ``test-artifacts/browser/dashboard-wizard-*.png``.
"""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.browser.conftest import BROWSER
from tests.browser.support import PASSWORD, shot, unexpected_errors
from tests.core.accounts.test_team import set_plan

pytestmark = BROWSER


async def tab_to(page: Page, selector: str, limit: int = 80) -> None:
    """Press Tab until the focus is on ``selector`` (fails if the keyboard never gets there)."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


async def retype(page: Page, value: str) -> None:
    """Replace the focused input's text from the keyboard."""
    await page.keyboard.press("Control+A")
    await page.keyboard.press("Delete")
    if value:
        await page.keyboard.type(value)


async def save_and_continue(page: Page, following: str) -> None:
    await page.get_by_role("button", name="Save and continue").click()
    await expect(page.locator(".wizard-tabs [aria-current='step']")).to_have_text(following)


async def test_a_new_user_builds_and_launches_an_ab_test_through_every_tab(
    page: Page, dashboard: str, database_url: str
) -> None:
    await page.goto(f"{dashboard}/signup")
    await page.get_by_label("Your name").fill("Ann")
    await page.get_by_label("Email").fill("ann@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_label("Organization name").fill("Ann's shop")
    await page.get_by_role("button", name="Create account").click()
    await page.wait_for_url(f"{dashboard}/sites")
    me = await (await page.request.get(f"{dashboard}/api/v1/me")).json()
    await set_plan(database_url, me["organization"]["id"], "enterprise")
    await page.get_by_label("Site name").fill("Ann's shop")
    await page.get_by_label("Site URL").fill("https://shop.example")
    await page.get_by_role("button", name="Create Site").click()
    await page.wait_for_url(f"{dashboard}/sites/*")
    site_page = page.url.split("?")[0]

    # Details: the draft is made, then the Variants tab opens
    await page.get_by_role("link", name="New experiment").click()
    await expect(page.get_by_role("heading", name="New experiment")).to_be_visible()
    await page.get_by_label("Experiment name").fill("Homepage Hero Test")
    await page.get_by_label("Description").fill("The hero's call to action")
    await page.get_by_label("Hypothesis").fill("A green button raises sign-ups by 15%")
    await expect(page.get_by_label("A/B test")).to_be_checked()
    await shot(page, "wizard-new")
    await save_and_continue(page, "Variants")
    await expect(page.get_by_text("Draft created.")).to_be_visible()
    experiment_id = page.url.split("/")[4]

    # Variants with the keyboard only: add a variation, remove it, empty a name, fix it
    await tab_to(page, "button[value='add:variants']")
    await page.keyboard.press("Enter")
    await expect(page.get_by_label("Weight (%) of variant 3")).to_have_value("34")
    await expect(page.get_by_label("Weight (%) of variant 1")).to_have_value("33")
    await tab_to(page, "button[value='remove:variants[2]']")
    await page.keyboard.press("Enter")
    await expect(page.get_by_label("Weight (%) of variant 3")).to_have_count(0)
    await expect(page.get_by_label("Weight (%) of variant 2")).to_have_value("50")
    await tab_to(page, "[name='variants[1].name']")
    await retype(page, "")
    await page.keyboard.press("Enter")  # submits with the default button: Save and continue
    name = page.get_by_label("Name of variant 2")
    await expect(name).to_have_attribute("aria-invalid", "true")
    error = page.locator("[id='f-variants[1].name-error']")
    await expect(error).to_have_text("Name is required")
    await expect(name).to_have_attribute("aria-describedby", "f-variants[1].name-error")
    await shot(page, "wizard-variants-error")
    await tab_to(page, "[name='variants[1].name']")
    await retype(page, "Green button")
    await page.keyboard.press("Tab")  # the key
    await page.keyboard.press("Tab")  # the weight
    await retype(page, "60")
    await tab_to(page, "[name='variants[0].weight']")
    await retype(page, "40")
    await shot(page, "wizard-variants")
    await page.keyboard.press("Enter")
    await expect(page.locator(".wizard-tabs [aria-current='step']")).to_have_text("Targeting")
    await expect(page.get_by_text("Variants saved.")).to_be_visible()

    # Targeting
    await page.get_by_role("button", name="+ Add URL rule").click()
    await page.get_by_label("Match of rule 1").select_option("starts_with")
    await page.get_by_label("URL or pattern of rule 1").fill("https://shop.example/")
    await page.get_by_label("Desktop").check()
    await page.get_by_label("Countries").fill("us, de")
    await shot(page, "wizard-targeting")
    await save_and_continue(page, "Audience")

    # Audience
    await page.get_by_label("New visitors").check()
    await shot(page, "wizard-audience")
    await save_and_continue(page, "Goals & funnels")

    # Goals: the inputs a goal type does not use are hidden (wizard.js)
    await page.get_by_role("button", name="+ Add goal").click()
    await page.get_by_label("Goal name 1").fill("Buy")
    await expect(page.get_by_label("Page URL of goal 1")).to_be_hidden()
    await page.get_by_label("CSS selector of goal 1").fill(".cta")
    await page.get_by_label("Primary goal (goal 1)").check()
    await shot(page, "wizard-goals")
    await save_and_continue(page, "Advanced")

    # Advanced
    await page.get_by_label("Activation delay").select_option("0")
    await shot(page, "wizard-advanced")
    await save_and_continue(page, "Integrations")

    # Integrations
    await page.get_by_label("GA4 Measurement ID").fill("G-TEST1234")
    await shot(page, "wizard-integrations")
    await save_and_continue(page, "Review & launch")

    # Review & launch
    previews = page.locator(".previews a")
    await expect(previews).to_have_text(["Preview Control", "Preview Green button"])
    await expect(previews.nth(1)).to_have_attribute(
        "href", "https://shop.example?segmently_preview=homepage-hero-test:variant_b"
    )
    summary = page.locator(".summary")
    await expect(summary).to_contain_text("Green button")
    await expect(summary).to_contain_text("Starts with https://shop.example/")
    await expect(summary).to_contain_text("G-TEST1234")
    await shot(page, "wizard-review")
    await page.get_by_role("button", name="Launch experiment").click()
    await page.wait_for_url(f"{site_page}?notice=start")
    await expect(page.get_by_text("Experiment started: it is live.")).to_be_visible()
    live = page.locator("section.state-group", has=page.locator("#group-live"))
    await expect(live.locator(".experiment-name")).to_have_text(["Homepage Hero Test"])
    await shot(page, "wizard-launched")

    exp = await (await page.request.get(f"{dashboard}/api/v1/experiments/{experiment_id}")).json()
    assert exp["status"] == "live"
    assert [(v["name"], v["weight"]) for v in exp["variants"]] == [("Control", 40), ("Green button", 60)]
    assert exp["targeting"]["countries"] == ["US", "DE"] and exp["audience"]["visitor_type"] == "new"
    assert exp["goals"][0]["selector"] == ".cta" and exp["goals"][0]["primary"] is True
    assert exp["activation_delay_ms"] == 0
    assert unexpected_errors(page) == []
