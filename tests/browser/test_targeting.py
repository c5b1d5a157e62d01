"""Targeting in Chromium: URL rule types, device, country, visitor type, attributes, referral source,
traffic, and the behavioral triggers (scroll, time, click) of the spec's Targeting and Audience tabs.

Each experiment here outlines one marker of the page (``<p id="...">``) in green, so one page load
shows at once which experiments applied. (An inline style, not a text change: a text change applied
while the page is still being parsed is a bug of its own, tested in test_resilience.py.)
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, Route, expect

from tests.browser.conftest import BROWSER, Shop, snippet_tag
from tests.browser.support import (
    CHANGED,
    HERO,
    ORIGINAL,
    events_of,
    experiment,
    fresh_page,
    revealed,
    shop_site,
    variants,
    wait_rows,
)
from tests.conftest import make_settings, serve_app

pytestmark = BROWSER

COUNTRY_HEADER = "CF-IPCountry"
GREEN = "rgb(0, 128, 0)"
# counts the frames rendered while the page was hidden by the curtain (init script: before any page script)
HIDDEN_FRAMES = """
window.__hidden = 0;
(function sample() {
  const root = document.documentElement;
  if (root && getComputedStyle(root).opacity === "0") window.__hidden++;
  requestAnimationFrame(sample);
})();
"""


def markers(*names: str) -> str:
    return "".join(f"<p id='{n}'>{n}</p>" for n in names)


async def marker_experiment(
    api: httpx.AsyncClient, h: dict[str, str], site: dict[str, Any], mark: str, **over: Any
) -> dict[str, Any]:
    """A live experiment named ``mark`` (every visitor in ``variant_b``) that outlines ``#mark``."""
    over.setdefault("targeting", {"url_rules": [{"type": "contains", "value": "/"}]})
    return await experiment(
        api,
        h,
        site,
        name=mark,
        variants=variants({"type": "css", "selector": f"#{mark}", "css": f"outline: 3px solid {GREEN}"}),
        **over,
    )


async def applied(page: Page, *names: str) -> set[str]:
    """The markers outlined, once the page is shown."""
    await revealed(page)
    await page.wait_for_function("window.Segmently && Segmently.getVisitorId() !== null")
    found = await page.evaluate(
        "([names, green]) => names.filter("
        "n => getComputedStyle(document.getElementById(n)).outlineColor === green)",
        [list(names), GREEN],
    )
    return set(found)


