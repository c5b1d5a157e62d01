"""Plans decide which plugins an organization gets: routes, hooks, site keys."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from litestar import Litestar

from segmently.tiers.entitlements import PlanEntitlements
from tests.core.accounts.test_auth import bearer, signup
from tests.core.accounts.test_team import db_update, set_plan

pytestmark = pytest.mark.usefixtures("backend")


async def test_plugin_route_needs_a_user_whose_plan_includes_the_feature(
    client: httpx.AsyncClient, database_url: str
) -> None:
    assert (await client.get("/api/v1/dummy/gated")).status_code == 401
    body = await signup(client, "alice")
    free = await client.get("/api/v1/dummy/gated", headers=bearer(body["token"]))
    assert free.status_code == 402
    assert free.json()["detail"] == "Process id needs the Business plan; you are on Free."
    await set_plan(database_url, body["organization"]["id"], "business")
    ok = await client.get("/api/v1/dummy/gated", headers=bearer(body["token"]))
    assert ok.status_code == 200 and ok.json() == {"ok": "gated"}


async def test_site_key_routes_follow_the_sites_organization(
    client: httpx.AsyncClient, app: Litestar, database_url: str
) -> None:
    from sqlalchemy import update

    app.state.kernel.site_keys.ttl = 0.2  # the key cache forgets within its TTL (5 s in production)

    from segmently.db.models import Organization

    body = await signup(client, "bob")
    site = (
        await client.post(
            "/api/v1/projects",
            json={"name": "S", "url": "https://s.example.com"},
            headers=bearer(body["token"]),
        )
    ).json()
    assert (await client.get("/api/v1/dummy/site-ping")).status_code == 401
    assert (
        await client.get("/api/v1/dummy/site-ping", headers={"X-API-Key": "seg_live_nope"})
    ).status_code == 401
    assert (
        await client.get("/api/v1/dummy/site-ping", headers={"X-API-Key": site["api_key"]})
    ).status_code == 402
    await set_plan(database_url, body["organization"]["id"], "enterprise")
    ok = await client.get("/api/v1/dummy/site-ping", params={"api_key": site["api_key"]})
    for _ in range(70):  # the key lookup may be cached for up to its TTL
        if ok.status_code == 200:
            break
        await asyncio.sleep(0.1)
        ok = await client.get("/api/v1/dummy/site-ping", params={"api_key": site["api_key"]})
    assert ok.status_code == 200
    await db_update(database_url, update(Organization).values(status="suspended"))
    for _ in range(70):
        r = await client.get("/api/v1/dummy/site-ping", headers={"X-API-Key": site["api_key"]})
        if r.status_code == 403:
            break
        await asyncio.sleep(0.1)
    assert r.status_code == 403 and "suspended" in r.json()["detail"]


async def test_hooks_reach_only_plugins_the_plan_includes(
    client: httpx.AsyncClient, app: Litestar, database_url: str
) -> None:
    entitlements = app.state.kernel.plugins.entitlements
    assert isinstance(entitlements, PlanEntitlements)
    body = await signup(client, "carol")
    org_id = body["organization"]["id"]
    assert await entitlements.plugins_switched_on(org_id) == {"billing", "dummy"}
    await set_plan(database_url, org_id, "professional")
    assert await entitlements.plugins_switched_on(org_id) == {"billing", "dummy", "heatmaps", "integrations"}
    await set_plan(database_url, org_id, "enterprise")
    assert await entitlements.plugins_switched_on(org_id) == app.state.kernel.plugins.enabled
    assert await entitlements.plugins_switched_on("no-such-org") == frozenset()


async def test_a_site_can_switch_a_plugin_off(
    client: httpx.AsyncClient, app: Litestar, database_url: str
) -> None:
    body = await signup(client, "dora")
    await set_plan(database_url, body["organization"]["id"], "enterprise")
    h = bearer(body["token"])
    site = (
        await client.post("/api/v1/projects", json={"name": "S", "url": "https://s.example.com"}, headers=h)
    ).json()
    key = {"X-API-Key": site["api_key"]}
    assert (await client.get("/api/v1/dummy/site-ping", headers=key)).status_code == 200
    entitlements = app.state.kernel.plugins.entitlements
    assert "dummy" in await entitlements.plugins_switched_on(body["organization"]["id"], site["id"])
    r = await client.put(
        f"/api/v1/projects/{site['id']}/settings", json={"plugins": {"dummy": False}}, headers=h
    )
    assert r.status_code == 200, r.text
    off = await client.get("/api/v1/dummy/site-ping", headers=key)
    assert off.status_code == 403 and "switched off for this site" in off.json()["detail"]
    assert "dummy" not in await entitlements.plugins_switched_on(body["organization"]["id"], site["id"])
    assert "dummy" in await entitlements.plugins_switched_on(
        body["organization"]["id"]
    )  # other sites keep it
