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


def test_ties_count_half_in_the_rate_and_narrow_the_interval() -> None:
    rate = WinRate(wins=3, losses=1, ties=2)
    assert rate.rate == pytest.approx(4 / 6)
    # By hand: d = 3/4 decisive wins, Wilson (0.3006, 0.9544); t = 2/6 ties, Wilson
    # (0.0968, 0.7000); bounds 0.5 + (1 - t)(d - 0.5) at the extreme corners.
    lower = 0.5 + (1 - 0.096771) * (0.300642 - 0.5)
    upper = 0.5 + (1 - 0.096771) * (0.954413 - 0.5)
    assert rate.interval == pytest.approx((lower, upper), abs=1e-5)
    assert rate.interval == pytest.approx((0.31993, 0.91044), abs=1e-5)
    assert rate.swapped() == WinRate(1, 3, 2)
    assert WinRate(0, 0, 0).interval is None and WinRate(0, 0, 0).lower is None


def test_without_ties_the_interval_is_wilsons_on_the_side_facing_half() -> None:
    assert WinRate(103, 88, 0).interval == pytest.approx(wilson_interval(103, 191))
    assert WinRate(88, 103, 0).interval == pytest.approx(wilson_interval(88, 191))
    lower, upper = WinRate(40, 10, 0).interval or (0, 0)
    assert upper == pytest.approx(wilson_interval(40, 50)[1])
    # the far bound allows for the ties a sample of 50 could have missed (t up to 7%)
    assert lower == pytest.approx(0.5 + (1 - wilson_interval(0, 50)[1]) * (0.66963 - 0.5), 1e-4)
    assert 0.5 < lower < wilson_interval(40, 50)[0]


def test_many_ties_no_longer_hide_a_preference_nor_invent_one() -> None:
    """120 decisive judgments 75-45 and 70 ties: the sign test says better (p about 0.008);
    Wilson's interval over all 190 scored each tie as a coin flip and was twice as wide."""
    tied = WinRate(75, 45, 70)
    assert tied.rate == pytest.approx(110 / 190)
    assert tied.lower == pytest.approx(0.52007, abs=1e-5)
    assert tied.lower is not None and tied.lower > wilson_interval(110, 190)[0]
    # 50% is cleared exactly when Wilson's interval of the decisive wins clears it
    for wins, losses, ties in ((75, 45, 70), (70, 50, 70), (7, 1, 300), (5, 1, 300), (0, 0, 50)):
        decisive = wilson_interval(wins, wins + losses)[0] if wins + losses else 0.0
        lower = WinRate(wins, losses, ties).lower
        assert lower is not None and (lower > 0.5) == (decisive > 0.5)
    only_ties = WinRate(0, 0, 100).interval or (0, 0)
    assert only_ties[0] < 0.5 < only_ties[1]  # no evidence either way, and the rate inside
    assert WinRate(0, 0, 1).interval == pytest.approx((0.10327, 0.89673), abs=1e-5)
    heavy = WinRate(100, 0, 1000)  # a sure but small edge: the interval holds the rate
    assert heavy.lower is not None and heavy.upper is not None
    assert heavy.lower < heavy.rate < heavy.upper  # type: ignore[operator]


def test_under_no_preference_the_gate_rarely_promotes_and_finds_a_real_one_sooner() -> None:
    """Simulated judging, 190 pairs, 40% ties: with wins as likely as losses the 95% lower bound
    clears 50% in at most ~2.5% of draws; with a real edge (wins 36%, losses 24%) it does so more
    often than Wilson's interval over all judgments did."""
    import random

    generator = random.Random(7)

    def clears(p_win: float, p_loss: float, draws: int = 2000) -> tuple[float, float]:
        new = old = 0
        for _ in range(draws):
            tally = [0, 0, 0]
            for _ in range(190):
                u = generator.random()
                tally[0 if u < p_win else 1 if u < p_win + p_loss else 2] += 1
            rate = WinRate(*tally)
            new += (rate.lower or 0) > 0.5
            old += wilson_interval(tally[0] + 0.5 * tally[2], 190)[0] > 0.5
        return new / draws, old / draws

    null_new, null_old = clears(0.3, 0.3)
    assert null_new <= 0.035 and null_old <= 0.035
    edge_new, edge_old = clears(0.36, 0.24)
    assert edge_new > edge_old + 0.1


def test_pairs_to_decide() -> None:
    more = pairs_to_decide(WinRate(103, 88, 0), 0.5)
    assert more is not None and 300 < more < 500  # about 600 pairs in all at 54%
    total = 191 + more
    assert wilson_interval(103 / 191 * total, total)[0] > 0.5
    assert wilson_interval(103 / 191 * (total - 1), total - 1)[0] <= 0.5
    assert pairs_to_decide(WinRate(90, 10, 0), 0.5) == 0
    assert pairs_to_decide(WinRate(50, 50, 0), 0.5) is None
    assert pairs_to_decide(WinRate(0, 0, 40), 0.5) is None
    assert pairs_to_decide(WinRate(0, 0, 0), 0.5) is None
    below = pairs_to_decide(WinRate(45, 55, 0), 0.5)
    assert below is not None and below > 0  # decided against at that many
    # ties in the same share: the decisive judgments decide, so fewer pairs in all
    tied = pairs_to_decide(WinRate(70, 50, 70), 0.5)
    assert tied is not None and tied < pairs_to_decide(WinRate(105, 85, 0), 0.5)  # type: ignore[operator]
    scale = (190 + tied) / 190
    from rlhf.training.stats import paired_interval

    assert paired_interval(70 * scale, 50 * scale, 70 * scale)[0] > 0.5
    assert paired_interval(*(n * (189 + tied) / 190 for n in (70, 50, 70)))[0] <= 0.5


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
