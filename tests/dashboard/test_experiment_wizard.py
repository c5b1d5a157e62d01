"""The experiment wizard: a new draft, every tab saved and read back through the API, field errors
next to their inputs, add/remove without JavaScript, versions, tenancy, plans and the launch."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.core.accounts.test_auth import bearer, signup
from tests.core.accounts.test_team import set_plan
from tests.dashboard.support import SESSION, field_error, post_form, text

pytestmark = pytest.mark.usefixtures("backend")


class Owner:
    """An organization with one site, signed in to the dashboard; the API reads what the pages saved."""

    def __init__(
        self, client: httpx.AsyncClient, api: httpx.AsyncClient, token: str, site: dict[str, Any]
    ) -> None:
        self.client, self.api, self.site = client, api, site
        self.h = bearer(token)

    async def read(self, experiment_id: str) -> dict[str, Any]:
        r = await self.api.get(f"/api/v1/experiments/{experiment_id}", headers=self.h)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async def listed(self) -> list[dict[str, Any]]:
        r = await self.api.get(f"/api/v1/projects/{self.site['id']}/experiments", headers=self.h)
        return r.json()["items"]  # type: ignore[no-any-return]

    async def create(self, name: str = "Hero test", kind: str = "ab", **extra: str) -> str:
        """A draft made through the wizard's first page; returns its id."""
        page = await self.client.get(f"/sites/{self.site['id']}/experiments/new")
        key = re.search(r'name="idempotency_key" value="(\w+)"', page.text)
        assert key, page.text
        r = await post_form(
            self.client,
            f"/sites/{self.site['id']}/experiments/new",
            {"name": name, "type": kind, "idempotency_key": key.group(1), **extra},
        )
        assert r.status_code == 303, r.text
        return r.headers["location"].split("/")[2]

    async def save(self, experiment_id: str, tab: str, data: dict[str, str], **kw: Any) -> httpx.Response:
        """Post a tab with the experiment's current version (like the page drawn just now)."""
        version = str((await self.read(experiment_id))["version"])
        return await post_form(
            self.client, f"/experiments/{experiment_id}/edit/{tab}", {"version": version, **data}, **kw
        )


async def owner(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str, tag: str, plan: str = "enterprise"
) -> Owner:
    body = await signup(api, tag)
    await set_plan(database_url, body["organization"]["id"], plan)
    site = await api.post(
        "/api/v1/projects",
        json={"name": f"{tag.title()} shop", "url": f"https://{tag}.example"},
        headers=bearer(body["token"]),
    )
    client.cookies.clear()
    client.cookies.set(SESSION, body["token"])
    return Owner(client, api, body["token"], site.json())


AB_VARIANTS = {
    "variants[0].name": "Control",
    "variants[0].key": "control",
    "variants[0].weight": "50",
    "variants[0].original_key": "control",
    "variants[1].name": "Green button",
    "variants[1].key": "variant_b",
    "variants[1].weight": "50",
    "variants[1].original_key": "variant_b",
}


async def test_a_new_experiment_is_a_draft_made_once_even_when_the_form_is_sent_twice(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "ann")
    site_page = (await client.get(f"/sites/{o.site['id']}")).text
    assert f'href="/sites/{o.site["id"]}/experiments/new">New experiment</a>' in site_page
    form = await client.get(f"/sites/{o.site['id']}/experiments/new")
    assert form.status_code == 200
    key = re.search(r'name="idempotency_key" value="(\w+)"', form.text)
    assert key
    data = {
        "name": "Homepage Hero Test",
        "description": "The hero's call to action",
        "hypothesis": "A green CTA raises sign-ups by 15%",
        "type": "ab",
        "idempotency_key": key.group(1),
    }
    first = await post_form(client, f"/sites/{o.site['id']}/experiments/new", data)
    again = await post_form(client, f"/sites/{o.site['id']}/experiments/new", data)
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    assert re.fullmatch(r"/experiments/[\w-]+/edit/variants\?notice=created", first.headers["location"])
    listed = await o.listed()
    assert len(listed) == 1
    exp = listed[0]
    assert (exp["name"], exp["status"], exp["type"]) == ("Homepage Hero Test", "draft", "ab")
    assert exp["description"] == "The hero's call to action"
    assert exp["hypothesis"] == "A green CTA raises sign-ups by 15%"
    assert [(v["key"], v["weight"]) for v in exp["variants"]] == [("control", 50), ("variant_b", 50)]
    landed = await client.get(first.headers["location"])
    assert "Draft created." in text(landed.text)
    assert 'aria-current="step">Variants</a>' in landed.text


