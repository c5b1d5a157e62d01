"""The events lane: ``POST /api/v1/events/track`` and ``/batch`` without the framework's per-request work.

These two routes carry most of a site's traffic. Through Litestar a request pays for its
routing, the middleware stack (metrics, CSRF, rate limit, CORS, compression, security
headers) and the request and response objects: about as much CPU as storing the event.
The lane serves the common case, a well-formed request with a known key under the rate
limit, straight from the ASGI scope with the same rules and the same answer: the public
rate limit counted in the same bucket, the key from ``X-API-Key``, ``?api_key=`` or the
body, the same decoding, validation and group commit, the same CORS and security headers,
the same Prometheus counts and durations (not the in-progress gauge), and plugins told
after the answer is sent.

Anything else goes to Litestar as if the lane were not there: a body over the route's
limit, a request over the rate limit, JSON that does not decode, a missing or unknown key,
a suspended organization, a malformed event. The body read so far is replayed to the
framework, which then answers with the documented 4xx. The one error the lane writes
itself is the 500 of a failed transaction (the kernel's error body, logged as the
framework logs it): the request's events were not stored and the client resends them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, cast
from urllib.parse import parse_qsl

import msgspec
from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware

from segmently.db.base import utcnow
from segmently.domain.events.group_commit import GroupCommit
from segmently.domain.events.ingest import Ingestor
from segmently.domain.events.schemas import (
    BATCH_DECODER,
    MAX_BATCH_BYTES,
    MAX_TRACK_BYTES,
    TRACK_DECODER,
    track_event,
)
from segmently.http.errors import ErrorBody
from segmently.http.protection import SecurityHeaders
from segmently.http.ratelimit import COUNTED, RateLimits

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.types import (
        HTTPResponseBodyEvent,
        HTTPResponseStartEvent,
        HTTPScope,
        Receive,
        ReceiveMessage,
        Scope,
        Send,
    )

log = logging.getLogger(__name__)

BATCH_PATH: Final = "/api/v1/events/batch"
TRACK_PATH: Final = "/api/v1/events/track"
LIMITS: Final = {BATCH_PATH: MAX_BATCH_BYTES, TRACK_PATH: MAX_TRACK_BYTES}
_ENCODE = msgspec.json.Encoder()
_FAILED = _ENCODE.encode(ErrorBody(status_code=500, detail="Internal server error"))

Framework = Callable[["Scope", "Receive", "Send"], Awaitable[None]]


def ingestor_of(app: Litestar) -> Ingestor:
    """The app's ingestor (built on first use: plugin event types are known by then)."""
    found: Ingestor | None = app.state.get("ingestor")
    if found is None:
        found = app.state["ingestor"] = Ingestor(app.state.kernel)
    return found


def group_commit_of(app: Litestar) -> GroupCommit:
    """The app's group commit of the events routes."""
    found: GroupCommit | None = app.state.get("group_commit")
    if found is None:
        found = app.state["group_commit"] = GroupCommit(ingestor_of(app))
    return found


class _Fallback(Exception):
    """The framework answers this request."""


