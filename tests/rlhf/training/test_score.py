"""The score step: both responses of each pair under a merged reward model, into a JSONL file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rlhf.training import rules, score, scoring
from rlhf.training.specs import ScoreSpec, SpecError
from tests.rlhf.training.conftest import write_jsonl


@pytest.mark.training
def test_score_writes_both_rewards_per_pair_as_the_model_gives_them(
    reward_result: Any, work_dir: Path
) -> None:
    rows = rules.synthetic_preferences(3, seed=7, clear_cut=True)
    pairs = [
        {"id": f"c{i}", "prompt": r["prompt"], "a": r["chosen"], "b": r["rejected"]}
        for i, r in enumerate(rows)
    ]
    spec = ScoreSpec(
        reward_model=reward_result.merged_dir,
        pairs=str(write_jsonl(work_dir / "score-pairs.jsonl", pairs)),
        output=str(work_dir / "scores.jsonl"),
    )
    result = score.run(spec)
    assert result.num_pairs == 3
    out = [json.loads(line) for line in Path(spec.output).read_text().splitlines()]
    assert [o["id"] for o in out] == ["c0", "c1", "c2"]
    model, tokenizer = scoring.load_reward_model(reward_result.merged_dir)
    expected = scoring.score(
        model, tokenizer, [p["prompt"] for p in pairs], [p["a"] for p in pairs]
    )
    assert [o["reward_a"] for o in out] == pytest.approx(expected, abs=1e-4)
    assert all(o["reward_a"] > o["reward_b"] for o in out)  # the clear-cut chosen side wins


def test_score_spec_names_the_bad_field(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as missing:
        ScoreSpec.from_json(
            {"reward_model": str(tmp_path), "pairs": str(tmp_path / "none.jsonl"),
             "output": str(tmp_path / "out.jsonl")}
        )  # fmt: skip
    assert missing.value.field == "pairs"
    (tmp_path / "pairs.jsonl").write_text('{"id": "1", "prompt": [], "a": "x", "b": "y"}\n')
    with pytest.raises(SpecError) as batch:
        ScoreSpec.from_json(
            {"reward_model": str(tmp_path), "pairs": str(tmp_path / "pairs.jsonl"),
             "output": str(tmp_path / "out.jsonl"), "batch_size": 0}
        )  # fmt: skip
    assert batch.value.field == "batch_size"
