"""The life of a training run, as the job runner reports it: claim, succeed (register the
checkpoint, put generated responses into the queue), fail, and the reaper of runs whose worker
stopped.

Only the runner and the tasks call these; admins act on rounds through ``rlhf.services``. Nothing
here enqueues a job (``rlhf.tasks`` does, from what these return) and nothing imports the
training engine.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from labeling.models import Prompt, Split
from labeling.services import (
    Conflict,
    LabelingError,
    comparisons_create,
    pairs_all,
    responses_add,
)
from rlhf import selectors
from rlhf.models import (
    Checkpoint,
    CheckpointKind,
    Round,
    RoundStatus,
    RunStatus,
    Step,
    TrainingRun,
    data_dir,
)
from rlhf.supervision import group_kill


def run_output_dir(run_id: int) -> Path:
    """Where a reward / policy step writes its checkpoint directory (atomically, by the engine)."""
    path = data_dir() / "checkpoints"
    path.mkdir(parents=True, exist_ok=True)
    return path / f"run-{run_id}"


def heartbeat_stale_after() -> timedelta:
    """How long a running step may go without a heartbeat before the reaper fails it."""
    return timedelta(seconds=float(getattr(settings, "PAIRWISE_HEARTBEAT_STALE_S", 60)))


def run_next_queued(*, run_id: int) -> int | None:
    """The id of the step to run after ``run_id`` (its round's first queued run), if any."""
    same_round = TrainingRun.objects.filter(pk=run_id).values("round_id")
    return (
        TrainingRun.objects.filter(round_id__in=same_round, status=RunStatus.QUEUED)
        .order_by("id")
        .values_list("pk", flat=True)
        .first()
    )


def training_run_watch(*, run_id: int) -> bool:
    """Reap stale runs; True while ``run_id`` is still running (to be watched again)."""
    runs_reap()
    return TrainingRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).exists()


def training_run_claim(*, run_id: int) -> TrainingRun | None:
    """Take a queued run for this worker; None when it is not queued (already run, cancelled)."""
    now = timezone.now()
    with transaction.atomic():
        claimed = TrainingRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
            status=RunStatus.RUNNING,
            started_at=now,
            heartbeat_at=now,
            host=socket.gethostname(),
        )
        if not claimed:
            return None
        run = TrainingRun.objects.select_related("round__project").get(pk=run_id)
        Round.objects.filter(pk=run.round_id, status=RoundStatus.QUEUED).update(
            status=RoundStatus.RUNNING
        )
    return run


def _round_finish(round_id: int, status: str, error: str = "") -> None:
    Round.objects.filter(pk=round_id).update(
        status=status, error=error[:4000], finished_at=timezone.now()
    )


def training_run_fail(*, run: TrainingRun, error: str, cancelled: bool = False) -> None:
    """Record a failed (or cancelled) step; the round stops, its later steps are cancelled."""
    now = timezone.now()
    status = RunStatus.CANCELLED if cancelled else RunStatus.FAILED
    with transaction.atomic():
        TrainingRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
            status=status, error=error[:4000], finished_at=now, pid=None
        )
        TrainingRun.objects.filter(round_id=run.round_id, status=RunStatus.QUEUED).update(
            status=RunStatus.CANCELLED, finished_at=now, error=f"not run: {run.step} {status}"
        )
        _round_finish(
            run.round_id,
            RoundStatus.CANCELLED if cancelled else RoundStatus.FAILED,
            f"{run.step}: {error}",
        )


def training_run_succeed(
    *,
    run: TrainingRun,
    result: dict[str, Any],
    checkpoint: dict[str, Any] | None = None,
    evaluation: dict[str, Any] | None = None,
) -> Checkpoint | None:
    """Record a finished step, register its checkpoint, enqueue the next step or close the round.

    ``checkpoint`` (reward / policy steps): ``{"adapter_dir": relative path, "metrics": {...}}``.
    ``evaluation`` (evaluate step): stored on the round's new checkpoint under ``evaluate``.
    """
    now = timezone.now()
    registered: Checkpoint | None = None
    with transaction.atomic():
        round_ = (
            Round.objects.select_for_update()
            .select_related("parent_checkpoint")
            .get(pk=run.round_id)
        )
        updated = TrainingRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
            status=RunStatus.SUCCEEDED, result=result, finished_at=now, pid=None, error=""
        )
        if not updated:
            raise Conflict(f"run {run.pk} is no longer running; its result is discarded")
        if checkpoint is not None:
            kind = CheckpointKind.REWARD if run.step == Step.REWARD else CheckpointKind.POLICY
            parent = round_.parent_checkpoint if kind == CheckpointKind.POLICY else None
            registered = Checkpoint.objects.create(
                project_id=round_.project_id,
                model_spec_id=round_.parent_checkpoint.model_spec_id,
                kind=kind,
                parent=parent,
                adapter_dir=checkpoint["adapter_dir"],
                created_by_id=run.pk,
                metrics=checkpoint.get("metrics", {}),
            )
            if kind == CheckpointKind.REWARD:
                round_.reward_checkpoint = registered
            else:
                round_.checkpoint = registered
            round_.save(update_fields=["reward_checkpoint", "checkpoint"])
        if evaluation is not None and round_.checkpoint_id:
            candidate = Checkpoint.objects.select_for_update().get(pk=round_.checkpoint_id)
            candidate.metrics = {**candidate.metrics, "evaluate": evaluation}
            candidate.save(update_fields=["metrics"])
        next_run = (
            TrainingRun.objects.filter(round=round_, status=RunStatus.QUEUED).order_by("id").first()
        )
        if next_run is None:
            # Cancelled while this step was finishing: its later steps were cancelled already.
            done = all(r.status == RunStatus.SUCCEEDED for r in selectors.round_runs(round_))
            if done:
                _round_finish(round_.pk, RoundStatus.SUCCEEDED)
            else:
                _round_finish(round_.pk, RoundStatus.CANCELLED, "cancelled")
    return registered


