"""Outgoing mail: invitations and password resets, over SMTP or into the log.

Without ``SEGMENTLY_SMTP_URL`` the server uses :class:`LogMailer`, which writes each mail
(recipient, subject and the whole text, links included) to the ``segmently.mail`` logger
at INFO, so a self-hoster without a mail server can still copy an invitation link.

Sending never fails silently: a mail that cannot be delivered to the SMTP server raises
:class:`MailError` and the caller decides what to do (show the link, retry, report).
"""

from __future__ import annotations

import html
import logging
import math
import os
import re
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Literal, Protocol, runtime_checkable
from urllib.parse import parse_qsl, unquote, urlsplit

import aiosmtplib
import msgspec

from segmently.errors import ENV_PREFIX, SettingsError

__all__ = [
    "DEFAULT_MAIL_FROM",
    "DEFAULT_SMTP_TIMEOUT",
    "LogMailer",
    "Mail",
    "MailError",
    "MailSettings",
    "Mailer",
    "SmtpMailer",
    "SmtpServer",
    "invitation_mail",
    "mailer_from_settings",
    "password_reset_mail",
]

logger = logging.getLogger("segmently.mail")

DEFAULT_MAIL_FROM = "Segmently <no-reply@localhost>"
DEFAULT_SMTP_TIMEOUT = 10.0
_MAX_SMTP_TIMEOUT = 600.0
_URL_VAR = ENV_PREFIX + "SMTP_URL"
_FROM_VAR = ENV_PREFIX + "MAIL_FROM"
_TIMEOUT_VAR = ENV_PREFIX + "SMTP_TIMEOUT"
_URL_EXAMPLE = "smtp://user:pass@mail.example.com:587?starttls=true or smtps://user:pass@mail.example.com:465"
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
_LINK = re.compile(r"https?://\S+")

TlsMode = Literal["implicit", "starttls", "opportunistic", "none"]


class MailError(Exception):
    """A mail could not be handed to the mail server (or is malformed); the message says why."""


# ------------------------------------------------------------------ settings ---


class SmtpServer(msgspec.Struct, frozen=True, kw_only=True):
    """Where and how to hand mail over, parsed from ``SEGMENTLY_SMTP_URL``.

    Attributes:
        host: Mail server host name or IP address.
        port: TCP port (default 25 for ``smtp://``, 465 for ``smtps://``).
        username: Login, percent-decoded from the URL; ``None`` sends without AUTH.
        password: Password, percent-decoded from the URL (never shown by ``repr``).
        tls: ``implicit`` (``smtps://``), ``starttls`` (required, ``?starttls=true``),
            ``opportunistic`` (upgrade when the server offers it; the ``smtp://`` default)
            or ``none`` (``?starttls=false``).
        verify_certificate: Check the server's TLS certificate (``?verify=false`` turns it off).
    """

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: TlsMode = "opportunistic"
    verify_certificate: bool = True

    def __repr__(self) -> str:
        password = "***" if self.password is not None else None
        return (
            f"SmtpServer(host={self.host!r}, port={self.port!r}, username={self.username!r}, "
            f"password={password!r}, tls={self.tls!r}, verify_certificate={self.verify_certificate!r})"
        )

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        """Parse an ``smtp://`` or ``smtps://`` URL.

        Raises:
            SettingsError: The URL is unusable; the message names ``SEGMENTLY_SMTP_URL``
                and never repeats the password.
        """
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise SettingsError(f"{_URL_VAR} is malformed ({exc}); expected {_URL_EXAMPLE}") from None
        scheme = parts.scheme.lower()
        if scheme not in ("smtp", "smtps"):
            raise SettingsError(
                f"{_URL_VAR} uses {parts.scheme + '://' if parts.scheme else 'no scheme'}; "
                f"expected {_URL_EXAMPLE}"
            )
        if not parts.hostname:
            raise SettingsError(f"{_URL_VAR} names no host; expected {_URL_EXAMPLE}")
        if parts.path not in ("", "/") or parts.fragment:
            raise SettingsError(f"{_URL_VAR} must not have a path or #fragment; expected {_URL_EXAMPLE}")
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if username is None and password:
            raise SettingsError(f"{_URL_VAR} has a password but no user name")
        if username is not None and password is None:
            raise SettingsError(f"{_URL_VAR} has a user name but no password (smtp://user:password@host)")

        options: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            key = key.lower()
            if key not in ("starttls", "verify"):
                raise SettingsError(f"{_URL_VAR}: unknown option {key!r}; use starttls= and verify=")
            if key in options:
                raise SettingsError(f"{_URL_VAR}: option {key!r} is given twice")
            options[key] = value.strip().lower()

        tls: TlsMode = "implicit" if scheme == "smtps" else "opportunistic"
        if "starttls" in options:
            if scheme == "smtps":
                raise SettingsError(
                    f"{_URL_VAR}: smtps:// already uses TLS from the start; starttls= applies to smtp:// only"
                )
            tls = "starttls" if _flag(options["starttls"], "starttls") else "none"
        verify = _flag(options["verify"], "verify") if "verify" in options else True
        return cls(
            host=parts.hostname,
            port=port if port is not None else (465 if scheme == "smtps" else 25),
            username=username,
            password=password,
            tls=tls,
            verify_certificate=verify,
        )


