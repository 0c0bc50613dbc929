"""The length-matched fluency ratio (rlhf.training.fluency), on hand-made figures."""

from __future__ import annotations

import math

import pytest

from rlhf.training import fluency


def _read(nats: list[float], lengths: list[int]) -> tuple[list[float], list[int]]:
    """(log-probabilities, token counts) of answers read at ``nats`` per token."""
    return [-y * n for y, n in zip(nats, lengths, strict=True)], lengths


LENGTHS = [3, 5, 10, 20, 40]
OWN = _read([0.4 + 6.0 / n for n in LENGTHS], LENGTHS)  # 2.4 nats a token at 3 tokens, 0.55 at 40


def test_the_curve_recovers_a_fixed_surprise_spread_over_the_answer() -> None:
    curve = fluency.fit(*OWN)
    assert (curve.floor, curve.slope) == (pytest.approx(0.4), pytest.approx(6.0))
    assert curve.perplexity(3) == pytest.approx(math.exp(2.4))
    # the base model's own answers read like themselves, short or long; with noise around the
    # curve, the set it is fitted to still reads exactly 1x (least squares weighted by tokens)
    assert fluency.ratios(*OWN, curve) == pytest.approx([1.0] * len(LENGTHS))
    assert fluency.ratio(*OWN, curve) == pytest.approx(1.0)
    noise = [0.3, -0.2, 0.1, -0.3, 0.2]
    noisy = _read([0.4 + 6.0 / n + e for n, e in zip(LENGTHS, noise, strict=True)], LENGTHS)
    assert fluency.ratio(*noisy, fluency.fit(*noisy)) == pytest.approx(1.0)


def test_brevity_is_not_read_as_word_salad() -> None:
    curve = fluency.fit(*OWN)
    own_overall = math.exp(-sum(OWN[0]) / sum(OWN[1]))
    # answers as brief as the base model's briefest: a plain perplexity reads them 3.5x worse
    # than the base model's answers over all, the length-matched ratio as the same
    brief = _read([0.4 + 6.0 / 3] * 4, [3] * 4)
    assert math.exp(-sum(brief[0]) / sum(brief[1])) / own_overall > 3.5
    assert fluency.ratio(*brief, curve) == pytest.approx(1.0)
    # long answers twice as surprising a token as the base model's of their length read 2x
    salad = _read([0.4 + 6.0 / 40 + math.log(2.0)] * 3, [40] * 3)
    assert fluency.ratio(*salad, curve) == pytest.approx(2.0)
    # a set's ratio weighs its answers by their tokens, as a perplexity does: a 5-token answer
    # read 4x with a fluent 10-token one reads 4 ** (5 / 15)
    mixed = _read([0.4 + 6.0 / 5 + math.log(4.0), 0.4 + 6.0 / 10], [5, 10])
    assert fluency.ratio(*mixed, curve) == pytest.approx(4.0 ** (5 / 15))
    assert fluency.ratios(*mixed, curve) == pytest.approx([4.0, 1.0])


def test_edge_cases_are_explicit() -> None:
    # one length only: a flat curve at the mean
    flat = fluency.fit(*_read([1.0, 2.0], [4, 4]))
    assert (flat.floor, flat.slope) == (pytest.approx(1.5), 0.0)
    # answers of no tokens are left out of the fit and read as infinitely bad
    curve = fluency.fit([*OWN[0], 0.0], [*OWN[1], 0])
    assert curve.slope == pytest.approx(6.0)
    assert fluency.ratios([0.0], [0], curve) == [math.inf]
    assert math.isnan(fluency.ratio([0.0], [0], curve))
    with pytest.raises(ValueError, match="no answer with tokens"):
        fluency.fit([0.0], [0])
    with pytest.raises(ValueError, match="one token count per log-probability"):
        fluency.ratios([1.0], [1, 2], curve)
