"""Settings and API keys in Chromium: an owner invites a member, changes a role, meets a disabled
Remove button with its reason, creates a management key and copies it, then revokes it.

Screenshots of every tab go to ``test-artifacts/browser/dashboard-settings-*.png`` and
``dashboard-api-keys-*.png``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import BROWSER
from tests.browser.support import PASSWORD, shot, unexpected_errors
from tests.conftest import Inbox, make_settings, serve_app
from tests.core.accounts.test_team import set_plan, token_from

pytestmark = BROWSER


@pytest.fixture
async def dashboard_with_mail(
    database_url: str, tmp_path: Path, plugins: object, smtp: tuple[Inbox, int]
) -> AsyncIterator[str]:
    """The dashboard fixture's server, sending its mail to the test's SMTP inbox (invitation links)."""
    from segmently.app import create_app
    from segmently.mail import MailSettings, SmtpServer
    from tests.dashboard import assets

    assets.build()
    mail = MailSettings(smtp=SmtpServer(host="127.0.0.1", port=smtp[1], tls="none"))
    settings = make_settings(database_url, tmp_path, mail=mail)
    async with serve_app(create_app(settings, plugins)) as base:  # type: ignore[arg-type]
        yield base


async def test_an_owner_invites_changes_a_role_meets_a_disabled_remove_and_copies_a_new_key(
    page: Page, dashboard_with_mail: str, database_url: str, smtp: tuple[Inbox, int]
) -> None:
    base, (inbox, _) = dashboard_with_mail, smtp
    await page.goto(f"{base}/signup")
    await page.get_by_label("Your name").fill("Ann")
    await page.get_by_label("Email").fill("ann@example.com")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_label("Organization name").fill("Ann's shop")
    await page.get_by_role("button", name="Create account").click()
    await page.wait_for_url(f"{base}/sites")
    me = await (await page.request.get(f"{base}/api/v1/me")).json()
    await set_plan(database_url, me["organization"]["id"], "enterprise")

    # every tab has its own address; the current one is marked
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    tabs = page.get_by_role("navigation", name="Settings")
    await expect(tabs.get_by_role("link", name="Profile")).to_have_attribute("aria-current", "page")
    await expect(page.get_by_label("Your name")).to_have_value("Ann")
    await shot(page, "settings-profile")
    for label, name in (("Security", "security"), ("Notifications", "notifications"), ("Billing", "billing")):
        await tabs.get_by_role("link", name=label).click()
        await page.wait_for_url(f"{base}/settings/{name}")
        await expect(tabs.get_by_role("link", name=label)).to_have_attribute("aria-current", "page")
        await shot(page, f"settings-{name}")
    await expect(page.get_by_text("Billing is managed by the billing plugin.")).to_be_visible()

    # invite Bob as an admin from the keyboard; he signs up through the link in the mail
    await tabs.get_by_role("link", name="Team & permissions").click()
    await expect(page.locator("#seats")).to_have_text("0/∞ team members")
    await page.get_by_label("Email").fill("bob@example.com")
    await page.get_by_label("Role", exact=True).select_option("admin")
    await page.get_by_label("Role", exact=True).focus()
    await page.keyboard.press("Tab")  # the next stop is the form's button
    await expect(page.get_by_role("button", name="Send invitation")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status").filter(has_text="Invitation sent.")).to_be_visible()
    pending = page.get_by_role("table", name="Pending invitations")
    await expect(pending.get_by_role("row").nth(1)).to_contain_text("bob@example.com")
    await shot(page, "settings-team-invited")
    async with httpx.AsyncClient(base_url=base, timeout=10) as api:
        joined = await api.post(
            "/api/v1/auth/signup",
            json={
                "email": "bob@example.com",
                "password": PASSWORD,
                "name": "Bob",
                "invitation_token": token_from(inbox, "bob@example.com"),
            },
        )
        assert joined.status_code == 201, joined.text

    # make Bob a plain member
    await page.reload()
    bob = page.get_by_role("row").filter(has_text="bob@example.com")
    await expect(bob.locator(".role-badge")).to_have_text("Admin")
    await bob.get_by_label("Role of Bob").select_option("member")
    await bob.get_by_role("button", name="Change role of Bob").click()
    await expect(page.get_by_role("status").filter(has_text="Role changed.")).to_be_visible()
    await expect(bob.locator(".role-badge")).to_have_text("Member")

    # her own Remove button is disabled, and says why
    ann = page.get_by_role("row").filter(has_text="ann@example.com")
    remove = ann.get_by_role("button", name="Remove Ann")
    await expect(remove).to_be_disabled()
    await expect(remove).to_have_accessible_description("You")
    await expect(ann.get_by_text("You", exact=True)).to_be_visible()
    await expect(ann.get_by_role("button", name="Suspend Ann")).to_have_accessible_description(
        "You cannot suspend yourself"
    )
    await expect(bob.get_by_role("button", name="Suspend Bob")).to_be_enabled()
    await shot(page, "settings-team")

    # a management key: shown once with a copy button, then only its first characters
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="API keys").click()
    await page.get_by_label("Key name").fill("Deploy pipeline")
    await page.get_by_role("button", name="Create key").click()
    new_key = page.locator("#new-key")
    await expect(new_key).to_contain_text("seg_mgmt_")
    await expect(page.get_by_text("Copy it now: it is shown this once.")).to_be_visible()
    key = (await new_key.text_content() or "").strip()
    assert key.startswith("seg_mgmt_") and len(key) > 30
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    await expect(page.get_by_role("button", name="Copy the new key")).to_be_visible()  # JavaScript shows it
    copy = page.locator('button[data-copy="new-key"]')
    await copy.click()
    await expect(copy).to_have_text("Copied the new key")
    assert await page.evaluate("() => navigator.clipboard.readText()") == key
    await expect(page.locator("#copy-status")).to_have_text("Copied to the clipboard.")
    await shot(page, "api-keys-created")

    await page.goto(f"{base}/api-keys")
    await expect(page.locator("#new-key")).to_have_count(0)
    assert key not in await page.content()
    row = page.get_by_role("row").filter(has_text="Deploy pipeline")
    await expect(row.locator("code")).to_have_text(key[:12] + "…")
    await expect(row).to_contain_text("Never")
    async with httpx.AsyncClient(base_url=base, timeout=10) as api:
        assert (
            await api.get("/api/v1/manage/projects", headers={"X-Management-Key": key})
        ).status_code == 200
    await shot(page, "api-keys-listed")

    await row.get_by_text("Revoke…").click()
    await row.get_by_role("button", name="Revoke Deploy pipeline").click()
    await expect(page.get_by_role("status").filter(has_text="Key revoked")).to_be_visible()
    await expect(page.get_by_role("row").filter(has_text="Deploy pipeline")).to_contain_text("Revoked")
    async with httpx.AsyncClient(base_url=base, timeout=10) as api:
        assert (
            await api.get("/api/v1/manage/projects", headers={"X-Management-Key": key})
        ).status_code == 401
    await shot(page, "api-keys-revoked")
    assert unexpected_errors(page) == []
