"""The central gate in front of every plugin route: no plugin writes its own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from litestar import Router
from litestar.connection import ASGIConnection
from litestar.exceptions import NotFoundException
from litestar.handlers.base import BaseRouteHandler

from segmently.http.access import access_of

PLUGIN_OPT = "segmently_plugin"
FEATURE_OPT = "feature"


class PluginGuard:
    """Checks, on every request to a plugin route, the plugin's states 2–4.

    2. enabled on this server (otherwise 404, as if it were not installed);
    3. and 4. entitled by plan and switched on, as the entitlement interface says
       (it raises :class:`~segmently.plugins.Denied` with 402/403).
    """

    def __init__(self, plugin: str) -> None:
        self.plugin = plugin

    async def __call__(
        self, connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        """Raise unless the request may reach this plugin's handler."""
        host = connection.app.state.kernel.plugins
        if self.plugin not in host.enabled:
            raise NotFoundException()
        access = access_of(handler)
        if access == "public":  # e.g. a payment provider's webhook: no organization to ask about
            return
        await host.entitlements.check_route(connection, self.plugin, handler.opt.get(FEATURE_OPT), access)

    def __repr__(self) -> str:
        return f"PluginGuard({self.plugin!r})"


def plugin_routers(routes: Mapping[str, Sequence[Any]]) -> list[Router]:
    """One router per plugin, carrying its guard, around the handlers it registered."""
    return [
        Router(
            path="/",
            route_handlers=list(handlers),
            guards=[PluginGuard(name)],
            opt={PLUGIN_OPT: name},
            tags=[f"plugin: {name}"],
        )
        for name, handlers in sorted(routes.items())
        if handlers
    ]
