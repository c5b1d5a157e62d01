"""``GET /api/v1/experiments/{id}/results``: the figures a user reads, seeded through the real API."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import httpx
import pytest
from scipy import stats as scipy_stats  # type: ignore[import-untyped]
from sqlalchemy import update
from statsmodels.stats.proportion import proportions_ztest  # type: ignore[import-untyped]

from segmently.db.models import Experiment
from segmently.stats import (
    NO_WINNER_MESSAGE,
    SRM_MESSAGE,
    chance_to_beat_control,
    lift_ci,
    sequential_proportions_test,
)
from tests.core.accounts.test_auth import bearer, signup
from tests.core.accounts.test_team import db_update
from tests.core.analytics.seed import assign, convert, live, owner_site, populate, send, stamp
from tests.core.events.test_ingest import rows
from tests.core.experiments.test_experiments import hero

pytestmark = pytest.mark.usefixtures("backend")

STAT_FIELDS = (
    "confidence",
    "p_value",
    "sequential_p_value",
    "sequential_p_adjusted",
    "lift",
    "lift_ci",
    "chance_to_beat_control",
    "revenue_p_value",
)


async def results(client: httpx.AsyncClient, h: dict[str, str], exp: dict[str, Any]) -> dict[str, Any]:
    r = await client.get(f"/api/v1/experiments/{exp['id']}/results", headers=h)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def by_key(res: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["key"]: v for v in res["variants"]}


async def test_readout_matches_the_spec_z_test_and_the_oracles(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)
    await populate(
        client, site["api_key"], exp, {"control": (1000, 100), "variant_b": (1000, 130)}, revenue=10.0
    )
    res = await results(client, h, exp)
    assert res["experiment_id"] == exp["id"]
    control, b = by_key(res)["control"], by_key(res)["variant_b"]
    assert [(v["key"], v["name"]) for v in res["variants"]] == [
        ("control", "Control"),
        ("variant_b", "Variant B"),
    ]
    assert (control["visitors"], control["conversions"]) == (1000, 100)
    assert (b["visitors"], b["conversions"]) == (1000, 130)
    assert control["conversion_rate"] == pytest.approx(10.0)
    assert b["conversion_rate"] == pytest.approx(13.0)
    # the acceptance figure: pooled z-test confidence in percent
    assert b["confidence"] == pytest.approx(96.4512, abs=0.01)
    z, p = proportions_ztest([130, 100], [1000, 1000])
    assert b["p_value"] == pytest.approx(p, rel=1e-9)
    assert b["confidence"] == pytest.approx((1 - p) * 100, rel=1e-9)
    assert z > 0
    assert all(control[f] is None for f in STAT_FIELDS), control
    assert control["control"] is True and b["control"] is False
    ci = lift_ci(1000, 100, 1000, 130)
    assert ci is not None
    assert b["lift"] == pytest.approx(30.0)
    assert b["lift_ci"] == pytest.approx([ci.lo * 100, ci.hi * 100])
    assert b["lift_ci"][0] < 0 < b["lift_ci"][1]  # the interval still straddles 0
    assert b["chance_to_beat_control"] == pytest.approx(100 * chance_to_beat_control(1000, 100, 1000, 130))
    seq = sequential_proportions_test(1000, 100, 1000, 130, tuning=5000.0)
    assert b["sequential_p_value"] == pytest.approx(seq.p_value, rel=1e-9)
    assert b["sequential_p_adjusted"] == pytest.approx(seq.p_value, rel=1e-9)  # one treatment
    assert seq.p_value > 0.05  # the readout says 96 %, the always-valid test is not convinced yet
    assert res["winner"] is None and res["message"] == NO_WINNER_MESSAGE
    assert res["srm"]["ok"] is True and res["srm"]["p_value"] == pytest.approx(1.0)
    # revenue: 10 per conversion; per visitor with zeros for those who did not buy
    assert (control["revenue"], b["revenue"]) == (pytest.approx(1000.0), pytest.approx(1300.0))
    assert (control["average_order_value"], b["average_order_value"]) == (
        pytest.approx(10.0),
        pytest.approx(10.0),
    )
    assert (control["revenue_per_visitor"], b["revenue_per_visitor"]) == (
        pytest.approx(1.0),
        pytest.approx(1.3),
    )
    expected = scipy_stats.ttest_ind_from_stats(
        1.3,
        math.sqrt((130 * 100 - 1000 * 1.3**2) / 999),
        1000,
        1.0,
        math.sqrt((100 * 100 - 1000 * 1.0**2) / 999),
        1000,
        equal_var=False,
    )
    assert b["revenue_p_value"] == pytest.approx(expected.pvalue, rel=1e-6)
    assert res["duration_days"] == 0 and res["status"] == "live"
    # the running minimum was stored for the decision rule
    stored = await rows(database_url, "SELECT sequential_p_min FROM variants WHERE id = :v", v=b["id"])
    assert stored[0][0] == pytest.approx(seq.p_value, rel=1e-9)


async def test_a_clear_difference_declares_the_winner(client: httpx.AsyncClient, database_url: str) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)
    await populate(client, site["api_key"], exp, {"control": (1000, 50), "variant_b": (1000, 150)})
    res = await results(client, h, exp)
    b = by_key(res)["variant_b"]
    assert res["winner"] == {
        "variant_key": "variant_b",
        "variant_name": "Variant B",
        "confidence": pytest.approx(99.9),
        "lift": pytest.approx(200.0),
        "conversion_rate": pytest.approx(15.0),
        "sequential_p_adjusted": pytest.approx(b["sequential_p_adjusted"]),
    }
    assert b["sequential_p_adjusted"] <= 0.05 and b["lift_ci"][0] > 0
    assert res["message"] is None


async def test_a_sample_ratio_mismatch_blocks_the_winner(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)  # 50/50 weights
    await populate(client, site["api_key"], exp, {"control": (1000, 50), "variant_b": (1300, 200)})
    res = await results(client, h, exp)
    expected = scipy_stats.chisquare([1000, 1300], [1150, 1150])
    assert res["srm"]["ok"] is False
    assert res["srm"]["p_value"] == pytest.approx(expected.pvalue, rel=1e-6)
    assert res["srm"]["p_value"] < 0.001
    assert by_key(res)["variant_b"]["sequential_p_adjusted"] <= 0.05  # would win on the numbers alone
    assert res["winner"] is None and res["message"] == SRM_MESSAGE


async def test_the_running_minimum_is_kept_when_a_later_look_is_weaker(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)
    await populate(client, site["api_key"], exp, {"control": (400, 20), "variant_b": (400, 60)})
    first = by_key(await results(client, h, exp))["variant_b"]["sequential_p_value"]
    # control catches up: this look's p-value is larger, the reported (and stored) one is not
    more = [convert(f"v-control-{i}") for i in range(20, 55)]
    await send(client, site["api_key"], more)
    res = await results(client, h, exp)
    b = by_key(res)["variant_b"]
    now = sequential_proportions_test(400, 55, 400, 60).p_value
    assert now > first
    assert b["sequential_p_value"] == pytest.approx(first, rel=1e-12)
    stored = await rows(database_url, "SELECT sequential_p_min FROM variants WHERE id = :v", v=b["id"])
    assert stored[0][0] == pytest.approx(first, rel=1e-12)
    # the interval on today's counts no longer excludes 0, so there is no winner
    assert res["winner"] is None


async def test_engagement_excludes_bounces_from_time_on_page(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)
    visitors = [f"e{i}" for i in range(10)]
    await send(client, site["api_key"], [assign(exp, "control", v) for v in visitors])
    top = "time_on_page"
    await send(
        client,
        site["api_key"],
        [
            *({"event_name": top, "visitor_id": v, "event_data": {"seconds": 12}} for v in visitors[:4]),
            *({"event_name": top, "visitor_id": v, "event_data": {"seconds": 30}} for v in visitors[4:6]),
            *({"event_name": top, "visitor_id": v, "event_data": {"seconds": 3}} for v in visitors[6:8]),
            {"event_name": "bounce", "visitor_id": visitors[8]},
            {"event_name": top, "visitor_id": visitors[0], "event_data": {"seconds": 18}},
        ],
    )
    control = by_key(await results(client, h, exp))["control"]
    # 4×12 + 2×30 + 18 over the 7 non-bounce page times; the two 3 s views are bounces
    assert control["avg_time_on_page"] == pytest.approx((4 * 12 + 2 * 30 + 18) / 7)
    assert control["bounce_rate"] == pytest.approx(30.0)  # e6, e7 (under 5 s) and e8 (bounce event)
    assert by_key(await results(client, h, exp))["variant_b"]["avg_time_on_page"] is None


async def test_every_goal_has_its_row_per_variant(client: httpx.AsyncClient, database_url: str) -> None:
    h, site = await owner_site(client, database_url)
    goals = [
        {"type": "custom_event", "name": "Purchase", "primary": True, "event_name": "conversion"},
        {"type": "custom_event", "name": "Signup", "event_name": "signup"},
    ]
    exp = await live(client, h, site, goals=goals)
    who = await populate(
        client, site["api_key"], exp, {"control": (20, 2), "variant_b": (20, 4)}, revenue=25.0
    )
    signups = [{"event_name": "signup", "visitor_id": v} for v in who["control"][:5] + who["variant_b"][:1]]
    signups.append({"event_name": "signup", "visitor_id": who["control"][0]})  # a visitor counts once
    await send(client, site["api_key"], signups)
    res = await results(client, h, exp)
    purchase, signup = res["goals"]
    assert (purchase["name"], purchase["primary"], signup["name"], signup["primary"]) == (
        "Purchase",
        True,
        "Signup",
        False,
    )
    assert res["primary_goal_id"] == purchase["id"]
    assert [(g["key"], g["conversions"], g["revenue"]) for g in purchase["variants"]] == [
        ("control", 2, 50.0),
        ("variant_b", 4, 100.0),
    ]
    assert [(g["key"], g["conversions"], g["conversion_rate"]) for g in signup["variants"]] == [
        ("control", 5, pytest.approx(25.0)),
        ("variant_b", 1, pytest.approx(5.0)),
    ]
    assert signup["variants"][0]["confidence"] is None and signup["variants"][1]["lift"] == pytest.approx(-80)
    # the variant summary stays on the primary goal
    assert by_key(res)["control"]["conversions"] == 2


async def test_funnels_count_steps_completed_in_order_only(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    funnel = {
        "name": "Checkout",
        "steps": [
            {"label": "Home", "url": "/"},
            {"label": "Product", "url": "/product"},
            {"label": "Paid", "url": "/thanks"},
        ],
    }
    exp = await live(client, h, site, funnels=[funnel])
    base = "https://shop.example.com"
    people = {"a": "control", "b": "control", "c": "control", "d": "control", "e": "variant_b"}
    await send(client, site["api_key"], [assign(exp, k, v) for v, k in people.items()])

    def views(visitor: str, *paths: str) -> list[dict[str, Any]]:
        return [{"event_name": "page_view", "visitor_id": visitor, "url": base + p} for p in paths]

    await send(
        client,
        site["api_key"],
        [
            # all three, each step seen twice: a visitor counts once per step
            *views("a", "/", "/", "/product", "/product", "/thanks", "/thanks"),
            *views("b", "/", "/thanks", "/product"),  # skips product, then product: two steps
            *views("c", "/product", "/thanks"),  # out of order: nothing
            *views("e", "/"),
        ],
    )
    await send(client, site["api_key"], views("a", "/", "/product", "/thanks"))  # the journey again, later
    res = await results(client, h, exp)
    (f,) = res["funnels"]
    assert f["name"] == "Checkout" and f["steps"] == ["Home", "Product", "Paid"]
    control = next(v for v in f["variants"] if v["key"] == "control")
    assert control["visitors"] == 4
    assert [s["count"] for s in control["steps"]] == [2, 2, 1]
    assert [s["rate"] for s in control["steps"]] == pytest.approx([50.0, 50.0, 25.0])
    assert [s["drop_off"] for s in control["steps"]] == pytest.approx([50.0, 0.0, 50.0])
    assert control["completion_rate"] == pytest.approx(25.0)
    b = next(v for v in f["variants"] if v["key"] == "variant_b")
    assert [s["count"] for s in b["steps"]] == [1, 0, 0] and b["completion_rate"] == 0


async def test_the_timeline_has_one_entry_per_day(client: httpx.AsyncClient, database_url: str) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)
    # the start of the day two days ago: three dates whatever the time of day the test runs at, and
    # two whole days since launch (a launch 2 days and 1 hour ago spans four dates just after midnight)
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    started = today - dt.timedelta(days=2)
    await db_update(
        database_url, update(Experiment).where(Experiment.id == exp["id"]).values(activated_at=started)
    )
    await send(
        client,
        site["api_key"],
        [
            *(assign(exp, "control", f"old{i}", timestamp=stamp(2)) for i in range(4)),
            *(assign(exp, "variant_b", f"oldb{i}", timestamp=stamp(2)) for i in range(2)),
            *(assign(exp, "control", f"new{i}") for i in range(6)),
        ],
    )
    await send(
        client,
        site["api_key"],
        [convert("old0", timestamp=stamp(1)), convert("old1", timestamp=stamp(1)), convert("new0")],
    )
    res = await results(client, h, exp)
    days = res["timeline"]
    assert len(days) == 3 and [d["date"] for d in days] == sorted(d["date"] for d in days)
    control = [next(p for p in d["variants"] if p["key"] == "control") for d in days]
    assert [p["visitors"] for p in control] == [4, 0, 6]
    assert [p["conversions"] for p in control] == [0, 2, 1]
    assert [p["cumulative_visitors"] for p in control] == [4, 4, 10]
    assert [p["cumulative_conversion_rate"] for p in control] == pytest.approx([0.0, 50.0, 30.0])
    assert [next(p for p in d["variants"] if p["key"] == "variant_b")["visitors"] for d in days] == [2, 0, 0]
    assert res["duration_days"] == 2  # whole days since launch


async def test_a_draft_has_empty_results(client: httpx.AsyncClient, database_url: str) -> None:
    h, site = await owner_site(client, database_url)
    exp = (await client.post(f"/api/v1/projects/{site['id']}/experiments", json=hero(), headers=h)).json()
    res = await results(client, h, exp)
    assert [(v["key"], v["visitors"], v["conversion_rate"]) for v in res["variants"]] == [
        ("control", 0, 0.0),
        ("variant_b", 0, 0.0),
    ]
    assert res["timeline"] == [] and res["duration_days"] is None and res["activated_at"] is None
    assert res["winner"] is None and res["srm"] == {"p_value": 1.0, "ok": True, "statistic": 0.0}
    assert by_key(res)["variant_b"]["confidence"] == 0.0 and by_key(res)["variant_b"]["lift"] is None


async def test_another_organization_gets_404(client: httpx.AsyncClient, database_url: str) -> None:
    h, site = await owner_site(client, database_url)
    exp = await live(client, h, site)
    other = bearer((await signup(client, "mallory"))["token"])
    for path in ("results", "results/export", "results/export?format=json"):
        r = await client.get(f"/api/v1/experiments/{exp['id']}/{path}", headers=other)
        assert r.status_code == 404, r.text
        assert exp["id"] not in r.text
    assert (await client.get("/api/v1/experiments/nope/results", headers=h)).status_code == 404
    assert (await client.get(f"/api/v1/experiments/{exp['id']}/results")).status_code == 401


async def test_a_variant_without_traffic_share_is_checked_not_crashed(
    client: httpx.AsyncClient, database_url: str
) -> None:
    h, site = await owner_site(client, database_url)
    variants = [
        {"key": "control", "name": "Control", "weight": 100},
        {"key": "variant_b", "name": "Variant B", "weight": 0},
    ]
    exp = await live(client, h, site, variants=variants)
    await populate(client, site["api_key"], exp, {"control": (30, 3)})
    res = await results(client, h, exp)
    assert res["srm"]["ok"] is True and by_key(res)["variant_b"]["visitors"] == 0
    await populate(client, site["api_key"], exp, {"variant_b": (5, 1)}, prefix="late")
    assert (await results(client, h, exp))["srm"]["ok"] is False  # traffic where the split says none
