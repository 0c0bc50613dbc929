"""Statistics of human judgments between checkpoints: win-rates with tie-aware Wilson intervals,
the Bradley-Terry leaderboard with bootstrap intervals, and the promotion gate's verdict.

Plain Python + numpy/choix on rows the selectors read (no queries here, no torch). A judgment
between two checkpoints' responses is one outcome: a win for the chosen side, or, for a tie or a
both-bad answer, half a win each way (humans saw no difference worth a preference). Half wins
keep the win-rate and the Bradley-Terry fit on the same footing: a checkpoint's rate against an
opponent is ``(wins + ties / 2) / judged`` either way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import choix
import numpy as np

from rlhf.training.stats import paired_interval
from rlhf.training.stats import wilson_interval as wilson_interval  # re-exported

BOOTSTRAP_RESAMPLES = 200
BOOTSTRAP_SEED = 20240611
# A small ridge on the Bradley-Terry fit: an undefeated or unconnected checkpoint keeps a finite
# strength (shrunk towards the others) instead of running off to infinity.
BT_ALPHA = 0.01

WIN, LOSS, TIE = 0, 1, 2  # an outcome seen from the first checkpoint of a pair


@dataclass(frozen=True)
class WinRate:
    """Judgments of ``checkpoint`` vs ``opponent`` pairs; ties and both-bad count half."""

    wins: int
    losses: int
    ties: int

    @property
    def judged(self) -> int:
        return self.wins + self.losses + self.ties

    @property
    def rate(self) -> float | None:
        if not self.judged:
            return None
        return (self.wins + 0.5 * self.ties) / self.judged

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95% interval of :attr:`rate` (None before any judged pair): Wilson's on the
        decisive judgments, mapped onto the rate with the tie share's own interval
        (``stats.paired_interval``: a tie is a sure half, not a coin flip)."""
        if not self.judged:
            return None
        return paired_interval(self.wins, self.losses, self.ties)

    @property
    def lower(self) -> float | None:
        interval = self.interval
        return None if interval is None else interval[0]

    @property
    def upper(self) -> float | None:
        interval = self.interval
        return None if interval is None else interval[1]

    def swapped(self) -> WinRate:
        return WinRate(self.losses, self.wins, self.ties)


def pairs_to_decide(win_rate: WinRate, threshold: float, limit: int = 1_000_000) -> int | None:
    """How many more judged pairs, with wins, losses and ties in the shares seen so far, would put
    the interval (:attr:`WinRate.interval`) wholly on one side of ``threshold`` (0 when it already
    is); None when no number would (the rate sits on it) or before any judged pair."""
    rate, judged = win_rate.rate, win_rate.judged
    if rate is None or rate == threshold:
        return None
    shares = (win_rate.wins / judged, win_rate.losses / judged, win_rate.ties / judged)

    def decided(n: int) -> bool:
        lower, upper = paired_interval(*(share * n for share in shares))
        return lower > threshold if rate > threshold else upper < threshold

    if decided(judged):
        return 0
    high = max(judged, 1)
    while not decided(high):
        high *= 2
        if high > limit:
            return None
    low = judged  # not decided at low, decided at high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if decided(middle) else (middle, high)
    return high - judged


# --- head-to-head tallies --------------------------------------------------------------------


Outcome = tuple[int, int, int]  # (first checkpoint id, second checkpoint id, WIN | LOSS | TIE)


def head_to_head(outcomes: Iterable[Outcome]) -> dict[tuple[int, int], WinRate]:
    """Every ordered pair's win-rate (both directions), keyed ``(checkpoint, opponent)``."""
    tally: dict[tuple[int, int], list[int]] = {}
    for first, second, result in outcomes:
        tally.setdefault((first, second), [0, 0, 0])[result] += 1
        tally.setdefault((second, first), [0, 0, 0])[(LOSS, WIN, TIE)[result]] += 1
    return {key: WinRate(*counts) for key, counts in tally.items()}


# --- Bradley-Terry ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Strength:
    """A checkpoint's Bradley-Terry log-strength (mean 0 over the ranked checkpoints) with its
    bootstrap 95% interval, and the judgments it took part in."""

    checkpoint_id: int
    strength: float
    lower: float
    upper: float
    judged: int


