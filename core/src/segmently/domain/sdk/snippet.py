"""The snippet's files: the core, its lazily loaded chunks, and the core with a site's config inlined.

- ``GET /segmently.js``: the core (``snippet/dist/segmently.js``) for
  ``<script src="…/segmently.js" data-api-key="seg_live_…">``;
- ``GET /snippet/{name}.js``: a chunk the core loads when needed (preview panel, editor, badge);
- ``GET /s/{api_key}.js``: one request instead of two — ``window.__segmentlyConfig = {config,
  etag, apiKey}`` followed by the core, so a first visit applies experiments without waiting for
  a config request. Private and revalidated (the config depends on the visitor's country). The
  core's first line, a compile hint (:data:`COMPILE_HINT`), stays the file's first line.

The files are read from ``settings.snippet_dir`` once and again whenever they change on disk.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import msgspec
from litestar import Controller, HttpMethod, Request, Response, route
from litestar.exceptions import NotFoundException, ServiceUnavailableException
from litestar.params import FromPath

from segmently.domain.sdk.config import ConfigCache
from segmently.domain.sdk.controllers import country_of
from segmently.http.access import PUBLIC
from segmently.http.deps import DbSession, KernelState
from segmently.http.precompressed import NO_COMPRESSION, Precompressed, PrecompressedCache, respond
from segmently.http.protection import PUBLIC_ROUTE_OPT, rate_limit

JS = "text/javascript; charset=utf-8"
CHUNK_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\.js$")
SITE_SCRIPT = re.compile(r"^(seg_live_[A-Za-z0-9_-]{8,128})\.js$")
COMPILE_HINT = b"//# allFunctionsCalledOnLoad\n"
"""Chromium's file-level compile hint, the first line of the built core (snippet/build.mjs); only
as a file's first line does it count, so ``/s/{api_key}.js`` puts it before the inline config."""
PUBLIC_FILE = {**PUBLIC, **PUBLIC_ROUTE_OPT, **NO_COMPRESSION}
GET_HEAD = [HttpMethod.GET, HttpMethod.HEAD]
"""The files answer HEAD too (uptime monitors, CDNs, ``curl -I``): the same status and headers as a GET,
Content-Length included; the server (uvicorn) leaves out the body."""
_SITE_SCRIPTS = PrecompressedCache()
"""The encodings of recent ``/s/{api_key}.js`` bodies (by their entity tag)."""


class SnippetFile(msgspec.Struct, frozen=True):
    """One built file (with its encodings, made once) and its entity tag."""

    content: Precompressed
    etag: str
    mtime_ns: int


class SnippetFiles:
    """The built files of one directory, re-read when their modification time changes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._files: dict[str, SnippetFile] = {}

    def get(self, name: str) -> SnippetFile | None:
        """The file ``name`` (already checked against :data:`CHUNK_NAME`), or None if absent."""
        path = self.directory / name
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return None
        hit = self._files.get(name)
        if hit is not None and hit.mtime_ns == mtime:
            return hit
        body = path.read_bytes()
        etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
        self._files[name] = built = SnippetFile(content=Precompressed(body), etag=etag, mtime_ns=mtime)
        return built

    def core(self) -> SnippetFile:
        """``segmently.js``; 503 with the build command when the snippet was never built."""
        core = self.get("segmently.js")
        if core is None:
            raise ServiceUnavailableException(
                f"The snippet is not built: no {self.directory / 'segmently.js'}. "
                "Run `npm ci && npm run build` in snippet/ (or set SEGMENTLY_SNIPPET_DIR)."
            )
        return core


def _js(
    body: Precompressed,
    etag: str,
    cache: str,
    request: Request[Any, Any, Any],
    vary: str | None = None,
) -> Response[bytes]:
    return respond(request, body, JS, {"ETag": etag, "Cache-Control": cache}, vary)


def _script_json(value: bytes) -> bytes:
    # JSON is JavaScript except for U+2028/U+2029 inside strings before ES2019
    return value.replace("\u2028".encode(), b"\\u2028").replace("\u2029".encode(), b"\\u2029")


class SnippetController(Controller):
    """The snippet's JavaScript files (public: a customer's page loads them)."""

    path = "/"
    include_in_schema = False
    opt = PUBLIC_FILE
    middleware = [rate_limit("public")]

    @route("/segmently.js", http_method=GET_HEAD, operation_id="snippetCore")
    async def core(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        """The core; cached 5 minutes, then revalidated (the URL carries no version)."""
        core = _files(request).core()
        return _js(core.content, core.etag, "public, max-age=300", request)

    @route("/snippet/{name:str}", http_method=GET_HEAD, operation_id="snippetChunk")
    async def chunk(self, request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
        """A lazily loaded chunk (``preview.js``, ``editor.js``, ``badge.js``, plugins' own)."""
        found = _files(request).get(name) if CHUNK_NAME.match(name) and name != "segmently.js" else None
        if found is None:
            raise NotFoundException(f"No snippet chunk {name!r}")
        return _js(found.content, found.etag, "public, max-age=300", request)

    @route("/s/{script:str}", http_method=GET_HEAD, operation_id="snippetWithConfig")
    async def site_script(
        self,
        request: Request[Any, Any, Any],
        script: FromPath[str],
        db_session: DbSession,
        kernel: KernelState,
    ) -> Response[bytes]:
        """The core with the site's config inlined; 401 for an unknown key, 403 when suspended."""
        matched = SITE_SCRIPT.match(script)
        if matched is None:
            raise NotFoundException("Expected /s/seg_live_….js")
        api_key = matched.group(1)
        site = await kernel.site_keys.require(api_key)
        core = _files(request).core()
        cache: ConfigCache = request.app.state.config_cache
        built = await cache.get(db_session, kernel, site, country_of(request, kernel), None)
        if built is None:
            raise NotFoundException("This site no longer exists")
        head = (
            b'window.__segmentlyConfig={"config":'
            + _script_json(built.content.body)
            + b',"etag":'
            + msgspec.json.encode(built.etag)
            + b',"apiKey":'
            + msgspec.json.encode(api_key)
            + b"};\n"
        )
        # the key is in the body too: a regenerated key is a new script for the same config and core
        parts = f"{built.etag} {core.etag} {api_key}".encode()
        etag = '"' + hashlib.blake2b(parts, digest_size=12).hexdigest() + '"'
        hint = COMPILE_HINT if core.content.body.startswith(COMPILE_HINT) else b""
        body = hint + head + core.content.body[len(hint) :]
        return _js(
            _SITE_SCRIPTS.get(etag, body),
            etag,
            "private, no-cache",
            request,
            kernel.settings.country_header or None,
        )


def _files(request: Request[Any, Any, Any]) -> SnippetFiles:
    files: SnippetFiles = request.app.state.snippet_files
    return files
