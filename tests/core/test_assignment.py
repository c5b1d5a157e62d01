"""Hashing, bucket ranges, flags, MVT cells and experiment evaluation, with growthbook 4.0.0 as the oracle."""

from __future__ import annotations

import json
import math
import random
import runpy
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest
from growthbook import Experiment, GrowthBook
from growthbook.core import chooseVariation, gbhash, getBucketRanges

from segmently import assignment
from segmently.assignment import (
    Decision,
    ExperimentRules,
    FlagSet,
    Hasher,
    VisitorContext,
    WeightedVariant,
    bucket_ranges,
    choose_variant,
    evaluate,
    flag_enabled,
    flags_enabled,
    fnv1a32,
    hash_v2,
    mvt_cells,
)
from segmently.targeting import AttributeRule, UrlRule

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
VECTORS = FIXTURES / "hash_vectors.json"
make_vectors = runpy.run_path(str(FIXTURES / "make_hash_vectors.py"))


def _strings(rng: random.Random, count: int) -> list[str]:
    texts: list[str] = [make_vectors["random_text"](rng, 40, True) for _ in range(count)]
    return texts


# --- hashing -------------------------------------------------------------------------------------


def test_hash_v2_matches_growthbook_on_random_seeds_and_ids() -> None:
    rng = random.Random(4)
    seeds = _strings(rng, 12_000)
    ids = [make_vectors["random_id"](rng) for _ in range(12_000)]
    ids[:4] = ["", "😀", "\ud83d", "a\udfffb"]  # empty, an emoji, lone surrogates
    seeds[:4] = ["", "", "é", "🎉🎉"]
    assert sum(not s.isascii() for s in seeds) > 4000
    assert sum(any(ord(c) > 0xFFFF for c in s) for s in seeds) > 2000  # surrogate pairs
    mismatches = [(s, v) for s, v in zip(seeds, ids, strict=True) if hash_v2(s, v) != gbhash(s, v, 2)]
    assert not mismatches, mismatches[:5]


def test_hasher_gives_hash_v2_for_every_id() -> None:
    rng = random.Random(5)
    for seed in _strings(rng, 50):
        hasher = Hasher(seed)
        for value in _strings(rng, 40):
            assert hasher(value) == hash_v2(seed, value) == gbhash(seed, value, 2)


def test_first_round_below_a_million_takes_the_short_second_round() -> None:
    # the second round reads str(h) from a prefix table when h >= 10**6; find an h below it
    value = next(str(i) for i in range(100_000) if fnv1a32("seed" + str(i)) < 1_000_000)
    assert hash_v2("seed", value) == gbhash("seed", value, 2)


def test_decimal_prefix_table_holds_the_hash_of_each_number() -> None:
    table = assignment._DECIMAL_PREFIX
    assert all(table[q] == fnv1a32(str(q)) for q in range(1, len(table)))
    assert len(table) * 1_000_000 > 2**32 - 1


def test_fnv1a32_walks_utf16_code_units_not_utf8_bytes() -> None:
    def fnv_bytes(data: bytes) -> int:
        h = 0x811C9DC5
        for b in data:
            h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
        return h

    assert fnv1a32("") == 0x811C9DC5
    assert fnv1a32("a") == 0xE40C292C  # the FNV-1a reference value
    assert fnv1a32("é") != fnv_bytes("é".encode())
    # an astral character is two code units, as JavaScript's charCodeAt sees it
    assert fnv1a32("😀") == fnv1a32("\ud83d" + "\ude00")


def test_hash_is_a_multiple_of_a_ten_thousandth_in_unit_interval() -> None:
    rng = random.Random(6)
    for value in _strings(rng, 500):
        n = hash_v2("exp", value)
        assert 0 <= n < 1
        assert n == round(n * 10000) / 10000


# --- bucket ranges and choose_variant --------------------------------------------------------------


def test_bucket_ranges_match_growthbook_on_random_weights_and_coverages() -> None:
    rng = random.Random(7)
    for _ in range(5000):
        weights, k = make_vectors["random_weights"](rng)
        coverage = make_vectors["random_coverage"](rng)
        expected = getBucketRanges(k, coverage, weights)
        assert bucket_ranges(weights, coverage, num_variants=k) == expected, (weights, coverage, k)
        if k == len(weights):
            assert bucket_ranges(weights, coverage) == expected


