"""Per-site settings: defaults, validation naming the field, If-Match, roles, tenancy, the rule tester."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from segmently.db.engine import Database
from segmently.domain.sites.settings import site_plugins, would_fire
from segmently.domain.sites.settings_schemas import ConversionStep
from tests.conftest import Inbox
from tests.core.accounts.test_auth import bearer, signup
from tests.core.accounts.test_team import join, set_plan

SHOP = {"name": "Shop", "url": "https://shop.example.com"}
INSTALLED = {"billing", "chat", "dummy", "heatmaps", "integrations", "sessions"}
CHECKOUT = {
    "name": "Purchase",
    "event_type": "conversion",
    "steps": [{"method": "page_url", "value": "/checkout/success"}],
}
SIGNUP_FLOW = {
    "id": "signup-flow",
    "name": "Signed up",
    "event_type": "registration",
    "steps": [
        {"method": "page_url", "value": "/register"},
        {"method": "url_param", "value": "welcome"},
        {"method": "local_storage", "value": "user", "parse_json": True, "property_path": "user.id"},
        {"method": "cookie", "value": "cart", "parse_json": True, "property_path": "cart.items.length"},
    ],
}
FULL = {
    "plugins": {"heatmaps": False, "chat": True},
    "cross_domain": ["Store.Example.com", "checkout.example.com", "store.example.com."],
    "conversion_rules": [CHECKOUT, SIGNUP_FLOW],
    "activation_delay_ms": 500,
    "anti_flicker_timeout_ms": 3000,
}


async def owner_site(client: httpx.AsyncClient, tag: str) -> tuple[dict[str, str], str, dict[str, Any]]:
    body = await signup(client, tag)
    h = bearer(body["token"])
    site = await client.post("/api/v1/projects", json=SHOP, headers=h)
    assert site.status_code == 201
    return h, site.json()["id"], body


def url(site_id: str, tail: str = "") -> str:
    return f"/api/v1/projects/{site_id}/settings{tail}"


async def test_defaults_before_any_change(client: httpx.AsyncClient) -> None:
    h, site_id, _ = await owner_site(client, "fresh")
    r = await client.get(url(site_id), headers=h)
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == '"1"'
    assert r.json() == {
        "version": 1,
        "plugins": dict.fromkeys(sorted(INSTALLED), True),
        "cross_domain": [],
        "conversion_rules": [],
        "activation_delay_ms": 100,
        "anti_flicker_timeout_ms": 5000,
    }


async def test_put_replaces_and_get_reads_back(client: httpx.AsyncClient, database_url: str) -> None:
    h, site_id, _ = await owner_site(client, "writer")
    r = await client.put(url(site_id), json=FULL, headers=h)
    assert r.status_code == 200, r.text
    saved = r.json()
    assert saved["version"] == 2 and r.headers["etag"] == '"2"'
    assert saved["plugins"] == {**dict.fromkeys(sorted(INSTALLED), True), "heatmaps": False}
    assert saved["cross_domain"] == ["store.example.com", "checkout.example.com"]
    purchase, flow = saved["conversion_rules"]
    assert purchase["id"] and len(purchase["id"]) >= 32  # assigned by the server
    assert purchase["steps"] == [
        {"method": "page_url", "value": "/checkout/success", "parse_json": False, "property_path": None}
    ]
    assert flow["id"] == "signup-flow" and [s["method"] for s in flow["steps"]] == [
        "page_url",
        "url_param",
        "local_storage",
        "cookie",
    ]
    assert flow["steps"][3]["property_path"] == "cart.items.length"
    assert (saved["activation_delay_ms"], saved["anti_flicker_timeout_ms"]) == (500, 3000)
    assert (await client.get(url(site_id), headers=h)).json() == saved

    db = Database(database_url)
    try:
        async with db.session() as s:
            assert await site_plugins(s, site_id) == {"heatmaps": False, "chat": True}
            assert await site_plugins(s, site_id, ["heatmaps", "sessions"]) == {
                "heatmaps": False,
                "sessions": True,
                "chat": True,
            }
            assert await site_plugins(s, "no-such-site", ["heatmaps"]) == {"heatmaps": True}
    finally:
        await db.dispose()

    # PUT replaces everything: omitted settings return to their defaults, rule ids are kept
    again = await client.put(url(site_id), json={"conversion_rules": [purchase]}, headers=h)
    assert again.status_code == 200
    body = again.json()
    assert body["version"] == 3 and body["conversion_rules"] == [purchase]
    assert body["plugins"]["heatmaps"] is True and body["cross_domain"] == []
    assert body["activation_delay_ms"] == 100


BAD: list[tuple[dict[str, Any], str]] = [
    ({"plugins": {"nope": False}}, "plugins.nope"),
    ({"cross_domain": ["https://shop.example.com/"]}, "cross_domain[0]"),
    ({"cross_domain": ["ok.example.com", "bad host"]}, "cross_domain[1]"),
    ({"activation_delay_ms": -1}, "activation_delay_ms"),
    ({"activation_delay_ms": 10_001}, "activation_delay_ms"),
    ({"anti_flicker_timeout_ms": 50}, "anti_flicker_timeout_ms"),
    ({"activation_delay_ms": 2000, "anti_flicker_timeout_ms": 1000}, "anti_flicker_timeout_ms"),
    ({"conversion_rules": [CHECKOUT] * 2}, "conversion_rules[1].name"),
    ({"conversion_rules": [SIGNUP_FLOW, {**SIGNUP_FLOW, "name": "Other"}]}, "conversion_rules[1].id"),
    ({"conversion_rules": [{**CHECKOUT, "name": f"r{i}"} for i in range(51)]}, "conversion_rules"),
    ({"conversion_rules": [{**CHECKOUT, "event_type": "purchase"}]}, "conversion_rules[0].event_type"),
    ({"conversion_rules": [{**CHECKOUT, "steps": []}]}, "conversion_rules[0].steps"),
    ({"conversion_rules": [{**CHECKOUT, "name": ""}]}, "conversion_rules[0].name"),
    ({"conversion_rules": [{**CHECKOUT, "id": "has space"}]}, "conversion_rules[0].id"),
    ({"plugins": {"chat": "yes"}}, "plugins[...]"),  # msgspec's name for a value of a map
    ({"theme": "dark"}, "theme"),
]
BAD_STEPS: list[tuple[dict[str, Any], str]] = [
    ({"method": "page_url", "value": "checkout/success"}, "value"),
    ({"method": "page_url", "value": "https://shop.example.com/thanks"}, "value"),
    ({"method": "page_url", "value": "//evil.example.com/x"}, "value"),
    ({"method": "page_url", "value": "/thanks?x=1"}, "value"),
    ({"method": "url_param", "value": "payment_intent=pi_1"}, "value"),
    ({"method": "cookie", "value": "a;b"}, "value"),
    ({"method": "page_url", "value": ""}, "value"),
    ({"method": "hash", "value": "x"}, "method"),
    ({"method": "url_param", "value": "x", "parse_json": True}, "parse_json"),
    ({"method": "cookie", "value": "order", "property_path": "amount"}, "property_path"),
    ({"method": "cookie", "value": "order", "parse_json": True, "property_path": "a..b"}, "property_path"),
    ({"method": "cookie", "value": "order", "parse_json": True, "property_path": ".a"}, "property_path"),
    ({"method": "cookie", "value": "order", "parse_json": True, "property_path": "a b"}, "property_path"),
    ({"method": "cookie", "value": "order", "selector": "#x"}, ""),  # the message names `selector`
]


async def test_the_activation_delay_is_the_default_of_new_experiments(
    client: httpx.AsyncClient, database_url: str
) -> None:
    """An experiment created without its own delay takes the site's; one given a delay keeps it."""
    h, site_id, body = await owner_site(client, "delay")
    await set_plan(database_url, body["organization"]["id"], "enterprise")
    experiments = f"/api/v1/projects/{site_id}/experiments"
    two = [{"key": "control", "name": "Control", "weight": 50}, {"key": "b", "name": "B", "weight": 50}]
    default = await client.post(experiments, json={"name": "Before", "variants": two}, headers=h)
    assert default.status_code == 201, default.text
    assert default.json()["activation_delay_ms"] == 100
    assert (await client.put(url(site_id), json={"activation_delay_ms": 500}, headers=h)).status_code == 200
    site_default = await client.post(experiments, json={"name": "After", "variants": two}, headers=h)
    assert site_default.status_code == 201, site_default.text
    assert site_default.json()["activation_delay_ms"] == 500
    own = await client.post(
        experiments, json={"name": "Own", "variants": two, "activation_delay_ms": 0}, headers=h
    )
    assert own.json()["activation_delay_ms"] == 0
    # the experiments made before keep theirs
    got = await client.get(f"/api/v1/experiments/{default.json()['id']}", headers=h)
    assert got.json()["activation_delay_ms"] == 100


