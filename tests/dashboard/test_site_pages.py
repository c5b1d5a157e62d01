"""The Sites page: the list, "+ New Site" with field errors, one create per form, plan limits, tenancy."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.core.accounts.test_team import set_plan
from tests.dashboard.support import field_error, post_form, sign_up, text

pytestmark = pytest.mark.usefixtures("backend")


def form_key(html: str) -> str:
    match = re.search(r'name="idempotency_key" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


async def sites_of(client: httpx.AsyncClient) -> list[dict[str, str]]:
    return (await client.get("/api/v1/projects")).json()["items"]  # type: ignore[no-any-return]


async def test_new_site_is_created_and_shows_its_api_key(client: httpx.AsyncClient) -> None:
    await sign_up(client, "ann")
    page = await client.get("/sites")
    assert "No sites yet" in page.text
    assert "0/1 sites" in text(page.text)
    r = await post_form(
        client,
        "/sites",
        {"name": "My shop", "url": "https://shop.example/", "idempotency_key": form_key(page.text)},
    )
    assert r.status_code == 303
    [site] = await sites_of(client)
    assert r.headers["location"] == f"/sites/{site['id']}?notice=created"
    shown = await client.get(r.headers["location"])
    assert "Site created." in text(shown.text)
    assert site["api_key"] in shown.text
    assert f'data-api-key="{site["api_key"]}"&gt;&lt;/script&gt;' in shown.text  # the install tag, as text
    listed = await client.get("/sites")
    assert "My shop" in listed.text
    assert "https://shop.example" in listed.text
    assert "1/1 sites" in text(listed.text)


async def test_bad_fields_are_shown_next_to_each_field_and_nothing_is_created(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client, "bob")
    page = await client.get("/sites")
    r = await post_form(
        client, "/sites", {"name": "", "url": "ftp://files.example", "idempotency_key": form_key(page.text)}
    )
    assert r.status_code == 400
    assert field_error(r.text, "name") == "Site name is required"
    assert field_error(r.text, "url") == "Site URL must be a web address starting with http:// or https://"
    assert 'value="ftp://files.example"' in r.text  # what was typed stays
    assert 'aria-invalid="true"' in r.text
    assert await sites_of(client) == []


async def test_a_double_submitted_form_creates_one_site(client: httpx.AsyncClient) -> None:
    await sign_up(client, "cat")
    await set_plan_of(client, "enterprise")
    key = form_key((await client.get("/sites")).text)
    form = {"name": "Twice", "url": "https://twice.example", "idempotency_key": key}
    first = await post_form(client, "/sites", form)
    second = await post_form(client, "/sites", form)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert [s["name"] for s in await sites_of(client)] == ["Twice"]
    # a fresh form (a new key) makes another
    again = await post_form(
        client, "/sites", {**form, "idempotency_key": form_key((await client.get("/sites")).text)}
    )
    assert again.status_code == 303
    assert len(await sites_of(client)) == 2


async def test_a_double_submit_at_the_plan_limit_still_answers_with_the_first_site(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client, "dan")
    key = form_key((await client.get("/sites")).text)
    form = {"name": "Only", "url": "https://only.example", "idempotency_key": key}
    first = await post_form(client, "/sites", form)
    second = await post_form(client, "/sites", form)  # free plan: one site, and this is that one
    assert second.status_code == 303
    assert second.headers["location"] == first.headers["location"]


async def test_at_the_site_limit_the_form_becomes_an_upgrade_prompt(client: httpx.AsyncClient) -> None:
    await sign_up(client, "eve")
    key = form_key((await client.get("/sites")).text)
    await post_form(client, "/sites", {"name": "One", "url": "https://one.example", "idempotency_key": key})
    page = await client.get("/sites")
    words = text(page.text)
    assert "1/1 sites" in words
    assert "Upgrade to" in words
    assert 'action="/sites"' not in page.text
    r = await post_form(
        client, "/sites", {"name": "Two", "url": "https://two.example", "idempotency_key": "k2"}
    )
    assert r.status_code == 400
    assert "Upgrade to" in text(r.text)
    assert len(await sites_of(client)) == 1


async def test_another_organizations_site_is_not_found(client: httpx.AsyncClient) -> None:
    await sign_up(client, "fay")
    key = form_key((await client.get("/sites")).text)
    r = await post_form(
        client, "/sites", {"name": "Fay secret shop", "url": "https://fay.example", "idempotency_key": key}
    )
    site_url = r.headers["location"].split("?")[0]
    client.cookies.clear()
    await sign_up(client, "gus")
    r = await client.get(site_url)
    assert r.status_code == 404
    assert "Fay secret shop" not in r.text
    assert "No such site" in text(r.text)
    listed = await client.get("/sites")
    assert "Fay secret shop" not in listed.text


async def set_plan_of(client: httpx.AsyncClient, plan: str) -> None:
    org = (await client.get("/api/v1/me")).json()["organization"]["id"]
    database_url = client._segmently_database_url  # type: ignore[attr-defined]
    await set_plan(database_url, org, plan)


@pytest.fixture(autouse=True)
def _remember_database(client: httpx.AsyncClient, database_url: str) -> None:
    client._segmently_database_url = database_url  # type: ignore[attr-defined]
