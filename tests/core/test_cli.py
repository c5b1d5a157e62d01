"""The ``segmently`` command as an operator runs it: real processes, real HTTP on loopback."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
from pathlib import Path

import httpx

from tests.conftest import SECRET, free_port
from tests.core.conftest import SEGMENTLY
from tests.helpers import make_plugin_dist


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTLY_")}
    env.update(extra)
    return env


def run(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SEGMENTLY, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_plugins_list_needs_no_database_or_settings(tmp_path: Path) -> None:
    r = run(
        "plugins",
        "list",
        "--json",
        env=clean_env(SEGMENTLY_DATABASE_URL="nonsense://", SEGMENTLY_SECRET_KEY="x"),
    )
    assert r.returncode == 0, r.stderr
    rows = {p["name"]: p for p in json.loads(r.stdout)}
    assert {"heatmaps", "sessions", "chat", "integrations", "billing", "dummy"} <= set(rows)
    assert rows["heatmaps"]["version"] == "0.1.0" and rows["heatmaps"]["enabled"] is True
    assert {"key": "heatmaps.moves", "name": "Mouse move heatmap", "min_plan": "business"} in rows[
        "heatmaps"
    ]["features"]
    table = run("plugins", "list", env=clean_env())
    assert table.returncode == 0
    for name in ("heatmaps", "sessions", "chat", "integrations", "billing"):
        assert name in table.stdout
    assert "sessions.recordings (enterprise)" in table.stdout


def test_plugins_list_shows_disabled_and_broken_plugins(tmp_path: Path) -> None:
    site = make_plugin_dist(tmp_path / "site", "broken", "raise ImportError('needs libfoo')\n")
    env = clean_env(
        SEGMENTLY_DISABLED_PLUGINS="chat,nosuchplugin",
        PYTHONPATH=f"{site}{os.pathsep}{os.environ['PYTHONPATH']}",
    )
    r = run("plugins", "list", "--json", env=env)
    assert r.returncode == 0, r.stderr
    rows = {p["name"]: p for p in json.loads(r.stdout)}
    assert rows["chat"]["enabled"] is False and rows["chat"]["error"] is None
    assert rows["broken"]["enabled"] is False and rows["broken"]["error"] == "ImportError: needs libfoo"
    assert "nosuchplugin" in r.stderr  # the warning names it
    table = run("plugins", "list", env=env)
    assert "error: ImportError: needs libfoo" in table.stdout
    assert "disabled" in table.stdout


def test_plugins_list_for_one_organization(tmp_path: Path) -> None:
    import asyncio

    from segmently.db.engine import Database
    from segmently.db.models import Organization, Site, SiteSettings

    env = clean_env(SEGMENTLY_DATA_DIR=str(tmp_path), SEGMENTLY_SECRET_KEY=SECRET)
    assert run("migrate", env=env).returncode == 0

    async def seed() -> str:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'segmently.db'}")
        async with db.session() as s:
            org = Organization(name="Acme", plan="free")
            s.add(org)
            await s.flush()
            site = Site(
                organization_id=org.id, name="Shop", url="https://shop.example.com", api_key="seg_live_x"
            )
            s.add(site)
            await s.flush()
            s.add(SiteSettings(site_id=site.id, settings={"plugins": {"dummy": False}}))
        await db.dispose()
        return org.id

    org_id = asyncio.run(seed())
    r = run("plugins", "list", "--org", org_id, "--json", env=env)
    assert r.returncode == 0, r.stderr
    rows = {p["name"]: p for p in json.loads(r.stdout)}
    assert rows["heatmaps"]["on_for_org"] is False  # Free does not include heatmaps
    assert rows["billing"]["on_for_org"] is True
    assert rows["dummy"]["on_for_org"] is True and rows["dummy"]["on_for_sites"] == {"Shop": False}
    table = run("plugins", "list", "--org", org_id, env=env)
    assert "site Shop" in table.stdout
    unknown = run("plugins", "list", "--org", "nope", env=env)
    assert unknown.returncode == 2 and "no organization" in unknown.stderr


def test_server_starts_without_a_plugin_that_fails_to_load(tmp_path: Path, start) -> None:  # type: ignore[no-untyped-def]
    site = make_plugin_dist(tmp_path / "site", "broken", "raise RuntimeError('boom at import')\n")
    env = clean_env(
        SEGMENTLY_DATA_DIR=str(tmp_path),
        SEGMENTLY_SECRET_KEY=SECRET,
        PYTHONPATH=f"{site}{os.pathsep}{os.environ['PYTHONPATH']}",
    )
    assert run("migrate", env=env).returncode == 0
    server = start("serve", env=env)
    assert httpx.get(server.base + "/health").status_code == 200
    assert httpx.get(server.base + "/api/v1/dummy/notes").status_code == 200  # the other plugins work
    assert "boom at import" in server.log.read_text()


def test_malformed_database_url_is_one_line_and_exit_2(tmp_path: Path) -> None:
    r = run(
        "migrate", env=clean_env(SEGMENTLY_DATA_DIR=str(tmp_path), SEGMENTLY_DATABASE_URL="postgres//oops")
    )
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1
    assert "SEGMENTLY_DATABASE_URL is malformed" in r.stderr


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    r = run("serve", "--port", str(free_port()), env=clean_env(SEGMENTLY_DATA_DIR=str(tmp_path)), timeout=60)
    assert r.returncode == 2
    assert "run `segmently migrate` first" in r.stderr


def test_serve_logs_json_to_stderr_and_stops_cleanly(tmp_path: Path, start) -> None:  # type: ignore[no-untyped-def]
    env = clean_env(SEGMENTLY_DATA_DIR=str(tmp_path), SEGMENTLY_SECRET_KEY=SECRET)
    assert run("migrate", env=env).returncode == 0
    server = start("serve", env=env)
    os.killpg(server.proc.pid, signal.SIGTERM)
    assert server.proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean stop
    lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.strip()]
    assert lines[-1]["message"].startswith("Finished server process")
    assert any(entry["message"] == "segmently 0.1.0 started" and entry["level"] == "INFO" for entry in lines)
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in lines)


def test_several_workers_share_keep_alive_load(tmp_path: Path, start) -> None:  # type: ignore[no-untyped-def]
    env = clean_env(SEGMENTLY_DATA_DIR=str(tmp_path), SEGMENTLY_SECRET_KEY=SECRET)
    assert run("migrate", env=env).returncode == 0
    server = start("serve", "--workers", "2", env=env, ready=2)  # both workers listening
    answered: collections.Counter[int] = collections.Counter()
    # 16 keep-alive connections: the kernel spreads them at random, all on one worker is 2 in 65,536
    clients = [httpx.Client(base_url=server.base) for _ in range(16)]
    try:
        for _ in range(5):
            for client in clients:
                answered[client.get("/api/v1/dummy/whoami").json()["pid"]] += 1
    finally:
        for client in clients:
            client.close()
    assert len(answered) == 2, answered  # both worker processes took connections
    assert server.proc.pid not in answered
