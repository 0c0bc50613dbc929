"""Interval arithmetic shared by the engine and the web side (pure Python: no torch, no Django).

:func:`wilson_interval` is the one Wilson score interval: the leaderboard's human win-rates and
the evaluate step's sampled reward-model win-rates both use it. :func:`sampled_win_rate` scores
paired samples: several samples of one prompt are not independent draws, so its interval treats
each prompt as one trial whose outcome is the fraction of its pairs won (ties half); the interval
over prompts is wider than one over pairs would be, never narrower than the data allow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

Z95 = 1.959963984540054  # the normal quantile of a two-sided 95% interval


def wilson_interval(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial rate (``successes`` may be fractional: ties)."""
    if n <= 0:
        raise ValueError("the Wilson interval needs at least one trial")
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_interval(wins: float, losses: float, ties: float, z: float = Z95) -> tuple[float, float]:
    """The 95% interval of a head-to-head rate ``(wins + ties / 2) / judged`` that does not score
    a tie as a coin flip.

    The rate is ``0.5 + (1 - t) * (d - 0.5)``: ``t`` the share of ties, ``d`` the share of wins
    among the decisive judgments. Each bound is the most extreme value of that line over Wilson's
    interval of ``d`` (over the decisive judgments only: the sign test) and Wilson's interval of
    ``t``, so the interval holds the rate itself and widens with the uncertainty of both. Wilson's
    interval over all judgments instead scores a tie's sure half as if it were a coin flip's 0 or
    1, overstating the variance (by up to ``1 / (1 - t)``) so that many ties hide a real
    difference. A lower bound clears 50% exactly when the sign test on the decisive judgments
    does: ties neither prove nor hide a preference. Without ties, a bound on the far side of 50%
    is Wilson's interval of the rate.
    """
    judged = wins + losses + ties
    if judged <= 0:
        raise ValueError("the interval needs at least one judgment")
    decisive = wins + losses
    d_lower, d_upper = wilson_interval(wins, decisive, z) if decisive > 0 else (0.0, 1.0)
    t_lower, t_upper = wilson_interval(ties, judged, z)

    def line(t: float, d: float) -> float:
        return 0.5 + (1.0 - t) * (d - 0.5)

    lower = min(line(t_lower, d_lower), line(t_upper, d_lower))
    upper = max(line(t_lower, d_upper), line(t_upper, d_upper))
    return max(0.0, lower), min(1.0, upper)


def sampled_win_rate(
    candidate: Sequence[Sequence[float]],
    opponent: Sequence[Sequence[float]],
    *,
    tie_tolerance: float = 1e-4,
) -> dict[str, Any]:
    """Scores of paired samples, one list per prompt (sample i of the candidate meets sample i of
    the opponent): ``{prompts, pairs, wins, losses, ties, win_rate, lower, upper}``. The rate
    counts ties half; the 95% interval is Wilson's over prompts (see the module docstring)."""
    wins = losses = ties = 0
    per_prompt: list[float] = []
    for mine, theirs in zip(candidate, opponent, strict=True):
        won = lost = tied = 0
        for a, b in zip(mine, theirs, strict=True):
            if abs(a - b) <= tie_tolerance:
                tied += 1
            elif a > b:
                won += 1
            else:
                lost += 1
        n = won + lost + tied
        if n:
            per_prompt.append((won + 0.5 * tied) / n)
        wins, losses, ties = wins + won, losses + lost, ties + tied
    pairs = wins + losses + ties
    if not per_prompt:
        return {"prompts": 0, "pairs": 0, "wins": 0, "losses": 0, "ties": 0,
                "win_rate": None, "lower": None, "upper": None}  # fmt: skip
    lower, upper = wilson_interval(sum(per_prompt), len(per_prompt))
    return {
        "prompts": len(per_prompt),
        "pairs": pairs,
        "wins": wins,
        "losses": losses,
        "ties": ties,
        "win_rate": (wins + 0.5 * ties) / pairs,
        "lower": lower,
        "upper": upper,
    }