async def test_the_new_experiment_form_shows_each_error_under_its_field_and_creates_nothing(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "bob")
    r = await post_form(
        client,
        f"/sites/{o.site['id']}/experiments/new",
        {"name": "  ", "type": "split", "hypothesis": "x" * 10_001, "idempotency_key": "k1"},
    )
    assert r.status_code == 400
    assert field_error(r.text, "name") == "Experiment name is required"
    assert field_error(r.text, "type") == "Test type is not one of the choices"
    assert field_error(r.text, "hypothesis") == "Hypothesis must be at most 10000 characters"
    assert 'aria-invalid="true" aria-describedby="f-name-error' in r.text
    assert await o.listed() == []


async def test_every_tab_saves_its_part_and_shows_it_again(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "cat")
    eid = await o.create()
    steps: list[tuple[str, dict[str, str], str]] = [
        (
            "details",
            {"name": "Hero v2", "slug": "hero-v2", "description": "New hero", "hypothesis": "More sign-ups"},
            "variants",
        ),
        ("variants", {**AB_VARIANTS, "variants[0].weight": "40", "variants[1].weight": "60"}, "targeting"),
        (
            "targeting",
            {
                "targeting.url_rules[0].type": "starts_with",
                "targeting.url_rules[0].value": "https://cat.example/blog/",
                "targeting.url_rules[1].type": "regex",
                "targeting.url_rules[1].value": r"^https://cat\.example/p/[0-9]+$",
                "targeting.devices": "mobile",
                "targeting.countries": "us, gb",
                "targeting.traffic_percentage": "25%",
            },
            "audience",
        ),
        (
            "audience",
            {
                "audience.visitor_type": "returning",
                "audience.attribute_rules[0].key": "plan",
                "audience.attribute_rules[0].operator": "equals",
                "audience.attribute_rules[0].value": "pro",
                "audience.attribute_rules[1].key": "logged_in",
                "audience.attribute_rules[1].operator": "exists",
                "audience.attribute_rules[1].value": "",
                "audience.triggers.scroll_percent": "50",
                "audience.triggers.time_seconds": "",
                "audience.triggers.click_selector": ".open-chat",
                "audience.referral_sources": "email",
            },
            "goals",
        ),
        (
            "goals",
            {
                "goals[0].type": "click",
                "goals[0].name": "Buy",
                "goals[0].selector": "#buy",
                "goals[1].type": "page_view",
                "goals[1].name": "Thanks",
                "goals[1].url": "/thank-you",
                "primary_goal": "1",
                "funnels[0].name": "Checkout",
                "funnels[0].steps[0].label": "Landing",
                "funnels[0].steps[0].url": "",
                "funnels[0].steps[1].label": "Cart",
                "funnels[0].steps[1].url": "/cart",
                "funnels[0].steps[1].event_name": "add_to_cart",
            },
            "advanced",
        ),
        (
            "advanced",
            {
                "activation_delay": "custom",
                "activation_delay_ms": "250",
                "advanced.start_at": "2030-01-02T09:30",
                "advanced.end_at": "2030-02-01T00:00",
                "advanced.auto_pause_at_significance": "on",
                "advanced.max_duration_days": "30",
                "advanced.cross_domain": "store.cat.example, checkout.cat.example",
                "advanced.custom_css": ".hero { color: green }",
                "advanced.custom_js": "console.log('hi')",
            },
            "integrations",
        ),
        (
            "integrations",
            {
                "integrations.ga4.measurement_id": "g-abc1234",
                "integrations.mixpanel.project_token": "abcdef0123456789",
            },
            "review",
        ),
    ]
    for tab, data, following in steps:
        r = await o.save(eid, tab, data)
        assert r.status_code == 303, (tab, text(r.text))
        assert r.headers["location"] == f"/experiments/{eid}/edit/{following}?notice={tab}"
    exp = await o.read(eid)
    assert (exp["name"], exp["slug"], exp["description"], exp["hypothesis"]) == (
        "Hero v2",
        "hero-v2",
        "New hero",
        "More sign-ups",
    )
    assert [(v["key"], v["name"], v["weight"]) for v in exp["variants"]] == [
        ("control", "Control", 40),
        ("variant_b", "Green button", 60),
    ]
    assert exp["targeting"] == {
        "url_rules": [
            {"type": "starts_with", "value": "https://cat.example/blog/"},
            {"type": "regex", "value": r"^https://cat\.example/p/[0-9]+$"},
        ],
        "devices": ["mobile"],
        "countries": ["US", "GB"],
        "traffic_percentage": 25,
    }
    assert exp["audience"] == {
        "visitor_type": "returning",
        "attribute_rules": [
            {"key": "plan", "operator": "equals", "value": "pro"},
            {"key": "logged_in", "operator": "exists", "value": None},
        ],
        "triggers": {"scroll_percent": 50, "time_seconds": None, "click_selector": ".open-chat"},
        "referral_sources": ["email"],
    }
    goals = [(g["type"], g["name"], g["selector"], g["url"], g["primary"]) for g in exp["goals"]]
    assert goals == [("click", "Buy", "#buy", None, False), ("page_view", "Thanks", None, "/thank-you", True)]
    assert [(s["label"], s["url"], s["event_name"]) for s in exp["funnels"][0]["steps"]] == [
        ("Landing", "", None),
        ("Cart", "/cart", "add_to_cart"),
    ]
    assert exp["activation_delay_ms"] == 250
    advanced = exp["advanced"]
    assert advanced["start_at"].startswith("2030-01-02T09:30:00") and advanced["auto_pause_at_significance"]
    assert advanced["cross_domain"] == ["store.cat.example", "checkout.cat.example"]
    assert (advanced["max_duration_days"], advanced["custom_css"]) == (30, ".hero { color: green }")
    assert exp["integrations"] == {
        "ga4": {"measurement_id": "G-ABC1234"},
        "mixpanel": {"project_token": "abcdef0123456789"},
    }

    # each tab shows what was saved
    targeting = (await client.get(f"/experiments/{eid}/edit/targeting?notice=audience")).text
    assert 'value="us, gb"' not in targeting and 'value="US, GB"' in targeting
    assert '<option value="regex" selected>' in targeting
    assert 'name="targeting.devices" value="mobile" checked' in targeting
    advanced_tab = (await client.get(f"/experiments/{eid}/edit/advanced")).text
    assert 'value="2030-01-02T09:30"' in advanced_tab and '<option value="custom" selected>' in advanced_tab
    goals_tab = (await client.get(f"/experiments/{eid}/edit/goals")).text
    assert 'name="primary_goal" value="1" checked' in goals_tab
    review = text((await client.get(f"/experiments/{eid}/edit/review")).text)
    for shown in (
        "Hero v2",
        "Green button",
        "Starts with https://cat.example/blog/",
        "Mobile",
        "US, GB",
        "25%",
        "plan equals pro",
        "scroll 50%",
        "Thanks (Page view: /thank-you ) primary",
        "Landing → Cart",
        "250 ms",
        "G-ABC1234",
    ):
        assert shown in review, shown


