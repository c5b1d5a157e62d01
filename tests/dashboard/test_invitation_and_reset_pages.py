"""Invitation links in their three states, and the password reset pages (mail through the kernel's mailer)."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from tests.conftest import Inbox
from tests.core.accounts.test_auth import PASSWORD, bearer
from tests.core.accounts.test_team import set_plan, token_from
from tests.dashboard.support import SESSION, field_error, log_in, post_form, sign_up, text

pytestmark = pytest.mark.usefixtures("backend")


async def invite(
    client: httpx.AsyncClient, inbox: Inbox, database_url: str, email: str, role: str = "admin"
) -> str:
    async with httpx.AsyncClient(base_url=client.base_url) as api:  # the owner, without the page's cookies
        owner = await api.post(
            "/api/v1/auth/signup",
            json={
                "email": f"owner-{email}",
                "password": PASSWORD,
                "name": "Olga",
                "organization": "Team Rocket",
            },
        )
        token = owner.json()["token"]
        await set_plan(database_url, owner.json()["organization"]["id"], "enterprise")
        r = await api.post(
            "/api/v1/organization/invitations", json={"email": email, "role": role}, headers=bearer(token)
        )
    assert r.status_code == 201, r.text
    return token_from(inbox, email)


async def current_org(client: httpx.AsyncClient) -> dict[str, str]:
    return (await client.get("/api/v1/me")).json()["organization"]  # type: ignore[no-any-return]


async def test_new_user_sees_the_team_signs_up_and_joins(
    client: httpx.AsyncClient, smtp: tuple[Inbox, int], database_url: str
) -> None:
    token = await invite(client, smtp[0], database_url, "new@example.com")
    page = await client.get(f"/invitations/{token}")
    assert page.status_code == 200
    words = text(page.text)
    assert "Join Team Rocket" in words
    assert "as admin" in words
    assert 'value="new@example.com" readonly' in page.text

    r = await post_form(client, f"/invitations/{token}", {"name": "", "password": "short"})
    assert r.status_code == 400
    assert field_error(r.text, "name") == "Your name is required"
    r = await post_form(client, f"/invitations/{token}", {"name": "Nia", "password": PASSWORD})
    assert r.status_code == 303
    assert r.headers["location"] == "/sites?notice=joined"
    assert await current_org(client) == {**await current_org(client), "name": "Team Rocket", "role": "admin"}
    assert "You joined Team Rocket." in text((await client.get(r.headers["location"])).text)


async def test_existing_user_logs_in_with_the_email_filled_in_and_then_joins(
    client: httpx.AsyncClient, smtp: tuple[Inbox, int], database_url: str
) -> None:
    await sign_up(client, "old")
    client.cookies.clear()
    token = await invite(client, smtp[0], database_url, "old@example.com")
    r = await client.get(f"/invitations/{token}")
    assert r.status_code == 303
    assert r.headers["location"] == f"/login?email=old%40example.com&next=/invitations/{token}"
    form = await client.get(r.headers["location"])
    assert 'value="old@example.com"' in form.text

    r = await log_in(client, "old@example.com", next_=f"/invitations/{token}")
    assert r.headers["location"] == f"/invitations/{token}"
    r = await client.get(r.headers["location"])
    assert r.headers["location"] == "/sites?notice=joined"
    assert (await current_org(client))["name"] == "Team Rocket"


async def test_signed_in_user_joins_at_once_and_a_used_link_says_so(
    client: httpx.AsyncClient, smtp: tuple[Inbox, int], database_url: str
) -> None:
    await sign_up(client, "pat")
    token = await invite(client, smtp[0], database_url, "pat@example.com")
    r = await client.get(f"/invitations/{token}")
    assert r.headers["location"] == "/sites?notice=joined"
    assert (await current_org(client))["name"] == "Team Rocket"
    again = await client.get(f"/invitations/{token}")
    assert again.status_code == 400
    assert "This invitation was already used" in text(again.text)


async def test_signed_in_as_someone_else_the_invitation_is_not_taken(
    client: httpx.AsyncClient, smtp: tuple[Inbox, int], database_url: str
) -> None:
    token = await invite(client, smtp[0], database_url, "meant@example.com")
    await sign_up(client, "other")
    r = await client.get(f"/invitations/{token}")
    assert r.status_code == 403
    assert "sent to meant@example.com" in text(r.text)
    assert (await current_org(client))["name"] == "other org"


async def test_an_unknown_invitation_link_explains_itself(client: httpx.AsyncClient) -> None:
    r = await client.get("/invitations/not-a-real-token")
    assert r.status_code == 400
    assert "This invitation link is not valid" in text(r.text)


async def test_password_reset_by_mail_sets_a_new_password_and_signs_in(
    client: httpx.AsyncClient, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    await sign_up(client, "rae")
    client.cookies.clear()
    await client.get("/forgot-password")
    r = await post_form(client, "/forgot-password", {"email": "not an email"})
    assert r.status_code == 400
    assert field_error(r.text, "email") == "Email is not an email address"
    r = await post_form(client, "/forgot-password", {"email": "rae@example.com"})
    assert r.status_code == 200
    assert "If an account exists for this email, a reset link is on its way." in text(r.text)
    unknown = await post_form(client, "/forgot-password", {"email": "nobody@example.com"})
    assert text(unknown.text) == text(r.text)  # the same answer for an unknown address

    for _ in range(100):
        if inbox.to("rae@example.com"):
            break
        await asyncio.sleep(0.05)
    link = re.search(
        r"https?://\S+/reset-password\?token=[\w-]+", Inbox.body(inbox.to("rae@example.com")[-1])
    )
    assert link
    path = link.group(0).split("://", 1)[1].split("/", 1)[1]
    form = await client.get("/" + path)
    assert form.status_code == 200
    token = path.split("token=")[1]
    assert f'name="token" value="{token}"' in form.text

    r = await post_form(client, "/reset-password", {"token": token, "new_password": "short"})
    assert r.status_code == 400
    assert field_error(r.text, "new_password") == "New password must be at least 8 characters"
    r = await post_form(client, "/reset-password", {"token": token, "new_password": "a brand new passphrase"})
    assert r.status_code == 303
    assert r.headers["location"] == "/sites"
    assert SESSION in client.cookies
    assert (await client.get("/sites")).status_code == 200

    again = await post_form(client, "/reset-password", {"token": token, "new_password": "another passphrase"})
    assert again.status_code == 400
    assert "This reset link was already used" in text(again.text)
    client.cookies.clear()
    assert (await log_in(client, "rae@example.com")).status_code == 401
    assert (await log_in(client, "rae@example.com", "a brand new passphrase")).status_code == 303
