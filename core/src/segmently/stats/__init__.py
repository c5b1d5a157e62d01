"""Pure statistics on sufficient statistics (counts, sums, sums of squares).

Nothing here touches the database: callers aggregate per variant and pass the
totals in. See ARCHITECTURE.md §5 and docs/statistics.md for which figure
drives which decision: the readout shows the spec's z-test confidence, while
winners, alerts and auto-pause go through :func:`decide`.
"""

from segmently.stats.bayes import chance_to_beat_control
from segmently.stats.decision import (
    DECISION_ALPHA,
    NAIVE_CONFIDENCE,
    NO_WINNER_MESSAGE,
    SRM_MESSAGE,
    ArmCounts,
    ArmDecision,
    Decision,
    NaiveWinner,
    decide,
    naive_winner,
)
from segmently.stats.frequentist import (
    CONFIDENCE_CAP,
    MIN_VISITORS_PER_ARM,
    SRM_ALPHA,
    LiftCI,
    SrmResult,
    WelchTTest,
    ZTest,
    holm,
    lift_ci,
    pooled_z_test,
    srm_chi_square,
    welch_t_test,
    welch_t_test_from_sums,
)
from segmently.stats.sequential import (
    DEFAULT_ALPHA,
    DEFAULT_TUNING,
    SequentialTest,
    mixing_rho,
    running_min,
    sequential_means_test,
    sequential_p_value,
    sequential_proportions_test,
)

__all__ = [
    "CONFIDENCE_CAP",
    "DECISION_ALPHA",
    "DEFAULT_ALPHA",
    "DEFAULT_TUNING",
    "MIN_VISITORS_PER_ARM",
    "NAIVE_CONFIDENCE",
    "NO_WINNER_MESSAGE",
    "SRM_ALPHA",
    "SRM_MESSAGE",
    "ArmCounts",
    "ArmDecision",
    "Decision",
    "LiftCI",
    "NaiveWinner",
    "SequentialTest",
    "SrmResult",
    "WelchTTest",
    "ZTest",
    "chance_to_beat_control",
    "decide",
    "holm",
    "lift_ci",
    "mixing_rho",
    "naive_winner",
    "pooled_z_test",
    "running_min",
    "sequential_means_test",
    "sequential_p_value",
    "sequential_proportions_test",
    "srm_chi_square",
    "welch_t_test",
    "welch_t_test_from_sums",
]