@pytest.mark.parametrize(
    ("weights", "coverage", "num_variants"),
    [
        ([0.5, 0.5], 1.0, None),
        ([0.5, 0.5], 1.7, None),  # clamped to 1
        ([0.5, 0.5], -0.3, None),  # clamped to 0
        ([0.5, 0.5], math.nan, None),  # NaN passes the clamp, like GrowthBook
        ([0.7, 0.7], 1.0, None),  # sum 1.4: equal weights
        ([1.2, -0.2], 1.0, None),  # negative: equal weights
        ([math.inf, 0.0], 1.0, None),
        ([0.5, 0.5], 1.0, 3),  # length mismatch: three equal weights
        ([], 1.0, None),
        ([0.5, 0.5], 1.0, 0),
        ([1, 0], 0.5, None),  # ints are numbers
        ([0.3333, 0.3333, 0.3333], 0.25, None),  # 0.9999: within the tolerance, kept as is
        ([0.995, 0.0], 1.0, None),
        ([0.989, 0.0], 1.0, None),
    ],
)
def test_bucket_ranges_edge_cases_match_growthbook(
    weights: list[float], coverage: float, num_variants: int | None
) -> None:
    k = len(weights) if num_variants is None else num_variants
    got = bucket_ranges(weights, coverage, num_variants=num_variants)
    expected = getBucketRanges(k, coverage, weights)
    assert repr(got) == repr(expected)  # repr: NaN != NaN, and the float bits must agree


def test_choose_variant_matches_growthbook() -> None:
    rng = random.Random(8)
    for _ in range(3000):
        weights, k = make_vectors["random_weights"](rng)
        ranges = bucket_ranges(weights, make_vectors["random_coverage"](rng), num_variants=k)
        bounds = [x for r in ranges for x in r]
        for n in (rng.randint(0, 9999) / 10000, *(rng.sample(bounds, min(2, len(bounds))))):
            assert choose_variant(n, ranges) == chooseVariation(n, ranges)


def test_choose_variant_ranges_are_half_open() -> None:
    ranges = [(0.0, 0.5), (0.5, 1.0)]
    assert [choose_variant(n, ranges) for n in (0.0, 0.4999, 0.5, 0.9999, 1.0)] == [0, 0, 1, 1, -1]
    assert choose_variant(0.3, []) == -1


def test_raising_traffic_keeps_every_visitor_in_their_variant() -> None:
    weights = [0.34, 0.33, 0.33]
    ids = [str(uuid.UUID(int=random.Random(i).getrandbits(128))) for i in range(3000)]
    before = {v: choose_variant(hash_v2("exp-1", v), bucket_ranges(weights, 0.2)) for v in ids}
    after = {v: choose_variant(hash_v2("exp-1", v), bucket_ranges(weights, 0.6)) for v in ids}
    assert all(after[v] == before[v] for v in ids if before[v] >= 0)
    assert sum(a >= 0 for a in after.values()) > 2 * sum(b >= 0 for b in before.values())


# --- the shared vectors file ---------------------------------------------------------------------


def test_hash_vectors_file_is_what_the_script_writes() -> None:
    text = VECTORS.read_text(encoding="ascii")
    assert text == make_vectors["render"](make_vectors["build"]()), (
        "regenerate with: uv run python tests/fixtures/make_hash_vectors.py"
    )
    assert len(text.encode()) < 1_000_000


def test_implementation_agrees_with_every_vector_in_the_file() -> None:
    data: dict[str, Any] = json.loads(VECTORS.read_text(encoding="ascii"))
    assert len(data["hash_v2"]) >= 2000
    for row in data["fnv1a32"]:
        assert fnv1a32(row["input"]) == row["hash"]
    for row in data["hash_v2"]:
        assert hash_v2(row["seed"], row["value"]) == row["hash"]
    for row in data["bucket_ranges"]:
        got = bucket_ranges(row["weights"], row["coverage"], num_variants=row["num_variants"])
        assert [list(r) for r in got] == row["ranges"]
    for row in data["choose_variant"]:
        assert choose_variant(row["n"], [tuple(r) for r in row["ranges"]]) == row["variant"]
    for row in data["flags"]:
        got = flag_enabled(row["key"], row["rollout_percentage"], row["visitor_id"], row["active"])
        assert got == row["enabled"]


