"""Experiments: the wizard's configuration, validation, plan gates, lifecycle, versions."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import msgspec
import pytest
from segmently_dummy import plugin as dummy

from segmently.app import create_app
from tests.conftest import serve_app
from tests.core.accounts.test_auth import bearer, signup
from tests.core.accounts.test_team import set_plan

pytestmark = pytest.mark.usefixtures("backend")


def hero(**over: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": "Homepage Hero Test",
        "variants": [
            {"key": "control", "name": "Control", "weight": 50},
            {
                "key": "variant_b",
                "name": "Variant B",
                "weight": 50,
                "changes": [
                    {"type": "text", "selector": "h1", "text": "Hello"},
                    {"type": "css", "css": "h1{color:green}"},
                ],
            },
        ],
        "targeting": {"url_rules": [{"type": "contains", "value": "/"}], "traffic_percentage": 100},
        "goals": [{"type": "custom_event", "name": "Purchase", "primary": True, "event_name": "conversion"}],
    }
    config.update(over)
    return config


async def owner_site(
    client: httpx.AsyncClient, database_url: str, plan: str = "enterprise", tag: str = "alice"
):  # type: ignore[no-untyped-def]
    body = await signup(client, tag)
    await set_plan(database_url, body["organization"]["id"], plan)
    h = bearer(body["token"])
    site = (
        await client.post(
            "/api/v1/projects", json={"name": "Shop", "url": "https://shop.example.com"}, headers=h
        )
    ).json()
    return h, site


async def test_create_returns_the_contract_shape(client: httpx.AsyncClient, database_url: str) -> None:
    h, site = await owner_site(client, database_url)
    r = await client.post(f"/api/v1/projects/{site['id']}/experiments", json=hero(), headers=h)
    assert r.status_code == 201, r.text
    exp = r.json()
    assert exp["slug"] == "homepage-hero-test" and exp["status"] == "draft"
    assert exp["hash_seed"] == exp["id"]
    assert [(v["key"], v["weight"]) for v in exp["variants"]] == [("control", 50), ("variant_b", 50)]
    assert all(v["id"] for v in exp["variants"])
    assert [c["type"] for c in exp["variants"][1]["changes"]] == ["text", "css"]  # order kept
    assert exp["goals"][0]["id"] and exp["goals"][0]["primary"] is True
    assert r.headers["etag"] == '"1"'
    again = await client.post(f"/api/v1/projects/{site['id']}/experiments", json=hero(), headers=h)
    assert again.json()["slug"] == "homepage-hero-test-2"
    taken = await client.post(
        f"/api/v1/projects/{site['id']}/experiments", json=hero(slug="homepage-hero-test"), headers=h
    )
    assert taken.status_code == 409


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {
                "variants": [
                    {"key": "control", "name": "C", "weight": 60},
                    {"key": "b", "name": "B", "weight": 30},
                ]
            },
            "variants",
        ),
        (
            {
                "variants": [
                    {"key": "b", "name": "B", "weight": 50},
                    {"key": "control", "name": "C", "weight": 50},
                ]
            },
            "variants[0].key",
        ),
        ({"variants": [{"key": "control", "name": "C", "weight": 100}]}, "variants"),
        ({"targeting": {"url_rules": [{"type": "regex", "value": "([a-z"}]}}, "targeting.url_rules[0].value"),
        ({"targeting": {"url_rules": [{"type": "glob", "value": "/x"}]}}, "targeting.url_rules[0].type"),
        ({"targeting": {"countries": ["XX"]}}, "targeting.countries[0]"),
        ({"targeting": {"traffic_percentage": 120}}, "targeting.traffic_percentage"),
        (
            {"audience": {"attribute_rules": [{"key": f"k{i}", "operator": "exists"} for i in range(11)]}},
            "audience.attribute_rules",
        ),
        (
            {"audience": {"attribute_rules": [{"key": "plan", "operator": "matches", "value": "x"}]}},
            "audience.attribute_rules[0].operator",
        ),
        (
            {"audience": {"attribute_rules": [{"key": "plan", "operator": "equals"}]}},
            "audience.attribute_rules[0].value",
        ),
        ({"audience": {"triggers": {"time_seconds": 601}}}, "audience.triggers.time_seconds"),
        ({"audience": {"triggers": {"scroll_percent": 33}}}, "audience.triggers.scroll_percent"),
        ({"goals": [{"type": "click", "name": "Buy"}]}, "goals[0].selector"),
        (
            {
                "goals": [
                    {"type": "page_view", "name": "A", "url": "/a", "primary": True},
                    {"type": "page_view", "name": "B", "url": "/b", "primary": True},
                ]
            },
            "goals",
        ),
        (
            {"advanced": {"start_at": "2026-12-02T00:00:00Z", "end_at": "2026-12-01T00:00:00Z"}},
            "advanced.end_at",
        ),
        ({"advanced": {"cross_domain": ["not a host"]}}, "advanced.cross_domain[0]"),
        ({"activation_delay_ms": -1}, "activation_delay_ms"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_invalid_configuration_names_the_field_and_saves_nothing(
    client: httpx.AsyncClient, database_url: str, change: dict[str, Any], field: str
) -> None:
    h, site = await owner_site(client, database_url)
    r = await client.post(f"/api/v1/projects/{site['id']}/experiments", json=hero(**change), headers=h)
    assert r.status_code == 400, r.text
    assert field in [e["field"] for e in r.json()["errors"]], r.json()
    listed = await client.get(f"/api/v1/projects/{site['id']}/experiments", headers=h)
    assert listed.json()["items"] == []


async def test_plan_gates(client: httpx.AsyncClient, database_url: str) -> None:
    h, site = await owner_site(client, database_url, plan="free")
    url = f"/api/v1/projects/{site['id']}/experiments"
    free = await client.post(url, json=hero(), headers=h)
    assert free.status_code == 402 and "0 experiments" in free.json()["detail"]
    body = (await client.get("/api/v1/me", headers=h)).json()
    await set_plan(database_url, body["organization"]["id"], "professional")
    mvt = {
        "type": "mvt",
        "variants": [],
        "sections": [
            {"name": "Headline", "variations": [{"key": "a", "name": "A"}, {"key": "b", "name": "B"}]}
        ],
    }
    refused = await client.post(url, json=hero(**mvt), headers=h)
    assert refused.status_code == 402 and "Business" in refused.json()["detail"]
    scheduled = await client.post(url, json=hero(advanced={"start_at": "2030-01-01T00:00:00Z"}), headers=h)
    assert scheduled.status_code == 402
    assert (await client.post(url, json=hero(), headers=h)).status_code == 201
    second = await client.post(url, json=hero(name="Another"), headers=h)
    assert second.status_code == 402 and "1/1" in second.json()["detail"]


async def test_lifecycle_and_domain_events(client: httpx.AsyncClient, database_url: str) -> None:
    h, site = await owner_site(client, database_url)
    exp = (await client.post(f"/api/v1/projects/{site['id']}/experiments", json=hero(), headers=h)).json()
    base = f"/api/v1/experiments/{exp['id']}"
    assert (await client.post(f"{base}/pause", headers=h)).status_code == 409  # a draft is not live
    started = await client.post(f"{base}/start", headers=h)
    assert started.status_code == 200 and started.json()["status"] == "live"
    assert started.json()["activated_at"] is not None
    edit_live = await client.patch(base, json={"name": "Renamed"}, headers=h)
    assert edit_live.status_code == 409 and "pause it first" in edit_live.json()["detail"]
    assert (await client.post(f"{base}/pause", headers=h)).json()["status"] == "paused"
    assert (await client.patch(base, json={"name": "Renamed"}, headers=h)).json()["name"] == "Renamed"
    assert (await client.post(f"{base}/resume", headers=h)).json()["status"] == "live"
    assert (await client.post(f"{base}/archive", headers=h)).json()["status"] == "archived"
    assert (await client.post(f"{base}/start", headers=h)).status_code == 409
    assert (await client.post(f"{base}/reinstate", headers=h)).json()["status"] == "draft"
    assert (await client.delete(base, headers=h)).status_code == 204
    assert (await client.get(base, headers=h)).status_code == 404
    wanted = [
        "experiment.created",
        "experiment.started",
        "experiment.paused",
        "experiment.started",
        "experiment.archived",
        "experiment.deleted",
    ]
    for _ in range(100):
        got = [
            e.event
            for h_, e in dummy.RECORDED
            if h_ == "on_domain_event" and e.event.startswith("experiment.")
        ]
        if got == wanted:
            break
        await asyncio.sleep(0.05)
    assert got == wanted


async def test_stale_if_match_is_refused_with_the_current_version(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    exp = (await client.post(f"/api/v1/projects/{site['id']}/experiments", json=hero(), headers=h)).json()
    base = f"/api/v1/experiments/{exp['id']}"
    first = await client.patch(base, json={"description": "mine"}, headers={**h, "If-Match": '"1"'})
    assert first.status_code == 200 and first.json()["version"] == 2 and first.headers["etag"] == '"2"'
    stale = await client.patch(base, json={"description": "theirs"}, headers={**h, "If-Match": '"1"'})
    assert stale.status_code == 412 and stale.json()["current_version"] == 2
    assert (await client.get(base, headers=h)).json()["description"] == "mine"


async def test_variant_ids_survive_edits(client: httpx.AsyncClient, database_url: str) -> None:
    h, site = await owner_site(client, database_url)
    exp = (await client.post(f"/api/v1/projects/{site['id']}/experiments", json=hero(), headers=h)).json()
    ids = {v["key"]: v["id"] for v in exp["variants"]}
    variants = [
        {"key": "control", "name": "Control", "weight": 34},
        {"key": "variant_b", "name": "B", "weight": 33},
        {"key": "variant_c", "name": "C", "weight": 33},
    ]
    r = await client.patch(f"/api/v1/experiments/{exp['id']}", json={"variants": variants}, headers=h)
    assert r.status_code == 200
    after = {v["key"]: v["id"] for v in r.json()["variants"]}
    assert after["control"] == ids["control"] and after["variant_b"] == ids["variant_b"]
    assert [v["weight"] for v in r.json()["variants"]] == [34, 33, 33]


async def test_mvt_cells_are_generated_at_launch(client: httpx.AsyncClient, database_url: str) -> None:
    h, site = await owner_site(client, database_url)
    sections = [
        {
            "name": f"S{s}",
            "variations": [{"key": "a", "name": "A"}, {"key": "b", "name": "B"}, {"key": "c", "name": "C"}],
        }
        for s in range(3)
    ]
    r = await client.post(
        f"/api/v1/projects/{site['id']}/experiments",
        json=hero(type="mvt", variants=[], sections=sections),
        headers=h,
    )
    assert r.status_code == 201 and r.json()["variants"] == []
    assert "27 cells" in r.json()["warnings"][0]
    started = (await client.post(f"/api/v1/experiments/{r.json()['id']}/start", headers=h)).json()
    cells = started["variants"]
    assert [c["key"] for c in cells] == [f"mvt-cell-{i}" for i in range(1, 28)]
    assert abs(sum(c["weight"] for c in cells) - 100) < 1e-9
    assert cells[0]["name"] == "A × A × A"


async def test_another_organization_never_reaches_an_experiment(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    exp = (await client.post(f"/api/v1/projects/{site['id']}/experiments", json=hero(), headers=h)).json()
    other, _ = await owner_site(client, database_url, tag="bob")
    for method, path in [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/start")]:
        r = await client.request(
            method,
            f"/api/v1/experiments/{exp['id']}{path}",
            json={} if method != "GET" else None,
            headers=other,
        )
        assert r.status_code == 404, (method, path, r.status_code)
    listed = await client.get(f"/api/v1/projects/{site['id']}/experiments", headers=other)
    assert listed.status_code == 404


async def test_idempotency_key_makes_a_double_submit_create_one_experiment(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    url = f"/api/v1/projects/{site['id']}/experiments"
    first = await client.post(url, json=hero(), headers={**h, "Idempotency-Key": "form-123"})
    second = await client.post(url, json=hero(), headers={**h, "Idempotency-Key": "form-123"})
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert len((await client.get(url, headers=h)).json()["items"]) == 1
    reused = await client.post(url, json=hero(name="Other"), headers={**h, "Idempotency-Key": "form-123"})
    assert reused.status_code == 422


async def test_every_feature_gate_names_its_plan(
    database_url: str,
    settings,
    plugins,
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    # the defaults put these features on Professional, the lowest plan with experiments at all;
    # moving them up one plan shows each gate on its own
    plans = tmp_path / "plans.toml"
    plans.write_text(
        "[plans.professional]\nexperiments = 10\n[features]\n"
        '"experiments.behavioral_targeting" = "business"\n'
        '"experiments.attribute_targeting" = "business"\n"experiments.funnels" = "business"\n'
    )
    app = create_app(msgspec.structs.replace(settings, plans_file=plans), plugins)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base) as client:
        h, site = await owner_site(client, database_url, plan="professional")
        url = f"/api/v1/projects/{site['id']}/experiments"
        gated = {
            "Behavioral targeting": {"audience": {"triggers": {"time_seconds": 30}}},
            "Referral": {"audience": {"referral_sources": ["paid"]}},
            "Attribute targeting": {"audience": {"attribute_rules": [{"key": "plan", "operator": "exists"}]}},
            "Funnel": {
                "funnels": [{"name": "F", "steps": [{"label": "A", "url": "/"}, {"label": "B", "url": "/b"}]}]
            },
            "Scheduling": {"advanced": {"end_at": "2030-01-01T00:00:00Z"}},
            "Multivariate": {
                "type": "mvt",
                "variants": [],
                "sections": [
                    {"name": "S", "variations": [{"key": "a", "name": "A"}, {"key": "b", "name": "B"}]}
                ],
            },
        }
        for what, change in gated.items():
            r = await client.post(url, json=hero(**change), headers=h)
            assert r.status_code == 402, (what, r.text)
            assert "Business" in r.json()["detail"], (what, r.json())
        assert (await client.get(url, headers=h)).json()["items"] == []
        assert (await client.post(url, json=hero(), headers=h)).status_code == 201  # plain A/B is fine
