"""Password reset: the mail and its one-time link, the same answer for unknown accounts, bad tokens."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from segmently.db.base import utcnow
from segmently.db.engine import Database
from segmently.db.models import PasswordReset, User
from segmently.domain.accounts.security import sha256
from tests.conftest import Inbox, free_port, make_settings, serve_app
from tests.core.accounts.test_auth import PASSWORD, bearer, signup

pytestmark = pytest.mark.usefixtures("backend")
NEW_PASSWORD = "a brand new password"
REQUESTED = {"detail": "If an account exists for this email, a reset link is on its way."}
LINK = re.compile(r"(https?://\S+/reset-password\?token=([A-Za-z0-9_-]+))")


async def mails_to(inbox: Inbox, address: str, count: int = 1, timeout: float = 10.0) -> list[str]:
    """The plain-text bodies of the first ``count`` mails to ``address`` (waits for them)."""
    deadline = time.monotonic() + timeout
    while len(inbox.to(address)) < count:
        assert time.monotonic() < deadline, f"no {count} mail(s) to {address}: {inbox.messages}"
        await asyncio.sleep(0.02)
    return [Inbox.body(m) for m in inbox.to(address)[:count]]


def token_in(body: str) -> str:
    match = LINK.search(body)
    assert match, body
    return match.group(2)


async def request_reset(client: httpx.AsyncClient, address: str) -> httpx.Response:
    r = await client.post("/api/v1/auth/password-reset", json={"email": address})
    assert r.status_code == 202, r.text
    assert r.json() == REQUESTED
    return r


async def reset_token(client: httpx.AsyncClient, inbox: Inbox, address: str, nth: int = 1) -> str:
    await request_reset(client, address)
    return token_in((await mails_to(inbox, address, nth))[nth - 1])


async def confirm(client: httpx.AsyncClient, token: str, password: str = NEW_PASSWORD) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": password}
    )


def token_error(r: httpx.Response, words: str) -> None:
    assert r.status_code == 400, r.text
    errors = r.json()["errors"]
    assert [e["field"] for e in errors] == ["token"], errors
    assert words in errors[0]["message"], errors


async def login(client: httpx.AsyncClient, address: str, password: str) -> int:
    r = await client.post("/api/v1/auth/login", json={"email": address, "password": password})
    return r.status_code


async def run_sql(database_url: str, *statements: object) -> None:
    db = Database(database_url)
    try:
        async with db.session() as session:
            for stmt in statements:
                await session.execute(stmt)  # type: ignore[call-overload]
    finally:
        await db.dispose()


async def test_reset_mail_link_sets_the_password_and_ends_every_session(
    client: httpx.AsyncClient, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    old = (await signup(client, "alice"))["token"]
    await request_reset(client, "  Alice@Example.com ")
    [body] = await mails_to(inbox, "alice@example.com")
    message = inbox.to("alice@example.com")[0]
    assert message["Subject"] == "Reset your Segmently password"
    assert "60 minutes" in body or "1 hour" in body
    url, token = LINK.search(body).groups()  # type: ignore[union-attr]
    assert url == f"http://127.0.0.1:8000/reset-password?token={token}"
    assert len(token) >= 43  # 32 random bytes, URL-safe base64

    r = await confirm(client, token)
    assert r.status_code == 200, r.text
    new = r.json()["token"]
    assert set(r.json()) == {"token"}
    assert (await client.get("/api/v1/me", headers=bearer(old))).status_code == 401
    me = await client.get("/api/v1/me", headers=bearer(new))
    assert me.status_code == 200 and me.json()["user"]["email"] == "alice@example.com"
    assert await login(client, "alice@example.com", NEW_PASSWORD) == 200
    assert await login(client, "alice@example.com", PASSWORD) == 401

    again = await confirm(client, token, "yet another password")
    token_error(again, "already used")
    assert await login(client, "alice@example.com", NEW_PASSWORD) == 200


async def test_unknown_email_gets_the_same_answer_and_no_mail(
    client: httpx.AsyncClient, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    await signup(client, "bob")
    known = await request_reset(client, "bob@example.com")
    unknown = await request_reset(client, "nobody@example.com")
    assert known.content == unknown.content
    assert known.headers["content-type"] == unknown.headers["content-type"]
    await mails_to(inbox, "bob@example.com")
    await asyncio.sleep(0.3)  # a mail to the unknown address would have arrived by now
    assert [m["To"] for m in inbox.messages] == ["bob@example.com"]


async def test_bad_email_is_400_on_email(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/auth/password-reset", json={"email": "not-an-email"})
    assert r.status_code == 400
    assert [e["field"] for e in r.json()["errors"]] == ["email"]


@pytest.mark.parametrize("token", ["garbage", "x" * 200, ""])
async def test_garbage_token_is_400_on_token(client: httpx.AsyncClient, token: str) -> None:
    r = await confirm(client, token)
    assert r.status_code == 400, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["token"]
    if token:
        assert "not valid" in r.json()["errors"][0]["message"]


async def test_expired_token_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, smtp: tuple[Inbox, int], database_url: str
) -> None:
    inbox, _ = smtp
    old = (await signup(client, "carol"))["token"]
    token = await reset_token(client, inbox, "carol@example.com")
    await run_sql(
        database_url,
        update(PasswordReset)
        .where(PasswordReset.token_hash == sha256(token))
        .values(expires_at=utcnow() - dt.timedelta(seconds=1)),
    )
    token_error(await confirm(client, token), "expired")
    assert await login(client, "carol@example.com", PASSWORD) == 200
    assert (await client.get("/api/v1/me", headers=bearer(old))).status_code == 200


async def test_token_is_stored_hashed_and_valid_for_60_minutes(
    client: httpx.AsyncClient, smtp: tuple[Inbox, int], database_url: str
) -> None:
    inbox, _ = smtp
    await signup(client, "dora")
    before = utcnow()
    token = await reset_token(client, inbox, "dora@example.com")
    db = Database(database_url)
    try:
        async with db.session() as session:
            rows = (await session.scalars(select(PasswordReset))).all()
    finally:
        await db.dispose()
    assert [r.token_hash for r in rows] == [sha256(token)]
    assert rows[0].used_at is None
    valid_for = rows[0].expires_at - before
    assert dt.timedelta(minutes=59) < valid_for <= dt.timedelta(minutes=60, seconds=5)


async def test_short_password_is_400_and_keeps_the_token_usable(
    client: httpx.AsyncClient, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    old = (await signup(client, "erin"))["token"]
    token = await reset_token(client, inbox, "erin@example.com")
    r = await confirm(client, token, "short")
    assert r.status_code == 400
    assert [e["field"] for e in r.json()["errors"]] == ["new_password"]
    assert "at least 8 characters" in r.json()["errors"][0]["message"]
    assert await login(client, "erin@example.com", PASSWORD) == 200
    assert (await client.get("/api/v1/me", headers=bearer(old))).status_code == 200
    assert (await confirm(client, token)).status_code == 200  # nothing was used up


async def test_using_one_link_invalidates_the_other_outstanding_ones(
    client: httpx.AsyncClient, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    await signup(client, "fay")
    first = await reset_token(client, inbox, "fay@example.com", 1)
    second = await reset_token(client, inbox, "fay@example.com", 2)
    assert first != second
    assert (await confirm(client, second)).status_code == 200
    token_error(await confirm(client, first, "the first link's password"), "already used")
    assert await login(client, "fay@example.com", NEW_PASSWORD) == 200


async def test_concurrent_confirmations_of_one_token_let_exactly_one_win(
    client: httpx.AsyncClient, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    await signup(client, "gia")
    token = await reset_token(client, inbox, "gia@example.com")
    answers = await asyncio.gather(*(confirm(client, token, f"password number {i}") for i in range(4)))
    assert sorted(r.status_code for r in answers) == [200, 400, 400, 400]
    winner = next(i for i, r in enumerate(answers) if r.status_code == 200)
    assert await login(client, "gia@example.com", f"password number {winner}") == 200


@pytest.mark.parametrize("status", ["suspended", "deleted"])
async def test_suspended_or_deleted_account_gets_no_mail_and_cannot_confirm(
    client: httpx.AsyncClient, smtp: tuple[Inbox, int], database_url: str, status: str
) -> None:
    inbox, _ = smtp
    await signup(client, "hal")
    token = await reset_token(client, inbox, "hal@example.com")  # asked while still active
    await run_sql(database_url, update(User).where(User.email == "hal@example.com").values(status=status))
    r = await confirm(client, token)
    token_error(r, "suspended" if status == "suspended" else "not valid")
    await request_reset(client, "hal@example.com")
    await asyncio.sleep(0.3)
    assert len(inbox.to("hal@example.com")) == 1  # only the mail sent while active
    await run_sql(database_url, update(User).where(User.email == "hal@example.com").values(status="active"))
    assert await login(client, "hal@example.com", PASSWORD) == 200  # the password never changed


# ------------------------------------------------- mail after the response ---


@contextlib.asynccontextmanager
async def server_mailing_to(
    database_url: str, data_dir: Path, port: int, timeout: float = 10.0
) -> AsyncIterator[httpx.AsyncClient]:
    """A server of its own whose mailer talks to 127.0.0.1:``port``."""
    from segmently.app import create_app
    from segmently.mail import MailSettings, SmtpServer
    from segmently.plugins import PluginHost

    settings = make_settings(
        database_url,
        data_dir,
        mail=MailSettings(smtp=SmtpServer(host="127.0.0.1", port=port, tls="none"), timeout=timeout),
    )
    async with (
        serve_app(create_app(settings, PluginHost.load())) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as client,
    ):
        yield client


class SlowInbox(Inbox):
    """An inbox whose server takes its time to accept each mail."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


