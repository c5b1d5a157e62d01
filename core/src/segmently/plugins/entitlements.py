"""Which plugins and features an organization may use: the interface the guard asks.

The kernel default allows everything. The accounts layer replaces it with plans
(state 3, *entitled*) and the sites layer adds per-site switches (state 4,
*switched on*); the guard and the hook caller never change for that.
"""

from __future__ import annotations

from typing import Any, Protocol

from litestar.connection import ASGIConnection


class Denied(Exception):
    """A request or hook call is outside what the organization may use.

    Attributes:
        status_code: 402 for a plan that lacks the feature, 403 for a switch
            that is off, 404 to hide a plugin that is not enabled.
        detail: Message the dashboard shows (names the feature and the plan).
    """

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


class Entitlements(Protocol):
    """The questions the central guard and the hook caller ask."""

    async def check_route(
        self, connection: ASGIConnection[Any, Any, Any, Any], plugin: str, feature: str | None, access: str
    ) -> None:
        """Raise unless the request's organization may use ``plugin`` (and ``feature``).

        ``access`` says how the request names its organization: ``user`` (a dashboard
        token or management key) or ``site`` (a site's public API key).
        """

    async def plugins_switched_on(
        self, organization_id: str | None, site_id: str | None = None
    ) -> frozenset[str]:
        """Names of the server-enabled plugins switched on for the organization (and site)."""


class AllowAll:
    """Kernel default: every server-enabled plugin is on for everyone."""

    def __init__(self, enabled: frozenset[str]) -> None:
        self.enabled = enabled

    async def check_route(
        self, connection: ASGIConnection[Any, Any, Any, Any], plugin: str, feature: str | None, access: str
    ) -> None:
        """Allow every request."""

    async def plugins_switched_on(
        self, organization_id: str | None, site_id: str | None = None
    ) -> frozenset[str]:
        """Every enabled plugin."""
        return self.enabled
