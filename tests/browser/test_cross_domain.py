"""Cross-domain identity (the Advanced tab): links between the site's listed host names carry the
visitor id (``_sgmt_vid``), the other host adopts it, and a host not on the list does not."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from playwright.async_api import Page

from tests.browser.conftest import BROWSER, Shop, snippet_tag
from tests.browser.support import HERO, experiment, revealed, shop_site, tracking, variants, wait_rows

pytestmark = BROWSER


def vid_of(url: str) -> list[str]:
    return parse_qs(urlsplit(url).query).get("_sgmt_vid", [])


async def listed_site(api: httpx.AsyncClient, database_url: str) -> tuple[dict[str, str], dict[str, Any]]:
    """An owner's site whose visitors are shared by ``shop.test`` and ``checkout.test``."""
    h, site = await shop_site(api, database_url)
    r = await api.put(
        f"/api/v1/projects/{site['id']}/settings",
        json={"cross_domain": ["shop.test", "checkout.test"]},
        headers=h,
    )
    assert r.status_code == 200, r.text
    return h, site


async def test_a_visitor_keeps_id_and_variant_across_listed_hosts_only(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await listed_site(api, database_url)
    exp = await experiment(
        api, h, site, variants=variants({"type": "text", "selector": "h1.hero", "text": "B"}, control=50)
    )
    tag = snippet_tag(segmently, site["api_key"])
    pay = shop.url("/pay?step=1", host="checkout.test")
    elsewhere = shop.url("/pay?step=1", host="other.test")
    late = (
        "<script>setTimeout(() => document.body.insertAdjacentHTML('beforeend', "
        f"\"<a id='late' href='{pay}#card'>Pay later</a>\"), 300)</script>"
    )
    home = shop.add(
        "/",
        HERO + f"<a id='checkout' href='{pay}'>Checkout</a><a id='other' href='{elsewhere}'>Other</a>" + late,
        tag=tag,
    )
    shop.add("/pay", HERO, tag=tag)

    await page.goto(home)
    await revealed(page)
    await tracking(page)  # the track chunk decorates the links, after the reveal
    visitor = await page.evaluate("Segmently.getVisitorId()")
    variant = await page.evaluate("Segmently.getVariant('hero-test')")
    assert variant in ("control", "variant_b")
    checkout = await page.get_attribute("#checkout", "href")
    assert checkout is not None and vid_of(checkout) == [visitor]
    assert parse_qs(urlsplit(checkout).query)["step"] == ["1"]  # the link's own parameters are kept
    await page.wait_for_selector("#late")
    late_href = await page.wait_for_function(
        "() => { const a = document.querySelector('#late'); return a.href.includes('_sgmt_vid') && a.href; }"
    )
    assert vid_of(await late_href.json_value()) == [visitor]
    assert urlsplit(await late_href.json_value()).fragment == "card"
    assert await page.get_attribute("#other", "href") == elsewhere  # not on the list: left alone

    await page.click("#checkout")
    await page.wait_for_url("http://checkout.test:*/pay*")
    await revealed(page)
    assert await page.evaluate("Segmently.getVisitorId()") == visitor
    assert await page.evaluate("Segmently.getVariant('hero-test')") == variant
    assert "_sgmt_vid" not in page.url and vid_of(page.url) == []
    assert parse_qs(urlsplit(page.url).query)["step"] == ["1"]
    cookies = {c["name"]: c["value"] for c in await page.context.cookies(page.url)}
    assert cookies["seg_visitor_id"] == visitor
    views = await wait_rows(
        database_url,
        "SELECT visitor_id, url FROM events WHERE site_id = :s AND event_name = 'page_view'",
        2,
        s=site["id"],
    )
    assert {v[0] for v in views} == {visitor}
    assert all("_sgmt_vid" not in v[1] for v in views)
    assert [v[1] for v in views if "checkout.test" in v[1]] == [shop.url("/pay?step=1", host="checkout.test")]

    # a host not on the list never adopts an id from a link (a shared link would merge strangers)
    await page.goto(f"{elsewhere}&_sgmt_vid={visitor}")
    await revealed(page)
    stranger = await page.evaluate("Segmently.getVisitorId()")
    assert stranger and stranger != visitor
    got = await rows_of(database_url, exp["id"])
    assert sorted(got) == sorted({visitor, stranger})
    assert page.console_errors == []  # type: ignore[attr-defined]


async def rows_of(database_url: str, experiment_id: str) -> list[str]:
    """The visitors of an experiment once the stranger's assignment arrived (two visitors)."""
    got = await wait_rows(
        database_url,
        "SELECT visitor_id FROM experiment_visitors WHERE experiment_id = :e",
        2,
        e=experiment_id,
    )
    return [g[0] for g in got]


async def test_a_link_followed_before_the_track_chunk_ran_carries_the_visitor(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    """The chunk decorates links once the page is shown; a click before that is decorated by the core."""
    _h, site = await listed_site(api, database_url)
    tag = snippet_tag(segmently, site["api_key"])
    pay = shop.url("/pay?step=1", host="checkout.test")
    home = shop.add("/", HERO + f"<a id='checkout' href='{pay}'>Checkout</a>", tag=tag)
    shop.add("/pay", HERO, tag=tag)
    await page.route("**/snippet/track.js", lambda route: route.abort("blockedbyclient"))  # never runs

    await page.goto(home)
    await revealed(page)
    visitor = await page.evaluate("Segmently.getVisitorId()")
    assert await page.get_attribute("#checkout", "href") == pay  # not decorated: the chunk never ran
    await page.click("#checkout")
    await page.wait_for_url("http://checkout.test:*/pay*")
    await revealed(page)
    assert await page.evaluate("Segmently.getVisitorId()") == visitor
    assert vid_of(page.url) == [] and parse_qs(urlsplit(page.url).query)["step"] == ["1"]
