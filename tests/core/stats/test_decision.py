"""The winner rule (segmently.stats.decision) on hand-built looks."""

from __future__ import annotations

import pytest

from segmently.stats import (
    NO_WINNER_MESSAGE,
    SRM_MESSAGE,
    ArmCounts,
    decide,
    holm,
    lift_ci,
    naive_winner,
    pooled_z_test,
    sequential_proportions_test,
)

CONTROL = ArmCounts("control", 20_000, 1000)
STRONG = ArmCounts("b", 20_000, 1300)  # +30 %: sequential p ≈ 1e-6
STRONGER = ArmCounts("c", 20_000, 1400)
# +10 %: the fixed-horizon 95 % interval just excludes 0, the sequential p at this look is ≈ 0.85
MODEST = ArmCounts("d", 20_000, 1100)


def test_clear_winner_is_declared() -> None:
    decision = decide(CONTROL, [STRONG], [50, 50])
    assert decision.winner == "b"
    assert decision.message is None
    (arm,) = decision.arms
    assert arm.sequential == sequential_proportions_test(20_000, 1000, 20_000, 1300)
    assert arm.min_p == arm.sequential.p_value < 1e-5
    assert arm.lift == lift_ci(20_000, 1000, 20_000, 1300)
    assert arm.qualifies
    assert decision.srm.ok


def test_largest_lift_wins_among_qualifying_treatments() -> None:
    decision = decide(CONTROL, [STRONG, STRONGER, MODEST], [1, 1, 1, 1])
    assert [a.qualifies for a in decision.arms] == [True, True, False]
    assert decision.winner == "c"


def test_srm_blocks_the_winner() -> None:
    skewed = ArmCounts("b", 21_500, 1400)
    decision = decide(CONTROL, [skewed], [50, 50])
    assert not decision.srm.ok
    assert decision.srm.p_value < 0.001
    assert decision.arms[0].qualifies  # it would win on the numbers alone
    assert decision.winner is None
    assert decision.message == SRM_MESSAGE


def test_srm_uses_the_configured_weights() -> None:
    uneven = ArmCounts("control", 6000, 300)
    treatment = ArmCounts("b", 14_000, 900)
    assert decide(uneven, [treatment], [30, 70]).winner == "b"
    assert decide(uneven, [treatment], [50, 50]).message == SRM_MESSAGE


def test_fewer_than_ten_visitors_blocks_and_does_not_lower_the_minimum() -> None:
    control = ArmCounts("control", 9, 0)
    treatment = ArmCounts("b", 9, 9, previous_min_p=None)
    decision = decide(control, [treatment], [50, 50])
    assert decision.winner is None
    assert decision.message == NO_WINNER_MESSAGE
    assert decision.arms[0].min_p == 1.0
    # A stored minimum survives such a look unchanged.
    stored = decide(ArmCounts("control", 9, 1), [ArmCounts("b", 9, 8, previous_min_p=0.2)], [1, 1])
    assert stored.arms[0].min_p == 0.2


def test_a_small_stored_minimum_alone_does_not_make_a_winner() -> None:
    # The sequential evidence was there once, but today's lift interval straddles 0.
    flat = ArmCounts("b", 20_000, 1010, previous_min_p=0.001)
    decision = decide(CONTROL, [flat], [50, 50])
    (arm,) = decision.arms
    assert arm.min_p == 0.001
    assert arm.adjusted_p == 0.001
    assert arm.lift is not None
    assert arm.lift.lo < 0 < arm.lift.hi
    assert not arm.qualifies
    assert decision.winner is None
    assert decision.message == NO_WINNER_MESSAGE


def test_a_significant_loser_is_not_a_winner() -> None:
    worse = ArmCounts("b", 20_000, 700)
    decision = decide(CONTROL, [worse], [50, 50])
    assert decision.arms[0].min_p < 1e-5
    assert decision.winner is None


def test_running_minimum_is_used() -> None:
    # Today's sequential p alone (≈ 0.85) would not do; the stored minimum does.
    assert sequential_proportions_test(20_000, 1000, 20_000, 1100).p_value > 0.5
    assert decide(CONTROL, [MODEST], [50, 50]).winner is None
    remembered = MODEST._replace(previous_min_p=0.01)
    decision = decide(CONTROL, [remembered], [50, 50])
    assert decision.arms[0].min_p == 0.01
    assert decision.winner == "d"
    # A fresh, smaller p-value replaces the stored one.
    assert decide(CONTROL, [STRONG._replace(previous_min_p=0.01)], [50, 50]).arms[0].min_p < 1e-5


def test_holm_is_applied_across_treatments() -> None:
    alone = MODEST._replace(previous_min_p=0.03)
    assert decide(CONTROL, [alone], [1, 1]).winner == "d"
    sibling = ArmCounts("e", 20_000, 1000, previous_min_p=0.04)
    decision = decide(CONTROL, [alone, sibling], [1, 1, 1])
    assert [a.adjusted_p for a in decision.arms] == pytest.approx(holm([0.03, 0.04]))
    assert [a.adjusted_p for a in decision.arms] == pytest.approx([0.06, 0.06])
    assert decision.winner is None


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="treatment"):
        decide(CONTROL, [], [1])
    with pytest.raises(ValueError, match="same length"):
        decide(CONTROL, [STRONG], [1, 1, 1])
    with pytest.raises(ValueError, match="p-values"):
        decide(CONTROL, [STRONG._replace(previous_min_p=2.0)], [1, 1])


# --- the spec's rule -----------------------------------------------------------------------------


def test_naive_winner_is_the_spec_rule() -> None:
    control = ArmCounts("control", 1000, 100)
    b, c, d = ArmCounts("b", 1000, 130), ArmCounts("c", 1000, 125), ArmCounts("d", 1000, 60)
    winner = naive_winner(control, [c, b, d])
    assert winner is not None
    assert winner.key == "b"
    assert winner.confidence == pytest.approx(pooled_z_test(1000, 100, 1000, 130).confidence)
    # d's confidence is higher still (capped at 99.9 %), but it loses to control.
    assert pooled_z_test(1000, 100, 1000, 60).confidence > winner.confidence
    assert naive_winner(control, [d]) is None
    # Below 95 % confidence there is no winner.
    assert naive_winner(control, [c]) is None
    assert naive_winner(ArmCounts("control", 9, 0), [ArmCounts("b", 9, 9)]) is None


def test_naive_and_sequential_rules_differ_on_a_borderline_look() -> None:
    # 96.5 % confidence is a winner for the spec, not for the sequential rule at this sample size.
    control, treatment = ArmCounts("control", 1000, 100), ArmCounts("b", 1000, 130)
    assert naive_winner(control, [treatment]) is not None
    assert decide(control, [treatment], [1, 1]).winner is None
