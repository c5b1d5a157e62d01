"""``segmently demo``: the snippet build decision, the seeded demo, the demo shop, and the command itself."""

from __future__ import annotations

import io
import os
import re
import signal
import stat
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from rich.console import Console
from sqlalchemy import func, select

from segmently.demo import (
    DEMO_EMAIL,
    DEMO_ENV,
    DEMO_PASSWORD,
    dependencies_need_install,
    ensure_dashboard_assets,
    ensure_snippet,
    seed_demo,
    snippet_needs_build,
)
from segmently.kernel import Kernel, make_kernel
from tests.conftest import make_settings, serve_app
from tests.core.conftest import Server
from tests.core.test_cli import clean_env

STUB_CORE = "window.__segmentlyStub = true;\n"


# ------------------------------------------------------------ snippet build ---


def _age(path: Path, seconds_ago: float) -> None:
    when = time.time() - seconds_ago
    os.utime(path, (when, when))


def _snippet_tree(root: Path, *, built: bool, installed: bool) -> Path:
    """A snippet/ look-alike: sources, lock file, and optionally a build and node_modules."""
    (root / "src" / "core").mkdir(parents=True)
    for path in (root / "src" / "index.ts", root / "src" / "core" / "changes.ts"):
        path.write_text("export {};\n")
        _age(path, 300)
    for name in ("package.json", "package-lock.json", "build.mjs"):
        (root / name).write_text("{}\n")
        _age(root / name, 300)
    if installed:
        (root / "node_modules").mkdir()
        (root / "node_modules" / ".package-lock.json").write_text("{}\n")
        _age(root / "node_modules" / ".package-lock.json", 200)
    if built:
        (root / "dist").mkdir()
        (root / "dist" / "segmently.js").write_text("old build\n")
        _age(root / "dist" / "segmently.js", 100)
    return root


def test_snippet_is_built_again_only_when_a_source_is_newer(tmp_path: Path) -> None:
    assert snippet_needs_build(_snippet_tree(tmp_path / "never", built=False, installed=True))
    root = _snippet_tree(tmp_path / "built", built=True, installed=True)
    assert not snippet_needs_build(root)
    (root / "src" / "core" / "changes.ts").write_text("export const changed = 1;\n")  # deep in src/
    assert snippet_needs_build(root)
    root = _snippet_tree(tmp_path / "lock", built=True, installed=True)
    (root / "package-lock.json").touch()
    assert snippet_needs_build(root)


def test_dependencies_are_installed_again_only_when_the_lock_file_is_newer(tmp_path: Path) -> None:
    assert dependencies_need_install(_snippet_tree(tmp_path / "none", built=False, installed=False))
    root = _snippet_tree(tmp_path / "installed", built=False, installed=True)
    assert not dependencies_need_install(root)
    (root / "package-lock.json").touch()
    assert dependencies_need_install(root)


def _fake_node(bin_dir: Path, *, build_fails: bool = False) -> Path:
    """``node`` and ``npm`` stand-ins that record their calls and write what the real ones would."""
    bin_dir.mkdir()
    log = bin_dir / "calls.log"
    npm = f"""#!/bin/sh
echo "$*" >> "{log}"
case "$1" in
  ci) mkdir -p node_modules && echo '{{}}' > node_modules/.package-lock.json ;;
  run) {"echo 'src/index.ts: error: boom' >&2; exit 1" if build_fails else ""}
       if [ -n "$DASHBOARD_ASSETS_OUTDIR" ]; then
         mkdir -p "$DASHBOARD_ASSETS_OUTDIR" && echo 'htmx' > "$DASHBOARD_ASSETS_OUTDIR/htmx.min.js"
       else
         mkdir -p "$SNIPPET_OUTDIR" && echo 'new core' > "$SNIPPET_OUTDIR/segmently.js" \\
         && echo 'new chunk' > "$SNIPPET_OUTDIR/preview.js"
       fi ;;
esac
"""
    for name, body in (("npm", npm), ("node", "#!/bin/sh\necho v20.19.0\n")):
        path = bin_dir / name
        path.write_text(body)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return log


