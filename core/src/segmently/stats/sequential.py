"""Always-valid sequential p-values: the figure that drives decisions.

The test is GrowthBook's (``gbstats`` 0.8.0, ``SequentialTwoSidedTTest``): the
asymptotic confidence sequence of Waudby-Smith et al., "Time-uniform central
limit theory and asymptotic confidence sequences" (arXiv:2103.06476v7), a
normal-mixture sequential probability ratio test. With ``θ̂`` the estimated
difference, ``V`` its estimated variance, ``N`` the visitors of both arms and
``η`` the tuning parameter (eq. 161 and 155)::

    ρ² = (-2 ln α + ln(1 - 2 ln α)) / η
    Λ  = (1 + Nρ²)^(-1/2) · exp( Nρ² · (θ̂² / V) / (2 (1 + Nρ²)) )
    p  = min(1, 1 / Λ)

``Λ`` is an e-value: under "no difference" the probability that ``1 / Λ``
ever drops to ``α``, at any number of looks, is at most ``α`` (asymptotically).
So the minimum of ``p`` over all looks so far (:func:`running_min`) is itself
a valid p-value, which is what lets the scheduler look every 60 seconds. The
confidence sequence (eq. 9) is ``θ̂ ± sqrt(V · 2 (1 + Nρ²) / (Nρ²) ·
ln(sqrt(1 + Nρ²) / α))``; it excludes 0 exactly when ``p < α``.

Like gbstats the difference is **relative** by default, ``θ̂ = m_t / m_c - 1``
with the delta-method variance ``V = v_t / (m_c² n_t) + m_t² v_c / (m_c⁴ n_c)``;
with ``relative=False`` it is ``θ̂ = m_t - m_c`` and ``V = v_t / n_t + v_c / n_c``.
A proportion's per-visitor variance is ``p (1 - p)``; a mean's is the
unbiased sample variance. ``η`` is the total sample size at which the
sequence is tightest: fix it at launch (changing it mid-test breaks the
guarantee) and leave it at 5000 unless the planned sample is known.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from segmently.stats.frequentist import _check_arm, _mean_var_from_sums

DEFAULT_TUNING = 5000.0
"""gbstats' default ``sequential_tuning_parameter`` (``η``, total visitors)."""

DEFAULT_ALPHA = 0.05
"""Level at which the mixture is tuned and the confidence sequence drawn."""


class SequentialTest(NamedTuple):
    """Result of the always-valid two-sided test (treatment vs control).

    Attributes:
        estimate: ``θ̂``, the relative (``m_t / m_c - 1``) or absolute difference.
        std_error: ``sqrt(V)``, the delta-method or Welch standard error of ``θ̂``.
        p_value: Always-valid p-value for this look, in [0, 1].
        lo: Lower bound of the ``1 - alpha`` confidence sequence.
        hi: Upper bound of the ``1 - alpha`` confidence sequence.
    """

    estimate: float
    std_error: float
    p_value: float
    lo: float
    hi: float


_UNINFORMATIVE = SequentialTest(0.0, 0.0, 1.0, 0.0, 0.0)
"""What gbstats returns when the test is undefined (zero baseline or zero variance)."""


