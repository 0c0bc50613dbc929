"""Reward, DPO, online RL, evaluation, generation and checkpoints on the tiny built-in models (CPU)."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoConfig

from rlhf.training import (
    checkpoints,
    data,
    dpo,
    evaluate,
    generate,
    online,
    reward,
    rules,
    scoring,
)
from rlhf.training.progress import Events
from rlhf.training.specs import (
    DPOSpec,
    EvaluateSpec,
    GenerateSpec,
    OnlineSpec,
    RewardSpec,
    SpecError,
)


def test_reward_learns_correct_and_polite(reward_result: Any) -> None:
    assert reward_result.num_eval >= 20
    assert reward_result.eval_accuracy >= 0.9
    assert reward_result.eval_mean_margin > 0
    manifest = checkpoints.read_manifest(reward_result.checkpoint_dir)
    assert manifest["method"] == "reward"
    assert manifest["data_hash"] == reward_result.data_hash
    assert manifest["spec"]["use_margin"] is True
    assert set(manifest["libraries"]) >= {"torch", "transformers", "trl", "peft"}
    files = {p.name for p in Path(reward_result.checkpoint_dir).iterdir()}
    assert "adapter_model.safetensors" in files
    assert not [
        p
        for p in Path(reward_result.checkpoint_dir).rglob("*")
        if p.suffix in (".bin", ".pt", ".pkl")
    ]


def test_lora_top_layers_adapts_only_the_last_layers(
    backbone_dir: str, preferences_file: Path, work_dir: Path
) -> None:
    from safetensors.torch import load_file

    spec = RewardSpec(base_model=backbone_dir, data=str(preferences_file), output_dir=str(work_dir / "reward-top"),
                      max_steps=2, batch_size=8, lora_top_layers=2, merge=False)  # fmt: skip
    result = reward.run(spec)
    config = json.loads((Path(result.checkpoint_dir) / "adapter_config.json").read_text())
    layers = AutoConfig.from_pretrained(backbone_dir).num_hidden_layers
    assert config["layers_to_transform"] == [layers - 2, layers - 1]
    weights = load_file(str(Path(result.checkpoint_dir) / "adapter_model.safetensors"))
    lora_layers = {int(m.group(1)) for k in weights if (m := re.search(r"\.(\d+)\..*lora_", k))}
    assert lora_layers == {layers - 2, layers - 1}
    assert any("classifier" in k or "score" in k for k in weights)  # the head is still trained


def test_merged_reward_model_scores_like_base_plus_adapter(
    reward_result: Any, backbone_dir: str, preferences_file: Path
) -> None:
    from transformers import AutoModelForSequenceClassification

    rows = data.load_preferences(preferences_file)[:12]
    prompts = [r["prompt"] for r in rows]
    responses = [r["chosen"] for r in rows]
    merged, tokenizer = scoring.load_reward_model(reward_result.merged_dir)
    base = AutoModelForSequenceClassification.from_pretrained(backbone_dir, num_labels=1)
    base.config.pad_token_id = tokenizer.pad_token_id
    adapted = checkpoints.load_adapter(base, reward_result.checkpoint_dir).eval()
    merged_scores = scoring.score(merged, tokenizer, prompts, responses)
    adapter_scores = scoring.score(adapted, tokenizer, prompts, responses)
    assert merged_scores == pytest.approx(adapter_scores, abs=1e-4)
    assert max(merged_scores) - min(merged_scores) > 0.1  # not a constant head


def test_dpo_raises_held_out_margin(dpo_result: Any) -> None:
    assert dpo_result.eval_margin_before == pytest.approx(
        0.0, abs=1e-6
    )  # fresh adapter == reference
    assert dpo_result.eval_margin_after > dpo_result.eval_margin_before + 0.05
    assert dpo_result.eval_accuracy_after > 0.7
    manifest = checkpoints.read_manifest(dpo_result.checkpoint_dir)
    assert manifest["reference"] == "base" and manifest["method"] == "dpo-sigmoid"


def test_dpo_warm_start_keeps_base_as_reference(
    dpo_result: Any, policy_dir: str, preferences_file: Path, work_dir: Path
) -> None:
    spec = DPOSpec(base_model=policy_dir, data=str(preferences_file), output_dir=str(work_dir / "dpo-warm"),
                   parent_adapter=dpo_result.checkpoint_dir, max_steps=1, batch_size=4, learning_rate=1e-6)  # fmt: skip
    warm = dpo.run(spec)
    # Before training, policy = parent weights and reference = base: the parent's margin, not 0.
    assert warm.eval_margin_before == pytest.approx(
        dpo_result.eval_margin_after, rel=1e-3, abs=1e-4
    )
    assert checkpoints.read_manifest(warm.checkpoint_dir)["parent"] == dpo_result.checkpoint_dir


def test_reward_pairs_add_the_reward_models_best_against_its_worst(
    dpo_result: Any, reward_result: Any, policy_dir: str, preferences_file: Path,
    prompts_file: Path, work_dir: Path,
) -> None:  # fmt: skip
    spec = DPOSpec(base_model=policy_dir, data=str(preferences_file), output_dir=str(work_dir / "dpo-rm"),
                   parent_adapter=dpo_result.checkpoint_dir, max_steps=1, batch_size=4,
                   reward_pairs=4, prompts=str(prompts_file), reward_model=reward_result.merged_dir)  # fmt: skip
    rows = dpo.reward_model_pairs(spec, Events())
    prompts = data.load_prompts(prompts_file)
    assert 0 < len(rows) <= len(prompts)
    assert {row["prompt_id"] for row in rows} <= {f"rm-{p['prompt_id']}" for p in prompts}
    model, tokenizer = scoring.load_reward_model(reward_result.merged_dir)
    chosen = scoring.score(
        model, tokenizer, [r["prompt"] for r in rows], [r["chosen"] for r in rows]
    )
    rejected = scoring.score(model, tokenizer, [r["prompt"] for r in rows],
                             [r["rejected"] for r in rows])  # fmt: skip
    assert all(c > r for c, r in zip(chosen, rejected, strict=True))
    assert all(row["chosen"] != row["rejected"] for row in rows)
    # the same seed samples the same answers: the rows are reproducible
    assert dpo.reward_model_pairs(spec, Events()) == rows
    # at a token limit every sample reaches, every answer is cut off: none is chosen
    assert (
        dpo.reward_model_pairs(dataclasses.replace(spec, reward_pairs_max_new_tokens=2), Events())
        == []
    )
    # the round trains on them next to its human rows
    result = dpo.run(spec)
    plain = len(data.split(data.load_preferences(preferences_file), spec.eval_fraction)[0])
    assert result.num_train == plain + len(rows)
    assert result.num_reward_pairs == len(rows)


def test_a_reward_model_pair_never_chooses_an_unfluent_answer() -> None:
    # (reward, text, its fluency figure: dpo.fluency_excess)
    samples = [(0.9, "oftever.", 40.0), (0.5, "Ottawa is the capital.", 3.0),
               (0.1, "The capital of Canada is, well, Ottawa I think.", 4.0)]  # fmt: skip
    assert dpo.pick_pair(samples, ceiling=6.0) == (
        "Ottawa is the capital.",
        "The capital of Canada is, well, Ottawa I think.",
    )
    # an unfluent answer can be the rejected one
    assert dpo.pick_pair([(0.5, "Ottawa.", 3.0), (-1.0, "ch ch.", 50.0)], 6.0) == (
        "Ottawa.",
        "ch ch.",
    )
    assert dpo.pick_pair(samples, ceiling=100.0) == (
        "oftever.",
        "The capital of Canada is, well, Ottawa I think.",
    )
    assert dpo.pick_pair(samples, ceiling=2.0) is None  # nothing fluent
    assert dpo.pick_pair([(0.5, "Same.", 3.0), (0.5, "Other.", 3.0)], 6.0) is None  # a tie
    assert dpo.pick_pair([(0.5, "Same.", 3.0)], 6.0) is None
    assert dpo.pick_pair([(0.9, "", 1.0), (0.5, "A.", 3.0), (0.1, "B.", 3.0)], 6.0) == ("A.", "B.")
    # an answer cut off at the token limit is never chosen, but can be rejected
    cut = [(0.9, "The capital of Canada is", 3.0), (0.5, "Ottawa.", 3.0), (0.1, "Lima.", 3.0)]
    assert dpo.pick_pair(cut, 6.0, [False, True, True]) == ("Ottawa.", "Lima.")
    assert dpo.pick_pair(cut, 6.0, [True, True, False]) == ("The capital of Canada is", "Lima.")
    assert dpo.pick_pair(cut, 6.0, [False, False, False]) is None
    with pytest.raises(ValueError, match="one flag per sample"):
        dpo.pick_pair(cut, 6.0, [True])


def _read(nats: list[float], lengths: list[int]) -> tuple[list[float], list[int]]:
    """(log-probabilities, token counts) of answers read at ``nats`` per token."""
    return [-y * n for y, n in zip(nats, lengths, strict=True)], lengths


def test_the_fluency_guard_is_length_matched_and_does_not_drift_with_the_parent() -> None:
    """A sample may be chosen while it reads at most 2x the parent's samples of its length and at
    most 3.5x the base model's own of its length (dpo.fluency_excess)."""
    lengths = [4, 8, 16, 24]
    base_nats = [0.5 + 6.0 / n for n in lengths]  # perplexity 7.4, 3.5, 2.4, 2.1
    base_own = _read(base_nats, lengths)
    # a parent as fluent as the base (round 1 is this case): every sample may be chosen, the
    # 4-token one too, though its perplexity is 3x the median (a plain ceiling of 2x refused it)
    excess = dpo.fluency_excess(base_own, base_own, 2.0, 3.5)
    assert excess == pytest.approx([0.5] * 4)
    # the same parent with a fifth sample read 3x worse than the others of its length
    excess = dpo.fluency_excess(
        _read([*base_nats, base_nats[1] + math.log(3.0)], [*lengths, 8]), base_own, 2.0, 3.5
    )
    assert all(e <= 1.0 for e in excess[:4]) and excess[4] > 1.0
    # a drifted parent (concise seed 2's round 2 read 3x the base): its typical samples may be
    # chosen, but one 5x the base's own is refused by the cap though it is < 2x its parent's
    drifted = [y + math.log(3.0) for y in base_nats] + [base_nats[2] + math.log(5.0)]
    samples = _read(drifted, [*lengths, 16])
    excess = dpo.fluency_excess(samples, base_own, 2.0, 3.5)
    assert all(e <= 1.0 for e in excess[:4])
    assert excess[4] == pytest.approx(5.0 / 3.5)
    # without the cap the guard drifts with the parent and lets it through
    assert dpo.fluency_excess(samples, base_own, 2.0, 100.0)[4] < 1.0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"reward_pairs": 1}, "must be 0 (off) or >= 2"),
        ({"reward_pairs": 4}, "needs prompts and a reward model"),
        ({"reward_pairs": 4, "reward_pairs_max_new_tokens": 0}, "must be >= 1"),
        ({"reward_pairs_fluency": 0.5}, "must be >= 1 (times the parent's samples"),
        ({"reward_pairs_fluency_cap": 0.9}, "must be >= 1 (times the base model's perplexity"),
        ({"chosen_fluency_cap": 0.5}, "must be 0 (off) or >= 1"),
    ],
)
def test_reward_pairs_settings_are_checked(
    policy_dir: str, preferences_file: Path, work_dir: Path, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(SpecError, match=re.escape(message)):
        DPOSpec(base_model=policy_dir, data=str(preferences_file),
                output_dir=str(work_dir / "dpo-bad"), **fields)  # fmt: skip


def test_rows_whose_chosen_answer_is_broken_are_left_out_at_a_fluency_cap(
    policy_dir: str, preferences_file: Path, work_dir: Path
) -> None:
    rows = data.load_preferences(preferences_file)[:12]
    broken = [{**row, "prompt_id": f"broken-{i}", "chosen": " ".join(reversed(row["chosen"].split()))[::-1]}
              for i, row in enumerate(rows[:4])]  # fmt: skip
    spec = DPOSpec(base_model=policy_dir, data=str(preferences_file), output_dir=str(work_dir / "dpo-cf"),
                   max_steps=1, batch_size=4)  # fmt: skip
    assert dpo.fluent_rows(spec, rows + broken, Events()) == rows + broken  # off by default
    capped = dataclasses.replace(spec, chosen_fluency_cap=2.0)
    kept = dpo.fluent_rows(capped, rows + broken, Events())
    # the answers written backwards go; most of the base model's own kind of answers stay
    assert not any(row["prompt_id"].startswith("broken-") for row in kept)
    assert len(kept) >= len(rows) // 2
    assert dpo.fluent_rows(dataclasses.replace(spec, chosen_fluency_cap=1e9), rows + broken,
                           Events()) == rows + broken  # fmt: skip


def test_a_fluency_cap_that_leaves_no_row_is_refused_by_its_field(
    policy_dir: str, preferences_file: Path, work_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = DPOSpec(base_model=policy_dir, data=str(preferences_file), output_dir=str(work_dir / "dpo-none"),
                   max_steps=1, batch_size=4, chosen_fluency_cap=1.0)  # fmt: skip
    # every chosen answer reads over the cap
    monkeypatch.setattr(dpo.lengthfit, "ratios", lambda logps, counts, curve: [2.0] * len(logps))
    with pytest.raises(SpecError, match=re.escape("field 'chosen_fluency_cap': 1.0 leaves no")):
        dpo.run(spec)
    assert not Path(spec.output_dir).exists()  # nothing written


def test_sft_weight_keeps_the_chosen_answers_likely(
    policy_dir: str, preferences_file: Path, work_dir: Path
) -> None:
    """RPO (DPO + NLL on the chosen answers) leaves them more likely than plain DPO does."""
    from transformers import AutoModelForCausalLM

    rows = data.load_preferences(preferences_file)[:24]
    prompts, chosen = [r["prompt"] for r in rows], [r["chosen"] for r in rows]
    tokenizer = generate.load_tokenizer(policy_dir)
    mean_logp = {}
    for weight in (0.0, 1.0):
        spec = DPOSpec(base_model=policy_dir, data=str(preferences_file), output_dir=str(work_dir / f"rpo-{weight}"),
                       max_steps=8, batch_size=8, learning_rate=1e-2, sft_weight=weight)  # fmt: skip
        result = dpo.run(spec)
        assert checkpoints.read_manifest(result.checkpoint_dir)["spec"]["sft_weight"] == weight
        model = generate.with_adapter(
            AutoModelForCausalLM.from_pretrained(policy_dir), result.checkpoint_dir
        ).eval()
        logps = scoring.completion_logps(model, tokenizer, prompts, chosen)
        mean_logp[weight] = sum(logps) / len(logps)
    assert mean_logp[1.0] > mean_logp[0.0]


def test_token_kl_to_base_is_the_direct_kl_and_differentiable(
    dpo_result: Any, policy_dir: str, preferences_file: Path
) -> None:
    """The anchor's KL on a batch equals the direct computation against a separate copy of the
    base model (mean over the answers' tokens), is zero with the adapter off and has a gradient."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    tokenizer = generate.load_tokenizer(policy_dir, "")
    base = AutoModelForCausalLM.from_pretrained(policy_dir).eval()
    tuned = PeftModel.from_pretrained(copy.deepcopy(base), dpo_result.checkpoint_dir,
                                      is_trainable=True).eval()  # fmt: skip
    rows = data.load_preferences(preferences_file)[:5]
    prompts, answers = [r["prompt"] for r in rows], [r["chosen"] for r in rows]
    batch, completion_mask = scoring._completion_batch(tokenizer, prompts, answers)
    inputs = {**batch, "completion_mask": completion_mask}
    kl = dpo.token_kl_to_base(tuned, inputs)
    sums = scoring.completion_token_kl(tuned, base, tokenizer, prompts, answers)
    counts = scoring.completion_logps_and_counts(base, tokenizer, prompts, answers)[1]
    assert float(kl) > 0
    assert float(kl) == pytest.approx(sum(sums) / sum(counts), rel=1e-4)
    kl.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for name, p in tuned.named_parameters() if "lora_" in name)  # fmt: skip
    with tuned.disable_adapter():
        assert float(dpo.token_kl_to_base(tuned, inputs)) == pytest.approx(0.0, abs=1e-6)


def test_logits_at_builds_only_the_asked_positions(policy_dir: str, preferences_file: Path) -> None:
    """The output layer sees the answers' positions only, and their logits are the full forward's;
    a model whose output layer sees another shape gets the full logits, then the positions."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(policy_dir).eval()
    tokenizer = generate.load_tokenizer(policy_dir, "")
    rows = data.load_preferences(preferences_file)[:3]
    batch, completion_mask = scoring._completion_batch(
        tokenizer, [r["prompt"] for r in rows], [r["chosen"] for r in rows]
    )
    positions = completion_mask.bool()
    seen: list[tuple[int, ...]] = []
    head = model.get_output_embeddings()
    handle = head.register_forward_hook(lambda module, args, out: seen.append(tuple(out.shape)))
    with torch.no_grad():
        got = scoring.logits_at(model, batch, positions)
    handle.remove()
    with torch.no_grad():
        full = model(**batch).logits
    assert seen == [(1, int(positions.sum()), full.shape[-1])]
    assert int(positions.sum()) < positions.numel() / 2  # the prompts are most of the batch
    torch.testing.assert_close(got, full[positions], rtol=1e-4, atol=1e-4)

    class Transposed(torch.nn.Module):  # applies its output layer length-first
        def __init__(self) -> None:
            super().__init__()
            self.head = torch.nn.Linear(4, 7)

        def get_output_embeddings(self) -> Any:
            return self.head

        def forward(self, input_ids: Any, **kwargs: Any) -> Any:
            hidden = torch.nn.functional.one_hot(input_ids % 4, 4).float()
            return dataclasses.make_dataclass("Out", ["logits"])(
                self.head(hidden.transpose(0, 1)).transpose(0, 1)
            )

    ids = torch.arange(10).reshape(2, 5)
    mask = torch.tensor([[0, 0, 1, 1, 0], [0, 1, 1, 1, 1]], dtype=torch.bool)
    odd = Transposed()
    with torch.no_grad():
        torch.testing.assert_close(
            scoring.logits_at(odd, {"input_ids": ids, "attention_mask": ids > -1}, mask),
            odd(ids).logits[mask],
        )


def test_anchor_kl_keeps_the_policy_near_the_base(
    policy_dir: str, preferences_file: Path, work_dir: Path
) -> None:
    """With the anchor the trained policy's KL to the base on the chosen answers (computed
    directly) is far smaller than without, and the step still learns the preference."""
    from transformers import AutoModelForCausalLM

    rows = data.load_preferences(preferences_file)[:24]
    prompts, chosen = [r["prompt"] for r in rows], [r["chosen"] for r in rows]
    tokenizer = generate.load_tokenizer(policy_dir)
    base = AutoModelForCausalLM.from_pretrained(policy_dir).eval()
    kl, result = {}, {}
    for weight in (0.0, 1.0):
        spec = DPOSpec(base_model=policy_dir, data=str(preferences_file), output_dir=str(work_dir / f"anchor-{weight}"),
                       max_steps=8, batch_size=8, learning_rate=1e-2, anchor_kl=weight)  # fmt: skip
        result[weight] = dpo.run(spec)
        manifest = checkpoints.read_manifest(result[weight].checkpoint_dir)
        assert manifest["spec"]["anchor_kl"] == weight
        model = generate.with_adapter(
            AutoModelForCausalLM.from_pretrained(policy_dir), result[weight].checkpoint_dir
        ).eval()
        kl[weight] = sum(scoring.completion_token_kl(model, base, tokenizer, prompts, chosen))
    assert kl[1.0] < 0.5 * kl[0.0]
    assert result[1.0].eval_margin_after is not None and result[1.0].eval_margin_after > 0


def test_grpo_raises_mean_reward(
    reward_result: Any, policy_dir: str, prompts_file: Path, work_dir: Path
) -> None:
    spec = OnlineSpec(method="grpo", base_model=policy_dir, reward_model=reward_result.merged_dir,
                      prompts=str(prompts_file), output_dir=str(work_dir / "grpo"), max_steps=4, batch_size=8,
                      num_generations=4, max_completion_length=16, eval_prompts=12, learning_rate=1e-3)  # fmt: skip
    result = online.run(spec)
    assert result.steps == 4
    assert result.mean_reward_before is not None and result.mean_reward_after is not None
    assert result.mean_reward_after > result.mean_reward_before
    assert result.kl is not None and result.kl >= 0
    assert (Path(result.checkpoint_dir) / "adapter_model.safetensors").is_file()


def test_evaluate_against_itself_ties_and_against_base_differs(
    dpo_result: Any,
    reward_result: Any,
    policy_dir: str,
    prompts_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    common = {"base_model": policy_dir, "candidate_adapter": dpo_result.checkpoint_dir, "prompts": str(prompts_file),
              "reward_model": reward_result.merged_dir, "max_prompts": 8, "max_new_tokens": 8}  # fmt: skip
    same = evaluate.run(EvaluateSpec(**common, parent_adapter=dpo_result.checkpoint_dir))
    assert (same.num_prompts, same.win_rate, same.tie_rate, same.kl) == (8, 0.5, 1.0, 0.0)
    assert same.kl_direct == pytest.approx(0.0, abs=1e-6)
    assert same.perplexity_base_candidate == same.perplexity_base_parent
    assert same.mean_reward_candidate == same.mean_reward_parent
    versus_base = evaluate.run(EvaluateSpec(**common, rules=("correct_polite",)))
    assert versus_base.kl > 0  # the DPO adapter moved the policy away from the base
    assert versus_base.kl_direct is not None and versus_base.kl_direct > 0
    # the parent is the base: its answers are its own greedy ones, the likeliest it knows
    ppl_new, ppl_own = versus_base.perplexity_base_candidate, versus_base.perplexity_base_parent
    assert ppl_new is not None and ppl_own is not None
    assert 1.0 < ppl_own <= ppl_new
    # greedy answers are no base sample to fit a length curve to: no length-matched ratio
    assert versus_base.fluency_candidate is None and versus_base.length_curve is None
    assert 0.0 <= versus_base.win_rate <= 1.0 and set(versus_base.rule_win_rates) == {
        "correct_polite"
    }
    assert 1 <= versus_base.mean_length_candidate <= 8
    agreement = versus_base.reward_rule_agreement
    assert set(agreement) == {"correct_polite"}
    assert agreement["correct_polite"] is None or 0.0 <= agreement["correct_polite"] <= 1.0
    # Sampled, several answers per prompt: the same seed gives both sides of a self-comparison
    # the same samples (all ties); against the base the samples differ.
    sampled = {**common, "temperature": 1.0, "num_samples": 3, "rules": ("correct_polite",)}
    same = evaluate.run(EvaluateSpec(**sampled, parent_adapter=dpo_result.checkpoint_dir))
    assert (same.num_prompts, same.num_samples, same.tie_rate, same.kl) == (8, 3, 1.0, 0.0)
    judged: list[tuple[Any, str]] = []
    rule = rules.get_rule("correct_polite")

    def counting(prompt: Any, response: str) -> float:
        judged.append((prompt, response))
        return rule(prompt, response)

    monkeypatch.setattr(rules, "get_rule", lambda name: counting)
    versus_base = evaluate.run(EvaluateSpec(**sampled))
    assert versus_base.num_samples == 3 and versus_base.tie_rate < 1.0
    assert len(judged) == 2 * 8 * 3  # every (prompt, sample) pair, both sides
    assert versus_base.kl != 0


def test_sampled_evaluation_against_the_base_and_the_champion(
    dpo_result: Any, reward_result: Any, policy_dir: str, prompts_file: Path
) -> None:
    """n samples a prompt against each opponent, with a 95% interval. The champion here is the
    candidate's own adapter: the same seed gives both sides the same samples, so every pair ties."""
    spec = EvaluateSpec(
        base_model=policy_dir, candidate_adapter=dpo_result.checkpoint_dir,
        prompts=str(prompts_file), reward_model=reward_result.merged_dir, max_prompts=6,
        max_new_tokens=8, sampled_per_prompt=3, sample_temperature=1.0,
        opponents={"base": "", "champion": dpo_result.checkpoint_dir},
    )  # fmt: skip
    result = evaluate.run(spec)
    assert set(result.sampled) == {"base", "champion"}
    champion = result.sampled["champion"]
    assert (champion["prompts"], champion["pairs"], champion["ties"]) == (6, 18, 18)
    assert champion["win_rate"] == 0.5
    assert champion["lower"] < 0.5 < champion["upper"]
    assert (champion["samples_per_prompt"], champion["temperature"]) == (3, 1.0)
    base = result.sampled["base"]
    assert base["wins"] + base["losses"] + base["ties"] == base["pairs"] == 18
    assert base["ties"] < 18  # the DPO adapter moved the policy: its samples differ from the base's
    assert base["lower"] <= base["win_rate"] <= base["upper"]
    assert base["mean_reward_candidate"] == champion["mean_reward_candidate"]  # one candidate set
    # fluency as sampled: the base model's perplexity on each side's samples; the champion's
    # samples are the candidate's own here, so the two figures are equal
    assert champion["perplexity_base_candidate"] == pytest.approx(
        champion["perplexity_base_opponent"]
    )
    assert base["perplexity_base_candidate"] == champion["perplexity_base_candidate"] > 1.0
    assert base["perplexity_base_opponent"] > 1.0
    # length-matched (rlhf.training.fluency): the curve is fitted to the base model's own samples,
    # so they read 1x
    assert result.length_curve is not None and set(result.length_curve) == {"floor", "slope"}
    assert base["fluency_opponent"] == pytest.approx(1.0)
    assert champion["fluency_candidate"] == base["fluency_candidate"] > 0
    assert champion["fluency_opponent"] == pytest.approx(champion["fluency_candidate"])
    # the greedy answers' ratios are on the same curve
    assert result.fluency_candidate is not None and result.fluency_parent is not None
    assert result.fluency_candidate > 0 and result.fluency_parent > 0


def test_sampled_fluency_reuses_the_first_evaluations_answers_when_they_are_the_same(
    dpo_result: Any, reward_result: Any, policy_dir: str, prompts_file: Path
) -> None:
    """Sampled as the first evaluation was (same temperature and count), against the base as
    parent: the same answers, so the sampled fluency figures are the first evaluation's."""
    spec = EvaluateSpec(
        base_model=policy_dir, candidate_adapter=dpo_result.checkpoint_dir,
        prompts=str(prompts_file), reward_model=reward_result.merged_dir, max_prompts=6,
        max_new_tokens=8, temperature=1.0, num_samples=3, sampled_per_prompt=3,
        sample_temperature=1.0, opponents={"base": ""},
    )  # fmt: skip
    result = evaluate.run(spec)
    base = result.sampled["base"]
    assert base["pairs"] == 18
    assert result.perplexity_base_candidate is not None and result.perplexity_base_parent
    assert base["perplexity_base_candidate"] == result.perplexity_base_candidate > 1.0
    assert base["perplexity_base_opponent"] == result.perplexity_base_parent > 1.0
    # the parent is the base, sampled: its answers are the length curve's yardstick
    assert base["fluency_opponent"] == result.fluency_parent == pytest.approx(1.0)
    assert base["fluency_candidate"] == result.fluency_candidate


def test_dtype_and_chat_template_are_applied_when_loading(policy_dir: str) -> None:
    import torch

    template = "{% for m in messages %}[{{ m['content'] }}]{% endfor %}=>"
    model, tokenizer = generate.load_policy(
        policy_dir, None, "cpu", dtype="bfloat16", chat_template=template
    )
    assert next(model.parameters()).dtype == torch.bfloat16
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text == "[hi]=>"
    samples = generate.sample(
        model, tokenizer, [[{"role": "user", "content": "hi"}]], max_new_tokens=4
    )
    assert len(samples) == 1 and len(samples[0]) == 1
    default, _ = generate.load_policy(policy_dir, None, "cpu")
    assert next(default.parameters()).dtype == torch.float32  # auto on a CPU


def test_generate_is_reproducible_by_seed(
    policy_dir: str, prompts_file: Path, tmp_path: Path
) -> None:
    texts = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        spec = GenerateSpec(base_model=policy_dir, prompts=str(prompts_file), output=str(tmp_path / f"{name}.jsonl"),
                            num_samples=2, seed=seed, max_new_tokens=12, batch_size=8)  # fmt: skip
        assert generate.run(spec).num_samples == 32
        texts.append((tmp_path / f"{name}.jsonl").read_text())
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]


def test_atomic_dir_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "ckpt"
    with pytest.raises(RuntimeError), checkpoints.atomic_dir(target) as tmp:
        (tmp / "adapter_model.safetensors").write_bytes(b"partial")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with checkpoints.atomic_dir(target) as tmp:
        (tmp / "manifest.json").write_text(json.dumps({"ok": True}))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_reward_rule_agreement_counts_only_the_pairs_the_rule_decides() -> None:
    # pairs: RM prefers a, a, b, b, a; the rule prefers a, b, b, (tie), (tie)
    reward_a, reward_b = [2.0, 1.0, 0.0, 0.0, 3.0], [1.0, 0.5, 1.0, 1.0, 0.0]
    rule_a, rule_b = [1.0, 0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0, 0.0]
    assert evaluate._agreement(reward_a, reward_b, rule_a, rule_b) == pytest.approx(2 / 3)
    assert evaluate._agreement([1.0], [0.0], [1.0], [1.0]) is None


def test_token_kl_is_exact_and_perplexity_tells_word_salad(
    dpo_result: Any, policy_dir: str, prompts_file: Path
) -> None:
    """The direct KL is zero for a model against itself, positive against another and never
    negative; the base model finds shuffled words far less likely than its own answers."""
    from transformers import AutoModelForCausalLM

    tokenizer = generate.load_tokenizer(policy_dir, "")
    base = AutoModelForCausalLM.from_pretrained(policy_dir).eval()
    tuned = generate.with_adapter(copy.deepcopy(base), dpo_result.checkpoint_dir).eval()
    prompts = [r["prompt"] for r in data.load_prompts(str(prompts_file))[:6]]
    answers = [
        texts[0][0]
        for texts in generate.sample(base, tokenizer, prompts, max_new_tokens=12, temperature=0.0)
    ]
    assert scoring.completion_token_kl(base, base, tokenizer, prompts, answers) == pytest.approx(
        [0.0] * 6, abs=1e-6
    )
    kls = scoring.completion_token_kl(tuned, base, tokenizer, prompts, answers)
    assert min(kls) >= 0 and max(kls) > 0
    salad = [" ".join(sorted(a.split(), reverse=True)) + " women tooth the" for a in answers]
    fluency = {
        name: scoring.perplexity(
            *scoring.completion_logps_and_counts(base, tokenizer, prompts, texts, batch_size=4)
        )
        for name, texts in (("answers", answers), ("salad", salad))
    }
    assert fluency["salad"] > 2 * fluency["answers"]
    # The counts come from the same (batched, padded) tokenization as the sums, and padding
    # changes neither: one completion at a time gives the same figures.
    logps, counts = scoring.completion_logps_and_counts(base, tokenizer, prompts, salad)
    assert logps == pytest.approx(scoring.completion_logps(base, tokenizer, prompts, salad))
    assert len({len(t) for t in salad}) > 1 and min(counts) > 0
    for i, (prompt, text) in enumerate(zip(prompts, salad, strict=True)):
        one_logps, one_counts = scoring.completion_logps_and_counts(
            base, tokenizer, [prompt], [text]
        )
        assert one_counts == [counts[i]]
        assert one_logps == pytest.approx([logps[i]], abs=1e-3)
