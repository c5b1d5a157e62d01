"""``/api/v1/projects/{project_id}/settings``: per-site settings (to be built)."""

from __future__ import annotations

from litestar import Controller


class SiteSettingsController(Controller):
    """Plugins switched on, cross-domain list, conversion rules, activation defaults."""

    path = "/api/v1/projects/{project_id:str}/settings"
    tags = ["projects"]
