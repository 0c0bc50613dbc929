"""Size-aware round defaults: the toy keeps its tuned values exactly, a real base model gets values
derived from its parameter count (read from safetensors headers, no torch) and the snapshot size."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from labeling.services import LabelingError
from rlhf import methods, services
from rlhf.demo import DEMO_PROJECT_SMOLLM2, demo_project_create
from rlhf.methods import METHODS, ConfigError, default_config, resolve_config, size_defaults
from rlhf.model_size import parameter_count, safetensors_parameters
from rlhf.models import Checkpoint


def write_header_only_safetensors(path: Path, shapes: dict[str, list[int]]) -> None:
    """A safetensors header claiming these tensors (no data: only the header is ever read)."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in shapes.items():
        size = 4
        for dim in shape:
            size *= dim
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)


SMOLLM2_LIKE = {"embed": [49152, 576], "layers": [30, 3_543_552]}  # 134_618_112 parameters


def test_parameter_count_reads_single_and_sharded_headers(tmp_path: Path) -> None:
    single = tmp_path / "single"
    single.mkdir()
    write_header_only_safetensors(single / "model.safetensors", {"a": [3, 4], "b": [5]})
    assert safetensors_parameters(single / "model.safetensors") == 17
    assert parameter_count(single) == 17
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    write_header_only_safetensors(sharded / "one.safetensors", {"a": [10, 10]})
    write_header_only_safetensors(sharded / "two.safetensors", {"b": [7]})
    (sharded / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "one.safetensors", "b": "two.safetensors"}})
    )
    assert parameter_count(sharded) == 107
    assert parameter_count(tmp_path / "missing") is None
    assert parameter_count("HuggingFaceTB/SmolLM2-135M-Instruct") is None
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.safetensors").write_bytes(b"\xff" * 4)
    assert parameter_count(tmp_path / "broken") is None


@pytest.mark.parametrize("method", METHODS)
def test_the_toy_and_unknown_sizes_keep_the_tuned_defaults_exactly(method: str) -> None:
    tuned = resolve_config(method)
    for params in (None, 3_500_000, methods.SIZE_AWARE_MIN_PARAMS - 1):
        assert size_defaults(method, model_params=params, snapshot_size=500) == {}
        assert resolve_config(method, model_params=params, snapshot_size=500) == tuned
    assert tuned["policy"].get("learning_rate", 5e-4) >= 5e-4  # the toy's, not a real model's


