"""Loading the snippet on a customer's page: the script tag in <head> or before </body>, and /s/{key}.js."""

from __future__ import annotations

import asyncio

import httpx
from playwright.async_api import Page, Response, expect

from tests.browser.conftest import BROWSER, Shop, snippet_tag
from tests.browser.support import CHANGED, HERO, experiment, revealed, shop_site, wait_rows
from tests.core.events.test_ingest import rows
from tests.core.experiments.test_experiments import owner_site
from tests.core.experiments.test_public_api import brotli_made

pytestmark = BROWSER


async def test_the_script_tag_defines_the_api(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    _, site = await owner_site(api, database_url)
    url = shop.add("/", "<h1>Hello</h1>", tag=snippet_tag(segmently, site["api_key"]))
    await page.goto(url)
    assert await page.evaluate("typeof window.Segmently.getVisitorId") == "function"
    assert page.console_errors == []  # type: ignore[attr-defined]


async def test_the_tag_before_the_end_of_body_applies_the_variant_and_a_second_copy_changes_nothing(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await shop_site(api, database_url)
    exp = await experiment(api, h, site)
    tag = snippet_tag(segmently, site["api_key"])
    url = shop.add("/", HERO + tag + tag)  # at the end of <body>, and included twice by mistake
    await page.goto(url)
    await expect(page.locator("h1.hero")).to_have_text(CHANGED)
    await revealed(page)
    assert await page.evaluate("Segmently.getVariant('hero-test')") == "variant_b"
    views = await wait_rows(
        database_url,
        "SELECT url FROM events WHERE site_id = :s AND event_name IN ('page_view', 'assignment')",
        2,
        s=site["id"],
    )
    assert sorted(v[0] for v in views) == [url, url]
    await asyncio.sleep(1.5)  # a second instance would have sent its own by now
    assert len(await rows(database_url, "SELECT id FROM events WHERE site_id = :s", s=site["id"])) == 2
    assert exp["status"] == "live" and page.console_errors == []  # type: ignore[attr-defined]


async def test_chromium_gets_the_core_and_the_config_as_brotli_and_runs_them(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await shop_site(api, database_url)
    await experiment(api, h, site)
    # the first requests get gzip while the Brotli copies are made (in a thread): make them first
    await brotli_made(api, "/segmently.js", {})
    await brotli_made(api, "/api/v1/sdk/config", {"X-API-Key": site["api_key"]})
    encodings: dict[str, str | None] = {}

    async def seen(response: Response) -> None:
        path = response.url.split("?")[0].removeprefix(segmently)
        if path in ("/segmently.js", "/api/v1/sdk/config"):
            encodings[path] = (await response.all_headers()).get("content-encoding")

    page.on("response", seen)
    await page.goto(shop.add("/", HERO, tag=snippet_tag(segmently, site["api_key"])))
    await expect(page.locator("h1.hero")).to_have_text(CHANGED)
    await revealed(page)
    assert encodings == {"/segmently.js": "br", "/api/v1/sdk/config": "br"}
    assert page.console_errors == []  # type: ignore[attr-defined]
