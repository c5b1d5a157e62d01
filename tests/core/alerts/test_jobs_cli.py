"""``segmently jobs list`` and ``segmently jobs run NAME`` beside a running server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.conftest import SECRET
from tests.core.alerts.test_jobs import populate
from tests.core.experiments.test_experiments import owner_site
from tests.core.experiments.test_public_api import live
from tests.core.test_cli import clean_env, run

pytestmark = pytest.mark.usefixtures("backend")


def env_for(database_url: str, tmp_path: Path) -> dict[str, str]:
    return clean_env(
        SEGMENTLY_DATABASE_URL=database_url,
        SEGMENTLY_DATA_DIR=str(tmp_path / "cli"),
        SEGMENTLY_SECRET_KEY=SECRET,
    )


def test_jobs_list_names_every_job_with_its_owner_and_schedule(database_url: str, tmp_path: Path) -> None:
    out = run("jobs", "list", env=env_for(database_url, tmp_path))
    assert out.returncode == 0, out.stderr
    for line in (
        "experiment_schedule",
        "winner_detection",
        "duration_alerts",
        "retention_purge",
        "dummy_tick",
    ):
        assert line in out.stdout
    assert "cron 17 3 * * *" in out.stdout and "every 60 s" in out.stdout and "dummy" in out.stdout
    unknown = run("jobs", "run", "no_such_job", env=env_for(database_url, tmp_path))
    assert unknown.returncode != 0 and "no job 'no_such_job'" in unknown.stderr


async def test_jobs_run_winner_detection_alerts_once(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)
    await populate(client, site["api_key"], exp, {"control": (600, 30), "variant_b": (600, 90)})
    for _ in range(3):
        # in a thread: the server runs in this event loop, and a transaction of its (the outbox
        # marking an event delivered) must be able to end while the CLI waits for the file
        out = await asyncio.to_thread(
            run, "jobs", "run", "winner_detection", env=env_for(database_url, tmp_path)
        )
        assert out.returncode == 0 and "job winner_detection: ran" in out.stdout, out.stderr
        assert "Traceback" not in out.stderr, out.stderr  # a failure per experiment is logged, not fatal
    bell = (await client.get("/api/v1/alerts", headers=h)).json()
    assert [a["alert_type"] for a in bell["alerts"]] == ["winner_detected"]