async def test_each_url_rule_type_applies_on_matching_pages_only(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await shop_site(api, database_url)
    rules = {
        "exact": "/pricing",  # a path alone: the query and a trailing slash are ignored
        "contains": "sale",
        "starts_with": shop.url("/blog/"),
        "ends_with": ".html",  # the query does not count
        "regex": r"/item/\d+$",
    }
    for mark, value in rules.items():
        await marker_experiment(api, h, site, mark, targeting={"url_rules": [{"type": mark, "value": value}]})
    tag = snippet_tag(segmently, site["api_key"])
    expected = {
        "/pricing?ref=1": {"exact"},
        "/pricing/": {"exact"},
        "/pricing/plans": set(),
        "/blog/summer-sale.html": {"contains", "starts_with", "ends_with"},
        "/shop/sale.htm": {"contains"},
        "/page.html?x=1": {"ends_with"},
        "/item/42": {"regex"},
        "/item/42/reviews": set(),
        "/news/blog/x": set(),
    }
    got = {}
    for path in expected:
        shop.add(path.split("?")[0], markers(*rules), tag=tag)
        await page.goto(shop.url(path))
        got[path] = await applied(page, *rules)
    assert got == expected
    assert page.console_errors == []  # type: ignore[attr-defined]


async def test_device_targeting_follows_the_viewport_width(
    browser: Browser, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await shop_site(api, database_url)
    for device in ("mobile", "tablet", "desktop"):
        await marker_experiment(api, h, site, device, targeting={"url_rules": [], "devices": [device]})
    url = shop.add("/", markers("mobile", "tablet", "desktop"), tag=snippet_tag(segmently, site["api_key"]))
    for width, device in ((375, "mobile"), (800, "tablet"), (1280, "desktop")):
        async with fresh_page(browser, viewport={"width": width, "height": 700}) as p:
            await p.goto(url)
            assert await applied(p, "mobile", "tablet", "desktop") == {device}, width
            visitor = await p.evaluate("Segmently.getVisitorId()")
            # and the page view is recorded with that device type
            view = await wait_rows(
                database_url,
                "SELECT device_type FROM events WHERE visitor_id = :v AND event_name = 'page_view'",
                1,
                v=visitor,
            )
            assert view[0][0] == device


@pytest.fixture
async def geo(database_url: str, tmp_path: Path, snippet_dist: Path, plugins: object) -> AsyncIterator[str]:
    """The Segmently server trusting a proxy's country header (``SEGMENTLY_COUNTRY_HEADER``)."""
    from segmently.app import create_app

    settings = make_settings(database_url, tmp_path, snippet_dir=snippet_dist, country_header=COUNTRY_HEADER)
    async with serve_app(create_app(settings, plugins)) as base:  # type: ignore[arg-type]
        yield base


def from_country(country: str) -> Callable[[Route], Awaitable[None]]:
    async def handle(route: Route) -> None:
        await route.continue_(headers={**route.request.headers, COUNTRY_HEADER: country})

    return handle


async def test_country_targeting_uses_the_country_the_proxy_reports(
    browser: Browser, shop: Shop, geo: str, database_url: str
) -> None:
    async with httpx.AsyncClient(base_url=geo, timeout=10) as client:
        h, site = await shop_site(client, database_url)
        await marker_experiment(client, h, site, "germany", targeting={"url_rules": [], "countries": ["DE"]})
        await marker_experiment(client, h, site, "anywhere")
    url = shop.add("/", markers("germany", "anywhere"), tag=snippet_tag(geo, site["api_key"]))
    for country, expected in (("DE", {"germany", "anywhere"}), ("FR", {"anywhere"})):
        async with fresh_page(browser) as p:
            # what the visitor's proxy (Cloudflare …) adds on the way to the server; a header the
            # page itself sent would need a CORS preflight the real set-up never makes
            await p.route("**/api/v1/sdk/config?*", from_country(country))
            await p.goto(url)
            assert await applied(p, "germany", "anywhere") == expected, country
            assert p.console_errors == []  # type: ignore[attr-defined]


async def test_new_and_returning_visitors_are_told_apart_by_the_first_visit_cookie(
    browser: Browser, page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await shop_site(api, database_url)
    await marker_experiment(
        api,
        h,
        site,
        "newcomer",
        targeting={"url_rules": [{"type": "contains", "value": "/landing"}]},
        audience={"visitor_type": "new"},
    )
    await marker_experiment(api, h, site, "regular", audience={"visitor_type": "returning"})
    tag = snippet_tag(segmently, site["api_key"])
    home = shop.add("/", markers("newcomer", "regular"), tag=tag)
    landing = shop.add("/landing", markers("newcomer", "regular"), tag=tag)

    await page.goto(home)  # a first visit: not returning, and the new-only experiment is not here
    assert await applied(page, "newcomer", "regular") == set()
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    assert "_seg_visitor" in cookies
    await page.goto(landing)  # the same visitor again: returning now
    assert await applied(page, "newcomer", "regular") == {"regular"}

    async with fresh_page(browser) as p:  # someone else's first visit lands on /landing
        await p.goto(landing)
        assert await applied(p, "newcomer", "regular") == {"newcomer"}


async def test_attribute_rules_use_attributes_set_earlier_and_reserved_keys_are_dropped(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await shop_site(api, database_url)
    await marker_experiment(
        api,
        h,
        site,
        "pro",
        audience={
            "attribute_rules": [
                {"key": "plan", "operator": "equals", "value": "pro"},
                {"key": "seats", "operator": "greater_than", "value": "5"},
            ]
        },
    )
    await marker_experiment(
        api, h, site, "anonymous", audience={"attribute_rules": [{"key": "plan", "operator": "not_exists"}]}
    )
    url = shop.add("/", markers("pro", "anonymous"), tag=snippet_tag(segmently, site["api_key"]))
    await page.goto(url)
    assert await applied(page, "pro", "anonymous") == {"anonymous"}
    attrs = (
        '{"plan": "pro", "seats": 12, "__proto__": {"polluted": "yes"}, "constructor": "x", "prototype": 1}'
    )
    await page.evaluate(f"Segmently.setAttributes(JSON.parse({json.dumps(attrs)}))")
    # the page already evaluated keeps what it has (the spec: attributes count from the next evaluation)
    assert await applied(page, "pro", "anonymous") == {"anonymous"}
    stored = json.loads(await page.evaluate("localStorage.getItem('seg_attributes')"))
    assert stored == {"plan": "pro", "seats": 12}
    assert await page.evaluate("({}).polluted") is None
    await page.reload()
    # the anonymous experiment was assigned before, and an assignment sticks
    assert await applied(page, "pro", "anonymous") == {"pro", "anonymous"}
    assert page.console_errors == []  # type: ignore[attr-defined]


async def test_referral_source_gate_reads_utm_parameters_and_the_referrer(
    browser: Browser, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await shop_site(api, database_url)
    sources = ("paid", "organic", "social", "direct")
    for source in sources:
        await marker_experiment(api, h, site, source, audience={"referral_sources": [source]})
    shop.add("/", markers(*sources), tag=snippet_tag(segmently, site["api_key"]))
    shop.add("/from", "<a id='go' href='/'>Shop</a>")  # the site's own page linking in: direct
    visits: list[tuple[str, str | None, set[str]]] = [
        ("/?utm_source=google&utm_medium=cpc", None, {"paid"}),
        ("/", "http://www.google.com/search?q=shoes", {"organic"}),
        ("/", "http://m.facebook.com/some/post", {"social"}),
        ("/", None, {"direct"}),
        ("/?utm_source=partner", "http://www.google.com/", set()),  # UTM wins: "other"
    ]
    for path, referrer, expected in visits:
        async with fresh_page(browser) as p:
            await p.goto(shop.url(path), referer=referrer)
            assert await applied(p, *sources) == expected, (path, referrer)
    async with fresh_page(browser) as p:
        await p.goto(shop.url("/from"))
        await p.click("#go")
        await p.wait_for_url(shop.url("/"))
        assert await p.evaluate("document.referrer") == shop.url("/from")
        assert await applied(p, *sources) == {"direct"}


async def test_traffic_percentage_zero_leaves_everyone_out_and_hundred_takes_everyone(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await shop_site(api, database_url)
    none = await marker_experiment(api, h, site, "none", targeting={"url_rules": [], "traffic_percentage": 0})
    everyone = await marker_experiment(
        api, h, site, "everyone", targeting={"url_rules": [], "traffic_percentage": 100}
    )
    url = shop.add("/", markers("none", "everyone"), tag=snippet_tag(segmently, site["api_key"]))
    await page.goto(url)
    visitors = set()
    for _ in range(4):  # four visitors: reset() gives a new one for the next page view
        assert await applied(page, "none", "everyone") == {"everyone"}
        assert await page.evaluate("Segmently.getVariant('none')") is None
        visitors.add(await page.evaluate("Segmently.getVisitorId()"))
        await page.evaluate("Segmently.reset()")
        await page.reload()
    assert len(visitors) == 4
    assignments = await wait_rows(
        database_url,
        "SELECT visitor_id FROM experiment_visitors WHERE experiment_id = :e",
        4,
        e=everyone["id"],
    )
    assert {a[0] for a in assignments} == visitors
    assert [e for e in await events_of(database_url, site["id"], "assignment") if e[2] == none["id"]] == []


async def test_behavioral_triggers_apply_the_variant_only_once_triggered_without_a_curtain(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await shop_site(api, database_url)
    # the variant's custom JS counts how often the experiment was applied, and when
    counting = "window.__applied = (window.__applied || 0) + 1; window.__at = performance.now();"

    async def behavioral(name: str, path: str, triggers: dict[str, Any]) -> dict[str, Any]:
        return await experiment(
            api,
            h,
            site,
            name=name,
            targeting={"url_rules": [{"type": "contains", "value": path}]},
            audience={"triggers": triggers},
            variants=variants({"type": "text", "selector": "h1.hero", "text": CHANGED}, custom_js=counting),
        )

    scroll = await behavioral("Scroll", "/scroll", {"scroll_percent": 50})
    await behavioral("Time", "/time", {"time_seconds": 2})
    await behavioral("Any", "/any", {"click_selector": ".cta", "scroll_percent": 90, "time_seconds": 3})
    tag = snippet_tag(segmently, site["api_key"])
    tall = HERO + "<div style='height:3000px'></div><p>End</p>"
    for path in ("/", "/scroll", "/time", "/any"):
        shop.add(path, tall, tag=tag)
    await page.goto(shop.url("/"))  # the config is stored from here on: any curtain would be the experiments'
    await revealed(page)
    await page.add_init_script(HIDDEN_FRAMES)

    # scroll: nothing until the bottom of the viewport passes half the page
    await page.goto(shop.url("/scroll"))
    await revealed(page)
    await page.wait_for_timeout(300)
    await expect(page.locator("h1.hero")).to_have_text(ORIGINAL)
    assert await page.evaluate("Segmently.getVariant('scroll')") is None
    await page.mouse.wheel(0, 1000)  # (0 + 1000 + 800) / 3100 ≥ 50 %
    await expect(page.locator("h1.hero")).to_have_text(CHANGED)
    assert await page.evaluate("[Segmently.getVariant('scroll'), window.__hidden]") == ["variant_b", 0]
    await page.goto(shop.url("/scroll?again=1"))  # assigned before: applied at load, unscrolled
    await revealed(page)
    await page.wait_for_function("window.__applied === 1")
    assert await page.evaluate("window.scrollY") == 0

    # time: after two seconds on the page, not before
    await page.goto(shop.url("/time"))
    await expect(page.locator("h1.hero")).to_have_text(CHANGED, timeout=5000)
    assert await page.evaluate("window.__at") >= 1900
    assert await page.evaluate("[window.__applied, window.__hidden]") == [1, 0]

    # several triggers: the first (a click) applies the variant, the others do nothing more
    await page.goto(shop.url("/any"))
    await revealed(page)
    await expect(page.locator("h1.hero")).to_have_text(ORIGINAL)
    await page.click("button.cta")
    await expect(page.locator("h1.hero")).to_have_text(CHANGED)
    clicked_at = await page.evaluate("window.__at")
    assert clicked_at < 2900
    await page.mouse.wheel(0, 3000)
    # clicked again where it now is (scrolled away: a DOM click, which a mouse click can miss
    # while the page is still scrolling)
    await page.locator("button.cta").dispatch_event("click")
    await page.wait_for_function("performance.now() > 3600")  # the timer would have fired by now
    assert await page.evaluate("[window.__applied, window.__at, window.__hidden]") == [1, clicked_at, 0]
    assigned = await wait_rows(
        database_url,
        "SELECT experiment_id FROM experiment_visitors WHERE visitor_id = :v",
        3,
        v=await page.evaluate("Segmently.getVisitorId()"),
    )
    assert scroll["id"] in {a[0] for a in assigned}
    assert page.console_errors == []  # type: ignore[attr-defined]
