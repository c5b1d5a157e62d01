"""Alert and security mails: written with their cause, sent after commit through the outbox, at most
once per person, only to those who want them; a mail server that fails loses nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import text as sql

from segmently.db.engine import Database
from segmently.domain.alerts.jobs import kernel_jobs, run_duration_alerts, run_winner_detection
from segmently.domain.alerts.mails import Preferences, save_preferences
from segmently.kernel import Kernel
from segmently.mail import Mail, MailError
from tests.conftest import Inbox, free_port
from tests.core.accounts.test_auth import PASSWORD, bearer, signup
from tests.core.accounts.test_password_reset import confirm, reset_token
from tests.core.accounts.test_team import join, set_plan
from tests.core.alerts.test_jobs import populate
from tests.core.events.test_ingest import rows
from tests.core.experiments.test_public_api import live
from tests.core.test_outbox import _server, wait_for

pytestmark = pytest.mark.usefixtures("backend")
WINNER = {"control": (1000, 50), "variant_b": (1000, 120)}


def mailing_kernel(app: Litestar) -> Kernel:
    """The app's kernel, its jobs bound as on a node that runs the scheduler."""
    kernel: Kernel = app.state.kernel
    kernel_jobs(kernel)
    return kernel


async def user_id(database_url: str, email: str) -> str:
    return str((await rows(database_url, "SELECT id FROM users WHERE email = :e", e=email))[0][0])


async def choose(database_url: str, email: str, **choices: bool) -> None:
    db = Database(database_url)
    try:
        async with db.session() as s:
            await save_preferences(s, await user_id(database_url, email), Preferences(**choices))
    finally:
        await db.dispose()


async def all_sent(database_url: str) -> bool:
    left = await rows(database_url, "SELECT count(*) FROM outbox_mails WHERE status <> 'sent'")
    return int(left[0][0]) == 0


async def team(
    client: httpx.AsyncClient, inbox: Inbox, database_url: str
) -> tuple[dict[str, str], dict[str, Any]]:
    """ann owns an enterprise organization with bob (defaults), cy (results alerts off), dee
    (suspended) and eve (email notifications off); returns ann's headers and site."""
    ann = await signup(client, "ann")
    await set_plan(database_url, ann["organization"]["id"], "enterprise")
    h = bearer(ann["token"])
    for tag in ("bob", "cy", "dee", "eve"):
        await join(client, inbox, ann["token"], tag)
    await choose(database_url, "cy@example.com", experiment_results=False)
    await choose(database_url, "eve@example.com", email_enabled=False)
    listed = (await client.get("/api/v1/organization/members", headers=h)).json()
    dee = next(m for m in listed if m["email"] == "dee@example.com")
    r = await client.post(f"/api/v1/organization/members/{dee['id']}/suspend", headers=h)
    assert r.status_code == 204, r.text
    site = (
        await client.post(
            "/api/v1/projects", json={"name": "Shop", "url": "https://shop.example.com"}, headers=h
        )
    ).json()
    inbox.messages.clear()  # the invitations
    return h, site


