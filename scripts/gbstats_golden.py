"""Write ``tests/fixtures/gbstats_sequential.json``: gbstats 0.8.0's sequential test on varied inputs.

gbstats (GrowthBook's stats engine) is the oracle for ``segmently.stats.sequential``; it pins
``numpy<2`` and pandas 1.x, so it lives in a throwaway virtualenv outside the workspace instead
of in the dev dependencies. Run from the workspace root::

    python3 -m venv /tmp/gbstats-venv
    /tmp/gbstats-venv/bin/pip install gbstats==0.8.0 'numpy<2'
    /tmp/gbstats-venv/bin/python scripts/gbstats_golden.py

Each case is fed to ``SequentialTwoSidedTTest(stat_a, stat_b, SequentialConfig(...)).compute_result()``
with ``stat_a`` the control. A case holds ``kind`` (``proportion``: ``ProportionStatistic(n, sum)``;
``mean``: ``SampleMeanStatistic(n, sum, sum_squares)``), ``control`` and ``treatment`` (those
fields), ``difference_type`` (``relative`` or ``absolute``), ``tuning``
(``sequential_tuning_parameter``), ``alpha``, and gbstats' answers ``expected`` (the estimate),
``ci`` (the confidence sequence) and ``p_value``. Floats are written with ``repr``, so they
round-trip exactly; ``tests/core/stats/test_sequential.py`` compares against them.
"""

from __future__ import annotations

import importlib.metadata
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from gbstats.frequentist.tests import SequentialConfig, SequentialTwoSidedTTest
from gbstats.models.statistics import ProportionStatistic, SampleMeanStatistic

PATH = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "gbstats_sequential.json"
RNG_SEED = 20260501

# (control visitors, conversions, treatment visitors, conversions, difference type, tuning, alpha)
PROPORTION_CASES: list[tuple[int, int, int, int, str, float, float]] = [
    # small samples
    (20, 2, 20, 5, "relative", 5000, 0.05),
    (100, 10, 100, 13, "relative", 5000, 0.05),
    (60, 9, 45, 3, "relative", 5000, 0.05),
    # medium and large samples, positive / negative / zero effects
    (1000, 100, 1000, 130, "relative", 5000, 0.05),
    (1000, 100, 1000, 70, "relative", 5000, 0.05),
    (10_000, 500, 10_000, 500, "relative", 5000, 0.05),
    (20_000, 1000, 20_000, 1200, "relative", 5000, 0.05),
    (20_000, 1000, 20_000, 1080, "relative", 5000, 0.05),
    (50_000, 2500, 50_000, 2400, "relative", 5000, 0.05),
    (200_000, 10_000, 200_000, 10_300, "relative", 5000, 0.05),
    (3000, 150, 7000, 400, "relative", 5000, 0.05),
    (500, 450, 500, 470, "relative", 5000, 0.05),
    # overwhelming effects: p ≈ 1e-15, p far below 1e-100, and exp() overflowing in gbstats (p = 0)
    (10_000, 100, 10_000, 1000, "relative", 5000, 0.05),
    (100_000, 1000, 100_000, 5000, "relative", 5000, 0.05),
    (1_000_000, 10_000, 1_000_000, 50_000, "relative", 5000, 0.05),
    # tuning parameter
    (20_000, 1000, 20_000, 1150, "relative", 100, 0.05),
    (20_000, 1000, 20_000, 1150, "relative", 1000, 0.05),
    (20_000, 1000, 20_000, 1150, "relative", 20_000, 0.05),
    (20_000, 1000, 20_000, 1150, "relative", 100_000, 0.05),
    (20_000, 1000, 20_000, 1150, "relative", 1_000_000, 0.05),
    # alpha
    (5000, 250, 5000, 300, "relative", 5000, 0.1),
    (5000, 250, 5000, 300, "relative", 5000, 0.01),
    # absolute difference
    (1000, 100, 1000, 130, "absolute", 5000, 0.05),
    (20_000, 1000, 20_000, 1150, "absolute", 5000, 0.05),
    (8000, 2400, 12_000, 3500, "absolute", 2000, 0.05),
    (40_000, 400, 40_000, 380, "absolute", 50_000, 0.1),
    # undefined: no control conversions, zero variance in an arm
    (1000, 0, 1000, 10, "relative", 5000, 0.05),
    (1000, 10, 1000, 0, "relative", 5000, 0.05),
    (100, 100, 100, 90, "absolute", 5000, 0.05),
]

