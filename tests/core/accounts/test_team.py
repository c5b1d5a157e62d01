"""Team: invitations in three acceptance states, seats, roles, removal rules, ownership, organizations."""

from __future__ import annotations

import asyncio
import datetime as dt
import re

import httpx
import pytest
from segmently_dummy import plugin as dummy
from sqlalchemy import update

from segmently.db.engine import Database
from segmently.db.models import Invitation, Membership, Organization, User
from segmently.domain.accounts import team as rules
from segmently.domain.accounts.auth import Actor, Role
from tests.conftest import Inbox
from tests.core.accounts.test_auth import PASSWORD, bearer, signup

pytestmark = pytest.mark.usefixtures("backend")


async def db_update(database_url: str, stmt) -> None:  # type: ignore[no-untyped-def]
    db = Database(database_url)
    try:
        async with db.session() as s:
            await s.execute(stmt)
    finally:
        await db.dispose()


async def set_plan(database_url: str, org_id: str, plan: str) -> None:
    await db_update(database_url, update(Organization).where(Organization.id == org_id).values(plan=plan))


def token_from(inbox: Inbox, address: str) -> str:
    mails = inbox.to(address)
    assert mails, f"no mail to {address}"
    match = re.search(r"/invitations/([A-Za-z0-9_-]{40,})", Inbox.body(mails[-1]))
    assert match, Inbox.body(mails[-1])
    return match.group(1)


async def domain_events(kind: str, count: int) -> list:  # type: ignore[type-arg]
    for _ in range(100):
        found = [e for h, e in dummy.RECORDED if h == "on_domain_event" and e.event == kind]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    return found


async def test_new_user_accepts_by_signing_up(
    client: httpx.AsyncClient, smtp: tuple[Inbox, int], database_url: str
) -> None:
    inbox, _ = smtp
    owner = await signup(client, "alice")
    h = bearer(owner["token"])
    refused = await client.post(
        "/api/v1/organization/invitations", json={"email": "bob@example.com"}, headers=h
    )
    assert refused.status_code == 402  # Free: just you
    assert "0/0" in refused.json()["detail"] and "Professional" in refused.json()["detail"]
    await set_plan(database_url, owner["organization"]["id"], "professional")

    r = await client.post(
        "/api/v1/organization/invitations", json={"email": "Bob@Example.com", "role": "admin"}, headers=h
    )
    assert r.status_code == 201 and r.json()["status"] == "pending"
    mail = inbox.to("bob@example.com")[-1]
    assert "alice org" in mail["Subject"] and "Admin" in Inbox.body(mail)
    token = token_from(inbox, "bob@example.com")
    preview = (await client.get(f"/api/v1/invitations/{token}")).json()
    assert preview["organization_name"] == "alice org" and preview["role"] == "admin"
    assert preview["account_exists"] is False and preview["inviter_name"] == "Alice"

    # the seat is taken by the pending invitation
    more = await client.post("/api/v1/organization/invitations", json={"email": "x@example.com"}, headers=h)
    assert more.status_code == 402 and "1/1" in more.json()["detail"]

    joined = await client.post(
        "/api/v1/auth/signup",
        json={"email": "bob@example.com", "password": PASSWORD, "name": "Bob", "invitation_token": token},
    )
    assert joined.status_code == 201
    assert joined.json()["organization"]["id"] == owner["organization"]["id"]
    assert joined.json()["organization"]["role"] == "admin"
    me = (await client.get("/api/v1/me", headers=bearer(joined.json()["token"]))).json()
    assert [o["id"] for o in me["organizations"]] == [
        owner["organization"]["id"]
    ]  # no organization of his own
    reuse = await client.post(
        "/api/v1/auth/signup",
        json={"email": "bob2@example.com", "password": PASSWORD, "name": "Bob", "invitation_token": token},
    )
    assert reuse.status_code == 400 and "already used" in reuse.json()["detail"]
    detail = (await client.get("/api/v1/organization", headers=h)).json()
    assert detail["usage"]["members"]["label"] == "1/1 team members"
    assert detail["usage"]["sites"]["label"] == "0/1 sites"
    assert [e.data["email"] for e in await domain_events("member.joined", 1)] == ["bob@example.com"]
    assert len(await domain_events("member.invited", 1)) == 1