async def test_a_winner_alert_mails_each_opted_in_active_member_once(
    app: Litestar, client: httpx.AsyncClient, database_url: str, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    kernel = mailing_kernel(app)
    h, site = await team(client, inbox, database_url)
    exp = await live(client, h, site, name="Hero test")
    await populate(client, site["api_key"], exp, WINNER)
    assert [await run_winner_detection(kernel) for _ in range(2)] == [1, 0]
    await wait_for(lambda: all_sent(database_url))
    await asyncio.sleep(0.5)  # a late duplicate would arrive by now
    assert sorted(m["To"] for m in inbox.messages) == ["ann@example.com", "bob@example.com"]
    (alert,) = (await client.get("/api/v1/alerts", headers=h)).json()["alerts"]
    mail = inbox.to("bob@example.com")[0]
    assert mail["Subject"] == "[ann org] Winner found: Hero test"
    body = Inbox.body(mail)
    assert alert["message"] in body and "+140.0%" in body
    assert f"{kernel.settings.base_url}/experiments/{exp['id']}" in body.splitlines()
    assert f"{kernel.settings.base_url}/settings/notifications" in body


async def test_a_duration_alert_mails_once_however_often_the_job_runs(
    app: Litestar, client: httpx.AsyncClient, database_url: str, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    kernel = mailing_kernel(app)
    h, site = await team(client, inbox, database_url)
    exp = await live(client, h, site, name="Slow test", advanced={"max_duration_days": 1})
    db = Database(database_url)
    try:
        async with db.session() as s:
            await s.execute(
                sql("UPDATE experiments SET activated_at = :t WHERE id = :e"),
                {"t": dt.datetime.now(dt.UTC) - dt.timedelta(days=2), "e": exp["id"]},
            )
    finally:
        await db.dispose()
    assert [await run_duration_alerts(kernel) for _ in range(3)] == [1, 0, 0]
    await wait_for(lambda: all_sent(database_url))
    await asyncio.sleep(0.5)
    assert sorted(m["To"] for m in inbox.messages) == ["ann@example.com", "bob@example.com"]
    mail = inbox.to("ann@example.com")[0]
    assert mail["Subject"] == "[ann org] Slow test ran past its maximum duration"
    assert "Slow test has run 1 days without a clear winner" in Inbox.body(mail)


class Flaky:
    """A mail server that is down until ``up`` is set, then delivers through ``mailer``."""

    def __init__(self, mailer: Any) -> None:
        self.mailer = mailer
        self.up = False
        self.tries = 0

    async def send(self, message: Mail) -> None:
        self.tries += 1
        if not self.up:
            raise MailError("could not send: connection refused")
        await self.mailer.send(message)


async def test_a_failing_mail_server_loses_neither_the_alert_nor_the_mail(
    app: Litestar,
    client: httpx.AsyncClient,
    database_url: str,
    smtp: tuple[Inbox, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    inbox, _ = smtp
    kernel: Kernel = app.state.kernel
    flaky = Flaky(kernel.mailer)
    kernel.outbox.mailer = flaky  # in place of the app's own mailer
    ann = await signup(client, "ann")
    await set_plan(database_url, ann["organization"]["id"], "enterprise")
    h = bearer(ann["token"])
    site = (
        await client.post(
            "/api/v1/projects", json={"name": "Shop", "url": "https://s.example.com"}, headers=h
        )
    ).json()
    exp = await live(client, h, site)
    await populate(client, site["api_key"], exp, WINNER)
    assert await run_winner_detection(kernel) == 1  # the job is not held up by the mail server

    async def tried() -> bool:
        return flaky.tries >= 1

    await wait_for(tried)
    assert (await client.get("/api/v1/alerts", headers=h)).json()["unread"] == 1  # the alert stays
    [(status, attempts, error)] = await rows(
        database_url, "SELECT status, attempts, last_error FROM outbox_mails"
    )
    assert (status, attempts) == ("pending", 1) and "connection refused" in error
    assert "not sent, attempt 1, retry in 2s" in caplog.text
    flaky.up = True
    await wait_for(lambda: all_sent(database_url))
    assert [m["To"] for m in inbox.messages] == ["ann@example.com"]


async def test_a_password_change_mails_the_person_only_with_security_alerts_on(
    app: Litestar, client: httpx.AsyncClient, database_url: str, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    mailing_kernel(app)
    ann = await signup(client, "ann")

    async def change(token: str, old: str, new: str) -> str:
        r = await client.post(
            "/api/v1/me/password",
            json={"current_password": old, "new_password": new},
            headers=bearer(token),
        )
        assert r.status_code == 200, r.text
        return str(r.json()["token"])

    refused = await client.post(
        "/api/v1/me/password",
        json={"current_password": "wrong one", "new_password": "a much longer one"},
        headers=bearer(ann["token"]),
    )
    assert refused.status_code == 400
    token = await change(ann["token"], PASSWORD, "a much longer one")
    await wait_for(lambda: all_sent(database_url))
    (mail,) = inbox.to("ann@example.com")
    assert mail["Subject"] == "Your Segmently password was changed"
    assert "If you did not change it, choose a new password now" in Inbox.body(mail)

    await choose(database_url, "ann@example.com", security_alerts=False)
    token = await change(token, "a much longer one", "another long one")
    await choose(database_url, "ann@example.com", email_enabled=False)
    token = await change(token, "another long one", "yet another one")
    await choose(database_url, "ann@example.com")  # every default again
    await change(token, "yet another one", "and a last one")
    await wait_for(lambda: all_sent(database_url))
    await asyncio.sleep(0.5)
    assert len(inbox.to("ann@example.com")) == 2  # the first and the last change only
    assert [r[0] for r in await rows(database_url, "SELECT count(*) FROM outbox_mails")] == [2]


async def test_a_password_reset_mails_the_security_alert_too(
    app: Litestar, client: httpx.AsyncClient, database_url: str, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    mailing_kernel(app)
    await signup(client, "bo")
    token = await reset_token(client, inbox, "bo@example.com")
    assert (await confirm(client, token)).status_code == 200
    await wait_for(lambda: all_sent(database_url))
    subjects = [m["Subject"] for m in inbox.to("bo@example.com")]
    assert subjects == ["Reset your Segmently password", "Your Segmently password was changed"]

    await choose(database_url, "bo@example.com", security_alerts=False)
    token = await reset_token(client, inbox, "bo@example.com", nth=3)
    assert (await confirm(client, token, "a third password")).status_code == 200
    await wait_for(lambda: all_sent(database_url))
    await asyncio.sleep(0.5)
    assert len(inbox.to("bo@example.com")) == 3  # the second reset link, no second security mail


@pytest.mark.postgresql_only
async def test_two_nodes_mail_each_member_once_per_alert(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    h, site = await team(client, inbox, database_url)
    exps = [await live(client, h, site, name=f"Test {i}") for i in range(2)]
    ports = [free_port(), free_port()]
    nodes = [
        _server(
            database_url,
            tmp_path,
            tmp_path / "delivered.jsonl",
            node_port,
            SEGMENTLY_JOB_INTERVAL_SECONDS="0.05",
            SEGMENTLY_SMTP_URL=f"smtp://127.0.0.1:{port}?starttls=false",
        )
        for node_port in ports
    ]
    try:
        async with httpx.AsyncClient() as probe:

            async def up() -> bool:
                try:
                    answers = [await probe.get(f"http://127.0.0.1:{p}/health") for p in ports]
                    return all(a.status_code == 200 for a in answers)
                except httpx.TransportError:
                    return False

            await wait_for(up, timeout=60)
        for i, exp in enumerate(exps):  # both crossing significance while both schedulers tick
            await populate(client, site["api_key"], exp, WINNER, tag=f"t{i}")

        async def mailed() -> bool:
            return len(inbox.messages) >= 4 and await all_sent(database_url)

        await wait_for(mailed, timeout=60)
        await asyncio.sleep(1.0)  # many more cycles on both nodes: nothing new may arrive
    finally:
        for node in nodes:
            node.send_signal(signal.SIGTERM)
        for node in nodes:
            node.wait(timeout=30)
    got = sorted((m["To"], m["Subject"]) for m in inbox.messages)
    assert got == sorted(
        (f"{who}@example.com", f"[ann org] Winner found: Test {i}")
        for who in ("ann", "bob")
        for i in range(2)
    )
