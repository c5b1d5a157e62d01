"""The Management API for experiments, as an organization's own backend calls it."""

from __future__ import annotations

import httpx
import pytest

from tests.core.accounts.test_auth import bearer
from tests.core.experiments.test_experiments import hero, owner_site

pytestmark = pytest.mark.usefixtures("backend")


async def test_list_read_and_control_experiments_with_a_key(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    exp = (await client.post(f"/api/v1/projects/{site['id']}/experiments", json=hero(), headers=h)).json()
    key = (await client.post("/api/v1/organization/management-keys", json={"name": "ci"}, headers=h)).json()[
        "key"
    ]
    k = {"X-Management-Key": key}
    listed = await client.get("/api/v1/manage/experiments", params={"project_id": site["id"]}, headers=k)
    assert [e["id"] for e in listed.json()["experiments"]] == [exp["id"]]
    one = (await client.get(f"/api/v1/manage/experiments/{exp['id']}", headers=bearer(key))).json()
    assert (
        one["variants"][1]["changes"][0]["text"] == "Hello" and one["goals"][0]["event_name"] == "conversion"
    )
    r = await client.patch(
        f"/api/v1/manage/experiments/{exp['id']}",
        json={"status": "active", "traffic_percentage": 50},
        headers=k,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "live" and r.json()["targeting"]["traffic_percentage"] == 50
    cfg = (await client.get("/api/v1/sdk/config", headers={"X-API-Key": site["api_key"]})).json()
    assert cfg["experiments"][0]["targeting"]["traffic_percentage"] == 50
    assert (
        await client.patch(f"/api/v1/manage/experiments/{exp['id']}", json={"status": "paused"}, headers=k)
    ).json()["status"] == "paused"
    bad = await client.patch(f"/api/v1/manage/experiments/{exp['id']}", json={"status": "draft"}, headers=k)
    assert bad.status_code == 409
    assert (
        await client.patch(
            f"/api/v1/manage/experiments/{exp['id']}", json={"traffic_percentage": 101}, headers=k
        )
    ).status_code == 400
    other_h, other_site = await owner_site(client, database_url, tag="bob")
    theirs = (
        await client.post(f"/api/v1/projects/{other_site['id']}/experiments", json=hero(), headers=other_h)
    ).json()
    assert (await client.get(f"/api/v1/manage/experiments/{theirs['id']}", headers=k)).status_code == 404
    assert (
        await client.get("/api/v1/manage/experiments", params={"project_id": other_site["id"]}, headers=k)
    ).status_code == 404
