"""The state every handler and job reaches through ``app.state.kernel``, and how it is made."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from segmently.db.base import utcnow
from segmently.db.engine import Database
from segmently.domain.sites.keys import SiteKeys
from segmently.geo import Countries
from segmently.mail import Mailer, mailer_from_settings
from segmently.outbox import OutboxDispatcher
from segmently.plugins.entitlements import AllowAll
from segmently.plugins.host import PluginHost
from segmently.settings import Settings
from segmently.tiers.plans import PlansTable, load_plans


@dataclass
class Kernel:
    """Settings, database, plugins and the outbox of one app."""

    settings: Settings
    db: Database
    plugins: PluginHost
    outbox: OutboxDispatcher
    plans: PlansTable
    mailer: Mailer
    site_keys: SiteKeys
    countries: Countries
    clock: Callable[[], dt.datetime] = utcnow
    """What scheduled jobs take as "now" (tests move it)."""


def make_kernel(settings: Settings, plugins: PluginHost | None = None) -> Kernel:
    """The kernel of an app or a CLI command: database, plugins, plans, outbox, mail, caches."""
    from segmently.tiers.entitlements import PlanEntitlements  # it reaches the kernel through the domain

    host = plugins or PluginHost.load(settings.disabled_plugins)
    host.models()  # plugin tables join the shared metadata before anything uses it
    db = Database(settings.database_url)
    mailer = mailer_from_settings(settings.mail)
    kernel = Kernel(
        settings=settings,
        db=db,
        plugins=host,
        outbox=OutboxDispatcher(db, host, settings.outbox_poll_seconds, mailer=mailer),
        plans=load_plans(host.features(), settings.plans_file),
        mailer=mailer,
        site_keys=SiteKeys(db),
        countries=Countries(settings.country_header, settings.geoip_db),
    )
    if isinstance(host.entitlements, AllowAll):  # a caller's own interface (tests) stays
        host.entitlements = PlanEntitlements(kernel)
    return kernel
