"""Fluency that does not read brevity as word salad: the base model's perplexity on answers,
against its perplexity on its own answers *of the same length*.

A model's per-token surprise falls with an answer's length: the first words (which answer, which
opening) are the uncertain ones, and a long answer spreads them over many predictable tokens.
The built-in base policy reads its own answers of at most 3 words at 4.55x its perplexity over
all its samples (``benchmarks/fluency.py``), so a plain perplexity ratio read a policy that
learned to answer briefly, with answers the base model writes itself, as a fluency collapse
(over the promotion gate's 3.5x).

The yardstick is a curve fitted to the base model's own sampled answers: nats per token
``y = floor + slope / n`` over an answer of ``n`` tokens (a fixed surprise spread over the
answer, plus a per-token rate; least squares on ``1 / n``, weighted by tokens). An answer's *fluency ratio* is its
perplexity over the curve's at its length, and a set's is its perplexity over all its tokens
over the curve's at its answers' lengths.
Measured (``benchmarks/fluency.py``, the built-in policy, 2026-12-05), plain perplexity over the
base model's own and length-matched: its own samples of another seed 0.97 and 0.99, its own
answers of at most 3 words 4.55 and 1.33, each answer cut to its first sentence 2.06 and 1.37,
cut mid-sentence to 2-4 words 7-13 and 3.5-3.8, words shuffled 3873 and 4075; concise seed 2's
rounds 1-3 (benchmarks/loop.py; 9.5, 7.8 and 6.0 words a sample) 1.42 / 1.89 / 3.74 and 1.38 /
1.68 / 2.92, round 3 word salad in 31% of its answers ("Seriouslyrniture. Stop knows that.").
Where answers did not get shorter the two figures agree; where they did, the ratio tells
brevity (near 1) from salad.

Pure arithmetic on (log-probability, token count) pairs (``scoring.completion_logps_and_counts``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LengthCurve:
    """The base model's expected nats per token on an answer of ``n`` tokens:
    ``floor + slope / n``."""

    floor: float
    slope: float

    def expected(self, tokens: int) -> float:
        return self.floor + self.slope / tokens

    def perplexity(self, tokens: int) -> float:
        """The perplexity the base model's own answers of this length have."""
        return math.exp(self.expected(tokens))


def nats_per_token(logps: Sequence[float], counts: Sequence[int]) -> list[float]:
    """Each answer's mean surprise (``-logp / n``); infinite for an answer of no tokens."""
    if len(logps) != len(counts):
        raise ValueError("one token count per log-probability")
    return [-lp / n if n > 0 else math.inf for lp, n in zip(logps, counts, strict=True)]


def fit(logps: Sequence[float], counts: Sequence[int]) -> LengthCurve:
    """The curve of the base model's own answers (their log-probabilities and token counts under
    it): least squares weighted by tokens, so the answers it is fitted to read exactly 1x
    (:func:`ratio`). Answers of no tokens are left out; with one length only the slope is 0."""
    points = [(1.0 / n, y, n) for y, n in zip(nats_per_token(logps, counts), counts, strict=True)
              if n > 0 and math.isfinite(y)]  # fmt: skip
    if not points:
        raise ValueError("no answer with tokens to fit a length curve to")
    tokens = sum(n for _, _, n in points)
    mean_x = sum(n * x for x, _, n in points) / tokens
    mean_y = sum(n * y for _, y, n in points) / tokens
    spread = sum(n * (x - mean_x) ** 2 for x, _, n in points)
    if spread <= 1e-12:
        return LengthCurve(floor=mean_y, slope=0.0)
    slope = sum(n * (x - mean_x) * (y - mean_y) for x, y, n in points) / spread
    return LengthCurve(floor=mean_y - slope * mean_x, slope=slope)


def ratios(logps: Sequence[float], counts: Sequence[int], curve: LengthCurve) -> list[float]:
    """Each answer's perplexity over the curve's at its length (infinite for no tokens)."""
    return [
        math.exp(y - curve.expected(n)) if n > 0 and math.isfinite(y) else math.inf
        for y, n in zip(nats_per_token(logps, counts), counts, strict=True)
    ]


def ratio(logps: Sequence[float], counts: Sequence[int], curve: LengthCurve) -> float:
    """A set of answers' fluency ratio: their perplexity (over all their tokens, as
    ``scoring.perplexity``) over the perplexity the base model's own answers of the same lengths
    have, i.e. :func:`ratios` averaged geometrically with each answer weighed by its tokens
    (answers of no tokens left out; NaN when none is left). 1 reads like the base model's own;
    word salad in a share of the answers shows in proportion to their tokens."""
    kept = [(r, n) for r, n in zip(ratios(logps, counts, curve), counts, strict=True)
            if math.isfinite(r)]  # fmt: skip
    tokens = sum(n for _, n in kept)
    return math.exp(sum(n * math.log(r) for r, n in kept) / tokens) if tokens else math.nan