class EventsLane:
    """Serves the events routes' common case; hands everything else to ``framework``.

    Args:
        app: The Litestar app (its state, CORS config, rate limits and security headers).
        framework: Litestar's own handling of a request.
    """

    def __init__(
        self,
        app: Litestar,
        framework: Framework,
        *,
        metrics: PrometheusConfig | None = None,
        security: SecurityHeaders | None = None,
    ) -> None:
        self.app = app
        self.framework = framework
        cors = app.cors_config
        self._cors_simple: list[tuple[bytes, bytes]] = []
        self._cors_tail: list[tuple[bytes, bytes]] = []
        self._has_cors = cors is not None
        self._cors_all_origins = bool(cors and cors.is_allow_all_origins)
        if cors is not None:
            self._cors_simple = [(k.lower().encode(), v.encode()) for k, v in cors.simple_headers.items()]
            self._cors_tail = [
                (b"access-control-allow-headers", ", ".join(sorted(set(cors.allow_headers))).encode()),
                (b"access-control-allow-methods", ", ".join(sorted(set(cors.allow_methods))).encode()),
            ]
        self._security: list[tuple[bytes, bytes]] = []
        if security is not None:  # the events routes are embeddable: no X-Frame-Options, JSON: no CSP
            self._security = [
                (b"x-content-type-options", b"nosniff"),
                (b"referrer-policy", b"strict-origin-when-cross-origin"),
            ]
            if security.hsts:
                self._security.append((b"strict-transport-security", security.hsts.encode()))
        self._metrics = PrometheusMiddleware(framework, metrics) if metrics is not None else None

    @staticmethod
    def serves(scope: Any) -> bool:
        """Whether ``scope`` is a request the lane looks at."""
        return scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in LIMITS

    async def __call__(self, scope: HTTPScope, receive: Receive, send: Send) -> None:
        """Answer the request, or replay it to the framework."""
        started = time.perf_counter()
        path = scope["path"]
        limit = LIMITS[path]
        api_key = origin = None
        has_cookie = False
        length = -1
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                api_key = api_key or value.decode("latin-1") or None  # the first one, as Litestar reads
            elif name == b"content-length":
                length = int(value) if value.isdigit() else limit + 1
            elif name == b"origin":
                origin = value
            elif name == b"cookie":
                has_cookie = True
        if length > limit:
            await self.framework(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = message.get("more_body", False)
            if size > limit:
                await self.framework(scope, _replay(chunks, more, receive), send)
                return
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        status = 202
        background = None
        try:
            answer, background = await self._ingest(scope, path, body, api_key)
        except _Fallback:
            await self.framework(scope, _replay([body], False, receive), send)
            return
        except Exception:  # the transaction failed: nothing of it is stored, the client resends
            log.exception("unhandled error on POST %s", path)
            status, answer = 500, _FAILED
        headers: list[tuple[bytes, bytes]] = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(answer)).encode()),
            *self._security,
        ]
        if origin and self._has_cors:
            if self._cors_all_origins and has_cookie:  # as Litestar's CORS middleware answers
                headers += [(k, v) for k, v in self._cors_simple if k != b"access-control-allow-origin"]
                headers += [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]
            else:
                headers += self._cors_simple
            headers += self._cors_tail
        start: HTTPResponseStartEvent = {"type": "http.response.start", "status": status, "headers": headers}
        await send(start)
        end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": answer, "more_body": False}
        await send(end)
        self._observe(path, status, started)
        if background is not None:
            try:
                await background()
            except Exception:  # as a background task's failure: logged, the answer stands
                log.exception("on_events_ingested failed")

    async def _ingest(
        self, scope: HTTPScope, path: str, body: bytes, api_key: str | None
    ) -> tuple[bytes, Callable[[], Awaitable[None]] | None]:
        app = self.app
        try:
            limits = RateLimits.of(app)
            key = f"{path} {limits.subject(scope)}"
            usage = await limits.consume("public", key)
            # a request the framework answers after all is not counted again there
            cast("dict[str, Any]", scope)[COUNTED] = ("public", key, usage)
            if not usage.allowed:
                raise _Fallback
            if api_key is None and scope["query_string"]:
                query = parse_qsl(scope["query_string"].decode("latin-1"))
                api_key = next((v for k, v in query if k == "api_key" and v), None)
            if path == TRACK_PATH:
                one = TRACK_DECODER.decode(body)
                events = [track_event(one)]
                body_key = one.api_key
            else:
                batch = BATCH_DECODER.decode(body)
                events, body_key = batch.events, batch.api_key
            site = await app.state.kernel.site_keys.require(api_key or body_key)
            ingestor = ingestor_of(app)
            accepted, rejected = ingestor.validate(events, utcnow(), b"\\u0000" in body)
        except Exception:
            raise _Fallback from None
        out, stored = await group_commit_of(app).submit(site, accepted, rejected)
        background = None
        if stored:

            async def background() -> None:
                await ingestor.notify(site, stored)

        return _ENCODE.encode(out), background

    def _observe(self, path: str, status: int, started: float) -> None:
        """The request in the Prometheus series the framework's middleware writes."""
        if self._metrics is None:
            return
        labels: dict[str, str | int | float] = {
            "method": "POST",
            "path": path,
            "status_code": status,
            "app_name": self._metrics._config.app_name,
        }
        values = list(labels.values())
        if status >= 500:
            self._metrics.requests_error_count(labels).labels(*values).inc()
        self._metrics.request_count(labels).labels(*values).inc()
        self._metrics.request_time(labels).labels(*values).observe(time.perf_counter() - started)


def _replay(chunks: list[bytes], more: bool, receive: Receive) -> Receive:
    """A ``receive`` that gives the body read so far, then what the client still sends."""
    pending = list(chunks)

    async def replay() -> ReceiveMessage:
        if pending:
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending) or more}
        return await receive()  # the rest of the body, or (once it is all read) the disconnect

    return replay
