"""What customer sites and the experiments API take: refused clearly (4xx) rather than failing later.

A NUL in a public input, a goal id longer than the conversions table holds, a cross-domain URL
where the snippet compares bare host names: each used to pass the API and fail on PostgreSQL (a
500) or in the browser.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from segmently.db.engine import Database
from segmently.db.models import Experiment, Site
from tests.core.events.test_ingest import rows
from tests.core.experiments.test_experiments import hero, owner_site
from tests.core.experiments.test_public_api import live

pytestmark = pytest.mark.usefixtures("backend")
BATCH = "/api/v1/events/batch"
CONFIG = "/api/v1/sdk/config"


def fields(r: httpx.Response) -> list[str]:
    return [e["field"] for e in r.json()["errors"]]


async def written(database_url: str) -> dict[str, int]:
    """Rows of what the public endpoints write."""
    tables = ("events", "experiment_visitors", "experiment_conversions")
    return {t: (await rows(database_url, f"SELECT count(*) FROM {t}"))[0][0] for t in tables}


async def stored_before_the_fix(database_url: str, experiment_id: str, **columns: Any) -> None:
    """Write an experiment's columns as an older version stored them, and serve a new config."""
    db = Database(database_url)
    try:
        async with db.session() as s:
            experiment = await s.get(Experiment, experiment_id)
            assert experiment is not None
            for name, value in columns.items():
                setattr(experiment, name, value)
            site = await s.get(Site, experiment.site_id)
            assert site is not None
            site.config_version += 1
    finally:
        await db.dispose()


# NUL in public inputs ---------------------------------------------------------------------------


async def test_a_site_key_with_a_nul_is_an_unknown_key_and_nothing_is_written(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    await live(client, h, site)
    one = {"events": [{"event_name": "page_view", "visitor_id": "v"}]}
    for r in (
        await client.post(f"{BATCH}?api_key=seg_live_%00", json=one),
        await client.post(BATCH, json={**one, "api_key": "seg_live_\x00"}),
        await client.post(f"{BATCH}?api_key={site['api_key']}%00", json=one),
        await client.get(f"{CONFIG}?api_key=seg_live_%00"),
    ):
        assert r.status_code == 401, (r.request.url, r.status_code, r.text)
        assert r.json()["detail"] == "Unknown site API key"
    assert await written(database_url) == {"events": 0, "experiment_visitors": 0, "experiment_conversions": 0}
    # the site's own key still works
    ok = await client.post(BATCH, json=one, headers={"X-API-Key": site["api_key"]})
    assert ok.status_code == 202, ok.text


async def test_a_nul_in_a_preview_a_visitor_id_or_a_slug_is_a_400_naming_it(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)
    key = {"X-API-Key": site["api_key"]}
    preview = await client.get(CONFIG, params={"preview": f"{exp['slug']}\x00:control"}, headers=key)
    assert preview.status_code == 400 and fields(preview) == ["preview"], preview.text
    assert "NUL" in preview.json()["detail"]
    page = {"url": "https://shop.example.com/"}
    visitor = await client.post(
        f"/api/v1/experiments/{exp['slug']}/assign",
        json={"visitor_id": "v\x00", "targeting_data": page},
        headers=key,
    )
    assert visitor.status_code == 400 and fields(visitor) == ["visitor_id"], visitor.text
    slug = await client.post(
        f"/api/v1/experiments/{exp['slug']}%00/assign",
        json={"visitor_id": "v", "targeting_data": page},
        headers=key,
    )
    assert slug.status_code == 400 and fields(slug) == ["slug"], slug.text
    assert await written(database_url) == {"events": 0, "experiment_visitors": 0, "experiment_conversions": 0}
    # the same requests without the NUL are served
    assert (
        await client.get(CONFIG, params={"preview": f"{exp['slug']}:control"}, headers=key)
    ).status_code == 200
    assigned = await client.post(
        f"/api/v1/experiments/{exp['slug']}/assign",
        json={"visitor_id": "v", "targeting_data": page},
        headers=key,
    )
    assert assigned.status_code == 200 and assigned.json()["in_experiment"] is True


# goal and funnel ids -----------------------------------------------------------------------------

PURCHASE = {"type": "custom_event", "name": "Purchase", "primary": True, "event_name": "purchase"}
STEPS = [{"label": "Cart", "url": "/cart"}, {"label": "Paid", "url": "/paid"}]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"goals": [{**PURCHASE, "id": "purchase-completed-" + "x" * 46}]}, "goals[0].id"),  # 65
        ({"funnels": [{"name": "Checkout", "steps": STEPS, "id": "f" * 65}]}, "funnels[0].id"),
        ({"goals": [{**PURCHASE, "id": "purchase\x00"}]}, "goals[0].id"),
    ],
)
async def test_a_goal_or_funnel_id_the_conversions_cannot_be_stored_under_is_refused(
    client: httpx.AsyncClient, database_url: str, change: dict[str, Any], field: str
) -> None:
    h, site = await owner_site(client, database_url)
    r = await client.post(f"/api/v1/projects/{site['id']}/experiments", json=hero(**change), headers=h)
    assert r.status_code == 400 and fields(r) == [field], r.text
    assert "64" in r.json()["detail"]
    listed = await client.get(f"/api/v1/projects/{site['id']}/experiments", headers=h)
    assert listed.json()["items"] == []


