"""One site's page: experiments by state and their quick actions, install tags, settings, the
"Would fire" tester, the danger zone; roles and tenancy."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.conftest import Inbox
from tests.core.accounts.test_auth import bearer, signup
from tests.core.accounts.test_team import join, set_plan
from tests.core.experiments.test_experiments import hero
from tests.dashboard.support import SESSION, field_error, post_form, text

pytestmark = pytest.mark.usefixtures("backend")


class Owner:
    """An organization made through the API: its token, one site, and the dashboard signed in."""

    def __init__(
        self, client: httpx.AsyncClient, api: httpx.AsyncClient, body: dict[str, Any], site: dict[str, Any]
    ) -> None:
        self.client = client
        self.api = api
        self.h = bearer(body["token"])
        self.token = body["token"]
        self.site = site
        self.page = f"/sites/{site['id']}"

    async def experiment(self, name: str, *moves: str) -> dict[str, Any]:
        """A new experiment of the site, moved through ``moves`` with the API (no cookie sent)."""
        r = await self.api.post(
            f"/api/v1/projects/{self.site['id']}/experiments", json=hero(name=name), headers=self.h
        )
        assert r.status_code == 201, r.text
        for move in moves:
            moved = await self.api.post(f"/api/v1/experiments/{r.json()['id']}/{move}", headers=self.h)
            assert moved.status_code == 200, moved.text
        return await self.read(r.json()["id"])

    async def read(self, experiment_id: str) -> dict[str, Any]:
        r = await self.api.get(f"/api/v1/experiments/{experiment_id}", headers=self.h)
        return r.json()  # type: ignore[no-any-return]


async def owner(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str, tag: str, plan: str = "enterprise"
) -> Owner:
    """Sign up ``tag`` with a site through the API; ``client`` is then signed in to the dashboard."""
    body = await signup(api, tag)
    await set_plan(database_url, body["organization"]["id"], plan)
    site = await api.post(
        "/api/v1/projects",
        json={"name": f"{tag.title()} shop", "url": f"https://{tag}.example"},
        headers=bearer(body["token"]),
    )
    client.cookies.clear()
    client.cookies.set(SESSION, body["token"])
    return Owner(client, api, body, site.json())


def group(html: str, state: str) -> str:
    """The words of one state's group on the page."""
    if state == "archived":
        match = re.search(r'<details class="state-group" id="group-archived">(.*?)</details>', html, re.S)
    else:
        match = re.search(
            rf'<section class="state-group" aria-labelledby="group-{state}">(.*?)</section>', html, re.S
        )
    assert match, html
    return text(match.group(1))


def buttons(html: str, experiment: dict[str, Any]) -> list[str]:
    """The quick actions the page offers for ``experiment``."""
    return re.findall(rf'action="/sites/[^/"]+/experiments/{experiment["id"]}/(\w+)"', html)


async def act(o: Owner, experiment: dict[str, Any], action: str) -> httpx.Response:
    current = await o.read(experiment["id"])
    return await post_form(
        o.client,
        f"{o.page}/experiments/{experiment['id']}/{action}",
        {"version": str(current["version"])},
    )


async def test_experiments_are_grouped_by_state_with_the_actions_each_state_allows(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "ann")
    draft = await o.experiment("Hero draft")
    live = await o.experiment("Pricing live", "start")
    paused = await o.experiment("Footer paused", "start", "pause")
    archived = await o.experiment("Old archived", "archive")
    html = (await client.get(o.page)).text
    assert (
        group(html, "live")
        == "Live (1) Pricing live Live Results of Pricing live Pause Pricing live Archive Pricing live"
    )
    assert "Hero draft" in group(html, "draft") and "Hero draft" not in group(html, "live")
    assert "Footer paused" in group(html, "paused")
    assert group(html, "archived").startswith("Archived (1) Old archived")
    assert "<details" in html and '<details class="state-group" id="group-archived" open' not in html
    assert buttons(html, draft) == ["start", "archive"]
    assert buttons(html, live) == ["pause", "archive"]
    assert buttons(html, paused) == ["resume", "archive"]
    assert buttons(html, archived) == ["reinstate"]
    assert f'href="/experiments/{live["id"]}"' in html  # the results page's address


async def test_quick_actions_move_an_experiment_and_confirm_with_a_notice(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "bob")
    exp = await o.experiment("Hero test")
    steps = [
        ("start", "Experiment started: it is live.", "live"),
        ("pause", "Experiment paused. Its data is kept.", "paused"),
        ("resume", "Experiment resumed: it is live again.", "live"),
        ("archive", "Experiment archived.", "archived"),
        ("reinstate", "Experiment reinstated as a draft.", "draft"),
    ]
    for action, notice, state in steps:
        r = await act(o, exp, action)
        assert r.status_code == 303, r.text
        assert r.headers["location"] == f"{o.page}?notice={action}"
        html = (await client.get(r.headers["location"])).text
        assert notice in text(html)
        assert "Hero test" in group(html, state), (action, state)
        assert (await o.read(exp["id"]))["status"] == state


