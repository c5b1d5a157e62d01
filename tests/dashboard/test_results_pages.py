"""An experiment's results page and the cross-site analytics table, over data seeded through the
real ingestion API."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import re
from typing import Any

import httpx
import pytest

from segmently.stats import NO_WINNER_MESSAGE, SRM_MESSAGE
from tests.core.accounts.test_auth import bearer, signup
from tests.core.accounts.test_team import set_plan
from tests.core.analytics.seed import assign, populate, send
from tests.core.experiments.test_experiments import hero
from tests.dashboard.support import SESSION, assert_labelled, text

pytestmark = pytest.mark.usefixtures("backend")


class Org:
    """An organization made through the API, with a site; ``client`` is signed in to the dashboard."""

    def __init__(self, api: httpx.AsyncClient, body: dict[str, Any], site: dict[str, Any]) -> None:
        self.api = api
        self.id = body["organization"]["id"]
        self.token = body["token"]
        self.h = bearer(body["token"])
        self.site = site
        self.keys: dict[str, str] = {}  # experiment id → its site's API key

    async def add_site(self, name: str) -> dict[str, Any]:
        r = await self.api.post(
            "/api/v1/projects", json={"name": name, "url": f"https://{name.lower()}.example"}, headers=self.h
        )
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    async def experiment(
        self,
        name: str = "Homepage Hero Test",
        *,
        site: dict[str, Any] | None = None,
        start: bool = True,
        **over: Any,
    ) -> dict[str, Any]:
        site = site or self.site
        r = await self.api.post(
            f"/api/v1/projects/{site['id']}/experiments", json=hero(name=name, **over), headers=self.h
        )
        assert r.status_code == 201, r.text
        self.keys[r.json()["id"]] = site["api_key"]
        if not start:
            return r.json()  # type: ignore[no-any-return]
        started = await self.api.post(f"/api/v1/experiments/{r.json()['id']}/start", headers=self.h)
        assert started.status_code == 200, started.text
        return started.json()  # type: ignore[no-any-return]

    async def seed(self, exp: dict[str, Any], counts: dict[str, tuple[int, int]], **kw: Any) -> None:
        """``(visitors, converting visitors)`` per variant key, through ``/api/v1/events/batch``."""
        await populate(self.api, self.keys[exp["id"]], exp, counts, prefix=exp["id"][:8], **kw)


async def org(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str, tag: str, plan: str = "enterprise"
) -> Org:
    body = await signup(api, tag)
    await set_plan(database_url, body["organization"]["id"], plan)
    site = await api.post(
        "/api/v1/projects",
        json={"name": f"{tag.title()} shop", "url": f"https://{tag}.example"},
        headers=bearer(body["token"]),
    )
    assert site.status_code == 201, site.text
    client.cookies.clear()
    client.cookies.set(SESSION, body["token"])
    return Org(api, body, site.json())


def card(html: str, key: str) -> dict[str, str]:
    """A variant card's metrics by ``data-metric`` name (and its title)."""
    match = re.search(rf'<li class="variant-card[^"]*" id="variant-{key}"(.*?)</li>', html, re.S)
    assert match, f"no card for {key}"
    metrics = {m: text(v) for m, v in re.findall(r'<dd data-metric="(\w+)">(.*?)</dd>', match.group(1), re.S)}
    metrics["rate"] = text(re.search(r'<span class="rate-value">(.*?)</span>', match.group(1)).group(1))  # type: ignore[union-attr]
    metrics["classes"] = re.search(rf'class="(variant-card[^"]*)" id="variant-{key}"', html).group(1)  # type: ignore[union-attr]
    return metrics


def block(html: str, element_id: str) -> str:
    """The words of the element with ``id`` (a ``div``, ``table`` or ``figure``)."""
    match = re.search(rf'<(\w+)[^>]* id="{element_id}"[^>]*>(.*?)</\1>', html, re.S)
    return text(match.group(2)) if match else ""