@dataclass(frozen=True)
class GeneratedSample:
    prompt_id: int
    text: str
    seed: int | None
    params: dict[str, Any]


@dataclass(frozen=True)
class SamplesAdded:
    """What a checkpoint's samples became: responses stored, comparisons queued, and held-out
    prompts whose samples were kept out of the queue."""

    responses: int
    comparisons: int
    held_out_prompts: int


def checkpoint_samples_add(
    *,
    checkpoint: Checkpoint,
    samples: Sequence[GeneratedSample],
    batch: str,
    priority: int = 50,
    eval_only: bool = False,
) -> SamplesAdded:
    """Responses a checkpoint generated outside a round (``manage.py generate``, the generate
    API) stored with its ``checkpoint_ref``. Every pair of its distinct samples of a training
    prompt becomes a comparison; held-out prompts' samples make none (they never train), and with
    ``eval_only`` no sample does (evaluation-only generation)."""
    prompts = Prompt.objects.in_bulk({s.prompt_id for s in samples})
    by_prompt: dict[int, list[GeneratedSample]] = {}
    for sample in samples:
        by_prompt.setdefault(sample.prompt_id, []).append(sample)
    responses = comparisons = held_out = 0
    with transaction.atomic():
        for prompt_id, group in sorted(by_prompt.items()):
            added = responses_add(
                prompt=prompts[prompt_id],
                texts=[s.text for s in group],
                model_name=f"{checkpoint.model_spec.name}@{checkpoint.pk}",
                checkpoint_ref=str(checkpoint.pk),
                generation_params=group[0].params,
                seeds=[s.seed for s in group],
            )
            responses += len(added)
            if prompts[prompt_id].split == Split.TEST:
                held_out += 1
                continue
            if eval_only:
                continue
            comparisons += len(
                comparisons_create(
                    project=checkpoint.project,
                    pairs=pairs_all(added),
                    priority=priority,
                    batch=batch,
                )
            )
    return SamplesAdded(responses=responses, comparisons=comparisons, held_out_prompts=held_out)


def human_eval_record(
    *, checkpoint: Checkpoint, opponent: Checkpoint, batch: str, pairs: int, by: str = ""
) -> None:
    """Record on ``checkpoint`` that its held-out pairs against ``opponent`` went to human
    evaluation (``metrics["human_eval"]``: one entry per batch), so each human figure names the
    opponent it was measured against, whoever is champion later."""
    locked = Checkpoint.objects.select_for_update().get(pk=checkpoint.pk)
    entries = list(locked.metrics.get("human_eval", []))
    previous = [e for e in entries if e.get("batch") == batch]
    entries = [e for e in entries if e.get("batch") != batch]
    entries.append(
        {
            "opponent": opponent.pk,
            "batch": batch,
            "pairs": pairs + sum(int(e.get("pairs", 0)) for e in previous),
            "at": timezone.now().isoformat(),
            "by": by,
        }
    )
    locked.metrics = {**locked.metrics, "human_eval": entries}
    locked.save(update_fields=["metrics"])
    checkpoint.metrics = locked.metrics