# --- feature flags -------------------------------------------------------------------------------


def test_flag_rollout_matches_growthbook_sdk() -> None:
    rng = random.Random(9)
    for i in range(400):
        key, rollout = f"flag-{i % 7}", rng.choice([0, 5, 33, 50, 99.5, 100])
        visitor = str(uuid.UUID(int=rng.getrandbits(128)))
        features = {
            key: {
                "defaultValue": False,
                "rules": [{"force": True, "coverage": rollout / 100, "hashVersion": 2, "seed": key}],
            }
        }
        gb = GrowthBook(attributes={"id": visitor}, features=features)
        assert flag_enabled(key, rollout, visitor, True) == gb.is_on(key)
        gb.destroy()


def test_flag_follows_hash_active_and_rollout() -> None:
    ids = [f"visitor-{i}" for i in range(2000)]
    assert not any(flag_enabled("new-checkout-ui", 100, v, False) for v in ids)  # the kill switch
    assert all(flag_enabled("new-checkout-ui", 100, v, True) for v in ids)
    assert not any(flag_enabled("new-checkout-ui", 0, v, True) for v in ids)
    on = [v for v in ids if flag_enabled("new-checkout-ui", 30, v, True)]
    assert 500 < len(on) < 700
    assert all(hash_v2("new-checkout-ui", v) < 0.3 for v in on)
    # a visitor in at 30 % stays in at 50 %
    assert all(flag_enabled("new-checkout-ui", 50, v, True) for v in on)


ROLLOUTS = [0, 0.01, 0.015, 1, 5, 10, 25, 33.3, 33.33, 50, 66.67, 90, 99.5, 99.99, 99.995, 100]
ODD_ROLLOUTS = [-5, 100.01, 150, 1e308, -math.inf, math.inf, math.nan, 0.0049999, 2**60]


def _random_flags(rng: random.Random, count: int) -> list[tuple[str, float, bool]]:
    flags = []
    for _ in range(count):
        key = make_vectors["random_text"](rng, 30, True)
        rollout = rng.choice(ROLLOUTS) if rng.random() < 0.6 else rng.uniform(0, 100)
        if rng.random() < 0.05:
            rollout = rng.choice(ODD_ROLLOUTS)
        flags.append((key, rollout, rng.random() < 0.85))
    return flags


def _one_at_a_time(flags: list[tuple[str, float, bool]], visitor_id: str) -> dict[str, bool]:
    return {key: flag_enabled(key, rollout, visitor_id, active) for key, rollout, active in flags}


def test_flag_set_agrees_with_flag_enabled_on_random_keys_and_ids() -> None:
    rng = random.Random(11)
    checked = 0
    for size in [0, 1, 2, 3, 7, 20, 20, 20, 45, 120]:
        for _ in range(6):
            flags = _random_flags(rng, size)
            if size > 3 and rng.random() < 0.5:  # a key listed twice: the last one wins
                flags.append((flags[0][0], rng.choice(ROLLOUTS), rng.random() < 0.5))
            flag_set = FlagSet(flags)
            ids = [make_vectors["random_id"](rng) for _ in range(60)]
            ids[:5] = ["", "😀", "\ud83d", "a\udfffb", "ключ-é-日本"]
            for visitor_id in ids:
                expected = _one_at_a_time(flags, visitor_id)
                got = flag_set(visitor_id)
                assert got == expected, (flags, visitor_id)
                assert list(got) == list(expected)  # the order of the keys too
                assert flags_enabled(flags, visitor_id) == expected
                checked += len(expected)
    assert checked > 80_000


