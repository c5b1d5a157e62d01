"""Assignment benchmark: local evaluation of experiments and flags, ours vs the GrowthBook Python SDK.

One deterministic config of 20 experiments (2–3 variants with uneven weights, traffic 10–100 %, 1–2 URL
rules of every type, device targeting on most, country targeting on some) and 20 flags (rollout 0–100 %,
a few inactive) is evaluated for the same visitors (UUID ids, a page URL of the shop, a viewport
width, a country or none) by

* segmently: ``evaluate(ExperimentRules, VisitorContext)`` per experiment; the ``VisitorContext`` is
  built inside the timed loop, so its derived values (URL parts, device type) are computed once per
  visitor and paid for. Flags: one ``FlagSet(flags)`` prepared once (as GrowthBook's features), then
  ``flag_set(visitor_id)`` per visitor, which hashes all the flags at once; and, for reference,
  ``flag_enabled(...)`` per flag;
* GrowthBook 4.0.0 (its public API): one ``GrowthBook(features=...)``; per visitor
  ``set_attributes(...)``, then ``run(Experiment(...))`` per experiment and ``is_on(key)`` per flag.
  The same experiments as ``Experiment(weights, coverage, hashVersion=2, seed, condition)``: URL rules
  as ``$regex`` conditions on a ``url`` attribute, devices as ranges of a ``viewport`` attribute,
  countries as ``$in`` (or an absent country); flags as a force rule with ``coverage`` and ``seed``.

Before timing, every visitor is evaluated by both and the script asserts identical buckets
(in or out, and the variant) for every experiment and flag, and the same flags from ``FlagSet`` and
from ``flag_enabled``. Four figures, each per evaluation: the 20-experiment config (most experiments
stop at URL targeting, as on a real site); the same experiments without URL rules (every evaluation
hashes: the worst case for the ratio); flags with ``FlagSet``; flags one at a time.
The two implementations alternate for ``--runs`` rounds; the script prints median and p90 of the
per-round means and the ratio GrowthBook / segmently.

Run from the workspace root:  uv run python bench/assignment.py [--runs 7] [--visitors 3000]
"""

from __future__ import annotations

import argparse
import math
import random
import re
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec
from growthbook import Experiment, GrowthBook

from segmently.assignment import (
    ExperimentRules,
    FlagSet,
    VisitorContext,
    WeightedVariant,
    evaluate,
    flag_enabled,
)
from segmently.targeting import UrlRule

ORIGIN = "https://shop.example.com"
PATHS = ["/", "/pricing", "/cart", "/checkout", "/blog/spring-sale", "/product/123", "/product/77/reviews"]
WIDTHS = {"desktop": {"$gte": 1024}, "tablet": {"$gte": 768, "$lt": 1024}, "mobile": {"$lt": 768}}
RULES = [
    UrlRule("contains", "/product/"),
    UrlRule("starts_with", ORIGIN + "/blog/"),
    UrlRule("ends_with", "/checkout"),
    UrlRule("ends_with", "/cart"),
    UrlRule("exact", ORIGIN + "/pricing"),
    UrlRule("exact", ORIGIN + "/"),
    UrlRule("regex", r"^https://shop\.example\.com/product/[0-9]+$"),
]


def url_regex(rule: UrlRule) -> str:
    """The GrowthBook ``$regex`` equal to the rule on this benchmark's URLs (no query, no fragment)."""
    v = re.escape(rule.value)
    return {
        "contains": v,
        "starts_with": "^" + v,
        "ends_with": v + "$",
        "exact": "^" + v + "$",
        "regex": rule.value,
    }[rule.type]


