"""``GET /api/v1/experiments/{id}/results/export``: CSV and JSON carry the same rows."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest

from segmently.domain.analytics.export import COLUMNS
from tests.core.analytics.seed import assign, live, owner_site, populate, send, stamp

pytestmark = pytest.mark.usefixtures("backend")

NUMERIC = set(COLUMNS) - {"row_type", "date", "variant_key", "variant_name"}


def parsed(cell: str, column: str) -> Any:
    if cell == "":
        return None
    return float(cell) if column in NUMERIC else cell


async def test_csv_parses_and_matches_the_json_export(client: httpx.AsyncClient, database_url: str) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)
    await send(
        client, site["api_key"], [assign(exp, "control", f"y{i}", timestamp=stamp(1)) for i in range(5)]
    )
    await populate(client, site["api_key"], exp, {"control": (40, 4), "variant_b": (40, 9)}, revenue=12.5)
    base = f"/api/v1/experiments/{exp['id']}/results/export"

    r = await client.get(base, headers=h)  # CSV by default
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == f'attachment; filename="{exp["slug"]}-results.csv"'
    reader = csv.DictReader(io.StringIO(r.text))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    table = [{c: parsed(row[c], c) for c in COLUMNS} for row in reader]

    j = await client.get(base, params={"format": "json"}, headers=h)
    assert j.status_code == 200, j.text
    assert j.headers["content-type"].startswith("application/json")
    assert j.headers["content-disposition"] == f'attachment; filename="{exp["slug"]}-results.json"'
    doc = j.json()
    assert doc["columns"] == list(COLUMNS) and doc["experiment_id"] == exp["id"]
    assert table == [*doc["variants"], *doc["timeline"]]

    summary = {row["variant_key"]: row for row in doc["variants"]}
    assert summary["control"]["visitors"] == 45 and summary["variant_b"]["conversions"] == 9
    assert summary["variant_b"]["revenue"] == pytest.approx(112.5)
    assert summary["control"]["confidence"] is None and summary["variant_b"]["confidence"] is not None
    res = (await client.get(f"/api/v1/experiments/{exp['id']}/results", headers=h)).json()
    b = next(v for v in res["variants"] if v["key"] == "variant_b")
    assert summary["variant_b"]["lift_ci_low"] == pytest.approx(b["lift_ci"][0])
    assert summary["variant_b"]["conversion_rate"] == pytest.approx(b["conversion_rate"])
    days = [row for row in doc["timeline"] if row["variant_key"] == "control"]
    assert [row["visitors"] for row in days] == [5, 40]
    assert [row["cumulative_visitors"] for row in days] == [5, 45]
    assert days[-1]["cumulative_conversion_rate"] == pytest.approx(4 / 45 * 100)
    assert all(row["row_type"] == "day" and row["confidence"] is None for row in doc["timeline"])


async def test_an_unknown_format_is_refused(client: httpx.AsyncClient, database_url: str) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)
    r = await client.get(f"/api/v1/experiments/{exp['id']}/results/export?format=xlsx", headers=h)
    assert r.status_code == 400
    assert r.json()["errors"]


async def test_names_a_spreadsheet_would_run_are_quoted(client: httpx.AsyncClient, database_url: str) -> None:
    h, site = await owner_site(client, database_url)
    variants = [
        {"key": "control", "name": "Control", "weight": 50},
        {"key": "variant_b", "name": '=HYPERLINK("http://evil")', "weight": 50},
    ]
    exp = await live(client, h, site, variants=variants)
    r = await client.get(f"/api/v1/experiments/{exp['id']}/results/export", headers=h)
    rows = list(csv.DictReader(io.StringIO(r.text)))
    names = [row["variant_name"] for row in rows if row["row_type"] == "variant"]
    assert names == ["Control", '\'=HYPERLINK("http://evil")']