async def test_bad_variants_show_every_error_under_its_input_and_save_nothing(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "dan")
    eid = await o.create()
    before = await o.read(eid)
    shapes = await o.save(
        eid,
        "variants",
        {**AB_VARIANTS, "variants[1].name": "", "variants[1].key": "Variant B", "variants[0].weight": "lots"},
    )
    assert shapes.status_code == 400
    assert field_error(shapes.text, "variants[1].name") == "Name is required"
    assert field_error(shapes.text, "variants[1].key") == (
        "Key must be lowercase letters, digits, - or _ (starting with a letter or digit)"
    )
    assert field_error(shapes.text, "variants[0].weight") == "Weight (%) must be a number"
    assert 'value="Variant B"' in shapes.text  # what was typed stays
    too_much = await o.save(eid, "variants", {**AB_VARIANTS, "variants[1].weight": "101"})
    assert field_error(too_much.text, "variants[1].weight") == "Weight (%) must be at most 100"
    sums = await o.save(eid, "variants", {**AB_VARIANTS, "variants[1].weight": "40"})
    assert sums.status_code == 400
    assert field_error(sums.text, "variants") == "Weights must sum to 100 (they sum to 90)"  # the API's words
    twice = await o.save(eid, "variants", {**AB_VARIANTS, "variants[1].key": "control"})
    assert field_error(twice.text, "variants[1].key") == "'control' is used by another variant"
    assert await o.read(eid) == before


