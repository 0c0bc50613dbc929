"""Admin workflows of the model side: launching, cancelling and retrying rounds, promoting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from labeling.services import Conflict, LabelingError
from rlhf import runner, runs, selectors, services
from rlhf.models import Checkpoint, CheckpointKind, RoundStatus, RunStatus


@pytest.mark.django_db
def test_cancel_of_a_queued_round_is_immediate(judged_project: Any, fake_engine: Path) -> None:
    round_ = services.round_launch(project=judged_project, method="dpo")  # never committed
    services.round_cancel(round=round_)
    round_.refresh_from_db()
    assert round_.status == RoundStatus.CANCELLED
    assert set(round_.runs.values_list("status", flat=True)) == {RunStatus.CANCELLED}


@pytest.mark.django_db
def test_one_active_round_per_project(judged_project: Any, fake_engine: Path) -> None:
    services.round_launch(project=judged_project, method="dpo")
    with pytest.raises(Conflict):
        services.round_launch(project=judged_project, method="dpo")


@pytest.mark.django_db
def test_launch_needs_judgments_and_checks_config(demo_project: Any, fake_engine: Path) -> None:
    with pytest.raises(LabelingError) as empty:
        services.round_launch(project=demo_project, method="dpo")
    assert empty.value.field == "config"
    with pytest.raises(LabelingError) as bad:
        services.round_launch(project=demo_project, method="dpo", config={"policy": {"betta": 1}})
    assert bad.value.field == "policy.betta"
    with pytest.raises(LabelingError) as method:
        services.round_launch(project=demo_project, method="ppo")
    assert method.value.field == "method"


@pytest.mark.django_db
def test_launch_enqueues_its_first_step_on_commit(
    judged_project: Any,
    fake_engine: Path,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    executed: list[int] = []
    monkeypatch.setattr(runner, "training_run_execute", lambda run_id: executed.append(run_id))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        round_ = services.round_launch(project=judged_project, method="dpo")
    assert executed == []  # nothing runs before the round's rows are committed
    reward, *later = selectors.round_runs(round_)
    assert [reward.status, *(run.status for run in later)] == [RunStatus.QUEUED] * 4
    assert round_.status == RoundStatus.QUEUED
    for callback in callbacks:
        callback()
    assert executed == [reward.pk]


@pytest.mark.django_db
def test_retry_refuses_a_round_that_is_not_failed_or_cancelled(
    judged_project: Any, fake_engine: Path
) -> None:
    round_ = services.round_launch(project=judged_project, method="dpo")
    with pytest.raises(Conflict, match="only a failed or cancelled round"):
        services.round_retry(round=round_)
    services.round_cancel(round=round_)
    with pytest.raises(Conflict, match="only an active round"):
        services.round_cancel(round=round_)


@pytest.mark.django_db
def test_cancel_of_a_running_round_only_flags_the_running_step(
    judged_project: Any, fake_engine: Path
) -> None:
    round_ = services.round_launch(project=judged_project, method="dpo")
    reward = runs.training_run_claim(run_id=selectors.round_runs(round_)[0].pk)
    assert reward is not None
    services.round_cancel(round=round_)
    round_.refresh_from_db()
    reward.refresh_from_db()
    assert round_.status == RoundStatus.RUNNING  # until the runner stops the child
    assert reward.status == RunStatus.RUNNING and reward.cancel_requested
    assert [r.status for r in selectors.round_runs(round_)[1:]] == [RunStatus.CANCELLED] * 3


@pytest.mark.django_db
def test_only_a_policy_checkpoint_can_be_promoted(judged_project: Any) -> None:
    base = services.checkpoint_champion(project=judged_project)
    reward = Checkpoint.objects.create(
        project=judged_project, model_spec=base.model_spec, kind=CheckpointKind.REWARD
    )
    with pytest.raises(LabelingError, match="only a policy checkpoint"):
        services.checkpoint_promote(checkpoint=reward)
    candidate = Checkpoint.objects.create(
        project=judged_project, model_spec=base.model_spec, parent=base, adapter_dir="x"
    )
    services.checkpoint_promote(checkpoint=candidate)
    assert Checkpoint.objects.champion_of(judged_project) == candidate
    assert list(Checkpoint.objects.filter(is_champion=True)) == [candidate]