async def test_the_results_page_shows_the_figures_the_winner_and_links_to_the_exports(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    ann = await org(client, api, database_url, "ann")
    exp = await ann.experiment()
    await ann.seed(exp, {"control": (1000, 50), "variant_b": (1000, 150)}, revenue=10.0)

    r = await client.get(f"/experiments/{exp['id']}")
    assert r.status_code == 200, r.text
    html = r.text
    assert "<title>Results · Homepage Hero Test · ann org · Segmently</title>" in html
    assert block(html, "winner") == (
        "Variant B wins : 15.00 % conversion rate, +200.0 % lift over control, 99.9 % confidence."
    )
    assert block(html, "duration").startswith("0 days (since ")
    assert 'id="srm-warning"' not in html
    control, b = card(html, "control"), card(html, "variant_b")
    assert (control["visitors"], control["conversions"], control["rate"]) == ("1,000", "50", "5.00 %")
    assert (b["visitors"], b["conversions"], b["rate"]) == ("1,000", "150", "15.00 %")
    assert (b["revenue"], b["aov"], b["rpv"]) == ("1,500.00", "10.00", "1.50")
    assert (b["confidence"], b["beat"]) == ("99.9 %", "100.0 %")
    assert b["lift"] == "+200.0 %"
    assert re.fullmatch(r"\+\d+\.\d % to \+\d+\.\d %", b["lift_ci"]), b["lift_ci"]  # above zero
    assert "confidence" not in control  # control is what the others are compared with
    assert "best" in b["classes"] and "best" not in control["classes"]
    # the rate bars scale to the best rate
    bars = re.findall(r'<div class="rate-bar" aria-hidden="true"><span style="width: ([\d.]+)%">', html)
    assert bars == ["33.3", "100.0"]
    # the timeline's table: today's visitors and conversions per variant
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert block(html, "timeline-table").endswith(f"{today} 1,000 50 5.00 % 1,000 150 15.00 %")
    assert f'href="/experiments/{exp["id"]}/edit/details"' in html
    assert f'href="/sites/{ann.site["id"]}"' in html

    # the export buttons are plain links the session cookie can follow
    csv_href = f"/api/v1/experiments/{exp['id']}/results/export?format=csv"
    json_href = f"/api/v1/experiments/{exp['id']}/results/export?format=json"
    assert (
        f'href="{csv_href}" download>Export CSV' in html
        and f'href="{json_href}" download>Export JSON' in html
    )
    got = await client.get(csv_href)
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert 'filename="homepage-hero-test-results.csv"' in got.headers["content-disposition"]
    variants = [row for row in csv.DictReader(io.StringIO(got.text)) if row["row_type"] == "variant"]
    assert [(v["variant_key"], v["visitors"], v["conversions"]) for v in variants] == [
        ("control", "1000", "50"),
        ("variant_b", "1000", "150"),
    ]
    got = await client.get(json_href)
    assert got.status_code == 200
    assert [v["conversions"] for v in got.json()["variants"]] == [50, 150]


async def test_an_unbalanced_split_shows_the_srm_warning_and_no_winner(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    bob = await org(client, api, database_url, "bob")
    exp = await bob.experiment()  # 50/50
    await bob.seed(exp, {"control": (1000, 50), "variant_b": (1300, 200)})
    html = (await client.get(f"/experiments/{exp['id']}")).text
    warning = block(html, "srm-warning")
    assert warning.startswith(
        "Sample ratio mismatch. The visitors (Control 1,000, Variant B 1,300) do not match"
    )
    assert "the configured split (50.0 / 50.0)" in warning
    assert block(html, "winner") == SRM_MESSAGE
    assert "wins" not in block(html, "winner")
    assert card(html, "variant_b")["rate"] == "15.38 %"  # the figures still show


async def test_a_draft_has_no_winner_no_timeline_and_no_duration(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    cy = await org(client, api, database_url, "cy")
    exp = await cy.experiment("Pricing page", start=False)
    html = (await client.get(f"/experiments/{exp['id']}")).text
    assert block(html, "winner") == NO_WINNER_MESSAGE == "No clear winner yet; collect more data"
    assert block(html, "duration") == "Not started yet"
    assert "No days yet: the timeline starts when the experiment goes live." in text(html)
    assert 'id="timeline-data"' not in html and "uPlot" not in html  # no chart script without days
    assert card(html, "control")["visitors"] == "0"


async def test_the_variant_cards_sort_by_rate(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    dee = await org(client, api, database_url, "dee")
    exp = await dee.experiment()
    await dee.seed(exp, {"control": (100, 20), "variant_b": (100, 5)})
    setup = (await client.get(f"/experiments/{exp['id']}")).text
    assert re.findall(r'id="variant-(\w+)"', setup) == ["control", "variant_b"]
    by_rate = (await client.get(f"/experiments/{exp['id']}?cards=rate")).text
    assert re.findall(r'id="variant-(\w+)"', by_rate) == ["control", "variant_b"]
    odd = await client.get(f"/experiments/{exp['id']}?cards=nonsense")
    assert odd.status_code == 200  # an unknown order is the setup's order
    assert f'<a href="/experiments/{exp["id"]}?cards=rate" aria-current="true">Rate</a>' in by_rate
    b_wins = await dee.experiment("Second", site=await dee.add_site("Other"))
    await dee.seed(b_wins, {"control": (100, 5), "variant_b": (50, 20)})
    html = (await client.get(f"/experiments/{b_wins['id']}?cards=rate")).text
    assert re.findall(r'id="variant-(\w+)"', html) == ["variant_b", "control"]
    html = (await client.get(f"/experiments/{b_wins['id']}?cards=visitors")).text
    assert re.findall(r'id="variant-(\w+)"', html) == ["control", "variant_b"]


async def test_goals_and_funnels_are_broken_down_and_funnels_need_a_plan_that_has_them(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    eve = await org(client, api, database_url, "eve")
    goals = [
        {"type": "custom_event", "name": "Purchase", "primary": True, "event_name": "conversion"},
        {"type": "custom_event", "name": "Signup", "event_name": "signup"},
    ]
    funnel = {
        "name": "Checkout",
        "steps": [{"label": "Home", "url": "/"}, {"label": "Paid", "url": "/thanks"}],
    }
    exp = await eve.experiment(goals=goals, funnels=[funnel])
    key = eve.site["api_key"]
    people = {
        "a": "control",
        "b": "control",
        "c": "control",
        "d": "control",
        "e": "variant_b",
        "f": "variant_b",
    }
    await send(api, key, [assign(exp, k, v) for v, k in people.items()])
    base = "https://eve.example"
    views = [("a", "/"), ("a", "/thanks"), ("b", "/"), ("e", "/"), ("e", "/thanks"), ("f", "/")]
    await send(api, key, [{"event_name": "page_view", "visitor_id": v, "url": base + p} for v, p in views])
    await send(api, key, [{"event_name": "signup", "visitor_id": v} for v in ("a", "b", "e")])

    html = (await client.get(f"/experiments/{exp['id']}")).text
    signup_id = next(
        g["id"]
        for g in (await api.get(f"/api/v1/experiments/{exp['id']}", headers=eve.h)).json()["goals"]
        if g["name"] == "Signup"
    )
    assert block(html, f"goal-{signup_id}") == (
        "Signup Variant Conversions Rate Revenue Confidence Lift "
        "Control 2 50.00 % 0.00 — — Variant B 1 50.00 % 0.00 0.0 % +0.0 %"
    )
    chart = re.search(r'<figure class="chart funnel" id="funnel-[^"]+">(.*?)</figure>', html, re.S)
    assert chart, html
    assert "Control: 25.0 % completed" in text(chart.group(1)) and "Variant B: 50.0 % completed" in text(
        chart.group(1)
    )
    # bars are drawn: Home 50 % / 100 %, Paid 25 % / 50 % of a 380-unit span
    widths = re.findall(r'<rect x="150" y="[\d.]+" width="([\d.]+)"', chart.group(1))
    assert widths == ["190.0", "380.0", "95.0", "190.0"]
    table = re.search(r'<table class="visually-hidden">(.*?)</table>', chart.group(1), re.S)
    assert table and "Paid 1 (25.0 %, drop-off 50.0 %) 1 (50.0 %, drop-off 50.0 %)" in text(table.group(1))

    await set_plan(database_url, eve.id, "free")
    html = (await client.get(f"/experiments/{exp['id']}")).text
    assert 'class="chart funnel"' not in html
    upgrade = re.search(r'<section class="panel" aria-labelledby="funnels-title">(.*?)</section>', html, re.S)
    assert upgrade and "Funnel goals" in text(upgrade.group(1)) and "Professional" in text(upgrade.group(1))
    assert 'href="/settings">See your plan' in upgrade.group(1)


async def test_another_organizations_experiment_is_not_found(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    fay = await org(client, api, database_url, "fay")
    theirs = await fay.experiment()
    await org(client, api, database_url, "gus")  # the client is gus now
    r = await client.get(f"/experiments/{theirs['id']}")
    assert r.status_code == 404 and "No such experiment" in r.text
    assert "Homepage Hero Test" not in r.text
    assert (
        await client.get(f"/api/v1/experiments/{theirs['id']}/results/export?format=csv")
    ).status_code == 404
    assert (await client.get("/experiments/nope")).status_code == 404


def overview_rows(html: str) -> list[list[str]]:
    """The analytics table's rows: the words of each cell."""
    body = re.search(r'<table class="table overview-table" id="overview">.*?<tbody>(.*?)</tbody>', html, re.S)
    assert body, html
    return [
        [text(cell) for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    ]


async def test_the_analytics_table_filters_sorts_and_sums(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    hal = await org(client, api, database_url, "hal")
    blog = await hal.add_site("Blog")
    small = await hal.experiment("Small")
    winner = await hal.experiment("Winner", site=blog)
    await hal.experiment("Idea", start=False)
    await hal.seed(small, {"control": (40, 4), "variant_b": (40, 6)})
    await hal.seed(winner, {"control": (1000, 50), "variant_b": (1000, 150)})
    ivy = await org(client, api, database_url, "ivy")  # another organization's experiment is never listed
    ivy_exp = await ivy.experiment("Not yours")
    client.cookies.set(SESSION, hal.token)

    html = (await client.get("/analytics")).text
    rows = overview_rows(html)
    assert [r[0] for r in rows] == ["Idea", "Winner", "Small"]  # newest first
    assert rows[1] == [
        "Winner",
        "Blog",
        "Live",
        "2,000",
        "200",
        "10.00 %",
        "+200.0 %",
        "99.9 %",
        "Variant B",
        rows[1][9],
    ]
    assert rows[2][3:9] == ["80", "10", "12.50 %", "+50.0 %", rows[2][7], "—"]
    assert rows[0][3:9] == ["0", "0", "0.00 %", "—", "—", "—"]  # a draft never ran
    assert f'<a href="/experiments/{winner["id"]}">Winner</a>' in html
    assert "Not yours" not in html and ivy_exp["id"] not in html
    assert block(html, "overview-total") == "All 3 listed 2,080 210 10.10 %"
    assert [block(html, f"stat-{s}") for s in ("total", "live", "paused", "draft", "archived")] == [
        "3",
        "2",
        "0",
        "1",
        "0",
    ]
    assert re.search(r'<span class="usage" [^>]*>3/∞ experiments</span>', html)

    # the headers sort: visitors descending first, the same header again flips the order
    assert '<th scope="col" class="num" aria-sort="descending"><a href="/analytics?order=asc">Created' in html
    link = re.search(r'<a href="([^"]+)">Visitors</a>', html)
    assert link and link.group(1) == "/analytics?sort=visitors"
    html = (await client.get(link.group(1))).text
    assert [r[0] for r in overview_rows(html)] == ["Winner", "Small", "Idea"]
    assert 'aria-sort="descending"><a href="/analytics?sort=visitors&amp;order=asc">Visitors' in html
    html = (await client.get("/analytics?sort=visitors&order=asc")).text
    assert [r[0] for r in overview_rows(html)] == ["Idea", "Small", "Winner"]
    html = (await client.get("/analytics?sort=rate")).text
    assert [r[0] for r in overview_rows(html)] == ["Small", "Winner", "Idea"]

    # filters: a site, a state; the sort survives in the form
    html = (await client.get(f"/analytics?site={blog['id']}&sort=visitors")).text
    assert [r[0] for r in overview_rows(html)] == ["Winner"]
    assert f'<option value="{blog["id"]}" selected>Blog</option>' in html
    assert '<input type="hidden" name="sort" value="visitors">' in html
    assert f'href="/analytics?site={blog["id"]}&amp;sort=conversions"' in html  # header links keep the filter
    html = (await client.get("/analytics?status=draft")).text
    assert [r[0] for r in overview_rows(html)] == ["Idea"]
    assert block(html, "stat-total") == "3"  # the summary counts before the state filter
    html = (await client.get("/analytics?range=7d&status=paused")).text
    assert "No experiment matches these filters." in text(html)
    assert (await client.get("/analytics?status=bogus&sort=bogus&range=1y")).status_code == 200  # ignored
    assert (await client.get(f"/analytics?site={ivy.site['id']}")).status_code == 404


async def test_the_analytics_page_shows_the_upgrade_prompt_on_the_free_plan(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    await org(client, api, database_url, "jo", plan="free")
    html = (await client.get("/analytics")).text
    prompt = re.search(r'<p class="alert-box upgrade" role="status">(.*?)</p>', html, re.S)
    assert prompt and "A/B tests" in text(prompt.group(1)) and "Professional" in text(prompt.group(1))
    assert re.search(r'<span class="usage at-limit" [^>]*>0/0 experiments</span>', html)
    assert "No experiments yet." in text(html)


async def test_both_pages_label_their_controls_and_stay_under_100_kb_of_gzipped_js_and_css(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    kim = await org(client, api, database_url, "kim")
    exp = await kim.experiment()
    await kim.seed(exp, {"control": (10, 1), "variant_b": (10, 2)})
    weights = {}
    for url in (f"/experiments/{exp['id']}", "/analytics"):
        html = (await client.get(url)).text
        assets = re.findall(r'<script src="([^"]+)"', html) + re.findall(
            r'<link rel="stylesheet" href="([^"]+)"', html
        )
        weights[url] = sum([len(gzip.compress((await client.get(a)).content, 9)) for a in assets])
        if url == "/analytics":
            assert assert_labelled(url, html) == 3  # site, state, time range
    results_assets = re.findall(
        r'<script src="([^"]+)"', (await client.get(f"/experiments/{exp['id']}")).text
    )
    assert any("uPlot.iife.min.js" in a for a in results_assets) and any(
        "results.js" in a for a in results_assets
    )
    assert all(w <= 100 * 1024 for w in weights.values()), weights
