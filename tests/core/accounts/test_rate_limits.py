"""The sign-in endpoints are rate limited per IP and per account; responses carry security headers."""

from __future__ import annotations

import httpx
import pytest

from segmently.app import create_app
from tests.conftest import serve_app
from tests.core.accounts.test_auth import PASSWORD, signup

pytestmark = pytest.mark.usefixtures("backend")


async def test_login_is_limited_per_ip_and_per_account(
    settings,
    plugins,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setenv("SEGMENTLY_RATE_LIMIT_LOGIN", "3/minute")
    monkeypatch.setenv("SEGMENTLY_RATE_LIMIT_LOGIN_ACCOUNT", "5/minute")
    monkeypatch.setenv("SEGMENTLY_TRUSTED_PROXIES", "127.0.0.1")
    async with serve_app(create_app(settings, plugins)) as base, httpx.AsyncClient(base_url=base) as client:
        await signup(client, "alice")
        wrong = {"email": "alice@example.com", "password": "wrong password"}
        statuses = [(await client.post("/api/v1/auth/login", json=wrong)).status_code for _ in range(4)]
        assert statuses == [401, 401, 401, 429]
        limited = await client.post(
            "/api/v1/auth/login", json={"email": "alice@example.com", "password": PASSWORD}
        )
        assert limited.status_code == 429
        assert limited.json()["status_code"] == 429 and limited.json()["detail"]
        assert int(limited.headers["retry-after"]) > 0
        # from other addresses (behind a trusted proxy), the account's own limit still holds
        per_account = []
        for i in range(3):
            r = await client.post(
                "/api/v1/auth/login", json=wrong, headers={"X-Forwarded-For": f"203.0.113.{i}"}
            )
            per_account.append(r.status_code)
        assert per_account == [401, 401, 429]  # 3 earlier tries reached the account; the 4th stopped per IP


async def test_signup_is_limited_per_ip(settings, plugins, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SEGMENTLY_RATE_LIMIT_SIGNUP", "2/minute")
    async with serve_app(create_app(settings, plugins)) as base, httpx.AsyncClient(base_url=base) as client:
        await signup(client, "a1")
        await signup(client, "a2")
        r = await client.post(
            "/api/v1/auth/signup", json={"email": "a3@example.com", "password": PASSWORD, "name": "A3"}
        )
        assert r.status_code == 429
        login = await client.post(
            "/api/v1/auth/login", json={"email": "a3@example.com", "password": PASSWORD}
        )
        assert login.status_code == 401  # nothing was created


async def test_responses_carry_security_headers(client: httpx.AsyncClient) -> None:
    r = await client.get("/health")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert "strict-transport-security" not in r.headers  # the test server is plain http
