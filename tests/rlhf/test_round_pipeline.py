"""A round end to end through services, task, runner and a fake engine (fast, no torch)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from labeling.models import Comparison, Response
from rlhf import selectors, services
from rlhf.models import Checkpoint, CheckpointKind, RoundStatus, RunStatus


@pytest.mark.django_db
def test_round_runs_all_steps_and_fills_the_queue(
    judged_project: Any, fake_engine: Path, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        round_ = services.round_launch(project=judged_project, method="dpo")
    round_.refresh_from_db()
    assert round_.status == RoundStatus.SUCCEEDED, round_.error
    runs = selectors.round_runs(round_)
    assert [r.step for r in runs] == ["reward", "policy", "evaluate", "generate"]
    assert all(r.status == RunStatus.SUCCEEDED for r in runs)
    assert runs[0].progress["step"] == runs[0].progress["total"] == 3
    assert runs[0].metrics_history and "loss" in runs[0].metrics_history[-1]
    candidate = round_.checkpoint
    assert candidate.kind == CheckpointKind.POLICY
    assert candidate.parent == round_.parent_checkpoint
    assert candidate.metrics["evaluate"]["win_rate"] == 0.6
    assert Path(candidate.adapter_path).is_dir()
    assert round_.reward_checkpoint.metrics["eval_accuracy"] == 0.75
    # Frozen snapshot: the judgment ids and the rows the reward step trained on.
    rows = Path(fake_engine, runs[0].run_dir, "preferences.jsonl").read_text().splitlines()
    assert len(rows) == round_.snapshot_size
    assert json.loads(rows[0])["chosen"]
    # New responses went into the queue, at the front, with their provenance.
    new = Comparison.objects.filter(batch__startswith="round-1:")
    tags = set(new.values_list("batch", flat=True))
    assert tags == {"round-1:vs-champion", "round-1:on-policy"}
    assert new.count() == 11 * 2
    first = Comparison.objects.filter(project=judged_project).open().first()
    assert first.batch == "round-1:vs-champion"
    vs = new.filter(batch="round-1:vs-champion").first()
    refs = {vs.response_a.checkpoint_ref, vs.response_b.checkpoint_ref}
    assert refs == {str(candidate.pk), str(round_.parent_checkpoint.pk)}
    assert Response.objects.filter(checkpoint_ref=str(candidate.pk)).count() == 22
    # The champion is unchanged until an admin promotes.
    assert Checkpoint.objects.champion_of(judged_project) == round_.parent_checkpoint