def round_responses_add(
    *,
    round: Round,
    candidate: Sequence[GeneratedSample],
    champion: Sequence[GeneratedSample],
) -> dict[str, int]:
    """Put a round's fresh responses into the queue, at the front: in the round's priority tier
    (``rlhf.methods.QUEUE_TIER``), above every older round's unjudged pairs, since they are what
    the next round trains on.

    ``candidate``: samples of the new checkpoint (several per prompt); ``champion``: samples of
    the round's parent for prompts where it had none yet. On training prompts this creates
    ``round-N:vs-champion`` comparisons (new sample 0 vs the champion's response) and
    ``round-N:on-policy`` ones (two samples of the new policy). Held-out prompts never train: their
    responses are stored for evaluation and make no comparison, unless the round's
    ``generate.human_eval`` asks for ``round-N:human-eval`` pairs (new vs champion; recorded on
    the new checkpoint with its opponent). Identical texts collapse into one response, so a pair
    of identical samples makes no comparison.
    """
    new_ckpt = round.checkpoint
    if new_ckpt is None:
        raise LabelingError("the round has no new checkpoint to generate from")
    parent = round.parent_checkpoint
    generate = round.config.get("generate", {})
    human_eval = bool(generate.get("human_eval", False))
    spec_name = new_ckpt.model_spec.name
    prompts = Prompt.objects.in_bulk({s.prompt_id for s in (*candidate, *champion)})
    with transaction.atomic():
        for sample in champion:
            responses_add(
                prompt=prompts[sample.prompt_id],
                texts=[sample.text],
                model_name=f"{spec_name}@{parent.pk}",
                checkpoint_ref=str(parent.pk),
                generation_params=sample.params,
                seeds=[sample.seed],
            )
        champion_responses = selectors.checkpoint_responses(parent, prompts.values())
        by_prompt: dict[int, list[GeneratedSample]] = {}
        for sample in candidate:
            by_prompt.setdefault(sample.prompt_id, []).append(sample)
        vs_champion, on_policy, held_out_pairs = [], [], []
        held_out = 0
        for prompt_id, samples in sorted(by_prompt.items()):
            added = responses_add(
                prompt=prompts[prompt_id],
                texts=[s.text for s in samples],
                model_name=f"{spec_name}@{new_ckpt.pk}",
                checkpoint_ref=str(new_ckpt.pk),
                generation_params=samples[0].params,
                seeds=[s.seed for s in samples],
            )
            opponent = champion_responses.get(prompt_id)
            if prompts[prompt_id].split == Split.TEST:
                held_out += 1
                if opponent is not None:
                    held_out_pairs.append((added[0], opponent))
                continue
            if opponent is not None:
                vs_champion.append((added[0], opponent))
            if len(added) >= 2:
                on_policy.append((added[0], added[1]))
        priority = selectors.batch_priority(
            round.number, int(generate.get("vs_champion_priority", 100))
        )
        created_vs = comparisons_create(
            project=round.project,
            pairs=vs_champion,
            priority=priority,
            batch=selectors.batch_tag(round.number, selectors.VS_CHAMPION),
        )
        created_on = comparisons_create(
            project=round.project,
            pairs=on_policy,
            priority=selectors.batch_priority(
                round.number, int(generate.get("on_policy_priority", 90))
            ),
            batch=selectors.batch_tag(round.number, selectors.ON_POLICY),
        )
        created_eval = []
        if human_eval and held_out_pairs:
            batch = selectors.batch_tag(round.number, selectors.HUMAN_EVAL)
            created_eval = comparisons_create(
                project=round.project, pairs=held_out_pairs, priority=priority, batch=batch
            )
            human_eval_record(
                checkpoint=new_ckpt,
                opponent=parent,
                batch=batch,
                pairs=len(created_eval),
                by=f"round {round.number}",
            )
    return {
        "vs_champion": len(created_vs),
        "on_policy": len(created_on),
        "human_eval": len(created_eval),
        "held_out_prompts": held_out,
    }


# --- the reaper ----------------------------------------------------------------------------------


def partial_outputs_remove(path: str | Path) -> None:
    """Remove a step's output that no checkpoint row owns, and its temp siblings."""
    path = Path(path)
    if path.name == "":
        return
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()
    if path.parent.is_dir():
        for sibling in path.parent.glob(f".{path.name}.*"):
            shutil.rmtree(sibling, ignore_errors=True) if sibling.is_dir() else sibling.unlink(
                missing_ok=True
            )


def runs_reap(*, now: Any = None) -> list[int]:
    """Mark running steps whose heartbeat stopped as failed; their rounds fail with the reason.

    A step's child process left behind on this host is killed and its partial output removed,
    so no half-written checkpoint survives. Returns the reaped run ids.
    """
    now = now or timezone.now()
    cutoff = now - heartbeat_stale_after()
    stale = list(TrainingRun.objects.running().filter(heartbeat_at__lt=cutoff))
    reaped: list[int] = []
    for run in stale:
        reason = f"the worker stopped: no heartbeat since {run.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC"
        with transaction.atomic():
            updated = TrainingRun.objects.filter(
                pk=run.pk, status=RunStatus.RUNNING, heartbeat_at__lt=cutoff
            ).update(status=RunStatus.FAILED, error=reason, finished_at=now)
            if not updated:
                continue
            TrainingRun.objects.filter(round_id=run.round_id, status=RunStatus.QUEUED).update(
                status=RunStatus.CANCELLED, finished_at=now, error=f"not run: {run.step} failed"
            )
            _round_finish(
                run.round_id,
                RoundStatus.CANCELLED if run.cancel_requested else RoundStatus.FAILED,
                f"{run.step}: {reason}",
            )
        if run.pid and run.host == socket.gethostname():
            # The step's child (and its group) outlived the worker on this host: it must have
            # stopped before its partial output is removed, or it could write it again.
            group_kill(run.pid)
        if run.step in (Step.REWARD, Step.POLICY):
            partial_outputs_remove(run_output_dir(run.pk))
        reaped.append(run.pk)
    return reaped
