"""Every plugin route sits behind the kernel's central guard."""

from __future__ import annotations

import importlib

import httpx
import pytest
from litestar import Litestar
from litestar.connection import ASGIConnection

from segmently.app import create_app
from segmently.plugins import Denied, PluginHost
from segmently.plugins.guard import PluginGuard
from tests.conftest import serve_app
from tests.core.accounts.test_auth import bearer, signup

pytestmark = pytest.mark.usefixtures("backend")


def plugin_of_handler(fn: object, packages: dict[str, str]) -> str | None:
    module = getattr(fn, "__module__", "") or ""
    return next((name for name, pkg in packages.items() if module.split(".")[0] == pkg), None)


def test_every_plugin_route_has_the_guard(app: Litestar, plugins: PluginHost) -> None:
    packages = {
        info.name: importlib.import_module(plugins.pm.get_plugin(info.name).__name__).__name__.split(".")[0]
        for info in plugins.infos
        if info.enabled
    }
    plugin_routes = 0
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if handler.fn.__module__.startswith("litestar."):
                continue  # Litestar's automatic OPTIONS handlers
            owner = plugin_of_handler(handler.fn, packages)
            guards = [g for g in handler.resolve_guards() if isinstance(g, PluginGuard)]
            if owner is None:
                assert not guards, f"kernel route {route.path} carries a plugin guard"
                continue
            plugin_routes += 1
            assert [g.plugin for g in guards] == [owner], f"{route.path} is not guarded for {owner}"
    assert plugin_routes >= 3  # the dummy plugin's routes were walked


class DenyDummy:
    async def check_route(
        self, connection: ASGIConnection, plugin: str, feature: str | None, access: str
    ) -> None:  # type: ignore[type-arg]
        if feature == "dummy.pid":
            raise Denied(402, "Process id needs the Business plan (you are on Free)")

    async def plugins_switched_on(
        self, organization_id: str | None, site_id: str | None = None
    ) -> frozenset[str]:
        return frozenset()


async def test_guard_asks_the_entitlement_interface(settings, plugins: PluginHost) -> None:  # type: ignore[no-untyped-def]
    plugins.entitlements = DenyDummy()
    async with serve_app(create_app(settings, plugins)) as base, httpx.AsyncClient(base_url=base) as client:
        assert (await client.get("/api/v1/dummy/gated")).status_code == 401  # the kernel signs in first
        token = (await signup(client, "gina"))["token"]
        denied = await client.get("/api/v1/dummy/gated", headers=bearer(token))
        assert denied.status_code == 402
        assert denied.json()["detail"] == "Process id needs the Business plan (you are on Free)"
        assert (await client.get("/api/v1/dummy/notes")).status_code == 200  # other feature: allowed
        assert (await client.get("/health")).status_code == 200  # kernel routes are not plugin-gated


async def test_disabled_plugin_has_no_routes(settings) -> None:  # type: ignore[no-untyped-def]
    host = PluginHost.load(disabled={"dummy"})
    async with serve_app(create_app(settings, host)) as base, httpx.AsyncClient(base_url=base) as client:
        assert (await client.get("/api/v1/dummy/notes")).status_code == 404
        schema = (await client.get("/schema/openapi.json")).json()
        assert not any(p.startswith("/api/v1/dummy") for p in schema["paths"])


async def test_guard_hides_a_plugin_switched_off_at_runtime(client: httpx.AsyncClient, app: Litestar) -> None:
    host: PluginHost = app.state.kernel.plugins
    host.enabled = host.enabled - {"dummy"}
    assert (await client.get("/api/v1/dummy/notes")).status_code == 404
