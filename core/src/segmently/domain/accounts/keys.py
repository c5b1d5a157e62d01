"""Management API keys (to be built)."""

from __future__ import annotations

from litestar import Controller


class ManagementKeyController(Controller):
    """``/api/v1/organization/management-keys``: create (shown once), list, revoke."""

    path = "/api/v1/organization/management-keys"
    tags = ["management keys"]
