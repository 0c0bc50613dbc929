"""The model side's jobs: which queue they go to, and what each task enqueues next."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rlhf import runner, runs, selectors, services, tasks
from rlhf.models import RoundStatus, RunStatus, TrainingRun


def test_model_steps_go_to_the_gpu_queue_when_there_is_one(settings: Any) -> None:
    settings.TASKS = {"default": {"BACKEND": "x", "QUEUES": ["default", "gpu"]}}
    assert tasks.task_queue_name() == "gpu"
    assert tasks.watch_queue_name() == "default"
    settings.TASKS = {"default": {"BACKEND": "x", "QUEUES": []}}
    assert tasks.task_queue_name() == "default"
    settings.PAIRWISE_TASK_QUEUE = "training"
    assert tasks.task_queue_name() == "training"


@pytest.mark.django_db
def test_a_succeeded_step_enqueues_the_next_and_a_failed_one_does_not(
    judged_project: Any, fake_engine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    round_ = services.round_launch(project=judged_project, method="dpo")  # not committed
    reward, policy, *_ = selectors.round_runs(round_)
    enqueued: list[int] = []
    monkeypatch.setattr(tasks, "training_run_enqueue", enqueued.append)

    def step_succeeds(run_id: int) -> str:
        TrainingRun.objects.filter(pk=run_id).update(status=RunStatus.SUCCEEDED)
        return "succeeded"

    monkeypatch.setattr(runner, "training_run_execute", step_succeeds)
    assert tasks.training_run_execute.call(reward.pk) == "succeeded"
    assert enqueued == [policy.pk]  # the round's first queued step
    monkeypatch.setattr(runner, "training_run_execute", lambda run_id: "failed")
    assert tasks.training_run_execute.call(policy.pk) == "failed"
    assert enqueued == [policy.pk]


@pytest.mark.django_db
def test_the_watchdog_reaps_a_stale_run_and_stops_watching(
    judged_project: Any, fake_engine: Path, settings: Any
) -> None:
    round_ = services.round_launch(project=judged_project, method="dpo")
    run = runs.training_run_claim(run_id=selectors.round_runs(round_)[0].pk)
    assert run is not None
    assert tasks.training_run_watch.call(run.pk) == "watching"  # the heartbeat is fresh
    settings.PAIRWISE_HEARTBEAT_STALE_S = 0
    assert tasks.training_run_watch.call(run.pk) == "done"
    run.refresh_from_db()
    round_.refresh_from_db()
    assert run.status == RunStatus.FAILED and round_.status == RoundStatus.FAILED