async def test_targeting_audience_goals_and_advanced_errors_land_next_to_their_fields(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "eve")
    eid = await o.create()
    before = await o.read(eid)
    targeting = await o.save(
        eid,
        "targeting",
        {
            "targeting.url_rules[0].type": "regex",
            "targeting.url_rules[0].value": "^/(product",
            "targeting.url_rules[1].type": "contains",
            "targeting.url_rules[1].value": "",
            "targeting.countries": "US, XX",
            "targeting.traffic_percentage": "150",
        },
    )
    assert targeting.status_code == 400
    assert field_error(targeting.text, "targeting.url_rules[1].value") == "URL or pattern is required"
    assert field_error(targeting.text, "targeting.traffic_percentage") == "Traffic (%) must be at most 100"
    fixed = await o.save(
        eid,
        "targeting",
        {
            "targeting.url_rules[0].type": "regex",
            "targeting.url_rules[0].value": "^/(product",
            "targeting.countries": "US, XX",
            "targeting.traffic_percentage": "50",
        },
    )
    assert fixed.status_code == 400  # the API's own rules, all at once
    assert (field_error(fixed.text, "targeting.url_rules[0].value") or "").startswith(
        "Invalid regular expression '^/(product'"
    )
    assert (
        field_error(fixed.text, "targeting.countries") == "'XX' is not an ISO 3166-1 alpha-2 code (e.g. US)"
    )
    audience = await o.save(
        eid,
        "audience",
        {
            "audience.visitor_type": "all",
            "audience.attribute_rules[0].key": "plan",
            "audience.attribute_rules[0].operator": "greater_than",
            "audience.attribute_rules[0].value": "",
            "audience.triggers.scroll_percent": "33",
            "audience.triggers.time_seconds": "1.5",
        },
    )
    assert field_error(audience.text, "audience.triggers.time_seconds") == (
        "Time on page (seconds) must be a whole number"
    )
    audience = await o.save(
        eid,
        "audience",
        {
            "audience.visitor_type": "all",
            "audience.attribute_rules[0].key": "plan",
            "audience.attribute_rules[0].operator": "greater_than",
            "audience.attribute_rules[0].value": "",
            "audience.triggers.scroll_percent": "33",
        },
    )
    assert (
        field_error(audience.text, "audience.attribute_rules[0].value")
        == "Value is required with 'greater_than'"
    )
    assert field_error(audience.text, "audience.triggers.scroll_percent") == (
        "Scroll depth (%) must be between 5 and 100, in steps of 5"
    )
    goals = await o.save(
        eid,
        "goals",
        {
            "goals[0].type": "click",
            "goals[0].name": "Buy",
            "goals[0].selector": "",
            "funnels[0].name": "Checkout",
            "funnels[0].steps[0].label": "Landing",
        },
    )
    assert field_error(goals.text, "funnels[0].steps") == "A funnel needs at least 2 steps"
    goals = await o.save(
        eid,
        "goals",
        {
            "goals[0].type": "click",
            "goals[0].name": "Buy",
            "goals[0].selector": "",
            "goals[1].type": "page_view",
            "goals[1].name": "Thanks",
            "goals[1].url": "/thanks",
            "funnels[0].name": "Checkout",
            "funnels[0].steps[0].label": "Landing",
            "funnels[0].steps[1].label": "Cart",
            "funnels[0].steps[1].url": "cart",
        },
    )
    assert field_error(goals.text, "goals[0].selector") == "CSS selector is required for a click goal"
    assert (
        field_error(goals.text, "funnels[0].steps[1].url")
        == "URL contains must be a path starting with / (or empty)"
    )
    advanced = await o.save(
        eid,
        "advanced",
        {
            "activation_delay": "custom",
            "activation_delay_ms": "20000",
            "advanced.start_at": "2030-02-01T00:00",
            "advanced.end_at": "2030-01-01T00:00",
            "advanced.cross_domain": "shop.example, not a host!",
        },
    )
    assert field_error(advanced.text, "activation_delay_ms") == "Custom delay (ms) must be at most 10000"
    advanced = await o.save(
        eid,
        "advanced",
        {
            "activation_delay": "500",
            "advanced.start_at": "2030-02-01T00:00",
            "advanced.end_at": "2030-01-01T00:00",
            "advanced.cross_domain": "shop.example, bad_host",
        },
    )
    assert field_error(advanced.text, "advanced.end_at") == "End (UTC) must be after start_at"
    assert field_error(advanced.text, "advanced.cross_domain") == (
        "'bad_host' is not a host name (e.g. shop.example.com)"
    )
    integrations = await o.save(eid, "integrations", {"integrations.ga4.measurement_id": "UA-1234"})
    assert field_error(integrations.text, "integrations.ga4.measurement_id") == (
        "GA4 Measurement ID must look like G-XXXXXXXXXX"
    )
    assert await o.read(eid) == before


