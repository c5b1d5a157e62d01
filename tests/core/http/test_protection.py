"""Rate limits, security headers and CSRF, on a small app served over real HTTP (no database)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import pytest
from litestar import Litestar, MediaType, Request, get, post
from litestar.exceptions import ImproperlyConfiguredException
from litestar.params import JSONBody
from redis.asyncio import Redis

from segmently.http.errors import EXCEPTION_HANDLERS
from segmently.http.protection import (
    CSRF_COOKIE,
    DEFAULT_BUCKETS,
    EMBEDDABLE_OPT,
    PUBLIC_ROUTE_OPT,
    SESSION_COOKIE,
    AppRateLimits,
    Rate,
    RateLimitExceeded,
    RateLimits,
    csrf_middleware,
    rate_limit,
    security_headers,
)
from segmently.settings import SettingsError
from tests.conftest import IN_CI, SECRET, free_port, serve_app

Client = httpx.AsyncClient
REDIS_URL = os.environ.get("SEGMENTLY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(autouse=True)
def _uvicorn_trusts_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # uvicorn itself rewrites the client from X-Forwarded-For for loopback peers by default;
    # these tests need the raw peer so that only SEGMENTLY_TRUSTED_PROXIES decides
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "192.0.2.1")


def build_app(limits: RateLimits, base_url: str = "http://127.0.0.1:8000") -> Litestar:
    """Handlers as the kernel declares them: at import time, finding the app's RateLimits at run time."""

    @post("/login", middleware=[rate_limit("login")])
    async def login(data: JSONBody[dict[str, str]], rate_limits: AppRateLimits) -> dict[str, bool]:
        await rate_limits.hit("login_account", data["email"].lower())
        return {"ok": True}

    @post("/login/succeeded")
    async def login_succeeded(data: JSONBody[dict[str, str]], request: Request[Any, Any, Any]) -> None:
        await RateLimits.of(request.app).reset("login_account", data["email"].lower())

    @post("/signup", middleware=[limits.middleware("signup")])  # bound to one instance
    async def signup() -> dict[str, bool]:
        return {"ok": True}

    @post("/password-reset", middleware=[rate_limit("password_reset")])
    async def password_reset() -> dict[str, bool]:
        return {"ok": True}

    @get("/api/public/config", middleware=[rate_limit("public")], opt=PUBLIC_ROUTE_OPT)
    async def public_config() -> dict[str, bool]:
        return {"ok": True}

    @post("/api/public/events", middleware=[rate_limit("public")], opt=PUBLIC_ROUTE_OPT)
    async def public_events() -> dict[str, bool]:
        return {"ok": True}

    @get("/segmently.js", media_type="text/javascript", opt=PUBLIC_ROUTE_OPT)
    async def snippet() -> str:
        return "/* snippet */"

    @get("/dashboard", media_type=MediaType.HTML)
    async def dashboard() -> str:
        return "<!doctype html><title>Dashboard</title>"

    @get("/preview", media_type=MediaType.HTML, opt={EMBEDDABLE_OPT: True})
    async def preview() -> str:
        return "<!doctype html><title>Preview</title>"

    @post("/dashboard/items")
    async def create_item() -> dict[str, bool]:
        return {"ok": True}

    @get("/whoami")
    async def whoami(request: Request[Any, Any, Any]) -> dict[str, str]:
        return {"ip": limits.client_ip(request.scope)}

    return Litestar(
        route_handlers=[
            login,
            login_succeeded,
            signup,
            password_reset,
            public_config,
            public_events,
            snippet,
            dashboard,
            preview,
            create_item,
            whoami,
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        before_send=[security_headers(base_url)],
        middleware=[csrf_middleware(SECRET)],
        plugins=[limits],
        logging_config=None,  # Litestar's default would replace pytest's capturing handlers
    )


@contextlib.asynccontextmanager
async def served(limits: RateLimits, base_url: str = "http://127.0.0.1:8000") -> AsyncIterator[Client]:
    async with serve_app(build_app(limits, base_url)) as base, httpx.AsyncClient(base_url=base) as c:
        yield c


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """The test app with default limits."""
    async with served(RateLimits.from_env({})) as c:
        yield c


def limited(env: Mapping[str, str], **kwargs: Any) -> contextlib.AbstractAsyncContextManager[Client]:
    return served(RateLimits.from_env(env, **kwargs))


def assert_429(r: httpx.Response, window: int = 60) -> None:
    assert r.status_code == 429
    body = r.json()
    assert set(body) == {"status_code", "detail", "errors"}
    assert body["status_code"] == 429
    assert body["errors"] == []
    assert "Too many requests" in body["detail"]
    assert 1 <= int(r.headers["Retry-After"]) <= window
    assert r.headers["RateLimit-Remaining"] == "0"


# ------------------------------------------------------------------ rate limits ---


async def test_login_allows_the_default_twenty_per_minute_then_429(client: httpx.AsyncClient) -> None:
    for i in range(20):
        r = await client.post("/login", json={"email": f"user{i}@example.com"})
        assert r.status_code == 201, r.text
        assert r.headers["RateLimit-Limit"] == "20"
        assert r.headers["RateLimit-Remaining"] == str(19 - i)
    assert_429(await client.post("/login", json={"email": "another@example.com"}))


async def test_environment_overrides_the_limit() -> None:
    async with limited({"SEGMENTLY_RATE_LIMIT_LOGIN": "3/minute"}) as client:
        for i in range(3):
            assert (await client.post("/login", json={"email": f"u{i}@example.com"})).status_code == 201
        assert_429(await client.post("/login", json={"email": "u9@example.com"}))


async def test_buckets_are_counted_independently() -> None:
    env = {"SEGMENTLY_RATE_LIMIT_SIGNUP": "2/minute", "SEGMENTLY_RATE_LIMIT_PASSWORD_RESET": "2/hour"}
    async with limited(env) as client:
        for _ in range(2):
            assert (await client.post("/signup")).status_code == 201
        assert_429(await client.post("/signup"))
        assert (await client.post("/login", json={"email": "a@example.com"})).status_code == 201
        for _ in range(2):
            assert (await client.post("/password-reset")).status_code == 201
        assert_429(await client.post("/password-reset"), window=3600)


async def test_public_bucket_counts_each_endpoint_and_sends_no_headers_until_429() -> None:
    async with limited({"SEGMENTLY_RATE_LIMIT_PUBLIC": "2/minute"}) as client:
        for _ in range(2):
            r = await client.get("/api/public/config")
            assert r.status_code == 200
            assert "RateLimit-Limit" not in r.headers
            assert (await client.post("/api/public/events")).status_code == 201
        assert_429(await client.get("/api/public/config"))
        assert_429(await client.post("/api/public/events"))


async def test_per_account_limit_counts_the_key_whatever_the_ip_limit() -> None:
    async with limited({"SEGMENTLY_RATE_LIMIT_LOGIN_ACCOUNT": "2/minute"}) as client:
        assert (await client.post("/login", json={"email": "Alice@example.com"})).status_code == 201
        assert (await client.post("/login", json={"email": "alice@example.com"})).status_code == 201
        assert_429(await client.post("/login", json={"email": "ALICE@example.com"}))
        assert (await client.post("/login", json={"email": "bob@example.com"})).status_code == 201
        assert (await client.post("/login/succeeded", json={"email": "alice@example.com"})).status_code == 201
        assert (await client.post("/login", json={"email": "alice@example.com"})).status_code == 201


async def test_the_window_restarts_after_its_duration() -> None:
    limits = RateLimits.from_env({"SEGMENTLY_RATE_LIMIT_SIGNUP": "2/second"})
    assert [(await limits.consume("signup", "k")).allowed for _ in range(3)] == [True, True, False]
    with pytest.raises(RateLimitExceeded) as raised:
        await limits.hit("signup", "k")
    assert raised.value.headers == {
        "Retry-After": "1",
        "RateLimit-Policy": "2; w=1",
        "RateLimit-Limit": "2",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "1",
    }
    await asyncio.sleep(1.05)
    assert (await limits.hit("signup", "k")).remaining == 1


async def test_unknown_bucket_fails_when_routes_are_declared() -> None:
    with pytest.raises(KeyError, match="logn"):
        RateLimits.from_env({}).middleware("logn")
    with pytest.raises(KeyError, match="logn"):
        rate_limit("logn")


async def test_an_app_without_rate_limits_says_so() -> None:
    @post("/login", middleware=[rate_limit("login")])
    async def login() -> None:
        return None

    app = Litestar([login], exception_handlers=EXCEPTION_HANDLERS, logging_config=None)
    with pytest.raises(ImproperlyConfiguredException, match="no RateLimits installed"):
        RateLimits.of(app)


# ---------------------------------------------------------------------- Redis ---


@pytest.fixture
async def redis_namespace() -> AsyncIterator[str]:
    """A key prefix of this test's own in the test Redis; every key under it is deleted afterwards."""
    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.ping()
    except OSError as exc:
        await redis.aclose()
        if IN_CI:
            pytest.fail(f"Redis at {REDIS_URL} is unreachable: {exc} (CI=true: Redis tests must run)")
        pytest.skip(f"Redis at {REDIS_URL} is unreachable: {exc}")
    namespace = f"segmently_test_{uuid.uuid4().hex}"
    try:
        yield namespace
        assert await redis.keys(f"{namespace}:*") == []
    finally:
        async for key in redis.scan_iter(match=f"{namespace}:*"):
            await redis.delete(key)
        await redis.aclose()


async def test_redis_store_shares_counts_between_app_nodes(redis_namespace: str) -> None:
    env = {"SEGMENTLY_RATE_LIMIT_SIGNUP": "3/minute"}
    first = RateLimits.from_env(env, redis_url=REDIS_URL, namespace=redis_namespace)
    second = RateLimits.from_env(env, redis_url=REDIS_URL, namespace=redis_namespace)
    async with (
        serve_app(build_app(first)) as base1,
        serve_app(build_app(second)) as base2,
        httpx.AsyncClient(base_url=base1) as node1,
        httpx.AsyncClient(base_url=base2) as node2,
    ):
        assert (await node1.post("/signup")).status_code == 201
        assert (await node2.post("/signup")).status_code == 201
        assert (await node1.post("/signup")).status_code == 201
        assert_429(await node2.post("/signup"))
        assert_429(await node1.post("/signup"))
        redis = Redis.from_url(REDIS_URL)
        [key] = await redis.keys(f"{redis_namespace}:signup:*")  # one client, one counter
        assert 0 < await redis.pttl(key) <= 60_000
        await redis.aclose()
        await first.store.delete_all()


async def test_unreachable_redis_lets_requests_through_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    with caplog.at_level(logging.WARNING, "segmently.http.ratelimit"):
        async with limited({"SEGMENTLY_RATE_LIMIT_SIGNUP": "1/minute"}, redis_url=url) as client:
            for _ in range(3):
                assert (await client.post("/signup")).status_code == 201
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "rate-limit store unreachable" in caplog.records[0].message


# ------------------------------------------------------------- client address ---


async def test_forwarded_for_is_believed_only_from_trusted_proxies(caplog: pytest.LogCaptureFixture) -> None:
    env = {"SEGMENTLY_RATE_LIMIT_LOGIN": "2/minute", "SEGMENTLY_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1"}
    async with limited(env) as client:
        spoofed = {"X-Forwarded-For": "6.6.6.6, 203.0.113.5"}
        assert (await client.get("/whoami", headers=spoofed)).json() == {"ip": "203.0.113.5"}
        for _ in range(2):
            r = await client.post("/login", json={"email": "a@example.com"}, headers=spoofed)
            assert r.status_code == 201
        assert_429(await client.post("/login", json={"email": "a@example.com"}, headers=spoofed))
        other = {"X-Forwarded-For": "203.0.113.6"}
        r = await client.post("/login", json={"email": "b@example.com"}, headers=other)
        assert r.status_code == 201

    async with limited({**env, "SEGMENTLY_TRUSTED_PROXIES": "10.0.0.0/8"}) as client:
        assert (await client.get("/whoami", headers={"X-Forwarded-For": "203.0.113.5"})).json() == {
            "ip": "127.0.0.1"
        }
        for n in range(3):  # every claimed address counts as the proxy's own
            headers = {"X-Forwarded-For": f"203.0.113.{n}"}
            r = await client.post("/login", json={"email": "a@example.com"}, headers=headers)
            assert r.status_code == (201 if n < 2 else 429)
    ignored = [r.message for r in caplog.records if "X-Forwarded-For from 127.0.0.1 ignored" in r.message]
    assert len(ignored) == 1


def _scope(peer: str, *forwarded: str) -> Any:
    return {"client": (peer, 1234), "headers": [(b"x-forwarded-for", f.encode()) for f in forwarded]}


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        ((), "10.0.0.1"),
        (("203.0.113.5",), "203.0.113.5"),
        (("6.6.6.6, 203.0.113.5, 10.0.0.7",), "203.0.113.5"),  # skips our own proxies, not the client's
        (("6.6.6.6", "203.0.113.5"), "203.0.113.5"),  # several headers are one list
        (("10.0.0.9, 10.0.0.7",), "10.0.0.9"),  # only proxies: the furthest one
        (("garbage, 10.0.0.7",), "10.0.0.7"),
        (("2001:db8::1",), "2001:db8::1"),
    ],
)
def test_client_ip_walks_forwarded_for_from_the_right(forwarded: tuple[str, ...], expected: str) -> None:
    limits = RateLimits.from_env({"SEGMENTLY_TRUSTED_PROXIES": "10.0.0.0/8"})
    assert limits.client_ip(_scope("10.0.0.1", *forwarded)) == expected
    assert limits.client_ip(_scope("192.0.2.1", *forwarded)) == "192.0.2.1"


