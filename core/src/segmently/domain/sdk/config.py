"""What ``GET /api/v1/sdk/config`` serves: everything the snippet needs for one site, in one response.

Built once per (site, config version, country, preview) and kept in memory: every
write that changes what is served bumps the site's ``config_version``, and each
request reads that one integer, so a change is served at once by every node.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import msgspec
from publicsuffixlist import PublicSuffixList
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from segmently import assignment
from segmently.db.models import Experiment, Flag, Organization, Site, SiteSettings, Variant
from segmently.domain.sites.hostnames import bare_hostname
from segmently.domain.sites.keys import SiteKey
from segmently.hookspecs import OrgRef, SiteRef
from segmently.http.precompressed import Precompressed, PrecompressedCache
from segmently.kernel import Kernel
from segmently.targeting import AttributeRule, UrlRule
from segmently.tiers.guards import org_ref

CACHE_ENTRIES = 2_000
DEFAULT_ACTIVATION_DELAY_MS = 100
DEFAULT_ANTI_FLICKER_TIMEOUT_MS = 5_000


class BuiltConfig(msgspec.Struct, frozen=True):
    """A serialized config (with its encodings, made once) and its entity tag."""

    content: Precompressed
    etag: str


def rules_of(experiment: Experiment, variants: list[Variant]) -> assignment.ExperimentRules:
    """The assignment engine's view of a stored experiment."""
    targeting, audience = experiment.targeting, experiment.audience
    return assignment.ExperimentRules(
        hash_seed=experiment.hash_seed,
        variants=tuple(assignment.WeightedVariant(id=v.id, key=v.key, weight=v.weight) for v in variants),
        traffic_percentage=experiment.traffic_percentage,
        url_rules=tuple(msgspec.convert(targeting.get("url_rules", []), list[UrlRule])),
        devices=tuple(targeting.get("devices", [])),
        countries=tuple(targeting.get("countries", [])),
        visitor_type=audience.get("visitor_type", "all"),
        attribute_rules=tuple(msgspec.convert(audience.get("attribute_rules", []), list[AttributeRule])),
        referral_sources=tuple(audience.get("referral_sources", [])),
    )


@functools.cache
def _public_suffixes() -> PublicSuffixList:
    """The list the package ships, private domains included; parsed on first use, not at import."""
    return PublicSuffixList()


def cookie_domains(hosts: Iterable[str]) -> list[str]:
    """Where the snippet sets its cookies: the registrable domain of each host, in order, once.

    ``www.shop.example.co.uk`` gives ``example.co.uk``: the widest domain a browser takes a cookie
    on, by the public suffix list browsers use (private domains included, so never ``github.io``).
    IP addresses, ``localhost`` and public suffixes give none; a page on a host under none of the
    answers gets host-only cookies (``snippet/src/core/identity.ts``, ``cookieDomain``).
    """
    out: list[str] = []
    for raw in hosts:
        host = raw.strip().lower().rstrip(".")
        try:
            ipaddress.ip_address(host.strip("[]"))
            continue
        except ValueError:
            pass
        domain = _public_suffixes().privatesuffix(host) if host else None
        if domain and domain not in out:
            out.append(domain)
    return out