async def test_existing_user_accepts_after_signing_in(
    client: httpx.AsyncClient, smtp: tuple[Inbox, int], database_url: str
) -> None:
    inbox, _ = smtp
    owner = await signup(client, "alice")
    carol = await signup(client, "carol")
    await set_plan(database_url, owner["organization"]["id"], "business")
    await client.post(
        "/api/v1/organization/invitations",
        json={"email": "carol@example.com"},
        headers=bearer(owner["token"]),
    )
    token = token_from(inbox, "carol@example.com")
    assert (await client.get(f"/api/v1/invitations/{token}")).json()["account_exists"] is True
    assert (await client.post(f"/api/v1/invitations/{token}/accept")).status_code == 401  # sign in first
    dave = await signup(client, "dave")
    wrong = await client.post(f"/api/v1/invitations/{token}/accept", headers=bearer(dave["token"]))
    assert wrong.status_code == 403 and "carol@example.com" in wrong.json()["detail"]
    login = await client.post("/api/v1/auth/login", json={"email": "carol@example.com", "password": PASSWORD})
    ok = await client.post(f"/api/v1/invitations/{token}/accept", headers=bearer(login.json()["token"]))
    assert ok.status_code == 200 and ok.json()["role"] == "member"
    me = (await client.get("/api/v1/me", headers=bearer(carol["token"]))).json()
    assert me["organization"]["id"] == owner["organization"]["id"]  # switched to the team she joined
    assert len(me["organizations"]) == 2
    own = await client.get(
        "/api/v1/me", headers={**bearer(carol["token"]), "X-Organization-Id": carol["organization"]["id"]}
    )
    assert own.json()["organization"]["id"] == carol["organization"]["id"]
    foreign = await client.get(
        "/api/v1/me", headers={**bearer(dave["token"]), "X-Organization-Id": owner["organization"]["id"]}
    )
    assert foreign.status_code == 403


async def test_cancelled_and_expired_invitations_are_refused(
    client: httpx.AsyncClient, smtp: tuple[Inbox, int], database_url: str
) -> None:
    inbox, _ = smtp
    owner = await signup(client, "alice")
    h = bearer(owner["token"])
    await set_plan(database_url, owner["organization"]["id"], "enterprise")
    first = (
        await client.post("/api/v1/organization/invitations", json={"email": "e@example.com"}, headers=h)
    ).json()
    token = token_from(inbox, "e@example.com")
    assert (
        await client.delete(f"/api/v1/organization/invitations/{first['id']}", headers=h)
    ).status_code == 204
    r = await client.get(f"/api/v1/invitations/{token}")
    assert r.status_code == 400 and "cancelled" in r.json()["detail"]
    await client.post("/api/v1/organization/invitations", json={"email": "e@example.com"}, headers=h)
    token = token_from(inbox, "e@example.com")
    await db_update(
        database_url, update(Invitation).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    )
    r = await client.get(f"/api/v1/invitations/{token}")
    assert r.status_code == 400 and "expired" in r.json()["detail"]
    assert (await client.get("/api/v1/invitations/not-a-token")).status_code == 400
    dup = await client.post(
        "/api/v1/organization/invitations", json={"email": "alice@example.com"}, headers=h
    )
    assert dup.status_code == 409  # already a member


