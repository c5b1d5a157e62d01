"""The winner rule behind the banner, the auto-winner alert and auto-pause.

The spec's rule (:func:`naive_winner`) re-runs a fixed-horizon z-test at
every look and stops at the first 95 %, so with a look every 60 seconds an
A/A test ends with a "winner" far more often than 5 % of the time; see
``docs/statistics.md`` for the measured rates. :func:`decide` keeps the
spec's shape (best treatment, 95 %, the same message otherwise) but requires,
for a treatment to win:

* its running-minimum always-valid sequential p-value
  (:mod:`segmently.stats.sequential`), Holm-adjusted across the treatments,
  at most :data:`DECISION_ALPHA`; this is what bounds the false-winner rate
  whatever the number of looks and cells;
* the current 95 % lift interval (:func:`~segmently.stats.frequentist.lift_ci`)
  entirely above 0, so a stored minimum from an earlier look cannot crown a
  treatment the data no longer favours;
* a healthy traffic split (SRM p ≥ 0.001) and at least
  :data:`~segmently.stats.frequentist.MIN_VISITORS_PER_ARM` visitors in every arm.

Among the treatments that qualify, the one with the largest lift wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from segmently.stats.frequentist import (
    MIN_VISITORS_PER_ARM,
    LiftCI,
    SrmResult,
    holm,
    lift_ci,
    pooled_z_test,
    srm_chi_square,
)
from segmently.stats.sequential import (
    DEFAULT_TUNING,
    SequentialTest,
    running_min,
    sequential_proportions_test,
)

DECISION_ALPHA = 0.05
"""Family-wise level of the winner rule (Holm-adjusted sequential p-value)."""

NAIVE_CONFIDENCE = 95.0
"""The spec's winner threshold on the z-test confidence, in percent."""

NO_WINNER_MESSAGE = "No clear winner yet; collect more data"
"""Shown when no treatment qualifies (the spec's wording)."""

SRM_MESSAGE = "Sample ratio mismatch: traffic does not match the configured split, so no winner is declared"
"""Shown instead when the SRM check fails; winners and alerts are blocked."""


class ArmCounts(NamedTuple):
    """One arm's figures at this look.

    Attributes:
        key: Variant key.
        visitors: Visitors assigned so far.
        conversions: Converting visitors so far.
        previous_min_p: Running-minimum sequential p stored at the previous
            look, or ``None`` before the first (ignored for control).
    """

    key: str
    visitors: int
    conversions: int
    previous_min_p: float | None = None


class ArmDecision(NamedTuple):
    """One treatment's figures in a :class:`Decision`.

    Attributes:
        key: Variant key.
        sequential: This look's always-valid test against control (relative lift).
        min_p: Running minimum of the sequential p-value, for the caller to store.
        adjusted_p: ``min_p`` after Holm's correction across all treatments.
        lift: Relative lift and its 95 % interval on the current counts, or
            ``None`` when undefined (no control conversions).
        qualifies: Whether this treatment passes the sequential, lift and
            interval conditions (SRM and sample size are judged separately).
    """

    key: str
    sequential: SequentialTest
    min_p: float
    adjusted_p: float
    lift: LiftCI | None
    qualifies: bool


class Decision(NamedTuple):
    """Outcome of the winner rule at one look.

    Attributes:
        winner: Key of the winning treatment, or ``None``.
        message: ``None`` with a winner, else :data:`SRM_MESSAGE` or :data:`NO_WINNER_MESSAGE`.
        arms: One entry per treatment, in input order.
        srm: The sample-ratio-mismatch check over all arms.
    """

    winner: str | None
    message: str | None
    arms: tuple[ArmDecision, ...]
    srm: SrmResult