def _console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=200, soft_wrap=True), buffer


def test_stale_snippet_is_installed_and_built_then_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _snippet_tree(tmp_path / "snippet", built=True, installed=False)
    (root / "dist" / "editor-old.js").write_text("a chunk the sources no longer have\n")
    (root / "src" / "index.ts").touch()
    calls = _fake_node(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin")
    console, output = _console()

    assert ensure_snippet(root, console) is True
    assert calls.read_text().splitlines() == ["ci --no-audit --no-fund", "run build"]
    assert sorted(p.name for p in (root / "dist").iterdir()) == ["preview.js", "segmently.js"]
    assert (root / "dist" / "segmently.js").read_text() == "new core\n"
    assert "installed the snippet's build tools" in output.getvalue()
    assert "built the snippet" in output.getvalue()

    assert ensure_snippet(root, console) is True  # fresh now: npm is not run again
    assert len(calls.read_text().splitlines()) == 2
    (root / "src" / "index.ts").write_text("export const v = 2;\n")
    _age(root / "dist" / "segmently.js", 10)
    assert ensure_snippet(root, console) is True  # a changed source builds again, without `npm ci`
    assert calls.read_text().splitlines()[2:] == ["run build"]


def test_the_dashboards_front_end_files_are_built_when_missing_or_older_than_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    web, dist = tmp_path / "web", tmp_path / "static" / "dist"
    web.mkdir()
    (web / "package-lock.json").write_text("{}\n")
    calls = _fake_node(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin")
    console, output = _console()
    assert ensure_dashboard_assets(web, dist, console) is True
    assert calls.read_text().splitlines() == ["ci --no-audit --no-fund", "run build"]
    assert (dist / "htmx.min.js").read_text() == "htmx\n"
    assert "built the dashboard's front-end files" in output.getvalue()
    assert ensure_dashboard_assets(web, dist, console) is True  # fresh: npm is not run again
    assert len(calls.read_text().splitlines()) == 2
    _age(dist / "htmx.min.js", 10)
    (web / "package-lock.json").touch()  # a new lock file: installed and built again
    assert ensure_dashboard_assets(web, dist, console) is True
    assert calls.read_text().splitlines()[2:] == ["ci --no-audit --no-fund", "run build"]


def test_failed_build_warns_and_keeps_the_previous_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _snippet_tree(tmp_path / "snippet", built=True, installed=True)
    (root / "src" / "index.ts").touch()
    _fake_node(tmp_path / "bin", build_fails=True)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin")
    console, output = _console()
    assert ensure_snippet(root, console) is True  # the older build still serves
    assert (root / "dist" / "segmently.js").read_text() == "old build\n"
    assert [p.name for p in (root / "dist").iterdir()] == ["segmently.js"]  # no leftover build folder
    text = output.getvalue()
    assert "warning:" in text and "npm run build exited with 1" in text and "boom" in text


def test_without_node_the_demo_warns_that_the_snippet_cannot_be_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    console, output = _console()
    never_built = _snippet_tree(tmp_path / "snippet", built=False, installed=False)
    assert ensure_snippet(never_built, console) is False
    text = output.getvalue()
    assert "Node.js and npm are not installed" in text
    assert "cannot be served until Node.js 20 or later is installed" in text
    assert not (never_built / "dist").exists()


# ------------------------------------------------------------------ seeding ---


async def _counts(kernel: Kernel) -> dict[str, int]:
    from segmently.db.models import Experiment, Flag, Organization, Site, User

    async with kernel.db.session() as session:
        return {
            model.__name__: int(await session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Organization, User, Site, Experiment, Flag)
        }


@pytest.fixture
async def kernel(settings, plugins) -> AsyncIterator[Kernel]:  # type: ignore[no-untyped-def]
    """The kernel ``segmently demo`` seeds with, on this test's database."""
    kernel = make_kernel(settings, plugins)
    yield kernel
    await kernel.db.dispose()


async def test_seeding_twice_creates_the_demo_once(kernel: Kernel) -> None:
    first = await seed_demo(kernel, "http://127.0.0.1:8000/demo/")
    second = await seed_demo(kernel, "http://127.0.0.1:8000/demo/")
    assert first.created and not second.created
    assert (second.organization_id, second.site_id, second.api_key) == (
        first.organization_id,
        first.site_id,
        first.api_key,
    )
    assert await _counts(kernel) == {"Organization": 1, "User": 1, "Site": 1, "Experiment": 1, "Flag": 1}


async def test_seeded_demo_is_an_enterprise_org_with_a_live_experiment_served_to_the_snippet(
    app: Litestar, client: httpx.AsyncClient
) -> None:
    seeded = await seed_demo(app.state.kernel, f"{client.base_url}/demo/")
    login = await client.post("/api/v1/auth/login", json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD})
    assert login.status_code == 200, login.text
    assert login.json()["organization"] | {"id": None} == {
        "id": None,
        "name": "Segmently demo",
        "plan": "enterprise",
        "status": "active",
        "role": "owner",
    }
    auth = {"Authorization": f"Bearer {login.json()['token']}"}
    sites = (await client.get("/api/v1/projects", headers=auth)).json()["items"]
    assert [(s["name"], s["url"], s["api_key"]) for s in sites] == [
        ("Demo shop", f"{client.base_url}/demo", seeded.api_key)
    ]

    assert seeded.api_key is not None
    config = (await client.get("/api/v1/sdk/config", headers={"X-API-Key": seeded.api_key})).json()
    [experiment] = config["experiments"]
    assert (experiment["name"], experiment["slug"], experiment["status"]) == (
        "Homepage headline",
        "homepage-headline",
        "live",
    )
    control, variant = experiment["variants"]
    assert (control["key"], control["weight"], control["elements"]) == ("control", 50, [])
    assert variant["weight"] == 50
    assert [(c["type"], c["selector"]) for c in variant["elements"]] == [("text", "h1.hero-title")]
    # the css change holds a rule: a style sheet
    assert len(variant["styles"]) == 1 and "background" in variant["styles"][0]
    assert [(g["type"], g["selector"], g["primary"]) for g in experiment["goals"]] == [
        ("click", ".cta", True)
    ]
    assert {"key": "new-checkout", "rollout": 50.0} in config["flags"]


async def test_a_later_demo_on_another_port_moves_the_site_url(kernel: Kernel) -> None:
    from segmently.db.models import Site

    await seed_demo(kernel, "http://127.0.0.1:8000/demo/")
    await seed_demo(kernel, "http://127.0.0.1:9000/demo/")
    async with kernel.db.session() as session:
        assert list((await session.scalars(select(Site.url))).all()) == ["http://127.0.0.1:9000/demo"]


# ------------------------------------------------------------ the demo shop ---


@pytest.fixture
async def demo_server(
    database_url: str, tmp_path: Path, plugins: object, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Litestar, str]]:
    """The app as ``segmently demo`` builds it (``SEGMENTLY_DEMO=1``), serving a stub snippet core."""
    from segmently.app import create_app

    snippet_dir = tmp_path / "snippet-dist"
    snippet_dir.mkdir()
    (snippet_dir / "segmently.js").write_text(STUB_CORE)
    monkeypatch.setenv(DEMO_ENV, "1")
    app = create_app(make_settings(database_url, tmp_path, snippet_dir=snippet_dir), plugins)  # type: ignore[arg-type]
    async with serve_app(app) as base:
        yield app, base


