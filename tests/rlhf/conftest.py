"""Fixtures of the model-side tests: a data dir per test, the fake engine, a judged demo project."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from labeling.models import Choice, Judgment, Project, Side
from rlhf import services
from rlhf.demo import demo_project_create
from rlhf.models import (
    STEP_ORDER,
    Checkpoint,
    CheckpointKind,
    Round,
    RoundStatus,
    RunStatus,
    TrainingRun,
)
from rlhf.simulate import annotators_ensure, judge_in_process
from tests.factories import ComparisonFactory, PromptFactory, ResponseFactory, UserFactory


@pytest.fixture(autouse=True)
def small_snapshots_allowed(settings: Any) -> None:
    """The demo projects are tiny: let their rounds launch (test_signals checks the default)."""
    settings.PAIRWISE_MIN_SNAPSHOT = 1


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
def pending_candidate(demo_project: Project) -> Checkpoint:
    """Round 1's candidate in the demo project: made by a succeeded round from the base, not
    promoted; each test judges its vs-champion pairs as it needs."""
    base = services.checkpoint_champion(project=demo_project)
    candidate = Checkpoint.objects.create(
        project=demo_project, model_spec=base.model_spec, parent=base, adapter_dir="x"
    )
    Round.objects.create(
        project=demo_project, number=1, parent_checkpoint=base, checkpoint=candidate,
        status=RoundStatus.SUCCEEDED, snapshot_hash="0" * 64,
    )  # fmt: skip
    return candidate


@pytest.fixture
def judged_project(demo_project: Project) -> Project:
    """The demo project with every comparison judged by two rule-following annotators."""
    users = [user for user, _ in annotators_ensure(demo_project, 2)]
    judge_in_process(project=demo_project, annotators=users, rule="correct_polite", noise=0.0)
    return demo_project


@pytest.fixture
def round_history(db: Any) -> Callable[..., list[Round]]:
    """Build ``rounds`` finished rounds of a project without the engine: each with its reward and
    policy checkpoints (chained), four succeeded steps (``attempts`` of each), a loss curve, and
    one judged vs-champion comparison (the candidate wins) so that win-rates have data."""

    def build(project: Project, rounds: int, *, attempts: int = 1) -> list[Round]:
        base = services.checkpoint_base(project=project)
        judge: Any = UserFactory.create()
        parent, made = base, []
        for number in range(1, rounds + 1):
            reward = Checkpoint.objects.create(
                project=project,
                model_spec=base.model_spec,
                kind=CheckpointKind.REWARD,
                adapter_dir=f"checkpoints/reward-{number}",
                metrics={"eval_accuracy": 0.75},
            )
            policy = Checkpoint.objects.create(
                project=project,
                model_spec=base.model_spec,
                parent=parent,
                adapter_dir=f"checkpoints/policy-{number}",
                metrics={"evaluate": {"win_rate": 0.6, "kl": 0.01}},
            )
            round_ = Round.objects.create(
                project=project,
                number=number,
                method="dpo",
                config={"seed": 0},
                parent_checkpoint=parent,
                reward_checkpoint=reward,
                checkpoint=policy,
                status=RoundStatus.SUCCEEDED,
                snapshot_hash="0" * 64,
                snapshot_size=3,
            )
            curve = [{"phase": "x", "step": s, "loss": 1.0 / s} for s in range(1, 6)]
            TrainingRun.objects.bulk_create(
                TrainingRun(
                    round=round_,
                    step=step,
                    attempt=attempt,
                    status=RunStatus.SUCCEEDED if attempt == attempts else RunStatus.FAILED,
                    progress={"phase": step, "step": 5, "total": 5},
                    metrics_history=curve,
                    result={"comparisons": {"vs_champion": 1, "on_policy": 0}},
                    log_tail="done",
                )
                for attempt in range(1, attempts + 1)
                for step in STEP_ORDER
            )
            prompt = PromptFactory.create(project=project)
            comparison = ComparisonFactory.create(
                project=project,
                prompt=prompt,
                response_a=ResponseFactory.create(prompt=prompt, checkpoint_ref=str(policy.pk)),
                response_b=ResponseFactory.create(prompt=prompt, checkpoint_ref=str(base.pk)),
                batch=f"round-{number}:vs-champion",
            )
            Judgment.objects.create(
                annotator=judge, comparison=comparison, choice=Choice.A, shown_left=Side.A
            )
            parent = policy
            made.append(round_)
        return made

    return build