# ------------------------------------------------------------------ settings ---


def test_defaults_match_the_architecture() -> None:
    limits = RateLimits.from_env({})
    assert {name: str(b.rate) for name, b in limits.buckets.items()} == {
        "signup": "20/minute",
        "login": "20/minute",
        "login_account": "20/minute",
        "password_reset": "20/minute",
        "public": "6000/minute",
    }
    assert {b.name for b in DEFAULT_BUCKETS} == set(limits.buckets)
    assert limits.trusted_proxies == ()


@pytest.mark.parametrize("text", ["30/second", "30/minute", " 30 / Hour ", "1/day"])
def test_rates_parse(text: str) -> None:
    rate = Rate.parse(text)
    assert rate.limit in (1, 30)
    assert rate.unit in ("second", "minute", "hour", "day")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SEGMENTLY_RATE_LIMIT_LOGIN": "30/min"}, "SEGMENTLY_RATE_LIMIT_LOGIN"),
        ({"SEGMENTLY_RATE_LIMIT_SIGNUP": "0/minute"}, "SEGMENTLY_RATE_LIMIT_SIGNUP"),
        ({"SEGMENTLY_RATE_LIMIT_PUBLIC": "lots"}, "SEGMENTLY_RATE_LIMIT_PUBLIC"),
        ({"SEGMENTLY_RATE_LIMIT_LOGN": "5/minute"}, "SEGMENTLY_RATE_LIMIT_LOGN"),
        ({"SEGMENTLY_TRUSTED_PROXIES": "10.0.0.0/8, proxy.internal"}, "SEGMENTLY_TRUSTED_PROXIES"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named) as raised:
        RateLimits.from_env(env)
    assert isinstance(raised.value, SettingsError)


