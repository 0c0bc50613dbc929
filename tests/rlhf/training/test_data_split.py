"""data.split: the held-out prompts of a training step, by their hash position."""

from __future__ import annotations

import pytest

from rlhf.training import data
from rlhf.training.specs import SpecError


def _rows(prompt_ids: list[str]) -> list[dict[str, str]]:
    return [{"prompt_id": p, "chosen": c} for p in prompt_ids for c in ("x", "y")]


def _held(rows: list[dict[str, str]], fraction: float) -> set[str]:
    train, held_out = data.split(rows, fraction)
    assert len(train) + len(held_out) == len(rows)
    assert not {r["prompt_id"] for r in train} & {r["prompt_id"] for r in held_out}
    return {r["prompt_id"] for r in held_out}


def test_prompts_below_the_fraction_are_held_out_with_all_their_rows() -> None:
    ids = [f"p{i}" for i in range(40)]
    below = {p for p in ids if data.split_position(p) < 0.2}
    assert 0 < len(below) < 40  # the fixed ids straddle the cut
    assert _held(_rows(ids), 0.2) == below
    assert len(data.split(_rows(ids), 0.2)[1]) == 2 * len(below)


def test_a_small_snapshot_with_no_prompt_below_the_fraction_holds_its_lowest_out() -> None:
    ids = [p for p in (f"q{i}" for i in range(100)) if data.split_position(p) >= 0.2][:10]
    lowest = min(ids, key=data.split_position)
    assert _held(_rows(ids), 0.2) == {lowest}
    assert _held(_rows(ids), 0.0) == set()  # no held-out set asked for
    assert _held(_rows(ids[:1]), 0.2) == set()  # a single prompt stays to train on


def test_a_fraction_that_holds_every_prompt_out_is_refused_by_its_field() -> None:
    ids = [p for p in (f"r{i}" for i in range(100)) if data.split_position(p) < 0.5][:3]
    with pytest.raises(SpecError, match=r"field 'eval_fraction': 0\.5 leaves no training rows"):
        data.split(_rows(ids), 0.5)
