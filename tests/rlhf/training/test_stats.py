"""Rate estimates shared by the engine and the web side (``rlhf.training.stats``)."""

from __future__ import annotations

import pytest

from rlhf.training import stats


def test_decisive_chance_shrinks_each_prompts_decided_rate_towards_the_overall_one() -> None:
    # 4 labels: prompt p decided once in 2, q tied twice, r never labelled; overall 1 in 4
    counts = {"p": (1, 2), "q": (0, 2)}
    got = stats.decisive_chance(counts, ["p", "q", "r"])
    assert got[0] == pytest.approx((1 + 0.25) / 3)
    assert got[1] == pytest.approx((0 + 0.25) / 3)
    assert got[2] == pytest.approx(0.25)  # never labelled: the overall rate
    assert got[1] < got[2] < got[0]  # a prompt that keeps tying comes last
    # a stronger prior moves the prompts' rates less far from the overall rate
    strong = stats.decisive_chance(counts, ["p", "q"], prior=10.0)
    assert strong[0] == pytest.approx((1 + 2.5) / 12)
    assert got[1] < strong[1] < 0.25 < strong[0] < got[0]
    assert stats.decisive_chance({}, ["p", "q"]) == [1.0, 1.0]  # nothing to go on
    with pytest.raises(ValueError, match="prior"):
        stats.decisive_chance(counts, ["p"], prior=0.0)
