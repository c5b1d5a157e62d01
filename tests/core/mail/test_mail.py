"""The mailer against a real SMTP server on loopback (aiosmtpd), the log mailer, and mail settings."""

from __future__ import annotations

import asyncio
import email
import logging
import re
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from segmently.mail import (
    DEFAULT_MAIL_FROM,
    LogMailer,
    Mail,
    Mailer,
    MailError,
    MailSettings,
    SmtpMailer,
    SmtpServer,
    invitation_mail,
    mailer_from_settings,
    password_reset_mail,
)
from segmently.settings import SettingsError

EXPIRES = datetime(2030, 1, 8, 14, 30, tzinfo=UTC)
ACCEPT_URL = "https://segmently.example.com/invitations/accept?token=Zm9vYmFyYmF6cXV4cXV1eA_tok-32bytes"
RESET_URL = "https://segmently.example.com/password/reset?token=cmVzZXQtdG9rZW4"


# ------------------------------------------------------------------ fixtures ---


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: bytes | None


@dataclass
class Collector:
    """An aiosmtpd handler keeping every mail it accepts."""

    received: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=default_policy)
        assert isinstance(message, EmailMessage)
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), message, login))
        return "250 Message accepted for delivery"


@dataclass
class SmtpServerUnderTest:
    port: int
    collector: Collector


def run_server(**smtp_options: Any) -> Iterator[SmtpServerUnderTest]:
    collector = Collector()
    port = free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port, **smtp_options)
    controller.start()
    try:
        yield SmtpServerUnderTest(port, collector)
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServerUnderTest]:
    """A plain SMTP server without AUTH or STARTTLS."""
    yield from run_server()


USERS = {"mailer@example.com": "s3cret p@ss/word"}


def authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    if not isinstance(auth_data, LoginPassword):
        return AuthResult(success=False, handled=False)
    ok = USERS.get(auth_data.login.decode()) == auth_data.password.decode()
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


@pytest.fixture
def auth_smtp_server() -> Iterator[SmtpServerUnderTest]:
    """An SMTP server that requires AUTH, allowed without TLS (loopback only).

    aiosmtpd warns (UserWarning) about AUTH without TLS when it builds the server; tests
    using this fixture silence exactly that warning with ``AUTH_WITHOUT_TLS``.
    """
    yield from run_server(authenticator=authenticate, auth_required=True, auth_require_tls=False)


