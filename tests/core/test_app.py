"""The app's shared behaviour: health, schema, metrics, error shape, pagination."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import pg_execute

pytestmark = pytest.mark.usefixtures("backend")


async def test_health_reports_ok_with_database(client: httpx.AsyncClient) -> None:
    r = await client.get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.json()["database"] == "ok"


async def test_openapi_json_lists_kernel_and_plugin_routes(client: httpx.AsyncClient) -> None:
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert "/health" in paths
    assert "/api/v1/dummy/notes" in paths


async def test_unknown_path_gets_error_shape(client: httpx.AsyncClient) -> None:
    r = await client.get("/no/such/page")
    assert r.status_code == 404
    assert r.json() == {"status_code": 404, "detail": "Not Found", "errors": []}


async def test_invalid_body_names_the_field(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/dummy/notes", json={"text": ""})
    assert r.status_code == 400
    body = r.json()
    assert body["status_code"] == 400
    assert body["errors"][0]["field"] == "text"
    assert "length" in body["errors"][0]["message"]
    r = await client.post("/api/v1/dummy/notes", json={"text": "x", "pinned": "yes"})
    assert r.status_code == 400
    assert [e["field"] for e in r.json()["errors"]] == ["pinned"]
    listed = await client.get("/api/v1/dummy/notes")
    assert listed.json()["items"] == []  # nothing was written


async def test_malformed_json_is_a_400_not_a_500(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/dummy/notes", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json()["status_code"] == 400


async def test_cursor_pagination_walks_every_item_once(client: httpx.AsyncClient) -> None:
    created = []
    for i in range(7):
        r = await client.post("/api/v1/dummy/notes", json={"text": f"note {i}"})
        assert r.status_code == 201
        created.append(r.json()["id"])
    seen: list[str] = []
    cursor = None
    pages = 0
    while pages < 10:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/dummy/notes", params=params)).json()
        pages += 1
        seen += [n["id"] for n in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(created))  # newest first, no gaps, no repeats


async def test_bad_cursor_and_limit_are_field_errors(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/dummy/notes", params={"cursor": "garbage!"})
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "cursor"
    r = await client.get("/api/v1/dummy/notes", params={"limit": 0})
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "limit"


async def test_metrics_count_requests(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1/dummy/notes")
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert "segmently_requests_total" in r.text


@pytest.mark.postgresql_only
async def test_health_is_503_while_the_database_is_unreachable(
    client: httpx.AsyncClient, database_url: str
) -> None:
    name = database_url.rsplit("/", 1)[1]
    pg_execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    pg_execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    try:
        r = await client.get("/health")
        assert r.status_code == 503
        assert r.json()["database"] == "unreachable"
    finally:
        pg_execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    assert (await client.get("/health")).status_code == 200  # and it recovers by itself


async def test_responses_go_as_brotli_or_gzip_as_the_client_takes_them(client: httpx.AsyncClient) -> None:
    """The app's own responses (here the API schema): Brotli first, gzip for the rest."""
    plain = await client.get("/schema/openapi.json", headers={"Accept-Encoding": "identity"})
    assert len(plain.content) > 1024 and "content-encoding" not in plain.headers
    for asked, sent in (("gzip, deflate, br, zstd", "br"), ("gzip, deflate", "gzip")):
        r = await client.get("/schema/openapi.json", headers={"Accept-Encoding": asked})
        # httpx decodes both: the same document arrives, in fewer bytes on the wire
        assert r.headers["content-encoding"] == sent and r.content == plain.content, asked
        assert r.num_bytes_downloaded < len(plain.content) / 3, asked
    # a coding refused with q=0 is not sent; "*" takes either (Brotli, the smaller)
    refusals = (("br;q=0, gzip", "gzip"), ("gzip, br; q=0.0", "gzip"), ("*", "br"), ("*;q=0, gzip", "gzip"))
    for asked, sent in refusals:
        r = await client.get("/schema/openapi.json", headers={"Accept-Encoding": asked})
        assert r.headers.get("content-encoding") == sent and r.content == plain.content, asked
    for asked in ("gzip;q=0, br;q=0", "*;q=0"):
        r = await client.get("/schema/openapi.json", headers={"Accept-Encoding": asked})
        assert "content-encoding" not in r.headers and r.content == plain.content, asked
