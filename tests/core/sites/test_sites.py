"""Sites (the API's projects): keys, plan limits, tenancy, deletion, domain events."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from segmently_dummy import plugin as dummy

from tests.conftest import SECRET
from tests.core.accounts.test_auth import bearer, signup

pytestmark = pytest.mark.usefixtures("backend")
SHOP = {"name": "Shop", "url": "https://shop.example.com"}


async def test_create_and_read_a_site_with_its_api_key(client: httpx.AsyncClient) -> None:
    token = (await signup(client, "alice"))["token"]
    r = await client.post("/api/v1/projects", json=SHOP, headers=bearer(token))
    assert r.status_code == 201
    site = r.json()
    assert site["api_key"].startswith("seg_live_") and len(site["api_key"]) > 20
    got = await client.get(f"/api/v1/projects/{site['id']}", headers=bearer(token))
    assert got.status_code == 200 and got.json() == site
    listed = await client.get("/api/v1/projects", headers=bearer(token))
    assert [s["id"] for s in listed.json()["items"]] == [site["id"]]


async def test_another_organization_never_sees_the_site(client: httpx.AsyncClient) -> None:
    alice = (await signup(client, "alice"))["token"]
    bob = (await signup(client, "bob"))["token"]
    site = (await client.post("/api/v1/projects", json=SHOP, headers=bearer(alice))).json()
    for method, path, body in [
        ("GET", f"/api/v1/projects/{site['id']}", None),
        ("PATCH", f"/api/v1/projects/{site['id']}", {"name": "Mine now"}),
        ("DELETE", f"/api/v1/projects/{site['id']}?confirm=Shop", None),
        ("POST", f"/api/v1/projects/{site['id']}/regenerate-key", None),
    ]:
        r = await client.request(method, path, json=body, headers=bearer(bob))
        assert r.status_code == 404, (method, path, r.status_code)
        assert site["api_key"] not in r.text
    assert (await client.get("/api/v1/projects", headers=bearer(bob))).json()["items"] == []
    still = await client.get(f"/api/v1/projects/{site['id']}", headers=bearer(alice))
    assert still.json()["name"] == "Shop"


async def test_free_plan_allows_one_site_and_says_which_plan_lifts_it(client: httpx.AsyncClient) -> None:
    token = (await signup(client, "carol"))["token"]
    assert (await client.post("/api/v1/projects", json=SHOP, headers=bearer(token))).status_code == 201
    r = await client.post(
        "/api/v1/projects", json={"name": "Blog", "url": "https://blog.example.com"}, headers=bearer(token)
    )
    assert r.status_code == 402
    detail = r.json()["detail"]
    assert "1 site" in detail and "1/1" in detail and "Enterprise" in detail
    assert len((await client.get("/api/v1/projects", headers=bearer(token))).json()["items"]) == 1


async def test_bad_site_input_names_the_field(client: httpx.AsyncClient) -> None:
    token = (await signup(client, "dave"))["token"]
    r = await client.post("/api/v1/projects", json={"name": "X", "url": "not a url"}, headers=bearer(token))
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "url"
    assert (await client.get("/api/v1/projects", headers=bearer(token))).json()["items"] == []


async def test_delete_needs_the_name_and_emits_domain_events(client: httpx.AsyncClient) -> None:
    body = await signup(client, "erin")
    token = body["token"]
    site = (await client.post("/api/v1/projects", json=SHOP, headers=bearer(token))).json()
    refused = await client.delete(f"/api/v1/projects/{site['id']}", headers=bearer(token))
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "confirm"
    ok = await client.delete(
        f"/api/v1/projects/{site['id']}", params={"confirm": "Shop"}, headers=bearer(token)
    )
    assert ok.status_code == 204
    assert (await client.get(f"/api/v1/projects/{site['id']}", headers=bearer(token))).status_code == 404
    for _ in range(100):
        events = [e for h, e in dummy.RECORDED if h == "on_domain_event"]
        if len(events) == 2:
            break
        await asyncio.sleep(0.05)
    assert [(e.event, e.organization_id, e.data["project_id"]) for e in events] == [
        ("project.created", body["organization"]["id"], site["id"]),
        ("project.deleted", body["organization"]["id"], site["id"]),
    ]


async def test_regenerated_key_replaces_the_old_one(client: httpx.AsyncClient) -> None:
    token = (await signup(client, "fay"))["token"]
    site = (await client.post("/api/v1/projects", json=SHOP, headers=bearer(token))).json()
    r = await client.post(f"/api/v1/projects/{site['id']}/regenerate-key", headers=bearer(token))
    assert r.status_code == 200
    assert r.json()["api_key"] != site["api_key"] and r.json()["api_key"].startswith("seg_live_")


def segmently(*args: str, database_url: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTLY_")}
    env.update(
        SEGMENTLY_DATABASE_URL=database_url, SEGMENTLY_DATA_DIR=str(data_dir), SEGMENTLY_SECRET_KEY=SECRET
    )
    return subprocess.run(
        [str(Path(sys.executable).parent / "segmently"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_operator_cli_sets_plan_and_suspends_while_the_server_runs(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    body = await signup(client, "gus")
    token, org_id = body["token"], body["organization"]["id"]
    await client.post("/api/v1/projects", json=SHOP, headers=bearer(token))
    r = await asyncio.to_thread(
        segmently, "orgs", "set-plan", org_id, "enterprise", database_url=database_url, data_dir=tmp_path
    )
    assert r.returncode == 0, r.stderr
    second = await client.post(
        "/api/v1/projects", json={"name": "Blog", "url": "https://blog.example.com"}, headers=bearer(token)
    )
    assert second.status_code == 201  # the next request already sees the new plan
    r = await asyncio.to_thread(
        segmently, "orgs", "suspend", "gus org", database_url=database_url, data_dir=tmp_path
    )
    assert r.returncode == 0, r.stderr
    refused = await client.get("/api/v1/projects", headers=bearer(token))
    assert refused.status_code == 403 and "suspended" in refused.json()["detail"]
    await asyncio.to_thread(
        segmently, "orgs", "activate", org_id, database_url=database_url, data_dir=tmp_path
    )
    assert (await client.get("/api/v1/projects", headers=bearer(token))).status_code == 200
    unknown = await asyncio.to_thread(
        segmently, "orgs", "set-plan", "no-such-org", "business", database_url=database_url, data_dir=tmp_path
    )
    assert unknown.returncode == 2 and "no organization" in unknown.stderr
