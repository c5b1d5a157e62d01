"""The SDK for asyncio apps; import it from :mod:`segmently.sdk`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, Self

import httpx

from segmently.sdk._core import ClientBase, SegmentlyError, Snapshot, Variant
from segmently.targeting import Device


class AsyncSegmentlyClient(ClientBase):
    """The SDK for asyncio apps (Litestar, FastAPI, any ASGI server): :class:`SegmentlyClient` awaited.

    Use one instance per event loop. Arguments as :class:`SegmentlyClient`'s, with an
    ``httpx.AsyncBaseTransport``.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        refresh_seconds: float = 30,
        timeout: float = 5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(api_key, base_url, refresh_seconds)
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections; the client cannot fetch afterwards."""
        await self._http.aclose()

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
