"""The Python server SDK against the real server on loopback: /assign's buckets, ETag, kill switch, outage."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import msgspec
import pytest

from segmently.assignment import ExperimentRules
from segmently.sdk import CONFIG_PATH, AsyncSegmentlyClient, SegmentlyClient, SegmentlyError, Variant
from tests.core.experiments.test_experiments import owner_site
from tests.core.experiments.test_public_api import live

pytestmark = pytest.mark.usefixtures("backend")
SHOP = "https://shop.example.com"


class Wire(httpx.AsyncBaseTransport):
    """The real transport, recording the config requests; ``down`` fails them like a stopped server.

    Event batches (the assignments ``get_variant`` queues) pass untouched: test_sdk_events.py tests those.
    """

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.statuses: list[int] = []
        self.if_none_match: list[str | None] = []
        self.down = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != CONFIG_PATH:
            return await self.inner.handle_async_request(request)
        if self.down:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        self.if_none_match.append(request.headers.get("if-none-match"))
        response = await self.inner.handle_async_request(request)
        self.statuses.append(response.status_code)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class SyncWire(httpx.BaseTransport):
    """:class:`Wire` for the threaded client."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.statuses: list[int] = []
        self.down = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != CONFIG_PATH:
            return self.inner.handle_request(request)
        if self.down:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        response = self.inner.handle_request(request)
        self.statuses.append(response.status_code)
        return response

    def close(self) -> None:
        self.inner.close()


async def in_thread(fn: Callable[[], Any]) -> Any:
    """Run blocking SDK calls off the event loop that serves the app."""
    return await asyncio.to_thread(fn)


def visitors(n: int) -> list[dict[str, Any]]:
    """Fresh visitors with every kind of context: ASCII, non-ASCII and emoji ids, all devices, …"""
    urls = [f"{SHOP}/checkout/step-1", f"{SHOP}/cart", f"{SHOP}/blog/post", None, f"{SHOP}/checkout?x=1"]
    screens: list[tuple[str | None, float | None]] = [
        ("desktop", None),
        (None, 800),
        (None, 375),
        ("mobile", None),
        (None, None),
        (None, 1440),
    ]
    countries = ["US", "DE", "FR", None, "us", "XX", "DE"]
    ids = ["visitor-{}", "besucher-ü-{}", "👩‍💻-{}", "{}"]
    out = []
    for i in range(n):
        device, width = screens[i % len(screens)]
        out.append(
            {
                "visitor_id": ids[i % len(ids)].format(i),
                "url": urls[i % len(urls)],
                "device": device,
                "viewport_width": width,
                "country": countries[i % len(countries)],
                "is_returning": i % 3 == 0,
                "attributes": {"plan": "banned" if i % 11 == 0 else "pro"},
                "referrer": None,
            }
        )
    return out


