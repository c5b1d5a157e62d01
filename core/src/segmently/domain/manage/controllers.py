"""``/api/v1/manage``: what a management key may reach (to be built)."""

from __future__ import annotations

from litestar import Controller


class ManageController(Controller):
    """The Management API for an organization's own backend."""

    path = "/api/v1/manage"
    tags = ["management API"]