# ---------------------------------------------------------- security headers ---


async def test_dashboard_pages_get_every_header_and_a_csp(client: httpx.AsyncClient) -> None:
    r = await client.get("/dashboard")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in r.headers  # the base URL is http


async def test_public_routes_stay_embeddable(client: httpx.AsyncClient) -> None:
    for path in ("/api/public/config", "/segmently.js"):
        r = await client.get(path)
        assert r.status_code == 200
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert "X-Frame-Options" not in r.headers
        assert "Content-Security-Policy" not in r.headers  # not HTML
    r = await client.get("/preview")
    assert "X-Frame-Options" not in r.headers
    assert "frame-ancestors" not in r.headers["Content-Security-Policy"]


async def test_errors_and_unknown_paths_get_the_headers_without_a_csp(client: httpx.AsyncClient) -> None:
    r = await client.get("/no/such/page")
    assert r.status_code == 404
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in r.headers  # JSON


async def test_hsts_only_when_the_base_url_is_https() -> None:
    async with served(RateLimits.from_env({}), base_url="https://segmently.example.com") as client:
        assert (await client.get("/dashboard")).headers["Strict-Transport-Security"] == "max-age=31536000"


# ----------------------------------------------------------------------- CSRF ---


async def csrf_token(base: str) -> str:
    async with httpx.AsyncClient(base_url=base) as fresh:
        r = await fresh.get("/dashboard")
        return r.cookies[CSRF_COOKIE]


