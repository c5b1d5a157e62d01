"""The lazily loaded chunks in Chromium: the On-Site Test Panel (preview), the free tier's badge and the
visual editor's selection mode in an iframe of the dashboard's origin."""

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
    revealed,
    shop_site,
    variants,
)
from tests.core.events.test_ingest import rows

pytestmark = BROWSER

BADGE_TEXT = "Powered by Segmently"


async def test_preview_shows_a_draft_variant_and_the_panel_without_recording_an_assignment(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await shop_site(api, database_url)
    exp = await experiment(
        api,
        h,
        site,
        start=False,
        variants=variants({"type": "text", "selector": "h1.hero", "text": CHANGED}, control=50),
    )
    assert exp["status"] == "draft"
    url = shop.add("/", HERO, tag=snippet_tag(segmently, site["api_key"]))
    shop.add("/next", HERO, tag=snippet_tag(segmently, site["api_key"]))
    await page.goto(url)  # a visitor never sees a draft
    await revealed(page)
    await expect(page.locator("h1.hero")).to_have_text(ORIGINAL)
    assert await page.locator("segmently-preview").count() == 0

    await page.goto(f"{url}?segmently_preview=hero-test:variant_b")
    await revealed(page)
    await expect(page.locator("h1.hero")).to_have_text(CHANGED)
    panel = page.locator("segmently-preview")
    await expect(panel).to_have_count(1)
    assert await page.evaluate("document.querySelector('segmently-preview').shadowRoot !== null")
    region = page.get_by_role("region", name="Segmently test panel")
    await expect(region).to_contain_text("Segmently Test Panel")
    await expect(region).to_contain_text("Hero test")
    await expect(page.get_by_label("Segment of Hero test")).to_have_value("variant_b")

    await page.get_by_role("button", name="Minimize the test panel").click()
    await expect(page.get_by_role("button", name="Expand the test panel")).to_be_visible()
    await page.goto(shop.url("/next"))  # the same session: still in preview, still minimized
    await revealed(page)
    await expect(page.locator("h1.hero")).to_have_text(CHANGED)
    await expect(page.get_by_role("button", name="Expand the test panel")).to_be_visible()
    await expect(page.get_by_role("button", name="Minimize the test panel")).to_have_count(0)

    # View Original ends the preview for the session: this page and the next show the original
    await page.get_by_role("button", name="Expand the test panel").click()
    await page.get_by_role("link", name="View Original").click()
    await page.wait_for_url(shop.url("/next"))
    await revealed(page)
    await expect(page.locator("h1.hero")).to_have_text(ORIGINAL)
    await page.goto(url)
    await revealed(page)
    await expect(page.locator("h1.hero")).to_have_text(ORIGINAL)
    assert await page.locator("segmently-preview").count() == 0

    await asyncio.sleep(1.5)  # anything the snippet sends has been sent
    assert await events_of(database_url, site["id"], "assignment") == []
    assert (
        await rows(database_url, "SELECT id FROM experiment_visitors WHERE experiment_id = :e", e=exp["id"])
        == []
    )
    assert page.console_errors == []  # type: ignore[attr-defined]


async def badge_texts(page: Page) -> list[tuple[str, str]]:
    """``(text, href)`` of the links inside each ``<segmently-badge>``'s closed shadow root (via CDP)."""
    cdp = await page.context.new_cdp_session(page)
    doc = await cdp.send("DOM.getDocument", {"depth": -1, "pierce": True})
    found: list[tuple[str, str]] = []

    def text(node: dict[str, Any]) -> str:
        own = node.get("nodeValue", "") if node.get("nodeType") == 3 else ""
        return own + "".join(text(c) for c in node.get("children", []))

    def walk(node: dict[str, Any], in_badge: bool) -> None:
        if node.get("localName") == "a" and in_badge:
            attrs = node.get("attributes", [])
            href = dict(zip(attrs[::2], attrs[1::2], strict=True)).get("href", "")
            found.append((" ".join(text(node).split()), href))
        badge = in_badge or node.get("localName") == "segmently-badge"
        for child in node.get("children", []) + node.get("shadowRoots", []):
            walk(child, badge)

    walk(doc["root"], False)
    await cdp.detach()
    return found


async def test_the_free_plan_badge_is_shown_in_a_closed_shadow_root_and_comes_back(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    _, site = await shop_site(api, database_url, plan="free")
    await page.goto(shop.add("/", HERO, tag=snippet_tag(segmently, site["api_key"])))
    badge = page.locator("segmently-badge")
    await expect(badge).to_be_visible()
    assert await page.evaluate("document.querySelector('segmently-badge').shadowRoot") is None
    assert await badge_texts(page) == [(BADGE_TEXT, "https://segmently.us")]
    box = await badge.bounding_box()
    assert box is not None and box["width"] > 0 and box["height"] > 0
    viewport = page.viewport_size
    assert viewport is not None
    assert (
        box["x"] + box["width"] > viewport["width"] / 2 and box["y"] + box["height"] > viewport["height"] / 2
    )

    await page.evaluate("document.querySelector('segmently-badge').remove()")  # a page script removes it
    await expect(badge).to_be_visible()
    await page.evaluate("document.querySelector('segmently-badge').style.display = 'none'")
    await expect(badge).to_be_visible()
    await expect(badge).to_have_count(1)
    assert await badge_texts(page) == [(BADGE_TEXT, "https://segmently.us")]
    assert page.console_errors == []  # type: ignore[attr-defined]


async def test_a_paid_plan_shows_no_badge(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    _, site = await shop_site(api, database_url, plan="professional")
    chunks: list[str] = []
    page.on("request", lambda r: chunks.append(r.url) if "/snippet/" in r.url else None)
    await page.goto(shop.add("/", HERO, tag=snippet_tag(segmently, site["api_key"])))
    await revealed(page)
    await page.wait_for_function("window.__segmentlyHost !== undefined")
    await asyncio.sleep(0.5)
    assert await page.locator("segmently-badge").count() == 0
    assert not [c for c in chunks if c.endswith("/badge.js")]
    assert await badge_texts(page) == []


EDITOR_PARENT = """<!doctype html><html><head><meta charset="utf-8"><title>Editor</title></head><body>
<iframe id="site" src="{src}" style="width:900px;height:600px"></iframe>
<script>
window.__msgs = [];
addEventListener("message", (e) => window.__msgs.push({{origin: e.origin, data: e.data}}));
window.send = (m) => document.getElementById("site").contentWindow.postMessage(m, "*");
</script></body></html>"""


async def test_editor_selection_reports_a_selector_and_obeys_only_the_dashboard(
    page: Page, shop: Shop, segmently: str, api: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await shop_site(api, database_url)
    await experiment(api, h, site)  # live, yet the editor works on the original page
    clicked = "<script>document.addEventListener('click', () => { window.__clicked = true; })</script>"
    shop.add(
        "/",
        HERO
        + "<ul class='menu'><li><a href='/a'>A</a></li><li><a href='/b' class='pick'>B</a></li></ul>"
        + clicked,
        tag=snippet_tag(segmently, site["api_key"]),
    )
    src = shop.url("/?segmently_editor=1")

    # the dashboard: a page of the server's origin holding the site in an iframe. Written into a
    # page the server really served: a page.route() answer has no address, and Chromium's Local
    # Network Access checks then refuse its loopback iframe (ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS)
    await page.goto(f"{segmently}/health")
    await page.set_content(EDITOR_PARENT.format(src=src))
    shop_origin = shop.url("").rstrip("/")
    ready = await page.wait_for_function(
        "() => window.__msgs.find(m => m.data && m.data.type === 'segmently:editor-ready')"
    )
    assert (await ready.json_value())["origin"] == shop_origin
    frame = page.frame_locator("#site")
    await expect(frame.locator("h1.hero")).to_have_text(ORIGINAL)  # no experiment in the editor

    await frame.locator("a.pick").click()
    selected = await page.wait_for_function(
        "() => window.__msgs.find(m => m.data && m.data.type === 'segmently:select')"
    )
    message = (await selected.json_value())["data"]
    site_frame = next(f for f in page.frames if f.url.startswith(shop_origin))
    matches = await site_frame.evaluate(
        "sel => Array.from(document.querySelectorAll(sel)).map(e => e.textContent)", message["selector"]
    )
    assert matches == ["B"], message
    assert message["tag"] in ("a", "A") and message["text"] == "B"
    assert await site_frame.evaluate("[location.pathname, window.__clicked === true]") == ["/", False]

    # a message from any other origin (here the site itself) is ignored
    text_change = {
        "type": "segmently:apply",
        "changes": [{"type": "text", "selector": "h1.hero", "text": CHANGED}],
    }
    await site_frame.evaluate("m => window.postMessage(m, '*')", text_change)
    await site_frame.evaluate(
        "() => window.postMessage({type: 'segmently:highlight', selector: 'a.pick'}, '*')"
    )
    await asyncio.sleep(0.5)
    await expect(frame.locator("h1.hero")).to_have_text(ORIGINAL)
    answers = await page.evaluate(
        "window.__msgs.filter(m => ['segmently:applied', 'segmently:matches'].includes(m.data.type))"
    )
    assert answers == []

    # the dashboard's own messages are obeyed
    await page.evaluate(f"send({json.dumps(text_change)})")
    await expect(frame.locator("h1.hero")).to_have_text(CHANGED)
    await page.evaluate("send({type: 'segmently:highlight', selector: 'ul.menu a'})")
    answer = await page.wait_for_function(
        "() => window.__msgs.find(m => m.data && m.data.type === 'segmently:matches')"
    )
    assert (await answer.json_value())["data"] == {
        "type": "segmently:matches",
        "selector": "ul.menu a",
        "count": 2,
    }
    applied = await page.evaluate("window.__msgs.find(m => m.data.type === 'segmently:applied').data")
    assert applied == {"type": "segmently:applied", "matched": [1]}
    assert all(m["origin"] == shop_origin for m in await page.evaluate("window.__msgs"))
    errors = page.console_errors  # type: ignore[attr-defined]
    assert [
        e for e in errors if e.startswith(("Segmently", "pageerror"))
    ] == []  # (the server has no favicon)