def test_flag_set_agrees_with_flag_enabled_on_many_uuids() -> None:
    rng = random.Random(12)
    flags = [(f"flag-{i}", rng.choice(ROLLOUTS), rng.random() > 0.15) for i in range(20)]
    flag_set = FlagSet(flags)
    for _ in range(5000):
        visitor_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        assert flag_set(visitor_id) == _one_at_a_time(flags, visitor_id)


def test_flag_set_redoes_lanes_whose_first_round_is_below_a_million() -> None:
    # such a lane has a state with fewer than seven digits, which the lanes' second round cannot take
    keys = ["alpha", "beta", "gamma", "δέλτα", "🚀"]
    low = {
        key: [v for v in (f"visitor-{i}" for i in range(40_000)) if fnv1a32(key + v) < 1_000_000][:3]
        for key in keys
    }
    assert all(len(ids) == 3 for ids in low.values())
    for rollout in [0.01, 1, 10, 50, 90, 99.99]:
        flags = [(key, rollout, True) for key in keys]
        flag_set = FlagSet(flags)
        for ids in low.values():
            for visitor_id in ids:
                assert flag_set(visitor_id) == _one_at_a_time(flags, visitor_id)


def test_flag_set_matches_growthbook_sdk() -> None:
    rng = random.Random(13)
    flags = [(f"feature-{i}", rng.choice(ROLLOUTS), rng.random() > 0.2) for i in range(25)]
    features = {
        key: {
            "defaultValue": False,
            "rules": [{"force": True, "coverage": rollout / 100, "hashVersion": 2, "seed": key}]
            if on
            else [],
        }
        for key, rollout, on in flags
    }
    flag_set = FlagSet(flags)
    for _ in range(300):
        visitor_id = make_vectors["random_id"](rng) or "x"  # growthbook skips rules for an empty id
        gb = GrowthBook(attributes={"id": visitor_id}, features=features)
        assert flag_set(visitor_id) == {key: gb.is_on(key) for key, _, _ in flags}
        gb.destroy()


def test_flag_set_constants_and_cache() -> None:
    flags = [("off", 50, False), ("none", 0, True), ("all", 100, True), ("nan", math.nan, True)]
    flag_set = FlagSet(flags)
    assert flag_set("anyone") == {"off": False, "none": False, "all": True, "nan": False}
    assert flag_set.flags == tuple(flags)
    assert "FlagSet([('off', 50, False)" in repr(flag_set)
    assert flags_enabled(flags, "anyone") == flag_set("anyone")
    assert flags_enabled([], "anyone") == {}
    assert assignment._flag_set(tuple(flags)) is assignment._flag_set(tuple(flags))


def test_rollout_threshold_is_the_first_bucket_left_out() -> None:
    rng = random.Random(14)
    for rollout in [*ROLLOUTS, *ODD_ROLLOUTS, *(rng.uniform(-1, 101) for _ in range(300))]:
        t = assignment._rollout_threshold(rollout)
        assert [b / 10000 < rollout / 100 for b in range(10000)] == [b < t for b in range(10000)]


# --- MVT -----------------------------------------------------------------------------------------


def test_mvt_cells_are_the_cartesian_product_in_order_with_equal_weights() -> None:
    cells = mvt_cells([["control", "short"], ["red", "green"], ["photo", "illustration"]])
    assert [c.key for c in cells] == [f"mvt-cell-{i}" for i in range(1, 9)]
    assert cells[0].combination == ("control", "red", "photo")
    assert cells[1].combination == ("control", "red", "illustration")
    assert cells[-1].combination == ("short", "green", "illustration")
    assert {c.weight for c in cells} == {12.5}


@pytest.mark.parametrize(
    ("sizes", "count"), [([2, 2], 4), ([2, 3, 2], 12), ([3], 3), ([3, 3, 3], 27), ([7], 7)]
)
def test_mvt_cell_weights_are_hundredths_summing_to_exactly_100(sizes: list[int], count: int) -> None:
    cells = mvt_cells([[f"s{s}v{v}" for v in range(n)] for s, n in enumerate(sizes)])
    hundredths = [round(c.weight * 100) for c in cells]
    assert len(cells) == count
    assert all(c.weight == h / 100 for c, h in zip(cells, hundredths, strict=True))
    assert sum(hundredths) == 10000
    assert max(hundredths) - min(hundredths) <= 1
    assert hundredths == sorted(hundredths, reverse=True)  # the extra hundredths go to the first cells
    assert abs(math.fsum(c.weight for c in cells) - 100) < 1e-9


