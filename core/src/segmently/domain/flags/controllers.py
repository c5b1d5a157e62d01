"""``/api/v1/projects/{project_id}/flags`` and ``/api/v1/flags/{id}`` (to be built)."""

from __future__ import annotations

from litestar import Controller


class FlagController(Controller):
    """Feature flags of a site."""

    path = "/api/v1"
    tags = ["flags"]