async def test_demo_shop_pages_load_the_seeded_site_snippet(demo_server: tuple[Litestar, str]) -> None:
    app, base = demo_server
    async with httpx.AsyncClient(base_url=base) as client:
        assert (await client.get("/demo/")).status_code == 404  # nothing seeded yet
        seeded = await seed_demo(app.state.kernel, f"{base}/demo/")
        tag = f'<script src="/s/{seeded.api_key}.js"></script>'
        for path in ("/demo/", "/demo/pricing", "/demo/checkout/success"):
            page = await client.get(path)
            assert page.status_code == 200, (path, page.text)
            assert page.headers["content-type"].startswith("text/html")
            assert tag in page.text
            # the default CSP allows only same-origin script files: the pages have no inline script
            assert "script-src 'self'" in page.headers["content-security-policy"]
            assert re.findall(r"<script[^>]*>", page.text) == [tag.removesuffix("</script>")]
            # the dashboard's visual editor can frame the shop (a customer's site allows it too)
            assert "x-frame-options" not in page.headers
            assert "frame-ancestors" not in page.headers["content-security-policy"]
        home = (await client.get("/demo/")).text
        assert '<h1 class="hero-title">' in home
        assert re.search(r'<form action="/demo/checkout/success"[^>]*><button class="cta"', home)

        script = await client.get(f"/s/{seeded.api_key}.js")
        assert script.status_code == 200
        assert "h1.hero-title" in script.text and script.text.endswith(STUB_CORE)


