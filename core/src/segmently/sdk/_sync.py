"""The SDK for threaded apps; import it from :mod:`segmently.sdk`."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any, Self

import httpx

from segmently.sdk._core import ClientBase, SegmentlyError, Snapshot, Variant
from segmently.targeting import Device


class SegmentlyClient(ClientBase):
    """The SDK for threaded apps (Django, Flask, any WSGI server); one instance per process.

    Args:
        api_key: the site's API key (``seg_live_…``), sent as ``X-API-Key``.
        base_url: where Segmently runs, e.g. ``https://segmently.example.com``.
        refresh_seconds: revalidate the config at most this often (lazily, on use).
        timeout: seconds allowed for each phase of a config request (connect, read, …).
        transport: an httpx transport to use instead of the default one (proxies, tests).
    """

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        refresh_seconds: float = 30,
        timeout: float = 5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(api_key, base_url, refresh_seconds)
        self._http = httpx.Client(timeout=timeout, transport=transport)
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections; the client cannot fetch afterwards."""
        self._http.close()

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
