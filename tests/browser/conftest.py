"""Browser tests: Debian's Chromium (Playwright) against the real server and demo sites on loopback.

- ``segmently``: the app on ``http://127.0.0.1:<port>`` serving the snippet built for this run;
- ``shop``: a customer's site — pages the test writes, served over real HTTP on loopback under
  made-up host names (``shop.test``, ``checkout.test``: Chromium resolves ``*.test`` to 127.0.0.1);
- ``browser``: Chromium. Locally, a missing Chromium skips these tests; in CI it fails them.

Each test module sets ``pytestmark = BROWSER`` (one backend: PostgreSQL when it is tested).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, Page, async_playwright

from tests.conftest import IN_CI, _InLoopServer, make_settings, serve_app, tcp_socket
from tests.snippet import npm

CHROMIUM = os.environ.get("SEGMENTLY_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--host-resolver-rules=MAP *.test 127.0.0.1",
]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
BROWSER = [pytest.mark.browser, pytest.mark.one_backend, pytest.mark.usefixtures("backend")]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium; fails (never skips) in CI when it is missing."""
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        message = f"Chromium is not at {CHROMIUM} (apt-get install chromium)"
        if IN_CI:
            pytest.fail(message + " (CI=true: browser tests must run)")
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="session")
def snippet_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The snippet built once per test worker into a folder of its own."""
    return npm.build(tmp_path_factory.mktemp("snippet-dist"))


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """A fresh page whose console errors are collected in ``page.console_errors``; screenshot kept."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    p = await context.new_page()
    errors: list[str] = []
    p.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    p.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    p.console_errors = errors  # type: ignore[attr-defined]
    try:
        yield p
    finally:
        with contextlib.suppress(Exception):
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await p.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
        await context.close()


@pytest.fixture
async def segmently(
    database_url: str, tmp_path: Path, snippet_dist: Path, plugins: object
) -> AsyncIterator[str]:
    """The Segmently server on loopback, serving the snippet built for this run; yields its base URL."""
    from segmently.app import create_app

    settings = make_settings(database_url, tmp_path, snippet_dir=snippet_dist)
    async with serve_app(create_app(settings, plugins)) as base:  # type: ignore[arg-type]
        yield base


@pytest.fixture
async def dashboard(database_url: str, tmp_path: Path, plugins: object) -> AsyncIterator[str]:
    """The server with the dashboard's front-end files built; yields its base URL."""
    from segmently.app import create_app
    from tests.dashboard import assets

    assets.build()
    async with serve_app(create_app(make_settings(database_url, tmp_path), plugins)) as base:  # type: ignore[arg-type]
        yield base


@pytest.fixture
async def api(segmently: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=segmently, timeout=10) as c:
        yield c


class Shop:
    """A customer's site: pages by path, the same on every ``*.test`` host name, never cached."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        self.port = 0
        self.hits: list[str] = []

    def url(self, path: str = "/", host: str = "shop.test") -> str:
        return f"http://{host}:{self.port}{path}"

    def add(self, path: str, body: str, *, head: str = "", tag: str = "") -> str:
        """Serve ``body`` at ``path`` with the snippet ``tag`` first in ``<head>``; returns the shop URL."""
        self.pages[path] = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Shop</title>"
            f"{tag}{head}</head><body>{body}</body></html>"
        )
        return self.url(path)

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": message["type"] + ".complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        self.hits.append(scope["path"])
        body = self.pages.get(scope["path"])
        status = 200 if body is not None else 204 if scope["path"] == "/favicon.ico" else 404
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/html; charset=utf-8"), (b"cache-control", b"no-store")],
            }
        )
        await send({"type": "http.response.body", "body": (body or "").encode()})


@pytest.fixture
async def shop() -> AsyncIterator[Shop]:
    site = Shop()
    sock = tcp_socket()
    site.port = sock.getsockname()[1]
    server = _InLoopServer(uvicorn.Config(site, lifespan="on", log_config=None, access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield site
    finally:
        server.should_exit = True
        await task
        sock.close()


def snippet_tag(base: str, api_key: str, *, inline: bool = False) -> str:
    """The install snippet as the dashboard shows it: ``/segmently.js`` with the key, or ``/s/{key}.js``."""
    if inline:
        return f'<script src="{base}/s/{api_key}.js"></script>'
    return f'<script src="{base}/segmently.js" data-api-key="{html.escape(api_key)}"></script>'


def inline_json(value: object) -> str:
    return json.dumps(value).replace("</", "<\\/")
