"""Sign-up, sign-in, sign-out and the session cookie, through the pages."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from litestar import Litestar

from tests.conftest import make_settings, serve_app
from tests.core.accounts.test_auth import PASSWORD
from tests.dashboard.support import SESSION, field_error, log_in, post_form, sign_up, text

pytestmark = pytest.mark.usefixtures("backend")


async def test_anonymous_visit_goes_to_login_and_back_after_login(client: httpx.AsyncClient) -> None:
    await sign_up(client, "ann")
    await client.post("/logout", data={"_csrf_token": client.cookies["segmently_csrf"]})
    client.cookies.delete(SESSION)

    r = await client.get("/alerts?page=2")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/alerts%3Fpage%3D2"
    form = await client.get(r.headers["location"])
    assert 'name="next" value="/alerts?page=2"' in form.text

    r = await log_in(client, "ann@example.com", next_="/alerts?page=2")
    assert r.status_code == 303
    assert r.headers["location"] == "/alerts?page=2"
    page = await client.get("/alerts?page=2")
    assert page.status_code == 200
    assert "<h1>Alerts</h1>" in page.text


async def test_login_sets_an_http_only_same_site_session_cookie(client: httpx.AsyncClient) -> None:
    await sign_up(client, "bob")
    client.cookies.delete(SESSION)
    r = await log_in(client, "bob@example.com")
    assert r.status_code == 303
    assert r.headers["location"] == "/sites"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(f"{SESSION}="))
    attributes = {a.strip().split("=")[0].lower(): a for a in cookie.split(";")[1:]}
    assert "httponly" in attributes
    assert attributes["samesite"].strip().lower() == "samesite=lax"
    assert "secure" not in attributes  # http://127.0.0.1: a Secure cookie would never come back
    assert (await client.get("/sites")).status_code == 200


async def test_session_cookie_is_secure_when_the_server_is_on_https(
    database_url: str, tmp_path: Path, plugins: object
) -> None:
    from segmently.app import create_app

    app: Litestar = create_app(
        make_settings(database_url, tmp_path, base_url="https://segmently.example"), plugins
    )  # type: ignore[arg-type]
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as client:
        await client.get("/signup")
        r = await post_form(
            client,
            "/signup",
            {"name": "Sec", "email": "sec@example.com", "password": PASSWORD, "organization": ""},
        )
    assert r.status_code == 303
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(f"{SESSION}="))
    assert "secure" in cookie.lower().replace(" ", "").split(";")


async def test_wrong_password_is_refused_without_a_cookie(client: httpx.AsyncClient) -> None:
    await sign_up(client, "cat")
    client.cookies.delete(SESSION)
    r = await log_in(client, "cat@example.com", "not the password")
    assert r.status_code == 401
    assert "Email or password is incorrect" in text(r.text)
    assert SESSION not in r.cookies
    assert 'value="cat@example.com"' in r.text  # the address stays filled in


async def test_login_never_redirects_off_the_server(client: httpx.AsyncClient) -> None:
    await sign_up(client, "dan")
    client.cookies.delete(SESSION)
    targets = ("//evil.example/", "https://evil.example/", "/\\evil.example", "/\t/evil.example", "/./\\evil")
    for target in targets:
        r = await log_in(client, "dan@example.com", next_=target)
        assert r.headers["location"] == "/sites", target


async def test_signup_creates_the_account_and_organization_and_lands_on_sites(
    client: httpx.AsyncClient,
) -> None:
    r = await sign_up(client, "eve", organization="Eve's Shop")
    assert r.headers["location"] == "/sites"
    page = await client.get("/sites")
    assert page.status_code == 200
    assert "Eve's Shop" in text(page.text)
    assert "Eve" in text(page.text)
    me = await client.get("/api/v1/me")  # the same cookie works on the API
    assert me.json()["organization"]["name"] == "Eve's Shop"
    assert me.json()["organization"]["role"] == "owner"


async def test_signup_shows_each_field_error_next_to_its_field(client: httpx.AsyncClient) -> None:
    await client.get("/signup")
    r = await post_form(client, "/signup", {"name": "", "email": "not-an-email", "password": "short"})
    assert r.status_code == 400
    assert field_error(r.text, "name") == "Your name is required"
    assert field_error(r.text, "email") == "Email is not an email address"
    assert field_error(r.text, "password") is None  # the API checks length after the fields' formats
    assert SESSION not in r.cookies

    r = await post_form(client, "/signup", {"name": "Fay", "email": "fay@example.com", "password": "short"})
    assert r.status_code == 400
    assert field_error(r.text, "password") == "Password must be at least 8 characters"
    assert 'value="fay@example.com"' in r.text
    assert "short" not in r.text  # a password is never echoed


async def test_signup_with_a_taken_email_says_so_at_the_email(client: httpx.AsyncClient) -> None:
    await sign_up(client, "gus")
    client.cookies.clear()
    await client.get("/signup")
    r = await post_form(client, "/signup", {"name": "Gus", "email": "GUS@example.com", "password": PASSWORD})
    assert r.status_code == 400
    assert field_error(r.text, "email") == "An account with this email already exists: sign in instead"


async def test_a_form_post_without_the_csrf_token_is_refused(client: httpx.AsyncClient) -> None:
    await sign_up(client, "hal")
    r = await client.post("/sites", data={"name": "Forged", "url": "https://forged.example"})
    assert r.status_code == 403
    assert "CSRF token verification failed" in text(r.text)
    assert r.headers["content-type"].startswith("text/html")
    r = await client.post(
        "/sites", data={"name": "Forged", "url": "https://forged.example", "_csrf_token": "0" * 128}
    )
    assert r.status_code == 403
    page = await client.get("/sites")
    assert "Forged" not in page.text


async def test_logout_ends_the_session_everywhere(client: httpx.AsyncClient) -> None:
    await sign_up(client, "ivy")
    old = client.cookies[SESSION]
    r = await post_form(client, "/logout", {})
    assert r.status_code == 303
    assert r.headers["location"] == "/login"
    assert SESSION not in client.cookies
    client.cookies.set(SESSION, old)  # a copy of the cookie kept elsewhere stops working too
    r = await client.get("/sites")
    assert r.status_code == 303
    assert r.headers["location"] == "/login"


async def test_login_page_goes_straight_on_when_signed_in(client: httpx.AsyncClient) -> None:
    await sign_up(client, "jon")
    r = await client.get("/login?next=/alerts")
    assert r.status_code == 303
    assert r.headers["location"] == "/alerts"


async def test_login_is_rate_limited_per_account_as_in_the_api(
    database_url: str, tmp_path: Path, plugins: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segmently.app import create_app

    monkeypatch.setenv("SEGMENTLY_RATE_LIMIT_LOGIN_ACCOUNT", "2/minute")
    app = create_app(make_settings(database_url, tmp_path), plugins)  # type: ignore[arg-type]
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as client:
        await sign_up(client, "kim")
        client.cookies.clear()
        statuses = [(await log_in(client, "kim@example.com", "wrong password")).status_code for _ in range(3)]
        assert statuses == [401, 401, 429]
        r = await log_in(client, "kim@example.com")
        assert r.status_code == 429
        assert "Too many" in text(r.text)
        assert "retry-after" in r.headers