async def test_a_64_character_goal_id_counts_conversions_on_every_database(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    goal_id = "purchase-completed-" + "x" * 45  # 64
    exp = await live(
        client, h, site, goals=[{**PURCHASE, "id": goal_id}], funnels=[{"name": "Checkout", "steps": STEPS}]
    )
    assert exp["goals"][0]["id"] == goal_id
    assert len(exp["funnels"][0]["id"]) <= 64  # made by the server
    events = [
        {"event_name": "assignment", "visitor_id": "v1", "event_id": "a1",
         "experiment_id": exp["id"], "variant_id": exp["variants"][0]["id"]},
        {"event_name": "purchase", "visitor_id": "v1", "event_id": "c1"},
    ]  # fmt: skip
    r = await client.post(BATCH, json={"events": events}, headers={"X-API-Key": site["api_key"]})
    assert r.status_code == 202, r.text
    got = await rows(
        database_url, "SELECT goal_id FROM experiment_conversions WHERE experiment_id = :e", e=exp["id"]
    )
    assert [x[0] for x in got] == [goal_id]


async def test_an_experiment_stored_with_a_long_goal_id_still_opens_and_its_edit_names_the_id(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    exp = (await client.post(f"/api/v1/projects/{site['id']}/experiments", json=hero(), headers=h)).json()
    long_id = "g" * 80
    await stored_before_the_fix(
        database_url, exp["id"], goals={"goals": [{**PURCHASE, "id": long_id}], "funnels": []}
    )
    url = f"/api/v1/experiments/{exp['id']}"
    opened = await client.get(url, headers=h)
    assert opened.status_code == 200 and opened.json()["goals"][0]["id"] == long_id
    renamed = await client.patch(url, json={"name": "Renamed"}, headers=h)
    assert renamed.status_code == 400 and fields(renamed) == ["goals[0].id"], renamed.text
    fixed = await client.patch(url, json={"goals": [PURCHASE]}, headers=h)  # the server makes an id
    assert fixed.status_code == 200 and len(fixed.json()["goals"][0]["id"]) <= 64, fixed.text


# cross-domain hosts ------------------------------------------------------------------------------


async def test_an_experiment_cross_domain_url_is_saved_and_served_as_its_host(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    entries = [
        "https://Checkout.Example.com/",
        "checkout.example.com.",
        "PAY.example.com",
        "//pay.example.com:8443",
    ]
    exp = await live(client, h, site, advanced={"cross_domain": entries})
    assert exp["advanced"]["cross_domain"] == ["checkout.example.com", "pay.example.com"]
    got = await client.get(f"/api/v1/experiments/{exp['id']}", headers=h)
    assert got.json()["advanced"]["cross_domain"] == ["checkout.example.com", "pay.example.com"]
    cfg = (await client.get(CONFIG, headers={"X-API-Key": site["api_key"]})).json()
    # the snippet compares link hosts with these: bare, lower-case host names
    assert cfg["experiments"][0]["cross_domain"] == ["checkout.example.com", "pay.example.com"]
    assert cfg["settings"]["cross_domain"] == ["checkout.example.com", "pay.example.com"]
    assert cfg["settings"]["cookie_domains"] == ["example.com"]


async def test_a_cross_domain_url_stored_before_the_fix_is_served_as_its_host(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site, advanced={"cross_domain": ["checkout.example.com"]})
    raw = ["https://Checkout.Example.co.uk/", "HTTPS://checkout.example.co.uk./cart", "Pay.Example.com"]
    await stored_before_the_fix(database_url, exp["id"], advanced={**exp["advanced"], "cross_domain": raw})
    cfg = (await client.get(CONFIG, headers={"X-API-Key": site["api_key"]})).json()
    assert cfg["experiments"][0]["cross_domain"] == ["checkout.example.co.uk", "pay.example.com"]
    assert cfg["settings"]["cross_domain"] == ["checkout.example.co.uk", "pay.example.com"]
    assert cfg["settings"]["cookie_domains"] == ["example.com", "example.co.uk"]


@pytest.mark.parametrize("entry", ["http://[::1", "https:///path", "checkout.example.com/"])
async def test_a_cross_domain_entry_without_a_host_name_is_refused(
    client: httpx.AsyncClient, database_url: str, entry: str
) -> None:
    h, site = await owner_site(client, database_url)
    r = await client.post(
        f"/api/v1/projects/{site['id']}/experiments", json=hero(advanced={"cross_domain": [entry]}), headers=h
    )
    assert r.status_code == 400 and fields(r) == ["advanced.cross_domain[0]"], r.text
