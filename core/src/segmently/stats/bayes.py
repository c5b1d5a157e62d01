"""Bayesian chance to beat control, for display only (never for decisions).

Each arm's conversion rate gets a uniform ``Beta(1, 1)`` prior, so its
posterior is ``Beta(1 + conversions, 1 + visitors - conversions)``. The
probability that the treatment's rate exceeds control's is computed exactly
(no Monte Carlo) with the closed form for two Beta variables whose summed
parameter is an integer (Evan Miller, "Formulas for Bayesian A/B Testing")::

    P(B > A) = Σ_{i=0}^{α_B - 1} B(α_A + i, β_A + β_B)
                                 / ((β_B + i) B(1 + i, β_B) B(α_A, β_A))

The sum has ``α_B`` terms; by symmetry (``P(B > A) = 1 - P(A > B)`` and
``p ↦ 1 - p`` swapping α and β) it can run over whichever of the four
parameters is smallest, usually the conversions, so it stays cheap. Terms are
evaluated in log space with ``scipy.special.betaln``; the result is accurate
to about 1e-10. Past :data:`EXACT_TERMS_LIMIT` terms the normal approximation
of the two posteriors is used instead (its error is then far below display
precision).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special  # type: ignore[import-untyped]

EXACT_TERMS_LIMIT = 2_000_000
"""Largest number of terms summed exactly before falling back to a normal approximation."""


def _prob_b_beats_a(alpha_a: int, beta_a: int, alpha_b: int, beta_b: int) -> float:
    """P(X_B > X_A) for X_A ~ Beta(alpha_a, beta_a), X_B ~ Beta(alpha_b, beta_b); sums alpha_b terms."""
    i = np.arange(alpha_b, dtype=np.float64)
    log_terms = (
        special.betaln(alpha_a + i, beta_a + beta_b)
        - np.log(beta_b + i)
        - special.betaln(1.0 + i, beta_b)
        - special.betaln(alpha_a, beta_a)
    )
    return float(np.exp(log_terms).sum())


def _normal_approximation(alpha_a: int, beta_a: int, alpha_b: int, beta_b: int) -> float:
    def moments(a: int, b: int) -> tuple[float, float]:
        total = float(a + b)
        return a / total, a * b / (total * total * (total + 1.0))

    mean_a, var_a = moments(alpha_a, beta_a)
    mean_b, var_b = moments(alpha_b, beta_b)
    return float(special.ndtr((mean_b - mean_a) / math.sqrt(var_a + var_b)))


def chance_to_beat_control(
    control_visitors: int,
    control_conversions: int,
    treatment_visitors: int,
    treatment_conversions: int,
) -> float:
    """Posterior probability that the treatment's conversion rate beats control's.

    Args:
        control_visitors: Visitors assigned to control.
        control_conversions: Converting visitors in control.
        treatment_visitors: Visitors assigned to the treatment.
        treatment_conversions: Converting visitors in the treatment.

    Returns:
        A probability in [0, 1]; 0.5 when both arms are empty or identical.

    Raises:
        ValueError: If a count is negative or conversions exceed visitors.
    """
    for visitors, conversions in (
        (control_visitors, control_conversions),
        (treatment_visitors, treatment_conversions),
    ):
        if visitors < 0 or conversions < 0:
            raise ValueError("visitors and conversions must be non-negative")
        if conversions > visitors:
            raise ValueError("conversions cannot exceed visitors")
    a_c, b_c = 1 + control_conversions, 1 + control_visitors - control_conversions
    a_t, b_t = 1 + treatment_conversions, 1 + treatment_visitors - treatment_conversions
    smallest = min(a_c, b_c, a_t, b_t)
    if smallest > EXACT_TERMS_LIMIT:
        probability = _normal_approximation(a_c, b_c, a_t, b_t)
    elif smallest == a_t:
        probability = _prob_b_beats_a(a_c, b_c, a_t, b_t)
    elif smallest == a_c:
        probability = 1.0 - _prob_b_beats_a(a_t, b_t, a_c, b_c)
    elif smallest == b_c:
        # 1 - rate is Beta(β, α): P(rate_t > rate_c) = P(1 - rate_c > 1 - rate_t).
        probability = _prob_b_beats_a(b_t, a_t, b_c, a_c)
    else:
        probability = 1.0 - _prob_b_beats_a(b_c, a_c, b_t, a_t)
    return min(max(probability, 0.0), 1.0)
