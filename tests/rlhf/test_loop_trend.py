"""``rlhf.loop.rule_trend``: the benchmark's verdict on a loop's rule win-rates vs base, on
hand-made figures (no training)."""

from __future__ import annotations

from rlhf.loop import RoundFigures, rule_interval, rule_trend


def _rounds(*rates: float | None, pairs: int = 320) -> list[RoundFigures]:
    return [
        RoundFigures(
            number=i + 1,
            method="dpo",
            status="succeeded",
            judged=200,
            labels=200,
            preferences=150,
            reward_accuracy=None,
            rm_win_rate_vs_parent=None,
            rule_win_rate_vs_base=rate,
            human_win_rate_prev=None,
            promoted_prev=False,
            rule_pairs=pairs,
        )
        for i, rate in enumerate(rates)
    ]


def test_a_flat_loop_rises_but_not_beyond_noise() -> None:
    # measured under `correct`: 49.7 -> 49.8 -> 50.0% on 320 pairs each
    assert rule_trend(_rounds(0.497, 0.498, 0.500), 3) == (True, False)


def test_a_real_gain_is_beyond_both_intervals() -> None:
    figures = _rounds(0.523, 0.680, 0.736)  # correct_polite, seed 0
    first, last = rule_interval(figures[0]), rule_interval(figures[-1])
    assert first is not None and last is not None and last[0] > first[1]
    assert rule_trend(figures, 3) == (True, True)


def test_a_fall_or_a_missing_round_is_no_rise() -> None:
    # polite: flat at the top, and 73 -> 78% on 320 pairs each is within the intervals
    assert rule_trend(_rounds(0.730, 0.780, 0.780), 3) == (False, False)
    assert rule_trend(_rounds(0.506, 0.691, 0.511), 3) == (False, False)
    assert rule_trend(_rounds(0.5, 0.6), 3) == (False, False)  # a round failed
    assert rule_trend(_rounds(0.5, None, 0.7), 3) == (False, False)
    assert rule_trend(_rounds(0.7), 1) == (True, False)  # one round: nothing to compare
