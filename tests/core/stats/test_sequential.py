"""segmently.stats.sequential against golden values from gbstats 0.8.0 (scripts/gbstats_golden.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from segmently.stats import (
    DEFAULT_TUNING,
    SequentialTest,
    mixing_rho,
    running_min,
    sequential_means_test,
    sequential_p_value,
    sequential_proportions_test,
)

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "gbstats_sequential.json"
CASES: list[dict[str, Any]] = json.loads(FIXTURE.read_text())["cases"]

# gbstats does not round; both sides are the same double-precision formula in a different order
# (and ours in log space), so they agree to a few ulps. abs_tol only lets an exact 0 match ~1e-17.
REL_TOL = 1e-9
ABS_TOL = 1e-15


def _ours(case: dict[str, Any]) -> SequentialTest:
    c, t = case["control"], case["treatment"]
    options = {
        "relative": case["difference_type"] == "relative",
        "tuning": float(case["tuning"]),
        "alpha": case["alpha"],
    }
    if case["kind"] == "proportion":
        return sequential_proportions_test(c["n"], c["sum"], t["n"], t["sum"], **options)
    return sequential_means_test(
        c["sum"], c["sum_squares"], c["n"], t["sum"], t["sum_squares"], t["n"], **options
    )


def test_fixture_covers_what_it_claims() -> None:
    assert 30 <= len(CASES) <= 40
    assert {c["kind"] for c in CASES} == {"proportion", "mean"}
    assert {c["difference_type"] for c in CASES} == {"relative", "absolute"}
    assert len({c["tuning"] for c in CASES}) >= 6
    p_values = [c["p_value"] for c in CASES]
    assert any(0 < p < 0.05 for p in p_values)
    assert any(0.05 < p < 1 for p in p_values)
    assert 0.0 in p_values
    assert any(0 < p < 1e-100 for p in p_values)
    assert any(c["expected"] < 0 for c in CASES)
    assert any(c["expected"] > 0 for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_matches_gbstats(case: dict[str, Any]) -> None:
    ours = _ours(case)
    for got, want in [
        (ours.estimate, case["expected"]),
        (ours.lo, case["ci"][0]),
        (ours.hi, case["ci"][1]),
        (ours.p_value, case["p_value"]),
    ]:
        assert math.isclose(got, want, rel_tol=REL_TOL, abs_tol=ABS_TOL), (got, want)
    if case["p_value"] < 1e-100:
        assert math.isclose(ours.p_value, case["p_value"], rel_tol=REL_TOL)  # no abs_tol help


def test_formula_by_hand() -> None:
    # ρ² = (-2 ln α + ln(1 - 2 ln α)) / η; p = sqrt(1 + Nρ²) exp(-Nρ² z² / (2 (1 + Nρ²)))
    rho2 = (-2 * math.log(0.05) + math.log(1 - 2 * math.log(0.05))) / 5000
    assert mixing_rho() ** 2 == pytest.approx(rho2, rel=1e-12)
    assert rho2 == pytest.approx(0.0015873, rel=1e-4)
    n, z = 40_000, 3.5
    n_rho2 = n * rho2
    expected = math.sqrt(1 + n_rho2) * math.exp(-n_rho2 * z * z / (2 * (1 + n_rho2)))
    assert sequential_p_value(z * 0.01, 0.01**2, n) == pytest.approx(expected, rel=1e-12)


def test_sequential_p_is_more_demanding_than_fixed_horizon() -> None:
    # p = 0.05 at N = η needs |z| ≈ 3.04 rather than 1.96.
    assert sequential_p_value(1.96, 1.0, int(DEFAULT_TUNING)) > 0.5
    assert sequential_p_value(3.035, 1.0, int(DEFAULT_TUNING)) == pytest.approx(0.05, abs=0.001)
    assert sequential_p_value(0.0, 1.0, 10_000) == 1.0


def test_confidence_sequence_excludes_zero_exactly_when_p_below_alpha() -> None:
    for x_t in range(1000, 1300, 10):
        result = sequential_proportions_test(20_000, 1000, 20_000, x_t)
        assert (result.lo > 0) == (result.p_value < 0.05), x_t


def test_uninformative_cases() -> None:
    assert sequential_proportions_test(0, 0, 100, 5) == (0.0, 0.0, 1.0, 0.0, 0.0)
    assert sequential_proportions_test(100, 0, 100, 5) == (0.0, 0.0, 1.0, 0.0, 0.0)
    assert sequential_proportions_test(100, 5, 100, 100) == (0.0, 0.0, 1.0, 0.0, 0.0)
    assert sequential_means_test(10.0, 10.0, 10, 20.0, 50.0, 10).p_value == 1.0  # control variance 0


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="alpha"):
        mixing_rho(alpha=1.0)
    with pytest.raises(ValueError, match="tuning"):
        sequential_proportions_test(100, 0, 100, 5, tuning=0.0)
    with pytest.raises(ValueError, match="exceed"):
        sequential_proportions_test(10, 11, 10, 1)
    with pytest.raises(ValueError, match="variance"):
        sequential_p_value(0.1, 0.0, 100)
    with pytest.raises(ValueError, match="at least 2"):
        sequential_means_test(1.0, 1.0, 1, 1.0, 1.0, 10)


def test_running_min() -> None:
    assert running_min(None, 0.4) == 0.4
    assert running_min(0.3, 0.4) == 0.3
    assert running_min(0.3, 0.02) == 0.02
    assert running_min(1.0, 1.0) == 1.0
    with pytest.raises(ValueError, match="p-values"):
        running_min(None, math.nan)
    with pytest.raises(ValueError, match="p-values"):
        running_min(1.5, 0.2)