async def test_add_and_remove_buttons_work_without_javascript_and_save_only_on_save(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "fay")
    eid = await o.create()
    added = await o.save(eid, "variants", {**AB_VARIANTS, "op": "add:variants"})
    assert added.status_code == 200
    weights = re.findall(r'name="variants\[(\d)\]\.weight" type="text" value="([\d.]+)"', added.text)
    assert weights == [("0", "33"), ("1", "33"), ("2", "34")]  # split evenly again
    assert 'name="variants[2].key" type="text" value="variant_c"' in added.text
    assert 'value="remove:variants[0]"' not in added.text  # the control stays
    assert len((await o.read(eid))["variants"]) == 2  # not saved yet
    form = dict(AB_VARIANTS)
    form |= {"variants[0].weight": "33", "variants[1].weight": "33"}
    form |= {"variants[2].name": "Red", "variants[2].key": "variant_c", "variants[2].weight": "34"}
    form |= {"variants[2].original_key": ""}
    saved = await o.save(eid, "variants", form)
    assert saved.status_code == 303
    assert [v["key"] for v in (await o.read(eid))["variants"]] == ["control", "variant_b", "variant_c"]
    removed = await o.save(eid, "variants", {**form, "op": "remove:variants[1]"})
    assert 'name="variants[1].key" type="text" value="variant_c"' in removed.text
    assert "Green button" not in removed.text
    rules = await o.save(
        eid, "targeting", {"targeting.traffic_percentage": "100", "op": "add:targeting.url_rules"}
    )
    assert (
        'id="f-targeting.url_rules[0].value"' in rules.text
        and '<label for="f-targeting.url_rules[0].value">' in rules.text
    )
    funnel = await o.save(eid, "goals", {"op": "add:funnels"})
    assert 'name="funnels[0].steps[1].label"' in funnel.text
    step = await o.save(
        eid,
        "goals",
        {
            "funnels[0].name": "F",
            "funnels[0].steps[0].label": "A",
            "funnels[0].steps[1].label": "B",
            "op": "add:funnels[0].steps",
        },
    )
    assert 'name="funnels[0].steps[2].label"' in step.text and 'value="A"' in step.text


