"""Management API keys: Enterprise and owner only, shown once, at most 10, revocable, tenant-scoped.

A key works on the Management API (``/api/v1/manage/…``) only, and only while its organization
is active and on a plan that includes the Management API.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from segmently.db.engine import Database
from segmently.db.models import ManagementKey, Membership
from segmently.domain.accounts.security import sha256
from tests.core.accounts.test_auth import bearer, signup
from tests.core.sites.test_sites import segmently as cli

pytestmark = pytest.mark.usefixtures("backend")
KEYS = "/api/v1/organization/management-keys"
MANAGE = "/api/v1/manage/projects"
OUTSIDE = "Management keys work only with the Management API (/api/v1/manage/…)"
NEEDS_KEY = "The Management API needs a management key (seg_mgmt_…)"
SHOP = {"name": "Shop", "url": "https://shop.example.com"}


async def set_plan(organization_id: str, plan: str, database_url: str, data_dir: Path) -> None:
    """Change an organization's plan through the operator CLI (as the server runs)."""
    r = await asyncio.to_thread(
        cli, "orgs", "set-plan", organization_id, plan, database_url=database_url, data_dir=data_dir
    )
    assert r.returncode == 0, r.stderr


async def enterprise_owner(client: httpx.AsyncClient, tag: str, database_url: str, data_dir: Path) -> dict:  # type: ignore[type-arg]
    """Sign up ``tag`` and put its organization on Enterprise through the operator CLI."""
    body = await signup(client, tag)
    await set_plan(body["organization"]["id"], "enterprise", database_url, data_dir)
    return body


async def join(database_url: str, organization_id: str, user_id: str, role: str) -> None:
    """Make a user a member of another organization (no invitation API yet)."""
    db = Database(database_url)
    try:
        async with db.session() as session:
            session.add(Membership(organization_id=organization_id, user_id=user_id, role=role))
    finally:
        await db.dispose()


async def stored_keys(database_url: str) -> list[ManagementKey]:
    db = Database(database_url)
    try:
        async with db.session() as session:
            return list((await session.scalars(select(ManagementKey))).all())
    finally:
        await db.dispose()


async def create_key(client: httpx.AsyncClient, token: str, name: str = "CI") -> dict:  # type: ignore[type-arg]
    r = await client.post(KEYS, json={"name": name}, headers=bearer(token))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def key_header(key: str) -> dict[str, str]:
    return {"X-Management-Key": key}


async def test_free_plan_owner_gets_402_naming_enterprise(client: httpx.AsyncClient) -> None:
    token = (await signup(client, "alice"))["token"]
    r = await client.post(KEYS, json={"name": "CI"}, headers=bearer(token))
    assert r.status_code == 402
    assert "Management API" in r.json()["detail"] and "Enterprise" in r.json()["detail"]
    assert (await client.get(KEYS, headers=bearer(token))).json() == {"items": [], "next_cursor": None}


