"""``rlhf.loop.rule_trend``, ``champion_after`` and ``table_row``: the benchmark's verdicts on a
loop's rounds, on hand-made figures (no training)."""

from __future__ import annotations

from rlhf.loop import (
    RoundFigures,
    champion_after,
    champion_line,
    human_cell,
    rule_interval,
    rule_trend,
    table_row,
)


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


def _promoted(*promoted_prev: bool) -> list[RoundFigures]:
    figures = _rounds(*[0.6] * len(promoted_prev))
    for row, promoted in zip(figures, promoted_prev, strict=True):
        row.promoted_prev = promoted
    return figures


def test_the_champion_is_the_last_promoted_rounds_candidate() -> None:
    # row N's promoted_prev says whether round N-1's candidate was promoted before round N ran
    assert champion_after(_promoted(False, True, False)) == 1
    assert champion_after(_promoted(False, True, True)) == 2
    assert champion_after(_promoted(False, False, False)) == 0  # the base model
    # the last round's candidate is not decided within the loop ...
    assert champion_after(_promoted(False, False, True)) == 2
    assert champion_after(_promoted(False)) == 0
    assert champion_after([]) == 0


def test_a_round_held_back_at_the_gate_says_why() -> None:
    held, open_ = _rounds(0.78, 0.78)
    held.blocked = ("fluency_collapse",)
    assert table_row(held).endswith("held back at the gate: fluency_collapse")
    assert "held back" not in table_row(open_)


def _decided(promoted: bool, *, blocked: tuple[str, ...] = ()) -> list[RoundFigures]:
    figures = _promoted(False, True, False)
    last = figures[-1]
    last.decided, last.human_win_rate, last.human_pairs = 200, 0.66, 190
    last.human_interval, last.promoted, last.blocked = (0.59, 0.72), promoted, blocked
    last.human_vs = 1
    return figures


def test_the_last_candidate_decided_after_the_loop() -> None:
    # ... unless the loop judges its batch afterwards (LoopSettings.decide) and the gate passes it
    assert champion_after(_decided(True)) == 3
    assert champion_after(_decided(False)) == 1
    promoted = champion_line(_decided(True))
    assert promoted.startswith("champion after the loop: round 3;")
    assert promoted.endswith(
        "judged after the loop (200 judgments): humans prefer it in 66.0% (59-72) of 190 vs "
        "round 1, promoted"
    )
    refused = champion_line(_decided(False, blocked=("fluency_collapse",)))
    assert refused.startswith("champion after the loop: round 1;")
    assert refused.endswith("not promoted (the gate holds it back: fluency_collapse)")
    assert "not decided yet" not in refused


def test_the_human_cell() -> None:
    row = _decided(True)[-1]
    assert human_cell(row) == "66.0% (59-72) of 190 vs round 1"
    row.human_interval, row.human_vs = None, 0
    assert human_cell(row) == "66.0% of 190 vs the base model"
    assert human_cell(_rounds(0.6)[0]) == "—"
