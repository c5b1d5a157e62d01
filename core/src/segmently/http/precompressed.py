"""Responses compressed once, for the hot public files: the snippet and the site config.

The app's compression middleware compresses every response anew (gzip took 0.3 ms for the 15 KB
config, 0.6 ms for the 27 KB ``/s/{api_key}.js`` on the benchmark machine); these bodies change
only when a config or a build does, so their encodings are kept beside them. Brotli at its best
quality goes to clients that take it (browsers over HTTPS, which a snippet on an HTTPS page needs
anyway, and on localhost), about 10 % smaller than gzip -9 on the core and 20 % on the config. It
is far too slow to make per request (20–45 ms for the core on the benchmark machine), so it is
made once per body, in a worker thread (Brotli releases the GIL) so the event loop goes on
serving. Gzip -9 goes to the others. A route that answers with :func:`respond` carries
:data:`NO_COMPRESSION` in its ``opt`` so the middleware leaves it alone.

Each encoding is its own representation, so it has its own entity tag (RFC 9110 §8.8.3), the
body's with ``-br`` or ``-gz`` appended, and a shared cache never answers one encoding's
revalidation with another's. ``If-None-Match`` matches any of a body's tags: the snippet sends
back whichever it was given, the inline config's included.
"""

from __future__ import annotations

import gzip
from collections import OrderedDict
from typing import Any, Final, Literal

import anyio.to_thread
import brotli
from litestar import Request, Response

NO_COMPRESSION: Final = {"no_compression": True}
"""``opt`` of a route that compresses its own responses (the app's ``exclude_opt_key``)."""
MINIMUM_SIZE: Final = 1024
"""Smaller bodies go as they are, as the app's middleware sends them."""

Encoding = Literal["br", "gzip"]
SUFFIX: Final[dict[Encoding, str]] = {"br": "-br", "gzip": "-gz"}
"""What an encoding appends to the body's entity tag."""


def preferred_encoding(accept_encoding: str) -> Encoding | None:
    """``br``, else ``gzip``, if the ``Accept-Encoding`` header takes it; None: neither.

    A coding with ``q=0`` (or an unreadable q) is refused; ``*`` takes any coding not named. Among
    the codings taken, Brotli wins whatever their q-values: it is the smaller one.
    """
    taken: dict[str, bool] = {}
    for item in accept_encoding.lower().split(","):
        name, _, params = item.partition(";")
        q = params.strip().replace(" ", "")
        accepted = True
        if q.startswith("q="):
            try:
                accepted = float(q[2:]) > 0  # NaN is not > 0
            except ValueError:
                accepted = False
        taken[name.strip()] = accepted
    for encoding in ("br", "gzip"):
        if taken.get(encoding, taken.get("*", False)):
            return encoding
    return None


def tagged(etag: str, encoding: Encoding | None) -> str:
    """The entity tag of ``etag``'s body in ``encoding`` (``"abc"`` → ``"abc-br"``)."""
    return etag if encoding is None else f'{etag[:-1]}{SUFFIX[encoding]}"'


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag``'s body in any encoding (weak comparison), or is ``*``."""
    if not if_none_match:
        return False
    for item in if_none_match.split(","):
        tag = item.strip().removeprefix("W/")
        if tag == "*" or tag in (etag, *(tagged(etag, e) for e in SUFFIX)):
            return True
    return False


class Precompressed:
    """A body and its encodings, each made on first use and then kept (always the same bytes)."""

    __slots__ = ("_encoded", "body")

    def __init__(self, body: bytes, encoded: dict[Encoding, bytes] | None = None) -> None:
        self.body = body
        self._encoded = {} if encoded is None else encoded

    async def encoded(self, encoding: Encoding) -> bytes:
        """The body in ``encoding``: Brotli quality 11 (made in a thread), or gzip -9 (``mtime`` 0)."""
        found = self._encoded.get(encoding)
        if found is None:
            if encoding == "br":
                found = await anyio.to_thread.run_sync(_brotli, self.body)
            else:
                found = gzip.compress(self.body, 9, mtime=0)
            self._encoded[encoding] = found
        return found


def _brotli(body: bytes) -> bytes:
    return brotli.compress(body, mode=brotli.MODE_TEXT, quality=11)  # type: ignore[no-any-return]


async def respond(
    request: Request[Any, Any, Any],
    body: Precompressed,
    media_type: str,
    headers: dict[str, str],
    vary: str | None = None,
) -> Response[bytes]:
    """``body`` in the encoding the client prefers (:func:`preferred_encoding`), or as it is.

    ``headers["ETag"]`` is the body's entity tag; the response carries its encoding's
    (:func:`tagged`). 304 when ``If-None-Match`` names it (:func:`not_modified`); always ``Vary:
    Accept-Encoding``. ``vary`` is any other request header the body depends on (the country
    header of the config).
    """
    etag = headers["ETag"]
    encoding = preferred_encoding(request.headers.get("accept-encoding", ""))
    if len(body.body) < MINIMUM_SIZE:
        encoding = None
    out = {
        **headers,
        "ETag": tagged(etag, encoding),
        "Vary": "Accept-Encoding" if vary is None else f"{vary}, Accept-Encoding",
    }
    if not_modified(request.headers.get("if-none-match"), etag):
        return Response(b"", status_code=304, headers=out)
    if encoding is None:
        return Response(body.body, media_type=media_type, headers=out)
    out["Content-Encoding"] = encoding
    return Response(await body.encoded(encoding), media_type=media_type, headers=out)


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
