"""``window.Segmently`` in a real page (the spec's "JavaScript API" and "Using Flags in Your Code"),
the ready message, GA4 / Mixpanel forwarding and the opt-out cookie."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from playwright.async_api import Page, expect

from tests.browser.conftest import BROWSER, Shop, snippet_tag
from tests.browser.support import (
    CHANGED,
    HERO,
    ORIGINAL,
    data,
    events_of,
    experiment,
    revealed,
    shop_site,
    tracking,
    variants,
    wait_rows,
)
from tests.core.events.test_ingest import ids, rows

pytestmark = BROWSER

GREEN = "rgb(0, 128, 0)"
# what a site's GA4 and Mixpanel tags define before anything else runs
ANALYTICS_STUBS = """
window.__gtag = []; window.__mixpanel = [];
window.gtag = function () { window.__gtag.push(Array.from(arguments)); };
window.mixpanel = { track: function () { window.__mixpanel.push(Array.from(arguments)); } };
"""
READY_LISTENER = """
window.__ready = [];
window.addEventListener("message", (e) => {
  if (e.data && e.data.type === "segmently-snippet-ready") window.__ready.push(e.data);
});
"""


async def test_track_and_track_conversion_reach_the_results_with_revenue_summed(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await shop_site(api, database_url)
    exp = await experiment(api, h, site)
    await page.goto(shop.add("/", HERO, tag=snippet_tag(segmently, site["api_key"])))
    await revealed(page)
    visitor = await page.evaluate("Segmently.getVisitorId()")
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    assert visitor == cookies["seg_visitor_id"]
    assert await page.evaluate("Segmently.getVariant('hero-test')") == "variant_b"
    assert await page.evaluate("Segmently.getVariant('no-such-test')") is None
    assert await page.evaluate("Segmently.getAllAssignments()") == {"hero-test": "variant_b"}

    await page.evaluate("Segmently.track('cta_click', {section: 'hero', label: 'start_free_trial'})")
    await page.evaluate("Segmently.trackConversion({revenue: 49.5, currency: 'USD'})")
    await page.evaluate("Segmently.track('conversion', {revenue: 100, transaction_id: 'T-1'})")
    await page.evaluate("Segmently.track('')")  # refused: one console error, nothing sent
    await page.evaluate("Segmently.track('x', 'not an object')")

    conversions = await wait_rows(
        database_url,
        "SELECT visitor_id, event_data FROM events WHERE site_id = :s AND event_name = 'conversion'",
        2,
        s=site["id"],
    )
    assert {c[0] for c in conversions} == {visitor}
    assert sorted(data(c[1])["revenue"] for c in conversions) == [49.5, 100]
    clicks = await events_of(database_url, site["id"], "cta_click")
    assert [(c[1], data(c[5])) for c in clicks] == [
        (visitor, {"section": "hero", "label": "start_free_trial"})
    ]
    results = (await api.get(f"/api/v1/experiments/{exp['id']}/results", headers=h)).json()
    b = next(v for v in results["variants"] if v["key"] == "variant_b")
    assert (b["visitors"], b["conversions"], b["revenue"]) == (1, 1, 149.5)
    names = {
        r[0]
        for r in await rows(database_url, "SELECT event_name FROM events WHERE site_id = :s", s=site["id"])
    }
    assert "x" not in names and "" not in names
    errors = [e for e in page.console_errors if e.startswith("Segmently")]  # type: ignore[attr-defined]
    assert len(errors) == 2, errors


async def test_set_attributes_and_reset_start_a_new_visitor(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await shop_site(api, database_url)
    exp = await experiment(
        api,
        h,
        site,
        variants=variants(
            {"type": "text", "selector": "h1.hero", "text": CHANGED}, custom_css=f".hero {{ color: {GREEN} }}"
        ),
    )
    await page.goto(shop.add("/", HERO, tag=snippet_tag(segmently, site["api_key"])))
    await revealed(page)
    await expect(page.locator("h1.hero")).to_have_css("color", GREEN)
    first = await page.evaluate("Segmently.getVisitorId()")
    await page.evaluate("Segmently.setAttributes({plan: 'pro'}); Segmently.setAttributes({seats: 3})")
    assert await page.evaluate("JSON.parse(localStorage.getItem('seg_attributes'))") == {
        "plan": "pro",
        "seats": 3,
    }

    await page.evaluate("Segmently.reset()")  # logout
    second = await page.evaluate("Segmently.getVisitorId()")
    assert second and second != first
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    assert cookies["seg_visitor_id"] == second
    assert await page.evaluate("Segmently.getAllAssignments()") == {}
    assert await page.evaluate("Segmently.getVariant('hero-test')") is None
    assert await page.evaluate("localStorage.getItem('seg_attributes')") is None
    await expect(page.locator("h1.hero")).not_to_have_css("color", GREEN)  # this page's CSS is gone

    await page.reload()  # the next page view assigns the new visitor
    await revealed(page)
    assert await page.evaluate("Segmently.getVisitorId()") == second
    assert await page.evaluate("Segmently.getAllAssignments()") == {"hero-test": "variant_b"}
    got = await wait_rows(
        database_url, "SELECT visitor_id FROM experiment_visitors WHERE experiment_id = :e", 2, e=exp["id"]
    )
    assert sorted(g[0] for g in got) == sorted([first, second])
    assert page.console_errors == []  # type: ignore[attr-defined]


async def test_flags_answer_promises_by_rollout_and_status(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await shop_site(api, database_url)
    for key, status, rollout in (
        ("everyone", "active", 100),
        ("nobody", "active", 0),
        ("off", "inactive", 100),
    ):
        r = await api.post(
            f"/api/v1/projects/{site['id']}/flags",
            json={"key": key, "name": key.title(), "status": status, "rollout_percentage": rollout},
            headers=h,
        )
        assert r.status_code == 201, r.text
    await page.goto(shop.add("/", HERO, tag=snippet_tag(segmently, site["api_key"])))
    await revealed(page)
    assert await page.evaluate("Segmently.isEnabled('everyone') instanceof Promise")
    assert await page.evaluate("Segmently.getAllFlags() instanceof Promise")
    assert await page.evaluate("Segmently.isEnabled('everyone')") is True
    assert await page.evaluate("Segmently.isEnabled('nobody')") is False
    assert await page.evaluate("Segmently.isEnabled('off')") is False  # an inactive flag is not served
    assert await page.evaluate("Segmently.isEnabled('unknown')") is False
    assert await page.evaluate("Segmently.getAllFlags()") == {"everyone": True, "nobody": False}
    await page.reload()  # from the stored config too
    assert await page.evaluate("Segmently.getAllFlags()") == {"everyone": True, "nobody": False}
    assert page.console_errors == []  # type: ignore[attr-defined]


async def test_the_ready_message_is_posted_once_per_page(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    _, site = await shop_site(api, database_url)
    await page.add_init_script(READY_LISTENER)
    await page.goto(shop.add("/", HERO, tag=snippet_tag(segmently, site["api_key"])))
    await page.wait_for_function("window.__ready.length > 0")
    await asyncio.sleep(0.3)
    version = await page.evaluate("Segmently.version")
    assert version and await page.evaluate("window.__ready") == [
        {"type": "segmently-snippet-ready", "version": version}
    ]


async def test_ga4_and_mixpanel_get_an_impression_only_for_experiments_configured_for_them(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await shop_site(api, database_url)

    async def marked(name: str, integrations: dict[str, Any]) -> dict[str, Any]:
        mark = name.lower().replace(" ", "-")
        return await experiment(
            api,
            h,
            site,
            name=name,
            integrations=integrations,
            variants=variants({"type": "css", "selector": f"#{mark}", "css": f"color: {GREEN}"}),
        )

    ga = await marked("Ga test", {"ga4": True})
    mp = await marked("Mp test", {"mixpanel": True})
    await marked("Plain test", {})
    body = "".join(f"<p id='{m}'>{m}</p>" for m in ("ga-test", "mp-test", "plain-test"))
    await page.add_init_script(ANALYTICS_STUBS)
    url = shop.add("/", body, tag=snippet_tag(segmently, site["api_key"]))
    ga_call = [
        "event",
        "experiment_impression",
        {
            "experiment_id": "ga-test",
            "experiment_name": "Ga test",
            "variant_id": ids(ga)["variant_b"],
            "variant_name": "Variant B",
        },
    ]
    mp_call = [
        "$experiment_started",
        {
            "Experiment name": "Mp test",
            "Experiment ID": "mp-test",
            "Variant name": "Variant B",
            "Variant ID": ids(mp)["variant_b"],
        },
    ]
    for _ in range(2):  # the first visit, and a returning one: an impression on every page view
        await page.goto(url)
        await revealed(page)
        await expect(page.locator("#plain-test")).to_have_css("color", GREEN)
        await tracking(page)  # the impressions are the track chunk's, loaded after the reveal
        assert await page.evaluate("window.__gtag") == [ga_call]
        assert await page.evaluate("window.__mixpanel") == [mp_call]
    assert page.console_errors == []  # type: ignore[attr-defined]


async def test_an_opted_out_visitor_sees_the_original_site_and_nothing_is_sent_or_kept(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await shop_site(api, database_url)
    await experiment(api, h, site)
    url = shop.add("/", HERO, tag=snippet_tag(segmently, site["api_key"]))
    await page.context.add_cookies([{"name": "segmently_opt_out", "value": "true", "url": url}])
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/api/v1/events" in r.url else None)
    for _ in range(2):
        await page.goto(url)
        await page.wait_for_function("window.Segmently !== undefined")
        await revealed(page)
        await expect(page.locator("h1.hero")).to_have_text(ORIGINAL)
        await page.evaluate("Segmently.track('cta_click'); Segmently.trackConversion({revenue: 5})")
        await page.click("button.cta")
        assert await page.evaluate("Segmently.getVariant('hero-test')") is None
    await asyncio.sleep(1.5)  # the queue would have sent by now
    await page.goto(shop.add("/bye", "<p>bye</p>"))  # and a page hide beacons nothing either
    assert sent == []
    assert await events_of(database_url, site["id"]) == []
    assert {c["name"] for c in await page.context.cookies()} == {"segmently_opt_out"}
    assert await page.evaluate("Object.keys(localStorage)") == []
    assert page.console_errors == []  # type: ignore[attr-defined]
