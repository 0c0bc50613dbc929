"""Fixtures for the training engine: tiny built-in models (cached under var/test-models/) and
session-wide reward / DPO checkpoints trained once, on as little data as still shows learning
(clear-cut pairs, a few optimiser steps). No database, no Django."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from rlhf.training import bootstrap, corpus, dpo, reward, rules
from rlhf.training.specs import BootstrapSpec, DPOSpec, RewardSpec

REPO_ROOT = Path(__file__).resolve().parents[3]
TEST_POLICY_STEPS = 60


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """Built-in policy + policy-architecture reward backbone, small budget, reused across runs."""
    key = f"v{bootstrap.RECIPE_VERSION}-steps{TEST_POLICY_STEPS}"
    data_dir = REPO_ROOT / "var" / "test-models" / key
    bootstrap.run(
        BootstrapSpec(
            data_dir=str(data_dir), policy_steps=TEST_POLICY_STEPS, reward_backbone="policy"
        )
    )
    return data_dir / "models"


@pytest.fixture(scope="session")
def policy_dir(models_dir: Path) -> str:
    return str(models_dir / "policy")


@pytest.fixture(scope="session")
def backbone_dir(models_dir: Path) -> str:
    return str(models_dir / "reward-backbone")


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("training")


@pytest.fixture(scope="session")
def preferences_file(work_dir: Path) -> Path:
    """A learnable preference: correct-and-polite answers over wrong, impolite ones."""
    return write_jsonl(
        work_dir / "prefs.jsonl", rules.synthetic_preferences(160, seed=0, clear_cut=True)
    )


@pytest.fixture(scope="session")
def prompts_file(work_dir: Path) -> Path:
    rows = corpus.demo_prompts(16, seed=5)
    return write_jsonl(
        work_dir / "prompts.jsonl",
        ({"prompt_id": r["prompt_id"], "prompt": r["prompt"]} for r in rows),
    )


@pytest.fixture(scope="session")
def reward_result(backbone_dir: str, preferences_file: Path, work_dir: Path) -> Any:
    spec = RewardSpec(base_model=backbone_dir, data=str(preferences_file), output_dir=str(work_dir / "reward"),
                      num_epochs=1.0, batch_size=16, learning_rate=3e-3)  # fmt: skip
    return reward.run(spec)


@pytest.fixture(scope="session")
def dpo_result(policy_dir: str, preferences_file: Path, work_dir: Path) -> Any:
    spec = DPOSpec(base_model=policy_dir, data=str(preferences_file), output_dir=str(work_dir / "dpo"),
                   max_steps=8, batch_size=8, learning_rate=1e-3)  # fmt: skip
    return dpo.run(spec)
