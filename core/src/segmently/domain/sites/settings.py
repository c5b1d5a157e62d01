"""``/api/v1/projects/{project_id}/settings``: per-site settings.

Plugins switched on per site (every installed plugin is on until switched off), the
cross-domain list, conversion rules (the spec's four detection methods, one condition or a
multi-step sequence, JSON property paths) and the snippet's activation defaults.

A site without a stored row has the defaults at version 1; every ``PUT`` replaces the whole
document and bumps the version (a stale ``If-Match`` gets 412 with the current version).
Members read the settings and use the rule tester; admins change them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import msgspec
from litestar import Controller, Response, get, post, put
from litestar.params import FromPath, JSONBody
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from segmently.db.base import new_id, utcnow
from segmently.db.models import SiteSettings
from segmently.domain.sdk.config import bump
from segmently.domain.sites.hostnames import bare_hostname
from segmently.domain.sites.services import get_site
from segmently.domain.sites.settings_schemas import (
    ConversionRuleIn,
    ConversionRuleOut,
    ConversionStep,
    RuleTestIn,
    RuleTestOut,
    SiteSettingsIn,
    SiteSettingsOut,
    StoredSettings,
)
from segmently.http.access import ADMIN
from segmently.http.deps import CurrentActor, DbSession, IfMatch, KernelState
from segmently.http.errors import field_errors
from segmently.http.idempotency import (
    VERSION_HANDLERS,
    PreconditionFailed,
    check_if_match,
    etag,
)
from segmently.kernel import Kernel

DEFAULT_VERSION = 1
"""The version of a site's settings before the first ``PUT``."""
WHAT = "This site's settings"
TESTABLE_METHODS = ("page_url", "url_param")
_PARAM_FORBIDDEN = frozenset("?&=#")
_COOKIE_FORBIDDEN = frozenset(";,=")


# ------------------------------------------------------------------ pure rules ---


def _path(path: str) -> str:
    """A path compared as the visitor sees it: percent-decoding and a trailing slash don't count."""
    decoded = unquote(path) or "/"
    return decoded.rstrip("/") or "/"


def would_fire(rule_step: ConversionStep, url: str) -> bool:
    """Whether a ``page_url`` or ``url_param`` step fires on ``url`` (the dashboard's tester).

    ``page_url`` fires when the URL's path is the step's path (query and fragment ignored,
    a trailing slash and percent-encoding too; case counts). ``url_param`` fires when the
    query string has the parameter, with any value or none. ``url`` may be absolute or a
    relative path; a URL that cannot be parsed fires nothing.

    Raises:
        ValueError: The step is a ``local_storage`` or ``cookie`` step, which no URL decides.
    """
    if rule_step.method not in TESTABLE_METHODS:
        raise ValueError(f"a {rule_step.method} step cannot be tested against a URL")
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    if rule_step.method == "page_url":
        return _path(parts.path) == _path(rule_step.value)
    return any(name == rule_step.value for name, _ in parse_qsl(parts.query, keep_blank_values=True))


def step_errors(step: ConversionStep, field: str) -> list[tuple[str, str]]:
    """What is wrong with one detection condition, each error naming its field under ``field``."""
    errors: list[tuple[str, str]] = []
    value = step.value
    if any(c.isspace() for c in value) and step.method != "local_storage":
        errors.append((f"{field}.value", "must not contain spaces"))
    elif step.method == "page_url":
        if not value.startswith("/") or value.startswith("//"):
            errors.append(
                (f"{field}.value", "must be a relative path starting with / (e.g. /checkout/success)")
            )
        elif "?" in value or "#" in value:
            errors.append(
                (f"{field}.value", "must be a path only; use a url_param step for query parameters")
            )
    elif step.method == "url_param":
        if _PARAM_FORBIDDEN & set(value):
            errors.append((f"{field}.value", "must be a parameter name only (e.g. payment_intent)"))
    elif step.method == "cookie":
        if _COOKIE_FORBIDDEN & set(value):
            errors.append((f"{field}.value", "must be a cookie name (no ;, = or commas)"))
    elif not value.strip():
        errors.append((f"{field}.value", "must not be blank"))
    if step.parse_json and step.method in TESTABLE_METHODS:
        errors.append((f"{field}.parse_json", "only localStorage and cookie values can be parsed as JSON"))
    if step.property_path and not step.parse_json:
        errors.append((f"{field}.property_path", "needs parse_json: true"))
    return errors


