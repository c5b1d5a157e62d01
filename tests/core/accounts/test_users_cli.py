"""``segmently users suspend|activate|delete``: the real command against the database of a running server."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import httpx
import pytest

from segmently.db.engine import Database
from segmently.db.models import Membership
from tests.core.accounts.test_auth import PASSWORD, bearer, signup
from tests.core.sites.test_sites import segmently

pytestmark = pytest.mark.usefixtures("backend")


async def users(*args: str, database_url: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """``segmently users …`` in a subprocess, off the event loop the server runs in."""
    return await asyncio.to_thread(segmently, "users", *args, database_url=database_url, data_dir=data_dir)


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def test_suspended_user_is_refused_at_once_until_activated(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    token = (await signup(client, "alice"))["token"]
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 200

    r = await users("suspend", "  Alice@Example.COM ", database_url=database_url, data_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "alice@example.com" in r.stdout and "suspended" in r.stdout
    me = await client.get("/api/v1/me", headers=bearer(token))
    assert me.status_code == 403 and me.json()["detail"] == "Your account is suspended"
    refused = await login(client, "alice@example.com")
    assert refused.status_code == 403 and refused.json()["detail"] == "Your account is suspended"
    wrong = await login(client, "alice@example.com", "not-her-password")
    assert wrong.status_code == 401  # the password is checked first: no hint without it

    r = await users("activate", "alice@example.com", database_url=database_url, data_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 200  # same token
    again = await login(client, "ALICE@example.com")
    assert again.status_code == 200
    assert (await client.get("/api/v1/me", headers=bearer(again.json()["token"]))).status_code == 200


async def test_deleted_user_answers_like_an_unknown_account(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    token = (await signup(client, "bob"))["token"]
    second = (await login(client, "bob@example.com")).json()["token"]

    r = await users("delete", "BOB@example.com", database_url=database_url, data_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "bob@example.com" in r.stdout and "deleted" in r.stdout
    for t in (token, second):
        gone = await client.get("/api/v1/me", headers=bearer(t))
        assert gone.status_code == 401
    right = await login(client, "bob@example.com")
    wrong = await login(client, "bob@example.com", "not-his-password")
    unknown = await login(client, "nobody@example.com")
    assert right.status_code == wrong.status_code == unknown.status_code == 401
    assert right.json() == wrong.json() == unknown.json()

    # deleting again changes nothing; a deleted account is neither suspended nor reactivated
    r = await users("delete", "bob@example.com", database_url=database_url, data_dir=tmp_path)
    assert r.returncode == 0 and "already deleted" in r.stdout, r.stderr
    for command in ("activate", "suspend"):
        r = await users(command, "bob@example.com", database_url=database_url, data_dir=tmp_path)
        assert r.returncode == 2 and "deleted" in r.stderr, (command, r.stdout, r.stderr)
    assert (await login(client, "bob@example.com")).json() == unknown.json()


async def test_the_only_owner_of_a_team_cannot_be_deleted(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    owner = await signup(client, "carol")
    member = await signup(client, "dave")
    db = Database(database_url)
    try:
        async with db.session() as s:
            s.add(
                Membership(
                    organization_id=owner["organization"]["id"], user_id=member["user"]["id"], role="member"
                )
            )
    finally:
        await db.dispose()

    r = await users("delete", "carol@example.com", database_url=database_url, data_dir=tmp_path)
    assert r.returncode == 2, r.stdout
    assert "transfer ownership first" in r.stderr and "carol org" in r.stderr
    assert (await client.get("/api/v1/me", headers=bearer(owner["token"]))).status_code == 200
    assert (await login(client, "carol@example.com")).status_code == 200

    # dave owns an organization of his own without other members: he can go
    r = await users("delete", "dave@example.com", database_url=database_url, data_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (await client.get("/api/v1/me", headers=bearer(member["token"]))).status_code == 401
    # with her only member deleted, carol's team is just her
    r = await users("delete", "carol@example.com", database_url=database_url, data_dir=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (await client.get("/api/v1/me", headers=bearer(owner["token"]))).status_code == 401


async def test_unknown_email_is_an_error(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    await signup(client, "erin")
    for command in ("suspend", "activate", "delete"):
        r = await users(command, "nobody@example.com", database_url=database_url, data_dir=tmp_path)
        assert r.returncode == 2, (command, r.stdout)
        assert "no user with email 'nobody@example.com'" in r.stderr, r.stderr
    assert (await login(client, "erin@example.com")).status_code == 200