async def join(
    client: httpx.AsyncClient, inbox: Inbox, owner_token: str, tag: str, role: str = "member"
) -> dict:  # type: ignore[type-arg]
    await client.post(
        "/api/v1/organization/invitations",
        json={"email": f"{tag}@example.com", "role": role},
        headers=bearer(owner_token),
    )
    r = await client.post(
        "/api/v1/auth/signup",
        json={
            "email": f"{tag}@example.com",
            "password": PASSWORD,
            "name": tag.title(),
            "invitation_token": token_from(inbox, f"{tag}@example.com"),
        },
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_removal_rules_and_suspension(
    client: httpx.AsyncClient, smtp: tuple[Inbox, int], database_url: str
) -> None:
    inbox, _ = smtp
    owner = await signup(client, "alice")
    h = bearer(owner["token"])
    await set_plan(database_url, owner["organization"]["id"], "enterprise")
    bob = await join(client, inbox, owner["token"], "bob", "admin")
    carl = await join(client, inbox, owner["token"], "carl")
    team = {m["email"]: m for m in (await client.get("/api/v1/organization/members", headers=h)).json()}
    assert team["alice@example.com"]["role"] == "owner"
    assert team["alice@example.com"]["remove_reason"] == "You"
    assert team["carl@example.com"]["removable"] is True
    as_admin = {
        m["email"]: m
        for m in (await client.get("/api/v1/organization/members", headers=bearer(bob["token"]))).json()
    }
    assert as_admin["carl@example.com"]["remove_reason"] == "Owner only"

    own = await client.delete(f"/api/v1/organization/members/{team['alice@example.com']['id']}", headers=h)
    assert own.status_code == 403 and "You" in own.json()["detail"]
    by_admin = await client.delete(
        f"/api/v1/organization/members/{team['carl@example.com']['id']}", headers=bearer(bob["token"])
    )
    assert by_admin.status_code == 403

    r = await client.post(f"/api/v1/organization/members/{team['carl@example.com']['id']}/suspend", headers=h)
    assert r.status_code == 204
    refused = await client.get("/api/v1/projects", headers=bearer(carl["token"]))
    assert refused.status_code == 403 and "suspended" in refused.json()["detail"]
    await client.post(f"/api/v1/organization/members/{team['carl@example.com']['id']}/activate", headers=h)
    assert (await client.get("/api/v1/projects", headers=bearer(carl["token"]))).status_code == 200
    self_suspend = await client.post(
        f"/api/v1/organization/members/{team['alice@example.com']['id']}/suspend", headers=h
    )
    assert self_suspend.status_code == 403

    gone = await client.delete(f"/api/v1/organization/members/{team['carl@example.com']['id']}", headers=h)
    assert gone.status_code == 204
    in_alpha = {**bearer(carl["token"]), "X-Organization-Id": owner["organization"]["id"]}
    assert (await client.get("/api/v1/projects", headers=in_alpha)).status_code == 403
    assert [e.data["email"] for e in await domain_events("member.removed", 1)] == ["carl@example.com"]
    # everyone belongs to an organization: carl, removed from his only one, gets his own
    login = await client.post("/api/v1/auth/login", json={"email": "carl@example.com", "password": PASSWORD})
    assert login.status_code == 200
    assert login.json()["organization"]["name"] == "Carl's organization"
    assert login.json()["organization"]["role"] == "owner"


@pytest.mark.one_backend  # no database: the rules are plain functions
def test_role_status_and_transfer_blockers_give_the_reason_an_action_is_refused() -> None:
    org = Organization(id="org", name="Alpha", plan="enterprise")
    users = {tag: User(id=tag, email=f"{tag}@example.com", name=tag.title()) for tag in ("ann", "bob", "cy")}
    ann = Membership(id="m-ann", organization_id="org", user_id="ann", role="owner", status="active")
    bob = Membership(id="m-bob", organization_id="org", user_id="bob", role="admin", status="active")
    cy = Membership(id="m-cy", organization_id="org", user_id="cy", role="member", status="suspended")

    def actor(tag: str, role: Role) -> Actor:
        return Actor(user=users[tag], organization=org, role=role, via="token")

    owner, admin = actor("ann", "owner"), actor("bob", "admin")
    assert [rules.role_blocker(owner, m) for m in (ann, bob, cy)] == [
        "Transfer ownership to change the owner's role",
        None,
        None,
    ]
    assert [rules.status_blocker(owner, m) for m in (ann, bob, cy)] == [
        "You cannot suspend yourself",
        None,
        None,  # a suspended member can be activated
    ]
    assert [rules.transfer_blocker(owner, m) for m in (ann, bob, cy)] == [
        "You already own this organization",
        None,
        "Only an active member can become the owner",
    ]
    for blocker in (rules.role_blocker, rules.status_blocker, rules.transfer_blocker):
        assert [blocker(admin, m) for m in (ann, bob, cy)] == ["Owner only"] * 3, blocker.__name__
    assert rules.status_blocker(actor("bob", "owner"), ann) == "The owner cannot be suspended"
    assert rules.role_blocker(actor("cy", "member"), bob) == "Owner only"


async def test_the_api_refuses_roles_suspensions_and_transfers_with_the_blockers_reasons(
    client: httpx.AsyncClient, smtp: tuple[Inbox, int], database_url: str
) -> None:
    inbox, _ = smtp
    owner = await signup(client, "alice")
    h = bearer(owner["token"])
    await set_plan(database_url, owner["organization"]["id"], "enterprise")
    bob = await join(client, inbox, owner["token"], "bob", "admin")
    await join(client, inbox, owner["token"], "carl")
    team = {m["email"]: m for m in (await client.get("/api/v1/organization/members", headers=h)).json()}
    alice_id, carl_id = team["alice@example.com"]["id"], team["carl@example.com"]["id"]

    own_role = await client.patch(
        f"/api/v1/organization/members/{alice_id}", json={"role": "admin"}, headers=h
    )
    assert own_role.status_code == 403
    assert own_role.json()["detail"] == "Transfer ownership to change the owner's role"
    own_status = await client.post(f"/api/v1/organization/members/{alice_id}/suspend", headers=h)
    assert own_status.status_code == 403 and own_status.json()["detail"] == "You cannot suspend yourself"
    to_self = await client.post(
        "/api/v1/organization/transfer-ownership", json={"membership_id": alice_id}, headers=h
    )
    assert to_self.status_code == 400
    assert to_self.json()["errors"] == [
        {"field": "membership_id", "message": "You already own this organization"}
    ]
    await client.post(f"/api/v1/organization/members/{carl_id}/suspend", headers=h)
    to_suspended = await client.post(
        "/api/v1/organization/transfer-ownership", json={"membership_id": carl_id}, headers=h
    )
    assert to_suspended.status_code == 400
    assert to_suspended.json()["detail"] == "membership_id: Only an active member can become the owner"
    by_admin = await client.patch(
        f"/api/v1/organization/members/{carl_id}", json={"role": "admin"}, headers=bearer(bob["token"])
    )
    assert by_admin.status_code == 403
    assert by_admin.json()["detail"] == "Only the owner of alice org can do this"  # the route guard
    roles = {
        m["email"]: (m["role"], m["status"])
        for m in (await client.get("/api/v1/organization/members", headers=h)).json()
    }
    assert roles == {
        "alice@example.com": ("owner", "active"),
        "bob@example.com": ("admin", "active"),
        "carl@example.com": ("member", "suspended"),
    }


async def test_transfer_ownership(
    client: httpx.AsyncClient, smtp: tuple[Inbox, int], database_url: str
) -> None:
    inbox, _ = smtp
    owner = await signup(client, "alice")
    h = bearer(owner["token"])
    await set_plan(database_url, owner["organization"]["id"], "business")
    bob = await join(client, inbox, owner["token"], "bob")
    team = {m["email"]: m for m in (await client.get("/api/v1/organization/members", headers=h)).json()}
    refused = await client.post(
        "/api/v1/organization/transfer-ownership",
        json={"membership_id": team["alice@example.com"]["id"]},
        headers=bearer(bob["token"]),
    )
    assert refused.status_code == 403
    r = await client.post(
        "/api/v1/organization/transfer-ownership",
        json={"membership_id": team["bob@example.com"]["id"]},
        headers=h,
    )
    assert r.status_code == 204
    team = {
        m["email"]: m["role"] for m in (await client.get("/api/v1/organization/members", headers=h)).json()
    }
    assert team == {"alice@example.com": "admin", "bob@example.com": "owner"}
    again = await client.post(
        "/api/v1/organization/transfer-ownership", json={"membership_id": "whatever"}, headers=h
    )
    assert again.status_code == 403  # alice is no longer the owner
    events = await domain_events("team.ownership_transferred", 1)
    assert events[0].organization_id == owner["organization"]["id"]


async def test_enterprise_users_create_and_switch_organizations(
    client: httpx.AsyncClient, database_url: str
) -> None:
    owner = await signup(client, "alice")
    h = bearer(owner["token"])
    refused = await client.post("/api/v1/organizations", json={"name": "Client B"}, headers=h)
    assert refused.status_code == 402 and "Enterprise" in refused.json()["detail"]
    await set_plan(database_url, owner["organization"]["id"], "enterprise")
    created = await client.post("/api/v1/organizations", json={"name": "Client B"}, headers=h)
    assert created.status_code == 201
    new_id = created.json()["id"]
    assert (await client.get("/api/v1/me", headers=h)).json()["organization"]["id"] == new_id
    listed = [o["name"] for o in (await client.get("/api/v1/organizations", headers=h)).json()]
    assert listed == ["alice org", "Client B"]
    back = await client.post(f"/api/v1/organizations/{owner['organization']['id']}/switch", headers=h)
    assert back.status_code == 200
    assert (await client.get("/api/v1/me", headers=h)).json()["organization"]["id"] == owner["organization"][
        "id"
    ]
    other = await signup(client, "zed")
    assert (
        await client.post(f"/api/v1/organizations/{other['organization']['id']}/switch", headers=h)
    ).status_code == 404
