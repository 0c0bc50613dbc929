"""The score step: both responses of each pair under a merged reward model, into a JSONL file."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from rlhf.training import checkpoints, reward, rules, score, scoring
from rlhf.training.progress import Events
from rlhf.training.specs import RewardSpec, ScoreSpec, SpecError
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
    assert [o["information"] for o in out] == pytest.approx(
        scoring.bald(
            model,
            tokenizer,
            [p["prompt"] for p in pairs],
            [p["a"] for p in pairs],
            [p["b"] for p in pairs],
        )
    )


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


def test_next_token_kl_is_the_exact_kl_with_its_gradient_in_any_chunks() -> None:
    """KL(p || q) per position over the whole vocabulary, the same whatever the chunk, with the
    true gradient in p's logits (checked by finite differences) and none in q's."""
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 11, dtype=torch.float64, requires_grad=True)
    reference = torch.randn(2, 5, 11, dtype=torch.float64)
    p, q = logits.softmax(-1), reference.softmax(-1)
    by_hand = (p * (p.log() - q.log())).sum(-1)
    for chunk in (1, 3, 256):
        kl = scoring.next_token_kl(logits, reference, chunk=chunk)
        assert kl.shape == (2, 5)
        torch.testing.assert_close(kl, by_hand)
        assert torch.autograd.gradcheck(
            lambda x, chunk=chunk: scoring.next_token_kl(x, reference, chunk=chunk), (logits,)
        )
    assert float(scoring.next_token_kl(reference, reference).abs().max()) < 1e-12
    kl32 = scoring.next_token_kl(logits.detach().float(), reference.float().requires_grad_())
    assert kl32.dtype == torch.float32
    kl32.sum().backward()  # the reference gets no gradient (it is the frozen base)


def test_ensemble_information_is_bald_by_hand() -> None:
    def h(p: float) -> float:
        return -(p * math.log(p) + (1 - p) * math.log(1 - p))

    s = 1 / (1 + math.exp(-2.0))
    got = scoring.ensemble_information([[0.0, 0.0], [2.0, 2.0], [2.0, -2.0], [2.0, 0.0]])
    # every member calls it a coin flip (a tie: nothing to learn)
    assert got[0] == pytest.approx(0.0)
    assert got[1] == pytest.approx(0.0)  # every member decides it the same way
    assert got[2] == pytest.approx(h(0.5) - h(s))  # the members disagree: the most to learn
    assert got[3] == pytest.approx(h((s + 0.5) / 2) - (h(s) + h(0.5)) / 2)
    assert got[2] > got[3] > 0


@pytest.mark.training
def test_bald_reads_the_heads_own_features_and_scores_a_tie_zero(reward_result: Any) -> None:
    model, tokenizer = scoring.load_reward_model(reward_result.merged_dir)
    rows = rules.synthetic_preferences(6, seed=11, clear_cut=True)
    prompts = [r["prompt"] for r in rows]
    chosen, rejected = [r["chosen"] for r in rows], [r["rejected"] for r in rows]
    features, head = scoring.head_features(model, tokenizer, prompts, chosen)
    assert features.shape[0] == 6
    # The captured features are what the model pools: the head on them gives score()'s rewards.
    assert head(features).reshape(-1).tolist() == pytest.approx(
        scoring.score(model, tokenizer, prompts, chosen), abs=1e-4
    )
    same = scoring.bald(model, tokenizer, prompts, chosen, chosen)
    assert same == pytest.approx([0.0] * 6, abs=1e-9)  # identical answers: a tie, scored 0
    information = scoring.bald(model, tokenizer, prompts, chosen, rejected, seed=3)
    assert information == scoring.bald(model, tokenizer, prompts, chosen, rejected, seed=3)
    assert all(0.0 <= v <= math.log(2) for v in information) and max(information) > 0
    assert scoring.bald(model, tokenizer, [], [], []) == []
    with pytest.raises(ValueError, match="rate"):
        scoring.bald(model, tokenizer, prompts, chosen, rejected, rate=1.0)


def test_progress_counts_over_the_parts_of_a_step() -> None:
    stream = io.StringIO()
    events = Events(stream)
    events.progress(2, 4, eta_s=2.0)  # one part: as the trainer says
    events.part(1, 3)
    events.progress(2, 4, eta_s=2.0)  # 1 s a step: 2 s left of this part, 8 s for the third
    events.progress(4, 4, eta_s=0.0)  # this part done, one more to go: no rate to go on
    events.part(2, 3)
    events.progress(4, 4, eta_s=0.0)
    got = [
        (e["step"], e["total"], e["eta_s"]) for e in map(json.loads, stream.getvalue().splitlines())
    ]
    assert got == [(2, 4, 2.0), (6, 12, 6.0), (8, 12, None), (12, 12, 0.0)]
    with pytest.raises(ValueError, match="part 3 of 3"):
        events.part(3, 3)


@pytest.mark.training
def test_the_reward_step_averages_its_members_and_their_disagreement_scores_pairs(
    backbone_dir: str, work_dir: Path
) -> None:
    """``members`` trains reward models from other seeds on the same rows and writes their weight
    average; kept, they are the score step's committee (BALD over the members' margins)."""
    data = write_jsonl(
        work_dir / "members-prefs.jsonl", rules.synthetic_preferences(40, seed=3, clear_cut=True)
    )
    spec = RewardSpec(
        base_model=backbone_dir,
        data=str(data),
        output_dir=str(work_dir / "members"),
        max_steps=4,
        batch_size=8,
        learning_rate=3e-3,
        members=3,
        keep_members=True,
    )
    stream = io.StringIO()
    trained = reward.run(spec, Events(stream))
    assert trained.members == 3 and len(trained.member_eval_accuracy) == 3
    # one progress bar over the three trainings, not three that each start again at 1
    progress = [
        e for e in map(json.loads, stream.getvalue().splitlines()) if e["event"] == "progress"
    ]
    assert {e["total"] for e in progress} == {12}
    steps = [e["step"] for e in progress]
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == 12 and 4 in steps
    assert [Path(d).name for d in trained.member_dirs] == ["0", "1", "2"]
    assert checkpoints.read_manifest(trained.checkpoint_dir)["spec"]["members"] == 3
    merged = trained.merged_dir
    assert merged is not None
    # the reward model written is the members' weight average, parameter by parameter
    models = [scoring.load_reward_model(d)[0] for d in (merged, *trained.member_dirs)]
    states = [m.state_dict() for m in models]
    for name, value in states[0].items():
        if value.is_floating_point():
            mean = sum(s[name].double() for s in states[1:]) / 3
            assert torch.allclose(value.double(), mean, atol=1e-6), name
    head = next(n for n in states[0] if "classifier" in n or "score" in n)
    assert not torch.allclose(states[1][head], states[2][head])  # other seeds, other models
    # the adapter beside it is that average too (rank 3 x r), not member 0's
    from transformers import AutoModelForSequenceClassification

    config = json.loads(Path(trained.checkpoint_dir, "adapter_config.json").read_text())
    assert config["r"] == 3 * spec.lora_r
    check = rules.synthetic_preferences(6, seed=21, clear_cut=True)
    check_prompts, check_texts = [r["prompt"] for r in check], [r["chosen"] for r in check]
    merged_tokenizer = scoring.load_reward_model(merged)[1]
    base = AutoModelForSequenceClassification.from_pretrained(backbone_dir, num_labels=1)
    base.config.pad_token_id = merged_tokenizer.pad_token_id
    adapted = checkpoints.load_adapter(base, trained.checkpoint_dir).eval()
    assert scoring.score(adapted, merged_tokenizer, check_prompts, check_texts) == pytest.approx(
        scoring.score(models[0], merged_tokenizer, check_prompts, check_texts), abs=1e-4
    )
    rows = rules.synthetic_preferences(5, seed=13, clear_cut=True)
    pairs = [
        {"id": str(i), "prompt": r["prompt"], "a": r["chosen"], "b": r["rejected"]}
        for i, r in enumerate(rows)
    ]
    prompts, a, b = [p["prompt"] for p in pairs], [p["a"] for p in pairs], [p["b"] for p in pairs]
    tokenizer = scoring.load_reward_model(merged)[1]
    margins = [
        [x - y for x, y in zip(scoring.score(m, tokenizer, prompts, a),
                               scoring.score(m, tokenizer, prompts, b), strict=True)]
        for m in models[1:]
    ]  # fmt: skip
    source = write_jsonl(work_dir / "members-pairs.jsonl", pairs)

    def information(members: tuple[str, ...]) -> list[float]:
        output = work_dir / f"members-scores-{len(members)}.jsonl"
        score.run(ScoreSpec(reward_model=merged, pairs=str(source), output=str(output),
                            members=members))  # fmt: skip
        rows = [json.loads(line) for line in output.read_text().splitlines()]
        # the rewards are the averaged model's, committee or not
        assert [r["reward_a"] for r in rows] == pytest.approx(
            scoring.score(models[0], tokenizer, prompts, a), abs=1e-4
        )
        return [r["information"] for r in rows]

    by_hand = scoring.ensemble_information(list(map(list, zip(*margins, strict=True))))
    assert information(trained.member_dirs) == pytest.approx(by_hand, abs=1e-6)
    assert max(by_hand) > 0
    # a committee of two copies of one model never disagrees
    assert information((merged, merged)) == pytest.approx([0.0] * 5, abs=1e-9)


def test_member_settings_are_checked_by_field(tmp_path: Path) -> None:
    (tmp_path / "rows.jsonl").write_text("")
    (tmp_path / "pairs.jsonl").write_text("")
    base = {"base_model": str(tmp_path), "data": str(tmp_path / "rows.jsonl"),
            "output_dir": str(tmp_path / "out")}  # fmt: skip
    for value in (0, 9):
        with pytest.raises(SpecError, match=r"in \[1, 8\]") as bad:
            RewardSpec.from_json({**base, "members": value})
        assert bad.value.field == "members"
    with pytest.raises(SpecError, match="needs merge") as unmerged:
        RewardSpec.from_json({**base, "members": 2, "merge": False})
    assert unmerged.value.field == "members"
    with pytest.raises(SpecError, match="members >= 2") as lonely:
        RewardSpec.from_json({**base, "keep_members": True})
    assert lonely.value.field == "keep_members"
    pairs = {"reward_model": str(tmp_path), "pairs": str(tmp_path / "pairs.jsonl"),
             "output": str(tmp_path / "out.jsonl")}  # fmt: skip
    with pytest.raises(SpecError, match="directory not found") as missing:
        ScoreSpec.from_json({**pairs, "members": [str(tmp_path / "gone")]})
    assert missing.value.field == "members"
    with pytest.raises(SpecError, match="at most 8") as many:
        ScoreSpec.from_json({**pairs, "members": [str(tmp_path)] * 9})
    assert many.value.field == "members"