def validate_settings(data: SiteSettingsIn, installed: Iterable[str]) -> StoredSettings:
    """The document to store for ``data``; a 400 naming every bad field otherwise.

    Rules without an id get one; hostnames are lowercased and deduplicated; an empty
    ``property_path`` means none.
    """
    known = set(installed)
    errors: list[tuple[str, str]] = []
    for name in data.plugins:
        if name not in known:
            errors.append(
                (f"plugins.{name}", f"no plugin named {name!r} is installed ({', '.join(sorted(known))})")
            )
    hosts: list[str] = []
    for i, raw in enumerate(data.cross_domain):
        host = bare_hostname(raw)
        if host is None:
            errors.append((f"cross_domain[{i}]", f"{raw!r} is not a hostname (e.g. checkout.example.com)"))
        elif host not in hosts:
            hosts.append(host)
    rules: list[ConversionRuleOut] = []
    ids: set[str] = set()
    names: set[str] = set()
    for i, rule in enumerate(data.conversion_rules):
        errors.extend(_rule_errors(rule, f"conversion_rules[{i}]", ids, names))
        rules.append(_rule_out(rule))
    if data.anti_flicker_timeout_ms < data.activation_delay_ms:
        errors.append(
            (
                "anti_flicker_timeout_ms",
                "must be at least activation_delay_ms, or the page shows before changes",
            )
        )
    if errors:
        raise field_errors(errors, detail="; ".join(f"{f}: {m}" for f, m in errors))
    return StoredSettings(
        plugins=dict(data.plugins),
        cross_domain=hosts,
        conversion_rules=rules,
        activation_delay_ms=data.activation_delay_ms,
        anti_flicker_timeout_ms=data.anti_flicker_timeout_ms,
    )


def _rule_errors(rule: ConversionRuleIn, field: str, ids: set[str], names: set[str]) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    if rule.id is not None:
        if rule.id in ids:
            errors.append((f"{field}.id", f"{rule.id!r} is used by another rule"))
        ids.add(rule.id)
    name = rule.name.strip().casefold()
    if name in names:
        errors.append((f"{field}.name", f"another rule is named {rule.name.strip()!r}"))
    names.add(name)
    for j, step in enumerate(rule.steps):
        errors.extend(step_errors(step, f"{field}.steps[{j}]"))
    return errors


def _rule_out(rule: ConversionRuleIn) -> ConversionRuleOut:
    steps = [msgspec.structs.replace(step, property_path=step.property_path or None) for step in rule.steps]
    return ConversionRuleOut(
        id=rule.id or new_id(), name=rule.name.strip(), event_type=rule.event_type, steps=steps
    )


# -------------------------------------------------------------------- services ---


def installed_plugins(kernel: Kernel) -> list[str]:
    """Names of the plugins installed on this server (whether enabled or not)."""
    return sorted({info.name for info in kernel.plugins.infos})


async def _row(session: AsyncSession, site_id: str) -> SiteSettings | None:
    return await session.scalar(select(SiteSettings).where(SiteSettings.site_id == site_id))


def _stored(row: SiteSettings | None) -> StoredSettings:
    return msgspec.convert(row.settings, StoredSettings) if row is not None else StoredSettings()


def settings_out(stored: StoredSettings, version: int, installed: Iterable[str]) -> SiteSettingsOut:
    """The API view: every installed plugin with its switch (on unless switched off)."""
    return SiteSettingsOut(
        version=version,
        plugins={name: stored.plugins.get(name, True) for name in sorted(installed)},
        cross_domain=list(stored.cross_domain),
        conversion_rules=list(stored.conversion_rules),
        activation_delay_ms=stored.activation_delay_ms,
        anti_flicker_timeout_ms=stored.anti_flicker_timeout_ms,
    )


async def site_settings(session: AsyncSession, site_id: str, installed: Iterable[str]) -> SiteSettingsOut:
    """A site's settings (the defaults at version 1 before the first change).

    Args:
        session: A database session.
        site_id: The site; the caller has checked it belongs to the organization.
        installed: Names of the installed plugins (:func:`installed_plugins`).
    """
    row = await _row(session, site_id)
    return settings_out(_stored(row), row.version if row else DEFAULT_VERSION, installed)


async def default_activation_delay(session: AsyncSession, site_id: str) -> int:
    """The activation delay (ms) an experiment of the site gets when created without one."""
    return _stored(await _row(session, site_id)).activation_delay_ms


async def site_plugins(session: AsyncSession, site_id: str, installed: Iterable[str] = ()) -> dict[str, bool]:
    """The site's plugin switches: name → on.

    Every name in ``installed`` is in the answer (on unless the site switched it off); a
    plugin that appears neither there nor among the site's switches is on. Without
    ``installed`` the answer holds only the switches the site has set.
    """
    switches = dict(_stored(await _row(session, site_id)).plugins)
    return {**dict.fromkeys(installed, True), **switches}


