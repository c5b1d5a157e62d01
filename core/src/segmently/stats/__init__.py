"""Pure statistics on sufficient statistics (counts, sums, sums of squares).

Nothing here touches the database: callers aggregate per variant and pass the
totals in. See ARCHITECTURE.md §5 for which figure drives which decision.
"""

from segmently.stats.bayes import chance_to_beat_control
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

__all__ = [
    "CONFIDENCE_CAP",
    "MIN_VISITORS_PER_ARM",
    "SRM_ALPHA",
    "LiftCI",
    "SrmResult",
    "WelchTTest",
    "ZTest",
    "chance_to_beat_control",
    "holm",
    "lift_ci",
    "pooled_z_test",
    "srm_chi_square",
    "welch_t_test",
    "welch_t_test_from_sums",
]