def make_experiments(rng: random.Random, n: int) -> list[ExperimentRules]:
    experiments = []
    for i in range(n):
        k = rng.choice([2, 2, 3])
        cuts = sorted(rng.sample(range(5, 96), k - 1))
        weights = [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]
        experiments.append(
            ExperimentRules(
                hash_seed=str(uuid.UUID(int=rng.getrandbits(128))),
                variants=tuple(WeightedVariant(f"{i}-{j}", f"v{j}", w) for j, w in enumerate(weights)),
                traffic_percentage=rng.choice([10, 25, 50, 75, 100, 100]),
                url_rules=tuple(rng.sample(RULES, rng.choice([1, 1, 2]))),
                devices=tuple(rng.sample(["desktop", "tablet", "mobile"], rng.choice([0, 1, 2, 2]))),
                countries=tuple(rng.sample(["US", "GB", "DE", "FR", "CA"], rng.choice([0, 0, 0, 2]))),
            )
        )
    return experiments


def growthbook_experiment(key: str, e: ExperimentRules) -> Experiment[int]:
    parts: list[dict[str, Any]] = []
    if e.url_rules:
        parts.append({"$or": [{"url": {"$regex": url_regex(r)}} for r in e.url_rules]})
    if e.devices:
        parts.append({"$or": [{"viewport": WIDTHS[d]} for d in e.devices]})
    if e.countries:  # a visitor whose country is unknown is let through
        parts.append({"$or": [{"country": {"$exists": False}}, {"country": {"$in": list(e.countries)}}]})
    return Experiment(
        key=key,
        variations=list(range(len(e.variants))),
        weights=[v.weight / 100 for v in e.variants],
        coverage=e.traffic_percentage / 100,
        hashVersion=2,
        seed=e.hash_seed,
        condition={"$and": parts} if parts else None,
    )


def rollout_rule(key: str, rollout: float) -> dict[str, Any]:
    """A flag's percentage rollout as a GrowthBook force rule (``hash_v2(key, id) < coverage``)."""
    return {"force": True, "coverage": rollout / 100, "hashVersion": 2, "seed": key}


def make_visitors(rng: random.Random, n: int) -> list[dict[str, Any]]:
    visitors = []
    for _ in range(n):
        visitors.append(
            {
                "visitor_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "url": ORIGIN + rng.choice(PATHS),
                "viewport_width": rng.choice([375, 414, 768, 820, 1024, 1280, 1440, 1920]),
                "country": rng.choice(["US", "US", "GB", "DE", "FR", "IN", "BR", None]),
            }
        )
    return visitors


def gb_attributes(v: dict[str, Any]) -> dict[str, Any]:
    attrs = {"id": v["visitor_id"], "url": v["url"], "viewport": v["viewport_width"]}
    return attrs | ({"country": v["country"]} if v["country"] is not None else {})


