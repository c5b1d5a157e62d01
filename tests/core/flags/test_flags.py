"""Feature flags: plan gate, CRUD, keys, tenancy, roles, archiving, If-Match and Idempotency-Key."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import Inbox
from tests.core.accounts.test_auth import bearer, signup
from tests.core.accounts.test_team import join, set_plan

pytestmark = pytest.mark.usefixtures("backend")
SHOP = {"name": "Shop", "url": "https://shop.example.com"}
FLAG = {"key": "new-checkout-ui", "name": "New checkout UI"}
FIELDS = {
    "id",
    "key",
    "name",
    "description",
    "status",
    "rollout_percentage",
    "version",
    "created_at",
    "updated_at",
}


async def org_with_site(
    client: httpx.AsyncClient, database_url: str, tag: str, plan: str = "professional"
) -> tuple[dict[str, str], str, dict]:  # type: ignore[type-arg]
    """Sign up ``tag`` on ``plan`` with one site; returns auth headers, the site id and the signup body."""
    body = await signup(client, tag)
    await set_plan(database_url, body["organization"]["id"], plan)
    h = bearer(body["token"])
    site = await client.post("/api/v1/projects", json=SHOP, headers=h)
    assert site.status_code == 201, site.text
    return h, site.json()["id"], body


async def flags_of(client: httpx.AsyncClient, h: dict[str, str], site_id: str, **params: str) -> list[dict]:  # type: ignore[type-arg]
    r = await client.get(f"/api/v1/projects/{site_id}/flags", headers=h, params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


async def test_free_plan_gets_402_naming_professional_and_nothing_is_written(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site_id, _ = await org_with_site(client, database_url, "free", plan="free")
    r = await client.post(f"/api/v1/projects/{site_id}/flags", json=FLAG, headers=h)
    assert r.status_code == 402
    assert "Professional" in r.json()["detail"]
    assert await flags_of(client, h, site_id, status="all") == []


async def test_downgraded_org_can_read_and_delete_but_not_change(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site_id, body = await org_with_site(client, database_url, "down")
    flag = (await client.post(f"/api/v1/projects/{site_id}/flags", json=FLAG, headers=h)).json()
    await set_plan(database_url, body["organization"]["id"], "free")
    r = await client.patch(f"/api/v1/flags/{flag['id']}", json={"status": "active"}, headers=h)
    assert r.status_code == 402
    got = await client.get(f"/api/v1/flags/{flag['id']}", headers=h)
    assert got.status_code == 200 and got.json()["status"] == "inactive"
    assert (await client.delete(f"/api/v1/flags/{flag['id']}", headers=h)).status_code == 204


async def test_create_list_get_patch_delete(client: httpx.AsyncClient, database_url: str) -> None:
    h, site_id, _ = await org_with_site(client, database_url, "crud")
    r = await client.post(f"/api/v1/projects/{site_id}/flags", json=FLAG, headers=h)
    assert r.status_code == 201, r.text
    flag = r.json()
    assert set(flag) == FIELDS
    assert flag["key"] == "new-checkout-ui" and flag["name"] == "New checkout UI"
    assert (flag["status"], flag["rollout_percentage"], flag["version"], flag["description"]) == (
        "inactive",
        0,
        1,
        "",
    )
    assert r.headers["etag"] == '"1"'
    second = (
        await client.post(
            f"/api/v1/projects/{site_id}/flags",
            json={
                "key": "dark_mode",
                "name": "Dark mode",
                "description": "Night theme",
                "status": "active",
                "rollout_percentage": 12.5,
            },
            headers=h,
        )
    ).json()
    assert (second["status"], second["rollout_percentage"], second["description"]) == (
        "active",
        12.5,
        "Night theme",
    )
    assert [f["id"] for f in await flags_of(client, h, site_id)] == [second["id"], flag["id"]]  # newest first

    got = await client.get(f"/api/v1/flags/{flag['id']}", headers=h)
    assert got.status_code == 200 and got.json() == flag and got.headers["etag"] == '"1"'

    changed = await client.patch(
        f"/api/v1/flags/{flag['id']}", json={"status": "active", "rollout_percentage": 50}, headers=h
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["status"], body["rollout_percentage"], body["version"]) == ("active", 50, 2)
    assert body["name"] == flag["name"] and body["created_at"] == flag["created_at"]
    assert body["updated_at"] > flag["updated_at"]
    assert changed.headers["etag"] == '"2"'
    # the kill switch: back to inactive, a new version
    killed = await client.patch(f"/api/v1/flags/{flag['id']}", json={"status": "inactive"}, headers=h)
    assert (killed.json()["status"], killed.json()["version"]) == ("inactive", 3)
    # nothing to change: nothing written, the version stays
    same = await client.patch(f"/api/v1/flags/{flag['id']}", json={"status": "inactive"}, headers=h)
    assert same.status_code == 200 and same.json()["version"] == 3

    assert (await client.delete(f"/api/v1/flags/{flag['id']}", headers=h)).status_code == 204
    assert (await client.get(f"/api/v1/flags/{flag['id']}", headers=h)).status_code == 404
    assert [f["id"] for f in await flags_of(client, h, site_id)] == [second["id"]]


async def test_list_paginates(client: httpx.AsyncClient, database_url: str) -> None:
    h, site_id, _ = await org_with_site(client, database_url, "pages")
    ids = []
    for i in range(3):
        r = await client.post(
            f"/api/v1/projects/{site_id}/flags", json={"key": f"f{i}", "name": f"F{i}"}, headers=h
        )
        ids.append(r.json()["id"])
    first = (await client.get(f"/api/v1/projects/{site_id}/flags", params={"limit": 2}, headers=h)).json()
    assert [f["id"] for f in first["items"]] == [ids[2], ids[1]] and first["next_cursor"]
    rest = (
        await client.get(
            f"/api/v1/projects/{site_id}/flags",
            params={"limit": 2, "cursor": first["next_cursor"]},
            headers=h,
        )
    ).json()
    assert [f["id"] for f in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    bad = await client.get(f"/api/v1/projects/{site_id}/flags", params={"status": "deleted"}, headers=h)
    assert bad.status_code == 400


async def test_duplicate_key_is_409_naming_the_key_per_site(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site_id, _ = await org_with_site(client, database_url, "dupes", plan="enterprise")
    assert (await client.post(f"/api/v1/projects/{site_id}/flags", json=FLAG, headers=h)).status_code == 201
    r = await client.post(f"/api/v1/projects/{site_id}/flags", json={**FLAG, "name": "Other"}, headers=h)
    assert r.status_code == 409
    assert "new-checkout-ui" in r.json()["detail"] and r.json()["errors"][0]["field"] == "key"
    assert len(await flags_of(client, h, site_id)) == 1
    other_site = (
        await client.post(
            "/api/v1/projects", json={"name": "Blog", "url": "https://blog.example.com"}, headers=h
        )
    ).json()["id"]
    assert (
        await client.post(f"/api/v1/projects/{other_site}/flags", json=FLAG, headers=h)
    ).status_code == 201


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_bad_input_is_400_naming_the_field_and_writes_nothing(
    client: httpx.AsyncClient, database_url: str, method: str
) -> None:
    h, site_id, _ = await org_with_site(client, database_url, "bad")
    flag = (await client.post(f"/api/v1/projects/{site_id}/flags", json=FLAG, headers=h)).json()
    cases: list[tuple[dict, str]] = [  # type: ignore[type-arg]
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"rollout_percentage": 101}, "rollout_percentage"),
        ({"rollout_percentage": -1}, "rollout_percentage"),
        ({"status": "on"}, "status"),
        ({"description": "d" * 2001}, "description"),
        ({"colour": "red"}, "colour"),
    ]
    if method == "POST":
        cases += [
            ({"key": "New Checkout"}, "key"),
            ({"key": "-leading-dash"}, "key"),
            ({"key": "UPPER"}, "key"),
            ({"key": "a" * 101}, "key"),
            ({"key": ""}, "key"),
            ({"status": "archived"}, "status"),  # a flag is born active or inactive
        ]
    else:
        cases.append(({"key": "renamed"}, "key"))  # the key never changes
    for change, field in cases:
        if method == "POST":
            r = await client.post(
                f"/api/v1/projects/{site_id}/flags", json={**FLAG, "key": "fresh", **change}, headers=h
            )
        else:
            r = await client.patch(f"/api/v1/flags/{flag['id']}", json=change, headers=h)
        assert r.status_code == 400, (change, r.status_code, r.text)
        assert r.json()["errors"][0]["field"] == field, (change, r.json())
    assert await flags_of(client, h, site_id, status="all") == [flag]


async def test_another_organization_gets_404_and_changes_nothing(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site_id, _ = await org_with_site(client, database_url, "alice")
    bob, bob_site, _ = await org_with_site(client, database_url, "bob")
    flag = (await client.post(f"/api/v1/projects/{site_id}/flags", json=FLAG, headers=h)).json()
    for method, path, body in [
        ("GET", f"/api/v1/flags/{flag['id']}", None),
        ("PATCH", f"/api/v1/flags/{flag['id']}", {"status": "active"}),
        ("DELETE", f"/api/v1/flags/{flag['id']}", None),
        ("GET", f"/api/v1/projects/{site_id}/flags", None),
        ("POST", f"/api/v1/projects/{site_id}/flags", {"key": "mine", "name": "Mine"}),
    ]:
        r = await client.request(method, path, json=body, headers=bob)
        assert r.status_code == 404, (method, path, r.status_code)
        assert flag["id"] not in r.text
    assert await flags_of(client, h, site_id, status="all") == [flag]
    assert await flags_of(client, bob, bob_site, status="all") == []


async def test_members_create_and_edit_only_admins_delete(
    client: httpx.AsyncClient, smtp: tuple[Inbox, int], database_url: str
) -> None:
    _, site_id, owner = await org_with_site(client, database_url, "boss", plan="enterprise")
    member = bearer((await join(client, smtp[0], owner["token"], "worker"))["token"])
    admin = bearer((await join(client, smtp[0], owner["token"], "chief", "admin"))["token"])
    r = await client.post(f"/api/v1/projects/{site_id}/flags", json=FLAG, headers=member)
    assert r.status_code == 201
    flag = r.json()
    assert (
        await client.patch(f"/api/v1/flags/{flag['id']}", json={"status": "active"}, headers=member)
    ).json()["version"] == 2
    refused = await client.delete(f"/api/v1/flags/{flag['id']}", headers=member)
    assert refused.status_code == 403 and refused.json()["detail"]
    assert (await client.get(f"/api/v1/flags/{flag['id']}", headers=member)).status_code == 200
    assert (await client.delete(f"/api/v1/flags/{flag['id']}", headers=admin)).status_code == 204


async def test_archived_is_final_and_listed_only_on_request(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site_id, _ = await org_with_site(client, database_url, "archivist")
    flag = (await client.post(f"/api/v1/projects/{site_id}/flags", json=FLAG, headers=h)).json()
    live = (
        await client.post(
            f"/api/v1/projects/{site_id}/flags", json={"key": "live", "name": "Live"}, headers=h
        )
    ).json()
    archived = await client.patch(f"/api/v1/flags/{flag['id']}", json={"status": "archived"}, headers=h)
    assert archived.status_code == 200 and archived.json()["status"] == "archived"
    assert [f["id"] for f in await flags_of(client, h, site_id)] == [live["id"]]
    assert [f["id"] for f in await flags_of(client, h, site_id, status="archived")] == [flag["id"]]
    assert [f["id"] for f in await flags_of(client, h, site_id, status="all")] == [live["id"], flag["id"]]
    assert [f["id"] for f in await flags_of(client, h, site_id, status="inactive")] == [live["id"]]
    for change in ({"status": "active"}, {"name": "Revived"}):
        r = await client.patch(f"/api/v1/flags/{flag['id']}", json=change, headers=h)
        assert r.status_code == 409 and "archived" in r.json()["detail"]
    assert (await client.get(f"/api/v1/flags/{flag['id']}", headers=h)).json()["version"] == 2
    # the key stays taken until an admin deletes the archived flag
    assert (await client.post(f"/api/v1/projects/{site_id}/flags", json=FLAG, headers=h)).status_code == 409
    assert (await client.delete(f"/api/v1/flags/{flag['id']}", headers=h)).status_code == 204
    assert (await client.post(f"/api/v1/projects/{site_id}/flags", json=FLAG, headers=h)).status_code == 201


async def test_if_match_refuses_stale_updates_with_the_current_version(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site_id, _ = await org_with_site(client, database_url, "editor")
    flag = (await client.post(f"/api/v1/projects/{site_id}/flags", json=FLAG, headers=h)).json()
    url = f"/api/v1/flags/{flag['id']}"
    ok = await client.patch(url, json={"name": "Alice's"}, headers={**h, "If-Match": '"1"'})
    assert ok.status_code == 200 and ok.json()["version"] == 2 and ok.headers["etag"] == '"2"'
    stale = await client.patch(url, json={"name": "Bob's"}, headers={**h, "If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.json() == {
        "status_code": 412,
        "detail": stale.json()["detail"],
        "errors": [],
        "current_version": 2,
    }
    assert "changed by someone else" in stale.json()["detail"]
    assert stale.headers["etag"] == '"2"'
    got = (await client.get(url, headers=h)).json()
    assert (got["name"], got["version"]) == ("Alice's", 2)  # nothing overwritten
    # the other spellings of a version
    assert (await client.patch(url, json={"name": "B"}, headers={**h, "If-Match": 'W/"2"'})).json()[
        "version"
    ] == 3
    assert (await client.patch(url, json={"name": "C"}, headers={**h, "If-Match": "3"})).json()[
        "version"
    ] == 4
    assert (await client.patch(url, json={"name": "D"}, headers={**h, "If-Match": '"1", "4"'})).json()[
        "version"
    ] == 5
    assert (await client.patch(url, json={"name": "E"}, headers={**h, "If-Match": "*"})).json()[
        "version"
    ] == 6
    bad = await client.patch(url, json={"name": "F"}, headers={**h, "If-Match": '"abc"'})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "If-Match"
    assert (await client.get(url, headers=h)).json()["name"] == "E"


async def test_idempotency_key_replays_the_first_create(client: httpx.AsyncClient, database_url: str) -> None:
    h, site_id, _ = await org_with_site(client, database_url, "retry")
    url = f"/api/v1/projects/{site_id}/flags"
    keyed = {**h, "Idempotency-Key": "create-checkout-1"}
    first = await client.post(url, json=FLAG, headers=keyed)
    assert first.status_code == 201
    # the same request again, formatted differently: the first answer, not a second flag
    again = await client.post(
        url,
        content=b'{ "name": "New checkout UI",\n "key": "new-checkout-ui" }',
        headers={**keyed, "Content-Type": "application/json"},
    )
    assert again.status_code == 201 and again.json() == first.json()
    assert len(await flags_of(client, h, site_id, status="all")) == 1
    # the same key with another body
    other = await client.post(url, json={"key": "other", "name": "Other"}, headers=keyed)
    assert other.status_code == 422
    assert other.json()["detail"] == "Idempotency-Key reused with a different request"
    assert len(await flags_of(client, h, site_id, status="all")) == 1
    # without a key, a repeat is a duplicate; a new key makes a new flag
    assert (await client.post(url, json=FLAG, headers=h)).status_code == 409
    fresh = await client.post(
        url, json={"key": "other", "name": "Other"}, headers={**h, "Idempotency-Key": "k2"}
    )
    assert fresh.status_code == 201
    too_long = await client.post(
        url, json={"key": "x", "name": "X"}, headers={**h, "Idempotency-Key": "k" * 201}
    )
    assert too_long.status_code == 400 and too_long.json()["errors"][0]["field"] == "Idempotency-Key"
    assert len(await flags_of(client, h, site_id, status="all")) == 2


async def test_idempotency_keys_belong_to_one_organization(
    client: httpx.AsyncClient, database_url: str
) -> None:
    alice, alice_site, _ = await org_with_site(client, database_url, "alice")
    bob, bob_site, _ = await org_with_site(client, database_url, "bob")
    a = await client.post(
        f"/api/v1/projects/{alice_site}/flags", json=FLAG, headers={**alice, "Idempotency-Key": "k"}
    )
    b = await client.post(
        f"/api/v1/projects/{bob_site}/flags", json=FLAG, headers={**bob, "Idempotency-Key": "k"}
    )
    assert a.status_code == b.status_code == 201 and a.json()["id"] != b.json()["id"]


async def test_concurrent_creates_with_one_key_make_one_flag(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site_id, _ = await org_with_site(client, database_url, "racer")
    keyed = {**h, "Idempotency-Key": "race"}
    url = f"/api/v1/projects/{site_id}/flags"
    answers = await asyncio.gather(*(client.post(url, json=FLAG, headers=keyed) for _ in range(4)))
    assert {r.status_code for r in answers} <= {201, 409}, [r.text for r in answers]
    created = {r.json()["id"] for r in answers if r.status_code == 201}
    assert len(created) == 1
    assert len(await flags_of(client, h, site_id, status="all")) == 1
    assert (await client.post(url, json=FLAG, headers=keyed)).json()["id"] in created
