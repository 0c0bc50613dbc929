"""KTO: the spec names bad fields; a few steps on clear-cut unpaired rows move the policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rlhf.training import checkpoints, data, generate, kto, rules, scoring
from rlhf.training.specs import STEPS, KTOSpec, SpecError
from tests.rlhf.training.conftest import write_jsonl


def _unpaired(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for pair in pairs:
        base = {"prompt_id": pair["prompt_id"], "prompt": pair["prompt"], "weight": 1.0}
        rows.append({**base, "completion": pair["chosen"], "label": True})
        rows.append({**base, "completion": pair["rejected"], "label": False})
    return rows


def _kto(tmp_path: Path, **extra: object) -> dict[str, object]:
    rows = tmp_path / "kto.jsonl"
    rows.write_text("{}\n")
    return {"base_model": str(tmp_path), "data": str(rows), "output_dir": str(tmp_path / "out"),
            **extra}  # fmt: skip


def test_kto_is_an_engine_step() -> None:
    assert "kto" in STEPS


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"beta": -0.1}, "beta"),
        ({"desirable_weight": 0}, "desirable_weight"),
        ({"undesirable_weight": "1"}, "undesirable_weight"),
        ({"batch_size": 1}, "batch_size"),
        ({"reference": "parent"}, "reference"),
        ({"reference": "sibling"}, "reference"),
        ({"loss_type": "sigmoid"}, "loss_type"),
        ({"anchor_kl": -0.5}, "anchor_kl"),
    ],
)
def test_invalid_kto_spec_names_the_field(
    tmp_path: Path, extra: dict[str, object], field: str
) -> None:
    with pytest.raises(SpecError, match=field) as error:
        KTOSpec.from_json(_kto(tmp_path, **extra))
    assert error.value.field == field


def test_unpaired_rows_are_checked(tmp_path: Path) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt_id": "p", "prompt": [{"role": "user",
                      "content": "hi"}], "completion": "yo", "label": "yes"}])  # fmt: skip
    with pytest.raises(SpecError, match="label"):
        data.load_unpaired(bad)


@pytest.fixture(scope="module")
def kto_rows() -> list[dict[str, Any]]:
    """Clear-cut pairs unpaired: correct-and-polite answers desirable, the others not."""
    return _unpaired(rules.synthetic_preferences(48, seed=3, clear_cut=True))


@pytest.fixture(scope="module")
def kto_result(policy_dir: str, work_dir: Path, kto_rows: list[dict[str, Any]]) -> Any:
    path = write_jsonl(work_dir / "kto.jsonl", kto_rows)
    spec = KTOSpec(base_model=policy_dir, data=str(path), output_dir=str(work_dir / "kto"),
                   max_steps=8, batch_size=8, learning_rate=1e-2, max_length=96)  # fmt: skip
    return kto.run(spec)


def test_kto_raises_desirable_over_undesirable(
    kto_result: Any, kto_rows: list[dict[str, Any]], policy_dir: str
) -> None:
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    result, rows = kto_result, kto_rows
    assert result.steps == 8 and result.num_train + result.num_eval == len(rows)
    assert result.eval_margin_before == pytest.approx(0.0, abs=1e-6)  # fresh adapter == ref
    manifest = checkpoints.read_manifest(result.checkpoint_dir)
    assert manifest["method"] == "kto" and manifest["reference"] == "base"
    weights = load_file(str(Path(result.checkpoint_dir) / "adapter_model.safetensors"))
    assert any(t.abs().sum() > 0 for k, t in weights.items() if "lora_B" in k)  # trained

    def gap(model: Any) -> float:
        tokenizer = generate.load_tokenizer(policy_dir)
        logps = scoring.completion_logps(
            model, tokenizer, [r["prompt"] for r in rows], [r["completion"] for r in rows]
        )
        good = [lp for lp, r in zip(logps, rows, strict=True) if r["label"]]
        bad = [lp for lp, r in zip(logps, rows, strict=True) if not r["label"]]
        return sum(good) / len(good) - sum(bad) / len(bad)

    base = AutoModelForCausalLM.from_pretrained(policy_dir).eval()
    before = gap(base)
    tuned = generate.with_adapter(
        AutoModelForCausalLM.from_pretrained(policy_dir), result.checkpoint_dir
    ).eval()
    assert gap(tuned) > before + 3.0  # measured: -8.0 -> +1.7
    assert result.eval_margin_after is not None and result.eval_margin_after > 0


def test_kto_with_the_parent_as_reference_starts_level_with_it(
    kto_result: Any, policy_dir: str, work_dir: Path
) -> None:
    """Round k > 1: the parent's adapter is both the warm start and the frozen reference."""
    spec = KTOSpec(base_model=policy_dir, data=str(work_dir / "kto.jsonl"),
                   output_dir=str(work_dir / "kto-parent"), parent_adapter=kto_result.checkpoint_dir,
                   reference="parent", max_steps=1, batch_size=4, learning_rate=1e-6)  # fmt: skip
    result = kto.run(spec)
    assert result.eval_margin_before == pytest.approx(0.0, abs=1e-6)  # policy == reference
    manifest = checkpoints.read_manifest(result.checkpoint_dir)
    assert manifest["reference"] == "parent" and manifest["parent"] == kto_result.checkpoint_dir


def test_kto_anchor_kl_keeps_the_policy_near_the_base(
    kto_result: Any, kto_rows: list[dict[str, Any]], policy_dir: str, work_dir: Path
) -> None:
    """The same step as ``kto_result`` with ``anchor_kl`` 0.3: its KL to the base on the
    desirable completions (computed directly) is far smaller, and it still raises them over the
    undesirable ones (measured: KL 667 -> 133 nats summed, gap -8.0 -> -4.5 against +1.8)."""
    from transformers import AutoModelForCausalLM

    spec = KTOSpec(base_model=policy_dir, data=str(work_dir / "kto.jsonl"),
                   output_dir=str(work_dir / "kto-anchored"), max_steps=8, batch_size=8,
                   learning_rate=1e-2, max_length=96, anchor_kl=0.3)  # fmt: skip
    anchored = kto.run(spec)
    assert checkpoints.read_manifest(anchored.checkpoint_dir)["spec"]["anchor_kl"] == 0.3
    tokenizer = generate.load_tokenizer(policy_dir)
    prompts, completions = [r["prompt"] for r in kto_rows], [r["completion"] for r in kto_rows]
    good = [i for i, r in enumerate(kto_rows) if r["label"]]
    base = AutoModelForCausalLM.from_pretrained(policy_dir).eval()

    def gap(model: Any) -> float:
        logps = scoring.completion_logps(model, tokenizer, prompts, completions)
        bad = [lp for i, lp in enumerate(logps) if i not in good]
        return sum(logps[i] for i in good) / len(good) - sum(bad) / len(bad)

    kl, gaps = {}, {"base": gap(base)}
    for name, result in (("plain", kto_result), ("anchored", anchored)):
        model = generate.with_adapter(
            AutoModelForCausalLM.from_pretrained(policy_dir), result.checkpoint_dir
        ).eval()
        kl[name] = sum(scoring.completion_token_kl(model, base, tokenizer,
                                                   [prompts[i] for i in good],
                                                   [completions[i] for i in good]))  # fmt: skip
        gaps[name] = gap(model)
    assert kl["anchored"] < 0.5 * kl["plain"]
    assert gaps["base"] + 2.0 < gaps["anchored"] < gaps["plain"]