def p90(xs: list[float]) -> float:
    return sorted(xs)[math.ceil(0.9 * len(xs)) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="rounds of each measurement (default 7)")
    parser.add_argument("--visitors", type=int, default=3000, help="visitors per round (default 3000)")
    args = parser.parse_args()
    rng = random.Random(20261125)

    experiments = make_experiments(rng, 20)
    hash_path = [msgspec.structs.replace(e, url_rules=()) for e in experiments]
    rollouts = [0, 5, 10, 25, 50, 50, 90, 100]
    flags = [(f"flag-{i}", rng.choice(rollouts), rng.random() > 0.15) for i in range(20)]
    visitors = make_visitors(rng, args.visitors)
    attributes = [gb_attributes(v) for v in visitors]

    gb_experiments = [growthbook_experiment(f"exp-{i}", e) for i, e in enumerate(experiments)]
    gb_hash_path = [growthbook_experiment(f"exp-{i}", e) for i, e in enumerate(hash_path)]
    features = {  # an inactive flag has no rule: off for everyone
        key: {"defaultValue": False, "rules": [rollout_rule(key, r)] if on else []} for key, r, on in flags
    }
    gb = GrowthBook(features=features)
    flag_set = FlagSet(flags)

    # identical buckets, for every visitor, experiment and flag
    assigned = 0
    for v, attrs in zip(visitors, attributes, strict=True):
        gb.set_attributes(attrs)
        ctx = VisitorContext(**v)
        for ours_set, theirs_set in ((experiments, gb_experiments), (hash_path, gb_hash_path)):
            for e, x in zip(ours_set, theirs_set, strict=True):
                d, r = evaluate(e, ctx), gb.run(x)
                got = (r.inExperiment, r.variationId if r.inExperiment else -1)
                assert (d.in_experiment, d.variant_index) == got, (v, e, d, r)
                assigned += d.in_experiment
        batch = flag_set(v["visitor_id"])
        for key, rollout, active in flags:
            assert flag_enabled(key, rollout, v["visitor_id"], active) == gb.is_on(key), (v, key)
            assert batch[key] == gb.is_on(key), (v, key)
        assert list(batch) == [key for key, _, _ in flags]

    def ours_experiments(rules: list[ExperimentRules]) -> Callable[[], None]:
        def run() -> None:
            for v in visitors:
                ctx = VisitorContext(**v)
                for e in rules:
                    evaluate(e, ctx)

        return run

    def gb_experiments_run(exps: list[Experiment[int]]) -> Callable[[], None]:
        def run() -> None:
            for attrs in attributes:
                gb.set_attributes(attrs)
                for x in exps:
                    gb.run(x)

        return run

    visitor_ids = [v["visitor_id"] for v in visitors]

    def ours_flag_set() -> None:
        for vid in visitor_ids:
            flag_set(vid)

    def ours_flags_one_by_one() -> None:
        for v in visitors:
            vid = v["visitor_id"]
            for key, rollout, active in flags:
                flag_enabled(key, rollout, vid, active)

    def gb_flags() -> None:
        for attrs in attributes:
            gb.set_attributes(attrs)
            for key, _, _ in flags:
                gb.is_on(key)

    rows: list[tuple[str, int, Callable[[], None], Callable[[], None]]] = [
        ("20 experiments, targeted", 20, ours_experiments(experiments), gb_experiments_run(gb_experiments)),
        ("same, no URL rules", 20, ours_experiments(hash_path), gb_experiments_run(gb_hash_path)),
        ("20 flags, FlagSet", 20, ours_flag_set, gb_flags),
        ("20 flags, flag_enabled", 20, ours_flags_one_by_one, gb_flags),
    ]
    samples: dict[str, dict[str, list[float]]] = {label: {"ours": [], "gb": []} for label, *_ in rows}
    for _, _, ours, theirs in rows:  # warm-up: caches, prepared experiments
        ours()
        theirs()
    for i in range(args.runs):
        print(f"\rround {i + 1}/{args.runs}", end="", file=sys.stderr, flush=True)
        for label, per_visitor, ours, theirs in rows:
            for name, fn in (("ours", ours), ("gb", theirs)):
                t0 = time.perf_counter()
                fn()
                elapsed = time.perf_counter() - t0
                samples[label][name].append(elapsed / (len(visitors) * per_visitor) * 1e6)
    print(file=sys.stderr)

    evaluations = len(visitors) * len(experiments)
    print(
        f"{args.runs} rounds of {len(visitors)} visitors; identical buckets asserted for all "
        f"{len(visitors)} visitors × (2 × {len(experiments)} experiments + {len(flags)} flags, "
        f"FlagSet and flag_enabled) "
        f"({assigned} of {2 * evaluations} experiment evaluations in a variant); µs per evaluation\n"
    )
    print(f"{'':28}{'segmently':>20}{'growthbook 4.0.0':>20}{'ratio gb/ours':>16}")
    print(f"{'':28}{'median':>10}{'p90':>10}{'median':>10}{'p90':>10}{'(median)':>16}")
    for label, *_ in rows:
        s = samples[label]
        cells = "".join(f"{statistics.median(s[n]):10.2f}{p90(s[n]):10.2f}" for n in ("ours", "gb"))
        ratio = statistics.median(s["gb"]) / statistics.median(s["ours"])
        print(f"{label:28}{cells}{ratio:16.2f}")


if __name__ == "__main__":
    main()