def test_mvt_three_cells_get_33_34_then_33_33() -> None:
    assert [c.weight for c in mvt_cells([["a", "b", "c"]])] == [33.34, 33.33, 33.33]


def test_mvt_without_sections_or_with_too_many_cells() -> None:
    assert mvt_cells([]) == []
    assert mvt_cells([["a", "b"], []]) == []
    with pytest.raises(ValueError, match="too many"):
        mvt_cells([[str(i) for i in range(101)]] * 2)


def test_mvt_cells_bucket_with_growthbook_ranges() -> None:
    cells = mvt_cells([["a", "b", "c"], ["x", "y", "z"]])
    ranges = bucket_ranges([c.weight / 100 for c in cells], 1.0)
    assert ranges == getBucketRanges(9, 1.0, [c.weight / 100 for c in cells])
    assert ranges[-1][1] == pytest.approx(1.0)


# --- evaluate ------------------------------------------------------------------------------------

VARIANTS = (WeightedVariant("v1", "control", 50), WeightedVariant("v2", "treatment", 50))


def _visitor(**kw: Any) -> VisitorContext:
    base: dict[str, Any] = {"visitor_id": "visitor-1", "url": "https://shop.example.com/product/12"}
    return VisitorContext(**(base | kw))


def test_evaluate_assigns_the_variant_of_the_hash() -> None:
    experiment = ExperimentRules(hash_seed="exp-42", variants=VARIANTS)
    for i in range(200):
        visitor = _visitor(visitor_id=f"id-{i}")
        n = hash_v2("exp-42", visitor.visitor_id)
        decision = evaluate(experiment, visitor)
        expected = 0 if n < 0.5 else 1
        assert decision == Decision(
            in_experiment=True,
            variant_index=expected,
            variant_id=VARIANTS[expected].id,
            variant_key=VARIANTS[expected].key,
            bucket=n,
        )


@pytest.mark.parametrize(
    ("rules", "visitor", "reason"),
    [
        ({"url_rules": (UrlRule("contains", "/cart"),)}, {}, "url"),
        ({"url_rules": (UrlRule("contains", "/product/"),)}, {"url": None}, "url"),
        ({"devices": ("mobile",)}, {"viewport_width": 1024}, "device"),
        ({"devices": ("mobile",)}, {}, "device"),  # unknown device, restricted targeting
        ({"devices": ("mobile",)}, {"device": "tablet", "viewport_width": 500}, "device"),
        ({"countries": ("DE", "FR")}, {"country": "us"}, "country"),
        ({"visitor_type": "new"}, {"is_returning": True}, "visitor_type"),
        ({"visitor_type": "returning"}, {"is_returning": False}, "visitor_type"),
        (
            {"attribute_rules": (AttributeRule("plan", "equals", "pro"),)},
            {"attributes": {"plan": "free"}},
            "attributes",
        ),
        (
            {"referral_sources": ("paid",)},
            {"url": "https://shop.example.com/product/12?utm_medium=email"},
            "referral",
        ),
        ({"referral_sources": ("direct",)}, {"referrer": "https://www.google.com/"}, "referral"),
        ({"traffic_percentage": 0}, {}, "traffic"),
        ({"variants": ()}, {}, "traffic"),
    ],
)
def test_evaluate_names_the_check_that_excluded_the_visitor(
    rules: dict[str, Any], visitor: dict[str, Any], reason: str
) -> None:
    experiment = ExperimentRules(**({"hash_seed": "exp", "variants": VARIANTS} | rules))
    assert evaluate(experiment, _visitor(**visitor)) == Decision(in_experiment=False, reason=reason)


