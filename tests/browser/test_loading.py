"""Loading the snippet on a customer's page: the script tag in <head> or before </body>, and /s/{key}.js."""

from __future__ import annotations

import httpx
from playwright.async_api import Page

from tests.browser.conftest import BROWSER, Shop, snippet_tag
from tests.core.experiments.test_experiments import owner_site

pytestmark = BROWSER


async def test_the_script_tag_defines_the_api(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    _, site = await owner_site(api, database_url)
    url = shop.add("/", "<h1>Hello</h1>", tag=snippet_tag(segmently, site["api_key"]))
    await page.goto(url)
    assert await page.evaluate("typeof window.Segmently.getVisitorId") == "function"
    assert page.console_errors == []  # type: ignore[attr-defined]
