"""Driving the dashboard like a browser does: form posts that echo the CSRF cookie."""

from __future__ import annotations

import re
from html import unescape

import httpx

from tests.core.accounts.test_auth import PASSWORD

CSRF = "segmently_csrf"
SESSION = "segmently_session"


async def csrf_token(client: httpx.AsyncClient, page: str = "/login") -> str:
    """The CSRF cookie (a GET hands it out first if the client has none)."""
    if CSRF not in client.cookies:
        await client.get(page)
    return client.cookies[CSRF]


async def post_form(
    client: httpx.AsyncClient, url: str, data: dict[str, str], **kwargs: object
) -> httpx.Response:
    """Post a form as the page would: with ``_csrf_token``."""
    token = await csrf_token(client)
    return await client.post(url, data={"_csrf_token": token, **data}, **kwargs)  # type: ignore[arg-type]


async def sign_up(client: httpx.AsyncClient, tag: str, organization: str | None = None) -> httpx.Response:
    """Sign up through the page; the client holds the session cookie afterwards."""
    await client.get("/signup")
    r = await post_form(
        client,
        "/signup",
        {
            "name": tag.title(),
            "email": f"{tag}@example.com",
            "password": PASSWORD,
            "organization": organization or f"{tag} org",
        },
    )
    assert r.status_code == 303, r.text
    return r


async def log_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, next_: str = ""
) -> httpx.Response:
    await client.get("/login")
    return await post_form(client, "/login", {"email": email, "password": password, "next": next_})


def field_error(html: str, field: str) -> str | None:
    """The error shown under ``field`` (``<p id="f-<field>-error">``), or None."""
    match = re.search(rf'<p class="field-error" id="f-{re.escape(field)}-error">(.*?)</p>', html, re.S)
    return unescape(match.group(1)).strip() if match else None


def text(html: str) -> str:
    """The page's visible words, roughly (tags dropped, blanks collapsed)."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def assert_labelled(url: str, html: str) -> int:
    """Fail on a visible form control without a ``<label for>``; returns how many were checked."""
    labels = set(re.findall(r'<label\b[^>]*\bfor="([^"]+)"', html))
    checked = 0
    for control in re.findall(r"<(?:input|select|textarea)\b[^>]*>", html):
        if 'type="hidden"' in control:
            continue
        match = re.search(r'id="([^"]+)"', control)
        assert match and match.group(1) in labels, f"{url}: unlabelled {control}"
        checked += 1
    return checked
