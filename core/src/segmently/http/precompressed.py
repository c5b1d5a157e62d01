"""Responses compressed once, for the hot public files: the snippet and the site config.

The app's compression middleware compresses every response anew (gzip took 0.3 ms for the 15 KB
config, 0.6 ms for the 27 KB ``/s/{api_key}.js`` on the benchmark machine); these bodies change
only when a config or a build does, so their encodings are kept beside them. Brotli at its best
quality goes to clients that take it (browsers over HTTPS, which a snippet on an HTTPS page needs
anyway, and on localhost), about 10 % smaller than gzip -9 on the core and 20 % on the config. It
is far too slow to make per request (20–45 ms for the core on the benchmark machine), so it is
made once per body, in a worker thread (Brotli releases the GIL) so the event loop goes on
serving, and no request waits for it: until it is made, gzip goes instead. Gzip -9 goes to the
clients that take no Brotli. A route that answers with :func:`respond` carries
:data:`NO_COMPRESSION` in its ``opt`` so the middleware leaves it alone.

Each encoding is its own representation, so it has its own entity tag (RFC 9110 §8.8.3), the
body's with ``-br`` or ``-gz`` appended, and a shared cache never answers one encoding's
revalidation with another's. ``If-None-Match`` matches any of a body's tags: the snippet sends
back whichever it was given, the inline config's included.
"""

from __future__ import annotations

import asyncio
import gzip
from collections import OrderedDict
from typing import Any, Final, Literal

import brotli
from litestar import Request, Response
from litestar.datastructures import Headers
from litestar.middleware.compression import CompressionMiddleware
from litestar.types import Receive, Scope, Send

NO_COMPRESSION: Final = {"no_compression": True}
"""``opt`` of a route that compresses its own responses (the app's ``exclude_opt_key``)."""
MINIMUM_SIZE: Final = 1024
"""Smaller bodies go as they are, as the app's middleware sends them."""

Encoding = Literal["br", "gzip"]
ENCODINGS: Final[tuple[Encoding, ...]] = ("br", "gzip")
SUFFIX: Final[dict[Encoding, str]] = {"br": "-br", "gzip": "-gz"}
"""What an encoding appends to the body's entity tag."""


def accepted_encodings(accept_encoding: str) -> list[Encoding]:
    """Of ``br`` and ``gzip``, those the ``Accept-Encoding`` header takes, the smaller (Brotli) first.

    A coding with ``q=0`` (or an unreadable q) is refused; ``*`` takes any coding not named. The
    q-values do not order them otherwise: Brotli is the smaller one.
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
    return [e for e in ENCODINGS if taken.get(e, taken.get("*", False))]


class Compression(CompressionMiddleware):
    """The app's compression middleware, sending no coding the client refused.

    Litestar's looks for ``br`` and ``gzip`` in ``Accept-Encoding`` as substrings, so ``br;q=0``
    (Brotli refused) got Brotli and ``*`` got nothing. A header with a q-value or a ``*`` is read
    by :func:`accepted_encodings` here; the usual headers (``gzip, deflate, br, zstd``) go to
    Litestar's reading as they are.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Compresses the response as Brotli or gzip, the first of them the client takes, if any."""
        accept = Headers.from_scope(scope).get("accept-encoding", "")
        if "q=" not in accept and "*" not in accept:
            await super().__call__(scope, receive, send)
            return
        config = self.config
        usable = [config.compression_facade.encoding, *(["gzip"] if config.gzip_fallback else [])]
        encoding = next((e for e in accepted_encodings(accept) if e in usable), None)
        if encoding is not None:
            send = self.create_compression_send_wrapper(send=send, compression_encoding=encoding, scope=scope)
        await self.app(scope, receive, send)


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
    """A body and its encodings, each made once and then kept (always the same bytes)."""

    __slots__ = ("_encoded", "body")

    def __init__(self, body: bytes, encoded: dict[Encoding, bytes] | None = None) -> None:
        self.body = body
        self._encoded = {} if encoded is None else encoded

    def ready(self, encoding: Encoding) -> bytes | None:
        """The body in ``encoding`` if it is made (None: not yet).

        Gzip -9 (``mtime`` 0) is made at once; Brotli (quality 11) is started in a worker thread on
        the first call and is None until it is done, so no request waits for it (the caller sends
        gzip meanwhile).
        """
        found = self._encoded.get(encoding)
        if found is None:
            if encoding == "gzip":
                found = self._encoded["gzip"] = gzip.compress(self.body, 9, mtime=0)
            else:
                self._encoded["br"] = b""  # being made
                making = asyncio.get_running_loop().run_in_executor(None, _brotli, self.body)
                making.add_done_callback(self._made)
        return found or None

    def _made(self, making: asyncio.Future[bytes]) -> None:
        if making.cancelled() or making.exception() is not None:
            self._encoded.pop("br", None)  # tried again by the next request
        else:
            self._encoded["br"] = making.result()


def _brotli(body: bytes) -> bytes:
    return brotli.compress(body, mode=brotli.MODE_TEXT, quality=11)  # type: ignore[no-any-return]


def respond(
    request: Request[Any, Any, Any],
    body: Precompressed,
    media_type: str,
    headers: dict[str, str],
    vary: str | None = None,
) -> Response[bytes]:
    """``body`` in the first of the client's :func:`accepted_encodings` that is made, or as it is.

    ``headers["ETag"]`` is the body's entity tag; the response carries its encoding's
    (:func:`tagged`). 304 when ``If-None-Match`` names it (:func:`not_modified`); always ``Vary:
    Accept-Encoding``. ``vary`` is any other request header the body depends on (the country
    header of the config).
    """
    encoding: Encoding | None = None
    content = body.body
    if len(content) >= MINIMUM_SIZE:
        for accepted in accepted_encodings(request.headers.get("accept-encoding", "")):
            made = body.ready(accepted)
            if made is not None:
                encoding, content = accepted, made
                break
    out = {
        **headers,
        "ETag": tagged(headers["ETag"], encoding),
        "Vary": "Accept-Encoding" if vary is None else f"{vary}, Accept-Encoding",
    }
    if not_modified(request.headers.get("if-none-match"), headers["ETag"]):
        return Response(b"", status_code=304, headers=out)
    if encoding is not None:
        out["Content-Encoding"] = encoding
    return Response(content, media_type=media_type, headers=out)


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
