"""What customer sites call with their key: config (ETag, preview, invalidation), assignment, flags."""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path

import brotli
import httpx
import msgspec
import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from segmently.app import create_app
from segmently.assignment import hash_v2
from segmently.domain.sdk.config import applied_variant, cookie_domains
from segmently.http import precompressed
from tests.conftest import serve_app
from tests.core.experiments.test_experiments import hero, owner_site

pytestmark = pytest.mark.usefixtures("backend")


async def live(client: httpx.AsyncClient, h: dict[str, str], site: dict, **over) -> dict:  # type: ignore[type-arg, no-untyped-def]
    exp = (
        await client.post(f"/api/v1/projects/{site['id']}/experiments", json=hero(**over), headers=h)
    ).json()
    started = await client.post(f"/api/v1/experiments/{exp['id']}/start", headers=h)
    assert started.status_code == 200, started.text
    return started.json()  # type: ignore[no-any-return]


async def raw(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> tuple[httpx.Response, bytes]:
    """The response and its body as sent (httpx would decode ``Content-Encoding``)."""
    async with client.stream("GET", url, headers=headers) as r:
        return r, b"".join([chunk async for chunk in r.aiter_raw()])


async def brotli_made(
    client: httpx.AsyncClient, url: str, headers: dict[str, str]
) -> tuple[httpx.Response, bytes]:
    """The first answer in Brotli: until it is made (in a thread), the server sends gzip."""
    for _ in range(500):
        r, body = await raw(client, url, {**headers, "Accept-Encoding": "gzip, deflate, br, zstd"})
        if r.headers.get("content-encoding") == "br":
            return r, body
        assert r.headers["content-encoding"] == "gzip", url
        await asyncio.sleep(0.01)
    raise AssertionError(f"{url} never came as Brotli")


async def test_the_config_goes_compressed_to_clients_that_take_it(
    client: httpx.AsyncClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[int] = []
    make = precompressed._brotli
    monkeypatch.setattr(precompressed, "_brotli", lambda body: made.append(len(body)) or make(body))
    h, site = await owner_site(client, database_url)
    for _ in range(3):  # a body over a kilobyte
        await live(client, h, site)
    key = {"X-API-Key": site["api_key"]}
    plain, plain_body = await raw(client, "/api/v1/sdk/config", {**key, "Accept-Encoding": "identity"})
    assert len(plain_body) > 1024 and "content-encoding" not in plain.headers
    # Brotli where it is taken (as Chromium asks), gzip for a client that takes only gzip. The first
    # Brotli request does not wait for it to be made: it gets gzip
    chromium = {**key, "Accept-Encoding": "gzip, deflate, br, zstd"}
    first = await client.get("/api/v1/sdk/config", headers=chromium)
    assert first.headers["content-encoding"] == "gzip" and first.content == plain_body
    br, br_body = await brotli_made(client, "/api/v1/sdk/config", key)
    zipped, zipped_body = await raw(client, "/api/v1/sdk/config", {**key, "Accept-Encoding": "br;q=0, gzip"})
    assert br.headers["content-encoding"] == "br" and zipped.headers["content-encoding"] == "gzip"
    assert brotli.decompress(br_body) == gzip.decompress(zipped_body) == plain_body
    assert len(br_body) < len(zipped_body) < len(plain_body) / 2
    for r in (plain, br, zipped):
        assert "Accept-Encoding" in r.headers["vary"]
    # each encoding is its own representation with its own tag; any of them revalidates
    tag = plain.headers["etag"]
    assert br.headers["etag"] == tag[:-1] + '-br"' and zipped.headers["etag"] == tag[:-1] + '-gz"'
    for sent in (tag, br.headers["etag"], f"W/{zipped.headers['etag']}", '"other", ' + tag):
        again = await client.get("/api/v1/sdk/config", headers={**chromium, "If-None-Match": sent})
        assert again.status_code == 304 and again.headers["etag"] == br.headers["etag"], sent
    other = await client.get("/api/v1/sdk/config", headers={**key, "If-None-Match": '"other"'})
    assert other.status_code == 200
    # made once with the config, not per request: one Brotli compression for all these requests
    assert (await raw(client, "/api/v1/sdk/config", {**key, "Accept-Encoding": "br"}))[1] == br_body
    assert made == [len(plain_body)]
    refused, refused_body = await raw(client, "/api/v1/sdk/config", {**key, "Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers and refused_body == plain_body


async def test_config_serves_live_experiments_with_etag_and_304(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    key = {"X-API-Key": site["api_key"]}
    assert (await client.get("/api/v1/sdk/config")).status_code == 401
    assert (
        await client.get("/api/v1/sdk/config", headers={"X-API-Key": "seg_live_wrong"})
    ).status_code == 401
    empty = await client.get("/api/v1/sdk/config", headers=key)
    assert empty.status_code == 200 and empty.json()["experiments"] == []
    assert empty.json()["badge"] is False  # enterprise
    draft = (
        await client.post(
            f"/api/v1/projects/{site['id']}/experiments", json=hero(name="Draft one"), headers=h
        )
    ).json()
    exp = await live(client, h, site)
    r = await client.get("/api/v1/sdk/config", headers=key)
    cfg = r.json()
    assert [e["slug"] for e in cfg["experiments"]] == [exp["slug"]]  # the draft is not served
    served = cfg["experiments"][0]
    assert served["seed"] == exp["hash_seed"]
    assert [v["id"] for v in served["variants"]] == [v["id"] for v in exp["variants"]]
    # what the snippet applies: the element changes, the css change without a selector as a style sheet
    assert served["variants"][1]["elements"] == [{"type": "text", "selector": "h1", "text": "Hello"}]
    assert served["variants"][1]["styles"] == ["h1{color:green}"] and served["variants"][1]["scripts"] == []
    # what the snippet evaluates: URL rules as patterns, the bucket ranges of 50/50 at 100 % traffic
    assert served["url"] == ["\\/"] and served["ranges"] == [[0, 0.5], [0.5, 1.0]]
    assert served["targeting"]["countries"] == []
    etag = r.headers["etag"]
    assert (await client.get("/api/v1/sdk/config", headers={**key, "If-None-Match": etag})).status_code == 304
    # a write changes what is served at once
    await client.post(f"/api/v1/experiments/{exp['id']}/pause", headers=h)
    after = await client.get("/api/v1/sdk/config", headers={**key, "If-None-Match": etag})
    assert after.status_code == 200 and after.json()["experiments"] == []
    preview = await client.get(
        "/api/v1/sdk/config", params={"preview": f"{draft['slug']}:variant_b"}, headers=key
    )
    assert [(e["slug"], e["preview"]) for e in preview.json()["experiments"]] == [(draft["slug"], True)]
    # the previewed variant, by key or by id, is the one the snippet forces; an unknown one, none
    assert preview.json()["experiments"][0]["forced"] == 1
    assert "forced" not in served  # a visitor's config forces nothing
    for asked, forced in ((draft["variants"][0]["id"], 0), ("nope", None)):
        r = await client.get(
            "/api/v1/sdk/config", params={"preview": f"{draft['slug']}:{asked}"}, headers=key
        )
        assert r.json()["experiments"][0]["forced"] == forced
    long = await client.get("/api/v1/sdk/config", params={"preview": "x" * 201}, headers=key)
    assert long.status_code == 400 and "preview" in long.text


async def test_the_config_serves_the_rules_as_the_snippet_checks_them(
    client: httpx.AsyncClient, database_url: str
) -> None:
    """The server does the rule work once: the snippet runs patterns, looks up ranges, and takes
    triggers, devices and the cross-domain hosts as they come."""
    h, site = await owner_site(client, database_url)
    await live(
        client,
        h,
        site,
        name="Everywhere",
        targeting={
            "url_rules": [
                {"type": "exact", "value": "/pricing/"},
                {"type": "regex", "value": "^https://a\\."},
            ],
            "devices": ["desktop", "tablet", "mobile"],
            "traffic_percentage": 50,
        },
        advanced={"cross_domain": ["checkout.example.com", "pay.example.com"]},
    )
    await live(
        client,
        h,
        site,
        name="Scrolled",
        targeting={"url_rules": [], "devices": ["mobile"], "countries": ["DE"]},
        audience={"triggers": {"scroll_percent": 50}},
        advanced={"cross_domain": ["pay.example.com", "shop.example.com"]},
    )
    cfg = (await client.get("/api/v1/sdk/config", headers={"X-API-Key": site["api_key"]})).json()
    everywhere, scrolled = cfg["experiments"]
    own_origin = "(?:[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*(?![^/?#])|(?![A-Za-z][A-Za-z0-9+.-]*://))"
    assert everywhere["url"] == ["^" + own_origin + "\\/pricing/*(?![^?#])", "^https://a\\."]
    assert everywhere["ranges"] == [[0, 0.25], [0.5, 0.75]]  # 50/50 at 50 % traffic
    assert everywhere["targeting"]["devices"] == []  # all three: every device
    assert everywhere["audience"]["triggers"] is None  # not behavioral
    assert scrolled["url"] == [] and scrolled["targeting"]["devices"] == ["mobile"]
    assert scrolled["targeting"]["countries"] == ["DE"]
    assert scrolled["audience"]["triggers"] == {
        "scroll_percent": 50,
        "time_seconds": None,
        "click_selector": None,
    }
    assert cfg["settings"]["cross_domain"] == ["checkout.example.com", "pay.example.com", "shop.example.com"]
    # the site (https://shop.example.com) and its cross-domain hosts share one registrable domain
    assert cfg["settings"]["cookie_domains"] == ["example.com"]
    # what the Python SDK reads is still there
    assert everywhere["targeting"]["url_rules"][0] == {"type": "exact", "value": "/pricing/"}
    assert everywhere["targeting"]["traffic_percentage"] == 50


def test_cookie_domains_are_the_registrable_domains_browsers_take_cookies_on() -> None:
    """The widest domain of each host by the public suffix list (private domains included), once
    each, in order; IP addresses, localhost and public suffixes have none (host-only cookies)."""
    hosts = ["www.shop.example.co.uk", "127.0.0.1", "[::1]", "localhost", "WWW.Example.com.", "example.com"]
    hosts += ["co.uk", "pages.github.io", "github.io", "checkout.test", ""]
    assert cookie_domains(hosts) == ["example.co.uk", "example.com", "pages.github.io", "checkout.test"]


async def test_a_site_url_without_a_host_still_serves_its_config(
    client: httpx.AsyncClient, database_url: str
) -> None:
    """A URL the site check lets through but no parser reads (``http://[::1``) gives no cookie domain."""
    h, _ = await owner_site(client, database_url)
    site = (
        await client.post("/api/v1/projects", json={"name": "Odd", "url": "http://[::1"}, headers=h)
    ).json()
    cfg = await client.get("/api/v1/sdk/config", headers={"X-API-Key": site["api_key"]})
    assert cfg.status_code == 200 and cfg.json()["settings"]["cookie_domains"] == []


def test_a_variant_is_served_as_the_snippet_applies_it_in_the_spec_order() -> None:
    """Element changes in list order; style sheets (css changes without a selector or holding a
    rule, then the experiment's and the variant's custom CSS); scripts (js changes, then the
    experiment's and the variant's custom JS) labelled for the console. Empty ones are left out."""
    stored = {
        "changes": [
            {"type": "js", "code": "first()"},
            {"type": "css", "css": "h1 { color: green }"},
            {"type": "text", "selector": "h1", "text": "New"},
            {"type": "css", "selector": "h2", "css": "h2 { color: blue }"},
            {"type": "css", "selector": ".cta", "css": "color: red"},
            {"type": "html", "selector": "#box", "html": ""},  # not edited in the editor
            {"type": "html", "selector": "#hero", "html": "<p>new</p>"},
            {"type": "hide", "selector": ".promo", "mode": "remove"},
            {"type": "css", "selector": None, "css": ""},
            {"type": "js", "code": " \n\t"},
            {"type": "js", "code": "eighth()"},
        ],
        "custom_css": ".variant { margin: 0 }",
        "custom_js": "variant()",
    }
    assert applied_variant(stored, "body { margin: 0 }", "") == {
        "elements": [
            {"type": "text", "selector": "h1", "text": "New"},
            {"type": "css", "selector": ".cta", "css": "color: red"},
            {"type": "html", "selector": "#hero", "html": "<p>new</p>"},
            {"type": "hide", "selector": ".promo", "mode": "remove"},
        ],
        "styles": [
            "h1 { color: green }",
            "h2 { color: blue }",
            "body { margin: 0 }",
            ".variant { margin: 0 }",
        ],
        "scripts": [["JS change 1", "first()"], ["JS change 11", "eighth()"], ["custom JS 2", "variant()"]],
    }
    assert applied_variant({"changes": []}, "", "page()") == {
        "elements": [],
        "styles": [],
        "scripts": [["custom JS 1", "page()"]],
    }


async def test_assign_follows_the_hash_and_is_sticky(client: httpx.AsyncClient, database_url: str) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(
        client,
        h,
        site,
        targeting={"url_rules": [{"type": "contains", "value": "/"}], "traffic_percentage": 60},
    )
    key = {"X-API-Key": site["api_key"]}
    url = f"/api/v1/experiments/{exp['slug']}/assign"
    for i in range(40):
        n = hash_v2(exp["hash_seed"], f"v{i}")
        want = "control" if n < 0.3 else "variant_b" if 0.5 <= n < 0.8 else None
        r = await client.post(
            url,
            json={"visitor_id": f"v{i}", "targeting_data": {"url": "https://shop.example.com/"}},
            headers=key,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["experiment"] == exp["slug"]
        assert (body["variant"] or {}).get("key") == want, (i, n, body)
        assert body["in_experiment"] is (want is not None)
    # sticky: raising the traffic later keeps the first answer for an assigned visitor
    first = (await client.post(url, json={"visitor_id": "v1"}, headers=key)).json()
    assert first["in_experiment"] is (
        (hash_v2(exp["hash_seed"], "v1") < 0.3) or (0.5 <= hash_v2(exp["hash_seed"], "v1") < 0.8)
    )
    excluded = await client.post(
        url, json={"visitor_id": "new-one", "targeting_data": {"url": "mailto:x"}}, headers=key
    )
    assert excluded.json()["in_experiment"] is False and excluded.json()["variant"] is None
    unknown = await client.post("/api/v1/experiments/nope/assign", json={"visitor_id": "x"}, headers=key)
    assert unknown.status_code == 404 and "nope" in unknown.json()["detail"]
    assert (await client.post(url, json={"visitor_id": "x"})).status_code == 401


async def test_flags_for_a_visitor(client: httpx.AsyncClient, database_url: str) -> None:
    h, site = await owner_site(client, database_url)
    key = {"X-API-Key": site["api_key"]}
    made = await client.post(
        f"/api/v1/projects/{site['id']}/flags",
        json={"key": "new-checkout", "name": "New checkout", "status": "active", "rollout_percentage": 50},
        headers=h,
    )
    assert made.status_code == 201, made.text
    on = {v: hash_v2("new-checkout", v) < 0.5 for v in (f"visitor-{i}" for i in range(20))}
    for visitor, expected in on.items():
        r = await client.get("/api/v1/flags", params={"visitor_id": visitor}, headers=key)
        assert r.json()["flags"]["new-checkout"] is expected
    cfg = (await client.get("/api/v1/sdk/config", headers=key)).json()
    assert cfg["flags"] == [{"key": "new-checkout", "rollout": 50.0}]
    # the kill switch: inactive → off for everyone, and gone from the config at once
    flag_id = made.json()["id"]
    assert (
        await client.patch(f"/api/v1/flags/{flag_id}", json={"status": "inactive"}, headers=h)
    ).status_code == 200
    cfg = (await client.get("/api/v1/sdk/config", headers=key)).json()
    assert cfg["flags"] == []
    r = await client.get("/api/v1/flags", params={"visitor_id": "visitor-1"}, headers=key)
    assert r.json()["flags"]["new-checkout"] is False


async def test_country_comes_from_the_trusted_header(
    client: httpx.AsyncClient,
    database_url: str,
    settings,
    plugins,  # type: ignore[no-untyped-def]
) -> None:
    _, site = await owner_site(client, database_url)
    key = {"X-API-Key": site["api_key"]}
    untrusted = (await client.get("/api/v1/sdk/config", headers={**key, "CF-IPCountry": "DE"})).json()
    assert untrusted["country"] is None  # no header configured: nothing is trusted
    trusting = create_app(msgspec.structs.replace(settings, country_header="CF-IPCountry"), plugins)
    async with serve_app(trusting) as base, httpx.AsyncClient(base_url=base) as c:
        de = await c.get("/api/v1/sdk/config", headers={**key, "CF-IPCountry": "de"})
        assert de.json()["country"] == "DE" and de.headers["vary"] == "CF-IPCountry, Accept-Encoding"
        us = await c.get(
            "/api/v1/sdk/config", headers={**key, "CF-IPCountry": "US", "If-None-Match": de.headers["etag"]}
        )
        assert us.status_code == 200 and us.json()["country"] == "US"  # another country: another ETag
        assert (await c.get("/api/v1/sdk/config", headers={**key, "CF-IPCountry": "XX"})).json()[
            "country"
        ] is None


async def test_cors_lets_customer_sites_call(client: httpx.AsyncClient, database_url: str) -> None:
    _, site = await owner_site(client, database_url)
    r = await client.options(
        "/api/v1/sdk/config",
        headers={
            "Origin": "https://shop.example.com",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "X-API-Key",
        },
    )
    assert r.status_code in (200, 204)
    assert r.headers["access-control-allow-origin"] in ("*", "https://shop.example.com")
    got = await client.get(
        "/api/v1/sdk/config", headers={"X-API-Key": site["api_key"], "Origin": "https://shop.example.com"}
    )
    assert "etag" in got.headers.get("access-control-expose-headers", "").lower()


async def test_public_endpoints_are_rate_limited_generously(
    settings,
    plugins,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setenv("SEGMENTLY_RATE_LIMIT_PUBLIC", "5/minute")
    async with serve_app(create_app(settings, plugins)) as base, httpx.AsyncClient(base_url=base) as c:
        _, site = await owner_site(c, database_url)
        key = {"X-API-Key": site["api_key"]}
        statuses = [(await c.get("/api/v1/sdk/config", headers=key)).status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        # counted per endpoint: the flags endpoint has its own budget
        assert (await c.get("/api/v1/flags", params={"visitor_id": "v"}, headers=key)).status_code == 200


async def test_a_write_on_one_node_is_served_by_every_node_at_once(
    client: httpx.AsyncClient,
    database_url: str,
    settings,
    plugins,  # type: ignore[no-untyped-def]
) -> None:
    h, site = await owner_site(client, database_url)
    key = {"X-API-Key": site["api_key"]}
    async with (
        serve_app(create_app(settings, plugins)) as other_node,
        httpx.AsyncClient(base_url=other_node) as b,
    ):
        before = await b.get("/api/v1/sdk/config", headers=key)  # node B caches the empty config
        assert before.json()["experiments"] == []
        exp = await live(client, h, site)  # written through node A
        after = await b.get("/api/v1/sdk/config", headers={**key, "If-None-Match": before.headers["etag"]})
        assert after.status_code == 200
        assert [e["id"] for e in after.json()["experiments"]] == [exp["id"]]


def write_country_db(path: Path) -> None:
    """A tiny MaxMind Country database: 127.0.0.0/8 is in France."""
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-Country")
    writer.insert_network(IPSet(["127.0.0.0/8"]), {"country": {"iso_code": "FR", "names": {"en": "France"}}})
    writer.to_db_file(str(path))


async def test_country_from_a_maxmind_database(
    client: httpx.AsyncClient,
    database_url: str,
    settings,
    plugins,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    _, site = await owner_site(client, database_url)
    key = {"X-API-Key": site["api_key"]}
    write_country_db(tmp_path / "country.mmdb")
    with_db = msgspec.structs.replace(
        settings, geoip_db=tmp_path / "country.mmdb", country_header="CF-IPCountry"
    )
    async with serve_app(create_app(with_db, plugins)) as base, httpx.AsyncClient(base_url=base) as c:
        assert (await c.get("/api/v1/sdk/config", headers=key)).json()["country"] == "FR"  # loopback → FR
        assert (await c.get("/api/v1/sdk/config", headers={**key, "CF-IPCountry": "JP"})).json()[
            "country"
        ] == "JP"
