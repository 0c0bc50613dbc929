"""Fixtures of the model-side tests: a data dir per test, the fake engine, a judged demo project."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from labeling.models import Project
from rlhf.demo import demo_project_create
from rlhf.simulate import annotators_ensure, judge_in_process


@pytest.fixture
def data_dir(settings: Any, tmp_path: Path) -> Path:
    settings.PAIRWISE_DATA_DIR = tmp_path / "data"
    settings.PAIRWISE_DATA_DIR.mkdir()
    return Path(settings.PAIRWISE_DATA_DIR)


@pytest.fixture
def fake_engine(settings: Any, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Steps run ``tests.rlhf.fake_training`` (same CLI protocol, no torch) with quick beats."""
    settings.PAIRWISE_TRAINING_MODULE = "tests.rlhf.fake_training"
    settings.PAIRWISE_HEARTBEAT_S = 0.2
    settings.PAIRWISE_PROGRESS_FLUSH_S = 0.1
    settings.PAIRWISE_CANCEL_GRACE_S = 2
    monkeypatch.setenv("FAKE_STEPS", "3")
    monkeypatch.setenv("FAKE_STEP_S", "0.01")
    return data_dir


@pytest.fixture
def demo_project(db: Any) -> Project:
    """A small demo project (8 train + 3 held-out prompts, 3 responses each), unjudged."""
    return demo_project_create(
        name="demo", train_prompts=8, held_out_prompts=3, annotators=("ann-a", "ann-b")
    ).project


@pytest.fixture
def judged_project(demo_project: Project) -> Project:
    """The demo project with every comparison judged by two rule-following annotators."""
    users = [user for user, _ in annotators_ensure(demo_project, 2)]
    judge_in_process(project=demo_project, annotators=users, rule="correct_polite", noise=0.0)
    return demo_project
