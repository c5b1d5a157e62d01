"""The server's snippet routes: /segmently.js, /snippet/{name}.js and /s/{api_key}.js with the config inlined.

The files served are whatever the build left in ``snippet_dir``; here a stand-in build, so these
tests check the serving (the browser tests load the real build).
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import brotli
import httpx
import pytest
from sqlalchemy import update

from segmently.db.models import Organization
from segmently.domain.sdk.snippet import COMPILE_HINT
from tests.conftest import make_settings, serve_app
from tests.core.accounts.test_team import db_update
from tests.core.experiments.test_experiments import owner_site
from tests.core.experiments.test_public_api import brotli_made, live, raw

pytestmark = pytest.mark.usefixtures("backend")
CORE = b"(function(){window.SegmentlyLoaded=!0})();\n"


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    d = tmp_path / "dist"
    d.mkdir()
    (d / "segmently.js").write_bytes(CORE)
    (d / "preview.js").write_bytes(b"(function(){})();\n")
    return d


@pytest.fixture
async def client(
    database_url: str, tmp_path: Path, dist: Path, plugins: object
) -> AsyncIterator[httpx.AsyncClient]:
    from segmently.app import create_app

    app = create_app(make_settings(database_url, tmp_path, snippet_dir=dist), plugins)  # type: ignore[arg-type]
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as c:
        yield c


BIG = CORE + b"".join(b"/* padding %d */\n" % i for i in range(200))


async def big_core_site(
    client: httpx.AsyncClient, database_url: str, dist: Path
) -> tuple[dict[str, str], dict[str, Any]]:
    """A core large enough to be compressed (``BIG``), and a site with a live experiment."""
    (dist / "segmently.js").write_bytes(BIG)
    h, site = await owner_site(client, database_url)
    await live(client, h, site)
    return h, site


async def test_the_core_and_its_chunks_are_served_with_etags(client: httpx.AsyncClient, dist: Path) -> None:
    core = await client.get("/segmently.js")
    assert core.status_code == 200 and core.content == CORE
    assert core.headers["content-type"].startswith("text/javascript")
    assert core.headers["cache-control"] == "public, max-age=300"
    assert "x-frame-options" not in core.headers  # embeddable on any site
    again = await client.get("/segmently.js", headers={"If-None-Match": core.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert (await client.get("/snippet/preview.js")).content == b"(function(){})();\n"
    # a rebuild is served at once, with a new tag
    (dist / "segmently.js").write_bytes(CORE + b"//v2\n")
    rebuilt = await client.get("/segmently.js", headers={"If-None-Match": core.headers["etag"]})
    assert rebuilt.status_code == 200 and rebuilt.content.endswith(b"//v2\n")


@pytest.mark.parametrize("name", ["nope.js", "..%2Fsegmently.js", "preview", "PREVIEW.js", ".hidden.js"])
async def test_only_built_chunks_by_plain_name(client: httpx.AsyncClient, name: str) -> None:
    assert (await client.get(f"/snippet/{name}")).status_code == 404


async def test_an_unbuilt_snippet_says_how_to_build_it(client: httpx.AsyncClient, dist: Path) -> None:
    (dist / "segmently.js").unlink()
    r = await client.get("/segmently.js")
    assert r.status_code == 503 and "npm run build" in r.json()["detail"]


async def test_the_site_script_inlines_the_config_before_the_core(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)
    r = await client.get(f"/s/{site['api_key']}.js")
    assert r.status_code == 200 and r.headers["cache-control"] == "private, no-cache"
    head, core = r.content.split(b";\n", 1)
    assert core == CORE
    prefix = b"window.__segmentlyConfig="
    assert head.startswith(prefix)
    inline = json.loads(head[len(prefix) :])
    assert inline["apiKey"] == site["api_key"]
    assert [e["slug"] for e in inline["config"]["experiments"]] == [exp["slug"]]
    # the same config and tag as the config endpoint (its body's tag, which revalidates any encoding)
    key = {"api_key": site["api_key"]}
    config = await client.get("/api/v1/sdk/config", params=key)
    plain = await client.get("/api/v1/sdk/config", params=key, headers={"Accept-Encoding": "identity"})
    assert inline["config"] == config.json() and inline["etag"] == plain.headers["etag"]
    again = await client.get("/api/v1/sdk/config", params=key, headers={"If-None-Match": inline["etag"]})
    assert again.status_code == 304
    assert (
        await client.get(f"/s/{site['api_key']}.js", headers={"If-None-Match": r.headers["etag"]})
    ).status_code == 304
    # a change to the experiment changes the script
    await client.post(f"/api/v1/experiments/{exp['id']}/pause", headers=h)
    changed = await client.get(f"/s/{site['api_key']}.js", headers={"If-None-Match": r.headers["etag"]})
    assert changed.status_code == 200 and b'"experiments":[]' in changed.content


async def test_the_files_go_compressed_to_clients_that_take_it(
    client: httpx.AsyncClient, database_url: str, dist: Path
) -> None:
    _, site = await big_core_site(client, database_url, dist)
    for url in ("/segmently.js", f"/s/{site['api_key']}.js"):
        plain, plain_body = await raw(client, url, {"Accept-Encoding": "identity"})
        br, br_body = await brotli_made(client, url, {})
        zipped, zipped_body = await raw(client, url, {"Accept-Encoding": "gzip, deflate"})
        assert "content-encoding" not in plain.headers and plain_body.endswith(BIG), url
        assert br.headers["content-encoding"] == "br" and zipped.headers["content-encoding"] == "gzip", url
        assert brotli.decompress(br_body) == gzip.decompress(zipped_body) == plain_body, url
        assert len(br_body) < len(zipped_body), url
        tag = plain.headers["etag"]
        assert br.headers["etag"] == tag[:-1] + '-br"' and zipped.headers["etag"] == tag[:-1] + '-gz"', url
        assert plain.headers["vary"] == br.headers["vary"] == zipped.headers["vary"] == "Accept-Encoding"
    # a small chunk goes as it is, under its one tag
    small, small_body = await raw(client, "/snippet/preview.js", {"Accept-Encoding": "br, gzip"})
    assert "content-encoding" not in small.headers and small_body == b"(function(){})();\n"
    assert not small.headers["etag"].endswith(('-br"', '-gz"'))


async def test_head_answers_what_get_would_without_the_body(
    client: httpx.AsyncClient, database_url: str, dist: Path
) -> None:
    """Uptime monitors, CDNs and `curl -I` ask with HEAD: the same status and headers, no body."""
    _, site = await big_core_site(client, database_url, dist)
    for url in ("/segmently.js", "/snippet/preview.js", f"/s/{site['api_key']}.js"):
        for accept in ("identity", "gzip"):
            got, got_body = await raw(client, url, {"Accept-Encoding": accept})
            async with client.stream("HEAD", url, headers={"Accept-Encoding": accept}) as head:
                head_body = b"".join([chunk async for chunk in head.aiter_raw()])
            assert head.status_code == 200 and head_body == b"", (url, accept)
            for name in ("etag", "content-type", "cache-control", "vary", "content-length"):
                assert head.headers.get(name) == got.headers.get(name), (url, accept, name)
            assert got.headers["content-length"] == str(len(got_body))
            tag = got.headers["etag"]
            again = await client.head(url, headers={"Accept-Encoding": accept, "If-None-Match": tag})
            assert again.status_code == 304, (url, accept)
    assert (await client.head("/snippet/nothing.js")).status_code == 404
    assert (await client.head("/s/seg_live_unknownkey123.js")).status_code == 401


async def test_a_regenerated_key_gets_a_script_of_its_own(
    client: httpx.AsyncClient, database_url: str, dist: Path
) -> None:
    """The key is inlined in ``/s/{key}.js``: the old key's script (or its encodings) never serves it."""
    h, site = await big_core_site(client, database_url, dist)
    old_key = site["api_key"]
    before, before_body = await brotli_made(client, f"/s/{old_key}.js", {})
    assert old_key.encode() in brotli.decompress(before_body)
    r = await client.post(f"/api/v1/projects/{site['id']}/regenerate-key", headers=h)
    new_key = r.json()["api_key"]
    for accept in ("br", "gzip", "identity"):
        after = await client.get(f"/s/{new_key}.js", headers={"Accept-Encoding": accept})
        assert after.status_code == 200, accept
        assert new_key.encode() in after.content and old_key.encode() not in after.content, accept
        assert after.headers["etag"] != before.headers["etag"], accept
    assert before.headers["content-encoding"] == "br"


