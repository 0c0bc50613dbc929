"""The statistics behind the leaderboard and the promotion gate (``rlhf.leaderboard``): Wilson
intervals, pairs still needed, head-to-head tallies, Bradley-Terry with bootstrap intervals."""

from __future__ import annotations

import time

import pytest

from rlhf.leaderboard import (
    LOSS,
    TIE,
    WIN,
    WinRate,
    bars,
    bradley_terry,
    head_to_head,
    pairs_to_decide,
    promotion_verdict,
    wilson_interval,
)


def test_wilson_interval_matches_the_textbook_figures() -> None:
    lower, upper = wilson_interval(103, 191)
    assert (round(lower, 4), round(upper, 4)) == (0.4685, 0.6085)
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least one trial"):
        wilson_interval(0, 0)


def test_ties_count_half_in_the_rate_and_the_interval() -> None:
    rate = WinRate(wins=3, losses=1, ties=2)
    assert rate.rate == pytest.approx(4 / 6)
    assert rate.interval == pytest.approx(wilson_interval(4, 6))
    assert rate.swapped() == WinRate(1, 3, 2)
    assert WinRate(0, 0, 0).interval is None and WinRate(0, 0, 0).lower is None


def test_pairs_to_decide() -> None:
    more = pairs_to_decide(103 / 191, 191, 0.5)
    assert more is not None and 300 < more < 500  # about 600 pairs in all at 54%
    total = 191 + more
    assert wilson_interval(103 / 191 * total, total)[0] > 0.5
    assert wilson_interval(103 / 191 * (total - 1), total - 1)[0] <= 0.5
    assert pairs_to_decide(0.9, 100, 0.5) == 0
    assert pairs_to_decide(0.5, 100, 0.5) is None
    below = pairs_to_decide(0.45, 100, 0.5)
    assert below is not None and below > 0  # decided against at that many


def test_the_verdict_says_why_in_plain_words() -> None:
    refused = promotion_verdict(
        WinRate(103, 88, 0), candidate="#5", champion="#1", min_lower_bound=0.5
    )
    assert not refused.passed
    assert "preferred #5 over #1 in 54% of 191 judged pairs" in refused.reason
    assert "the 95% interval 47%\u201361% includes 50%" in refused.reason
    assert refused.more_pairs is not None
    assert f"about {refused.more_pairs} more judged pairs would decide it" in refused.reason
    passed = promotion_verdict(
        WinRate(40, 10, 0), candidate="#5", champion="#1", min_lower_bound=0.5
    )
    assert passed.passed and "lies above 50%" in passed.reason
    worse = promotion_verdict(
        WinRate(40, 60, 0), candidate="#5", champion="#1", min_lower_bound=0.5
    )
    assert not worse.passed and "more judging would not change that" in worse.reason
    none = promotion_verdict(WinRate(0, 0, 0), candidate="#5", champion="#1", min_lower_bound=0.5)
    assert not none.passed and "judged no pair" in none.reason
    strict = promotion_verdict(
        WinRate(40, 10, 0), candidate="#5", champion="#1", min_lower_bound=0.7
    )
    assert not strict.passed and "includes 70%" in strict.reason


def test_head_to_head_counts_both_directions() -> None:
    tallies = head_to_head([(1, 2, WIN), (2, 1, WIN), (2, 1, LOSS), (1, 2, TIE), (1, 3, LOSS)])
    assert tallies[(1, 2)] == WinRate(2, 1, 1)
    assert tallies[(2, 1)] == WinRate(1, 2, 1)
    assert tallies[(3, 1)] == WinRate(1, 0, 0)
    assert (2, 3) not in tallies


def test_bradley_terry_orders_by_strength_with_finite_intervals() -> None:
    # 3 beats 2 beats 1 most of the time; 4 only ever won (its one judgment): finite all the same.
    outcomes = (
        [(3, 2, WIN)] * 30 + [(3, 2, LOSS)] * 10
        + [(2, 1, WIN)] * 30 + [(1, 2, WIN)] * 10 + [(1, 2, TIE)] * 10
        + [(4, 1, WIN)]
    )  # fmt: skip
    board = bradley_terry(outcomes)
    assert [s.checkpoint_id for s in board][:3] == [3, 2, 1] or board[0].checkpoint_id == 4
    by_id = {s.checkpoint_id: s for s in board}
    assert by_id[3].strength > by_id[2].strength > by_id[1].strength
    for s in board:
        assert s.lower <= s.strength <= s.upper
        assert all(abs(v) < 20 for v in (s.strength, s.lower, s.upper))
    assert sum(s.strength for s in board) == pytest.approx(0.0, abs=1e-9)
    assert by_id[4].upper - by_id[4].lower > by_id[2].upper - by_id[2].lower  # one judgment
    assert by_id[2].judged == 90 and by_id[4].judged == 1
    assert bradley_terry(outcomes) == board  # fixed seed: the same figures every time
    assert bradley_terry([]) == []


def test_a_tie_is_half_a_win_each_way() -> None:
    board = {s.checkpoint_id: s for s in bradley_terry([(1, 2, TIE)] * 20)}
    assert board[1].strength == pytest.approx(board[2].strength, abs=1e-6)


def test_bootstrap_of_thousands_of_judgments_is_fast() -> None:
    outcomes = [(i % 8, (i * 3 + 1) % 8, (WIN, LOSS, TIE)[i % 3]) for i in range(5000)]
    outcomes = [o for o in outcomes if o[0] != o[1]]
    started = time.perf_counter()
    board = bradley_terry(outcomes)
    assert len(board) == 8
    assert time.perf_counter() - started < 2.0  # about 0.1 s here; generous for a busy CI box


def test_bars_share_one_axis() -> None:
    rows = bars(bradley_terry([(1, 2, WIN)] * 8 + [(2, 1, WIN)] * 2))
    assert [round(b.point_pct) for b in rows] != [50, 50]
    for b in rows:
        assert 0 <= b.lower_pct <= b.point_pct <= b.lower_pct + b.width_pct <= 100.01
    assert rows[0].win_prob_vs_mean > 0.5 > rows[1].win_prob_vs_mean