def _fit(wins: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
    params = choix.ilsr_pairwise_dense(
        wins, alpha=BT_ALPHA, initial_params=start, max_iter=500, tol=1e-7
    )
    return params - params.mean()


def bradley_terry(
    outcomes: Sequence[Outcome],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> list[Strength]:
    """The Bradley-Terry leaderboard of the checkpoints in ``outcomes``, strongest first.

    Fitted with ``choix.ilsr_pairwise_dense`` on a win matrix (a tie adds half a win each way).
    The interval is the 2.5-97.5 percentile of ``resamples`` bootstrap refits, each on as many
    judgments drawn with replacement (a multinomial over the distinct outcomes: the same draw,
    without a Python loop per judgment). Fixed seed: the same data gives the same figures.
    """
    if not outcomes:
        return []
    ids = sorted({c for first, second, _ in outcomes for c in (first, second)})
    index = {checkpoint_id: i for i, checkpoint_id in enumerate(ids)}
    cells: dict[Outcome, int] = {}
    judged = dict.fromkeys(ids, 0)
    for first, second, result in outcomes:
        if result == LOSS:  # one cell per (winner, loser); a tie keeps its order
            first, second, result = second, first, WIN
        cells[(first, second, result)] = cells.get((first, second, result), 0) + 1
        judged[first] += 1
        judged[second] += 1
    keys = list(cells)
    counts = np.array([cells[k] for k in keys], dtype=float)
    rows = np.array([index[k[0]] for k in keys])
    cols = np.array([index[k[1]] for k in keys])
    share = np.array([1.0 if k[2] == WIN else 0.5 for k in keys])

    def win_matrix(cell_counts: np.ndarray) -> np.ndarray:
        wins = np.zeros((len(ids), len(ids)))
        np.add.at(wins, (rows, cols), cell_counts * share)
        ties = cell_counts * (1.0 - share)
        np.add.at(wins, (cols, rows), ties)
        return wins

    estimate = _fit(win_matrix(counts))
    rng = np.random.default_rng(seed)
    total = int(counts.sum())
    draws = rng.multinomial(total, counts / total, size=resamples)
    boot = np.array([_fit(win_matrix(draw.astype(float)), estimate) for draw in draws])
    lower, upper = np.percentile(boot, [2.5, 97.5], axis=0)
    board = [
        Strength(
            checkpoint_id=checkpoint_id,
            strength=float(estimate[i]),
            lower=float(lower[i]),
            upper=float(upper[i]),
            judged=judged[checkpoint_id],
        )
        for i, checkpoint_id in enumerate(ids)
    ]
    return sorted(board, key=lambda s: (-s.strength, s.checkpoint_id))


@dataclass(frozen=True)
class Bar:
    """A leaderboard row's geometry on a shared axis, in percent of its width (an SVG per row)."""

    strength: Strength
    lower_pct: float
    point_pct: float
    width_pct: float
    zero_pct: float
    upper_pct: float
    win_prob_vs_mean: float  # the Bradley-Terry chance to beat an average checkpoint


def bars(board: Sequence[Strength]) -> list[Bar]:
    """Whisker (interval) and point positions of every row on one axis spanning all intervals."""
    if not board:
        return []
    low = min(min(s.lower for s in board), 0.0)
    high = max(max(s.upper for s in board), 0.0)
    span = (high - low) or 1.0

    def pct(value: float) -> float:
        return round(100 * (value - low) / span, 2)

    return [
        Bar(
            strength=s,
            lower_pct=pct(s.lower),
            point_pct=pct(s.strength),
            width_pct=round(pct(s.upper) - pct(s.lower), 2),
            zero_pct=pct(0.0),
            upper_pct=pct(s.upper),
            win_prob_vs_mean=1 / (1 + math.exp(-s.strength)),
        )
        for s in board
    ]


# --- the promotion gate ----------------------------------------------------------------------


@dataclass(frozen=True)
class GateVerdict:
    """Whether humans' judgments clear the promotion bar, and why in plain words."""

    passed: bool
    reason: str
    more_pairs: int | None = None  # judged pairs that would decide it at the current rate


def _pct(value: float) -> str:
    return f"{round(100 * value)}%"


def promotion_verdict(
    win_rate: WinRate, *, candidate: str, champion: str, min_lower_bound: float
) -> GateVerdict:
    """The gate: the 95% lower bound (``WinRate.interval``) of the candidate's human win-rate
    against the champion must exceed ``min_lower_bound``."""
    rate, interval = win_rate.rate, win_rate.interval
    if rate is None or interval is None:
        return GateVerdict(
            passed=False,
            reason=f"humans have judged no pair of {candidate} against the champion {champion} "
            "yet; judge its vs-champion comparisons first",
        )
    lower, upper = interval
    said = (
        f"humans preferred {candidate} over {champion} in {_pct(rate)} of {win_rate.judged} "
        f"judged pairs ({win_rate.wins} won, {win_rate.losses} lost, {win_rate.ties} tied or "
        f"both bad); the 95% interval {_pct(lower)}\u2013{_pct(upper)}"
    )
    bar = _pct(min_lower_bound)
    if lower > min_lower_bound:
        return GateVerdict(passed=True, reason=f"{said} lies above {bar}")
    more = pairs_to_decide(win_rate, min_lower_bound)
    if rate <= min_lower_bound or upper < min_lower_bound:
        reason = f"{said} does not show it better than {bar}"
        if rate <= min_lower_bound:
            reason += " (at this rate more judging would not change that)"
        return GateVerdict(passed=False, reason=reason, more_pairs=None)
    reason = f"{said} includes {bar}"
    if more is not None:
        reason += f"; at the current rate about {more} more judged pairs would decide it"
    return GateVerdict(passed=False, reason=reason, more_pairs=more)
