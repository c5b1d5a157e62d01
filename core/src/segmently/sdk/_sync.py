"""The SDK for threaded apps; import it from :mod:`segmently.sdk`."""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any, Self

import httpx

from segmently.sdk._core import ClientBase, SegmentlyError, Snapshot, Variant
from segmently.sdk._events import EventSettings, batch_body, give_up, judge, retry_wait, unreachable
from segmently.targeting import Device

log = logging.getLogger("segmently.sdk")


class SegmentlyClient(ClientBase):
    """The SDK for threaded apps (Django, Flask, any WSGI server); one instance per process.

    Events (:meth:`track`, and an ``assignment`` event the first time :meth:`get_variant` puts a
    visitor in an experiment) are queued and sent in batches by a background thread, started with the
    first event; :meth:`close` and the interpreter's exit send what is left.

    Args:
        api_key: the site's API key (``seg_live_…``), sent as ``X-API-Key``.
        base_url: where Segmently runs, e.g. ``https://segmently.example.com``.
        refresh_seconds: revalidate the config at most this often (lazily, on use).
        timeout: seconds allowed for each phase of a request (connect, read, …).
        transport: an httpx transport to use instead of the default one (proxies, tests).
        batch_size: events per request (at most 500); a full batch is sent at once.
        flush_interval: seconds between sends of whatever is queued.
        max_queue_size: events kept while they cannot be sent; beyond, the oldest are dropped.
        max_retries: further attempts at a batch after a 429, a 5xx or no answer.
        retry_backoff: seconds before the first retry, doubling with each (with jitter).
        max_retry_wait: the longest wait between attempts, ``Retry-After`` included.
        track_assignments: queue an ``assignment`` event for each visitor's first variant.
        assignment_cache_size: (experiment, visitor) pairs remembered so as to send each once.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        refresh_seconds: float = 30,
        timeout: float = 5,
        transport: httpx.BaseTransport | None = None,
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
        self._http = httpx.Client(timeout=timeout, transport=transport)
        self._lock = threading.Lock()
        self._new_sender_state()
        self._worker: threading.Thread | None = None
        self._at_exit = False

    def _new_sender_state(self) -> None:
        self._pid = os.getpid()
        self._worker_lock = threading.Lock()
        self._send_lock = threading.Lock()  # one batch in flight at a time, so the order is kept
        self._wake = threading.Event()  # a full batch waits
        self._stopping = threading.Event()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Send the queued events, then close the HTTP connections; the client cannot be used afterwards.

        Waits for the sends, retries included (bounded by ``max_retries`` and ``max_retry_wait``); what
        still cannot be sent is dropped with an error in the log.
        """
        if self._closed:
            return
        self._closed = True
        if self._at_exit:
            atexit.unregister(self.close)
        self._stopping.set()
        self._wake.set()
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join()
        try:
            self._drain(full_only=False, final=True)
        finally:
            self._http.close()

    def flush(self) -> None:
        """Send every queued event now, in batches, in this thread.

        Returns when they were sent (or refused, which is logged), or when Segmently stayed
        unreachable through the retries: those events stay queued for the next flush.
        """
        if not self._closed:
            self._drain(full_only=False, final=False)

    def track(
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
        """Queue an event for the next batch; nothing is sent before the batch is.

        Args:
            visitor_id: the visitor's stable id, as given to :meth:`get_variant`.
            event_name: ``conversion``, ``purchase``, any custom name a goal can count.
            event_data: a JSON object (``{"value": 49.9}``: a conversion's revenue).
            event_id: at most 64 characters, unique per site: the server keeps one event per id;
                a UUIDv7 when not given.
            session_id: the visitor's session.
            experiment_id: an experiment's ``id`` (not its slug).
            variant_id: a variant's ``id`` (:attr:`Variant.id`).
            url: the page the event happened on.
            device_type: ``desktop``, ``tablet`` or ``mobile``.
            timestamp: when it happened: an aware datetime, or RFC 3339 text (UTC without a zone);
                now when not given.

        Returns:
            The event's ``event_id``.

        Raises:
            ValueError: a field the server would refuse (empty, too long, not text, a naive datetime
                or a timestamp that is not RFC 3339), an ``assignment`` without its ids, or an
                event over 1 MB; the message names the field.
            TypeError: ``event_data`` is not a mapping, or holds what JSON cannot.
            RuntimeError: the client is closed.
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
        worker = self._worker
        if worker is None or not worker.is_alive():
            self._start_worker()
        if full:
            self._wake.set()

    def _start_worker(self) -> None:
        if self._pid != os.getpid():  # a forked child: the parent's thread and locks stayed there
            self._new_sender_state()
            self._queue.after_fork()
        with self._worker_lock:
            if self._closed or (self._worker is not None and self._worker.is_alive()):
                return
            self._worker = threading.Thread(target=self._run, name="segmently-events", daemon=True)
            self._worker.start()
            if not self._at_exit:
                atexit.register(self.close)
                self._at_exit = True

    def _run(self) -> None:
        """The sender thread: full batches when woken, everything every ``flush_interval``."""
        interval = self.event_settings.flush_interval
        next_send = time.monotonic() + interval
        while not self._stopping.is_set():
            self._wake.wait(max(0.0, next_send - time.monotonic()))
            self._wake.clear()
            if self._stopping.is_set():
                return
            due = time.monotonic() >= next_send
            if due:
                next_send = time.monotonic() + interval
            try:
                self._drain(full_only=not due, final=False)
            except Exception:
                log.exception("Segmently: sending events failed")

    def _drain(self, full_only: bool, final: bool) -> None:
        with self._send_lock:
            self._queue.report_drops()
            while batch := self._queue.take(full_only):
                if not self._deliver(batch, final):
                    break
            self._queue.report_drops()

    def _deliver(self, batch: list[bytes], final: bool) -> bool:
        """Send one batch, retrying with the same body (the same event ids); whether to go on."""
        settings = self.event_settings
        body = batch_body(batch)
        attempts = settings.max_retries + 1
        for attempt in range(attempts):
            try:
                response = self._http.post(self._events_url, content=body, headers=self._events_headers)
                outcome = judge(response, len(batch))
            except httpx.HTTPError as exc:
                outcome = unreachable(exc)
            if outcome.done:
                return True
            if attempt + 1 == attempts:
                break
            wait = retry_wait(settings, attempt, outcome)
            if final:
                time.sleep(wait)
            elif self._stopping.wait(wait):  # closing: close() sends this batch with the rest
                self._queue.requeue(batch)
                return False
        give_up(self._queue, batch, attempts, outcome.problem, final)
        return False

    def refresh(self) -> bool:
        """Fetch the config now (``If-None-Match`` when one is cached).

        Returns:
            True when a new config was loaded, False when the cached one is current (``304``).

        Raises:
            SegmentlyError: the server refused the key (401), is unreachable, or answered something
                else than the config; the last good config stays in use.
        """
        with self._lock:
            return self._fetch()

    def _fetch(self) -> bool:
        try:
            try:
                response = self._http.get(self._url, headers=self._request_headers())
            except httpx.HTTPError as exc:
                raise self._unreachable(exc) from exc
            return self._accept(response)
        finally:
            self._due = time.monotonic() + self.refresh_seconds

    def _current(self) -> Snapshot | None:
        """The config to evaluate with, revalidated first when due.

        While one thread revalidates, the others keep using the cached config; only without one do
        they wait for it.
        """
        if time.monotonic() >= self._due and self._lock.acquire(blocking=self._snapshot is None):
            try:
                if time.monotonic() >= self._due:
                    try:
                        self._fetch()
                    except SegmentlyError as exc:
                        self._log_failure(exc)
            finally:
                self._lock.release()
        return self._snapshot

    def get_variant(
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
        """The visitor's variant, or None (not live, unknown, or excluded by targeting or traffic).

        Args:
            experiment_slug: the experiment's slug.
            visitor_id: the visitor's stable id (the snippet's ``seg_visitor_id`` to agree with it).
            url: the page URL; an experiment with URL rules excludes a visitor without one.
            device: ``desktop``, ``tablet`` or ``mobile``; else derived from ``viewport_width``.
            viewport_width: the viewport width in CSS pixels.
            country: ISO 3166-1 alpha-2; unknown (None) passes country targeting.
            is_returning: whether the visitor was seen before (the audience's visitor type).
            attributes: what the audience's attribute rules test.
            referrer: the page's referrer, for the referral source gate.
        """
        return self._variant(
            self._current(),
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

    def is_enabled(self, flag_key: str, visitor_id: str) -> bool:
        """Whether the flag is on for the visitor (False when inactive or unknown)."""
        return self._enabled(self._current(), flag_key, visitor_id)

    def get_all_flags(self, visitor_id: str) -> dict[str, bool]:
        """Every active flag of the site, on or off for the visitor."""
        return self._all_flags(self._current(), visitor_id)
