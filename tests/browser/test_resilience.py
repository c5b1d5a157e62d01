"""Bad input and odd pages: a broken or blocked config, a throwing script, SPA navigations, the inline
``/s/{api_key}.js`` install, and changes to elements the parser has not finished yet."""

from __future__ import annotations

import asyncio

import httpx
from playwright.async_api import Browser, Page, Route, expect

from tests.browser.conftest import BROWSER, Shop, snippet_tag
from tests.browser.support import (
    CHANGED,
    HERO,
    ORIGINAL,
    experiment,
    fresh_page,
    revealed,
    shop_site,
    variants,
    wait_rows,
)

pytestmark = BROWSER

RED = "rgb(255, 0, 0)"
# the page's own scripts, after the snippet: they must keep working whatever the snippet meets
OWN_SCRIPT = (
    "<script>document.body.dataset.own = 'ran';"
    "document.querySelector('.cta').addEventListener('click', () => {"
    " document.body.dataset.bought = 'yes'; });"
    "</script>"
)


def segmently_errors(page: Page) -> list[str]:
    return [e for e in page.console_errors if e.startswith("Segmently")]  # type: ignore[attr-defined]


async def shown_and_working(page: Page) -> None:
    """The page is revealed within the first visit's failsafe (5 s) and its own scripts work."""
    await page.wait_for_function("getComputedStyle(document.documentElement).opacity === '1'", timeout=7000)
    await page.click("button.cta")
    assert await page.evaluate("[document.body.dataset.own, document.body.dataset.bought]") == ["ran", "yes"]


async def broken_json(route: Route) -> None:
    await route.fulfill(status=200, content_type="application/json", body='{"experiments": [')


async def blocked(route: Route) -> None:
    await route.abort("blockedbyclient")