async def test_demo_shop_is_not_served_outside_the_demo(app: Litestar, client: httpx.AsyncClient) -> None:
    await seed_demo(app.state.kernel, "http://127.0.0.1:8000/demo/")
    assert os.environ.get(DEMO_ENV) is None
    for path in ("/demo/", "/demo/pricing", "/demo/checkout/success"):
        assert (await client.get(path)).status_code == 404


# --------------------------------------------------------------- the command ---


@pytest.fixture
def demo_env(tmp_path: Path) -> dict[str, str]:
    """A fresh data dir and a stub snippet build of its own (the real snippet/ is never touched)."""
    snippet_dir = tmp_path / "snippet-dist"
    snippet_dir.mkdir()
    (snippet_dir / "segmently.js").write_text(STUB_CORE)
    return clean_env(SEGMENTLY_DATA_DIR=str(tmp_path / "data"), SEGMENTLY_SNIPPET_DIR=str(snippet_dir))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(30)


def test_segmently_demo_seeds_once_prints_a_working_login_and_serves_the_shop(
    demo_env: dict[str, str], start: Callable[..., Server]
) -> None:
    demo = start("demo", env=demo_env)
    base, printed = demo.base, demo.log.read_text()
    assert "Seeded the demo organization (Enterprise plan)" in printed
    email, password = re.search(r"sign in:\s+(\S+) / (\S+)", printed).groups()  # type: ignore[union-attr]
    assert f"demo shop:  {base}/demo/" in printed

    login = httpx.post(base + "/api/v1/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    auth = {"Authorization": f"Bearer {login.json()['token']}"}
    [site] = httpx.get(base + "/api/v1/projects", headers=auth).json()["items"]
    shop = httpx.get(base + "/demo/")
    assert shop.status_code == 200
    assert f'<script src="/s/{site["api_key"]}.js"></script>' in shop.text
    assert httpx.get(f"{base}/s/{site['api_key']}.js").status_code == 200
    _stop(demo.proc)

    demo = start("demo", env=demo_env)  # again, on another port: nothing new is seeded
    base = demo.base
    assert "Found the demo organization" in demo.log.read_text()
    token = httpx.post(base + "/api/v1/auth/login", json={"email": email, "password": password}).json()[
        "token"
    ]
    auth = {"Authorization": f"Bearer {token}"}
    sites = httpx.get(base + "/api/v1/projects", headers=auth).json()["items"]
    assert [(s["id"], s["url"]) for s in sites] == [(site["id"], f"{base}/demo")]
    _stop(demo.proc)

    served = start("serve", env=demo_env)  # production serving has no demo shop
    assert httpx.get(served.base + "/demo/").status_code == 404
    assert httpx.get(served.base + "/health").status_code == 200
