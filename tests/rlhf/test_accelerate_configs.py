"""The accelerate configs docs/deploy.md ships (multi-GPU, DeepSpeed ZeRO 2/3, FSDP, multi-node):
accelerate's own loader takes each (it refuses unknown keys), and the runner launches training
steps with the one PAIRWISE_ACCELERATE_CONFIG names. (Nothing here has GPUs: the launches
themselves are for GPU hosts.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from rlhf.runner import build_command

CONFIGS = Path(__file__).resolve().parents[2] / "docs" / "accelerate"
EXPECTED = {
    "multi_gpu.yaml": ("MULTI_GPU", 1),
    "deepspeed_zero2.yaml": ("DEEPSPEED", 1),
    "deepspeed_zero3.yaml": ("DEEPSPEED", 1),
    "fsdp.yaml": ("FSDP", 1),
    "multi_node_deepspeed.yaml": ("DEEPSPEED", 2),
}


def test_every_shipped_config_is_listed() -> None:
    assert sorted(path.name for path in CONFIGS.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_accelerate_loads_the_config(name: str) -> None:
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(CONFIGS / name))
    distributed, machines = EXPECTED[name]
    assert config.distributed_type.name == distributed
    assert config.num_machines == machines
    assert config.num_processes % machines == 0
    if distributed == "DEEPSPEED":
        assert config.deepspeed_config["zero_stage"] in (2, 3)


def test_training_steps_launch_through_the_named_config(tmp_path: Path) -> None:
    config = str(CONFIGS / "deepspeed_zero3.yaml")
    command = build_command(
        "reward", tmp_path / "spec.json", tmp_path / "out.json", launcher="accelerate",
        accelerate_config=config,
    )  # fmt: skip
    assert command[1:4] == ["launch", "--config_file", config]
    assert command[4:7] == ["-m", "rlhf.training", "reward"]
