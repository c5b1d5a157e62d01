"""Responses compressed once, for the hot public files: the snippet and the site config.

The app's compression middleware compresses every response anew (gzip took 0.3 ms for the 15 KB
config, 0.6 ms for the 27 KB ``/s/{api_key}.js`` on the benchmark machine); these bodies change
only when a config or a build does, so their encodings are kept beside them. Brotli at its best
quality goes to clients that take it (every current browser: Chromium asks for it over plain
HTTP too), about 10 % smaller than gzip -9 on the core; it is too slow to make per request
(15 ms for the core), not to make once. Gzip -9 goes to the others. A route that answers with
:func:`respond` carries :data:`NO_COMPRESSION` in its ``opt`` so the middleware leaves it alone.
"""

from __future__ import annotations

import gzip
from collections import OrderedDict
from typing import Any, Final, Literal

import brotli
from litestar import Request, Response

NO_COMPRESSION: Final = {"no_compression": True}
"""``opt`` of a route that compresses its own responses (the app's ``exclude_opt_key``)."""
MINIMUM_SIZE: Final = 1024
"""Smaller bodies go as they are, as the app's middleware sends them."""

Encoding = Literal["br", "gzip"]


def preferred_encoding(accept_encoding: str) -> Encoding | None:
    """``br``, else ``gzip``, if the ``Accept-Encoding`` header takes it (``q=0`` refuses); None: neither."""
    taken: set[str] = set()
    for item in accept_encoding.lower().split(","):
        name, _, params = item.partition(";")
        q = params.strip()
        if q.startswith("q="):
            try:
                if float(q[2:]) <= 0:
                    continue
            except ValueError:
                continue
        taken.add(name.strip())
    return "br" if "br" in taken else "gzip" if "gzip" in taken else None


class Precompressed:
    """A body and its encodings, each made on first use and then kept (always the same bytes)."""

    __slots__ = ("_encoded", "body")

    def __init__(self, body: bytes, encoded: dict[Encoding, bytes] | None = None) -> None:
        self.body = body
        self._encoded = {} if encoded is None else encoded

    def encoded(self, encoding: Encoding) -> bytes:
        """The body in ``encoding``: Brotli quality 11, or one gzip member, level 9, ``mtime`` 0."""
        found = self._encoded.get(encoding)
        if found is None:
            if encoding == "br":
                found = brotli.compress(self.body, mode=brotli.MODE_TEXT, quality=11)
            else:
                found = gzip.compress(self.body, 9, mtime=0)
            self._encoded[encoding] = found
        return found


def respond(
    request: Request[Any, Any, Any],
    body: Precompressed,
    media_type: str,
    headers: dict[str, str],
    vary: str | None = None,
) -> Response[bytes]:
    """``body`` in the encoding the client prefers (:func:`preferred_encoding`), or as it is.

    304 when the request's ``If-None-Match`` is ``headers["ETag"]``; always ``Vary:
    Accept-Encoding``. ``vary`` is any other request header the body depends on (the country
    header of the config).
    """
    out = {**headers, "Vary": "Accept-Encoding" if vary is None else f"{vary}, Accept-Encoding"}
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(b"", status_code=304, headers=out)
    encoding = preferred_encoding(request.headers.get("accept-encoding", ""))
    if len(body.body) >= MINIMUM_SIZE and encoding is not None:
        out["Content-Encoding"] = encoding
        return Response(body.encoded(encoding), media_type=media_type, headers=out)
    return Response(body.body, media_type=media_type, headers=out)


class PrecompressedCache:
    """The encodings of recent bodies by their entity tag (not the bodies); the oldest go first."""

    def __init__(self, entries: int = 512) -> None:
        self.entries = entries
        self._items: OrderedDict[str, dict[Encoding, bytes]] = OrderedDict()

    def get(self, etag: str, body: bytes) -> Precompressed:
        """``body``, whose entity tag is ``etag``, with the encodings kept for that tag."""
        found = self._items.get(etag)
        if found is None:
            found = self._items[etag] = {}
            if len(self._items) > self.entries:
                self._items.popitem(last=False)
        else:
            self._items.move_to_end(etag)
        return Precompressed(body, found)
