"""Specs fail fast with messages that name the field; JSON round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlhf.training.specs import (
    DPOSpec,
    EvaluateSpec,
    GenerateSpec,
    OnlineSpec,
    RewardResult,
    SpecError,
)


def _dpo(tmp_path: Path, **extra: object) -> dict[str, object]:
    data = tmp_path / "prefs.jsonl"
    data.write_text("{}\n")
    return {
        "base_model": str(tmp_path),
        "data": str(data),
        "output_dir": str(tmp_path / "out"),
        **extra,
    }


def test_round_trip_through_json_file(tmp_path: Path) -> None:
    spec = DPOSpec.from_json(
        _dpo(tmp_path, loss_type="ipo", lora_target_modules=["q_proj", "v_proj"])
    )
    path = tmp_path / "spec.json"
    path.write_text(spec.to_json())
    assert DPOSpec.from_json(path) == spec
    assert json.loads(spec.to_json())["lora_target_modules"] == ["q_proj", "v_proj"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"bogus": 1}, "bogus"),
        ({"loss_type": "hinge-ish"}, "loss_type"),
        ({"data": "/nonexistent/prefs.jsonl"}, "data"),
        ({"base_model": "/nonexistent/model"}, "base_model"),
        ({"loss_type": "robust"}, "label_smoothing"),
        ({"beta": 0}, "beta"),
        ({"batch_size": "8"}, "batch_size"),
        ({"reference": "parent"}, "reference"),
        ({"dtype": "fp8"}, "dtype"),
        ({"lora_top_layers": -1}, "lora_top_layers"),
        ({"sft_weight": -0.5}, "sft_weight"),
        ({"anchor_kl": -1.0}, "anchor_kl"),
    ],
)
def test_invalid_dpo_spec_names_the_field(
    tmp_path: Path, extra: dict[str, object], field: str
) -> None:
    with pytest.raises(SpecError, match=field):
        DPOSpec.from_json(_dpo(tmp_path, **extra))


def test_existing_output_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(SpecError, match=r"output_dir.*already exists"):
        DPOSpec.from_json(_dpo(tmp_path))


def test_online_batch_must_be_multiple_of_generations(tmp_path: Path) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("{}\n")
    base = {"base_model": str(tmp_path), "reward_model": str(tmp_path), "prompts": str(prompts),
            "output_dir": str(tmp_path / "o")}  # fmt: skip
    with pytest.raises(SpecError, match="batch_size"):
        OnlineSpec.from_json({**base, "batch_size": 6, "num_generations": 4})
    with pytest.raises(SpecError, match="method"):
        OnlineSpec.from_json({**base, "method": "ppo"})


def test_greedy_generation_cannot_return_several_samples(tmp_path: Path) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("{}\n")
    with pytest.raises(SpecError, match="num_samples"):
        GenerateSpec.from_json({"base_model": str(tmp_path), "prompts": str(prompts),
                                "output": str(tmp_path / "o.jsonl"), "temperature": 0, "num_samples": 2})  # fmt: skip


def test_greedy_evaluation_cannot_pair_several_samples(tmp_path: Path) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("{}\n")
    base = {"base_model": str(tmp_path), "candidate_adapter": str(tmp_path), "reward_model": str(tmp_path),
            "prompts": str(prompts)}  # fmt: skip
    with pytest.raises(SpecError, match=r"num_samples.*temperature > 0"):
        EvaluateSpec.from_json({**base, "num_samples": 4})
    with pytest.raises(SpecError, match="num_samples"):
        EvaluateSpec.from_json({**base, "num_samples": 0, "temperature": 1.0})
    assert EvaluateSpec.from_json({**base, "num_samples": 4, "temperature": 1.0}).num_samples == 4


def test_invalid_json_and_non_object() -> None:
    with pytest.raises(SpecError, match="invalid JSON"):
        RewardResult.from_json("{not json")
    with pytest.raises(SpecError, match="not found"):
        DPOSpec.from_json(Path("/nonexistent/spec.json"))


def test_online_vllm_generation_settings(tmp_path: Path) -> None:
    """TRL's vLLM generation for online RL on GPU hosts (docs/deploy.md): checked by field name
    at launch, passed to the TRL config, refused with a plain reason where vLLM is missing."""
    import importlib.util

    from rlhf.training.online import vllm_kwargs

    prompts = tmp_path / "p.jsonl"
    prompts.write_text("{}\n")
    base = {"base_model": str(tmp_path), "reward_model": str(tmp_path), "prompts": str(prompts),
            "output_dir": str(tmp_path / "o")}  # fmt: skip
    with pytest.raises(SpecError, match="vllm_mode"):
        OnlineSpec.from_json({**base, "use_vllm": True, "vllm_mode": "remote"})
    with pytest.raises(SpecError, match="vllm_server_base_url"):
        OnlineSpec.from_json({**base, "use_vllm": True, "vllm_mode": "server"})
    assert vllm_kwargs(OnlineSpec.from_json(base)) == {}
    server = OnlineSpec.from_json(
        {**base, "use_vllm": True, "vllm_mode": "server", "vllm_server_base_url": "http://gpu:8000"}
    )
    if importlib.util.find_spec("vllm") is None:
        with pytest.raises(RuntimeError, match="vllm is not installed on this worker host"):
            vllm_kwargs(server)
    else:
        assert vllm_kwargs(server) == {
            "use_vllm": True,
            "vllm_mode": "server",
            "vllm_server_base_url": "http://gpu:8000",
        }