async def test_each_variant_links_to_the_visual_editor_with_its_number_of_changes(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "gus")
    eid = await o.create()
    change = {"type": "text", "selector": "h1", "text": "Hi"}
    variants = [
        {"key": "control", "name": "Control", "weight": 50},
        {
            "key": "variant_b",
            "name": "Variant B",
            "weight": 50,
            "changes": [change, {"type": "hide", "selector": ".ad"}],
        },
    ]
    r = await api.patch(f"/api/v1/experiments/{eid}", json={"variants": variants}, headers=o.h)
    assert r.status_code == 200, r.text
    html = (await client.get(f"/experiments/{eid}/edit/variants")).text
    assert f'href="/experiments/{eid}/editor?variant=variant_b">Visual editor' in html
    assert re.findall(r'<span class="muted changes-count">([^<]+)</span>', html) == ["0 changes", "2 changes"]
    renamed = await o.save(eid, "variants", {**AB_VARIANTS, "variants[1].name": "Renamed"})
    assert renamed.status_code == 303
    kept = (await o.read(eid))["variants"][1]
    assert (kept["name"], kept["changes"]) == (
        "Renamed",
        [change, {"type": "hide", "selector": ".ad", "mode": "hide"}],
    )


async def test_a_stale_tab_shows_the_conflict_and_does_not_overwrite(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "hal")
    eid = await o.create("Hero test")
    drawn = (await o.read(eid))["version"]
    meanwhile = await api.patch(f"/api/v1/experiments/{eid}", json={"name": "Theirs"}, headers=o.h)
    assert meanwhile.status_code == 200
    r = await post_form(
        client,
        f"/experiments/{eid}/edit/details",
        {"version": str(drawn), "name": "Mine", "slug": "", "description": "", "hypothesis": ""},
    )
    assert r.status_code == 412
    words = text(r.text)
    assert f"This experiment was changed by someone else (now version {drawn + 1})" in words
    assert "Reload this tab" in words and 'value="Mine"' in r.text
    assert f'name="version" value="{drawn}"' in r.text  # a second try is refused too
    assert (await o.read(eid))["name"] == "Theirs"


