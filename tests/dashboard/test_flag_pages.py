"""The Feature Flags page: list with snippets, create with field errors, rollout, kill switch, delete."""

from __future__ import annotations

import re
from html import unescape

import httpx
import pytest

from tests.dashboard.support import field_error, post_form, text
from tests.dashboard.test_site_detail_page import Owner, owner

pytestmark = pytest.mark.usefixtures("backend")


def new_flag(
    key: str, rollout: str = "100", status: str = "active", name: str = "Checkout"
) -> dict[str, str]:
    return {"name": name, "key": key, "rollout_percentage": rollout, "status": status}


async def served(o: Owner, key: str, visitor: str = "visitor-1") -> bool | None:
    """What the snippet's ``GET /api/v1/flags`` serves this visitor for ``key``."""
    r = await o.api.get(
        "/api/v1/flags", params={"visitor_id": visitor}, headers={"X-API-Key": o.site["api_key"]}
    )
    assert r.status_code == 200, r.text
    flags: dict[str, bool] = r.json()["flags"]
    return flags.get(key)


async def flag_id(o: Owner, key: str) -> str:
    r = await o.api.get(f"/api/v1/projects/{o.site['id']}/flags", params={"status": "all"}, headers=o.h)
    return next(f["id"] for f in r.json()["items"] if f["key"] == key)


def row(html: str, key: str) -> str:
    match = re.search(rf'<tr id="flag-{re.escape(key)}".*?</tr>', html, re.S)
    assert match, html
    return text(match.group(0))


async def test_a_created_flag_is_listed_with_rollout_status_and_snippet(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "nora", plan="professional")
    r = await post_form(client, f"{o.page}/flags", new_flag("new-checkout-ui", rollout="25"))
    assert r.status_code == 303
    assert r.headers["location"] == f"{o.page}/flags?notice=created"
    page = await client.get(r.headers["location"])
    assert "Flag created." in text(page.text)
    shown = row(page.text, "new-checkout-ui")
    assert "Checkout" in shown and "Active" in shown
    assert "Segmently.isEnabled('new-checkout-ui')" in unescape(page.text)
    assert 'value="25"' in page.text


async def test_bad_fields_show_next_to_their_inputs_and_a_taken_key_under_the_key(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "omar", plan="professional")
    r = await post_form(client, f"{o.page}/flags", new_flag("Bad Key!", rollout="150", name=""))
    assert r.status_code == 400
    assert field_error(r.text, "key") == "Flag key has the wrong format"
    assert field_error(r.text, "rollout_percentage") == "Rollout (%) must be between 0 and 100"
    assert field_error(r.text, "name") == "Flag name is required"
    assert 'value="Bad Key!"' in r.text  # what was typed stays

    words = await post_form(client, f"{o.page}/flags", new_flag("ok-key", rollout="half"))
    assert field_error(words.text, "rollout_percentage") == "Rollout (%) must be a number between 0 and 100"

    assert (await post_form(client, f"{o.page}/flags", new_flag("dup"))).status_code == 303
    taken = await post_form(client, f"{o.page}/flags", new_flag("dup"))
    assert taken.status_code == 409
    assert field_error(taken.text, "key") == "'dup' is taken on this site"


async def test_a_double_submitted_form_creates_one_flag(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "pia", plan="professional")
    form = {**new_flag("once"), "idempotency_key": "f" * 32}
    first = await post_form(client, f"{o.page}/flags", form)
    second = await post_form(client, f"{o.page}/flags", form)
    assert first.status_code == second.status_code == 303
    assert second.headers["location"] == first.headers["location"]
    r = await api.get(f"/api/v1/projects/{o.site['id']}/flags", headers=o.h)
    assert [f["key"] for f in r.json()["items"]] == ["once"]


async def test_the_kill_switch_and_rollout_change_what_visitors_are_served(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "quinn", plan="professional")
    await post_form(client, f"{o.page}/flags", new_flag("dark-mode", rollout="100"))
    fid = await flag_id(o, "dark-mode")
    assert await served(o, "dark-mode") is True

    killed = await post_form(client, f"{o.page}/flags/{fid}/kill", {})
    assert killed.headers["location"] == f"{o.page}/flags?notice=killed"
    assert await served(o, "dark-mode") is False
    page = await client.get(killed.headers["location"])
    assert "Inactive" in row(page.text, "dark-mode") and "Activate" in row(page.text, "dark-mode")

    await post_form(client, f"{o.page}/flags/{fid}/activate", {})
    assert await served(o, "dark-mode") is True

    await post_form(client, f"{o.page}/flags/{fid}/rollout", {"rollout_percentage": "0"})
    assert await served(o, "dark-mode") is False
    bad = await post_form(client, f"{o.page}/flags/{fid}/rollout", {"rollout_percentage": "101"})
    assert bad.status_code == 400
    assert "Rollout must be between 0 and 100" in text(bad.text)
    shown = f'id="rollout-{fid}" name="rollout_percentage" inputmode="decimal" value="0" aria-invalid="true"'
    assert shown in bad.text


async def test_delete_asks_for_confirmation_and_frees_the_key(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "rita", plan="professional")
    await post_form(client, f"{o.page}/flags", new_flag("old-banner"))
    fid = await flag_id(o, "old-banner")
    page = await client.get(f"{o.page}/flags")
    assert "Delete old-banner for good?" in text(page.text)
    r = await post_form(client, f"{o.page}/flags/{fid}/delete", {})
    assert r.headers["location"] == f"{o.page}/flags?notice=deleted"
    assert "old-banner" not in (await client.get(r.headers["location"])).text
    assert await served(o, "old-banner") is None
    assert (await post_form(client, f"{o.page}/flags", new_flag("old-banner"))).status_code == 303


async def test_below_professional_flags_are_listed_but_not_created_or_changed(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "sam", plan="free")
    page = await client.get(f"{o.page}/flags")
    assert page.status_code == 200
    assert "Feature flags need the Professional plan; you are on Free." in text(page.text)
    assert "Create Flag" not in page.text
    refused = await post_form(client, f"{o.page}/flags", new_flag("nope"))
    assert refused.status_code == 400
    assert "Feature flags need the Professional plan" in text(refused.text)
    r = await api.get(f"/api/v1/projects/{o.site['id']}/flags", headers=o.h)
    assert r.json()["items"] == []


async def test_another_organizations_site_and_flags_are_not_found(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    other = await owner(client, api, database_url, "tom", plan="professional")
    created = await api.post(
        f"/api/v1/projects/{other.site['id']}/flags",
        json={"key": "secret", "name": "Secret"},
        headers=other.h,
    )
    assert created.status_code == 201, created.text
    fid = created.json()["id"]
    mine = await owner(client, api, database_url, "uma", plan="professional")  # the client is now Uma
    assert (await client.get(f"{other.page}/flags")).status_code == 404
    assert (await post_form(client, f"{other.page}/flags/{fid}/kill", {})).status_code == 404
    assert (await post_form(client, f"{mine.page}/flags/{fid}/kill", {})).status_code == 404  # another site
    assert (await post_form(client, f"{other.page}/flags/{fid}/delete", {})).status_code == 404