def mixing_rho(alpha: float = DEFAULT_ALPHA, tuning: float = DEFAULT_TUNING) -> float:
    """Mixture scale ``ρ`` (eq. 161): the sequence is tightest at ``N = tuning``.

    Args:
        alpha: Level in (0, 1).
        tuning: ``η``, a positive total sample size.

    Returns:
        ``sqrt((-2 ln α + ln(1 - 2 ln α)) / η)``.

    Raises:
        ValueError: If ``alpha`` is not in (0, 1) or ``tuning`` is not positive.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError("alpha must lie in (0, 1)")
    if not tuning > 0.0:
        raise ValueError("tuning must be positive")
    two_log = -2.0 * math.log(alpha)
    return math.sqrt((two_log + math.log(two_log + 1.0)) / tuning)


def sequential_p_value(
    estimate: float,
    variance: float,
    total_n: int,
    *,
    tuning: float = DEFAULT_TUNING,
    alpha: float = DEFAULT_ALPHA,
) -> float:
    """Always-valid p-value of ``estimate`` against 0 (eq. 155), for any asymptotically normal estimate.

    Args:
        estimate: ``θ̂``, the estimated difference.
        variance: ``V``, the estimated variance of ``θ̂`` (already divided by the sample sizes).
        total_n: ``N``, observations in both arms together.
        tuning: ``η``, fixed at launch.
        alpha: Level the mixture is tuned for.

    Returns:
        ``min(1, 1 / Λ)``, computed in log space so huge effects give 0 rather than overflow.

    Raises:
        ValueError: If ``variance`` is not positive, ``total_n`` is negative, or a tuning input is invalid.
    """
    if not variance > 0.0:
        raise ValueError("variance must be positive")
    if total_n < 0:
        raise ValueError("total_n must be non-negative")
    n_rho2 = total_n * mixing_rho(alpha, tuning) ** 2
    log_p = 0.5 * math.log1p(n_rho2) - n_rho2 * (estimate * estimate / variance) / (2.0 * (1.0 + n_rho2))
    return min(1.0, math.exp(log_p))


def _sequential_test(
    mean_c: float,
    var_c: float,
    n_c: int,
    mean_t: float,
    var_t: float,
    n_t: int,
    *,
    relative: bool,
    tuning: float,
    alpha: float,
) -> SequentialTest:
    # gbstats' guards: a zero baseline or a zero variance in either arm gives the uninformative result.
    if mean_c == 0.0 or var_c <= 0.0 or var_t <= 0.0:
        return _UNINFORMATIVE
    if relative:
        estimate = (mean_t - mean_c) / mean_c
        variance = var_t / (mean_c**2 * n_t) + var_c * mean_t**2 / (mean_c**4 * n_c)
    else:
        estimate = mean_t - mean_c
        variance = var_t / n_t + var_c / n_c
    total_n = n_c + n_t
    p_value = sequential_p_value(estimate, variance, total_n, tuning=tuning, alpha=alpha)
    n_rho2 = total_n * mixing_rho(alpha, tuning) ** 2
    half_width = math.sqrt(
        variance * 2.0 * (n_rho2 + 1.0) / n_rho2 * math.log(math.sqrt(n_rho2 + 1.0) / alpha)
    )
    return SequentialTest(
        estimate, math.sqrt(variance), p_value, estimate - half_width, estimate + half_width
    )


def sequential_proportions_test(
    control_visitors: int,
    control_conversions: int,
    treatment_visitors: int,
    treatment_conversions: int,
    *,
    relative: bool = True,
    tuning: float = DEFAULT_TUNING,
    alpha: float = DEFAULT_ALPHA,
) -> SequentialTest:
    """Always-valid test of two conversion rates, as gbstats on two ``ProportionStatistic``.

    When control has no conversions, or either arm's rate is 0 or 1 (no
    variance), the test is undefined and the result is gbstats' uninformative
    one: every figure 0 except ``p_value = 1``.

    Args:
        control_visitors: Visitors assigned to control.
        control_conversions: Converting visitors in control.
        treatment_visitors: Visitors assigned to the treatment.
        treatment_conversions: Converting visitors in the treatment.
        relative: Test the relative lift ``p_t / p_c - 1`` (gbstats' default) rather than ``p_t - p_c``.
        tuning: ``η``, fixed at launch.
        alpha: Level of the confidence sequence and of the mixture tuning.

    Returns:
        Estimate, standard error, always-valid p-value and confidence sequence.

    Raises:
        ValueError: If a count is invalid or a tuning input is out of range.
    """
    _check_arm(control_visitors, control_conversions)
    _check_arm(treatment_visitors, treatment_conversions)
    mixing_rho(alpha, tuning)  # validates alpha and tuning even on the uninformative path
    if control_visitors == 0 or treatment_visitors == 0:
        return _UNINFORMATIVE
    p_c = control_conversions / control_visitors
    p_t = treatment_conversions / treatment_visitors
    return _sequential_test(
        p_c,
        p_c * (1.0 - p_c),
        control_visitors,
        p_t,
        p_t * (1.0 - p_t),
        treatment_visitors,
        relative=relative,
        tuning=tuning,
        alpha=alpha,
    )


def sequential_means_test(
    control_sum: float,
    control_sum_sq: float,
    control_n: int,
    treatment_sum: float,
    treatment_sum_sq: float,
    treatment_n: int,
    *,
    relative: bool = True,
    tuning: float = DEFAULT_TUNING,
    alpha: float = DEFAULT_ALPHA,
) -> SequentialTest:
    """Always-valid test of two means from sums and sums of squares (e.g. revenue per visitor).

    As gbstats on two ``SampleMeanStatistic``; undefined cases (control mean
    0, a zero variance) give the uninformative result of
    :func:`sequential_proportions_test`.

    Args:
        control_sum: Sum of the per-visitor values in control.
        control_sum_sq: Sum of their squares.
        control_n: Visitors in control (at least 2).
        treatment_sum: Sum of the per-visitor values in the treatment.
        treatment_sum_sq: Sum of their squares.
        treatment_n: Visitors in the treatment (at least 2).
        relative: Test ``m_t / m_c - 1`` (gbstats' default) rather than ``m_t - m_c``.
        tuning: ``η``, fixed at launch.
        alpha: Level of the confidence sequence and of the mixture tuning.

    Returns:
        Estimate, standard error, always-valid p-value and confidence sequence.

    Raises:
        ValueError: If a sample has fewer than 2 observations or a tuning input is out of range.
    """
    if control_n < 2 or treatment_n < 2:
        raise ValueError("each sample needs at least 2 observations")
    mixing_rho(alpha, tuning)
    mean_c, var_c = _mean_var_from_sums(control_sum, control_sum_sq, control_n)
    mean_t, var_t = _mean_var_from_sums(treatment_sum, treatment_sum_sq, treatment_n)
    return _sequential_test(
        mean_c, var_c, control_n, mean_t, var_t, treatment_n, relative=relative, tuning=tuning, alpha=alpha
    )


def running_min(previous: float | None, current: float) -> float:
    """Fold this look's sequential p-value into the stored minimum.

    The caller persists the result per arm and passes it back at the next
    look; ``None`` means no look has been stored yet.

    Args:
        previous: Minimum stored so far, or ``None``.
        current: This look's always-valid p-value.

    Returns:
        ``min(previous, current)``, or ``current`` when nothing is stored.

    Raises:
        ValueError: If a p-value is outside [0, 1] or NaN.
    """
    if not 0.0 <= current <= 1.0 or (previous is not None and not 0.0 <= previous <= 1.0):
        raise ValueError("p-values must lie in [0, 1]")
    return current if previous is None else min(previous, current)