async def test_another_organizations_experiment_and_site_are_not_found(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    theirs = await owner(client, api, database_url, "kim")
    their_id = await theirs.create("Kim secret")
    ours = await owner(client, api, database_url, "lee")
    for url in (
        f"/experiments/{their_id}/edit/details",
        f"/experiments/{their_id}/edit/review",
        f"/sites/{theirs.site['id']}/experiments/new",
    ):
        r = await client.get(url)
        assert r.status_code == 404 and "Kim secret" not in r.text, url
    posted = await post_form(
        client, f"/experiments/{their_id}/edit/details", {"version": "1", "name": "Mine"}
    )
    launched = await post_form(client, f"/experiments/{their_id}/launch", {"version": "1"})
    created = await post_form(
        client, f"/sites/{theirs.site['id']}/experiments/new", {"name": "x", "type": "ab"}
    )
    assert posted.status_code == launched.status_code == created.status_code == 404
    exp = await theirs.read(their_id)
    assert (exp["name"], exp["status"]) == ("Kim secret", "draft")
    assert await ours.listed() == []


async def test_review_shows_preview_links_and_launch_makes_it_live(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "ivy")
    eid = await o.create("Hero test")
    review = await client.get(f"/experiments/{eid}/edit/review")
    words = text(review.text)
    assert "No primary goal" in words and "No URL rules: the experiment runs on every page" in words
    assert re.findall(
        r'<a href="([^"]+)" target="_blank" rel="noopener noreferrer">Preview ([^<]+)</a>', review.text
    ) == [
        ("https://ivy.example?segmently_preview=hero-test:control", "Control"),
        ("https://ivy.example?segmently_preview=hero-test:variant_b", "Variant B"),
    ]
    version = str((await o.read(eid))["version"])
    launched = await post_form(client, f"/experiments/{eid}/launch", {"version": version})
    assert launched.status_code == 303
    assert launched.headers["location"] == f"/sites/{o.site['id']}?notice=start"
    assert "Experiment started: it is live." in text((await client.get(launched.headers["location"])).text)
    assert (await o.read(eid))["status"] == "live"
    again = await post_form(client, f"/experiments/{eid}/launch", {"version": str(int(version) + 1)})
    assert again.status_code == 409 and "Cannot start an experiment that is live" in text(again.text)

    # a live experiment: the tabs are read only, and a post gets the service's refusal
    tab = await client.get(f"/experiments/{eid}/edit/variants")
    assert '<fieldset class="bare" disabled' in tab.text
    assert "This experiment is live: only a draft or a paused experiment can be edited" in text(tab.text)
    refused = await o.save(eid, "details", {"name": "Changed while live", "slug": ""})
    assert refused.status_code == 409
    assert "A live experiment cannot be edited: pause it first" in text(refused.text)
    assert (await o.read(eid))["name"] == "Hero test"
    await api.post(f"/api/v1/experiments/{eid}/pause", headers=o.h)
    paused = await o.save(eid, "details", {"name": "Hero test 2", "slug": ""})
    assert paused.status_code == 303 and (await o.read(eid))["name"] == "Hero test 2"


async def test_plans_gate_the_wizard_with_upgrade_prompts(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    free = await owner(client, api, database_url, "jon", plan="free")
    page = await client.get(f"/sites/{free.site['id']}/experiments/new")
    assert 'class="alert-box upgrade"' in page.text and "See your plan" in page.text
    refused = await post_form(
        client,
        f"/sites/{free.site['id']}/experiments/new",
        {"name": "Hero", "type": "ab", "idempotency_key": "k"},
    )
    assert refused.status_code == 402 and await free.listed() == []

    pro = await owner(client, api, database_url, "max", plan="professional")
    mvt = await post_form(
        client,
        f"/sites/{pro.site['id']}/experiments/new",
        {"name": "Many", "type": "mvt", "idempotency_key": "k2"},
    )
    assert mvt.status_code == 402
    assert "Multivariate tests need the Business plan; you are on Professional." in text(mvt.text)
    assert await pro.listed() == []
    eid = await pro.create("Hero")
    advanced = (await client.get(f"/experiments/{eid}/edit/advanced")).text
    assert "Experiment scheduling needs the Business plan" in text(advanced)
    scheduled = await pro.save(
        eid, "advanced", {"activation_delay": "100", "advanced.start_at": "2030-01-01T00:00"}
    )
    assert scheduled.status_code == 402 and 'class="alert-box upgrade"' in scheduled.text
    ga4 = await pro.save(eid, "integrations", {"integrations.ga4.measurement_id": "G-ABCD1234"})
    assert ga4.status_code == 402 and "Google Analytics 4 needs the Business plan" in text(ga4.text)
    exp = await pro.read(eid)
    assert exp["advanced"]["start_at"] is None and exp["integrations"] == {}


async def test_an_mvt_experiment_edits_sections_and_warns_about_many_cells(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "ned", plan="business")
    eid = await o.create("Hero MVT", kind="mvt")
    tab = (await client.get(f"/experiments/{eid}/edit/variants")).text
    assert ">MVT sections</a>" in tab and "2 cells" in text(tab)
    form: dict[str, str] = {}
    for s in range(4):
        form |= {
            f"sections[{s}].name": f"Part {s + 1}",
            f"sections[{s}].variations[0].name": "Control",
            f"sections[{s}].variations[0].key": "control",
            f"sections[{s}].variations[1].name": "New",
            f"sections[{s}].variations[1].key": "new",
        }
    drawn = await o.save(eid, "variants", {**form, "op": "add:sections[0].variations"})
    assert "24 cells" in text(drawn.text)
    assert "24 cells: each gets only 4.2% of traffic; plan for 1,000+ visitors per cell" in text(drawn.text)
    saved = await o.save(eid, "variants", form)
    assert saved.status_code == 303
    exp = await o.read(eid)
    assert [s["name"] for s in exp["sections"]] == ["Part 1", "Part 2", "Part 3", "Part 4"]
    review = await client.get(f"/experiments/{eid}/edit/review")
    assert "16 cells" in text(review.text)
    assert review.text.count("segmently_preview=hero-mvt:mvt-cell-") == 16 * 2  # the link and its text
    bad = await o.save(eid, "variants", {**form, "sections[1].variations[1].key": "control"})
    assert field_error(bad.text, "sections[1].variations[1].key") == "'control' is used twice in this section"
    launched = await post_form(client, f"/experiments/{eid}/launch", {"version": str(exp["version"])})
    assert launched.status_code == 303
    assert len((await o.read(eid))["variants"]) == 16
