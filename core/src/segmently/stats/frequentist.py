"""Frequentist tests on sufficient statistics.

Every function is pure and takes aggregated figures only (visitor and
conversion counts, means and variances, or sums and sums of squares), so a
results query costs O(variants) here whatever the number of events.

Tail probabilities come from ``scipy.special`` (``ndtr``, ``stdtr``,
``chdtrc``), the same routines ``scipy.stats`` and ``statsmodels`` use, which
is what lets the oracle tests agree to 1e-9.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from scipy import special  # type: ignore[import-untyped]

CONFIDENCE_CAP = 99.9
"""Upper bound of the spec's confidence readout, in percent."""

MIN_VISITORS_PER_ARM = 10
"""Below this many visitors in either arm the spec's confidence readout is 0."""

SRM_ALPHA = 0.001
"""A sample-ratio-mismatch p-value below this blocks winners and is flagged."""


class ZTest(NamedTuple):
    """Result of the spec's pooled two-proportion z-test (treatment vs control).

    Attributes:
        z: The z statistic, positive when the treatment converts better.
        p_value: Two-sided p-value.
        confidence: ``(1 - p_value) * 100`` capped at :data:`CONFIDENCE_CAP`,
            and 0 when either arm has fewer than :data:`MIN_VISITORS_PER_ARM` visitors.
    """

    z: float
    p_value: float
    confidence: float


class WelchTTest(NamedTuple):
    """Result of Welch's unequal-variance t-test (b vs a).

    Attributes:
        t: The t statistic, positive when ``b``'s mean is larger.
        df: Welch–Satterthwaite degrees of freedom.
        p_value: Two-sided p-value.
    """

    t: float
    df: float
    p_value: float


class SrmResult(NamedTuple):
    """Result of the sample-ratio-mismatch χ² goodness-of-fit check.

    Attributes:
        statistic: Pearson's χ² statistic.
        p_value: Upper-tail p-value with ``k - 1`` degrees of freedom.
        ok: ``p_value >= SRM_ALPHA``; ``False`` blocks a winner.
    """

    statistic: float
    p_value: float
    ok: bool


class LiftCI(NamedTuple):
    """Relative lift of treatment over control with a confidence interval.

    Attributes:
        lift: ``p_t / p_c - 1`` (0.3 means +30 %).
        lo: Lower bound of the interval.
        hi: Upper bound of the interval.
    """

    lift: float
    lo: float
    hi: float


def _check_arm(visitors: int, conversions: int) -> None:
    if visitors < 0 or conversions < 0:
        raise ValueError("visitors and conversions must be non-negative")
    if conversions > visitors:
        raise ValueError("conversions cannot exceed visitors")


def _two_sided_normal_p(z: float) -> float:
    return float(2.0 * special.ndtr(-abs(z)))


def pooled_z_test(
    control_visitors: int,
    control_conversions: int,
    treatment_visitors: int,
    treatment_conversions: int,
) -> ZTest:
    """Pooled two-proportion z-test: the spec's confidence readout.

    ``z = (p_t - p_c) / sqrt(p (1 - p) (1/n_c + 1/n_t))`` with ``p`` the pooled
    rate, and a two-sided normal p-value; identical to statsmodels'
    ``proportions_ztest([x_t, x_c], [n_t, n_c])``. This is a display figure:
    decisions use the sequential p-value.

    When an arm is empty or the pooled rate is 0 or 1 (no variance) the test is
    undefined and the result is ``z = 0``, ``p_value = 1``, ``confidence = 0``.

    Args:
        control_visitors: Visitors assigned to control.
        control_conversions: Converting visitors in control.
        treatment_visitors: Visitors assigned to the treatment.
        treatment_conversions: Converting visitors in the treatment.

    Returns:
        The z statistic, two-sided p-value and confidence percent.

    Raises:
        ValueError: If a count is negative or conversions exceed visitors.
    """
    _check_arm(control_visitors, control_conversions)
    _check_arm(treatment_visitors, treatment_conversions)
    if control_visitors == 0 or treatment_visitors == 0:
        return ZTest(0.0, 1.0, 0.0)
    n_c, n_t = float(control_visitors), float(treatment_visitors)
    pooled = (control_conversions + treatment_conversions) / (n_c + n_t)
    variance = pooled * (1.0 - pooled) * (1.0 / n_c + 1.0 / n_t)
    if variance <= 0.0:
        return ZTest(0.0, 1.0, 0.0)
    z = (treatment_conversions / n_t - control_conversions / n_c) / math.sqrt(variance)
    p_value = _two_sided_normal_p(z)
    if min(control_visitors, treatment_visitors) < MIN_VISITORS_PER_ARM:
        confidence = 0.0
    else:
        confidence = min((1.0 - p_value) * 100.0, CONFIDENCE_CAP)
    return ZTest(z, p_value, confidence)


