"""The visual editor's page: the site framed in editor mode (its domain only), saving a variant's
changes with the experiment's version, field errors with the change they belong to, tenancy."""

from __future__ import annotations

import gzip
import json
import re
from html import unescape
from typing import Any

import httpx
import pytest

from tests.core.accounts.test_auth import bearer, signup
from tests.core.accounts.test_team import set_plan
from tests.core.experiments.test_experiments import hero
from tests.dashboard.support import SESSION, field_error, post_form, text

pytestmark = pytest.mark.usefixtures("backend")

HERO_TEXT = {"type": "text", "selector": "h1", "text": "Hello"}
PAGE_CSS = {"type": "css", "css": "h1{color:green}"}  # what hero() gives variant_b
SAVED_CSS = {**PAGE_CSS, "selector": None}  # as the API reads it back


class Org:
    """An organization on Enterprise with a site and a draft experiment, its owner signed in to ``client``."""

    def __init__(self, client: httpx.AsyncClient, api: httpx.AsyncClient, token: str) -> None:
        self.client, self.api, self.h = client, api, bearer(token)
        self.site: dict[str, Any] = {}
        self.experiment: dict[str, Any] = {}

    @property
    def editor(self) -> str:
        return f"/experiments/{self.experiment['id']}/editor"

    async def read(self) -> dict[str, Any]:
        r = await self.api.get(f"/api/v1/experiments/{self.experiment['id']}", headers=self.h)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async def variant(self, key: str = "variant_b") -> dict[str, Any]:
        return next(v for v in (await self.read())["variants"] if v["key"] == key)

    async def post(self, listed: list[dict[str, Any]] | None, **fields: str) -> httpx.Response:
        """The editor's form as the page renders it, with ``changes`` as the list it shows."""
        current = await self.read()
        data = {
            "variant": "variant_b",
            "version": str(current["version"]),
            "url": "",
            "changes": json.dumps(listed if listed is not None else [HERO_TEXT, PAGE_CSS]),
            "custom_css": "",
            "custom_js": "",
            "kind": "text",
            "selector": "",
            "value": "",
            "action": "save",
            **fields,
        }
        return await post_form(self.client, self.editor, data)


async def org(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str, tag: str = "alice", **over: Any
) -> Org:
    body = await signup(api, tag)
    await set_plan(database_url, body["organization"]["id"], "enterprise")
    o = Org(client, api, body["token"])
    site = await api.post(
        "/api/v1/projects", json={"name": f"{tag.title()} shop", "url": f"https://{tag}.example"}, headers=o.h
    )
    o.site = site.json()
    made = await api.post(f"/api/v1/projects/{o.site['id']}/experiments", json=hero(**over), headers=o.h)
    assert made.status_code == 201, made.text
    o.experiment = made.json()
    client.cookies.clear()
    client.cookies.set(SESSION, body["token"])
    return o


def iframe_src(html: str) -> str:
    """The frame's address (the frame is named so that the snippet knows it on every page in it)."""
    match = re.search(r'<iframe id="editor-frame" name="segmently_editor" src="([^"]*)"', html)
    assert match, html
    return unescape(match.group(1))


def change_rows(html: str) -> list[str]:
    """The words of each change of the list."""
    items = re.search(r'<ol class="change-list" id="change-rows">(.*?)</ol>', html, re.S)
    assert items, html
    return [text(li) for li in re.findall(r"<li[^>]*>(.*?)</li>", items.group(1), re.S)]


