"""The dashboard in Chromium: sign up, create a site, read an alert from the bell, log out and in; keyboard.

Screenshots of each page go to ``test-artifacts/browser/dashboard-*.png``.
"""

from __future__ import annotations

from playwright.async_api import Page, expect
from sqlalchemy import insert

from segmently.db.models import Alert
from tests.browser.conftest import BROWSER
from tests.browser.support import PASSWORD, shot, unexpected_errors
from tests.core.accounts.test_team import db_update

pytestmark = BROWSER


async def sign_up(page: Page, base: str, name: str, email: str) -> None:
    await page.goto(f"{base}/signup")
    await page.get_by_label("Your name").fill(name)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_label("Organization name").fill(f"{name}'s shop")
    await page.get_by_role("button", name="Create account").click()
    await page.wait_for_url(f"{base}/sites")


async def test_sign_up_create_a_site_read_an_alert_log_out_and_in(
    page: Page, dashboard: str, database_url: str
) -> None:
    await page.goto(f"{dashboard}/alerts")
    await page.wait_for_url(f"{dashboard}/login?next=/alerts")
    await shot(page, "login")
    await page.get_by_role("link", name="Create an account").click()
    await page.wait_for_url(f"{dashboard}/signup")
    await shot(page, "signup")
    await sign_up(page, dashboard, "Ann", "ann@example.com")
    await expect(page.get_by_role("heading", name="Sites")).to_be_visible()
    await expect(page.get_by_text("0/1 sites")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    await expect(nav.get_by_role("link", name="Dummy")).to_be_visible()  # the dummy plugin's entry
    await shot(page, "sites-empty")

    await page.get_by_label("Site name").fill("Ann's shop")
    await page.get_by_label("Site URL").fill("shop.example")
    await page.get_by_role("button", name="Create Site").click()
    error = page.locator("#f-url-error")
    await expect(error).to_have_text("Site URL must be a web address starting with http:// or https://")
    await expect(page.get_by_label("Site URL")).to_have_attribute("aria-invalid", "true")
    await shot(page, "sites-field-error")
    await page.get_by_label("Site URL").fill("https://shop.example")
    await page.get_by_role("button", name="Create Site").click()
    await page.wait_for_url(f"{dashboard}/sites/*")
    await expect(page.get_by_text("Site created.")).to_be_visible()
    await expect(page.get_by_role("heading", name="Ann's shop")).to_be_visible()
    await shot(page, "site")

    me = await (await page.request.get(f"{dashboard}/api/v1/me")).json()
    await db_update(
        database_url,
        insert(Alert).values(
            organization_id=me["organization"]["id"],
            alert_type="winner_detected",
            message="Headline test: Variant B wins (+12.5%, 99.1% confidence)",
            data={},
        ),
    )
    await page.goto(f"{dashboard}/sites")
    badge = page.locator("#alert-badge")
    await expect(badge).to_be_visible()
    await expect(badge).to_have_text("1 unread")
    await page.locator("#bell > summary").click()
    panel = page.locator("#alert-panel")
    await expect(panel.get_by_text("Headline test: Variant B wins")).to_be_visible()
    await shot(page, "bell-panel")
    await panel.get_by_role("button", name="Mark read").click()
    await expect(badge).to_be_hidden()
    await expect(panel.get_by_role("button", name="Mark read")).to_have_count(0)
    await expect(panel.get_by_text("Headline test: Variant B wins")).to_be_visible()

    await page.get_by_role("link", name="Alerts", exact=True).click()
    await page.wait_for_url(f"{dashboard}/alerts")
    await expect(page.get_by_text("Headline test: Variant B wins")).to_be_visible()
    await shot(page, "alerts")
    for path, name in (("/settings", "settings"), ("/api-keys", "api-keys"), ("/analytics", "analytics")):
        await page.goto(f"{dashboard}{path}")
        await shot(page, name)

    await page.locator("#user-menu > summary").click()
    await page.get_by_role("button", name="Log out").click()
    await page.wait_for_url(f"{dashboard}/login")
    await page.goto(f"{dashboard}/sites")
    await page.wait_for_url(f"{dashboard}/login")
    await page.get_by_label("Email").fill("ann@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(f"{dashboard}/sites")
    await expect(page.get_by_role("link", name="Ann's shop")).to_be_visible()
    await expect(page.get_by_text("1/1 sites")).to_be_visible()
    await expect(page.get_by_text("Upgrade to")).to_be_visible()  # the free plan's one site is used
    await shot(page, "sites-at-limit")
    assert unexpected_errors(page) == []


async def tab_stops(page: Page, count: int) -> list[str]:
    """What the focus lands on at each of ``count`` presses of Tab: a field's id or a control's text."""
    stops = []
    for _ in range(count):
        await page.keyboard.press("Tab")
        stops.append(
            await page.evaluate(
                "() => { const e = document.activeElement;"
                " return e.id || (e.textContent || '').trim().replace(/\\s+/g, ' '); }"
            )
        )
    return stops


def in_order(stops: list[str], wanted: list[str]) -> bool:
    """``wanted`` appears in ``stops`` one right after the other."""
    return any(stops[i : i + len(wanted)] == wanted for i in range(len(stops)))


async def test_keyboard_reaches_every_field_and_submits_the_sign_up_and_new_site_forms(
    page: Page, dashboard: str
) -> None:
    await page.goto(f"{dashboard}/signup")
    stops = await tab_stops(page, 7)
    assert in_order(stops, ["f-name", "f-email", "f-password", "f-organization", "Create account"]), stops

    await page.get_by_label("Your name").focus()
    await page.keyboard.type("Kay")
    for value in ("kay@example.com", PASSWORD, "Kay's shop"):
        await page.keyboard.press("Tab")
        await page.keyboard.type(value)
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{dashboard}/sites")

    stops = await tab_stops(page, 20)
    assert stops[0] == "Skip to content", stops
    assert in_order(stops, ["f-name", "f-url", "Create Site"]), stops
    await page.get_by_label("Site name").focus()
    await page.keyboard.type("Kay's shop")
    await page.keyboard.press("Tab")
    await page.keyboard.type("https://kay.example")
    await page.keyboard.press("Enter")  # Enter in a field submits its form
    await page.wait_for_url(f"{dashboard}/sites/*")
    await expect(page.get_by_text("Site created.")).to_be_visible()

    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")  # the skip link moves focus past the header and navigation
    assert await page.evaluate("() => location.hash") == "#main"
    assert unexpected_errors(page) == []
