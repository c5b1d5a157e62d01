"""Sign-up, sign-in, tokens checked against the database, profile and password."""

from __future__ import annotations

import httpx
import jwt
import pytest

from tests.conftest import SECRET

pytestmark = pytest.mark.usefixtures("backend")
PASSWORD = "correct horse battery staple"


async def signup(client: httpx.AsyncClient, tag: str, **extra: str) -> dict:  # type: ignore[type-arg]
    body = {
        "email": f"{tag}@example.com",
        "password": PASSWORD,
        "name": tag.title(),
        "organization": f"{tag} org",
    }
    r = await client.post("/api/v1/auth/signup", json={**body, **extra})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_signup_returns_token_user_and_owned_organization(client: httpx.AsyncClient) -> None:
    body = await signup(client, "alice")
    assert body["user"]["email"] == "alice@example.com"
    assert body["organization"]["name"] == "alice org"
    assert body["organization"]["role"] == "owner"
    assert body["organization"]["plan"] == "free"
    me = await client.get("/api/v1/me", headers=bearer(body["token"]))
    assert me.status_code == 200
    assert me.json()["organization"]["id"] == body["organization"]["id"]
    assert [o["id"] for o in me.json()["organizations"]] == [body["organization"]["id"]]


async def test_duplicate_email_is_409_and_writes_nothing(client: httpx.AsyncClient) -> None:
    await signup(client, "bob")
    r = await client.post(
        "/api/v1/auth/signup",
        json={"email": "BOB@example.com", "password": PASSWORD, "name": "Bob 2", "organization": "other"},
    )
    assert r.status_code == 409
    assert "already exists" in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "password": PASSWORD, "name": "X"}, "email"),
        ({"email": "x@example.com", "password": "short", "name": "X"}, "password"),
        ({"email": "x@example.com", "password": PASSWORD, "name": ""}, "name"),
        ({"email": "x@example.com", "password": PASSWORD, "name": "X", "role": "owner"}, "role"),
    ],
)
async def test_bad_signup_names_the_field(client: httpx.AsyncClient, body: dict, field: str) -> None:  # type: ignore[type-arg]
    r = await client.post("/api/v1/auth/signup", json=body)
    assert r.status_code == 400
    assert [e["field"] for e in r.json()["errors"]] == [field]
    login = await client.post("/api/v1/auth/login", json={"email": "x@example.com", "password": PASSWORD})
    assert login.status_code == 401  # nothing was created


async def test_login_answers_alike_for_wrong_password_and_unknown_account(client: httpx.AsyncClient) -> None:
    await signup(client, "carol")
    wrong = await client.post(
        "/api/v1/auth/login", json={"email": "carol@example.com", "password": "nope-nope"}
    )
    unknown = await client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.com", "password": "nope-nope"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    ok = await client.post("/api/v1/auth/login", json={"email": "Carol@Example.com", "password": PASSWORD})
    assert ok.status_code == 200
    assert (await client.get("/api/v1/me", headers=bearer(ok.json()["token"]))).status_code == 200


async def test_missing_malformed_tampered_and_expired_tokens_are_401(client: httpx.AsyncClient) -> None:
    body = await signup(client, "dave")
    assert (await client.get("/api/v1/me")).status_code == 401
    assert (await client.get("/api/v1/me", headers=bearer("not.a.jwt"))).status_code == 401
    claims = jwt.decode(body["token"], SECRET, algorithms=["HS256"])
    forged = jwt.encode(claims, "another-secret-0123456789abcdef0123456789", algorithm="HS256")
    assert (await client.get("/api/v1/me", headers=bearer(forged))).status_code == 401
    expired = jwt.encode({**claims, "exp": claims["iat"] - 1}, SECRET, algorithm="HS256")
    assert (await client.get("/api/v1/me", headers=bearer(expired))).status_code == 401
    assert claims["exp"] - claims["iat"] == 30 * 24 * 3600


async def test_logout_revokes_the_token(client: httpx.AsyncClient) -> None:
    token = (await signup(client, "erin"))["token"]
    assert (await client.post("/api/v1/auth/logout", headers=bearer(token))).status_code == 204
    r = await client.get("/api/v1/me", headers=bearer(token))
    assert r.status_code == 401


async def test_password_change_needs_the_current_password(client: httpx.AsyncClient) -> None:
    token = (await signup(client, "fay"))["token"]
    r = await client.post(
        "/api/v1/me/password",
        headers=bearer(token),
        json={"current_password": "wrong-password", "new_password": "a new long password"},
    )
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "current_password"
    r = await client.post(
        "/api/v1/me/password",
        headers=bearer(token),
        json={"current_password": PASSWORD, "new_password": "short"},
    )
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "new_password"
    r = await client.post(
        "/api/v1/me/password",
        headers=bearer(token),
        json={"current_password": PASSWORD, "new_password": "a new long password"},
    )
    assert r.status_code == 200
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 401  # old token revoked
    assert (await client.get("/api/v1/me", headers=bearer(r.json()["token"]))).status_code == 200
    login = await client.post(
        "/api/v1/auth/login", json={"email": "fay@example.com", "password": "a new long password"}
    )
    assert login.status_code == 200


async def test_profile_update(client: httpx.AsyncClient) -> None:
    token = (await signup(client, "gus"))["token"]
    await signup(client, "hal")
    r = await client.patch(
        "/api/v1/me", headers=bearer(token), json={"name": "Gus G", "email": "gus2@example.com"}
    )
    assert r.status_code == 200 and r.json()["user"]["name"] == "Gus G"
    taken = await client.patch("/api/v1/me", headers=bearer(token), json={"email": "hal@example.com"})
    assert taken.status_code == 409