async def test_bad_settings_are_400_naming_the_field_and_write_nothing(client: httpx.AsyncClient) -> None:
    h, site_id, _ = await owner_site(client, "strict")
    before = (await client.put(url(site_id), json=FULL, headers=h)).json()
    cases = BAD + [
        (
            {
                "conversion_rules": [
                    CHECKOUT,
                    {**CHECKOUT, "name": "Step", "steps": [CHECKOUT["steps"][0], step]},
                ]
            },
            field,
        )
        for step, field in [
            (s, "conversion_rules[1].steps[1]" + (f".{f}" if f else "")) for s, f in BAD_STEPS
        ]
    ]
    for body, field in cases:
        r = await client.put(url(site_id), json=body, headers=h)
        assert r.status_code == 400, (body, r.status_code, r.text[:300])
        errors = r.json()["errors"]
        assert errors and errors[0]["field"] == field, (field, r.json())
        assert field in r.json()["detail"] or field.split(".")[-1] in r.json()["detail"], r.json()
    assert (await client.get(url(site_id), headers=h)).json() == before


async def test_every_bad_field_is_named_at_once(client: httpx.AsyncClient) -> None:
    h, site_id, _ = await owner_site(client, "many")
    body = {
        "plugins": {"nope": True},
        "conversion_rules": [{**CHECKOUT, "steps": [{"method": "page_url", "value": "thanks"}]}],
    }
    r = await client.put(url(site_id), json=body, headers=h)
    assert r.status_code == 400
    assert [e["field"] for e in r.json()["errors"]] == ["plugins.nope", "conversion_rules[0].steps[0].value"]
    assert "nope" in r.json()["detail"]