def _flag(value: str, option: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{_URL_VAR}: {option}={value!r} is not true or false")


class MailSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How the server sends mail.

    Attributes:
        smtp: The SMTP server; ``None`` (no ``SEGMENTLY_SMTP_URL``) logs mail instead.
        mail_from: The ``From`` of every mail, ``Name <address>`` or a bare address.
        timeout: Seconds to wait for each SMTP step (connect, each command).
    """

    smtp: SmtpServer | None = None
    mail_from: str = DEFAULT_MAIL_FROM
    timeout: float = DEFAULT_SMTP_TIMEOUT

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MailSettings:
        """Read ``SEGMENTLY_SMTP_URL``, ``SEGMENTLY_MAIL_FROM`` and ``SEGMENTLY_SMTP_TIMEOUT``.

        Args:
            environ: The environment to read (default ``os.environ``).

        Raises:
            SettingsError: A value is malformed; the message names the variable.
        """
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(ENV_PREFIX + name)
            return value.strip() if value and value.strip() else None

        url = get("SMTP_URL")
        smtp = SmtpServer.from_url(url) if url else None

        mail_from = get("MAIL_FROM") or DEFAULT_MAIL_FROM
        if _single_address(mail_from) is None:
            raise SettingsError(
                f"{_FROM_VAR}={mail_from!r} is not one mail address "
                "(use 'Name <address@example.com>' or 'address@example.com')"
            )

        raw_timeout = get("SMTP_TIMEOUT")
        timeout = DEFAULT_SMTP_TIMEOUT
        if raw_timeout is not None:
            try:
                timeout = float(raw_timeout)
            except ValueError:
                raise SettingsError(f"{_TIMEOUT_VAR}={raw_timeout!r} is not a number of seconds") from None
            if not (math.isfinite(timeout) and 0 < timeout <= _MAX_SMTP_TIMEOUT):
                raise SettingsError(f"{_TIMEOUT_VAR} must be more than 0 and at most {_MAX_SMTP_TIMEOUT:g}")
        return cls(smtp=smtp, mail_from=mail_from, timeout=timeout)


# ------------------------------------------------------------------- mailers ---


class Mail(msgspec.Struct, frozen=True, kw_only=True):
    """One mail to one recipient.

    Attributes:
        to: The recipient, ``address@example.com`` or ``Name <address@example.com>``.
        subject: One line.
        text: The plain-text body; every mail has one.
        html: An optional HTML alternative of the same content.
    """

    to: str
    subject: str
    text: str
    html: str | None = None


@runtime_checkable
class Mailer(Protocol):
    """Something that sends mail."""

    async def send(self, message: Mail) -> None:
        """Send ``message``, or raise :class:`MailError` saying why it was not sent."""
        ...


class LogMailer:
    """Writes each mail to the ``segmently.mail`` log at INFO instead of sending it.

    The default when no SMTP server is configured. The log record holds the recipient,
    subject and whole plain-text body, so links can be copied from the server's log (they
    are also in the record's ``mail_links`` field, one clean URL each, in JSON logs). The
    last ``keep`` mails stay in memory (:attr:`sent`) for inspection.
    """

    def __init__(self, *, mail_from: str = DEFAULT_MAIL_FROM, keep: int = 50) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self.mail_from = mail_from
        self._sent: deque[Mail] = deque(maxlen=keep)

    @property
    def sent(self) -> list[Mail]:
        """The last mails "sent", oldest first."""
        return list(self._sent)

    async def send(self, message: Mail) -> None:
        """Log ``message`` (after the same checks an SMTP send makes) and remember it.

        Raises:
            MailError: The mail is malformed (bad recipient, line break in the subject).
        """
        _build_email(message, self.mail_from)
        self._sent.append(message)
        logger.info(
            "mail not sent (no SEGMENTLY_SMTP_URL configured), logged instead\nTo: %s\nSubject: %s\n\n%s",
            message.to,
            message.subject,
            message.text,
            extra={
                "mail_to": message.to,
                "mail_subject": message.subject,
                "mail_links": _LINK.findall(message.text),
            },
        )


class SmtpMailer:
    """Sends each mail over a new connection to an SMTP server, with aiosmtplib."""

    def __init__(
        self, server: SmtpServer, *, mail_from: str = DEFAULT_MAIL_FROM, timeout: float = DEFAULT_SMTP_TIMEOUT
    ) -> None:
        self.server = server
        self.mail_from = mail_from
        self.timeout = timeout

    async def send(self, message: Mail) -> None:
        """Hand ``message`` to the SMTP server.

        Raises:
            MailError: The mail is malformed, or the server is unreachable, too slow,
                refuses the login, the sender or the recipient.
        """
        mime = _build_email(message, self.mail_from)
        server = self.server
        where = f"{server.host}:{server.port}"
        try:
            refused, _ = await aiosmtplib.send(
                mime,
                hostname=server.host,
                port=server.port,
                username=server.username,
                password=server.password,
                use_tls=server.tls == "implicit",
                start_tls={"starttls": True, "none": False}.get(server.tls),
                validate_certs=server.verify_certificate,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise MailError(
                f"could not send {message.subject!r} to {message.to}: {where} refused the login "
                f"of {server.username!r} ({_describe(exc)})"
            ) from exc
        except aiosmtplib.SMTPTimeoutError as exc:
            raise MailError(
                f"could not send {message.subject!r} to {message.to}: {where} did not answer "
                f"within {self.timeout:g} s ({_describe(exc)})"
            ) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise MailError(
                f"could not send {message.subject!r} to {message.to} via {where}: {_describe(exc)}"
            ) from exc
        if refused:
            reasons = "; ".join(f"{rcpt}: {resp.code} {resp.message}" for rcpt, resp in refused.items())
            raise MailError(f"could not send {message.subject!r}: {where} refused {reasons}")
        logger.info("mail sent", extra={"mail_to": message.to, "mail_subject": message.subject})


def mailer_from_settings(settings: MailSettings) -> Mailer:
    """The :class:`SmtpMailer` for ``settings.smtp``, or a :class:`LogMailer` when there is none."""
    if settings.smtp is None:
        return LogMailer(mail_from=settings.mail_from)
    return SmtpMailer(settings.smtp, mail_from=settings.mail_from, timeout=settings.timeout)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _single_address(value: str) -> Address | None:
    """The one address in a ``To``/``From`` value, or ``None`` if it is not exactly one valid address."""
    probe = EmailMessage()
    try:
        probe["To"] = value
        header = probe["To"]
        addresses = header.addresses
    except (ValueError, IndexError, TypeError):
        return None
    if header.defects or len(addresses) != 1:
        return None
    address: Address = addresses[0]
    if not address.username or not address.domain:
        return None
    return address


def _build_email(message: Mail, mail_from: str) -> EmailMessage:
    """A MIME mail for ``message``: text/plain, or multipart/alternative with the HTML part."""
    recipient = _single_address(message.to)
    if recipient is None:
        raise MailError(f"cannot send a mail to {message.to!r}: not one valid mail address")
    sender = _single_address(mail_from)
    if sender is None:
        raise MailError(f"cannot send mail from {mail_from!r}: not one valid mail address")
    mime = EmailMessage()
    try:
        mime["From"] = mail_from
        mime["To"] = message.to
        mime["Subject"] = message.subject
    except ValueError as exc:  # a line break in a header: refuse rather than let it be injected
        raise MailError(f"cannot send a mail with subject {message.subject!r}: {exc}") from None
    mime["Date"] = formatdate(usegmt=True)
    mime["Message-ID"] = make_msgid(domain=sender.domain)
    mime.set_content(message.text)
    if message.html is not None:
        mime.add_alternative(message.html, subtype="html")
    return mime


# ------------------------------------------------------------------ messages ---

_ROLE_LABELS = {"owner": "Owner", "admin": "Admin", "member": "Member"}


def invitation_mail(
    to: str,
    organization_name: str,
    inviter_name: str,
    role: str,
    accept_url: str,
    expires_at: datetime,
) -> Mail:
    """The invitation to join an organization.

    Args:
        to: The invited address.
        organization_name: Shown in the subject and the body.
        inviter_name: Who invited; may be empty.
        role: ``owner``, ``admin`` or ``member`` (other values are shown as given).
        accept_url: The absolute http(s) link carrying the invitation token.
        expires_at: When the link stops working; a naive datetime is taken as UTC.

    Raises:
        ValueError: ``accept_url`` is not an absolute http(s) URL.
    """
    _check_link(accept_url)
    organization = _one_line(organization_name) or "an organization"
    inviter = _one_line(inviter_name)
    role_label = _ROLE_LABELS.get(role.strip().lower(), _one_line(role))
    expires = _format_time(expires_at)
    who = inviter or "Someone"
    subject = (
        f"{inviter} invited you to join {organization} on Segmently"
        if inviter
        else f"You are invited to join {organization} on Segmently"
    )
    text = (
        f"Hello,\n\n"
        f'{who} invited you to join the organization "{organization}" on Segmently '
        f"with the {role_label} role.\n\n"
        f"Accept the invitation:\n{accept_url}\n\n"
        f"This link expires on {expires}.\n\n"
        f"If you were not expecting this invitation, you can ignore this mail.\n"
    )
    e = html.escape
    body = (
        f"<p>Hello,</p>\n"
        f"<p>{e(who)} invited you to join the organization <strong>{e(organization)}</strong> "
        f"on Segmently with the <strong>{e(role_label)}</strong> role.</p>\n"
        f'<p><a href="{e(accept_url)}">Accept the invitation</a></p>\n'
        f"<p>Or copy this link into your browser:<br>{e(accept_url)}</p>\n"
        f"<p>This link expires on {e(expires)}.</p>\n"
        f"<p>If you were not expecting this invitation, you can ignore this mail.</p>\n"
    )
    return Mail(to=to, subject=subject, text=text, html=_html_document(subject, body))


def password_reset_mail(to: str, reset_url: str, expires_minutes: int) -> Mail:
    """The link to choose a new password.

    Args:
        to: The account's address.
        reset_url: The absolute http(s) link carrying the reset token.
        expires_minutes: How long the link works, in minutes (at least 1).

    Raises:
        ValueError: ``reset_url`` is not an absolute http(s) URL, or ``expires_minutes`` < 1.
    """
    _check_link(reset_url)
    if expires_minutes < 1:
        raise ValueError("expires_minutes must be at least 1")
    validity = _format_minutes(expires_minutes)
    subject = "Reset your Segmently password"
    text = (
        f"Hello,\n\n"
        f"Someone asked to reset the password of the Segmently account for {_one_line(to)}.\n\n"
        f"Choose a new password:\n{reset_url}\n\n"
        f"This link expires in {validity}.\n\n"
        f"If you did not ask for this, ignore this mail: your password stays unchanged.\n"
    )
    e = html.escape
    body = (
        f"<p>Hello,</p>\n"
        f"<p>Someone asked to reset the password of the Segmently account for {e(_one_line(to))}.</p>\n"
        f'<p><a href="{e(reset_url)}">Choose a new password</a></p>\n'
        f"<p>Or copy this link into your browser:<br>{e(reset_url)}</p>\n"
        f"<p>This link expires in {e(validity)}.</p>\n"
        f"<p>If you did not ask for this, ignore this mail: your password stays unchanged.</p>\n"
    )
    return Mail(to=to, subject=subject, text=text, html=_html_document(subject, body))


def _check_link(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        raise ValueError(f"{url!r} is not an absolute http(s) URL")


def _one_line(value: str) -> str:
    """``value`` with every run of whitespace (line breaks included) turned into one space."""
    return " ".join(value.split())


def _format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _format_minutes(minutes: int) -> str:
    if minutes % 60 == 0:
        hours = minutes // 60
        return "1 hour" if hours == 1 else f"{hours} hours"
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def _html_document(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>\n"
        f'<body style="font-family: sans-serif; line-height: 1.5">\n{body}</body></html>\n'
    )