async def test_a_broken_or_blocked_config_shows_the_original_page_with_one_error(
    browser: Browser, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await shop_site(api, database_url)
    await experiment(api, h, site)
    url = shop.add("/", HERO + OWN_SCRIPT, tag=snippet_tag(segmently, site["api_key"]))
    for handler in (broken_json, blocked):
        async with fresh_page(browser) as p:
            await p.route("**/api/v1/sdk/config?*", handler)
            await p.goto(url)
            await shown_and_working(p)
            await expect(p.locator("h1.hero")).to_have_text(ORIGINAL)
            await asyncio.sleep(0.5)
            assert len(segmently_errors(p)) == 1, (handler.__name__, p.console_errors)  # type: ignore[attr-defined]
            assert not [e for e in p.console_errors if e.startswith("pageerror")]  # type: ignore[attr-defined]
            # the API is there and answers without throwing into the page
            assert await p.evaluate("Segmently.getVariant('hero-test')") is None
            assert await p.evaluate("Segmently.getAllFlags()") == {}


async def test_a_throwing_custom_script_is_reported_once_and_the_rest_of_the_page_works(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await shop_site(api, database_url)
    await experiment(
        api,
        h,
        site,
        variants=variants(
            {"type": "text", "selector": "h1.hero", "text": CHANGED},
            {"type": "js", "code": "null.boom()"},
            custom_js="window.__after = 'ran'",
        ),
    )
    url = shop.add("/", HERO + OWN_SCRIPT, tag=snippet_tag(segmently, site["api_key"]))
    for _ in range(2):  # first visit, then from the stored config
        await page.goto(url)
        await shown_and_working(page)
        await expect(page.locator("h1.hero")).to_have_text(CHANGED)
        assert await page.evaluate("window.__after") == "ran"  # the next script still ran
        errors = segmently_errors(page)
        assert len(errors) == 1, page.console_errors  # type: ignore[attr-defined]
        page.console_errors.clear()  # type: ignore[attr-defined]


SPA = HERO + "<script>function go(path) { history.pushState({}, '', path); }</script>"


async def test_spa_navigations_apply_and_remove_url_targeted_experiments_and_count_page_views(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await shop_site(api, database_url)
    await experiment(
        api,
        h,
        site,
        targeting={"url_rules": [{"type": "contains", "value": "/pricing"}]},
        variants=variants(
            {"type": "text", "selector": "h1.hero", "text": CHANGED},
            {"type": "css", "css": f".cta {{ border: 3px solid {RED} }}"},
        ),
    )
    home = shop.add("/", SPA, tag=snippet_tag(segmently, site["api_key"]))
    await page.goto(home)
    await revealed(page)
    await expect(page.locator("h1.hero")).to_have_text(ORIGINAL)
    await expect(page.locator("button.cta")).not_to_have_css("border-top-color", RED)

    await page.evaluate("go('/pricing?plan=pro')")  # entering the targeted path
    await expect(page.locator("h1.hero")).to_have_text(CHANGED)
    await expect(page.locator("button.cta")).to_have_css("border-top-color", RED)
    assert await page.evaluate("Segmently.getVariant('hero-test')") == "variant_b"
    await page.evaluate("location.hash = '#faq'")  # an in-page anchor is no page view

    await page.evaluate("go('/about')")  # leaving it: the injected CSS goes
    await expect(page.locator("button.cta")).not_to_have_css("border-top-color", RED)
    await page.go_back()  # popstate: back to /pricing, the experiment again
    await expect(page.locator("button.cta")).to_have_css("border-top-color", RED)

    await wait_rows(
        database_url, "SELECT id FROM events WHERE site_id = :s AND event_name = 'page_view'", 4, s=site["id"]
    )
    await asyncio.sleep(1.5)  # nothing more arrives
    views = await wait_rows(
        database_url,
        "SELECT url FROM events WHERE site_id = :s AND event_name = 'page_view' ORDER BY created_at, id",
        4,
        s=site["id"],
    )
    assert [v[0] for v in views] == [
        home,
        shop.url("/pricing?plan=pro"),
        shop.url("/about"),
        shop.url("/pricing?plan=pro#faq"),
    ]
    assignments = await wait_rows(
        database_url,
        "SELECT id FROM events WHERE site_id = :s AND event_name = 'assignment'",
        1,
        s=site["id"],
    )
    assert len(assignments) == 1
    assert page.console_errors == []  # type: ignore[attr-defined]


async def test_the_inline_install_applies_a_first_visit_without_asking_for_the_config(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await shop_site(api, database_url)
    await experiment(api, h, site)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/api/v1/sdk/config" in r.url else None)
    await page.goto(shop.add("/", HERO, tag=snippet_tag(segmently, site["api_key"], inline=True)))
    await expect(page.locator("h1.hero")).to_have_text(CHANGED)
    await revealed(page)
    assert await page.evaluate("Segmently.getVariant('hero-test')") == "variant_b"
    await wait_rows(
        database_url,
        "SELECT id FROM events WHERE site_id = :s AND event_name = 'assignment'",
        1,
        s=site["id"],
    )
    await page.reload()
    await expect(page.locator("h1.hero")).to_have_text(CHANGED)
    await asyncio.sleep(0.5)
    assert asked == []
    assert page.console_errors == []  # type: ignore[attr-defined]


async def test_a_returning_visitor_gets_text_changes_replacing_the_whole_text_of_each_element(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    """The stored config applies while ``<head>`` runs: elements parsed later must end up with the
    variant's text alone, not the variant's text followed by the original the parser adds after."""
    h, site = await shop_site(api, database_url)
    await experiment(
        api,
        h,
        site,
        variants=variants(
            {"type": "text", "selector": "h1.hero", "text": CHANGED},
            {"type": "text", "selector": "li.item", "text": "New item"},
        ),
    )
    items = "".join(f"<li class='item'>Old item {i} " + "words " * 20 + "</li>" for i in range(300))
    url = shop.add("/", HERO + f"<ul>{items}</ul>", tag=snippet_tag(segmently, site["api_key"]))
    await page.goto(url)  # the first visit stores the config
    await revealed(page)
    for _ in range(3):  # returning visits
        await page.reload()
        await revealed(page)
        await expect(page.locator("h1.hero")).to_have_text(CHANGED)
        texts = set(await page.locator("li.item").all_text_contents())
        assert texts == {"New item"}, sorted(texts)[:3]


async def test_a_page_whose_policy_forbids_eval_runs_experiments_without_custom_code_cleanly(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await shop_site(api, database_url)
    await experiment(api, h, site)  # a text change, no custom JavaScript
    policy = (
        f"<meta http-equiv='Content-Security-Policy' content=\"script-src 'self' {segmently}; "
        f"connect-src 'self' {segmently}\">"
    )
    await page.goto(shop.add("/", HERO, head=policy, tag=snippet_tag(segmently, site["api_key"])))
    await expect(page.locator("h1.hero")).to_have_text(CHANGED)
    await revealed(page)
    await page.reload()  # stored config: applied synchronously in <head>
    await expect(page.locator("h1.hero")).to_have_text(CHANGED)
    await revealed(page)
    assert page.console_errors == []  # type: ignore[attr-defined]