async def test_page_frames_the_site_in_editor_mode_beside_the_variants_changes(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await org(client, api, database_url)
    r = await client.get(o.editor)
    assert r.status_code == 200, r.text
    assert iframe_src(r.text) == "https://alice.example/?segmently_editor=1"
    # the page's policy lets that frame in, and only the site's origin
    assert r.headers["content-security-policy"].endswith("; frame-src https://alice.example")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    words = text(r.text)
    assert "Visual editor" in words and "Homepage Hero Test" in words
    assert re.search(r'<a href="[^"]*variant=variant_b"[^>]* aria-current="page">Variant B</a>', r.text)
    assert "Changes of Variant B" in words
    assert change_rows(r.text) == [
        "Text h1 Hello Remove change 1 (Text h1)",
        "CSS the whole page h1{color:green} Remove change 2 (CSS )",
    ]
    # every control of the form has a label
    for control in re.findall(r"<(?:input|select|textarea) id=\"(f-[a-z_]+)\"", r.text):
        assert f'<label for="{control}"' in r.text, control

    # the control: no changes yet; another page of the site keeps its query and gains the flag
    control = await client.get(
        o.editor, params={"variant": "control", "url": "https://www.alice.example/p?x=1#top"}
    )
    assert control.status_code == 200
    assert iframe_src(control.text) == "https://www.alice.example/p?x=1&segmently_editor=1#top"
    assert control.headers["content-security-policy"].endswith(
        "frame-src https://alice.example https://www.alice.example"
    )
    assert change_rows(control.text) == []
    assert "No changes yet: Control shows the page as it is." in text(control.text)


async def test_a_page_of_another_domain_is_not_framed(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await org(client, api, database_url)
    for url, message in [
        ("https://evil.example/", "Page to edit must be on alice.example (the site's domain)"),
        ("https://alice.example.evil.example/", "Page to edit must be on alice.example (the site's domain)"),
        ("javascript:alert(1)", "Page to edit must be a web address starting with http:// or https://"),
    ]:
        r = await client.get(o.editor, params={"url": url})
        assert r.status_code == 400, url
        assert field_error(r.text, "url") == message
        assert iframe_src(r.text) == "https://alice.example/?segmently_editor=1"
        assert "evil" not in r.headers["content-security-policy"]
    # a host of the experiment's cross-domain list is one of its pages
    await set_cross_domain(o, ["checkout.example"])
    r = await client.get(o.editor, params={"url": "https://checkout.example/pay"})
    assert r.status_code == 200
    assert iframe_src(r.text) == "https://checkout.example/pay?segmently_editor=1"


async def set_cross_domain(o: Org, hosts: list[str]) -> None:
    current = await o.read()
    r = await o.api.patch(
        f"/api/v1/experiments/{current['id']}",
        json={"advanced": {**current["advanced"], "cross_domain": hosts}},
        headers={**o.h, "If-Match": f'"{current["version"]}"'},
    )
    assert r.status_code == 200, r.text


async def test_save_stores_the_changes_in_the_variant(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await org(client, api, database_url)
    before = await o.read()
    changes = [
        {"type": "text", "selector": "h1.hero", "text": "Fresh bread daily"},
        {"type": "hide", "selector": ".banner", "mode": "remove"},
        {"type": "css", "selector": "button.cta", "css": "background: green"},
        {"type": "html", "selector": "p.lead", "html": "<b>Welcome</b>"},
    ]
    r = await o.post(changes, custom_css=".cta{border:0}", custom_js="console.log(1)")
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"{o.editor}?variant=variant_b&notice=saved"
    saved = await o.read()
    assert saved["version"] == before["version"] + 1
    variant = next(v for v in saved["variants"] if v["key"] == "variant_b")
    assert variant["changes"] == changes
    assert (variant["custom_css"], variant["custom_js"]) == (".cta{border:0}", "console.log(1)")
    assert saved["variants"][0] == before["variants"][0]  # the control is untouched

    shown = await client.get(r.headers["location"])
    assert "Changes saved." in text(shown.text)
    assert [row.split(" Remove")[0] for row in change_rows(shown.text)] == [
        "Text h1.hero Fresh bread daily",
        "Remove .banner",
        "CSS button.cta background: green",
        "HTML p.lead <b>Welcome</b>",
    ]


async def test_without_javascript_one_change_is_added_or_removed_by_selector(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await org(client, api, database_url)
    r = await o.post(None, action="add", kind="hide", selector=" .popup ", value="ignored")
    assert r.status_code == 303, r.text
    assert r.headers["location"].endswith("notice=added")
    assert (await o.variant())["changes"] == [
        HERO_TEXT,
        SAVED_CSS,
        {"type": "hide", "selector": ".popup", "mode": "hide"},
    ]

    r = await o.post(
        [HERO_TEXT, PAGE_CSS, {"type": "hide", "selector": ".popup", "mode": "hide"}], remove="0"
    )
    assert r.status_code == 303, r.text
    assert "Change removed and saved." in text((await client.get(r.headers["location"])).text)
    assert (await o.variant())["changes"] == [
        SAVED_CSS,
        {"type": "hide", "selector": ".popup", "mode": "hide"},
    ]

    r = await o.post(None, remove="7")  # no such row
    assert r.status_code == 404


async def test_a_bad_change_is_refused_next_to_it_and_nothing_is_saved(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await org(client, api, database_url)
    before = await o.read()
    bad = [HERO_TEXT, {"type": "text", "selector": "", "text": "No target"}]
    r = await o.post(bad)
    assert r.status_code == 400, r.text
    rows = change_rows(r.text)
    assert "Selector is required" in rows[1] and "Selector is required" not in rows[0]
    assert 'class="has-error"' in r.text
    # the list the user made is still on the page, to fix and save again
    assert json.loads(unescape(re.search(r'id="f-changes" value="([^"]*)"', r.text).group(1))) == bad  # type: ignore[union-attr]

    r = await o.post(None, action="add", kind="text", selector="", value="Hi")
    assert r.status_code == 400
    assert field_error(r.text, "selector") == "Selector is required"
    assert 'aria-invalid="true" aria-describedby="f-selector-error' in r.text
    assert re.search(r'<textarea id="f-value"[^>]*>Hi</textarea>', r.text)  # what was typed stays

    r = await o.post(None, custom_css="x" * 100_001)
    assert r.status_code == 400
    assert field_error(r.text, "custom_css") == "Custom CSS must be at most 100000 characters"

    r = await o.post(None, changes="{not json")
    assert r.status_code == 400
    assert "The list of changes could not be read" in text(r.text)
    assert await o.read() == before


async def test_a_stale_version_gets_the_conflict_message_and_overwrites_nothing(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await org(client, api, database_url)
    stale = str((await o.read())["version"])
    # another member saves a change meanwhile (here with the API)
    theirs = [{"type": "text", "selector": "h1", "text": "Theirs"}]
    current = await o.read()
    variants = [{k: v[k] for k in ("key", "name", "weight", "changes")} for v in current["variants"]]
    variants[1]["changes"] = theirs
    patched = await api.patch(
        o.editor.removesuffix("/editor").replace("/experiments", "/api/v1/experiments"),
        json={"variants": variants},
        headers={**o.h, "If-Match": f'"{current["version"]}"'},
    )
    assert patched.status_code == 200, patched.text

    mine = [{"type": "text", "selector": "h1", "text": "Mine"}]
    r = await o.post(mine, version=stale)
    assert r.status_code == 412, r.text
    assert (
        "This experiment was changed by someone else (now version 2); reload it and apply your change again"
        in text(r.text)
    )
    assert (await o.variant())["changes"] == theirs
    assert change_rows(r.text)[0].startswith("Text h1 Theirs")  # the page shows what is saved now
    assert "Your changes that were not saved" in text(r.text) and "Mine" in text(r.text)

    # a form posted twice: the second finds its own changes saved and is not a conflict
    version = str((await o.read())["version"])
    first = await o.post(mine)
    assert first.status_code == 303
    again = await o.post(mine, version=version)
    assert again.status_code == 303, again.text
    assert (await o.variant())["changes"] == mine


async def test_a_live_experiment_is_shown_and_not_overwritten(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await org(client, api, database_url)
    started = await api.post(f"/api/v1/experiments/{o.experiment['id']}/start", headers=o.h)
    assert started.status_code == 200
    r = await client.get(o.editor)
    assert r.status_code == 200
    assert (
        "This experiment is live: its changes can be looked at and previewed, not saved. "
        "Pause it to edit them." in text(r.text)
    )
    assert '<fieldset class="bare" disabled aria-describedby="locked-reason">' in r.text
    r = await o.post([{"type": "hide", "selector": "h1"}])
    assert r.status_code == 409
    assert "A live experiment cannot be edited: pause it first" in text(r.text)
    assert (await o.variant())["changes"] == [HERO_TEXT, SAVED_CSS]


async def test_another_organizations_experiment_is_not_found(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    alice = await org(client, api, database_url, "alice")
    before = await alice.read()
    async with httpx.AsyncClient(base_url=client.base_url, timeout=10) as other:
        bob = await org(other, api, database_url, "bob")
        assert (await other.get(alice.editor)).status_code == 404
        r = await post_form(
            other,
            alice.editor,
            {"variant": "variant_b", "version": str(before["version"]), "changes": "[]", "action": "save"},
        )
        assert r.status_code == 404
        assert (await other.get(bob.editor, params={"variant": "nope"})).status_code == 404
    assert await alice.read() == before


async def test_the_page_needs_at_most_100_kb_of_gzipped_js_and_css(
    client: httpx.AsyncClient, api: httpx.AsyncClient, database_url: str
) -> None:
    o = await org(client, api, database_url)
    html = (await client.get(o.editor)).text
    assets = re.findall(r'<script src="([^"]+)"', html) + re.findall(
        r'<link rel="stylesheet" href="([^"]+)"', html
    )
    assert {a.split("?")[0].rsplit("/", 1)[1] for a in assets} == {
        "htmx.min.js",
        "dashboard.css",
        "editor.js",
        "editor.css",
    }
    total = 0
    for asset in assets:
        r = await client.get(asset)
        assert r.status_code == 200, asset
        total += len(gzip.compress(r.content, 9))
    assert total <= 100 * 1024, total