async def replace_settings(
    session: AsyncSession,
    site_id: str,
    data: SiteSettingsIn,
    installed: Iterable[str],
    if_match: str | None,
    body_version: int | None = None,
) -> SiteSettingsOut:
    """Replace a site's settings: 412 on a stale ``If-Match`` (or body ``version``), 400 on bad input.

    Writing is conditional on the version read, so of two concurrent replacements one gets 412.
    """
    installed = list(installed)
    row = await _row(session, site_id)
    current = row.version if row is not None else DEFAULT_VERSION
    check_if_match(if_match, current, WHAT)
    if body_version is not None and body_version != current:
        raise PreconditionFailed(current, WHAT)
    stored = validate_settings(data, installed)
    document: dict[str, Any] = msgspec.to_builtins(stored)
    now = utcnow()
    if row is None:
        session.add(SiteSettings(site_id=site_id, settings=document, version=current + 1, updated_at=now))
        try:
            await session.flush()
        except IntegrityError:  # another first write won the race
            await session.rollback()
            raise PreconditionFailed(await _version(session, site_id), WHAT) from None
    else:
        written = await session.scalar(
            update(SiteSettings)
            .where(SiteSettings.site_id == site_id, SiteSettings.version == current)
            .values(settings=document, version=current + 1, updated_at=now)
            .returning(SiteSettings.version)
            .execution_options(synchronize_session=False)
        )
        if written is None:
            raise PreconditionFailed(await _version(session, site_id), WHAT)
    return settings_out(stored, current + 1, installed)


async def _version(session: AsyncSession, site_id: str) -> int:
    version = await session.scalar(select(SiteSettings.version).where(SiteSettings.site_id == site_id))
    return version or DEFAULT_VERSION


# ----------------------------------------------------------------- controller ---


class SiteSettingsPut(SiteSettingsIn, forbid_unknown_fields=True, kw_only=True):
    """``PUT`` body: the settings, optionally with the ``version`` read (same as ``If-Match``)."""

    version: int | None = None


def _with_etag(out: SiteSettingsOut) -> Response[SiteSettingsOut]:
    return Response(out, headers={"ETag": etag(out.version)})


class SiteSettingsController(Controller):
    """Plugins switched on, cross-domain list, conversion rules, activation defaults."""

    path = "/api/v1/projects/{project_id:str}/settings"
    tags = ["projects"]
    exception_handlers = VERSION_HANDLERS

    @get("/", operation_id="getProjectSettings")
    async def get_settings(
        self, project_id: FromPath[str], actor: CurrentActor, db_session: DbSession, kernel: KernelState
    ) -> Response[SiteSettingsOut]:
        """The site's settings, with their version as ``ETag``."""
        site = await get_site(db_session, actor, project_id)
        return _with_etag(await site_settings(db_session, site.id, installed_plugins(kernel)))

    @put("/", operation_id="replaceProjectSettings", opt=ADMIN)
    async def replace(
        self,
        project_id: FromPath[str],
        data: JSONBody[SiteSettingsPut],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
        if_match: IfMatch = None,
    ) -> Response[SiteSettingsOut]:
        """Replace the site's settings (admins); omitted settings return to their defaults."""
        actor.require("admin", "change site settings")
        site = await get_site(db_session, actor, project_id)
        settings = SiteSettingsIn(
            plugins=data.plugins,
            cross_domain=data.cross_domain,
            conversion_rules=data.conversion_rules,
            activation_delay_ms=data.activation_delay_ms,
            anti_flicker_timeout_ms=data.anti_flicker_timeout_ms,
        )
        out = await replace_settings(
            db_session, site.id, settings, installed_plugins(kernel), if_match, data.version
        )
        await bump(db_session, site.id)
        return _with_etag(out)

    @post("/test-rule", operation_id="testConversionRule", status_code=200)
    async def test_rule(
        self,
        project_id: FromPath[str],
        data: JSONBody[RuleTestIn],
        actor: CurrentActor,
        db_session: DbSession,
    ) -> RuleTestOut:
        """Would this Page URL or URL Parameter condition fire on ``url``? Nothing is stored."""
        await get_site(db_session, actor, project_id)
        errors = step_errors(data.step, "step")
        if data.step.method not in TESTABLE_METHODS:
            errors.insert(0, ("step.method", "only page_url and url_param conditions can be tested on a URL"))
        if errors:
            raise field_errors(errors, detail="; ".join(f"{f}: {m}" for f, m in errors))
        return RuleTestOut(would_fire=would_fire(data.step, data.url))
