"""Oracle tests for segmently.stats against statsmodels and scipy (tolerance 1e-9)."""

from __future__ import annotations

import gc
import math

import numpy as np
import pytest
from scipy import integrate, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportions_ztest

from segmently.stats import (
    CONFIDENCE_CAP,
    chance_to_beat_control,
    holm,
    lift_ci,
    pooled_z_test,
    srm_chi_square,
    welch_t_test,
    welch_t_test_from_sums,
)
from segmently.stats.bayes import _prob_b_beats_a

TOL = 1e-9


def _close(a: float, b: float, tol: float = TOL) -> bool:
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


# --- pooled z-test -------------------------------------------------------------------------------


def test_contract_example() -> None:
    result = pooled_z_test(1000, 100, 1000, 130)
    assert result.confidence == pytest.approx(96.4512, abs=0.01)
    assert result.z > 0
    assert result.p_value == pytest.approx(1 - result.confidence / 100, abs=1e-12)


def test_pooled_z_matches_statsmodels_on_random_inputs() -> None:
    rng = np.random.default_rng(20240501)
    checked = 0
    for _ in range(500):
        n_c, n_t = (int(x) for x in rng.integers(1, 200_000, size=2))
        rate = rng.uniform(0.001, 0.6)
        x_c = int(rng.binomial(n_c, rate))
        x_t = int(rng.binomial(n_t, rate * rng.uniform(0.8, 1.25)))
        pooled = (x_c + x_t) / (n_c + n_t)
        if pooled in (0.0, 1.0):
            continue
        z_ref, p_ref = proportions_ztest([x_t, x_c], [n_t, n_c])
        result = pooled_z_test(n_c, x_c, n_t, x_t)
        assert _close(result.z, float(z_ref)), (n_c, x_c, n_t, x_t)
        assert _close(result.p_value, float(p_ref)), (n_c, x_c, n_t, x_t)
        checked += 1
    assert checked > 450


def test_confidence_zero_below_ten_visitors_per_arm() -> None:
    assert pooled_z_test(9, 0, 1000, 900).confidence == 0.0
    assert pooled_z_test(1000, 10, 9, 9).confidence == 0.0
    assert pooled_z_test(10, 0, 10, 10).confidence > 99.0


def test_confidence_capped() -> None:
    result = pooled_z_test(10_000, 100, 10_000, 1000)
    assert result.p_value < 1e-100
    assert result.confidence == CONFIDENCE_CAP


def test_degenerate_z_test() -> None:
    assert pooled_z_test(0, 0, 100, 5) == (0.0, 1.0, 0.0)
    assert pooled_z_test(100, 0, 100, 0) == (0.0, 1.0, 0.0)
    assert pooled_z_test(100, 100, 100, 100) == (0.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="exceed"):
        pooled_z_test(10, 11, 10, 1)
    with pytest.raises(ValueError, match="non-negative"):
        pooled_z_test(-1, 0, 10, 1)


# --- Welch ---------------------------------------------------------------------------------------


def test_welch_matches_scipy_on_random_inputs() -> None:
    rng = np.random.default_rng(7)
    for _ in range(500):
        n_a, n_b = (int(x) for x in rng.integers(2, 50_000, size=2))
        mean_a, mean_b = rng.uniform(-10, 100, size=2)
        sd_a, sd_b = rng.uniform(0.01, 50, size=2)
        ref = stats.ttest_ind_from_stats(mean_b, sd_b, n_b, mean_a, sd_a, n_a, equal_var=False)
        result = welch_t_test(float(mean_a), float(sd_a**2), n_a, float(mean_b), float(sd_b**2), n_b)
        assert _close(result.t, float(ref.statistic))
        assert _close(result.p_value, float(ref.pvalue))
        va, vb = sd_a**2 / n_a, sd_b**2 / n_b
        df_ref = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))  # Welch–Satterthwaite
        assert _close(result.df, float(df_ref))


def test_welch_from_sums_matches_scipy_on_raw_data() -> None:
    rng = np.random.default_rng(11)
    for _ in range(50):
        a = rng.exponential(20.0, size=int(rng.integers(2, 3000))) * (rng.random(1) < 0.5)
        b = rng.exponential(22.0, size=int(rng.integers(2, 3000)))
        b[rng.random(b.size) < 0.7] = 0.0
        if a.var() == 0:
            a[0] += 1.0
        ref = stats.ttest_ind(b, a, equal_var=False)
        result = welch_t_test_from_sums(
            float(a.sum()), float((a * a).sum()), a.size, float(b.sum()), float((b * b).sum()), b.size
        )
        assert math.isclose(result.t, float(ref.statistic), rel_tol=1e-7, abs_tol=1e-9)
        assert math.isclose(result.p_value, float(ref.pvalue), rel_tol=1e-7, abs_tol=1e-9)