def decide(
    control: ArmCounts,
    treatments: Sequence[ArmCounts],
    expected_weights: Sequence[float],
    *,
    tuning: float = DEFAULT_TUNING,
) -> Decision:
    """Apply the winner rule to one look at an experiment.

    A look where any arm has fewer than ``MIN_VISITORS_PER_ARM`` visitors
    counts as ``p = 1`` in the running minimum (the normal approximation is
    not trusted that early, and skipping a look never hurts validity).

    Args:
        control: Control's counts.
        treatments: Each treatment's counts and stored running minimum.
        expected_weights: Configured traffic weights, control first then the
            treatments in order, in any unit.
        tuning: The sequential tuning parameter fixed when the experiment launched.

    Returns:
        The winner (or why there is none), per-treatment figures including the
        new running minima to store, and the SRM check.

    Raises:
        ValueError: If there is no treatment, the weights do not match the
            arms, a count is invalid, or a stored minimum is not a p-value.
    """
    if not treatments:
        raise ValueError("need at least one treatment")
    arms = (control, *treatments)
    srm = srm_chi_square([arm.visitors for arm in arms], expected_weights)
    enough = min(arm.visitors for arm in arms) >= MIN_VISITORS_PER_ARM

    tests: list[SequentialTest] = []
    minima: list[float] = []
    lifts: list[LiftCI | None] = []
    for arm in treatments:
        test = sequential_proportions_test(
            control.visitors, control.conversions, arm.visitors, arm.conversions, tuning=tuning
        )
        tests.append(test)
        minima.append(running_min(arm.previous_min_p, test.p_value if enough else 1.0))
        lifts.append(lift_ci(control.visitors, control.conversions, arm.visitors, arm.conversions))
    adjusted = holm(minima)

    decisions = tuple(
        ArmDecision(
            key=arm.key,
            sequential=test,
            min_p=min_p,
            adjusted_p=adj,
            lift=lift,
            # lo > 0: the interval excludes 0 on the positive side, so the lift is positive too.
            qualifies=adj <= DECISION_ALPHA and lift is not None and lift.lo > 0.0,
        )
        for arm, test, min_p, adj, lift in zip(treatments, tests, minima, adjusted, lifts, strict=True)
    )
    if not srm.ok:
        return Decision(None, SRM_MESSAGE, decisions, srm)
    candidates = [(d.lift.lift, d.key) for d in decisions if d.qualifies and d.lift is not None]
    if not enough or not candidates:
        return Decision(None, NO_WINNER_MESSAGE, decisions, srm)
    _, best = max(candidates, key=lambda candidate: candidate[0])  # the first on a tie
    return Decision(best, None, decisions, srm)


class NaiveWinner(NamedTuple):
    """The spec's winner, kept for comparison and for the readout.

    Attributes:
        key: Variant key.
        confidence: Its pooled z-test confidence, in percent.
    """

    key: str
    confidence: float


def naive_winner(control: ArmCounts, treatments: Sequence[ArmCounts]) -> NaiveWinner | None:
    """The spec's "Winner Determination Logic", verbatim; never used for decisions.

    Among the treatments whose conversion rate beats control's, take the one
    with the highest pooled z-test confidence (:func:`pooled_z_test`, 0 below
    10 visitors per arm, capped at 99.9); it wins if that confidence is at
    least :data:`NAIVE_CONFIDENCE`. Ties go to the earlier treatment.

    Args:
        control: Control's counts.
        treatments: Each treatment's counts (``previous_min_p`` is ignored).

    Returns:
        The winner and its confidence, or ``None``.

    Raises:
        ValueError: If a count is invalid.
    """
    best: NaiveWinner | None = None
    for arm in treatments:
        confidence = pooled_z_test(
            control.visitors, control.conversions, arm.visitors, arm.conversions
        ).confidence
        beats = (
            control.visitors > 0
            and arm.visitors > 0
            and arm.conversions / arm.visitors > control.conversions / control.visitors
        )
        if beats and (best is None or confidence > best.confidence):
            best = NaiveWinner(arm.key, confidence)
    return best if best is not None and best.confidence >= NAIVE_CONFIDENCE else None
