"""The dashboard: server-rendered pages (Jinja, htmx) over the kernel's domain services.

``create_app`` mounts :func:`dashboard_routes` and uses :func:`dashboard_templates`; see
``docs/dashboard.md``.
"""

from __future__ import annotations

from typing import Any

from litestar.datastructures import CacheControlHeader
from litestar.router import Router
from litestar.static_files import create_static_files_router

from segmently.dashboard.account_pages import AccountPages
from segmently.dashboard.alert_pages import AlertPages
from segmently.dashboard.editor_pages import EditorPages
from segmently.dashboard.experiment_pages import ExperimentPages
from segmently.dashboard.flag_pages import FlagPages
from segmently.dashboard.frame import STATIC, STATIC_PATH, dashboard_templates
from segmently.dashboard.key_pages import KeyPages
from segmently.dashboard.live_pages import LivePages
from segmently.dashboard.org_pages import OrganizationPages
from segmently.dashboard.results_pages import ResultsPages
from segmently.dashboard.settings_pages import SettingsPages
from segmently.dashboard.site_detail import SiteDetailPages
from segmently.dashboard.site_pages import SitePages
from segmently.dashboard.team_pages import TeamPages
from segmently.http.access import PUBLIC
from segmently.http.protection import CSRF_EXEMPT_OPT

__all__ = ["dashboard_routes", "dashboard_templates"]


def dashboard_routes() -> list[Any]:
    """The dashboard's pages and its static files (``/static/dashboard/``)."""
    static: Router = create_static_files_router(
        path=STATIC_PATH,
        directories=[STATIC],
        name="dashboard:static",
        include_in_schema=False,
        opt={**PUBLIC, CSRF_EXEMPT_OPT: True},
        cache_control=CacheControlHeader(public=True, max_age=31_536_000),  # URLs carry a content hash
    )
    return [
        AccountPages,
        OrganizationPages,
        SitePages,
        SiteDetailPages,
        AlertPages,
        LivePages,
        FlagPages,
        ExperimentPages,
        EditorPages,
        ResultsPages,
        SettingsPages,
        TeamPages,
        KeyPages,
        static,
    ]