@pytest.mark.parametrize("method", METHODS)
def test_a_real_model_gets_size_aware_values_the_engine_accepts(method: str) -> None:
    config = resolve_config(method, model_params=134_515_008, snapshot_size=200)
    policy = config["policy"]
    assert policy["learning_rate"] == pytest.approx(5e-4)
    assert policy["lora_r"] == 8 and policy["lora_alpha"] == 16
    assert policy["lora_target_modules"] == ["all-linear"]
    if methods.method_get(method).is_offline:
        assert policy["max_steps"] == 25
    else:  # online RL keeps its own step budget
        assert "max_steps" not in policy
    assert config["generate"]["max_new_tokens"] == 48
    if policy.get("reward_pairs"):  # its samples as long as the round's answers, not cut at 32
        assert policy["reward_pairs_max_new_tokens"] == config["generate"]["max_new_tokens"]
    assert config["evaluate"]["max_prompts"] == 50
    big = resolve_config(method, model_params=7_000_000_000, snapshot_size=200)["policy"]
    assert big["learning_rate"] < policy["learning_rate"]
    assert big["lora_r"] == 16
    assert big["lora_target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]


def test_steps_follow_the_snapshot_within_bounds() -> None:
    def steps(n: int | None) -> int:
        return int(
            default_config("dpo", model_params=134_515_008, snapshot_size=n)["policy"]["max_steps"]
        )

    assert steps(16) == 8  # the floor
    assert steps(200) == 25  # one pass at an effective batch of 8
    assert steps(5000) == methods.DPO_MAX_STEPS  # the ceiling
    assert steps(None) == methods.DPO_MAX_STEPS


def test_overrides_win_over_size_defaults_and_are_still_checked() -> None:
    config = resolve_config(
        "dpo", {"policy": {"learning_rate": 3e-5, "max_steps": 5}}, model_params=134_515_008
    )
    assert config["policy"]["learning_rate"] == 3e-5
    assert config["policy"]["max_steps"] == 5
    assert config["policy"]["lora_r"] == 8
    with pytest.raises(ConfigError) as bad:
        resolve_config("dpo", {"policy": {"lora_r": 0}}, model_params=134_515_008)
    assert bad.value.field == "policy.lora_r"


@pytest.mark.django_db
def test_a_launch_on_a_real_model_stores_the_size_aware_config(
    fake_engine: Path, settings: Any
) -> None:
    """The smollm2 demo project launches with the resolved values of its model and snapshot."""
    model_dir = Path(settings.PAIRWISE_DATA_DIR) / "models" / "smollm2"
    model_dir.mkdir(parents=True)
    write_header_only_safetensors(model_dir / "model.safetensors", SMOLLM2_LIKE)
    project = demo_project_create(
        train_prompts=6, held_out_prompts=2, annotators=("ann-s",), model="smollm2"
    ).project
    assert project.name == DEMO_PROJECT_SMOLLM2
    base = Checkpoint.objects.get(project=project, is_champion=True)
    assert base.model_spec.name == "smollm2"
    assert base.model_spec.base_model == "builtin:smollm2"
    assert base.model_spec.num_parameters() == 134_618_112
    prompt = project.prompts.filter(split="train").first()
    assert prompt is not None and prompt.metadata["answer"]
    from rlhf.simulate import annotators_ensure, judge_in_process

    users = [user for user, _ in annotators_ensure(project, 1)]
    judge_in_process(project=project, annotators=users, rule="factual", noise=0.0)
    round_ = services.round_launch(project=project, method="dpo", config={"seed": 1})
    policy = round_.config["policy"]
    assert policy["learning_rate"] == pytest.approx(5e-4)
    assert policy["max_steps"] == 8  # a tiny snapshot: the floor
    assert policy["lora_r"] == 8
    assert round_.config["generate"]["max_new_tokens"] == 48
    with pytest.raises(LabelingError):
        services.model_spec_preset("gpt5")


@pytest.mark.django_db
def test_the_launch_form_shows_what_a_launch_on_a_real_model_resolves_to(
    fake_engine: Path, settings: Any, admin_user: Any
) -> None:
    """The form's fields and its preview carry the size-aware values (not the toy's), and a
    launch with the fields untouched stores exactly what the form showed."""
    from django.test import Client

    from rlhf.simulate import annotators_ensure, judge_in_process

    model_dir = Path(settings.PAIRWISE_DATA_DIR) / "models" / "smollm2"
    model_dir.mkdir(parents=True)
    write_header_only_safetensors(model_dir / "model.safetensors", SMOLLM2_LIKE)
    project = demo_project_create(
        train_prompts=6, held_out_prompts=2, annotators=("ann-f",), model="smollm2"
    ).project
    users = [user for user, _ in annotators_ensure(project, 1)]
    judge_in_process(project=project, annotators=users, rule="factual", noise=0.0)
    client = Client()
    client.force_login(admin_user)
    url = f"/projects/{project.pk}/rounds/"
    page = client.get(url, {"method": "dpo"}, headers={"HX-Request": "true"}).content.decode()
    toy = resolve_config("dpo")["policy"]["learning_rate"]
    assert 'name="policy.learning_rate" value="0.0005"' in page
    assert f'name="policy.learning_rate" value="{toy}"' not in page
    assert 'name="policy.max_steps" value="8"' in page  # the snapshot's size: the floor
    assert "8 steps" in page  # the preview resolves as the launch will
    launched = client.post(url, {"method": "dpo"})
    assert launched.status_code == 302, launched.content.decode()[-2000:]
    policy = project.rounds.get().config["policy"]
    assert policy["learning_rate"] == pytest.approx(5e-4) and policy["max_steps"] == 8
