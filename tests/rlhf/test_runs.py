"""The life of a training run: claim, fail, succeed, generated responses into the queue, reaper."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from labeling.models import Comparison, Prompt
from labeling.services import Conflict
from rlhf import runs, selectors, services
from rlhf.methods import QUEUE_TIER
from rlhf.models import Checkpoint, CheckpointKind, Round, RoundStatus, RunStatus, TrainingRun
from rlhf.runs import GeneratedSample


def _launched(project: Any) -> tuple[Round, list[TrainingRun]]:
    round_ = services.round_launch(project=project, method="dpo")  # not committed: no task runs
    return round_, selectors.round_runs(round_)


@pytest.mark.django_db
def test_claim_is_safe_to_run_twice(judged_project: Any, fake_engine: Path) -> None:
    round_, (reward, *_) = _launched(judged_project)
    claimed = runs.training_run_claim(run_id=reward.pk)
    assert claimed is not None and claimed.pk == reward.pk
    assert claimed.status == RunStatus.RUNNING and claimed.host == socket.gethostname()
    assert claimed.started_at is not None and claimed.heartbeat_at is not None
    round_.refresh_from_db()
    assert round_.status == RoundStatus.RUNNING
    assert runs.training_run_claim(run_id=reward.pk) is None  # a second worker gets nothing
    services.round_cancel(round=round_)
    assert runs.training_run_claim(run_id=selectors.round_runs(round_)[1].pk) is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("cancelled", "run_status", "round_status"),
    [
        (False, RunStatus.FAILED, RoundStatus.FAILED),
        (True, RunStatus.CANCELLED, RoundStatus.CANCELLED),
    ],
)
def test_fail_stops_the_round_and_cancels_its_later_steps(
    judged_project: Any, fake_engine: Path, cancelled: bool, run_status: str, round_status: str
) -> None:
    round_, (reward, *_) = _launched(judged_project)
    claimed = runs.training_run_claim(run_id=reward.pk)
    assert claimed is not None
    runs.training_run_fail(run=claimed, error="boom", cancelled=cancelled)
    round_.refresh_from_db()
    first, *later = selectors.round_runs(round_)
    assert (first.status, first.error) == (run_status, "boom")
    assert {(r.status, r.error) for r in later} == {
        (RunStatus.CANCELLED, f"not run: reward {run_status}")
    }
    assert (round_.status, round_.error) == (round_status, "reward: boom")
    assert round_.finished_at is not None
    assert runs.run_next_queued(run_id=reward.pk) is None


@pytest.mark.django_db
def test_succeed_registers_the_checkpoint_and_the_last_step_closes_the_round(
    judged_project: Any, fake_engine: Path
) -> None:
    round_, (reward, policy, evaluate, generate) = _launched(judged_project)
    claimed = runs.training_run_claim(run_id=reward.pk)
    assert claimed is not None
    registered = runs.training_run_succeed(
        run=claimed,
        result={"loss": 0.5},
        checkpoint={"adapter_dir": "checkpoints/run-1", "metrics": {"eval_accuracy": 0.8}},
    )
    assert registered is not None and registered.kind == CheckpointKind.REWARD
    assert registered.created_by == reward and registered.parent is None
    round_.refresh_from_db()
    assert round_.reward_checkpoint == registered and round_.status == RoundStatus.RUNNING
    reward.refresh_from_db()
    assert (reward.status, reward.result) == (RunStatus.SUCCEEDED, {"loss": 0.5})
    assert runs.run_next_queued(run_id=reward.pk) == policy.pk
    with pytest.raises(Conflict, match="no longer running"):
        runs.training_run_succeed(run=claimed, result={})

    for run in (policy, evaluate, generate):
        claimed = runs.training_run_claim(run_id=run.pk)
        assert claimed is not None
        runs.training_run_succeed(
            run=claimed,
            result={},
            checkpoint={"adapter_dir": "checkpoints/run-2"} if run == policy else None,
            evaluation={"win_rate": 0.6} if run == evaluate else None,
        )
    round_.refresh_from_db()
    assert round_.status == RoundStatus.SUCCEEDED and round_.finished_at is not None
    assert round_.checkpoint is not None and round_.checkpoint.parent == round_.parent_checkpoint
    assert round_.checkpoint.metrics["evaluate"] == {"win_rate": 0.6}
    assert runs.run_next_queued(run_id=generate.pk) is None


def _round_with_candidate(project: Any) -> Round:
    round_, _ = _launched(project)
    round_.checkpoint = Checkpoint.objects.create(
        project=project,
        model_spec=round_.parent_checkpoint.model_spec,
        parent=round_.parent_checkpoint,
        adapter_dir="checkpoints/run-x",
    )
    round_.save(update_fields=["checkpoint"])
    return Round.objects.select_related("checkpoint__model_spec", "parent_checkpoint").get(
        pk=round_.pk
    )


@pytest.mark.django_db
def test_round_responses_go_into_the_queue_as_vs_champion_and_on_policy_pairs(
    judged_project: Any, fake_engine: Path
) -> None:
    round_ = _round_with_candidate(judged_project)
    first, second = Prompt.objects.filter(project=judged_project).order_by("id")[:2]
    params = {"temperature": 1.0}
    counts = runs.round_responses_add(
        round=round_,
        candidate=[
            GeneratedSample(first.pk, "new one", 1, params),
            GeneratedSample(first.pk, "new two", 2, params),
            GeneratedSample(second.pk, "same", 1, params),
            GeneratedSample(second.pk, "same", 2, params),  # identical: no on-policy pair
        ],
        champion=[
            GeneratedSample(first.pk, "old", 0, params),
            GeneratedSample(second.pk, "old too", 0, params),
        ],
    )
    assert counts == {"vs_champion": 2, "on_policy": 1, "human_eval": 0, "held_out_prompts": 0}
    vs = Comparison.objects.filter(batch="round-1:vs-champion")
    assert set(vs.values_list("priority", flat=True)) == {1 * QUEUE_TIER + 100}
    for comparison in vs:
        refs = {comparison.response_a.checkpoint_ref, comparison.response_b.checkpoint_ref}
        assert refs == {str(round_.checkpoint_id), str(round_.parent_checkpoint_id)}
    on_policy = Comparison.objects.get(batch="round-1:on-policy")
    assert on_policy.priority == 1 * QUEUE_TIER + 90 and on_policy.prompt_id == first.pk
    assert {on_policy.response_a.text, on_policy.response_b.text} == {"new one", "new two"}
    # The queue serves them first.
    head = Comparison.objects.filter(project=judged_project).open().first()
    assert head is not None and head.batch == "round-1:vs-champion"


@pytest.mark.django_db
def test_round_responses_need_the_new_checkpoint(judged_project: Any, fake_engine: Path) -> None:
    from labeling.services import LabelingError

    round_, _ = _launched(judged_project)
    with pytest.raises(LabelingError, match="no new checkpoint"):
        runs.round_responses_add(round=round_, candidate=[], champion=[])


@pytest.mark.django_db
def test_reaper_fails_runs_without_heartbeat(judged_project: Any, fake_engine: Path) -> None:
    round_, (reward, *_) = _launched(judged_project)
    run = runs.training_run_claim(run_id=reward.pk)
    assert run is not None
    output = runs.run_output_dir(run.pk)
    partial = output.parent / f".{output.name}.tmp-999"
    partial.mkdir(parents=True)
    assert runs.runs_reap() == []
    later = timezone.now() + timedelta(minutes=5)
    assert runs.runs_reap(now=later) == [run.pk]
    run.refresh_from_db()
    round_.refresh_from_db()
    assert run.status == RunStatus.FAILED and "no heartbeat" in run.error
    assert round_.status == RoundStatus.FAILED
    assert not partial.exists()
    assert set(round_.runs.exclude(pk=run.pk).values_list("status", flat=True)) == {
        RunStatus.CANCELLED
    }
    assert runs.runs_reap(now=later) == []  # once


@pytest.mark.django_db
def test_reaper_kills_the_process_group_the_dead_worker_left(
    judged_project: Any, fake_engine: Path
) -> None:
    _, (reward, *_) = _launched(judged_project)
    run = runs.training_run_claim(run_id=reward.pk)
    assert run is not None
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        TrainingRun.objects.filter(pk=run.pk).update(pid=orphan.pid)
        assert runs.runs_reap(now=timezone.now() + timedelta(minutes=5)) == [run.pk]
        assert orphan.wait(timeout=10) == -signal.SIGKILL
    finally:
        orphan.kill()


def test_partial_outputs_remove_takes_the_output_and_its_temp_siblings(tmp_path: Path) -> None:
    output = tmp_path / "run-7"
    (output / "merged").mkdir(parents=True)
    (tmp_path / ".run-7.tmp-1").mkdir()
    (tmp_path / ".run-7.lock").write_text("x")
    (tmp_path / "run-70").mkdir()
    runs.partial_outputs_remove(output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run-70"]
    runs.partial_outputs_remove(output)  # already gone: nothing to do
