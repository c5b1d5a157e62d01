"""Every route in the OpenAPI schema, called as every kind of caller: the expected status, and no leaks.

Routes added later are covered automatically: the test walks the served schema. A
route whose path parameter it cannot fill fails the test until ``PATH_VALUES`` learns it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import insert, update

from segmently.db.models import Alert, Membership
from segmently.domain.accounts.auth import ROLE_RANK
from segmently.http.access import ROLE_OPT, access_of
from tests.conftest import Inbox
from tests.core.accounts.test_auth import PASSWORD, bearer, signup
from tests.core.accounts.test_team import db_update, join, set_plan, token_from

pytestmark = pytest.mark.usefixtures("backend")
SECRET_SITE_NAME = "Alpha secret storefront"


@dataclass
class Caller:
    name: str
    headers: dict[str, str]
    role: str | None = None  # role in organization A, for signed-in members
    email: str | None = None


@dataclass
class World:
    callers: list[Caller] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)  # path parameter -> an object of organization A
    secrets: list[str] = field(default_factory=list)  # strings only organization A may ever see


async def build_world(client: httpx.AsyncClient, inbox: Inbox, database_url: str) -> World:
    world = World()
    owner = await signup(client, "alpha-owner")
    org_a = owner["organization"]["id"]
    await set_plan(database_url, org_a, "enterprise")
    admin = await join(client, inbox, owner["token"], "alpha-admin", "admin")
    member = await join(client, inbox, owner["token"], "alpha-member")
    suspended = await join(client, inbox, owner["token"], "alpha-suspended")
    victim = await join(client, inbox, owner["token"], "alpha-victim")
    other = await signup(client, "beta-owner")
    await set_plan(database_url, other["organization"]["id"], "enterprise")
    h = bearer(owner["token"])
    site = (
        await client.post(
            "/api/v1/projects", json={"name": SECRET_SITE_NAME, "url": "https://alpha.example.com"}, headers=h
        )
    ).json()
    await client.post(
        "/api/v1/organization/invitations", json={"email": "alpha-pending@example.com"}, headers=h
    )
    invitation = (await client.get("/api/v1/organization/invitations", headers=h)).json()
    pending = next(i for i in invitation if i["status"] == "pending")
    keys = "/api/v1/organization/management-keys"
    victim_key = (await client.post(keys, json={"name": "victim"}, headers=h)).json()
    revoked = (await client.post(keys, json={"name": "revoked"}, headers=h)).json()
    assert (await client.delete(f"{keys}/{revoked['id']}", headers=h)).status_code == 204
    experiment = (
        await client.post(
            f"/api/v1/projects/{site['id']}/experiments",
            json={
                "name": "Alpha secret test",
                "variants": [
                    {"key": "control", "name": "C", "weight": 50},
                    {"key": "b", "name": "B", "weight": 50},
                ],
            },
            headers=h,
        )
    ).json()
    flag = (
        await client.post(
            f"/api/v1/projects/{site['id']}/flags",
            json={"key": "alpha-secret-flag", "name": "Flag"},
            headers=h,
        )
    ).json()
    members = {
        m["email"]: m["id"] for m in (await client.get("/api/v1/organization/members", headers=h)).json()
    }
    await db_update(
        database_url,
        update(Membership)
        .where(Membership.id == members["alpha-suspended@example.com"])
        .values(status="suspended"),
    )

    world.values = {
        "project_id": site["id"],
        "membership_id": members["alpha-victim@example.com"],
        "invitation_id": pending["id"],
        "key_id": victim_key["id"],
        "organization_id": org_a,
        "token": token_from(inbox, "alpha-pending@example.com"),
        "flag_id": flag["id"],
        "experiment_id": experiment["id"],
        "visitor_id": "alpha-secret-visitor",
        "alert_id": "alpha-secret-alert",
    }
    await db_update(
        database_url,
        insert(Alert).values(
            id=world.values["alert_id"],
            organization_id=org_a,
            experiment_id=experiment["id"],
            alert_type="winner_detected",
            message="Alpha secret test: B wins",
            data={},
        ),
    )
    event = {"event_name": "page_view", "visitor_id": world.values["visitor_id"]}
    await client.post(
        "/api/v1/events/batch", json={"events": [event]}, headers={"X-API-Key": site["api_key"]}
    )
    world.secrets += [experiment["id"], world.values["visitor_id"], world.values["alert_id"]]
    world.secrets += [
        site["id"],
        site["api_key"],
        SECRET_SITE_NAME,
        pending["id"],
        victim_key["id"],
        victim_key["key"],
        members["alpha-victim@example.com"],
        "alpha-member@example.com",
        flag["id"],
        "alpha-secret-flag",
    ]
    world.callers = [
        Caller("anonymous", {}),
        Caller("other organization", bearer(other["token"]), email="beta-owner@example.com"),
        Caller("member", bearer(member["token"]), "member", "alpha-member@example.com"),
        Caller("admin", bearer(admin["token"]), "admin", "alpha-admin@example.com"),
        Caller("owner", bearer(owner["token"]), "owner", "alpha-owner@example.com"),
        Caller("suspended user", bearer(suspended["token"])),
        Caller("revoked key", bearer(revoked["key"])),
    ]
    del victim
    return world


def handler_for(app: Litestar, path: str, method: str) -> Any:
    for route in app.routes:
        if route.path_format == path:
            for handler in getattr(route, "route_handlers", []):
                if method.upper() in handler.http_methods:
                    return handler
    raise AssertionError(f"no handler for {method} {path}")


def expected(caller: Caller, access: str, role: str, path: str) -> set[int] | None:
    """The statuses a caller may get; None means "any answer below 500 that leaks nothing"."""
    if access == "public":
        return None
    if access == "site" or caller.name == "anonymous":
        return {401}
    if path.startswith("/api/v1/manage"):
        return {401}  # dashboard tokens and revoked keys alike
    if caller.name == "revoked key":
        return {403}  # keys only work on the Management API, revoked or not
    if caller.name == "suspended user":
        return {403}
    if caller.role is None:  # a member of another organization acting in their own
        return None
    if ROLE_RANK[caller.role] < ROLE_RANK[role]:
        return {403}
    return None


async def relogin(client: httpx.AsyncClient, caller: Caller) -> None:
    """Routes like logout or password change end a session: sign in again for the next call."""
    if caller.email and (await client.get("/api/v1/me", headers=caller.headers)).status_code == 401:
        r = await client.post("/api/v1/auth/login", json={"email": caller.email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        caller.headers = bearer(r.json()["token"])


async def test_every_route_for_every_caller(
    client: httpx.AsyncClient, app: Litestar, smtp: tuple[Inbox, int], database_url: str
) -> None:
    world = await build_world(client, smtp[0], database_url)
    schema = (await client.get("/schema/openapi.json")).json()
    failures: list[str] = []
    calls = 0
    for path, operations in sorted(schema["paths"].items()):
        for method in sorted(operations):
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            handler = handler_for(app, path, method)
            access, role = access_of(handler), handler.opt.get(ROLE_OPT, "member")
            params = re.findall(r"{(\w+)}", path)
            unknown = [p for p in params if p not in world.values]
            assert not unknown, (
                f"{method.upper()} {path}: the matrix cannot fill {unknown}; teach PATH_VALUES"
            )
            url = path
            for p in params:
                url = url.replace("{" + p + "}", world.values[p])
            for caller in world.callers:
                await relogin(client, caller)
                body = {} if method in ("post", "put", "patch") else None
                r = await client.request(method.upper(), url, json=body, headers=caller.headers)
                calls += 1
                where = f"{method.upper()} {path} as {caller.name}: {r.status_code}"
                if r.status_code >= 500:
                    failures.append(f"{where} (server error) {r.text[:200]}")
                    continue
                allowed = expected(caller, access, role, path)
                if allowed is not None and r.status_code not in allowed:
                    failures.append(f"{where}, expected {sorted(allowed)}: {r.text[:200]}")
                if allowed is None and access != "public" and r.status_code == 401:
                    failures.append(f"{where}: a signed-in caller was refused as anonymous: {r.text[:200]}")
                if caller.role is None and access != "public":
                    leaked = [s for s in world.secrets if s in r.text]
                    if leaked:
                        failures.append(f"{where} leaks {leaked}")
                if r.status_code in (401, 403) and allowed is not None:
                    assert r.json()["detail"], where  # every refusal says why
    assert calls > 150
    assert not failures, "\n".join(failures)