async def test_the_site_script_keeps_the_cores_compile_hint_its_first_line(
    client: httpx.AsyncClient, database_url: str, dist: Path
) -> None:
    """Chromium reads ``//# allFunctionsCalledOnLoad`` only as a file's first line."""
    (dist / "segmently.js").write_bytes(COMPILE_HINT + CORE)
    h, site = await owner_site(client, database_url)
    await live(client, h, site)
    assert (await client.get("/segmently.js")).content == COMPILE_HINT + CORE
    r = await client.get(f"/s/{site['api_key']}.js")
    hint, head, core = r.content.split(b"\n", 2)
    assert hint + b"\n" == COMPILE_HINT
    assert head.startswith(b"window.__segmentlyConfig=") and core == CORE
    assert r.content.count(b"allFunctionsCalledOnLoad") == 1


async def test_the_site_script_refuses_unknown_keys_and_suspended_orgs(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    assert (await client.get("/s/seg_live_0123456789abcdef.js")).status_code == 401
    assert (await client.get("/s/not-a-key.js")).status_code == 404
    me = (await client.get("/api/v1/me", headers=h)).json()
    org_id = me["organization"]["id"] if "organization" in me else me["organizations"][0]["id"]
    await db_update(
        database_url, update(Organization).where(Organization.id == org_id).values(status="suspended")
    )
    r = await client.get(f"/s/{site['api_key']}.js")
    assert r.status_code == 403 and re.search("suspended", r.text)
