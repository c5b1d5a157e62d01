"""The Python SDK's events: queued, batched, retried with the same ids, flushed on close and at exit.

Against a stand-in of the batch endpoint on loopback (a ``http.server`` thread) that answers from a
script and records every request byte for byte; one test runs against the real server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from segmently.db.engine import Database
from segmently.sdk import EVENTS_PATH, AsyncSegmentlyClient, SegmentlyClient
from tests.core.experiments.test_experiments import owner_site
from tests.core.experiments.test_public_api import live

KEY = "seg_live_events"
FAST = {"retry_backoff": 0.01, "max_retry_wait": 5.0}
"""Retry settings that keep the tests fast."""


class Request:
    """One request the receiver got."""

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers  # lower-case names
        self.body = body
        self.at = time.monotonic()

    @property
    def events(self) -> list[dict[str, Any]]:
        doc = json.loads(self.body)
        assert list(doc) == ["events"], doc
        events: list[dict[str, Any]] = doc["events"]
        return events


class Receiver:
    """Segmently on loopback: serves ``config`` and answers batches from ``script``, then 202."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[Request] = []
        self.script: deque[tuple[int, dict[str, str], dict[str, Any]]] = deque()
        self.config: dict[str, Any] = {"experiments": [], "flags": []}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer(200, {"ETag": '"1"'}, receiver.config)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = Request("POST", self.path, headers, body)
                receiver.requests.append(request)
                if receiver.script:
                    status, extra, doc = receiver.script.popleft()
                else:
                    status, extra = 202, {}
                    doc = {"accepted": len(request.events), "rejected": {}, "duplicates": 0}
                self._answer(status, extra, doc)

            def _answer(self, status: int, headers: dict[str, str], doc: object) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                for name, value in {**headers, "Content-Type": "application/json"}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02})
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def answer(self, *answers: tuple[int, dict[str, str], dict[str, Any]]) -> None:
        """Answer the next batches so; later ones get 202."""
        self.script.extend(answers)

    @property
    def batches(self) -> list[list[dict[str, Any]]]:
        return [r.events for r in self.requests]

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for batch in self.batches for e in batch]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def eventually(check: Callable[[], bool], seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


async def eventually_async(check: Callable[[], bool], seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def without_generated(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in ("event_id", "timestamp")}


def served_experiment() -> dict[str, Any]:
    return {
        "id": "exp-hero",
        "slug": "hero",
        "seed": "hero-seed",
        "status": "live",
        "preview": False,
        "variants": [
            {"id": "var-control", "key": "control", "name": "Control", "weight": 50},
            {"id": "var-b", "key": "variant_b", "name": "Variant B", "weight": 50},
        ],
    }


# --- the wire ---------------------------------------------------------------------------------------


def test_a_batch_has_the_documented_wire_format(receiver: Receiver) -> None:
    at = dt.datetime(2026, 5, 1, 12, 30, tzinfo=dt.UTC)
    with SegmentlyClient(KEY, receiver.url + "/", flush_interval=3600) as sdk:
        ids = [
            sdk.track("v1", "signup"),
            sdk.track(
                "v1",
                "conversion",
                {"revenue": 49.9, "goal_name": "Purchase"},
                session_id="s1",
                experiment_id="exp-1",
                variant_id="var-1",
                url="https://shop.example.com/thanks",
                device_type="mobile",
                timestamp=at,
            ),
            sdk.track("v2", "custom", {"nested": {"a": [1, 2]}}, event_id="my-own-id-1"),
        ]
        assert sdk.queued_events == 3 and receiver.requests == []
        sdk.flush()
        assert sdk.queued_events == 0
    [request] = receiver.requests
    assert request.method == "POST" and request.path == EVENTS_PATH == "/api/v1/events/batch"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("segmently-python/")
    events = request.events
    assert [without_generated(e) for e in events] == [
        {"event_name": "signup", "visitor_id": "v1"},
        {
            "event_name": "conversion",
            "visitor_id": "v1",
            "session_id": "s1",
            "experiment_id": "exp-1",
            "variant_id": "var-1",
            "event_data": {"revenue": 49.9, "goal_name": "Purchase"},
            "url": "https://shop.example.com/thanks",
            "device_type": "mobile",
        },
        {"event_name": "custom", "visitor_id": "v2", "event_data": {"nested": {"a": [1, 2]}}},
    ]
    assert [e["event_id"] for e in events] == ids
    assert ids[2] == "my-own-id-1"
    assert {uuid.UUID(i).version for i in ids[:2]} == {7} and ids[0] != ids[1]  # UUIDv7
    stamps = [dt.datetime.fromisoformat(e["timestamp"]) for e in events]
    assert stamps[1] == at
    assert all(
        s.tzinfo is not None and abs(s - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
        for s in (stamps[0], stamps[2])
    )


async def test_the_async_client_sends_the_same_batches(receiver: Receiver) -> None:
    async with AsyncSegmentlyClient(KEY, receiver.url, flush_interval=3600) as sdk:
        first = await sdk.track("v1", "signup", {"plan": "pro"}, url="https://shop.example.com/")
        second = await sdk.track("v2", "signup")
        await sdk.flush()
    [request] = receiver.requests
    assert request.path == EVENTS_PATH and request.headers["x-api-key"] == KEY
    assert [without_generated(e) for e in request.events] == [
        {
            "event_name": "signup",
            "visitor_id": "v1",
            "event_data": {"plan": "pro"},
            "url": "https://shop.example.com/",
        },
        {"event_name": "signup", "visitor_id": "v2"},
    ]
    assert [e["event_id"] for e in request.events] == [first, second]


def test_an_event_the_server_would_refuse_is_refused_when_tracked(receiver: Receiver) -> None:
    with SegmentlyClient(KEY, receiver.url) as sdk:
        with pytest.raises(TypeError, match="cannot be sent as JSON"):
            sdk.track("v1", "signup", {"when": object()})
        with pytest.raises(TypeError, match="mapping"):
            sdk.track("v1", "signup", ["not", "an", "object"])  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="event_id"):
            sdk.track("v1", "signup", event_id="x" * 65)
        with pytest.raises(ValueError, match="visitor_id"):
            sdk.track("", "signup")
        with pytest.raises(ValueError, match="url"):
            sdk.track("v1", "signup", url="https://shop.example.com/" + "x" * 2048)
        with pytest.raises(ValueError, match="time zone"):
            sdk.track("v1", "signup", timestamp=dt.datetime(2026, 5, 1, 12, 30))
        with pytest.raises(ValueError, match="timestamp"):
            sdk.track("v1", "signup", timestamp="yesterday")
        with pytest.raises(ValueError, match="visitor_id"):
            sdk.track(42, "signup")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="experiment_id and variant_id"):
            sdk.track("v1", "assignment", experiment_id="exp-1")
        with pytest.raises(ValueError, match="1 MB"):
            sdk.track("v1", "signup", {"blob": "x" * 1_000_000})
        assert sdk.queued_events == 0
    assert receiver.requests == []
    with pytest.raises(RuntimeError, match="closed"):
        sdk.track("v1", "signup")


def test_queue_settings_are_checked() -> None:
    for bad in (
        {"batch_size": 0},
        {"batch_size": 501},
        {"batch_size": 50, "max_queue_size": 10},
        {"flush_interval": 0},
        {"max_retries": -1},
        {"assignment_cache_size": 0},
    ):
        with pytest.raises(ValueError, match="must"):
            SegmentlyClient(KEY, "http://segmently.test", **bad)  # type: ignore[arg-type]


def test_events_the_server_refused_one_by_one_are_logged(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    counts = {"accepted": 1, "duplicates": 1, "rejected": {"visitor_limit": 2, "timestamp_too_old": 1}}
    receiver.answer((202, {}, counts))
    with (
        caplog.at_level(logging.WARNING, logger="segmently.sdk"),
        SegmentlyClient(KEY, receiver.url, flush_interval=3600) as sdk,
    ):
        for i in range(5):
            sdk.track(f"v{i}", "signup")
        sdk.flush()
    assert len(receiver.requests) == 1  # refusals of single events are final: no retry
    assert [r.getMessage() for r in caplog.records] == [
        "Segmently: rejected 3 of 5 events (timestamp_too_old: 1, visitor_limit: 2)"
    ]


# --- batching ---------------------------------------------------------------------------------------


def test_a_full_batch_is_sent_at_once_and_the_rest_on_flush(receiver: Receiver) -> None:
    with SegmentlyClient(KEY, receiver.url, batch_size=3, flush_interval=3600) as sdk:
        ids = [sdk.track(f"v{i}", "signup") for i in range(7)]
        eventually(lambda: len(receiver.requests) == 2)
        time.sleep(0.1)
        assert [len(b) for b in receiver.batches] == [3, 3] and sdk.queued_events == 1
        sdk.flush()
        assert [len(b) for b in receiver.batches] == [3, 3, 1]
    assert [e["event_id"] for e in receiver.events] == ids  # in order, each once


async def test_the_async_client_sends_a_full_batch_at_once(receiver: Receiver) -> None:
    async with AsyncSegmentlyClient(KEY, receiver.url, batch_size=3, flush_interval=3600) as sdk:
        for i in range(7):
            await sdk.track(f"v{i}", "signup")
        await eventually_async(lambda: len(receiver.requests) == 2)
        await asyncio.sleep(0.1)
        assert [len(b) for b in receiver.batches] == [3, 3] and sdk.queued_events == 1
    assert [len(b) for b in receiver.batches] == [3, 3, 1]  # the last one on close


def test_what_is_queued_is_sent_every_flush_interval(receiver: Receiver) -> None:
    with SegmentlyClient(KEY, receiver.url, flush_interval=0.2) as sdk:
        start = time.monotonic()
        sdk.track("v1", "signup")
        sdk.track("v2", "signup")
        eventually(lambda: len(receiver.requests) == 1)
        assert time.monotonic() - start >= 0.15
        assert [len(b) for b in receiver.batches] == [2]
        sdk.track("v3", "signup")
        eventually(lambda: len(receiver.requests) == 2)
    assert [len(b) for b in receiver.batches] == [2, 1]


async def test_the_async_client_sends_every_flush_interval(receiver: Receiver) -> None:
    async with AsyncSegmentlyClient(KEY, receiver.url, flush_interval=0.2) as sdk:
        start = time.monotonic()
        await sdk.track("v1", "signup")
        await sdk.track("v2", "signup")
        await eventually_async(lambda: len(receiver.requests) == 1)
        assert time.monotonic() - start >= 0.15
    assert [len(b) for b in receiver.batches] == [2]


def test_a_batch_stays_under_one_megabyte(receiver: Receiver) -> None:
    with SegmentlyClient(KEY, receiver.url, flush_interval=3600) as sdk:
        for i in range(3):
            sdk.track(f"v{i}", "upload", {"blob": "x" * 400_000})
        sdk.flush()
    assert [len(b) for b in receiver.batches] == [2, 1]
    assert all(len(r.body) <= 1_000_000 for r in receiver.requests)


# --- retries ----------------------------------------------------------------------------------------


def test_a_batch_is_retried_with_the_same_event_ids_after_503s(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    busy = (503, {}, {"detail": "Service Unavailable"})
    receiver.answer(busy, busy)
    with (
        caplog.at_level(logging.WARNING, logger="segmently.sdk"),
        SegmentlyClient(KEY, receiver.url, flush_interval=3600, **FAST) as sdk,
    ):
        ids = [sdk.track(f"v{i}", "signup") for i in range(3)]
        sdk.flush()
        assert sdk.queued_events == 0
    assert len(receiver.requests) == 3
    assert len({r.body for r in receiver.requests}) == 1  # byte for byte the same batch
    assert [e["event_id"] for e in receiver.requests[-1].events] == ids
    assert caplog.records == []  # sent in the end: nothing to report


async def test_the_async_client_retries_with_the_same_event_ids(receiver: Receiver) -> None:
    receiver.answer((500, {}, {"detail": "boom"}), (502, {}, {}))
    async with AsyncSegmentlyClient(KEY, receiver.url, flush_interval=3600, **FAST) as sdk:
        ids = [await sdk.track(f"v{i}", "signup") for i in range(3)]
        await sdk.flush()
    assert len(receiver.requests) == 3 and len({r.body for r in receiver.requests}) == 1
    assert [e["event_id"] for e in receiver.events[-3:]] == ids


def test_retry_after_is_honoured_up_to_max_retry_wait(receiver: Receiver) -> None:
    receiver.answer((429, {"Retry-After": "1"}, {"detail": "Too Many Requests"}))
    with SegmentlyClient(KEY, receiver.url, flush_interval=3600, **FAST) as sdk:
        sdk.track("v1", "signup")
        sdk.flush()
    first, second = receiver.requests
    assert 0.95 <= second.at - first.at < 3  # not the 0.01 s back-off
    assert first.body == second.body

    capped = Receiver()
    try:
        capped.answer((503, {"Retry-After": "120"}, {}))
        with SegmentlyClient(
            KEY, capped.url, flush_interval=3600, retry_backoff=0.01, max_retry_wait=0.2
        ) as sdk:
            sdk.track("v1", "signup")
            sdk.flush()
        first, second = capped.requests
        assert 0.15 <= second.at - first.at < 1
    finally:
        capped.close()


def test_a_malformed_batch_is_dropped_with_a_warning_not_retried(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.answer((400, {}, {"status_code": 400, "detail": "events[1].event_name: too long"}))
    with (
        caplog.at_level(logging.WARNING, logger="segmently.sdk"),
        SegmentlyClient(KEY, receiver.url, flush_interval=3600, **FAST) as sdk,
    ):
        sdk.track("v1", "signup")
        sdk.track("v2", "signup")
        sdk.flush()
        assert len(receiver.requests) == 1 and sdk.queued_events == 0
        [record] = caplog.records
        assert record.levelno == logging.WARNING
        assert "dropped 2 events" in record.getMessage() and "400" in record.getMessage()
        assert "events[1].event_name: too long" in record.getMessage()
        sdk.track("v3", "signup")  # the next batch goes as usual
        sdk.flush()
    assert [[e["visitor_id"] for e in b] for b in receiver.batches] == [["v1", "v2"], ["v3"]]


async def test_a_refused_api_key_is_an_error_not_retried(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.answer(
        (401, {}, {"detail": "Unknown site API key"}), (403, {}, {"detail": "Organization suspended"})
    )
    with caplog.at_level(logging.WARNING, logger="segmently.sdk"):
        async with AsyncSegmentlyClient(KEY, receiver.url, flush_interval=3600, batch_size=2, **FAST) as sdk:
            for i in range(3):
                await sdk.track(f"v{i}", "signup")
            await sdk.flush()
    assert len(receiver.requests) == 2
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            logging.ERROR,
            "Segmently: dropped 2 events, the server refused the API key or its organization "
            "(401 Unknown site API key)",
        ),
        (
            logging.ERROR,
            "Segmently: dropped 1 events, the server refused the API key or its organization "
            "(403 Organization suspended)",
        ),
    ]


async def test_events_not_sent_after_the_retries_wait_for_the_next_flush(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as s:  # a port nothing listens on, yet
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with caplog.at_level(logging.WARNING, logger="segmently.sdk"):
        async with AsyncSegmentlyClient(
            KEY, f"http://127.0.0.1:{port}", flush_interval=3600, max_retries=2, **FAST
        ) as sdk:
            ids = [await sdk.track(f"v{i}", "signup") for i in range(2)]
            await sdk.flush()
            assert sdk.queued_events == 2
            assert "2 events not sent after 3 attempts (last: not reachable" in caplog.text
            assert "kept for the next flush" in caplog.text
            back = Receiver(port)
            try:
                await sdk.flush()
            finally:
                back.close()
    assert [e["event_id"] for e in back.events] == ids


def test_events_that_cannot_be_sent_on_close_are_dropped_with_an_error(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    busy = (503, {}, {"detail": "down for maintenance"})
    receiver.answer(busy, busy, busy, busy)
    with (
        caplog.at_level(logging.WARNING, logger="segmently.sdk"),
        SegmentlyClient(KEY, receiver.url, flush_interval=3600, batch_size=3, max_retries=1, **FAST) as sdk,
    ):
        for i in range(3):
            sdk.track(f"v{i}", "signup")
        eventually(lambda: len(receiver.requests) == 2)  # the full batch, tried twice
        eventually(lambda: sdk.queued_events == 3)  # and kept
    assert len(receiver.requests) == 4  # tried twice more on close
    assert len({r.body for r in receiver.requests}) == 1
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            logging.WARNING,
            "Segmently: 3 events not sent after 2 attempts (last: 503 down for maintenance); "
            "kept for the next flush",
        ),
        (
            logging.ERROR,
            "Segmently: dropped 3 events on close, not sent after 2 attempts "
            "(last: 503 down for maintenance)",
        ),
    ]


# --- the queue --------------------------------------------------------------------------------------


async def test_a_full_queue_drops_the_oldest_events_with_a_warning(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="segmently.sdk"):
        async with AsyncSegmentlyClient(
            KEY, receiver.url, flush_interval=3600, batch_size=3, max_queue_size=3
        ) as sdk:
            for i in range(10):  # nothing else runs on the loop meanwhile: the queue only fills
                await sdk.track(f"v{i}", "signup")
            assert sdk.queued_events == 3
            await sdk.flush()
    assert [e["visitor_id"] for e in receiver.events] == ["v7", "v8", "v9"]
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "Segmently: the event queue was full (max_queue_size=3): dropped the 7 oldest events"
    )


def test_close_sends_what_is_queued(receiver: Receiver) -> None:
    sdk = SegmentlyClient(KEY, receiver.url, flush_interval=3600)
    ids = [sdk.track("v1", "signup"), sdk.track("v2", "signup")]
    sdk.close()
    assert [e["event_id"] for e in receiver.events] == ids
    sdk.close()  # twice is fine
    assert len(receiver.requests) == 1


async def test_aclose_sends_what_is_queued(receiver: Receiver) -> None:
    sdk = AsyncSegmentlyClient(KEY, receiver.url, flush_interval=3600)
    ids = [await sdk.track("v1", "signup"), await sdk.track("v2", "signup")]
    await sdk.aclose()
    assert [e["event_id"] for e in receiver.events] == ids
    with pytest.raises(RuntimeError, match="closed"):
        await sdk.track("v3", "signup")


EXIT_SCRIPT = """
import sys
from segmently.sdk import SegmentlyClient

sdk = SegmentlyClient("seg_live_events", sys.argv[1], flush_interval=3600)
sdk.get_variant("hero", "visitor-1")
for i in range(3):
    sdk.track(f"visitor-{i}", "conversion", {"revenue": i})
print(sdk.queued_events)
"""


def test_the_threaded_client_sends_what_is_queued_at_exit(receiver: Receiver) -> None:
    receiver.config = {"experiments": [served_experiment()], "flags": []}
    done = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT, receiver.url], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "4" and done.stderr == ""  # queued when the script ended, never closed
    assert [(e["event_name"], e["visitor_id"]) for e in receiver.events] == [
        ("assignment", "visitor-1"),
        ("conversion", "visitor-0"),
        ("conversion", "visitor-1"),
        ("conversion", "visitor-2"),
    ]


ASYNC_EXIT_SCRIPT = """
import asyncio, sys
from segmently.sdk import AsyncSegmentlyClient

async def main():
    sdk = AsyncSegmentlyClient("seg_live_events", sys.argv[1], flush_interval=3600)
    await sdk.track("visitor-1", "conversion")

asyncio.run(main())
"""


def test_an_async_client_left_open_says_at_exit_what_it_never_sent(receiver: Receiver) -> None:
    done = subprocess.run(
        [sys.executable, "-c", ASYNC_EXIT_SCRIPT, receiver.url], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == (
        "Segmently: 1 events were never sent: close the AsyncSegmentlyClient (async with, aclose()) "
        "before its event loop ends"
    )
    assert receiver.requests == []


# --- assignments ------------------------------------------------------------------------------------


def test_an_assignment_is_sent_once_per_visitor_and_experiment(receiver: Receiver) -> None:
    receiver.config = {"experiments": [served_experiment()], "flags": []}
    with SegmentlyClient(KEY, receiver.url, flush_interval=3600) as sdk:
        v1 = sdk.get_variant("hero", "v1", url="https://shop.example.com/", viewport_width=375)
        assert v1 is not None
        assert sdk.get_variant("hero", "v1", url="https://shop.example.com/") == v1  # known: not again
        v2 = sdk.get_variant("hero", "v2", device="tablet")
        assert v2 is not None
        assert sdk.get_variant("no-such-experiment", "v1") is None
        sdk.flush()
    assert [without_generated(e) for e in receiver.events] == [
        {
            "event_name": "assignment",
            "visitor_id": "v1",
            "experiment_id": "exp-hero",
            "variant_id": v1.id,
            "url": "https://shop.example.com/",
            "device_type": "mobile",
        },
        {
            "event_name": "assignment",
            "visitor_id": "v2",
            "experiment_id": "exp-hero",
            "variant_id": v2.id,
            "device_type": "tablet",
        },
    ]
    assert {v1.id, v2.id} <= {"var-control", "var-b"}


async def test_the_seen_assignments_are_bounded(receiver: Receiver) -> None:
    receiver.config = {"experiments": [served_experiment()], "flags": []}
    async with AsyncSegmentlyClient(KEY, receiver.url, flush_interval=3600, assignment_cache_size=2) as sdk:
        for visitor in ["a", "b", "a", "c", "a", "b"]:  # a stays recent; b is forgotten after c
            assert await sdk.get_variant("hero", visitor) is not None
        await sdk.flush()
    assert [e["visitor_id"] for e in receiver.events] == ["a", "b", "c", "b"]


def test_assignments_are_not_sent_when_switched_off(receiver: Receiver) -> None:
    receiver.config = {"experiments": [served_experiment()], "flags": []}
    with SegmentlyClient(KEY, receiver.url, track_assignments=False) as sdk:
        assert sdk.get_variant("hero", "v1") is not None
        assert sdk.queued_events == 0 and sdk._worker is None  # no thread either
    assert receiver.requests == []


# --- the real server --------------------------------------------------------------------------------


async def stored(database_url: str, sql: str, site_id: str) -> list[tuple[Any, ...]]:
    db = Database(database_url)
    try:
        async with db.engine.connect() as conn:
            return [tuple(row) for row in await conn.execute(text(sql), {"site": site_id})]
    finally:
        await db.dispose()


class LostAnswerWire(httpx.AsyncBaseTransport):
    """The real transport; the server's answer to the first batch is lost (a 503 instead)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.batches: list[bytes] = []
        self.answers: list[tuple[int, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path != EVENTS_PATH:
            return response
        await response.aread()
        self.batches.append(request.content)
        self.answers.append((response.status_code, response.json()))
        if len(self.batches) == 1:
            return httpx.Response(503, json={"detail": "the answer was lost"})
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.usefixtures("backend")
async def test_the_server_stores_each_event_once_when_a_batch_is_retried(
    client: httpx.AsyncClient, server: str, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site, name="Checkout")
    wire = LostAnswerWire()
    async with AsyncSegmentlyClient(
        site["api_key"], server, transport=wire, flush_interval=3600, **FAST
    ) as sdk:
        chosen = {}
        for i in range(4):
            variant = await sdk.get_variant(exp["slug"], f"v{i}", url="https://shop.example.com/")
            assert variant is not None
            chosen[f"v{i}"] = variant.id
        await sdk.track("v1", "conversion", {"revenue": 20})
        await sdk.flush()
        assert sdk.queued_events == 0
    assert len(wire.batches) == 2 and wire.batches[0] == wire.batches[1]  # the same ids again
    assert wire.answers == [
        (202, {"accepted": 5, "duplicates": 0, "rejected": {}}),
        (202, {"accepted": 0, "duplicates": 5, "rejected": {}}),
    ]
    events = await stored(
        database_url, "SELECT event_name, visitor_id FROM events WHERE site_id = :site", site["id"]
    )
    assert sorted(events) == sorted([("assignment", f"v{i}") for i in range(4)] + [("conversion", "v1")])
    visitors = await stored(
        database_url,
        "SELECT visitor_id, experiment_id, variant_id FROM experiment_visitors WHERE site_id = :site",
        site["id"],
    )
    assert sorted(visitors) == sorted((v, exp["id"], variant) for v, variant in chosen.items())
    conversions = await stored(
        database_url,
        "SELECT visitor_id, variant_id, revenue FROM experiment_conversions WHERE site_id = :site",
        site["id"],
    )
    assert conversions == [("v1", chosen["v1"], 20.0)]
