"""Settings tabs (profile, security, team & permissions, notifications, billing) and the API keys
page: each action and its refusals with the API's messages, the disabled buttons and their
reasons per role, management keys shown once, tenancy."""

from __future__ import annotations

import asyncio
import re
from html import unescape
from typing import Any

import httpx
import pytest
from litestar import Litestar

from segmently.domain.alerts.jobs import kernel_jobs
from tests.conftest import Inbox
from tests.core.accounts.test_auth import PASSWORD, bearer, signup
from tests.core.accounts.test_team import join, set_plan, token_from
from tests.dashboard.support import SESSION, assert_labelled, field_error, post_form, text

pytestmark = pytest.mark.usefixtures("backend")


async def account(
    api: httpx.AsyncClient, database_url: str, tag: str, plan: str = "enterprise"
) -> dict[str, Any]:
    """A new user owning ``tag org`` on ``plan``, made with the API."""
    body = await signup(api, tag)
    await set_plan(database_url, body["organization"]["id"], plan)
    return body


def as_user(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.AsyncClient:
    """The dashboard client signed in with ``body``'s token."""
    client.cookies.clear()
    client.cookies.set(SESSION, body["token"])
    return client


async def members(api: httpx.AsyncClient, token: str) -> dict[str, dict[str, Any]]:
    r = await api.get("/api/v1/organization/members", headers=bearer(token))
    return {m["email"]: m for m in r.json()}


def row(html: str, membership_id: str) -> str:
    match = re.search(rf'<tr id="member-{membership_id}".*?</tr>', html, re.S)
    assert match, html
    return match.group(0)


def button(html: str, name: str) -> tuple[bool, str | None]:
    """Whether the button whose visible text starts with ``name`` is disabled, and the reason it names."""
    for match in re.finditer(r"<button\b([^>]*)>(.*?)</button>", html, re.S):
        attrs, label = match.groups()
        if not text(label).startswith(name):
            continue
        described = re.search(r'aria-describedby="([^"]+)"', attrs)
        reason = None
        if described:
            found = re.search(rf'id="{described.group(1)}">(.*?)</', html, re.S)
            assert found, f"{name}: aria-describedby points nowhere"
            reason = unescape(found.group(1)).strip()
        return " disabled" in attrs, reason
    raise AssertionError(f"no button {name!r} in {text(html)}")


def notice(html: str) -> str | None:
    match = re.search(r'<p class="alert-box ok" role="status">(.*?)</p>', html, re.S)
    return unescape(match.group(1)) if match else None


def problem(html: str) -> str | None:
    match = re.search(r'<div class="alert-box \w+" role="alert">(.*?)</div>', html, re.S)
    return text(match.group(1)) if match else None


# ------------------------------------------------------------------------- tabs ---


async def test_each_tab_has_its_own_address_and_the_navigation_marks_it(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    as_user(client, await account(api, database_url, "ann"))
    tabs = {
        "profile": "Profile",
        "security": "Security",
        "team": "Team &amp; permissions",
        "notifications": "Notifications",
        "billing": "Billing",
    }
    for key, label in tabs.items():
        r = await client.get(f"/settings/{key}")
        assert r.status_code == 200, r.text
        assert f'<a href="/settings/{key}" aria-current="page">{label}</a>' in r.text
        assert r.text.count('aria-current="page"') == 2  # the tab and "Settings" in the navigation
    plain = await client.get("/settings")
    assert '<a href="/settings/profile" aria-current="page">Profile</a>' in plain.text
    assert "0/∞ sites" in plain.text and "0/∞ team members" in plain.text  # the usage badges stay
    assert (await client.get("/settings/nope")).status_code == 404


async def test_notifications_and_billing_tabs_say_what_exists(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    as_user(client, await account(api, database_url, "ann", plan="professional"))
    words = text((await client.get("/settings/notifications")).text)
    assert "Weekly reports Not available yet: Segmently sends no weekly reports." in words
    assert "password reset links are not notifications: they always go" in words
    billing = text((await client.get("/settings/billing")).text)
    assert "Current plan Professional" in billing
    assert "0/1 team members" in billing
    assert "Billing is managed by the billing plugin." in billing
    assert (
        "No billing plugin is switched on for ann org." in billing
    )  # no plugin put a billing page in the nav


# ---------------------------------------------------------------------- profile ---


async def test_profile_saves_name_and_email_and_shows_the_apis_refusals_next_to_each_field(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    ann = await account(api, database_url, "ann")
    await signup(api, "bob")
    as_user(client, ann)
    taken = await post_form(client, "/settings/profile", {"name": "Ann B", "email": "BOB@example.com"})
    assert taken.status_code == 400
    assert field_error(taken.text, "email") == "Another account uses this email"
    assert 'value="Ann B"' in taken.text  # what was typed stays
    bad = await post_form(client, "/settings/profile", {"name": "", "email": "not-an-email"})
    assert field_error(bad.text, "name") == "Your name is required"
    assert field_error(bad.text, "email") == "Email is not an email address"

    ok = await post_form(client, "/settings/profile", {"name": "Ann Bee", "email": "ann.bee@example.com"})
    assert ok.status_code == 303 and ok.headers["location"] == "/settings/profile?notice=profile"
    page = await client.get(ok.headers["location"])
    assert notice(page.text) == "Profile saved."
    me = (await api.get("/api/v1/me", headers=bearer(ann["token"]))).json()["user"]
    assert (me["name"], me["email"]) == ("Ann Bee", "ann.bee@example.com")
    login = await api.post("/api/v1/auth/login", json={"email": "ann.bee@example.com", "password": PASSWORD})
    assert login.status_code == 200


async def test_only_admins_rename_the_organization(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    ann = await account(api, database_url, "ann")
    carl = await join(api, inbox, ann["token"], "carl")
    as_user(client, ann)
    blank = await post_form(client, "/settings/organization", {"org_name": "  "})
    assert field_error(blank.text, "org_name") == "Organization name is required"
    r = await post_form(client, "/settings/organization", {"org_name": "Ann & Co"})
    assert r.headers["location"] == "/settings/profile?notice=organization"
    assert (await api.get("/api/v1/organization", headers=bearer(ann["token"]))).json()["organization"][
        "name"
    ] == "Ann & Co"

    as_user(client, carl)
    html = (await client.get("/settings/profile")).text
    assert '<fieldset class="bare" disabled aria-describedby="org-name-reason">' in html
    assert "Only an admin or the owner of Ann &amp; Co can rename it." in html
    forged = await post_form(client, "/settings/organization", {"org_name": "Carl's now"})
    assert forged.status_code == 403
    assert "Only an admin of Ann &amp; Co can do this" in forged.text


# --------------------------------------------------------------------- security ---


async def test_password_change_needs_the_current_one_ends_other_sessions_and_keeps_this_one(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    ann = await account(api, database_url, "ann")
    as_user(client, ann)
    page = (await client.get("/settings/security")).text
    assert "Changing your password signs you out everywhere else" in text(page)
    wrong = await post_form(
        client, "/settings/password", {"current_password": "nope", "new_password": "a much longer one"}
    )
    assert wrong.status_code == 400
    assert field_error(wrong.text, "current_password") == "Current password is not your current password"
    assert "a much longer one" not in wrong.text  # passwords are never echoed
    short = await post_form(
        client, "/settings/password", {"current_password": PASSWORD, "new_password": "abc"}
    )
    assert field_error(short.text, "new_password") == "New password must be at least 8 characters"
    blank = await post_form(client, "/settings/password", {"current_password": "", "new_password": ""})
    assert field_error(blank.text, "current_password") == "Current password is required"

    ok = await post_form(
        client, "/settings/password", {"current_password": PASSWORD, "new_password": "a much longer one"}
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/settings/security?notice=password"
    fresh = ok.cookies[SESSION]  # this browser gets a new session cookie
    assert fresh and fresh != ann["token"]
    as_user(client, {"token": fresh})
    after = await client.get(ok.headers["location"])
    assert after.status_code == 200
    assert notice(after.text) == "Password changed. Every other session has ended; this one stays signed in."
    assert (await api.get("/api/v1/me", headers=bearer(ann["token"]))).status_code == 401
    login = await api.post(
        "/api/v1/auth/login", json={"email": "ann@example.com", "password": "a much longer one"}
    )
    assert login.status_code == 200


# ---------------------------------------------------------------- notifications ---

CHOICES = ("email_enabled", "experiment_results", "weekly_reports", "security_alerts")


def boxes(html: str) -> dict[str, str]:
    """Each notification checkbox: "on", "off" or "disabled", with its label checked."""
    out = {}
    for name in CHOICES:
        match = re.search(rf'<input type="checkbox" id="f-{name}"([^>]*)><label for="f-{name}">', html)
        assert match, f"no labelled checkbox {name}"
        attrs = match.group(1)
        out[name] = "disabled" if " disabled" in attrs else "on" if " checked" in attrs else "off"
    return out


async def test_notifications_are_each_persons_own_choice_saved_and_shown(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    ann = await account(api, database_url, "ann")
    bob = await join(api, inbox, ann["token"], "bob")
    as_user(client, ann)
    page = (await client.get("/settings/notifications")).text
    assert boxes(page) == {
        "email_enabled": "on",
        "experiment_results": "on",
        "weekly_reports": "disabled",
        "security_alerts": "on",
    }
    assert assert_labelled("/settings/notifications", page) >= 4
    assert "Your own choices, for ann@example.com" in text(page)

    saved = await post_form(client, "/settings/notifications", {"experiment_results": "on"})
    assert saved.status_code == 303
    assert saved.headers["location"] == "/settings/notifications?notice=notifications"
    after = (await client.get(saved.headers["location"])).text
    assert notice(after) == "Notification settings saved."
    assert boxes(after) == {
        "email_enabled": "off",
        "experiment_results": "on",
        "weekly_reports": "disabled",
        "security_alerts": "off",
    }
    forged = await post_form(client, "/settings/notifications", {"weekly_reports": "on"})
    assert forged.status_code == 303  # a box that is not offered changes nothing
    assert boxes((await client.get("/settings/notifications")).text)["weekly_reports"] == "disabled"
    no_csrf = await client.post("/settings/notifications", data={"security_alerts": "on"})
    assert no_csrf.status_code == 403
    assert boxes((await client.get("/settings/notifications")).text)["security_alerts"] == "off"

    as_user(client, bob)  # a member of the same organization keeps their own (default) choices
    assert set(boxes((await client.get("/settings/notifications")).text).values()) == {"on", "disabled"}
    await post_form(client, "/settings/notifications", {"email_enabled": "on", "security_alerts": "on"})
    as_user(client, ann)  # and saving them changed nothing of ann's
    assert boxes((await client.get("/settings/notifications")).text)["email_enabled"] == "off"


async def test_a_password_change_in_security_mails_the_person_only_with_security_alerts_on(
    app: Litestar,
    client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    database_url: str,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, _ = smtp
    kernel_jobs(app.state.kernel)  # as on a node running the scheduler: its outbox sends the mail
    ann = await account(api, database_url, "ann")
    as_user(client, ann)
    off = await post_form(
        client, "/settings/notifications", {"email_enabled": "on", "experiment_results": "on"}
    )
    assert off.status_code == 303
    changed = await post_form(
        client, "/settings/password", {"current_password": PASSWORD, "new_password": "a much longer one"}
    )
    assert changed.status_code == 303
    as_user(client, {"token": changed.cookies[SESSION]})
    await post_form(
        client,
        "/settings/notifications",
        {"email_enabled": "on", "experiment_results": "on", "security_alerts": "on"},
    )
    again = await post_form(
        client,
        "/settings/password",
        {"current_password": "a much longer one", "new_password": "another long one"},
    )
    assert again.status_code == 303
    for _ in range(200):
        if inbox.to("ann@example.com"):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # the first change's mail, had it been written, would be here too
    (mail,) = inbox.to("ann@example.com")
    assert mail["Subject"] == "Your Segmently password was changed"
    assert "The password of the Segmently account for ann@example.com was changed" in Inbox.body(mail)


# ------------------------------------------------------------------------- team ---


async def test_a_double_submitted_invitation_invites_once_and_the_seat_limit_shows_the_upgrade(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    ann = await account(api, database_url, "ann", plan="professional")  # one team member
    as_user(client, ann)
    page = (await client.get("/settings/team")).text
    assert '<span class="usage" id="seats">0/1 team members</span>' in page
    bad = await post_form(
        client, "/settings/team/invitations", {"email": "nope", "role": "owner", "idempotency_key": "k1"}
    )
    assert bad.status_code == 400
    assert field_error(bad.text, "email") == "Email is not an email address"
    assert field_error(bad.text, "role") == "Choose Admin or Member"

    form = {"email": "Bob@Example.com", "role": "admin", "idempotency_key": "k2"}
    first = await post_form(client, "/settings/team/invitations", form)
    second = await post_form(client, "/settings/team/invitations", form)
    assert first.status_code == second.status_code == 303
    assert second.headers["location"] == "/settings/team?notice=invited"
    assert len(inbox.to("bob@example.com")) == 1
    invitations = (await api.get("/api/v1/organization/invitations", headers=bearer(ann["token"]))).json()
    assert [(i["email"], i["role"], i["status"]) for i in invitations] == [
        ("bob@example.com", "admin", "pending")
    ]

    html = (await client.get("/settings/team?notice=invited")).text
    assert notice(html) == "Invitation sent."
    assert "bob@example.com Pending" in text(html)
    assert '<span class="usage at-limit" id="seats">1/1 team members</span>' in html
    assert '<fieldset class="bare" disabled aria-describedby="seat-limit">' in html
    limit = "Your Professional plan allows 1 team member (1/1 used). Upgrade to Business for more."
    assert limit in html
    over = await post_form(
        client,
        "/settings/team/invitations",
        {"email": "carl@example.com", "role": "member", "idempotency_key": "k3"},
    )
    assert over.status_code == 402
    assert problem(over.text) == limit + " See your plan"
    assert inbox.to("carl@example.com") == []


async def test_inviting_a_member_or_a_pending_address_again_is_refused_under_the_email(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    ann = await account(api, database_url, "ann")
    await join(api, inbox, ann["token"], "carl")
    as_user(client, ann)
    member = await post_form(
        client,
        "/settings/team/invitations",
        {"email": "carl@example.com", "role": "member", "idempotency_key": "a"},
    )
    assert member.status_code == 409
    assert field_error(member.text, "email") == "Email carl@example.com is already a member of ann org"
    await post_form(
        client,
        "/settings/team/invitations",
        {"email": "dan@example.com", "role": "member", "idempotency_key": "b"},
    )
    again = await post_form(
        client,
        "/settings/team/invitations",
        {"email": "dan@example.com", "role": "member", "idempotency_key": "c"},
    )
    assert field_error(again.text, "email") == (
        "Email dan@example.com already has a pending invitation: cancel it to send a new one"
    )


async def test_cancelling_an_invitation_makes_its_link_stop_working(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    ann = await account(api, database_url, "ann")
    as_user(client, ann)
    await post_form(
        client,
        "/settings/team/invitations",
        {"email": "dan@example.com", "role": "member", "idempotency_key": "d"},
    )
    token = token_from(inbox, "dan@example.com")
    html = (await client.get("/settings/team")).text
    invitation_id = re.search(r'action="/settings/team/invitations/([^/"]+)/cancel"', html)
    assert invitation_id
    r = await post_form(client, f"/settings/team/invitations/{invitation_id.group(1)}/cancel", {})
    assert r.headers["location"] == "/settings/team?notice=cancelled"
    html = (await client.get(r.headers["location"])).text
    assert notice(html) == "Invitation cancelled: its link no longer works."
    assert "No pending invitations." in html
    link = await api.get(f"/api/v1/invitations/{token}")
    assert link.status_code == 400 and "cancelled" in link.text


async def test_buttons_a_user_may_not_press_are_disabled_with_the_rules_reason(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    ann = await account(api, database_url, "ann")
    bob = await join(api, inbox, ann["token"], "bob", "admin")
    carl = await join(api, inbox, ann["token"], "carl")
    team = await members(api, ann["token"])
    ann_id, bob_id, carl_id = (team[f"{t}@example.com"]["id"] for t in ("ann", "bob", "carl"))

    as_user(client, ann)  # the owner: everything on others, nothing on herself
    html = (await client.get("/settings/team")).text
    own = row(html, ann_id)
    assert button(own, "Remove") == (True, "You")
    assert button(own, "Suspend") == (True, "You cannot suspend yourself")
    assert button(own, "Transfer ownership") == (True, "You already own this organization")
    assert button(own, "Change role") == (True, "Transfer ownership to change the owner's role")
    for other in (bob_id, carl_id):
        assert button(row(html, other), "Change role") == (False, None)
        assert button(row(html, other), "Suspend") == (False, None)
        assert button(row(html, other), f"Remove {'Bob' if other == bob_id else 'Carl'}") == (False, None)
        assert "Transfer ownership…" in text(row(html, other))
    assert button(html, "Send invitation") == (False, None)

    as_user(client, bob)  # an admin: invites, but the owner's actions are not his
    html = (await client.get("/settings/team")).text
    for who in (ann_id, carl_id):
        for name in ("Change role", "Suspend", "Transfer ownership", "Remove"):
            assert button(row(html, who), name) == (True, "Owner only"), name
    assert button(html, "Send invitation") == (False, None)

    as_user(client, carl)  # a member: nothing, and the invitation form says why
    html = (await client.get("/settings/team")).text
    assert button(row(html, bob_id), "Remove") == (True, "Owner only")
    assert '<fieldset class="bare" disabled aria-describedby="invite-reason">' in html
    assert "Only an admin or the owner of ann org can invite members." in html


async def test_the_owner_changes_roles_suspends_activates_and_removes_members(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    ann = await account(api, database_url, "ann")
    carl = await join(api, inbox, ann["token"], "carl")
    carl_id = (await members(api, ann["token"]))["carl@example.com"]["id"]
    as_user(client, ann)

    bad = await post_form(client, f"/settings/team/members/{carl_id}/role", {"role": "owner"})
    assert bad.status_code == 400
    assert '<p class="field-error" id="role-' + carl_id + '-error">Choose Admin or Member</p>' in bad.text
    r = await post_form(client, f"/settings/team/members/{carl_id}/role", {"role": "admin"})
    assert r.headers["location"] == "/settings/team?notice=role"
    assert (await members(api, ann["token"]))["carl@example.com"]["role"] == "admin"

    r = await post_form(client, f"/settings/team/members/{carl_id}/suspend", {})
    assert r.headers["location"] == "/settings/team?notice=suspended"
    html = (await client.get(r.headers["location"])).text
    assert "Suspended" in text(row(html, carl_id)) and button(row(html, carl_id), "Activate") == (False, None)
    assert button(row(html, carl_id), "Transfer ownership") == (
        True,
        "Only an active member can become the owner",
    )
    forged = await post_form(client, f"/settings/team/members/{carl_id}/transfer", {})
    assert forged.status_code == 400
    assert problem(forged.text) == "Only an active member can become the owner"
    refused = await api.get("/api/v1/projects", headers=bearer(carl["token"]))
    assert refused.status_code == 403 and "suspended" in refused.json()["detail"]
    await post_form(client, f"/settings/team/members/{carl_id}/activate", {})
    assert (await api.get("/api/v1/projects", headers=bearer(carl["token"]))).status_code == 200

    r = await post_form(client, f"/settings/team/members/{carl_id}/remove", {})
    assert r.headers["location"] == "/settings/team?notice=removed"
    html = (await client.get(r.headers["location"])).text
    assert notice(html) == "Member removed." and "carl@example.com" not in html
    assert list(await members(api, ann["token"])) == ["ann@example.com"]


async def test_transferring_ownership_makes_the_owner_an_admin_and_forged_posts_get_the_apis_403(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    ann = await account(api, database_url, "ann")
    await join(api, inbox, ann["token"], "bob", "admin")
    team = await members(api, ann["token"])
    as_user(client, ann)
    own = await post_form(client, f"/settings/team/members/{team['ann@example.com']['id']}/remove", {})
    assert own.status_code == 403 and "Cannot remove this member: You" in own.text

    r = await post_form(client, f"/settings/team/members/{team['bob@example.com']['id']}/transfer", {})
    assert r.headers["location"] == "/settings/team?notice=transferred"
    after = await members(api, ann["token"])
    assert (after["ann@example.com"]["role"], after["bob@example.com"]["role"]) == ("admin", "owner")
    html = (await client.get(r.headers["location"])).text
    assert notice(html) == "Ownership transferred: you are now an admin."
    assert button(row(html, team["bob@example.com"]["id"]), "Remove") == (True, "Owner only")
    # ann is an admin now: the owner's routes refuse her with the API's message
    for action in ("remove", "suspend", "transfer"):
        forged = await post_form(
            client, f"/settings/team/members/{team['bob@example.com']['id']}/{action}", {}
        )
        assert forged.status_code == 403, action
        assert "Only the owner of ann org can do this" in forged.text


# --------------------------------------------------------------------- API keys ---


async def test_a_management_key_is_shown_once_then_only_its_prefix_and_revoking_it_locks_the_api(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    ann = await account(api, database_url, "ann")
    as_user(client, ann)
    blank = await post_form(client, "/api-keys", {"name": " ", "idempotency_key": "k0"})
    assert blank.status_code == 400 and field_error(blank.text, "name") == "Key name must not be blank"

    form = {"name": "Deploy pipeline", "idempotency_key": "k1"}
    made = await post_form(client, "/api-keys", form)
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    found = re.search(r'<code id="new-key">(seg_mgmt_[^<]+)</code>', made.text)
    assert found, made.text
    key = found.group(1)
    assert "Copy it now: it is shown this once." in made.text
    assert 'data-copy="new-key"' in made.text and "dashboard.js" in made.text

    listed = (await client.get("/api-keys")).text
    assert key not in listed and 'id="new-key"' not in listed
    assert f"<code>{key[:12]}…</code>" in listed and "Deploy pipeline" in text(listed)
    manage = await api.get("/api/v1/manage/projects", headers=bearer(key))
    assert manage.status_code == 200, manage.text

    again = await post_form(client, "/api-keys", form)  # the same form once more: no second key
    assert key not in again.text and 'id="new-key"' not in again.text
    assert "the key was created by the first submit" in problem(again.text)  # type: ignore[operator]
    keys = (await api.get("/api/v1/organization/management-keys", headers=bearer(ann["token"]))).json()[
        "items"
    ]
    assert [k["name"] for k in keys] == ["Deploy pipeline"]

    r = await post_form(client, f"/api-keys/{keys[0]['id']}/revoke", {})
    assert r.headers["location"] == "/api-keys?notice=revoked"
    html = (await client.get(r.headers["location"])).text
    assert notice(html) == "Key revoked: the Management API refuses it from the next request on."
    assert "Revoked" in text(html)
    refused = await api.get("/api/v1/manage/projects", headers=bearer(key))
    assert refused.status_code == 401 and refused.json()["detail"] == "Unknown or revoked management key"


async def test_keys_are_for_the_enterprise_owner_admins_only_see_them_members_see_neither(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    ann = await account(api, database_url, "ann", plan="business")
    bob = await join(api, inbox, ann["token"], "bob", "admin")
    carl = await join(api, inbox, ann["token"], "carl")
    as_user(client, ann)
    html = (await client.get("/api-keys")).text
    upgrade = "Management API needs the Enterprise plan; you are on Business."
    assert upgrade in html and 'action="/api-keys"' not in html
    forged = await post_form(client, "/api-keys", {"name": "Sneaky", "idempotency_key": "x"})
    assert forged.status_code == 402 and problem(forged.text) == upgrade

    await set_plan(database_url, ann["organization"]["id"], "enterprise")
    await post_form(client, "/api-keys", {"name": "CI", "idempotency_key": "y"})
    as_user(client, bob)
    html = (await client.get("/api-keys")).text
    assert "CI" in text(html) and "1/10 active keys" in html
    assert '<fieldset class="bare" disabled aria-describedby="create-reason">' in html
    assert "Only the owner of ann org can create or revoke keys." in html
    assert button(html, "Revoke") == (True, "Only the owner of ann org can create or revoke keys.")
    refused = await post_form(client, "/api-keys", {"name": "Mine", "idempotency_key": "z"})
    assert refused.status_code == 403 and "Only the owner of ann org can do this" in refused.text

    as_user(client, carl)
    html = (await client.get("/api-keys")).text
    assert "Only an admin or the owner of ann org can see the management keys." in html
    assert "CI" not in text(html) and 'action="/api-keys"' not in html
    assert "Site keys" in html


async def test_another_organizations_members_invitations_and_keys_are_not_found(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    ann = await account(api, database_url, "ann")
    zed = await account(api, database_url, "zed")
    await join(api, inbox, zed["token"], "yan")
    yan_id = (await members(api, zed["token"]))["yan@example.com"]["id"]
    await api.post(
        "/api/v1/organization/invitations", json={"email": "x@example.com"}, headers=bearer(zed["token"])
    )
    invitation = (await api.get("/api/v1/organization/invitations", headers=bearer(zed["token"]))).json()[0]
    key = await api.post(
        "/api/v1/organization/management-keys", json={"name": "Z"}, headers=bearer(zed["token"])
    )
    as_user(client, ann)
    for path in (
        f"/settings/team/members/{yan_id}/role",
        f"/settings/team/members/{yan_id}/suspend",
        f"/settings/team/members/{yan_id}/remove",
        f"/settings/team/members/{yan_id}/transfer",
        f"/settings/team/invitations/{invitation['id']}/cancel",
        f"/api-keys/{key.json()['id']}/revoke",
    ):
        r = await post_form(client, path, {"role": "admin"})
        assert r.status_code == 404, path
    assert (await members(api, zed["token"]))["yan@example.com"]["status"] == "active"
    listed = (await api.get("/api/v1/organization/management-keys", headers=bearer(zed["token"]))).json()
    assert listed["items"][0]["revoked_at"] is None


async def test_every_settings_form_needs_the_csrf_token(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    as_user(client, await account(api, database_url, "ann"))
    await client.get("/settings")
    for path, data in (
        ("/settings/profile", {"name": "X", "email": "x@example.com"}),
        ("/settings/password", {"current_password": PASSWORD, "new_password": "another long one"}),
        ("/api-keys", {"name": "K"}),
    ):
        r = await client.post(path, data=data)
        assert r.status_code == 403, path
    assert (
        await api.post("/api/v1/auth/login", json={"email": "ann@example.com", "password": PASSWORD})
    ).status_code == 200
