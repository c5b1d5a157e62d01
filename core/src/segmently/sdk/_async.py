"""The SDK for asyncio apps; import it from :mod:`segmently.sdk`."""

from __future__ import annotations

import asyncio
import atexit
import datetime as dt
import logging
import time
from collections.abc import Mapping
from typing import Any, Self

import httpx

from segmently.sdk._core import ClientBase, SegmentlyError, Snapshot, Variant
from segmently.sdk._events import EventSettings, batch_body, give_up, judge, retry_wait, unreachable
from segmently.targeting import Device

log = logging.getLogger("segmently.sdk")


class AsyncSegmentlyClient(ClientBase):
    """The SDK for asyncio apps (Litestar, FastAPI, any ASGI server): :class:`SegmentlyClient` awaited.

    Use one instance per event loop. Arguments as :class:`SegmentlyClient`'s, with an
    ``httpx.AsyncBaseTransport``. Events are sent by a task on the loop, started with the first
    event; there is no sending at interpreter exit (the loop is gone by then), so close the client
    (``async with``, :meth:`aclose`) before the loop ends, e.g. in the app's lifespan.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        refresh_seconds: float = 30,
        timeout: float = 5,
        transport: httpx.AsyncBaseTransport | None = None,
        batch_size: int = 100,
        flush_interval: float = 5,
        max_queue_size: int = 10_000,
        max_retries: int = 4,
        retry_backoff: float = 0.5,
        max_retry_wait: float = 30,
        track_assignments: bool = True,
        assignment_cache_size: int = 10_000,
    ) -> None:
        super().__init__(
            api_key,
            base_url,
            refresh_seconds,
            EventSettings(
                batch_size=batch_size,
                flush_interval=flush_interval,
                max_queue_size=max_queue_size,
                max_retries=max_retries,
                retry_backoff=retry_backoff,
                max_retry_wait=max_retry_wait,
                track_assignments=track_assignments,
                assignment_cache_size=assignment_cache_size,
            ),
        )
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)
        self._lock = asyncio.Lock()
        self._send_lock = asyncio.Lock()  # one batch in flight at a time, so the order is kept
        self._wake = asyncio.Event()  # a full batch waits
        self._worker: asyncio.Task[None] | None = None
        self._at_exit = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Send the queued events, then close the HTTP connections; the client cannot be used afterwards.

        Waits for the sends, retries included (bounded by ``max_retries`` and ``max_retry_wait``); what
        still cannot be sent is dropped with an error in the log.
        """
        if self._closed:
            return
        self._closed = True
        if self._at_exit:
            atexit.unregister(self._unsent_at_exit)
        worker = self._worker
        if worker is not None:
            async with self._send_lock:  # let a send in flight finish: the server may have stored it
                worker.cancel()
            await asyncio.wait([worker])
        try:
            await self._drain(full_only=False, final=True)
        finally:
            await self._http.aclose()

    async def flush(self) -> None:
        """Send every queued event now; see :meth:`SegmentlyClient.flush`."""
        if not self._closed:
            await self._drain(full_only=False, final=False)

    async def track(
        self,
        visitor_id: str,
        event_name: str,
        event_data: Mapping[str, Any] | None = None,
        *,
        event_id: str | None = None,
        session_id: str | None = None,
        experiment_id: str | None = None,
        variant_id: str | None = None,
        url: str | None = None,
        device_type: str | None = None,
        timestamp: dt.datetime | str | None = None,
    ) -> str:
        """Queue an event for the next batch; see :meth:`SegmentlyClient.track`.

        Returns:
            The event's ``event_id``.
        """
        return self._enqueue(
            visitor_id,
            event_name,
            event_data,
            event_id,
            session_id,
            experiment_id,
            variant_id,
            url,
            device_type,
            timestamp,
        )

    def _queued(self, full: bool) -> None:
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._run(), name="segmently-events")
            if not self._at_exit:
                atexit.register(self._unsent_at_exit)
                self._at_exit = True
        if full:
            self._wake.set()

    def _unsent_at_exit(self) -> None:
        if len(self._queue):
            log.warning(
                "Segmently: %d events were never sent: close the AsyncSegmentlyClient (async with, "
                "aclose()) before its event loop ends",
                len(self._queue),
            )

    async def _run(self) -> None:
        """The sender task: full batches when woken, everything every ``flush_interval``."""
        loop = asyncio.get_running_loop()
        interval = self.event_settings.flush_interval
        next_send = loop.time() + interval
        while True:
            try:
                async with asyncio.timeout(max(0.0, next_send - loop.time())):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            due = loop.time() >= next_send
            if due:
                next_send = loop.time() + interval
            try:
                await self._drain(full_only=not due, final=False)
            except Exception:
                log.exception("Segmently: sending events failed")

    async def _drain(self, full_only: bool, final: bool) -> None:
        async with self._send_lock:
            self._queue.report_drops()
            while batch := self._queue.take(full_only):
                if not await self._deliver(batch, final):
                    break
            self._queue.report_drops()

    async def _deliver(self, batch: list[bytes], final: bool) -> bool:
        """Send one batch, retrying with the same body (the same event ids); whether to go on."""
        settings = self.event_settings
        body = batch_body(batch)
        attempts = settings.max_retries + 1
        try:
            for attempt in range(attempts):
                try:
                    response = await self._http.post(
                        self._events_url, content=body, headers=self._events_headers
                    )
                    outcome = judge(response, len(batch))
                except httpx.HTTPError as exc:
                    outcome = unreachable(exc)
                if outcome.done:
                    return True
                if attempt + 1 == attempts:
                    break
                await asyncio.sleep(retry_wait(settings, attempt, outcome))
        except asyncio.CancelledError:
            self._queue.requeue(batch)
            raise
        give_up(self._queue, batch, attempts, outcome.problem, final)
        return False

    async def refresh(self) -> bool:
        """Fetch the config now; see :meth:`SegmentlyClient.refresh`.

        Returns:
            True when a new config was loaded, False when the cached one is current (``304``).

        Raises:
            SegmentlyError: the server refused the key, is unreachable, or answered something else.
        """
        async with self._lock:
            return await self._fetch()

    async def _fetch(self) -> bool:
        try:
            try:
                response = await self._http.get(self._url, headers=self._request_headers())
            except httpx.HTTPError as exc:
                raise self._unreachable(exc) from exc
            return self._accept(response)
        finally:
            self._due = time.monotonic() + self.refresh_seconds

    async def _current(self) -> Snapshot | None:
        if time.monotonic() >= self._due and not (self._lock.locked() and self._snapshot is not None):
            async with self._lock:
                if time.monotonic() >= self._due:
                    try:
                        await self._fetch()
                    except SegmentlyError as exc:
                        self._log_failure(exc)
        return self._snapshot

    async def get_variant(
        self,
        experiment_slug: str,
        visitor_id: str,
        *,
        url: str | None = None,
        device: Device | None = None,
        viewport_width: float | None = None,
        country: str | None = None,
        is_returning: bool = False,
        attributes: Mapping[str, Any] | None = None,
        referrer: str | None = None,
    ) -> Variant | None:
        """The visitor's variant, or None; see :meth:`SegmentlyClient.get_variant`.

        Args:
            experiment_slug: the experiment's slug.
            visitor_id: the visitor's stable id.
            url: the page URL.
            device: ``desktop``, ``tablet`` or ``mobile``.
            viewport_width: the viewport width in CSS pixels.
            country: ISO 3166-1 alpha-2.
            is_returning: whether the visitor was seen before.
            attributes: what the audience's attribute rules test.
            referrer: the page's referrer.
        """
        return self._variant(
            await self._current(),
            experiment_slug,
            visitor_id,
            url,
            device,
            viewport_width,
            country,
            is_returning,
            attributes,
            referrer,
        )

    async def is_enabled(self, flag_key: str, visitor_id: str) -> bool:
        """Whether the flag is on for the visitor (False when inactive or unknown)."""
        return self._enabled(await self._current(), flag_key, visitor_id)

    async def get_all_flags(self, visitor_id: str) -> dict[str, bool]:
        """Every active flag of the site, on or off for the visitor."""
        return self._all_flags(await self._current(), visitor_id)