def test_welch_degenerate() -> None:
    assert welch_t_test(5.0, 0.0, 10, 5.0, 0.0, 10) == (0.0, 18.0, 1.0)
    result = welch_t_test(5.0, 0.0, 10, 6.0, 0.0, 10)
    assert result.t == math.inf
    assert result.p_value == 0.0
    with pytest.raises(ValueError, match="at least 2"):
        welch_t_test(1.0, 1.0, 1, 1.0, 1.0, 10)
    with pytest.raises(ValueError, match="at least 2"):
        welch_t_test_from_sums(1.0, 1.0, 1, 1.0, 1.0, 10)


# --- SRM -----------------------------------------------------------------------------------------


def test_srm_matches_scipy_chisquare_on_random_inputs() -> None:
    rng = np.random.default_rng(3)
    for _ in range(300):
        k = int(rng.integers(2, 9))
        weights = rng.uniform(0.05, 1.0, size=k)
        total = int(rng.integers(1, 500_000))
        drift = rng.uniform(0.97, 1.03, size=k)
        probs = weights * drift / (weights * drift).sum()
        observed = [int(x) for x in rng.multinomial(total, probs)]
        expected = np.asarray(weights) / weights.sum() * total
        ref = stats.chisquare(observed, expected)
        result = srm_chi_square(observed, [float(w) for w in weights])
        assert _close(result.statistic, float(ref.statistic))
        assert _close(result.p_value, float(ref.pvalue))
        assert result.ok == (float(ref.pvalue) >= 0.001)


def test_srm_flags_mismatch_and_accepts_percent_weights() -> None:
    assert srm_chi_square([5000, 5050], [50, 50]).ok
    bad = srm_chi_square([5000, 5400], [50, 50])
    assert not bad.ok
    assert bad.p_value < 0.001
    assert srm_chi_square([0, 0], [50, 50]) == (0.0, 1.0, True)


def test_srm_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="same length"):
        srm_chi_square([1, 2], [1.0])
    with pytest.raises(ValueError, match="at least 2"):
        srm_chi_square([1], [1.0])
    with pytest.raises(ValueError, match="positive"):
        srm_chi_square([1, 2], [1.0, 0.0])
    with pytest.raises(ValueError, match="non-negative"):
        srm_chi_square([1, -2], [1.0, 1.0])


# --- Holm ----------------------------------------------------------------------------------------


def test_holm_matches_statsmodels_on_random_inputs() -> None:
    rng = np.random.default_rng(5)
    # multipletests calls gc.collect() every time, which walks the whole test worker's heap
    # (~0.35 s a call); with that heap frozen it walks only what the loop allocates
    gc.freeze()
    try:
        for _ in range(60):
            m = int(rng.integers(1, 20))
            p = rng.uniform(0, 1, size=m) ** rng.uniform(1, 6)
            if rng.random() < 0.3:
                p[rng.integers(0, m)] = p[0]  # ties
            ref = multipletests(p, method="holm")[1]
            result = holm([float(x) for x in p])
            assert len(result) == m
            for got, want in zip(result, ref, strict=True):
                assert _close(got, float(want))
    finally:
        gc.unfreeze()


def test_holm_edge_cases() -> None:
    assert holm([]) == []
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    with pytest.raises(ValueError, match="p-values"):
        holm([0.5, math.nan])
    with pytest.raises(ValueError, match="p-values"):
        holm([1.5])


# --- lift CI -------------------------------------------------------------------------------------


def test_lift_ci_delta_method() -> None:
    result = lift_ci(1000, 100, 1000, 130)
    assert result is not None
    lift, lo, hi = result
    assert lift == pytest.approx(0.3)
    # Var(p_t/p_c) ≈ v_t/p_c² + p_t² v_c/p_c⁴
    se = math.sqrt(0.13 * 0.87 / 1000 / 0.01 + 0.13**2 * 0.1 * 0.9 / 1000 / 0.1**4)
    z = stats.norm.ppf(0.975)
    assert lo == pytest.approx(0.3 - z * se, abs=1e-12)
    assert hi == pytest.approx(0.3 + z * se, abs=1e-12)
    narrower = lift_ci(1000, 100, 1000, 130, alpha=0.2)
    assert narrower is not None
    assert lo < narrower.lo < lift < narrower.hi < hi