async def test_local_buckets_equal_the_servers_assign(
    client: httpx.AsyncClient, server: str, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    checkout = await live(
        client,
        h,
        site,
        name="Checkout",
        variants=[
            {"key": "control", "name": "Control", "weight": 20},
            {"key": "variant_b", "name": "Variant B", "weight": 30},
            {"key": "variant_c", "name": "Variant C", "weight": 50},
        ],
        targeting={
            "url_rules": [
                {"type": "starts_with", "value": f"{SHOP}/checkout"},
                {"type": "regex", "value": "/cart/?$"},
            ],
            "devices": ["desktop", "mobile"],
            "countries": ["US", "DE"],
            "traffic_percentage": 70,
        },
        audience={"attribute_rules": [{"key": "plan", "operator": "not_equals", "value": "banned"}]},
    )
    returning = await live(
        client,
        h,
        site,
        name="Returning",
        targeting={"url_rules": [{"type": "contains", "value": "/"}], "traffic_percentage": 60},
        audience={"visitor_type": "returning"},
    )
    people = visitors(200)
    gate = asyncio.Semaphore(8)

    async def assign(slug: str, p: dict[str, Any]) -> dict[str, str] | None:
        async with gate:
            r = await client.post(
                f"/api/v1/experiments/{slug}/assign",
                json={
                    "visitor_id": p["visitor_id"],
                    "targeting_data": {k: v for k, v in p.items() if k != "visitor_id"},
                },
                headers={"X-API-Key": site["api_key"]},
            )
        assert r.status_code == 200, r.text
        variant: dict[str, str] | None = r.json()["variant"]
        return variant

    want = {
        exp["slug"]: await asyncio.gather(*(assign(exp["slug"], p) for p in people))
        for exp in (checkout, returning)
    }
    seen = {v["key"] if v else None for v in want[checkout["slug"]]}
    assert seen == {None, "control", "variant_b", "variant_c"}  # every outcome is exercised

    def local(variants: list[Variant | None]) -> list[dict[str, str] | None]:
        return [msgspec.structs.asdict(v) if v else None for v in variants]

    async with AsyncSegmentlyClient(site["api_key"], server) as sdk:
        for slug, answers in want.items():
            got = [await sdk.get_variant(slug, **p) for p in people]
            assert local(got) == answers, slug
        assert await sdk.get_variant("no-such-experiment", "v1") is None

    def threaded() -> dict[str, list[Variant | None]]:
        with SegmentlyClient(site["api_key"], server + "/") as sdk:
            return {slug: [sdk.get_variant(slug, **p) for p in people] for slug in want}

    for slug, got in (await in_thread(threaded)).items():
        assert local(got) == want[slug], slug


def rules_in(sdk: AsyncSegmentlyClient, slug: str) -> ExperimentRules:
    """The engine's rules the client keeps for an experiment."""
    assert sdk._snapshot is not None
    return sdk._snapshot.experiments[slug].rules


async def test_the_config_is_revalidated_with_its_etag(
    client: httpx.AsyncClient, server: str, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    first = await live(client, h, site, name="First")
    other = await live(client, h, site, name="Other")
    wire = Wire()
    async with AsyncSegmentlyClient(site["api_key"], server, refresh_seconds=3600, transport=wire) as sdk:
        unfetched = sdk.etag
        assert unfetched is None  # nothing fetched before the first use
        on = await sdk.get_variant(first["slug"], "v1", url=f"{SHOP}/")
        assert on is not None and on.key in ("control", "variant_b")
        assert wire.statuses == [200] and wire.if_none_match == [None]
        etag = sdk.etag
        assert etag
        for i in range(50):  # served from memory until refresh_seconds pass
            await sdk.get_variant(first["slug"], f"v{i}", url=f"{SHOP}/")
            await sdk.is_enabled("anything", f"v{i}")
        assert wire.statuses == [200]
        rules = rules_in(sdk, first["slug"])
        assert await sdk.refresh() is False  # 304: nothing changed
        assert wire.statuses == [200, 304] and wire.if_none_match[-1] == etag and sdk.etag == etag
        # a change: a new config, and the unchanged experiment keeps its prepared rules
        assert (await client.post(f"/api/v1/experiments/{other['id']}/pause", headers=h)).status_code == 200
        assert await sdk.refresh() is True
        assert wire.statuses[-1] == 200 and sdk.etag != etag
        assert rules_in(sdk, first["slug"]) is rules
        assert await sdk.get_variant(other["slug"], "v1", url=f"{SHOP}/") is None  # paused
        assert await sdk.get_variant(first["slug"], "v1", url=f"{SHOP}/") == on

    lazy = Wire()  # refresh_seconds=0: every use revalidates, lazily
    async with AsyncSegmentlyClient(site["api_key"], server, refresh_seconds=0, transport=lazy) as sdk:
        for _ in range(3):
            await sdk.get_all_flags("v1")
    assert lazy.statuses == [200, 304, 304]

    sync_wire = SyncWire()

    def threaded() -> tuple[bool, Variant | None, str | None]:
        with SegmentlyClient(site["api_key"], server, refresh_seconds=3600, transport=sync_wire) as sdk:
            variant = sdk.get_variant(first["slug"], "v1", url=f"{SHOP}/")
            sdk.get_variant(first["slug"], "v2", url=f"{SHOP}/")
            return sdk.refresh(), variant, sdk.etag

    changed, variant, sync_etag = await in_thread(threaded)
    assert (changed, variant, sync_etag) == (False, on, sdk.etag)
    assert sync_wire.statuses == [200, 304]


async def test_threads_share_one_config_and_refresh_without_racing(
    client: httpx.AsyncClient, server: str, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)
    wire = SyncWire()
    sdk = SegmentlyClient(site["api_key"], server, refresh_seconds=0, transport=wire)
    try:

        def work(t: int) -> list[Variant | None]:
            return [sdk.get_variant(exp["slug"], f"v{i}", url=f"{SHOP}/") for i in range(t, t + 25)]

        def run() -> list[list[Variant | None]]:
            with ThreadPoolExecutor(8) as pool:
                return list(pool.map(work, [0] * 8))

        results = await in_thread(run)
    finally:
        await in_thread(sdk.close)  # it sends the assignment events to the server on this loop
    assert all(r == results[0] for r in results) and None not in results[0]
    assert wire.statuses[0] == 200 and set(wire.statuses[1:]) <= {304}
    assert 1 <= len(wire.statuses) <= 8 * 25


async def test_a_kill_switched_flag_turns_off_after_refresh(
    client: httpx.AsyncClient, server: str, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    key = {"X-API-Key": site["api_key"]}
    made = await client.post(
        f"/api/v1/projects/{site['id']}/flags",
        json={"key": "new-checkout", "name": "New checkout", "status": "active", "rollout_percentage": 100},
        headers=h,
    )
    half = await client.post(
        f"/api/v1/projects/{site['id']}/flags",
        json={"key": "half", "name": "Half", "status": "active", "rollout_percentage": 50},
        headers=h,
    )
    assert made.status_code == half.status_code == 201, made.text
    people = [f"visitor-{i}" for i in range(40)] + ["ünïcödé", "👩‍💻"]
    async with AsyncSegmentlyClient(site["api_key"], server, refresh_seconds=3600) as sdk:
        answers = await asyncio.gather(
            *(client.get("/api/v1/flags", params={"visitor_id": v}, headers=key) for v in people)
        )
        for v, answer in zip(people, answers, strict=True):  # the same as the server's /flags
            assert await sdk.get_all_flags(v) == answer.json()["flags"]
        assert {await sdk.is_enabled("half", v) for v in people} == {True, False}
        assert await sdk.is_enabled("new-checkout", "v1") is True
        assert await sdk.is_enabled("no-such-flag", "v1") is False
        killed = await client.patch(
            f"/api/v1/flags/{made.json()['id']}", json={"status": "inactive"}, headers=h
        )
        assert killed.status_code == 200
        assert await sdk.is_enabled("new-checkout", "v1") is True  # until the next revalidation
        assert await sdk.refresh() is True
        assert await sdk.is_enabled("new-checkout", "v1") is False
        assert "new-checkout" not in await sdk.get_all_flags("v1")

    def threaded() -> bool:
        with SegmentlyClient(site["api_key"], server) as sdk:
            return sdk.is_enabled("new-checkout", "v1")

    assert await in_thread(threaded) is False


async def test_an_unreachable_server_keeps_the_last_config(
    client: httpx.AsyncClient, server: str, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)
    await client.post(
        f"/api/v1/projects/{site['id']}/flags",
        json={"key": "on", "name": "On", "status": "active", "rollout_percentage": 100},
        headers=h,
    )
    wire = Wire()
    async with AsyncSegmentlyClient(site["api_key"], server, refresh_seconds=0, transport=wire) as sdk:
        before = await sdk.get_variant(exp["slug"], "v1", url=f"{SHOP}/")
        assert before is not None
        wire.down = True
        with caplog.at_level(logging.WARNING, logger="segmently.sdk"):
            assert await sdk.get_variant(exp["slug"], "v1", url=f"{SHOP}/") == before
            assert await sdk.is_enabled("on", "v1") is True
        assert "not reachable" in caplog.text and "serving the last config" in caplog.text
        with pytest.raises(SegmentlyError, match="not reachable") as refused:
            await sdk.refresh()
        assert refused.value.status_code is None
        assert await sdk.get_all_flags("v1") == {"on": True}
        wire.down = False  # back: revalidates to the same config
        assert await sdk.refresh() is False
        assert wire.statuses == [200, 304]

    sync_wire = SyncWire()

    def threaded() -> tuple[Variant | None, Variant | None]:
        with SegmentlyClient(site["api_key"], server, refresh_seconds=0, transport=sync_wire) as sdk:
            first = sdk.get_variant(exp["slug"], "v1", url=f"{SHOP}/")
            sync_wire.down = True
            return first, sdk.get_variant(exp["slug"], "v1", url=f"{SHOP}/")

    assert await in_thread(threaded) == (before, before)


async def test_without_any_config_everything_is_off(
    client: httpx.AsyncClient, server: str, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)
    wire = Wire()
    wire.down = True
    async with AsyncSegmentlyClient(site["api_key"], server, transport=wire) as sdk:
        with caplog.at_level(logging.WARNING, logger="segmently.sdk"):
            assert await sdk.get_variant(exp["slug"], "v1", url=f"{SHOP}/") is None
            assert await sdk.is_enabled("on", "v1") is False
            assert await sdk.get_all_flags("v1") == {}
        assert "every experiment is off" in caplog.text
        assert (
            len([r for r in caplog.records if r.name == "segmently.sdk"]) == 1
        )  # tried once, then again after refresh_seconds
        wire.down = False
        assert await sdk.refresh() is True
        assert await sdk.get_variant(exp["slug"], "v1", url=f"{SHOP}/") is not None


async def test_a_wrong_api_key_is_a_clear_error(
    client: httpx.AsyncClient, server: str, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)
    async with AsyncSegmentlyClient("seg_live_wrong", server) as sdk:
        with pytest.raises(SegmentlyError, match=r"401.*Unknown site API key") as refused:
            await sdk.refresh()
        assert refused.value.status_code == 401 and refused.value.detail == "Unknown site API key"
    async with AsyncSegmentlyClient("seg_live_wrong", server) as sdk:  # evaluating: off, and logged
        with caplog.at_level(logging.WARNING, logger="segmently.sdk"):
            assert await sdk.get_variant(exp["slug"], "v1", url=f"{SHOP}/") is None
        assert "401" in caplog.text and "Unknown site API key" in caplog.text

    def threaded() -> SegmentlyError:
        with SegmentlyClient("seg_live_wrong", server) as sdk, pytest.raises(SegmentlyError) as caught:
            sdk.refresh()
        return caught.value

    error = await in_thread(threaded)
    assert error.status_code == 401 and "Unknown site API key" in str(error)
    with pytest.raises(ValueError, match="api_key"):
        SegmentlyClient("", server)


def config_server(body: object, status: int = 200) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers={"ETag": '"1"'})

    return httpx.MockTransport(handle)


def served(slug: str, **over: Any) -> dict[str, Any]:
    exp: dict[str, Any] = {
        "id": slug,
        "slug": slug,
        "seed": slug,
        "status": "live",
        "preview": False,
        "targeting": {"url_rules": [], "devices": [], "countries": [], "traffic_percentage": 100},
        "audience": {"visitor_type": "all", "attribute_rules": [], "referral_sources": []},
        "variants": [{"id": f"{slug}-c", "key": "control", "name": "Control", "weight": 100, "changes": []}],
    }
    exp.update(over)
    return exp


def test_an_experiment_the_sdk_cannot_read_is_left_out_alone(caplog: pytest.LogCaptureFixture) -> None:
    newer = served(
        "newer", targeting={"url_rules": [{"type": "glob", "value": "*"}], "traffic_percentage": 100}
    )
    body = {
        "experiments": [newer, served("fine"), served("draft", status="draft", preview=True)],
        "flags": [{"key": "f", "rollout": 100}],
        "some_future_field": {"x": 1},
    }
    with (
        SegmentlyClient("k", "http://segmently.test", transport=config_server(body)) as sdk,
        caplog.at_level(logging.WARNING, logger="segmently.sdk"),
    ):
        assert sdk.refresh() is True
        assert sdk.get_variant("fine", "v1") == Variant("fine-c", "control", "Control")
        assert sdk.get_variant("newer", "v1") is None
        assert sdk.get_variant("draft", "v1") is None  # previews are the snippet's business
        assert sdk.get_all_flags("v1") == {"f": True}
    assert "'newer' is left out" in caplog.text


def test_an_unexpected_answer_names_the_status_and_detail() -> None:
    broken = config_server({"status_code": 500, "detail": "Internal Server Error"}, status=500)
    with SegmentlyClient("k", "http://segmently.test", transport=broken) as sdk:
        with pytest.raises(SegmentlyError, match=r"500.*Internal Server Error") as refused:
            sdk.refresh()
        assert refused.value.status_code == 500
    with (
        SegmentlyClient("k", "http://segmently.test", transport=config_server(["not", "a", "config"])) as sdk,
        pytest.raises(SegmentlyError, match="not readable"),
    ):
        sdk.refresh()