# (control n, mean, sd, treatment n, mean, sd, difference type, tuning, alpha): revenue-like samples
MEAN_CASES: list[tuple[int, float, float, int, float, float, str, float, float]] = [
    (500, 20.0, 35.0, 520, 23.0, 38.0, "relative", 5000, 0.05),
    (20_000, 4.0, 15.0, 20_000, 4.4, 16.0, "relative", 5000, 0.05),
    (20_000, 4.0, 15.0, 20_000, 4.4, 16.0, "absolute", 10_000, 0.05),
    (3000, 50.0, 10.0, 3100, 49.0, 10.0, "absolute", 5000, 0.1),
    (150, 9.0, 3.0, 170, 9.0, 3.0, "relative", 500, 0.05),
]


def _run(stat_a: Any, stat_b: Any, difference_type: str, tuning: float, alpha: float) -> dict[str, Any]:
    config = SequentialConfig(
        difference_type=difference_type, sequential_tuning_parameter=tuning, alpha=alpha
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # np.exp overflows on the largest effect; gbstats then gives 0
        result = SequentialTwoSidedTTest(stat_a, stat_b, config).compute_result()
    return {
        "difference_type": difference_type,
        "tuning": tuning,
        "alpha": alpha,
        "expected": float(result.expected),
        "ci": [float(result.ci[0]), float(result.ci[1])],
        "p_value": float(result.p_value),
    }


def _sample_sums(rng: np.random.Generator, n: int, mean: float, sd: float) -> dict[str, Any]:
    # Gamma draws: skewed and positive, like revenue per visitor.
    shape = (mean / sd) ** 2
    values = rng.gamma(shape, mean / shape, size=n)
    return {"n": n, "sum": float(values.sum()), "sum_squares": float((values * values).sum())}


def build() -> dict[str, Any]:
    """Return the fixture document."""
    cases: list[dict[str, Any]] = []
    for n_c, x_c, n_t, x_t, difference_type, tuning, alpha in PROPORTION_CASES:
        control = {"n": n_c, "sum": x_c}
        treatment = {"n": n_t, "sum": x_t}
        stats = (ProportionStatistic(**control), ProportionStatistic(**treatment))
        cases.append(
            {"kind": "proportion", "control": control, "treatment": treatment}
            | _run(*stats, difference_type, tuning, alpha)
        )
    rng = np.random.default_rng(RNG_SEED)
    for n_c, m_c, sd_c, n_t, m_t, sd_t, difference_type, tuning, alpha in MEAN_CASES:
        control = _sample_sums(rng, n_c, m_c, sd_c)
        treatment = _sample_sums(rng, n_t, m_t, sd_t)
        stats = (SampleMeanStatistic(**control), SampleMeanStatistic(**treatment))
        cases.append(
            {"kind": "mean", "control": control, "treatment": treatment}
            | _run(*stats, difference_type, tuning, alpha)
        )
    return {"gbstats_version": importlib.metadata.version("gbstats"), "cases": cases}


def main() -> None:
    """Write the fixture, one case per line."""
    document = build()
    version = json.dumps(document["gbstats_version"])
    lines = ",\n".join(f"    {json.dumps(case)}" for case in document["cases"])
    PATH.write_text(f'{{\n  "gbstats_version": {version},\n  "cases": [\n{lines}\n  ]\n}}\n')
    print(f"wrote {len(document['cases'])} cases to {PATH}")


if __name__ == "__main__":
    main()