async def test_a_refused_action_shows_the_apis_reason_and_changes_nothing(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "cat")
    exp = await o.experiment("Hero test", "start")
    illegal = await act(o, exp, "resume")  # a live experiment cannot be resumed
    assert illegal.status_code == 409
    assert "Cannot resume an experiment that is live" in text(illegal.text)
    stale = await post_form(client, f"{o.page}/experiments/{exp['id']}/pause", {"version": "1"})
    assert stale.status_code == 412  # another tab moved it since this page was drawn
    assert "was changed by someone else" in text(stale.text)
    assert (await o.read(exp["id"]))["status"] == "live"


async def test_reinstating_over_the_plan_limit_shows_the_upgrade_prompt(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "dan", plan="professional")
    old = await o.experiment("Old test", "archive")
    await o.experiment("New test")  # the Professional plan's one experiment
    r = await act(o, old, "reinstate")
    assert r.status_code == 402
    words = text(r.text)
    assert "Upgrade to" in words and "See your plan" in words
    assert 'class="alert-box upgrade"' in r.text
    assert (await o.read(old["id"]))["status"] == "archived"


async def test_both_install_tags_and_the_api_key_have_copy_buttons(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "eve")
    html = (await client.get(o.page)).text
    key = o.site["api_key"]
    assert re.search(
        rf'<code id="tag-js">&lt;script src="http[^"]+/segmently.js" data-api-key="{key}"&gt;', html
    )
    assert re.search(
        rf'<code id="tag-inline">&lt;script src="http[^"]+/s/{key}.js"&gt;&lt;/script&gt;</code>', html
    )
    copies = re.findall(
        r'<button type="button" class="copy" data-copy="([\w-]+)" hidden>(.*?)</button>', html
    )
    assert [(target, text(label)) for target, label in copies] == [
        ("api-key", "Copy the API key"),
        ("tag-js", "Copy the install tag"),
        ("tag-inline", "Copy the install tag with the key in its address"),
    ]
    script = re.search(r'<script src="(/static/dashboard/dashboard\.js\?v=\w+)" defer>', html)
    assert script
    served = await client.get(script.group(1))
    assert served.status_code == 200 and "navigator.clipboard" in served.text


async def test_integration_guides_fold_one_platform_each(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "guy")
    html = (await client.get(o.page)).text
    guides = re.findall(r'<details class="guide" id="guide-([\w-]+)">\s*<summary>(.*?)</summary>', html)
    assert [name for name, _ in guides] == ["html", "wordpress", "shopify", "webflow", "spa", "gtm", "events"]
    assert "Shopify" in dict(guides)["shopify"] and "Google Tag Manager" in dict(guides)["gtm"]
    assert '<details class="guide" id="guide-html" open' not in html  # folded until opened
    assert "checkout.total_price" in html  # Liquid shown literally, not run by Jinja


async def test_the_site_page_links_to_its_live_events_and_flags(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "tabs")
    html = (await client.get(o.page)).text
    site_id = o.site["id"]
    assert f'<a href="/sites/{site_id}" aria-current="page">Overview</a>' in html
    for path in (f"/sites/{site_id}/live", f"/sites/{site_id}/flags"):
        assert f'href="{path}"' in html
        assert (await client.get(path)).status_code == 200


async def test_settings_show_errors_next_to_the_fields_and_save(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "fay")
    bad = await post_form(client, f"{o.page}/settings", {"name": "", "url": "shop.example"})
    assert bad.status_code == 400
    assert field_error(bad.text, "name") == "Site name is required"
    assert field_error(bad.text, "url") == "Site URL must be a web address starting with http:// or https://"
    assert 'value="shop.example"' in bad.text
    assert (await api.get(f"/api/v1/projects/{o.site['id']}", headers=o.h)).json()["name"] == "Fay shop"
    good = await post_form(
        client, f"{o.page}/settings", {"name": "Fay store", "url": "https://store.example/"}
    )
    assert good.status_code == 303
    html = (await client.get(good.headers["location"])).text
    assert "Site settings saved." in text(html)
    assert "<h1>Fay store</h1>" in html
    assert (await api.get(f"/api/v1/projects/{o.site['id']}", headers=o.h)).json()[
        "url"
    ] == "https://store.example"