def welch_t_test(mean_a: float, var_a: float, n_a: int, mean_b: float, var_b: float, n_b: int) -> WelchTTest:
    """Welch's t-test from means and sample variances (``ddof = 1``).

    Matches ``scipy.stats.ttest_ind_from_stats(mean_b, sqrt(var_b), n_b,
    mean_a, sqrt(var_a), n_a, equal_var=False)``. Used for revenue per visitor
    (``a`` = control, ``b`` = treatment).

    When both variances are 0 the test is degenerate: ``t = 0`` and
    ``p_value = 1`` if the means are equal, else ``t = ±inf`` and
    ``p_value = 0``; ``df`` is then ``n_a + n_b - 2``.

    Args:
        mean_a: Mean of sample ``a``.
        var_a: Unbiased sample variance of ``a``.
        n_a: Size of ``a`` (at least 2).
        mean_b: Mean of sample ``b``.
        var_b: Unbiased sample variance of ``b``.
        n_b: Size of ``b`` (at least 2).

    Returns:
        The t statistic, Welch–Satterthwaite degrees of freedom and two-sided p-value.

    Raises:
        ValueError: If a sample has fewer than 2 observations or a variance is negative.
    """
    if n_a < 2 or n_b < 2:
        raise ValueError("each sample needs at least 2 observations")
    if var_a < 0 or var_b < 0:
        raise ValueError("variances must be non-negative")
    se2_a = var_a / n_a
    se2_b = var_b / n_b
    se2 = se2_a + se2_b
    diff = mean_b - mean_a
    if se2 <= 0.0:
        df = float(n_a + n_b - 2)
        if diff == 0:
            return WelchTTest(0.0, df, 1.0)
        return WelchTTest(math.copysign(math.inf, diff), df, 0.0)
    t = diff / math.sqrt(se2)
    df = se2 * se2 / (se2_a * se2_a / (n_a - 1) + se2_b * se2_b / (n_b - 1))
    p_value = float(2.0 * special.stdtr(df, -abs(t)))
    return WelchTTest(t, df, p_value)


def _mean_var_from_sums(total: float, total_sq: float, n: int) -> tuple[float, float]:
    mean = total / n
    # Sum of squared deviations; clamp rounding noise below zero.
    ss = max(total_sq - total * mean, 0.0)
    return mean, ss / (n - 1)


def welch_t_test_from_sums(
    sum_a: float, sum_sq_a: float, n_a: int, sum_b: float, sum_sq_b: float, n_b: int
) -> WelchTTest:
    """Welch's t-test from sums and sums of squares (what SQL aggregates give).

    Per-visitor values (e.g. revenue, 0 for visitors who did not buy) are
    reduced to ``n``, ``Σx`` and ``Σx²``; mean and unbiased variance are
    derived from them and passed to :func:`welch_t_test`. The one-pass
    variance formula loses precision when the mean is huge relative to the
    spread, which revenue figures are not.

    Args:
        sum_a: Sum of the values in ``a``.
        sum_sq_a: Sum of the squared values in ``a``.
        n_a: Size of ``a`` (at least 2).
        sum_b: Sum of the values in ``b``.
        sum_sq_b: Sum of the squared values in ``b``.
        n_b: Size of ``b`` (at least 2).

    Returns:
        As :func:`welch_t_test`.

    Raises:
        ValueError: If a sample has fewer than 2 observations.
    """
    if n_a < 2 or n_b < 2:
        raise ValueError("each sample needs at least 2 observations")
    mean_a, var_a = _mean_var_from_sums(sum_a, sum_sq_a, n_a)
    mean_b, var_b = _mean_var_from_sums(sum_b, sum_sq_b, n_b)
    return welch_t_test(mean_a, var_a, n_a, mean_b, var_b, n_b)


