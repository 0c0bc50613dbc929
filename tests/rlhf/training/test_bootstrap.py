"""bootstrap.run: one builder at a time per data dir (parallel test workers, two commands)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from rlhf.training import bootstrap
from rlhf.training.specs import BootstrapSpec


def test_two_builders_of_one_data_dir_train_the_policy_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained: list[Path] = []
    both_started = threading.Barrier(2)

    def fake_train(spec: BootstrapSpec, destination: Path, events: Any) -> tuple[float, int]:
        trained.append(destination)
        time.sleep(0.3)  # long enough for the other builder to find the recipe missing too
        save_file({"w": torch.zeros(2, 5)}, str(destination / "model.safetensors"))
        return 1.0, 10

    def build(_: int) -> Any:
        both_started.wait(timeout=5)
        return bootstrap.run(spec)

    monkeypatch.setattr(bootstrap, "train_policy", fake_train)
    spec = BootstrapSpec(data_dir=str(tmp_path), policy_steps=1, reward_backbone="policy")
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(build, range(2)))

    assert len(trained) == 1
    assert sorted(result.rebuilt for result in results) == [False, True]
    assert [result.num_parameters for result in results] == [10, 10]
    policy = Path(results[0].policy_dir)
    assert (policy / "model.safetensors").is_file() and (policy / bootstrap.RECIPE_FILE).is_file()
    # the backbone (a copy of the policy) was built once as well, after the policy
    backbone = Path(results[0].reward_backbone_dir)
    assert (backbone / "model.safetensors").is_file()
    assert sorted(p.name for p in policy.parent.iterdir()) == ["policy", "reward-backbone"]
