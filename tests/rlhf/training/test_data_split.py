"""data.split: the held-out prompts of a training step, by the place their rows carry or else
by their hash position."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rlhf.training import data
from rlhf.training.specs import SpecError


def _rows(prompt_ids: list[str]) -> list[dict[str, Any]]:
    return [{"prompt_id": p, "chosen": c} for p in prompt_ids for c in ("x", "y")]


def _held(rows: list[dict[str, Any]], fraction: float) -> set[str]:
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


def test_rows_that_carry_their_place_are_split_by_it_not_by_the_hash() -> None:
    ids = [f"s{i}" for i in range(20)]
    # every prompt placed at the reverse of its hash place: the held-out set turns over
    rows = [{**row, "split_position": 1 - data.split_position(row["prompt_id"]) - 1e-12}
            for row in _rows(ids)]  # fmt: skip
    held = _held(rows, 0.3)
    assert held == {p for p in ids if 1 - data.split_position(p) - 1e-12 < 0.3}
    assert held != _held(_rows(ids), 0.3)


def test_one_prompt_at_two_places_is_refused() -> None:
    rows = [
        {"prompt_id": "p", "chosen": "x", "split_position": 0.1},
        {"prompt_id": "p", "chosen": "y", "split_position": 0.7},
        {"prompt_id": "q", "chosen": "z", "split_position": 0.5},
    ]
    with pytest.raises(SpecError, match=r"field 'split_position': prompt 'p' has rows at 0\.1 and"):
        data.split(rows, 0.2)


@pytest.mark.parametrize("value", [1.0, -0.1, "0.5"])
def test_a_place_outside_zero_to_one_is_refused_with_its_line(tmp_path: Path, value: Any) -> None:
    path = tmp_path / "preferences.jsonl"
    row = {"prompt_id": "1", "prompt": [{"role": "user", "content": "q"}], "chosen": "a",
           "rejected": "b", "split_position": value}  # fmt: skip
    path.write_text(json.dumps({**row, "split_position": 0.5}) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(SpecError, match=rf"{path}:2: field 'split_position'"):
        data.load_preferences(path)
    path.write_text(json.dumps({**row, "split_position": 0.25}) + "\n")
    assert data.load_preferences(path)[0]["split_position"] == 0.25