# aiosmtpd's warning about requiring AUTH on a server without TLS: deliberate here (loopback test server)
AUTH_WITHOUT_TLS = pytest.mark.filterwarnings(
    "ignore:Requiring AUTH while not requiring TLS can lead to security vulnerabilities:UserWarning"
)


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never says a word."""
    writers: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    try:
        yield port
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


def smtp_mailer(port: int, url_tail: str = "", **settings: str) -> Mailer:
    env = {"SEGMENTLY_SMTP_URL": f"smtp://127.0.0.1:{port}{url_tail}", **settings}
    mailer = mailer_from_settings(MailSettings.from_env(env))
    assert isinstance(mailer, SmtpMailer)
    return mailer


# ------------------------------------------------------------------ over SMTP ---


async def test_invitation_mail_is_delivered(smtp_server: SmtpServerUnderTest) -> None:
    mailer = smtp_mailer(smtp_server.port, SEGMENTLY_MAIL_FROM="Acme Segmently <segmently@acme.test>")
    mail = invitation_mail(
        "bob@example.org", "Café Growth Team", "Alice Martin", "admin", ACCEPT_URL, EXPIRES
    )

    await mailer.send(mail)

    [got] = smtp_server.collector.received
    assert got.rcpt_tos == ["bob@example.org"]
    assert got.mail_from == "segmently@acme.test"
    msg = got.message
    assert msg["To"] == "bob@example.org"
    assert msg["From"] == "Acme Segmently <segmently@acme.test>"
    assert msg["Subject"] == "Alice Martin invited you to join Café Growth Team on Segmently"
    assert msg["Message-ID"].endswith("@acme.test>")
    assert msg["Date"]
    assert msg.get_content_type() == "multipart/alternative"
    text_part = msg.get_body(preferencelist=("plain",))
    html_part = msg.get_body(preferencelist=("html",))
    assert text_part is not None and html_part is not None
    text = text_part.get_content()
    assert ACCEPT_URL in text
    assert "2030-01-08 14:30 UTC" in text
    assert '"Café Growth Team"' in text
    assert "Admin role" in text
    assert "Alice Martin" in text
    html = html_part.get_content()
    assert f'href="{ACCEPT_URL}"' in html
    assert "2030-01-08 14:30 UTC" in html


async def test_password_reset_mail_is_delivered(smtp_server: SmtpServerUnderTest) -> None:
    mailer = smtp_mailer(smtp_server.port)

    await mailer.send(password_reset_mail("carol@example.org", RESET_URL, 30))

    [got] = smtp_server.collector.received
    assert got.rcpt_tos == ["carol@example.org"]
    assert got.mail_from == "no-reply@localhost"
    assert got.message["Subject"] == "Reset your Segmently password"
    body = got.message.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert RESET_URL in text
    assert "expires in 30 minutes" in text


async def test_text_only_mail_is_a_single_plain_part(smtp_server: SmtpServerUnderTest) -> None:
    await smtp_mailer(smtp_server.port).send(Mail(to="Dave <dave@example.org>", subject="Hi", text="Hello\n"))

    [got] = smtp_server.collector.received
    assert got.rcpt_tos == ["dave@example.org"]
    assert got.message.get_content_type() == "text/plain"
    assert got.message.get_content().splitlines() == ["Hello"]


@AUTH_WITHOUT_TLS
async def test_smtp_url_credentials_authenticate(auth_smtp_server: SmtpServerUnderTest) -> None:
    # user and password are percent-encoded in the URL
    mailer = smtp_mailer(
        auth_smtp_server.port,
        "",
        SEGMENTLY_SMTP_URL=(
            f"smtp://mailer%40example.com:s3cret%20p%40ss%2Fword@127.0.0.1:{auth_smtp_server.port}"
        ),
    )

    await mailer.send(password_reset_mail("erin@example.org", RESET_URL, 60))

    [got] = auth_smtp_server.collector.received
    assert got.login == b"mailer@example.com"
    assert got.rcpt_tos == ["erin@example.org"]


@AUTH_WITHOUT_TLS
async def test_wrong_password_raises_mail_error(auth_smtp_server: SmtpServerUnderTest) -> None:
    mailer = smtp_mailer(
        auth_smtp_server.port,
        SEGMENTLY_SMTP_URL=(f"smtp://mailer%40example.com:wrong@127.0.0.1:{auth_smtp_server.port}"),
    )

    with pytest.raises(MailError, match=re.escape("refused the login of 'mailer@example.com'")):
        await mailer.send(password_reset_mail("erin@example.org", RESET_URL, 60))
    assert auth_smtp_server.collector.received == []


@AUTH_WITHOUT_TLS
async def test_missing_credentials_raise_mail_error(auth_smtp_server: SmtpServerUnderTest) -> None:
    with pytest.raises(MailError, match="could not send"):
        await smtp_mailer(auth_smtp_server.port).send(password_reset_mail("erin@example.org", RESET_URL, 60))
    assert auth_smtp_server.collector.received == []


async def test_unreachable_server_raises_mail_error() -> None:
    port = free_port()  # nothing listens there
    mailer = smtp_mailer(port)

    with pytest.raises(
        MailError,
        match=rf"could not send 'Reset your Segmently password' to x@example.org via 127.0.0.1:{port}",
    ):
        await mailer.send(password_reset_mail("x@example.org", RESET_URL, 30))


async def test_silent_server_times_out_with_mail_error(silent_server: int) -> None:
    mailer = smtp_mailer(silent_server, SEGMENTLY_SMTP_TIMEOUT="0.3")

    with pytest.raises(MailError, match=r"did not answer within 0.3 s"):
        await mailer.send(password_reset_mail("x@example.org", RESET_URL, 30))


async def test_required_starttls_is_not_skipped(smtp_server: SmtpServerUnderTest) -> None:
    mailer = smtp_mailer(smtp_server.port, "?starttls=true")

    with pytest.raises(MailError, match="STARTTLS"):
        await mailer.send(password_reset_mail("x@example.org", RESET_URL, 30))
    assert smtp_server.collector.received == []


async def test_implicit_tls_against_a_plain_server_fails(smtp_server: SmtpServerUnderTest) -> None:
    mailer = mailer_from_settings(
        MailSettings.from_env({"SEGMENTLY_SMTP_URL": f"smtps://127.0.0.1:{smtp_server.port}"})
    )
    with pytest.raises(MailError, match=f"127.0.0.1:{smtp_server.port}"):
        await mailer.send(password_reset_mail("x@example.org", RESET_URL, 30))


@pytest.mark.parametrize(
    ("to", "subject"),
    [
        ("not an address", "Hello"),
        ("a@example.org, b@example.org", "Hello"),
        ("a@example.org", "Hello\r\nBcc: victim@example.org"),
    ],
)
async def test_malformed_mail_raises_before_connecting(to: str, subject: str) -> None:
    mailer = smtp_mailer(free_port())  # would raise "could not send" if it tried to connect
    with pytest.raises(MailError, match="cannot send"):
        await mailer.send(Mail(to=to, subject=subject, text="x"))


# --------------------------------------------------------------- log mailer ---


async def test_log_mailer_logs_the_link(caplog: pytest.LogCaptureFixture) -> None:
    mailer = mailer_from_settings(MailSettings.from_env({}))
    assert isinstance(mailer, LogMailer)
    mail = invitation_mail("bob@example.org", "Growth", "Alice", "member", ACCEPT_URL, EXPIRES)

    with caplog.at_level(logging.INFO, logger="segmently.mail"):
        await mailer.send(mail)

    [record] = [r for r in caplog.records if r.name == "segmently.mail"]
    assert record.levelno == logging.INFO
    logged = record.getMessage()
    assert ACCEPT_URL in logged
    assert "bob@example.org" in logged
    assert mail.subject in logged
    assert "2030-01-08 14:30 UTC" in logged
    assert record.mail_to == "bob@example.org"  # type: ignore[attr-defined]
    assert record.mail_links == [ACCEPT_URL]  # type: ignore[attr-defined]
    assert mailer.sent == [mail]


async def test_log_mailer_keeps_the_last_mails() -> None:
    mailer = LogMailer(keep=2)
    mails = [Mail(to=f"u{i}@example.org", subject=f"#{i}", text="x") for i in range(3)]
    for mail in mails:
        await mailer.send(mail)
    assert mailer.sent == mails[1:]


async def test_log_mailer_rejects_what_smtp_would_reject() -> None:
    mailer = LogMailer()
    with pytest.raises(MailError, match="not one valid mail address"):
        await mailer.send(Mail(to="nobody", subject="x", text="x"))
    assert mailer.sent == []


def test_mailers_satisfy_the_protocol() -> None:
    assert isinstance(LogMailer(), Mailer)
    assert isinstance(SmtpMailer(SmtpServer(host="localhost", port=25)), Mailer)


# ------------------------------------------------------------------ messages ---


def test_invitation_names_organization_role_link_and_expiry() -> None:
    mail = invitation_mail(
        "bob@example.org",
        "Acme\r\nBcc: x@evil.test",
        "",
        "owner",
        ACCEPT_URL,
        datetime(2030, 1, 8, 16, 30, tzinfo=timezone(timedelta(hours=2))),
    )
    assert mail.to == "bob@example.org"
    assert mail.subject == "You are invited to join Acme Bcc: x@evil.test on Segmently"
    assert "Owner role" in mail.text
    assert ACCEPT_URL in mail.text
    assert "2030-01-08 14:30 UTC" in mail.text  # converted to UTC
    assert mail.html is not None


def test_invitation_escapes_html_and_treats_naive_time_as_utc() -> None:
    mail = invitation_mail(
        "b@example.org", "<script>x</script>", "Al & Co", "member", ACCEPT_URL, datetime(2030, 1, 8, 14, 30)
    )
    assert mail.html is not None
    assert "<script>" not in mail.html
    assert "&lt;script&gt;" in mail.html
    assert "Al &amp; Co" in mail.html
    assert "2030-01-08 14:30 UTC" in mail.text


@pytest.mark.parametrize("url", ["javascript:alert(1)", "/relative/path", "https://x.test/a b"])
def test_builders_refuse_links_that_are_not_absolute_http(url: str) -> None:
    with pytest.raises(ValueError, match="not an absolute http"):
        invitation_mail("b@example.org", "Org", "Al", "member", url, EXPIRES)
    with pytest.raises(ValueError, match="not an absolute http"):
        password_reset_mail("b@example.org", url, 30)


@pytest.mark.parametrize(
    ("minutes", "shown"),
    [(1, "1 minute"), (30, "30 minutes"), (60, "1 hour"), (120, "2 hours"), (90, "90 minutes")],
)
def test_reset_expiry_wording(minutes: int, shown: str) -> None:
    assert f"expires in {shown}." in password_reset_mail("b@example.org", RESET_URL, minutes).text


def test_reset_expiry_must_be_positive() -> None:
    with pytest.raises(ValueError, match="expires_minutes"):
        password_reset_mail("b@example.org", RESET_URL, 0)


# ------------------------------------------------------------------ settings ---


def test_defaults_without_environment() -> None:
    settings = MailSettings.from_env({})
    assert settings == MailSettings(smtp=None, mail_from=DEFAULT_MAIL_FROM, timeout=10.0)
    assert DEFAULT_MAIL_FROM == "Segmently <no-reply@localhost>"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "smtp://user:pass@mail.example.com:587?starttls=true",
            SmtpServer(host="mail.example.com", port=587, username="user", password="pass", tls="starttls"),
        ),
        (
            "smtps://u%40x.com:p%3Aw@mail.example.com:465",
            SmtpServer(host="mail.example.com", port=465, username="u@x.com", password="p:w", tls="implicit"),
        ),
        ("smtps://mail.example.com", SmtpServer(host="mail.example.com", port=465, tls="implicit")),
        ("smtp://relay.internal", SmtpServer(host="relay.internal", port=25, tls="opportunistic")),
        ("SMTP://relay.internal:2525/?starttls=no", SmtpServer(host="relay.internal", port=2525, tls="none")),
        (
            "smtp://relay.internal:587?starttls=TRUE&verify=false",
            SmtpServer(host="relay.internal", port=587, tls="starttls", verify_certificate=False),
        ),
    ],
)
def test_smtp_url_parsing(url: str, expected: SmtpServer) -> None:
    assert MailSettings.from_env({"SEGMENTLY_SMTP_URL": url}).smtp == expected


def test_password_is_not_in_repr() -> None:
    settings = MailSettings.from_env({"SEGMENTLY_SMTP_URL": "smtp://user:hunter22@mail.example.com"})
    assert "hunter22" not in repr(settings)
    assert "hunter22" not in repr(settings.smtp)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SEGMENTLY_SMTP_URL": "http://mail.example.com"}, "SEGMENTLY_SMTP_URL uses http://"),
        ({"SEGMENTLY_SMTP_URL": "mail.example.com:587"}, "SEGMENTLY_SMTP_URL"),
        ({"SEGMENTLY_SMTP_URL": "smtp://"}, "SEGMENTLY_SMTP_URL names no host"),
        ({"SEGMENTLY_SMTP_URL": "smtp://mail.example.com:99999"}, "SEGMENTLY_SMTP_URL is malformed"),
        ({"SEGMENTLY_SMTP_URL": "smtp://mail.example.com:abc"}, "SEGMENTLY_SMTP_URL is malformed"),
        ({"SEGMENTLY_SMTP_URL": "smtp://mail.example.com/x"}, "SEGMENTLY_SMTP_URL must not have a path"),
        ({"SEGMENTLY_SMTP_URL": "smtp://user@mail.example.com"}, "SEGMENTLY_SMTP_URL has a user name but no"),
        ({"SEGMENTLY_SMTP_URL": "smtp://:pw@mail.example.com"}, "SEGMENTLY_SMTP_URL has a password but no"),
        ({"SEGMENTLY_SMTP_URL": "smtp://h?starttls=maybe"}, "SEGMENTLY_SMTP_URL: starttls='maybe'"),
        ({"SEGMENTLY_SMTP_URL": "smtp://h?tls=1"}, "SEGMENTLY_SMTP_URL: unknown option 'tls'"),
        (
            {"SEGMENTLY_SMTP_URL": "smtp://h?verify=1&verify=0"},
            "SEGMENTLY_SMTP_URL: option 'verify' is given",
        ),
        ({"SEGMENTLY_SMTP_URL": "smtps://h?starttls=true"}, "SEGMENTLY_SMTP_URL: smtps:// already uses TLS"),
        ({"SEGMENTLY_MAIL_FROM": "Segmently"}, "SEGMENTLY_MAIL_FROM='Segmently' is not one mail address"),
        ({"SEGMENTLY_MAIL_FROM": "a@x.org, b@x.org"}, "SEGMENTLY_MAIL_FROM"),
        ({"SEGMENTLY_SMTP_TIMEOUT": "soon"}, "SEGMENTLY_SMTP_TIMEOUT='soon' is not a number"),
        ({"SEGMENTLY_SMTP_TIMEOUT": "0"}, "SEGMENTLY_SMTP_TIMEOUT must be more than 0"),
        ({"SEGMENTLY_SMTP_TIMEOUT": "nan"}, "SEGMENTLY_SMTP_TIMEOUT must be more than 0"),
        ({"SEGMENTLY_SMTP_TIMEOUT": "601"}, "SEGMENTLY_SMTP_TIMEOUT must be more than 0 and at most 600"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("?", r"\?").replace("(", r"\(")) as info:
        MailSettings.from_env(env)
    assert "secret" not in str(info.value)


def test_settings_error_never_shows_the_password() -> None:
    with pytest.raises(SettingsError) as info:
        MailSettings.from_env({"SEGMENTLY_SMTP_URL": "smtp://user:secretpw@mail.example.com:bad"})
    assert "secretpw" not in str(info.value)


def test_blank_values_mean_defaults() -> None:
    env = {"SEGMENTLY_SMTP_URL": "  ", "SEGMENTLY_MAIL_FROM": "", "SEGMENTLY_SMTP_TIMEOUT": " "}
    assert MailSettings.from_env(env) == MailSettings()


def test_timeout_and_from_are_passed_to_the_smtp_mailer() -> None:
    mailer = mailer_from_settings(
        MailSettings.from_env(
            {
                "SEGMENTLY_SMTP_URL": "smtp://relay.internal",
                "SEGMENTLY_MAIL_FROM": "ops@acme.test",
                "SEGMENTLY_SMTP_TIMEOUT": "2.5",
            }
        )
    )
    assert isinstance(mailer, SmtpMailer)
    assert (mailer.mail_from, mailer.timeout, mailer.server.host) == ("ops@acme.test", 2.5, "relay.internal")