async def test_stale_if_match_is_412_with_the_current_version(client: httpx.AsyncClient) -> None:
    h, site_id, _ = await owner_site(client, "racer")
    first = await client.put(url(site_id), json={"activation_delay_ms": 0}, headers={**h, "If-Match": '"1"'})
    assert first.status_code == 200 and first.json()["version"] == 2
    stale = await client.put(
        url(site_id), json={"activation_delay_ms": 1000}, headers={**h, "If-Match": '"1"'}
    )
    assert stale.status_code == 412
    assert stale.json()["current_version"] == 2 and stale.json()["errors"] == []
    assert stale.json()["status_code"] == 412 and "changed by someone else" in stale.json()["detail"]
    # the version read may also come back in the body, as GET returned it
    echoed = {**(await client.get(url(site_id), headers=h)).json(), "version": 1, "activation_delay_ms": 1000}
    assert (await client.put(url(site_id), json=echoed, headers=h)).json()["current_version"] == 2
    current = await client.get(url(site_id), headers=h)
    assert current.json()["activation_delay_ms"] == 0 and current.json()["version"] == 2
    echoed["version"] = 2
    ok = await client.put(url(site_id), json=echoed, headers={**h, "If-Match": 'W/"2"'})
    assert ok.status_code == 200 and ok.json()["version"] == 3 and ok.json()["activation_delay_ms"] == 1000


async def test_members_read_and_test_rules_admins_change(
    client: httpx.AsyncClient, smtp: tuple[Inbox, int], database_url: str
) -> None:
    _, site_id, owner = await owner_site(client, "boss")
    await set_plan(database_url, owner["organization"]["id"], "enterprise")
    member = bearer((await join(client, smtp[0], owner["token"], "worker"))["token"])
    admin = bearer((await join(client, smtp[0], owner["token"], "chief", "admin"))["token"])
    assert (await client.get(url(site_id), headers=member)).status_code == 200
    refused = await client.put(url(site_id), json=FULL, headers=member)
    assert refused.status_code == 403 and refused.json()["detail"]
    tested = await client.post(
        url(site_id, "/test-rule"),
        json={"step": CHECKOUT["steps"][0], "url": "/checkout/success"},
        headers=member,
    )
    assert tested.status_code == 200 and tested.json() == {"would_fire": True}
    assert (await client.put(url(site_id), json=FULL, headers=admin)).status_code == 200
    assert (await client.get(url(site_id), headers=member)).json()["version"] == 2