async def test_key_is_shown_once_and_works_in_both_headers(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    owner = await enterprise_owner(client, "bob", database_url, tmp_path)
    token = owner["token"]
    site = (await client.post("/api/v1/projects", json=SHOP, headers=bearer(token))).json()
    created = await create_key(client, token, "  Deploy bot ")
    assert set(created) == {"id", "name", "prefix", "key", "created_at"}
    key = created["key"]
    assert key.startswith("seg_mgmt_") and len(key) > 40
    assert created["name"] == "Deploy bot" and created["prefix"] == key[:12]

    [stored] = await stored_keys(database_url)
    assert stored.key_hash == sha256(key) and key not in (stored.prefix, stored.name, stored.key_hash)
    assert stored.created_by == owner["user"]["id"]

    listed = await client.get(KEYS, headers=bearer(token))
    assert listed.status_code == 200 and key not in listed.text
    [item] = listed.json()["items"]
    assert item == {
        "id": created["id"],
        "name": "Deploy bot",
        "prefix": key[:12],
        "created_at": created["created_at"],
        "last_used_at": None,
        "revoked_at": None,
    }

    for headers in (bearer(key), key_header(key)):
        r = await client.get(MANAGE, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json() == {
            "projects": [
                {
                    "id": site["id"],
                    "name": "Shop",
                    "url": "https://shop.example.com",
                    "api_key": site["api_key"],
                    "created_at": site["created_at"],
                }
            ]
        }
    one = await client.get(f"{MANAGE}/{site['id']}", headers=key_header(key))
    assert one.status_code == 200 and one.json()["id"] == site["id"]
    assert (await client.get(f"{MANAGE}/no-such-site", headers=key_header(key))).status_code == 404


async def test_only_the_owner_creates_and_revokes_keys(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    owner = await enterprise_owner(client, "carol", database_url, tmp_path)
    org_id = owner["organization"]["id"]
    admin = await signup(client, "dan")
    member = await signup(client, "eve")
    await join(database_url, org_id, admin["user"]["id"], "admin")
    await join(database_url, org_id, member["user"]["id"], "member")
    as_admin = {**bearer(admin["token"]), "X-Organization-Id": org_id}
    as_member = {**bearer(member["token"]), "X-Organization-Id": org_id}

    for headers in (as_admin, as_member):
        r = await client.post(KEYS, json={"name": "mine"}, headers=headers)
        assert r.status_code == 403 and "owner" in r.json()["detail"], r.text
    created = await create_key(client, owner["token"])

    listed = await client.get(KEYS, headers=as_admin)  # admins may look
    assert listed.status_code == 200 and [k["id"] for k in listed.json()["items"]] == [created["id"]]
    assert (await client.get(KEYS, headers=as_member)).status_code == 403
    for headers in (as_admin, as_member):
        r = await client.delete(f"{KEYS}/{created['id']}", headers=headers)
        assert r.status_code == 403
    assert (await client.get(MANAGE, headers=key_header(created["key"]))).status_code == 200

    # a management key cannot reach the keys API at all: neither list, create nor revoke keys
    as_key = bearer(created["key"])
    for r in (
        await client.get(KEYS, headers=as_key),
        await client.post(KEYS, json={"name": "child"}, headers=as_key),
        await client.delete(f"{KEYS}/{created['id']}", headers=as_key),
    ):
        assert r.status_code == 403 and r.json()["detail"] == OUTSIDE, r.text
    assert len(await stored_keys(database_url)) == 1


async def test_eleventh_active_key_is_409_until_one_is_revoked(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    token = (await enterprise_owner(client, "fay", database_url, tmp_path))["token"]
    keys = [await create_key(client, token, f"key {i}") for i in range(10)]
    r = await client.post(KEYS, json={"name": "one too many"}, headers=bearer(token))
    assert r.status_code == 409
    assert r.json()["detail"] == (
        "An organization can have at most 10 active management keys; revoke one first"
    )
    assert len(await stored_keys(database_url)) == 10
    assert (await client.delete(f"{KEYS}/{keys[3]['id']}", headers=bearer(token))).status_code == 204
    await create_key(client, token, "replacement")
    assert (await client.post(KEYS, json={"name": "again"}, headers=bearer(token))).status_code == 409
    listed = (await client.get(KEYS, headers=bearer(token), params={"limit": 5})).json()
    assert len(listed["items"]) == 5 and listed["next_cursor"]
    rest = (
        await client.get(KEYS, headers=bearer(token), params={"limit": 50, "cursor": listed["next_cursor"]})
    ).json()
    assert len(listed["items"]) + len(rest["items"]) == 11  # revoked ones are listed too
    assert listed["items"][0]["name"] == "replacement"  # newest first


async def test_concurrent_creations_never_pass_the_limit(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    token = (await enterprise_owner(client, "gus", database_url, tmp_path))["token"]
    for i in range(8):
        await create_key(client, token, f"key {i}")
    answers = await asyncio.gather(
        *(client.post(KEYS, json={"name": f"racer {i}"}, headers=bearer(token)) for i in range(6))
    )
    assert sorted(r.status_code for r in answers) == [201, 201, 409, 409, 409, 409]
    assert len([k for k in await stored_keys(database_url) if k.revoked_at is None]) == 10


async def test_revoked_key_is_refused_on_the_next_request(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    token = (await enterprise_owner(client, "hal", database_url, tmp_path))["token"]
    created = await create_key(client, token)
    other = await create_key(client, token, "other")
    assert (await client.get(MANAGE, headers=bearer(created["key"]))).status_code == 200
    assert (await client.delete(f"{KEYS}/{created['id']}", headers=bearer(token))).status_code == 204
    for headers in (bearer(created["key"]), key_header(created["key"])):
        r = await client.get(MANAGE, headers=headers)
        assert r.status_code == 401 and "revoked" in r.json()["detail"]
    assert (await client.get(MANAGE, headers=key_header(other["key"]))).status_code == 200
    items = {k["id"]: k for k in (await client.get(KEYS, headers=bearer(token))).json()["items"]}
    revoked_at = items[created["id"]]["revoked_at"]
    assert revoked_at is not None and items[other["id"]]["revoked_at"] is None
    # revoking again is harmless and keeps the first time
    assert (await client.delete(f"{KEYS}/{created['id']}", headers=bearer(token))).status_code == 204
    items = {k["id"]: k for k in (await client.get(KEYS, headers=bearer(token))).json()["items"]}
    assert items[created["id"]]["revoked_at"] == revoked_at
    assert (await client.delete(f"{KEYS}/no-such-key", headers=bearer(token))).status_code == 404


async def test_suspended_organization_keys_are_refused(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    owner = await enterprise_owner(client, "ivy", database_url, tmp_path)
    key = (await create_key(client, owner["token"]))["key"]
    r = await asyncio.to_thread(
        cli, "orgs", "suspend", owner["organization"]["id"], database_url=database_url, data_dir=tmp_path
    )
    assert r.returncode == 0, r.stderr
    refused = await client.get(MANAGE, headers=bearer(key))
    assert refused.status_code == 403 and "suspended" in refused.json()["detail"]
    r = await asyncio.to_thread(
        cli, "orgs", "activate", owner["organization"]["id"], database_url=database_url, data_dir=tmp_path
    )
    assert r.returncode == 0, r.stderr
    assert (await client.get(MANAGE, headers=bearer(key))).status_code == 200


async def test_a_key_never_reaches_another_organization(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    alice = await enterprise_owner(client, "jay", database_url, tmp_path)
    bob = await enterprise_owner(client, "kim", database_url, tmp_path)
    alice_site = (await client.post("/api/v1/projects", json=SHOP, headers=bearer(alice["token"]))).json()
    bob_site = (await client.post("/api/v1/projects", json=SHOP, headers=bearer(bob["token"]))).json()
    alice_key = await create_key(client, alice["token"])
    bob_key = await create_key(client, bob["token"])

    # the organization header cannot move a key to another organization
    headers = {**bearer(alice_key["key"]), "X-Organization-Id": bob["organization"]["id"]}
    listed = await client.get(MANAGE, headers=headers)
    assert [s["id"] for s in listed.json()["projects"]] == [alice_site["id"]]
    assert (await client.get(f"{MANAGE}/{bob_site['id']}", headers=headers)).status_code == 404
    assert (await client.get(f"{MANAGE}/{alice_site['id']}", headers=headers)).status_code == 200

    # nor can an owner see or revoke another organization's keys
    alice_keys = (await client.get(KEYS, headers=bearer(alice["token"]))).json()["items"]
    assert [k["id"] for k in alice_keys] == [alice_key["id"]]
    r = await client.delete(f"{KEYS}/{bob_key['id']}", headers=bearer(alice["token"]))
    assert r.status_code == 404
    assert (await client.get(MANAGE, headers=bearer(bob_key["key"]))).status_code == 200


async def test_bad_names_are_400_and_write_nothing(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    token = (await enterprise_owner(client, "lea", database_url, tmp_path))["token"]
    for body in ({"name": ""}, {"name": "   "}, {"name": "x" * 121}, {}, {"name": "ok", "key": "seg_mgmt_x"}):
        r = await client.post(KEYS, json=body, headers=bearer(token))
        assert r.status_code == 400, (body, r.text)
        assert len(r.json()["errors"]) == 1
    assert await stored_keys(database_url) == []


async def test_keys_work_only_on_the_management_api(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    owner = await enterprise_owner(client, "max", database_url, tmp_path)
    token = owner["token"]
    site = (await client.post("/api/v1/projects", json=SHOP, headers=bearer(token))).json()
    key = (await create_key(client, token))["key"]

    # a key elsewhere in the API is a 403, whichever header carries it, whatever the method
    for method, path in (
        ("GET", "/api/v1/projects"),
        ("GET", f"/api/v1/projects/{site['id']}"),
        ("POST", "/api/v1/projects"),
        ("GET", "/api/v1/me"),
    ):
        for headers in (bearer(key), key_header(key)):
            body = {"name": "Blog", "url": "https://blog.example.com"} if method == "POST" else None
            r = await client.request(method, path, headers=headers, json=body)
            assert r.status_code == 403, (method, path, r.text)
            assert r.json()["detail"] == OUTSIDE
    # an unknown key is refused there too, before it is even looked up
    r = await client.get("/api/v1/projects", headers=bearer("seg_mgmt_not-a-key"))
    assert r.status_code == 403 and r.json()["detail"] == OUTSIDE
    assert [s["id"] for s in (await client.get(MANAGE, headers=bearer(key))).json()["projects"]] == [
        site["id"]
    ]

    # the Management API takes management keys only: a session token (header or cookie) is a 401
    for path in (MANAGE, f"{MANAGE}/{site['id']}"):
        r = await client.get(path, headers=bearer(token))
        assert r.status_code == 401 and r.json()["detail"] == NEEDS_KEY, r.text
    r = await client.get(MANAGE, headers={"Cookie": f"segmently_session={token}"})
    assert r.status_code == 401 and r.json()["detail"] == NEEDS_KEY
    r = await client.get(MANAGE)
    assert r.status_code == 401 and r.json()["detail"] == NEEDS_KEY
    r = await client.get(MANAGE, headers=bearer("seg_mgmt_not-a-key"))
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


async def test_a_downgrade_stops_existing_keys_at_once(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    owner = await enterprise_owner(client, "ned", database_url, tmp_path)
    org_id = owner["organization"]["id"]
    created = await create_key(client, owner["token"])
    assert (await client.get(MANAGE, headers=bearer(created["key"]))).status_code == 200

    await set_plan(org_id, "business", database_url, tmp_path)
    for headers in (bearer(created["key"]), key_header(created["key"])):
        r = await client.get(MANAGE, headers=headers)
        assert r.status_code == 402, r.text
        assert "Management API" in r.json()["detail"] and "Enterprise" in r.json()["detail"]
    # the owner can still review and revoke keys on the lower plan
    listed = (await client.get(KEYS, headers=bearer(owner["token"]))).json()["items"]
    assert [k["id"] for k in listed] == [created["id"]] and listed[0]["revoked_at"] is None

    await set_plan(org_id, "enterprise", database_url, tmp_path)
    assert (await client.get(MANAGE, headers=bearer(created["key"]))).status_code == 200


async def test_last_used_at_is_set_on_first_use_and_written_at_most_once_a_minute(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    token = (await enterprise_owner(client, "oli", database_url, tmp_path))["token"]
    created = await create_key(client, token)
    unused = await create_key(client, token, "unused")
    [stored] = [k for k in await stored_keys(database_url) if k.id == created["id"]]
    assert stored.last_used_at is None

    assert (await client.get(MANAGE, headers=key_header(created["key"]))).status_code == 200
    items = {k["id"]: k for k in (await client.get(KEYS, headers=bearer(token))).json()["items"]}
    first = items[created["id"]]["last_used_at"]
    assert first is not None and items[unused["id"]]["last_used_at"] is None

    # used again within the minute: not written again
    assert (await client.get(MANAGE, headers=key_header(created["key"]))).status_code == 200
    items = {k["id"]: k for k in (await client.get(KEYS, headers=bearer(token))).json()["items"]}
    assert items[created["id"]]["last_used_at"] == first

    # a minute later it is
    await age_last_use(database_url, created["id"], dt.timedelta(seconds=61))
    assert (await client.get(MANAGE, headers=key_header(created["key"]))).status_code == 200
    items = {k["id"]: k for k in (await client.get(KEYS, headers=bearer(token))).json()["items"]}
    later = items[created["id"]]["last_used_at"]
    assert dt.datetime.fromisoformat(later) > dt.datetime.fromisoformat(first)


async def age_last_use(database_url: str, key_id: str, by: dt.timedelta) -> None:
    """Move a key's ``last_used_at`` back in time."""
    db = Database(database_url)
    try:
        async with db.session() as session:
            key = await session.get(ManagementKey, key_id)
            assert key is not None and key.last_used_at is not None
            key.last_used_at = key.last_used_at - by
    finally:
        await db.dispose()