def _hostname(url: str) -> str:
    """The host of a site's URL; empty when it has none (``http://[::1`` passes the URL check)."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def cross_domain_host(entry: str) -> str | None:
    """The bare hostname of a cross-domain entry as the snippet compares it; None if it has none.

    A URL (``https://Checkout.Example.com/``) gives its host; the host is lower-cased and loses a
    trailing dot, as the site settings store theirs. Experiments saved before this was done on
    save may hold URLs as typed; the config serves their hosts.
    """
    return bare_hostname(_hostname(entry) if "//" in entry else entry)


def cross_domain_hosts(entries: Iterable[str]) -> list[str]:
    """The hostnames of ``entries`` (:func:`cross_domain_host`), in order, once each."""
    return list(dict.fromkeys(h for h in map(cross_domain_host, entries) if h))


def applied_variant(variant: dict[str, Any], experiment_css: str, experiment_js: str) -> dict[str, Any]:
    """How the snippet applies a variant (``snippet/src/core/changes.ts``), in the spec's order.

    ``variant`` holds the stored ``changes``, ``custom_css`` and ``custom_js``. Answers
    ``elements``, the changes made to elements (hide, text, html with HTML, css with a selector and
    no rule), in list order; ``styles``, the style sheets: each css change without a selector or
    with a rule (``{``), then the experiment's custom CSS, then the variant's; ``scripts``,
    ``[label, code]`` of each js change (``JS change 2``: its place in the list), then the
    experiment's custom JS (``custom JS 1``) and the variant's (``custom JS 2``). Empty CSS, and
    code that is only whitespace, are left out (no ``new Function`` that a page's CSP would refuse).
    """
    elements: list[dict[str, Any]] = []
    styles: list[str] = []
    scripts: list[list[str]] = []
    for i, change in enumerate(variant.get("changes") or []):
        kind = change.get("type")
        if kind == "js":
            scripts.append([f"JS change {i + 1}", change.get("code") or ""])
        elif kind == "css" and (not change.get("selector") or "{" in (change.get("css") or "")):
            styles.append(change.get("css") or "")
        elif kind != "html" or change.get("html"):
            elements.append(change)
    styles += [experiment_css, variant.get("custom_css") or ""]
    scripts += [["custom JS 1", experiment_js], ["custom JS 2", variant.get("custom_js") or ""]]
    return {
        "elements": elements,
        "styles": [css for css in styles if css],
        "scripts": [s for s in scripts if s[1].strip()],
    }


def _experiment(exp: Experiment, variants: list[Variant], preview: bool = False) -> dict[str, Any]:
    integrations = exp.integrations or {}
    # URL rules as patterns, bucket ranges, countries and devices as the snippet checks them
    rules = assignment.snippet_rules(rules_of(exp, variants))
    triggers = exp.audience.get("triggers") or {}
    return {
        "id": exp.id,
        "slug": exp.slug,
        "name": exp.name,
        "seed": exp.hash_seed,
        "type": exp.kind,
        "status": exp.status,
        "preview": preview,
        "delay": exp.activation_delay_ms,
        "targeting": {**exp.targeting, "countries": rules["countries"], "devices": rules["devices"]},
        "url": rules["url"],
        "ranges": rules["ranges"],
        # no trigger set: null, so the snippet tells a behavioral experiment by its triggers alone
        "audience": {
            **exp.audience,
            "triggers": triggers if any(v not in (None, "") for v in triggers.values()) else None,
        },
        "goals": exp.goals.get("goals", []),
        "funnels": exp.goals.get("funnels", []),
        "cross_domain": cross_domain_hosts(exp.advanced.get("cross_domain", [])),
        # the snippet forwards to GA4 / Mixpanel only for experiments that have them configured
        "ga4": bool(integrations.get("ga4")),
        "mixpanel": bool(integrations.get("mixpanel")),
        "variants": [
            {
                "id": v.id,
                "key": v.key,
                "name": v.name,
                "weight": v.weight,
                **applied_variant(
                    v.changes, exp.advanced.get("custom_css", ""), exp.advanced.get("custom_js", "")
                ),
            }
            for v in variants
        ],
    }


async def _variants(session: AsyncSession, experiment_ids: list[str]) -> dict[str, list[Variant]]:
    out: dict[str, list[Variant]] = {i: [] for i in experiment_ids}
    if experiment_ids:
        rows = await session.scalars(
            select(Variant).where(Variant.experiment_id.in_(experiment_ids)).order_by(Variant.position)
        )
        for v in rows:
            out[v.experiment_id].append(v)
    return out


async def build(
    session: AsyncSession,
    kernel: Kernel,
    site: Site,
    org: Organization,
    country: str | None,
    preview: str | None,
) -> dict[str, Any]:
    """The config document for ``site``.

    ``preview`` (``slug:variant``, the variant's key or id) also serves that experiment while it
    is a draft or paused, and the experiment of that slug carries ``forced``: the index of the
    variant the page shows (none when no variant has that key or id; the test panel says so).
    """
    slug, _, forced_key = (preview or "").partition(":")
    experiments = list(
        (
            await session.scalars(
                select(Experiment)
                .where(Experiment.site_id == site.id, Experiment.status == "live")
                .order_by(Experiment.created_at)
            )
        ).all()
    )
    previewed = None
    if slug:
        previewed = await session.scalar(
            select(Experiment).where(
                Experiment.site_id == site.id,
                Experiment.slug == slug,
                Experiment.status.in_(("draft", "paused")),
            )
        )
    variants = await _variants(session, [e.id for e in experiments] + ([previewed.id] if previewed else []))
    flags = (
        await session.scalars(
            select(Flag).where(Flag.site_id == site.id, Flag.status == "active").order_by(Flag.key)
        )
    ).all()
    stored = await session.get(SiteSettings, site.id)
    settings: dict[str, Any] = stored.settings if stored else {}
    ref: OrgRef = org_ref(org)
    plan = await kernel.plugins.plan(ref)
    entitlements = frozenset(k for k in kernel.plans.features() if kernel.plans.includes(plan, k))
    modules = await kernel.plugins.snippet_modules(
        SiteRef(id=site.id, organization_id=org.id, name=site.name, url=site.url), entitlements
    )
    switched = settings.get("plugins") or {}
    served = [_experiment(e, variants[e.id]) for e in experiments] + (
        [_experiment(previewed, variants[previewed.id], preview=True)] if previewed else []
    )
    for e in served:
        if slug and e["slug"] == slug:
            at = [i for i, v in enumerate(e["variants"]) if forced_key in (v["key"], v["id"])]
            e["forced"] = at[0] if at else None
    # the hosts sharing the visitor: the site's and every served experiment's, in one list
    cross_domain = cross_domain_hosts(
        [*settings.get("cross_domain", []), *(d for e in served for d in e["cross_domain"])]
    )
    return {
        "site": {"id": site.id, "url": site.url},
        "country": country,  # normalized (upper-cased, None when not detected) by kernel.countries
        "plan": plan,
        "badge": not kernel.plans.includes(plan, "branding.remove_badge"),
        "experiments": served,
        "flags": [{"key": f.key, "rollout": f.rollout_percentage} for f in flags],
        "conversion_rules": settings.get("conversion_rules", []),
        "settings": {
            "cross_domain": cross_domain,
            "cookie_domains": cookie_domains([_hostname(site.url), *cross_domain]),
            "activation_delay_ms": settings.get("activation_delay_ms", DEFAULT_ACTIVATION_DELAY_MS),
            "anti_flicker_timeout_ms": settings.get(
                "anti_flicker_timeout_ms", DEFAULT_ANTI_FLICKER_TIMEOUT_MS
            ),
        },
        "modules": [msgspec.to_builtins(m) for m in modules if switched.get(m.name, True)],
    }


_VERSION_SQL = (
    "SELECT s.config_version, o.plan FROM sites s JOIN organizations o ON o.id = s.organization_id "
    "WHERE s.id = {}"
)
# the site's config version (one primary-key lookup), as the config cache and event ingestion read it
VERSION_PG = _VERSION_SQL.format("%s")
VERSION_SQLITE = _VERSION_SQL.format("?")


class ConfigCache:
    """Serialized configs by (site, version, country, preview); the oldest entry goes first."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self.entries = entries
        self._items: OrderedDict[tuple[str, int, str, str | None, str | None], BuiltConfig] = OrderedDict()
        # by entity tag: entries with the same body (another preview of it, an unknown one) share them
        self._encodings = PrecompressedCache(entries)

    async def get(
        self,
        session: AsyncSession,
        kernel: Kernel,
        site_key: SiteKey,
        country: str | None,
        preview: str | None,
    ) -> BuiltConfig | None:
        """The site's config, built if its version changed; None if the site is gone.

        The version and the plan are read first with one statement outside the session (on
        PostgreSQL autocommitted: no ``BEGIN``/``COMMIT``; on SQLite on the event loop's thread,
        :meth:`~segmently.db.engine.Database.sqlite_first`), and a cached config needs nothing more.
        """
        if kernel.db.is_sqlite:
            version = await kernel.db.sqlite_first(VERSION_SQLITE, (site_key.site_id,))
        else:
            async with kernel.db.autocommit() as conn:
                cur = await conn.execute(VERSION_PG, (site_key.site_id,))
                version = await cur.fetchone()
        if version is None:
            return None
        known = (site_key.site_id, version[0], version[1], country, preview)
        hit = self._items.get(known)
        if hit is not None:
            self._items.move_to_end(known)
            return hit
        row = (
            await session.execute(
                select(Site, Organization)
                .join(Organization, Organization.id == Site.organization_id)
                .where(Site.id == site_key.site_id)
            )
        ).first()
        if row is None:
            return None
        site, org = row
        key = (
            site.id,
            site.config_version,
            org.plan,
            country,
            preview,
        )  # a plan change shows the badge at once
        hit = self._items.get(key)
        if hit is not None:
            self._items.move_to_end(key)
            return hit
        body = msgspec.json.encode(await build(session, kernel, site, org, country, preview))
        etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
        built = BuiltConfig(content=self._encodings.get(etag, body), etag=etag)
        self._items[key] = built
        if len(self._items) > self.entries:
            self._items.popitem(last=False)
        return built


async def bump(session: AsyncSession, site_id: str) -> None:
    """Make every node serve a rebuilt config for ``site_id`` from the next request on."""
    from sqlalchemy import update

    await session.execute(
        update(Site).where(Site.id == site_id).values(config_version=Site.config_version + 1)
    )