async def test_another_organization_gets_404(client: httpx.AsyncClient) -> None:
    h, site_id, _ = await owner_site(client, "alice")
    bob, _, _ = await owner_site(client, "bob")
    await client.put(url(site_id), json=FULL, headers=h)
    for method, path, body in [
        ("GET", url(site_id), None),
        ("PUT", url(site_id), {}),
        ("POST", url(site_id, "/test-rule"), {"step": CHECKOUT["steps"][0], "url": "/"}),
    ]:
        r = await client.request(method, path, json=body, headers=bob)
        assert r.status_code == 404, (method, path, r.status_code)
        assert "signup-flow" not in r.text
    assert (await client.get(url(site_id), headers=h)).json()["version"] == 2


async def test_rule_tester_endpoint(client: httpx.AsyncClient) -> None:
    h, site_id, _ = await owner_site(client, "tester")
    tester = url(site_id, "/test-rule")
    param = {"method": "url_param", "value": "payment_intent"}
    for step, target, expected in [
        (CHECKOUT["steps"][0], "https://shop.example.com/checkout/success?order=1", True),
        (CHECKOUT["steps"][0], "https://shop.example.com/checkout", False),
        (param, "https://shop.example.com/done?payment_intent=pi_xxx", True),
        (param, "https://shop.example.com/done?intent=pi_xxx", False),
    ]:
        r = await client.post(tester, json={"step": step, "url": target}, headers=h)
        assert r.status_code == 200 and r.json() == {"would_fire": expected}, (step, target, r.text)
    for step, field in [
        ({"method": "cookie", "value": "order_completed"}, "step.method"),
        ({"method": "local_storage", "value": "orderComplete"}, "step.method"),
        ({"method": "page_url", "value": "checkout"}, "step.value"),
    ]:
        r = await client.post(tester, json={"step": step, "url": "/checkout"}, headers=h)
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == field, r.json()
    r = await client.post(tester, json={"step": param}, headers=h)
    assert (
        r.status_code == 400 and "`url`" in r.json()["errors"][0]["message"]
    )  # "missing required field `url`"
    assert (await client.get(url(site_id), headers=h)).json()["version"] == 1  # the tester stores nothing


def page(value: str) -> ConversionStep:
    return ConversionStep(method="page_url", value=value)


def param(value: str) -> ConversionStep:
    return ConversionStep(method="url_param", value=value)


@pytest.mark.parametrize(
    ("step", "target", "fires"),
    [
        (page("/checkout/success"), "https://shop.example.com/checkout/success", True),
        (page("/checkout/success"), "https://shop.example.com/checkout/success/", True),
        (page("/checkout/success/"), "https://shop.example.com/checkout/success", True),
        (page("/checkout/success"), "https://shop.example.com/checkout/success?order=42#top", True),
        (page("/checkout/success"), "/checkout/success", True),
        (page("/checkout/success"), "https://shop.example.com/checkout/success/extra", False),
        (page("/checkout/success"), "https://shop.example.com/checkout", False),
        (page("/checkout/success"), "https://shop.example.com/Checkout/Success", False),
        (page("/checkout/success"), "https://shop.example.com/?next=/checkout/success", False),
        (page("/café"), "https://shop.example.com/caf%C3%A9", True),
        (page("/"), "https://shop.example.com", True),
        (page("/"), "https://shop.example.com/", True),
        (page("/thank-you"), "http://[::1/thank-you", False),  # not a URL
        (param("payment_intent"), "https://shop.example.com/done?payment_intent=pi_xxx", True),
        (param("payment_intent"), "https://shop.example.com/done?a=1&payment_intent=", True),
        (param("payment_intent"), "https://shop.example.com/done?a=1&payment_intent", True),
        (param("payment_intent"), "?payment_intent=pi_1", True),
        (param("payment_intent"), "https://shop.example.com/done?intent=pi_xxx", False),
        (param("payment_intent"), "https://shop.example.com/payment_intent", False),
        (param("payment_intent"), "https://shop.example.com/done#payment_intent=pi", False),
        (param("payment_intent"), "https://shop.example.com/done?PAYMENT_INTENT=pi", False),
    ],
)
def test_would_fire(step: ConversionStep, target: str, fires: bool) -> None:
    assert would_fire(step, target) is fires


@pytest.mark.parametrize("method", ["local_storage", "cookie"])
def test_would_fire_refuses_steps_no_url_decides(method: str) -> None:
    with pytest.raises(ValueError, match="cannot be tested"):
        would_fire(ConversionStep(method=method, value="orderComplete"), "https://x.example.com/")  # type: ignore[arg-type]
