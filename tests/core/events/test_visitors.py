"""A visitor's data rights over real HTTP on both backends: export, deletion, plugins, scoping, CLI."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from segmently_dummy import plugin as dummy
from sqlalchemy import text

from segmently.db.engine import Database
from tests.conftest import SECRET, Inbox
from tests.core.accounts.test_auth import bearer, signup
from tests.core.accounts.test_team import join
from tests.core.events.test_ingest import ids, rows, send
from tests.core.experiments.test_experiments import owner_site
from tests.core.experiments.test_public_api import live
from tests.core.test_cli import SEGMENTLY, clean_env

pytestmark = pytest.mark.usefixtures("backend")

ALICE, BOB = "visitor-alice", "visitor-bob"
TABLES = (
    "events",
    "event_keys",
    "experiment_visitors",
    "experiment_conversions",
    "funnel_progress",
    "monthly_visitors",
)


def run_cli(*args: str, env: dict[str, str], stdin: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SEGMENTLY, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120, check=False
    )


async def execute(database_url: str, sql: str, **params: Any) -> None:
    db = Database(database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text(sql), params)
    finally:
        await db.dispose()


FUNNEL = {"name": "Checkout", "steps": [{"label": "Home", "url": "/"}, {"label": "Thanks", "url": "/thanks"}]}


async def seed(
    client: httpx.AsyncClient, database_url: str
) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
    """A live experiment with a funnel; Alice and Bob each get assigned, view the home page and convert."""
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site, funnels=[FUNNEL])
    control = ids(exp)["control"]
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    events: list[dict[str, Any]] = []
    for visitor in (ALICE, BOB):
        events += [
            {
                "event_name": "assignment",
                "visitor_id": visitor,
                "experiment_id": exp["id"],
                "variant_id": control,
                "event_id": f"{visitor}-1",
                "timestamp": t0.isoformat(),
            },
            {
                "event_name": "page_view",
                "visitor_id": visitor,
                "url": "https://shop.example.com/",
                "event_id": f"{visitor}-2",
                "timestamp": (t0 + dt.timedelta(seconds=1)).isoformat(),
            },
            {
                "event_name": "conversion",
                "visitor_id": visitor,
                "event_data": {"revenue": 12.5},
                "event_id": f"{visitor}-3",
                "timestamp": (t0 + dt.timedelta(seconds=2)).isoformat(),
            },
        ]
    r = await send(client, site["api_key"], events)
    assert r.json()["accepted"] == 6, r.text
    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    for visitor in (ALICE, BOB):  # as a capped plan would have counted them
        await execute(
            database_url,
            "INSERT INTO monthly_visitors (organization_id, month, visitor_id) VALUES (:o, :m, :v)",
            o=site["organization_id"],
            m=month,
            v=visitor,
        )
    for _ in range(200):  # plugins hear of the events after the 202
        if all(len(dummy.held_visits().get(f"{site['id']}/{v}", [])) == 3 for v in (ALICE, BOB)):
            break
        await asyncio.sleep(0.02)
    return h, site, exp


async def counts(database_url: str, site: dict[str, Any], visitor: str) -> dict[str, int]:
    out = {}
    for table in TABLES:
        scope = "organization_id = :o" if table == "monthly_visitors" else "site_id = :s"
        if table == "event_keys":
            where = "site_id = :s AND event_id LIKE :prefix"
        else:
            where = f"{scope} AND visitor_id = :v"
        found = await rows(
            database_url,
            f"SELECT count(*) FROM {table} WHERE {where}",
            s=site["id"],
            o=site["organization_id"],
            v=visitor,
            prefix=f"{visitor}-%",
        )
        out[table] = found[0][0]
    return out


async def test_export_holds_every_row_about_the_visitor_and_each_plugins_data(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site, exp = await seed(client, database_url)
    r = await client.get(f"/api/v1/projects/{site['id']}/visitors/{ALICE}/export", headers=h)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["format"] == "segmently.visitor-export/1"
    assert (doc["site_id"], doc["visitor_id"]) == (site["id"], ALICE)
    assert [e["event_name"] for e in doc["events"]] == ["assignment", "page_view", "conversion"]
    assert [e["client_event_id"] for e in doc["events"]] == [f"{ALICE}-1", f"{ALICE}-2", f"{ALICE}-3"]
    assert doc["events"][2]["event_data"] == {"revenue": 12.5}
    assert doc["events"][1]["url"] == "https://shop.example.com/"
    [assignment] = doc["assignments"]
    assert assignment["experiment_id"] == exp["id"]
    assert (assignment["experiment_slug"], assignment["variant_key"]) == (exp["slug"], "control")
    [conversion] = doc["conversions"]
    assert conversion["goal_id"] == exp["goals"][0]["id"]
    assert (conversion["count"], conversion["revenue"], conversion["variant_key"]) == (1, 12.5, "control")
    [funnel] = doc["funnel_progress"]
    assert (funnel["experiment_slug"], funnel["steps"]) == (exp["slug"], 1)
    assert doc["counted_months"] == [dt.datetime.now(dt.UTC).strftime("%Y-%m")]
    # the dummy plugin saw Alice's three events (by their stored ids) and hands them over
    assert doc["plugins"] == {"dummy": {"events_seen": [e["id"] for e in doc["events"]]}}
    assert doc["plugins_failed"] == {}
    assert BOB not in r.text

    nobody = (await client.get(f"/api/v1/projects/{site['id']}/visitors/nobody/export", headers=h)).json()
    assert nobody["events"] == nobody["assignments"] == nobody["counted_months"] == []
    assert nobody["plugins"] == {}


async def test_delete_removes_every_row_in_one_go_and_the_plugins_data(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site, _ = await seed(client, database_url)
    assert await counts(database_url, site, ALICE) == dict.fromkeys(TABLES, 1) | {
        "events": 3,
        "event_keys": 3,
    }
    r = await client.delete(f"/api/v1/projects/{site['id']}/visitors/{ALICE}", headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["deleted"] == {
        "events": 3,
        "event_keys": 3,
        "experiment_conversions": 1,
        "funnel_progress": 1,
        "experiment_visitors": 1,
        "monthly_visitors": 1,
    }
    assert body["plugins_purged"] == ["dummy"] and body["plugins_not_purged"] == {}
    assert await counts(database_url, site, ALICE) == dict.fromkeys(TABLES, 0)
    assert await counts(database_url, site, BOB) == dict.fromkeys(TABLES, 1) | {"events": 3, "event_keys": 3}
    assert f"{site['id']}/{ALICE}" not in dummy.held_visits() and f"{site['id']}/{BOB}" in dummy.held_visits()
    purge = {"org": site["organization_id"], "site_id": site["id"], "visitor_id": ALICE}
    assert ("on_purge", purge) in dummy.RECORDED

    after = (await client.get(f"/api/v1/projects/{site['id']}/visitors/{ALICE}/export", headers=h)).json()
    assert after["events"] == after["assignments"] == after["conversions"] == after["funnel_progress"] == []
    assert after["plugins"] == {}
    again = (await client.delete(f"/api/v1/projects/{site['id']}/visitors/{ALICE}", headers=h)).json()
    assert again["deleted"] == dict.fromkeys(body["deleted"], 0)


async def test_a_failing_plugin_is_reported_never_claimed_purged(
    client: httpx.AsyncClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    h, site, _ = await seed(client, database_url)
    monkeypatch.setenv("DUMMY_PLUGIN_FAIL", ALICE)
    doc = (await client.get(f"/api/v1/projects/{site['id']}/visitors/{ALICE}/export", headers=h)).json()
    assert len(doc["events"]) == 3  # the kernel's rows are exported regardless
    assert doc["plugins"] == {} and "RuntimeError" in doc["plugins_failed"]["dummy"]
    body = (await client.delete(f"/api/v1/projects/{site['id']}/visitors/{ALICE}", headers=h)).json()
    assert body["deleted"]["events"] == 3
    assert body["plugins_purged"] == [] and "RuntimeError" in body["plugins_not_purged"]["dummy"]
    assert f"{site['id']}/{ALICE}" in dummy.held_visits()  # indeed not purged


async def test_another_organizations_site_is_404_and_members_are_refused(
    client: httpx.AsyncClient, database_url: str, smtp: tuple[Inbox, int]
) -> None:
    h, site, _ = await seed(client, database_url)
    other = bearer((await signup(client, "mallory"))["token"])
    base = f"/api/v1/projects/{site['id']}/visitors/{ALICE}"
    assert (await client.get(f"{base}/export", headers=other)).status_code == 404
    assert (await client.delete(base, headers=other)).status_code == 404
    owner_token = h["Authorization"].removeprefix("Bearer ")
    member = bearer((await join(client, smtp[0], owner_token, "carol"))["token"])
    assert (await client.get(f"{base}/export", headers=member)).status_code == 403
    assert (await client.delete(base, headers=member)).status_code == 403
    admin = bearer((await join(client, smtp[0], owner_token, "dave", "admin"))["token"])
    assert (await client.get(f"{base}/export", headers=admin)).status_code == 200
    assert (await counts(database_url, site, ALICE))["events"] == 3  # nobody refused deleted anything


async def test_cli_exports_and_deletes_a_visitor(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    visits = tmp_path / "visits.json"
    monkeypatch.setenv(
        "DUMMY_PLUGIN_VISITS", str(visits)
    )  # the CLI process sees what the server's plugin saw
    _, site, _ = await seed(client, database_url)
    env = clean_env(
        SEGMENTLY_DATABASE_URL=database_url,
        SEGMENTLY_SECRET_KEY=SECRET,
        SEGMENTLY_DATA_DIR=str(tmp_path),
        DUMMY_PLUGIN_VISITS=str(visits),
    )

    async def cli(*args: str, stdin: str | None = None) -> Any:
        return await asyncio.to_thread(run_cli, "visitors", *args, env=env, stdin=stdin)

    out = tmp_path / "alice.json"
    r = await cli("export", site["id"], ALICE, "-o", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert len(doc["events"]) == 3 and len(doc["plugins"]["dummy"]["events_seen"]) == 3

    declined = await cli("delete", site["id"], ALICE, stdin="n\n")
    assert declined.returncode == 1 and "Shop" in declined.stdout  # the prompt names the site
    assert (await counts(database_url, site, ALICE))["events"] == 3
    r = await cli("delete", site["id"], ALICE, "--yes")
    assert r.returncode == 0, r.stderr
    assert "events 3" in r.stdout and "plugins purged: dummy" in r.stdout
    assert await counts(database_url, site, ALICE) == dict.fromkeys(TABLES, 0)
    assert f"{site['id']}/{ALICE}" not in json.loads(visits.read_text())

    missing = await cli("export", "no-such-site", ALICE)
    assert missing.returncode == 2 and "no site" in missing.stderr
