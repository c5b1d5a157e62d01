"""The snippet on a customer's page in Chromium: variants without a flash, events in the database, goals.

Flashes are looked for in every frame Chromium renders while the page loads: an init script (it
runs before any of the page's scripts) checks on each animation frame whether the original
headline is on screen (the page not hidden by the curtain).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from playwright.async_api import Page, expect

from tests.browser.conftest import BROWSER, Shop, snippet_tag
from tests.browser.support import (
    CHANGED,
    HERO,
    ORIGINAL,
    events_of,
    experiment,
    shop_site,
    variants,
    wait_rows,
)
from tests.core.events.test_ingest import ids, rows

pytestmark = BROWSER

FRAME_SAMPLER = f"""
window.__frames = {{shown: 0, hidden: 0, flashes: 0}};
(function sample() {{
  const root = document.documentElement;
  const hidden = root && getComputedStyle(root).opacity === "0";
  const hero = document.querySelector("h1.hero");
  window.__frames[hidden ? "hidden" : "shown"]++;
  if (!hidden && hero && hero.textContent.includes({json.dumps(ORIGINAL)})) window.__frames.flashes++;
  requestAnimationFrame(sample);
}})();
"""


def data(value: Any) -> dict[str, Any]:
    """``event_data`` as stored: JSON text on SQLite, a decoded value on PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else (value or {})


async def visitors_in(database_url: str, experiment_id: str) -> int:
    sql = "SELECT id FROM experiment_visitors WHERE experiment_id = :e"
    return len(await rows(database_url, sql, e=experiment_id))


async def revealed(page: Page) -> None:
    await page.wait_for_function("getComputedStyle(document.documentElement).opacity === '1'")