def srm_chi_square(observed: Sequence[int], expected_weights: Sequence[float]) -> SrmResult:
    """Sample-ratio-mismatch check: Pearson χ² goodness of fit.

    Expected counts are ``total * w_i / Σw``; the p-value is the upper tail of
    χ² with ``k - 1`` degrees of freedom, as ``scipy.stats.chisquare``. With
    no visitors yet the check passes (statistic 0, p-value 1).

    Args:
        observed: Visitors per variant.
        expected_weights: Traffic weights per variant, in any unit (percent or fraction).

    Returns:
        The statistic, p-value and whether the split looks healthy (``p >= 0.001``).

    Raises:
        ValueError: On fewer than 2 variants, mismatched lengths, negative
            counts or non-positive weights.
    """
    if len(observed) != len(expected_weights):
        raise ValueError("observed and expected_weights must have the same length")
    if len(observed) < 2:
        raise ValueError("need at least 2 variants")
    if any(o < 0 for o in observed):
        raise ValueError("observed counts must be non-negative")
    if any(not w > 0 for w in expected_weights):
        raise ValueError("expected weights must be positive")
    total = float(sum(observed))
    if total == 0:
        return SrmResult(0.0, 1.0, True)
    weight_sum = math.fsum(expected_weights)
    statistic = 0.0
    for count, weight in zip(observed, expected_weights, strict=True):
        expected = total * weight / weight_sum
        statistic += (count - expected) ** 2 / expected
    p_value = float(special.chdtrc(len(observed) - 1, statistic))
    return SrmResult(statistic, p_value, p_value >= SRM_ALPHA)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni step-down adjusted p-values, in the input order.

    Sorted ascending, the i-th (0-based) of ``m`` p-values becomes
    ``max_{j <= i} min(1, (m - j) p_(j))``; reject where the adjusted value is
    ``<= alpha``. Same as statsmodels ``multipletests(method="holm")[1]``.

    Args:
        p_values: Raw p-values, each in [0, 1].

    Returns:
        Adjusted p-values, same length and order as the input.

    Raises:
        ValueError: If a p-value is outside [0, 1] or NaN.
    """
    if any(not 0.0 <= p <= 1.0 for p in p_values):
        raise ValueError("p-values must lie in [0, 1]")
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def lift_ci(
    control_visitors: int,
    control_conversions: int,
    treatment_visitors: int,
    treatment_conversions: int,
    alpha: float = 0.05,
) -> LiftCI | None:
    """Relative lift ``p_t / p_c - 1`` with a delta-method confidence interval.

    Method: with ``p_c``, ``p_t`` the observed rates and the binomial variances
    ``v_c = p_c (1 - p_c) / n_c``, ``v_t = p_t (1 - p_t) / n_t`` (independent
    arms), the first-order Taylor expansion of ``R = p_t / p_c`` gives
    ``Var(R) ≈ v_t / p_c² + p_t² v_c / p_c⁴``. The interval is the symmetric
    Wald interval ``lift ± z_{1-alpha/2} sqrt(Var(R))`` on the lift scale
    (unbounded above; it may extend below -1 on tiny samples, which reads as
    "no information"). Like any Wald interval it is only trustworthy once each
    arm has a few dozen conversions.

    Args:
        control_visitors: Visitors assigned to control.
        control_conversions: Converting visitors in control.
        treatment_visitors: Visitors assigned to the treatment.
        treatment_conversions: Converting visitors in the treatment.
        alpha: Two-sided level: 0.05 gives a 95 % interval.

    Returns:
        ``(lift, lo, hi)``, or ``None`` when the lift is undefined (an empty
        arm or no control conversions).

    Raises:
        ValueError: If a count is invalid or ``alpha`` is not in (0, 1).
    """
    _check_arm(control_visitors, control_conversions)
    _check_arm(treatment_visitors, treatment_conversions)
    if not 0.0 < alpha < 1.0:
        raise ValueError("alpha must lie in (0, 1)")
    if control_visitors == 0 or treatment_visitors == 0 or control_conversions == 0:
        return None
    p_c = control_conversions / control_visitors
    p_t = treatment_conversions / treatment_visitors
    v_c = p_c * (1.0 - p_c) / control_visitors
    v_t = p_t * (1.0 - p_t) / treatment_visitors
    lift = p_t / p_c - 1.0
    se = math.sqrt(v_t / p_c**2 + p_t**2 * v_c / p_c**4)
    z = float(special.ndtri(1.0 - alpha / 2.0))
    return LiftCI(lift, lift - z * se, lift + z * se)