async def test_conversion_rules_are_listed_and_the_tester_answers_with_and_without_htmx(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "gus")
    rule = {
        "name": "Checkout done",
        "event_type": "conversion",
        "steps": [{"method": "page_url", "value": "/thanks"}],
    }
    put = await api.put(
        f"/api/v1/projects/{o.site['id']}/settings", json={"conversion_rules": [rule]}, headers=o.h
    )
    assert put.status_code == 200, put.text
    html = (await client.get(o.page)).text
    assert "No conversion rules yet" not in html
    assert "Checkout done conversion page_url /thanks" in text(html)

    form = {"step_method": "page_url", "step_value": "/thanks", "test_url": "https://gus.example/thanks/?o=1"}
    full = await post_form(client, f"{o.page}/rule-test", form)
    assert full.status_code == 200
    assert "<html" in full.text and '<p class="fire-result fires" role="status">Would fire</p>' in full.text
    partial = await post_form(
        client, f"{o.page}/rule-test", {**form, "test_url": "/cart"}, headers={"HX-Request": "true"}
    )
    assert partial.status_code == 200
    assert "<html" not in partial.text and partial.text.lstrip().startswith('<div id="rule-tester"')
    assert "Would not fire" in text(partial.text) and "Would fire" not in text(partial.text).replace(
        "Would not fire", ""
    )
    param = await post_form(
        client,
        f"{o.page}/rule-test",
        {"step_method": "url_param", "step_value": "payment_intent", "test_url": "/done?payment_intent=pi_1"},
    )
    assert "Would fire" in text(param.text)
    bad = await post_form(
        client, f"{o.page}/rule-test", {"step_method": "page_url", "step_value": "thanks", "test_url": ""}
    )
    assert bad.status_code == 400
    assert field_error(
        bad.text,
        "step_value",
    ) == ("Path or parameter name must be a relative path starting with / (e.g. /checkout/success)")
    assert field_error(bad.text, "test_url") == "Test URL is required"
    assert "fire-result" not in bad.text


async def test_deleting_needs_the_sites_name_and_returns_to_the_list(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await owner(client, api, database_url, "hal")
    await o.experiment("Hero test", "start")
    wrong = await post_form(client, f"{o.page}/delete", {"confirm": "Hal"})
    assert wrong.status_code == 400
    assert field_error(wrong.text, "confirm") == (
        "Type the site's name (Hal shop) to confirm deleting it and all its data"
    )
    assert (await client.get(o.page)).status_code == 200
    right = await post_form(client, f"{o.page}/delete", {"confirm": "Hal shop"})
    assert right.status_code == 303
    assert right.headers["location"] == "/sites?notice=deleted"
    listed = await client.get(right.headers["location"])
    assert "Site deleted." in text(listed.text) and "Hal shop" not in listed.text
    assert (await client.get(o.page)).status_code == 404


async def test_a_member_sees_disabled_controls_with_the_reason_and_is_refused(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    o = await owner(client, api, database_url, "ivy")
    exp = await o.experiment("Hero test")
    member = await join(api, inbox, o.token, "jon")
    client.cookies.clear()
    client.cookies.set(SESSION, member["token"])
    html = (await client.get(o.page)).text
    assert html.count('<fieldset class="bare" disabled') == 2
    words = text(html)
    assert "Only an admin or the owner of ivy org can change this site." in words
    assert "Only an admin or the owner of ivy org can delete this site." in words
    for url, form in (
        (f"{o.page}/settings", {"name": "Mine", "url": "https://x.example"}),
        (f"{o.page}/delete", {"confirm": "Ivy shop"}),
    ):
        r = await post_form(client, url, form)
        assert r.status_code == 403, url
    assert (await client.get(o.page)).status_code == 200
    started = await act(o, exp, "start")  # members run experiments, as in the API
    assert started.status_code == 303


async def test_another_organizations_site_and_experiments_are_not_found(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    theirs = await owner(client, api, database_url, "kim")
    their_exp = await theirs.experiment("Kim secret test")
    ours = await owner(client, api, database_url, "lee")
    own_exp = await ours.experiment("Lee test")
    assert (await client.get(theirs.page)).status_code == 404
    attempts = [
        (f"{theirs.page}/experiments/{their_exp['id']}/start", {"version": "1"}),
        (f"{ours.page}/experiments/{their_exp['id']}/start", {"version": "1"}),
        (f"{theirs.page}/experiments/{own_exp['id']}/start", {"version": "1"}),
        (f"{theirs.page}/settings", {"name": "Taken", "url": "https://x.example"}),
        (f"{theirs.page}/rule-test", {"step_method": "page_url", "step_value": "/a", "test_url": "/a"}),
        (f"{theirs.page}/delete", {"confirm": "Kim shop"}),
    ]
    for url, form in attempts:
        r = await post_form(client, url, form)
        assert r.status_code == 404, url
        assert "Kim" not in r.text
    r = await post_form(client, f"{ours.page}/experiments/{own_exp['id']}/launch", {"version": "1"})
    assert r.status_code == 404  # not an action
    assert (await theirs.read(their_exp["id"]))["status"] == "draft"
    assert (await api.get(f"/api/v1/projects/{theirs.site['id']}", headers=theirs.h)).status_code == 200