async def test_first_and_returning_visits_see_the_variant_without_a_flash_and_are_recorded_once(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await shop_site(api, database_url)
    exp = await experiment(api, h, site)
    url = shop.add("/", HERO, tag=snippet_tag(segmently, site["api_key"]))
    await page.add_init_script(FRAME_SAMPLER)

    await page.goto(url)  # first visit: no stored config, the curtain waits for it
    await expect(page.locator("h1.hero")).to_have_text(CHANGED)
    await revealed(page)
    frames = await page.evaluate("window.__frames")
    assert frames["flashes"] == 0 and frames["hidden"] > 0, frames
    visitor = await page.evaluate("Segmently.getVisitorId()")
    assert await page.evaluate("Segmently.getVariant('hero-test')") == "variant_b"
    assert await page.evaluate("Segmently.getAllAssignments()") == {"hero-test": "variant_b"}
    assigned = await wait_rows(
        database_url,
        "SELECT variant_id FROM experiment_visitors WHERE experiment_id = :e AND visitor_id = :v",
        1,
        e=exp["id"],
        v=visitor,
    )
    assert assigned[0][0] == ids(exp)["variant_b"]
    views = await wait_rows(
        database_url,
        "SELECT url, event_data FROM events WHERE site_id = :s AND event_name = 'page_view'",
        1,
        s=site["id"],
    )
    assert views[0][0] == url and data(views[0][1])["hidden_ms"] > 0

    await page.reload()  # returning: the stored config applies before any request answers
    await expect(page.locator("h1.hero")).to_have_text(CHANGED)
    await revealed(page)
    assert (await page.evaluate("window.__frames"))["flashes"] == 0
    assert await page.evaluate("Segmently.getVisitorId()") == visitor
    await wait_rows(
        database_url, "SELECT id FROM events WHERE site_id = :s AND event_name = 'page_view'", 2, s=site["id"]
    )
    await asyncio.sleep(1.5)  # anything else the snippet would send has been sent by now
    assignments = await events_of(database_url, site["id"], "assignment")
    assert [(e[1], e[2], e[3]) for e in assignments] == [(visitor, exp["id"], ids(exp)["variant_b"])]
    assert page.console_errors == []  # type: ignore[attr-defined]


async def test_a_page_no_experiment_targets_is_never_hidden_nor_changed(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await shop_site(api, database_url)
    exp = await experiment(api, h, site, targeting={"url_rules": [{"type": "contains", "value": "/pricing"}]})
    tag = snippet_tag(segmently, site["api_key"])
    pricing, home = shop.add("/pricing", HERO, tag=tag), shop.add("/", HERO, tag=tag)
    await page.goto(pricing)
    await expect(page.locator("h1.hero")).to_have_text(CHANGED)
    await page.add_init_script(FRAME_SAMPLER)
    await page.goto(home)  # the config is stored now: the snippet knows nothing targets this page
    await page.wait_for_function("window.Segmently && window.__frames.shown > 5")
    frames = await page.evaluate("window.__frames")
    assert frames["hidden"] == 0, frames
    await expect(page.locator("h1.hero")).to_have_text(ORIGINAL)
    views = await wait_rows(
        database_url,
        "SELECT url FROM events WHERE site_id = :s AND event_name = 'page_view'",
        2,
        s=site["id"],
    )
    assert sorted(v[0] for v in views) == sorted([pricing, home])
    assert len(await events_of(database_url, site["id"], "assignment")) == 1
    assert await visitors_in(database_url, exp["id"]) == 1


async def test_every_change_type_applies_and_a_throwing_script_is_reported_once(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await shop_site(api, database_url)
    changes = [
        {"type": "hide", "selector": "p.lead"},
        {"type": "html", "selector": "button.cta", "html": "<b>Buy now</b>"},
        {"type": "text", "selector": "h1.hero", "text": CHANGED},
        {"type": "css", "selector": "h1.hero", "css": "color: rgb(0, 128, 0)"},
        {"type": "css", "css": ".cta { border: 3px solid rgb(255, 0, 0) }"},
        {"type": "js", "code": "document.body.dataset.changed = 'yes'"},
        {"type": "text", "selector": ".late", "text": "Late and changed"},
    ]
    exp_variants = variants(
        *changes, custom_js="throw new Error('boom')", custom_css=".hero { font-size: 40px }"
    )
    await experiment(api, h, site, variants=exp_variants)
    # an element that only appears after the snippet ran (a single-page app rendering late)
    late = (
        "<script>setTimeout(() => document.body.insertAdjacentHTML("
        "'beforeend', \"<p class='late'>Late</p>\"), 300)</script>"
    )
    await page.goto(shop.add("/", HERO + late, tag=snippet_tag(segmently, site["api_key"])))
    await revealed(page)
    await expect(page.locator("h1.hero")).to_have_text(CHANGED)
    await expect(page.locator("p.lead")).to_be_hidden()
    assert await page.inner_html("button.cta") == "<b>Buy now</b>"
    await expect(page.locator("h1.hero")).to_have_css("color", "rgb(0, 128, 0)")
    await expect(page.locator("h1.hero")).to_have_css("font-size", "40px")
    await expect(page.locator("button.cta")).to_have_css("border-top-color", "rgb(255, 0, 0)")
    assert await page.evaluate("document.body.dataset.changed") == "yes"
    await expect(page.locator("p.late")).to_have_text("Late and changed")
    errors = [e for e in page.console_errors if "Segmently" in e]  # type: ignore[attr-defined]
    assert len(errors) == 1 and "boom" in errors[0], page.console_errors  # type: ignore[attr-defined]


async def test_click_and_page_goals_and_a_funnel_reach_the_results(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await shop_site(api, database_url)
    goals = [
        {"type": "click", "name": "Buy", "selector": ".cta", "primary": True},
        {"type": "page_view", "name": "Thanks", "url": "/thanks"},
        {"type": "form_submit", "name": "Signup", "selector": "form.signup"},
    ]
    funnel = {
        "name": "Checkout",
        "steps": [
            {"label": "Home", "url": "/"},
            {"label": "Cart", "url": "/cart"},
            {"label": "Thanks", "url": "/thanks"},
        ],
    }
    exp = await experiment(api, h, site, goals=goals, funnels=[funnel])
    tag = snippet_tag(segmently, site["api_key"])
    form = (
        "<form class='signup' action='/thanks'><input name='email' aria-label='Email'>"
        "<button>Sign up</button></form>"
    )
    home = shop.add("/", HERO + "<a href='/cart' id='cart'>Cart</a>", tag=tag)
    shop.add("/cart", HERO + form, tag=tag)
    shop.add("/thanks", "<p>Thank you</p>", tag=tag)
    await page.goto(home)
    await revealed(page)
    await page.click("button.cta")
    await page.click("#cart")
    await page.wait_for_url("**/cart")
    await page.fill("input[name=email]", "a@example.com")
    await page.click("form.signup button")
    await page.wait_for_url("**/thanks**")
    await revealed(page)
    goal_ids = {g["name"]: g["id"] for g in exp["goals"]}
    credited = await wait_rows(
        database_url, "SELECT goal_id FROM experiment_conversions WHERE experiment_id = :e", 3, e=exp["id"]
    )
    assert sorted(c[0] for c in credited) == sorted(goal_ids.values())
    steps = await wait_rows(
        database_url,
        "SELECT steps FROM funnel_progress WHERE experiment_id = :e AND steps = 3",
        1,
        e=exp["id"],
    )
    assert steps[0][0] == 3
    results = (await api.get(f"/api/v1/experiments/{exp['id']}/results", headers=h)).json()
    b = next(v for v in results["variants"] if v["key"] == "variant_b")
    assert b["visitors"] == 1 and b["conversions"] == 1


async def test_goals_count_for_a_bucketed_visitor_on_pages_outside_the_experiments_url_rules(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    """The usual set-up: the experiment runs on /pricing, its goals are reached elsewhere."""
    h, site = await shop_site(api, database_url)
    goals = [
        {"type": "page_view", "name": "Thanks", "url": "/thanks", "primary": True},
        {"type": "click", "name": "Checkout", "selector": "#checkout"},
    ]
    exp = await experiment(
        api, h, site, goals=goals, targeting={"url_rules": [{"type": "contains", "value": "/pricing"}]}
    )
    tag = snippet_tag(segmently, site["api_key"])
    pricing = shop.add("/pricing", HERO + "<a href='/cart' id='cart'>Cart</a>", tag=tag)
    shop.add("/cart", HERO + "<a href='/thanks' id='checkout'>Checkout</a>", tag=tag)
    shop.add("/thanks", HERO, tag=tag)
    await page.goto(pricing)
    await expect(page.locator("h1.hero")).to_have_text(CHANGED)  # bucketed here
    await page.click("#cart")
    await page.wait_for_url("**/cart")
    await expect(page.locator("h1.hero")).to_have_text(ORIGINAL)  # outside the URL rules: not applied
    await page.click("#checkout")
    await page.wait_for_url("**/thanks")
    goal_ids = sorted(g["id"] for g in exp["goals"])
    sql = "SELECT goal_id, variant_id FROM experiment_conversions WHERE experiment_id = :e"
    credited = await wait_rows(database_url, sql, 2, e=exp["id"])
    b = next(v["id"] for v in exp["variants"] if v["key"] == "variant_b")
    assert sorted(c[0] for c in credited) == goal_ids and {c[1] for c in credited} == {b}
    results = (await api.get(f"/api/v1/experiments/{exp['id']}/results", headers=h)).json()
    assert next(v for v in results["variants"] if v["key"] == "variant_b")["conversions"] == 1


async def test_pages_left_before_the_track_chunk_ran_still_send_goals_and_engagement(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    """With the chunk held back (as a slow network or a blocker would), the core's beacon carries
    what the chunk would have sent: the click goal of a link followed at once, each page's time on
    page, and the bounce of a page left without interacting."""
    h, site = await shop_site(api, database_url)
    goals = [{"type": "click", "name": "Buy", "selector": "a.buy", "primary": True}]
    exp = await experiment(api, h, site, goals=goals)
    tag = snippet_tag(segmently, site["api_key"])
    home = shop.add("/", HERO + "<a class='buy' href='/glance'>Buy now</a>", tag=tag)
    shop.add("/glance", "<p>Just a glance</p>", tag=tag)
    shop.add("/end", "<p>The end</p>")
    await page.route("**/snippet/track.js", lambda route: route.abort("blockedbyclient"))
    await page.goto(home)
    await revealed(page)
    visitor = await page.evaluate("Segmently.getVisitorId()")
    await page.click("a.buy")  # clicked: an interaction, the goal counts
    await page.wait_for_url("**/glance")
    await page.wait_for_function("window.Segmently && Segmently.getVisitorId()")
    await page.goto(shop.url("/end"))  # left at once without interacting: a bounce
    credited = await wait_rows(
        database_url,
        "SELECT visitor_id, goal_id FROM experiment_conversions WHERE experiment_id = :e",
        1,
        e=exp["id"],
    )
    assert credited == [(visitor, exp["goals"][0]["id"])], (credited, visitor)
    spent = await wait_rows(
        database_url,
        "SELECT url, event_data FROM events WHERE site_id = :s AND event_name = 'time_on_page' ORDER BY url",
        2,
        s=site["id"],
    )
    assert [url for url, _ in spent] == [home, shop.url("/glance")]
    assert all(0 <= data(d)["seconds"] < 5 for _, d in spent)
    bounces = await wait_rows(
        database_url,
        "SELECT url, visitor_id FROM events WHERE site_id = :s AND event_name = 'bounce'",
        1,
        s=site["id"],
    )
    assert bounces == [(shop.url("/glance"), visitor)]


async def test_events_sent_while_the_network_was_down_arrive_later_once(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await shop_site(api, database_url)
    exp = await experiment(api, h, site)
    tag = snippet_tag(segmently, site["api_key"])
    first, second = shop.add("/", HERO, tag=tag), shop.add("/next", HERO, tag=tag)
    refused: list[str] = []

    async def down(route: Any) -> None:
        refused.append(route.request.url)
        await route.abort("connectionrefused")

    await page.route("**/api/v1/events/**", down)
    await page.goto(first)
    await revealed(page)
    await page.evaluate("Segmently.track('cta_click', {section: 'hero'})")
    await asyncio.sleep(2.5)  # the snippet tried (and will try again)
    assert refused and await events_of(database_url, site["id"]) == []
    await page.unroute("**/api/v1/events/**")
    await page.goto(second)  # the next page sends what the last one could not
    await revealed(page)
    await wait_rows(database_url, "SELECT id FROM events WHERE site_id = :s", 4, s=site["id"])
    await asyncio.sleep(2)  # and nothing arrives twice (retries carry the same event ids)
    got = await rows(database_url, "SELECT event_name, url FROM events WHERE site_id = :s", s=site["id"])
    names = sorted(g[0] for g in got if g[0] not in ("time_on_page", "bounce"))  # the first page's exit
    assert names == ["assignment", "cta_click", "page_view", "page_view"], got
    assert sorted(g[1] for g in got if g[0] == "page_view") == sorted([first, second])
    assert len([g for g in got if g[0] == "time_on_page"]) <= 1
    assert await visitors_in(database_url, exp["id"]) == 1
