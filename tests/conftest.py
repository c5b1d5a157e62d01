"""Fixtures: the dummy plugin on a real entry point, fresh databases on both backends, live servers."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.message
import email.policy
import os
import shutil
import socket
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import uvicorn
from litestar import Litestar

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get("SEGMENTLY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SECRET = "test-secret-key-0123456789abcdef0123456789"


def _install_dummy_plugin() -> Path:
    """Make the dummy plugin discoverable through a real entry point, for this run only."""
    site = Path(tempfile.mkdtemp(prefix="segmently-test-site-"))
    info = site / "segmently_dummy-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: segmently-dummy\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[segmently.plugins]\ndummy = segmently_dummy.plugin\n")
    for path in (str(FIXTURES / "dummy_plugin"), str(site)):
        sys.path.insert(0, path)
    # subprocesses (the CLI, real servers) see it too
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(FIXTURES / "dummy_plugin"), str(site), os.environ.get("PYTHONPATH")) if p
    )
    return site


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backends",
        default=os.environ.get("SEGMENTLY_TEST_BACKENDS", "sqlite,postgresql"),
        help="comma-separated database backends every database test runs on",
    )


def pytest_configure(config: pytest.Config) -> None:
    config._segmently_site = _install_dummy_plugin()  # type: ignore[attr-defined]
    # the test workers and every CLI or server subprocess keep the bytecode they compile: on a
    # machine that sets PYTHONDONTWRITEBYTECODE, each of them would compile ~600 modules again (~1 s)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    # tests sign up and log in far more often than a person: lift those limits (test_rate_limits.py
    # checks the real ones on an app of its own)
    for bucket in ("SIGNUP", "LOGIN", "LOGIN_ACCOUNT", "PASSWORD_RESET"):
        os.environ.setdefault(f"SEGMENTLY_RATE_LIMIT_{bucket}", "100000/minute")


def pytest_unconfigure(config: pytest.Config) -> None:
    site = getattr(config, "_segmently_site", None)
    if site:
        shutil.rmtree(site, ignore_errors=True)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    backends = [b.strip() for b in metafunc.config.getoption("--backends").split(",") if b.strip()]
    if metafunc.definition.get_closest_marker("postgresql_only"):
        backends = [b for b in backends if b == "postgresql"]
    elif metafunc.definition.get_closest_marker("one_backend"):
        backends = ["postgresql"] if "postgresql" in backends else backends[:1]
    metafunc.parametrize("backend", backends)


# ----------------------------------------------------------------- databases ---


def _pg_reachable() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.OperationalError as exc:
        return str(exc).strip().splitlines()[0]


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[str]:
    """A reachable PostgreSQL admin URL; fails (never skips) in CI when it is not reachable."""
    problem = _pg_reachable()
    if problem:
        message = f"PostgreSQL at {PG_ADMIN_URL} is unreachable: {problem}"
        if IN_CI:
            pytest.fail(message + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(message)
    yield PG_ADMIN_URL


def pg_url(database: str) -> str:
    """The SQLAlchemy URL of a database on the test server."""
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{database}"


def pg_execute(sql: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def _host():  # type: ignore[no-untyped-def]
    from segmently.plugins import PluginHost

    host = PluginHost.load()
    host.models()
    return host


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from segmently.db.migrate import upgrade

    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}", _host())
    return path


@pytest.fixture(scope="session")
def pg_template(pg_admin: str) -> Iterator[str]:
    from segmently.db.migrate import upgrade

    name = f"segmently_tpl_{uuid.uuid4().hex[:12]}"
    pg_execute(f'CREATE DATABASE "{name}"')
    upgrade(pg_url(name), _host())
    yield name
    pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def fresh_database(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, *, migrated: bool
) -> Iterator[str]:
    if backend == "sqlite":
        path = tmp_path / "segmently.db"
        if migrated:
            shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    if backend != "postgresql":
        raise ValueError(f"unknown backend {backend}")
    request.getfixturevalue("pg_admin")
    name = f"segmently_t_{uuid.uuid4().hex[:16]}"
    template = f' TEMPLATE "{request.getfixturevalue("pg_template")}"' if migrated else ""
    pg_execute(f'CREATE DATABASE "{name}"{template}')
    try:
        yield pg_url(name)
    finally:
        pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated database of its own for this test."""
    with fresh_database(backend, tmp_path, request, migrated=True) as url:
        yield url


@pytest.fixture
def empty_database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database with no tables at all."""
    with fresh_database(backend, tmp_path, request, migrated=False) as url:
        yield url


# ------------------------------------------------------------------- the app ---


def make_settings(database_url: str, data_dir: Path, **overrides: object):  # type: ignore[no-untyped-def]
    from segmently.settings import Settings

    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "secret_key": SECRET,
        "outbox_poll_seconds": 0.2,
        "bcrypt_rounds": 10,
        "scheduler": False,  # jobs run by hand with a controlled clock; tests that want ticks turn it on
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


class Inbox:
    """Mails a real SMTP server on loopback received, parsed."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        raw = envelope.content  # type: ignore[attr-defined]
        self.messages.append(email.message_from_bytes(raw, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    @staticmethod
    def body(message: email.message.EmailMessage) -> str:
        part = message.get_body(preferencelist=("plain",))
        assert part is not None
        return str(part.get_content())


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on 127.0.0.1; yields its inbox and port."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


@pytest.fixture
def settings(database_url: str, tmp_path: Path, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """Test settings; when the test also asks for ``smtp``, mail goes to that server."""
    overrides: dict[str, object] = {}
    if "smtp" in request.fixturenames:
        from segmently.mail import MailSettings, SmtpServer

        _, port = request.getfixturevalue("smtp")
        overrides["mail"] = MailSettings(smtp=SmtpServer(host="127.0.0.1", port=port, tls="none"))
    return make_settings(database_url, tmp_path, **overrides)


@pytest.fixture
def plugins():  # type: ignore[no-untyped-def]
    from segmently_dummy import plugin as dummy

    from segmently.plugins import PluginHost

    dummy.RECORDED.clear()
    dummy.PLAN_ANSWERS.clear()
    return PluginHost.load()


@pytest.fixture
def app(settings, plugins) -> Litestar:  # type: ignore[no-untyped-def]
    from segmently.app import create_app

    return create_app(settings, plugins)


class _InLoopServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the test runner keeps its own signal handlers
        yield


def tcp_socket() -> socket.socket:
    """A TCP socket bound on a free loopback port.

    ``IPPROTO_TCP`` explicitly: asyncio turns Nagle's algorithm off (``TCP_NODELAY``) only on
    connections whose socket says so, and with it on, every response whose body follows its
    headers in a second write waits ~40 ms for the client's delayed ACK.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    return sock


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serve_app(app: Litestar, sock: socket.socket | None = None) -> AsyncIterator[str]:
    """Serve ``app`` over real HTTP on loopback in this event loop; yields the base URL.

    ``sock``: a socket already bound on loopback (when the app's settings must know the port).
    """
    if sock is None:
        sock = tcp_socket()
    port = sock.getsockname()[1]
    server = _InLoopServer(uvicorn.Config(app, lifespan="on", log_config=None, access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(1000):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if not server.started:
            server.should_exit = True
            failure = await asyncio.gather(task, return_exceptions=True)
            raise RuntimeError(f"the server did not start: {failure[0]!r}")
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            await task
    finally:
        sock.close()


@pytest.fixture
async def server(app: Litestar) -> AsyncIterator[str]:
    async with serve_app(app) as base:
        yield base


@pytest.fixture
async def client(server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server, timeout=10) as c:
        yield c