@pytest.mark.parametrize(
    ("rules", "visitor"),
    [
        ({"url_rules": (UrlRule("contains", "/cart"), UrlRule("starts_with", "https://shop."))}, {}),
        ({"devices": ("mobile", "tablet")}, {"viewport_width": 800}),
        ({"devices": ("desktop", "tablet", "mobile")}, {}),  # all devices: unknown is fine
        ({"countries": ("US", "gb")}, {"country": "GB"}),
        ({"countries": ("US",)}, {"country": None}),  # not detected: let through
        ({"countries": ("US",)}, {"country": "XX"}),
        ({"visitor_type": "returning"}, {"is_returning": True}),
        (
            {"attribute_rules": (AttributeRule("cartValue", "greater_than", "100"),)},
            {"attributes": {"cartValue": 149.99}},
        ),
        (
            {"referral_sources": ("paid", "email")},
            {"url": "https://shop.example.com/product/12?utm_medium=cpc"},
        ),
        ({"referral_sources": ("direct",)}, {"referrer": "https://shop.example.com/"}),  # within the site
        ({"referral_sources": ("social",)}, {"url_params": {"utm_medium": "social"}}),
    ],
)
def test_evaluate_lets_matching_visitors_in(rules: dict[str, Any], visitor: dict[str, Any]) -> None:
    experiment = ExperimentRules(**({"hash_seed": "exp", "variants": VARIANTS} | rules))
    assert evaluate(experiment, _visitor(**visitor)).in_experiment


def test_evaluate_checks_in_the_spec_order() -> None:
    experiment = ExperimentRules(
        hash_seed="exp",
        variants=VARIANTS,
        url_rules=(UrlRule("contains", "/checkout"),),
        devices=("mobile",),
        countries=("DE",),
        visitor_type="new",
        attribute_rules=(AttributeRule("plan", "exists"),),
        referral_sources=("email",),
        traffic_percentage=0,
    )
    visitor: dict[str, Any] = {"viewport_width": 1200, "country": "US", "is_returning": True}
    order = ["url", "device", "country", "visitor_type", "attributes", "referral", "traffic"]
    fixes: list[dict[str, Any]] = [
        {"url": "https://shop.example.com/checkout"},
        {"viewport_width": 400},
        {"country": "DE"},
        {"is_returning": False},
        {"attributes": {"plan": "pro"}},
        {"referrer": "https://mail.example.org/", "url_params": {"utm_source": "newsletter"}},
    ]
    for reason, fix in zip(order, [*fixes, {}], strict=True):
        assert evaluate(experiment, _visitor(**visitor)).reason == reason
        visitor |= fix


def test_traffic_percentage_takes_about_that_share() -> None:
    experiment = ExperimentRules(hash_seed="exp-traffic", variants=VARIANTS, traffic_percentage=25)
    decisions = [evaluate(experiment, _visitor(visitor_id=f"v{i}")) for i in range(4000)]
    share = sum(d.in_experiment for d in decisions) / len(decisions)
    assert 0.22 < share < 0.28
    assert {d.reason for d in decisions if not d.in_experiment} == {"traffic"}


def test_rules_and_visitors_decode_from_json_the_server_and_sdk_send() -> None:
    raw = {
        "hash_seed": "7f1c",
        "variants": [
            {"id": "a", "key": "control", "weight": 50},
            {"id": "b", "key": "big-cta", "weight": 50},
        ],
        "traffic_percentage": 100,
        "url_rules": [{"type": "ends_with", "value": "/product/12"}],
        "devices": ["desktop"],
        "attribute_rules": [{"key": "plan", "operator": "equals", "value": "pro"}],
    }
    experiment = msgspec.convert(raw, ExperimentRules)
    visitor = msgspec.json.decode(
        b'{"visitor_id": "v-1", "url": "https://shop.example.com/product/12?x=1", "viewport_width": 1440,'
        b' "attributes": {"plan": "pro"}}',
        type=VisitorContext,
    )
    assert evaluate(experiment, visitor).in_experiment
    assert msgspec.to_builtins(experiment)["hash_seed"] == "7f1c"  # the cached prepared form is not encoded


