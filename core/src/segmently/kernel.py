"""The state every handler and job reaches through ``app.state.kernel``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from segmently.db.base import utcnow
from segmently.db.engine import Database
from segmently.domain.sites.keys import SiteKeys
from segmently.geo import Countries
from segmently.mail import Mailer
from segmently.outbox import OutboxDispatcher
from segmently.plugins.host import PluginHost
from segmently.settings import Settings
from segmently.tiers.plans import PlansTable


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