async def test_slow_mail_server_never_delays_the_answer(database_url: str, tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller

    inbox = SlowInbox(delay=2.0)
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        async with server_mailing_to(database_url, tmp_path, controller.port) as client:
            await signup(client, "ivy")
            started = time.monotonic()
            await request_reset(client, "ivy@example.com")
            assert time.monotonic() - started < 1.5  # the SMTP exchange alone takes 2 s
            assert inbox.messages == []
            token = token_in((await mails_to(inbox, "ivy@example.com"))[0])
            assert (await confirm(client, token)).status_code == 200
    finally:
        controller.stop()


async def test_mail_failure_is_logged_with_the_address_never_shown(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    closed_port = free_port()  # nothing listens there
    with caplog.at_level(logging.ERROR, "segmently.domain.accounts.reset"):
        async with server_mailing_to(database_url, tmp_path, closed_port, timeout=2) as client:
            await signup(client, "jay")
            r = await request_reset(client, "jay@example.com")
            assert r.json() == REQUESTED
            deadline = time.monotonic() + 10
            while not any("jay@example.com" in rec.getMessage() for rec in caplog.records):
                assert time.monotonic() < deadline, caplog.records
                await asyncio.sleep(0.05)
    [record] = [rec for rec in caplog.records if "jay@example.com" in rec.getMessage()]
    assert record.levelno == logging.ERROR
    assert "password reset mail" in record.getMessage()
    assert record.exc_info is None  # a MailError: one clear line, no traceback