async def test_cookie_session_post_needs_the_csrf_token(client: httpx.AsyncClient) -> None:
    base = str(client.base_url)
    token = await csrf_token(base)
    async with httpx.AsyncClient(base_url=base) as browser:
        session = f"{SESSION_COOKIE}=jwt; {CSRF_COOKIE}={token}"
        r = await browser.post("/dashboard/items", headers={"Cookie": session})
        assert r.status_code == 403
        assert r.json() == {"status_code": 403, "detail": "CSRF token verification failed", "errors": []}
        forged = token[:-1] + ("0" if token[-1] != "0" else "1")
        r = await browser.post("/dashboard/items", headers={"Cookie": session, "X-CSRF-Token": forged})
        assert r.status_code == 403
        r = await browser.post("/dashboard/items", headers={"Cookie": session, "X-CSRF-Token": token})
        assert r.status_code == 201


@pytest.mark.parametrize(
    "credentials",
    [{"Authorization": "Bearer eyJ.jwt.sig"}, {"X-Management-Key": "seg_mgmt_abc"}],
)
async def test_header_authenticated_requests_need_no_token(
    client: httpx.AsyncClient, credentials: dict[str, str]
) -> None:
    r = await client.post("/dashboard/items", headers={**credentials, "Cookie": f"{SESSION_COOKIE}=jwt"})
    assert r.status_code == 201
    r = await client.get("/dashboard", headers=credentials)
    assert CSRF_COOKIE not in r.cookies


@pytest.mark.parametrize(
    "headers",
    [{"X-API-Key": "seg_live_abc"}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}],
)
async def test_headers_the_kernel_does_not_authenticate_by_do_not_exempt_a_session(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    # the session cookie authenticates these, so a forged request must still fail
    r = await client.post("/dashboard/items", headers={**headers, "Cookie": f"{SESSION_COOKIE}=jwt"})
    assert r.status_code == 403
    assert (await client.post("/dashboard/items", headers=headers)).status_code == 201


async def test_requests_without_a_session_cookie_need_no_token(client: httpx.AsyncClient) -> None:
    assert (await client.post("/dashboard/items")).status_code == 201  # e.g. the login form


async def test_public_routes_are_never_csrf_checked(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/public/events", headers={"Cookie": f"{SESSION_COOKIE}=jwt"})
    assert r.status_code == 201
    assert CSRF_COOKIE not in (await client.get("/api/public/config")).cookies
    assert CSRF_COOKIE not in (await client.get("/whoami", headers={"X-API-Key": "seg_live_abc"})).cookies
