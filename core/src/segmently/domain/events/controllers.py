"""``POST /api/v1/events/track`` and ``/api/v1/events/batch``: the snippet's and SDKs' events.

The site key comes in ``X-API-Key``, or (``sendBeacon`` cannot set headers) as
``api_key`` in the query or the body; ``text/plain`` bodies holding JSON are accepted.
The 202 answer is sent after the commit; plugins hear of the events afterwards.
Most requests never reach these handlers: the events lane (:mod:`segmently.domain.events.lane`)
answers the well-formed ones with the same rules, and hands the rest to them.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from litestar import Controller, Request, Response, post
from litestar.background_tasks import BackgroundTask

from segmently.db.base import utcnow
from segmently.domain.events.ingest import Ingestor
from segmently.domain.events.lane import group_commit_of, ingestor_of
from segmently.domain.events.schemas import (
    BATCH_DECODER,
    MAX_BATCH_BYTES,
    MAX_TRACK_BYTES,
    TRACK_DECODER,
    EventIn,
    IngestOut,
    track_event,
)
from segmently.domain.sites.keys import SiteKey, key_from
from segmently.hookspecs import IngestedEvent
from segmently.http.access import PUBLIC
from segmently.http.errors import field_error, from_msgspec
from segmently.http.protection import CSRF_EXEMPT_OPT, EMBEDDABLE_OPT, rate_limit
from segmently.kernel import Kernel

EVENTS_OPT = {**PUBLIC, EMBEDDABLE_OPT: True, CSRF_EXEMPT_OPT: True}
"""The key is checked in the handler: it may sit in the body, which a guard cannot read."""

T = TypeVar("T")
_ENCODE = msgspec.json.Encoder()


def _decode(decoder: msgspec.json.Decoder[T], body: bytes) -> T:
    """The body, or a 400 naming the field (``body`` for JSON that does not parse)."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise from_msgspec(exc) from None
    except msgspec.DecodeError as exc:
        raise field_error("body", f"Malformed JSON: {exc}") from None


async def _ingest(
    request: Request[Any, Any, Any], events: list[EventIn], body_key: str | None, maybe_nul: bool
) -> Response[bytes]:
    kernel: Kernel = request.app.state.kernel
    site = await kernel.site_keys.require(key_from(request) or body_key)
    ingestor = ingestor_of(request.app)
    accepted, rejected = ingestor.validate(events, utcnow(), maybe_nul)  # 400 for this request only
    out, stored = await group_commit_of(request.app).submit(site, accepted, rejected)
    return _answer(ingestor, site, out, stored)


def _answer(
    ingestor: Ingestor, site: SiteKey, out: IngestOut, stored: list[IngestedEvent]
) -> Response[bytes]:
    return Response(
        _ENCODE.encode(out),
        status_code=202,
        media_type="application/json",
        background=BackgroundTask(ingestor.notify, site, stored) if stored else None,
    )


class EventsController(Controller):
    """Visitor events in; see ``docs/events.md`` for what is refused and how it is counted."""

    path = "/api/v1/events"
    tags = ["public API"]
    opt = EVENTS_OPT
    middleware = [rate_limit("public")]

    @post("/batch", operation_id="ingestBatch", status_code=202, request_max_body_size=MAX_BATCH_BYTES)
    async def batch(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        """Up to 500 events (≤ 1 MB), all or none; 202 with accepted, duplicate and refused counts."""
        body = await request.body()
        data = _decode(BATCH_DECODER, body)
        return await _ingest(request, data.events, data.api_key, b"\\u0000" in body)

    @post("/track", operation_id="ingestEvent", status_code=202, request_max_body_size=MAX_TRACK_BYTES)
    async def track(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        """One event; the same rules as a batch of one."""
        body = await request.body()
        data = _decode(TRACK_DECODER, body)
        return await _ingest(request, [track_event(data)], data.api_key, b"\\u0000" in body)