def test_lift_ci_coverage_seeded() -> None:
    rng = np.random.default_rng(99)
    p_c, p_t, n = 0.05, 0.06, 20_000
    true_lift = p_t / p_c - 1
    runs = 2000
    x_c = rng.binomial(n, p_c, size=runs)
    x_t = rng.binomial(n, p_t, size=runs)
    covered = 0
    for c, t in zip(x_c, x_t, strict=True):
        result = lift_ci(n, int(c), n, int(t))
        assert result is not None
        covered += result.lo <= true_lift <= result.hi
    assert 0.93 <= covered / runs <= 0.97


def test_lift_ci_undefined() -> None:
    assert lift_ci(1000, 0, 1000, 10) is None
    assert lift_ci(0, 0, 1000, 10) is None
    assert lift_ci(1000, 10, 0, 0) is None
    with pytest.raises(ValueError, match="alpha"):
        lift_ci(1000, 10, 1000, 10, alpha=0.0)


# --- Bayesian chance to beat control -------------------------------------------------------------


def _by_quadrature(n_c: int, x_c: int, n_t: int, x_t: int) -> float:
    post_c = stats.beta(1 + x_c, 1 + n_c - x_c)
    post_t = stats.beta(1 + x_t, 1 + n_t - x_t)
    lo = min(post_c.ppf(1e-12), post_t.ppf(1e-12))
    hi = max(post_c.isf(1e-12), post_t.isf(1e-12))
    value, _ = integrate.quad(lambda x: post_t.pdf(x) * post_c.cdf(x), lo, hi, epsabs=1e-12, limit=200)
    return float(value)


@pytest.mark.parametrize(
    ("n_c", "x_c", "n_t", "x_t"),
    [(100, 10, 100, 13), (1000, 100, 1000, 130), (50, 45, 60, 50), (200, 3, 180, 9), (500, 250, 520, 240)],
)
def test_chance_to_beat_control_matches_quadrature(n_c: int, x_c: int, n_t: int, x_t: int) -> None:
    got = chance_to_beat_control(n_c, x_c, n_t, x_t)
    assert got == pytest.approx(_by_quadrature(n_c, x_c, n_t, x_t), abs=1e-8)


def test_chance_to_beat_control_all_summation_paths_agree() -> None:
    a_c, b_c, a_t, b_t = 41, 160, 57, 144
    direct = _prob_b_beats_a(a_c, b_c, a_t, b_t)
    assert direct == pytest.approx(1 - _prob_b_beats_a(a_t, b_t, a_c, b_c), abs=1e-12)
    assert direct == pytest.approx(_prob_b_beats_a(b_t, a_t, b_c, a_c), abs=1e-12)
    assert direct == pytest.approx(1 - _prob_b_beats_a(b_c, a_c, b_t, a_t), abs=1e-12)


def test_chance_to_beat_control_monte_carlo_seeded() -> None:
    rng = np.random.default_rng(1)
    draws = 400_000  # standard error ≤ 0.0008
    for n_c, x_c, n_t, x_t in [(20_000, 1000, 20_000, 1080), (20_000, 19_000, 20_000, 18_950)]:
        c = rng.beta(1 + x_c, 1 + n_c - x_c, size=draws)
        t = rng.beta(1 + x_t, 1 + n_t - x_t, size=draws)
        assert chance_to_beat_control(n_c, x_c, n_t, x_t) == pytest.approx(float((t > c).mean()), abs=0.004)


def test_chance_to_beat_control_symmetry_and_edges() -> None:
    assert chance_to_beat_control(0, 0, 0, 0) == pytest.approx(0.5)
    assert chance_to_beat_control(1000, 100, 1000, 100) == pytest.approx(0.5, abs=1e-10)
    p = chance_to_beat_control(1000, 100, 1200, 130)
    assert chance_to_beat_control(1200, 130, 1000, 100) == pytest.approx(1 - p, abs=1e-10)
    assert chance_to_beat_control(100_000, 1000, 100_000, 2000) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="exceed"):
        chance_to_beat_control(10, 11, 10, 1)