def _growthbook_condition(experiment: ExperimentRules) -> dict[str, Any]:
    """The same targeting as a GrowthBook condition (URL rules: contains and starts_with only)."""
    import re

    widths = {"desktop": {"$gte": 1024}, "tablet": {"$gte": 768, "$lt": 1024}, "mobile": {"$lt": 768}}
    patterns = {"contains": re.escape, "starts_with": lambda v: "^" + re.escape(v)}
    condition: dict[str, Any] = {}
    parts: list[dict[str, Any]] = []
    if experiment.url_rules:
        parts.append({"$or": [{"url": {"$regex": patterns[r.type](r.value)}} for r in experiment.url_rules]})
    if experiment.devices:
        parts.append({"$or": [{"viewport": widths[d]} for d in experiment.devices]})
    if experiment.countries:
        parts.append(
            {"$or": [{"country": {"$exists": False}}, {"country": {"$in": list(experiment.countries)}}]}
        )
    if parts:
        condition["$and"] = parts
    return condition


def test_evaluate_agrees_with_growthbook_run_on_random_configs() -> None:
    rng = random.Random(10)
    paths = ["/product/", "/cart", "/blog/", "/pricing", "/checkout"]
    for e in range(40):
        k = rng.choice([2, 3])
        cuts = sorted(rng.sample(range(1, 100), k - 1))
        weights = [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]
        experiment = ExperimentRules(
            hash_seed=f"seed-{e}",
            variants=tuple(WeightedVariant(f"{e}-{i}", f"v{i}", w) for i, w in enumerate(weights)),
            traffic_percentage=rng.choice([10, 50, 75, 100]),
            url_rules=tuple(
                UrlRule(
                    rng.choice(["contains", "starts_with"]), rng.choice(["https://shop.example.com", ""]) + p
                )
                for p in rng.sample(paths, rng.randint(0, 2))
            ),
            devices=tuple(rng.sample(["desktop", "tablet", "mobile"], rng.randint(0, 2))),
            countries=tuple(rng.sample(["US", "GB", "DE", "FR"], rng.randint(0, 2))),
        )
        gb_experiment = Experiment(
            key=f"exp-{e}",
            variations=list(range(k)),
            weights=[w / 100 for w in weights],
            coverage=experiment.traffic_percentage / 100,
            hashVersion=2,
            seed=experiment.hash_seed,
            condition=_growthbook_condition(experiment),
        )
        for _ in range(50):
            url = "https://shop.example.com" + rng.choice(paths) + str(rng.randint(1, 99))
            width = rng.choice([375, 767, 768, 1023, 1024, 1920])
            country = rng.choice(["US", "GB", "DE", "FR", "JP", None])
            visitor_id = str(uuid.UUID(int=rng.getrandbits(128)))
            attributes: dict[str, Any] = {"id": visitor_id, "url": url, "viewport": width}
            if country is not None:
                attributes["country"] = country
            gb = GrowthBook(attributes=attributes)
            expected = gb.run(gb_experiment)
            gb.destroy()
            ours = evaluate(
                experiment,
                VisitorContext(visitor_id=visitor_id, url=url, viewport_width=width, country=country),
            )
            assert (ours.in_experiment, ours.variant_index) == (
                expected.inExperiment,
                expected.variationId if expected.inExperiment else -1,
            )


def test_replaced_rules_are_prepared_again() -> None:
    experiment = ExperimentRules(hash_seed="exp", variants=VARIANTS)
    visitor = _visitor()
    assert evaluate(experiment, visitor).in_experiment
    assert evaluate(msgspec.structs.replace(experiment, traffic_percentage=0), visitor).reason == "traffic"
    assert evaluate(experiment, visitor).in_experiment


def test_visitor_reads_utm_from_its_url_unless_given() -> None:
    url = "https://shop.example.com/?utm_medium=cpc&utm_medium=email"
    assert VisitorContext(visitor_id="v", url=url).referral_source == "paid"  # the first value
    assert VisitorContext(visitor_id="v", url=url, url_params={}).referral_source == "direct"
    unparsable = VisitorContext(visitor_id="v", url="http://[::1", referrer="https://www.google.com/")
    assert unparsable.referral_source == "organic"
    assert VisitorContext(visitor_id="v", viewport_width=800).device_type == "tablet"
    assert VisitorContext(visitor_id="v", device="mobile", viewport_width=1800).device_type == "mobile"
    assert VisitorContext(visitor_id="v").device_type is None
