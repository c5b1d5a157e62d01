"""Responses whose gzip is made once, for the hot public files: the snippet and the site config.

The app's compression middleware gzips every response anew (0.3 ms for the 15 KB config, 0.6 ms
for the 27 KB ``/s/{api_key}.js`` on the benchmark machine); these bodies change only when a
config or a build does, so their gzip is kept beside them. A route that answers with
:func:`respond` carries :data:`NO_COMPRESSION` in its ``opt`` so the middleware leaves it alone.
"""

from __future__ import annotations

import gzip
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final

from litestar import Request, Response

NO_COMPRESSION: Final = {"no_compression": True}
"""``opt`` of a route that compresses its own responses (the app's ``exclude_opt_key``)."""
MINIMUM_SIZE: Final = 1024
"""Smaller bodies go as they are, as the app's middleware sends them."""


def gzipped(body: bytes) -> bytes:
    """``body`` as one gzip member, level 9 (made once per body; ``mtime`` 0, so always the same bytes)."""
    return gzip.compress(body, 9, mtime=0)


def accepts_gzip(request: Request[Any, Any, Any]) -> bool:
    """Whether the client takes ``Content-Encoding: gzip``."""
    return "gzip" in request.headers.get("accept-encoding", "")


def respond(
    request: Request[Any, Any, Any],
    body: bytes,
    zipped: Callable[[], bytes],
    media_type: str,
    headers: dict[str, str],
    vary: str | None = None,
) -> Response[bytes]:
    """``body``, or its gzip (``zipped()``, asked only then) when the client takes it.

    304 when the request's ``If-None-Match`` is ``headers["ETag"]``; always ``Vary:
    Accept-Encoding``. ``vary`` is any other request header the body depends on (the country
    header of the config).
    """
    out = {**headers, "Vary": "Accept-Encoding" if vary is None else f"{vary}, Accept-Encoding"}
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(b"", status_code=304, headers=out)
    if len(body) >= MINIMUM_SIZE and accepts_gzip(request):
        out["Content-Encoding"] = "gzip"
        return Response(zipped(), media_type=media_type, headers=out)
    return Response(body, media_type=media_type, headers=out)


class GzipCache:
    """The gzip of recent bodies by their entity tag; the oldest goes first."""

    def __init__(self, entries: int = 512) -> None:
        self.entries = entries
        self._items: OrderedDict[str, bytes] = OrderedDict()

    def get(self, etag: str, body: bytes) -> bytes:
        """The gzip of ``body``, whose entity tag is ``etag`` (made on the first call)."""
        found = self._items.get(etag)
        if found is None:
            found = self._items[etag] = gzipped(body)
            if len(self._items) > self.entries:
                self._items.popitem(last=False)
        else:
            self._items.move_to_end(etag)
        return found
