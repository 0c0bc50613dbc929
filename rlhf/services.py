"""Write workflows of the model side: launch / cancel / retry rounds, promote checkpoints, record
what the job runner reports, put generated responses into the queue, reap dead runs.

The ONE write path used by the htmx views, the API, the management commands, the tasks and the
runner. Jobs are enqueued with ``transaction.on_commit`` and take ids only. Nothing here imports
the training engine (the web process imports this module).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from labeling.models import Project, Prompt, Response
from labeling.services import (
    Conflict,
    LabelingError,
    comparisons_create,
    pairs_all,
    responses_add,
)
from rlhf import selectors
from rlhf.methods import ConfigError, resolve_config
from rlhf.models import (
    DEFAULT_MODEL_SPEC,
    MODEL_DEVICES,
    MODEL_DTYPES,
    STEP_ORDER,
    Checkpoint,
    CheckpointKind,
    ModelSpec,
    Round,
    RoundStatus,
    RunStatus,
    Step,
    TrainingRun,
)


def run_output_dir(run_id: int) -> Path:
    """Where a reward / policy step writes its checkpoint directory (atomically, by the engine)."""
    path = Path(settings.PAIRWISE_DATA_DIR) / "checkpoints"
    path.mkdir(parents=True, exist_ok=True)
    return path / f"run-{run_id}"


def heartbeat_stale_after() -> timedelta:
    return timedelta(seconds=float(getattr(settings, "PAIRWISE_HEARTBEAT_STALE_S", 60)))


def task_queue_name() -> str:
    """The queue of the model steps: ``PAIRWISE_TASK_QUEUE``, else ``gpu`` when the task backend
    has that queue (GPU hosts run ``db_worker --queue-name gpu``; ``make demo`` runs ``'*'``)."""
    configured = getattr(settings, "PAIRWISE_TASK_QUEUE", "")
    if configured:
        return str(configured)
    queues = settings.TASKS.get("default", {}).get("QUEUES", [])
    return "gpu" if "gpu" in queues else "default"


def watch_queue_name() -> str:
    """The watchdog runs on the default queue: any worker reaps a dead step."""
    queues = settings.TASKS.get("default", {}).get("QUEUES", [])
    return "default" if not queues or "default" in queues else task_queue_name()


# --- model specs and checkpoints ---------------------------------------------------------------


def model_spec_default() -> ModelSpec:
    """The built-in tiny policy and reward backbone (``bootstrap_models`` builds them)."""
    spec, _ = ModelSpec.objects.get_or_create(
        name=DEFAULT_MODEL_SPEC,
        defaults={
            "base_model": "builtin:policy",
            "reward_backbone": "builtin:reward-backbone",
            "device": "auto",
        },
    )
    return spec


def checkpoint_base(*, project: Project, model_spec: ModelSpec | None = None) -> Checkpoint:
    """The project's checkpoint 0 (the base model itself); created, as champion, on first use."""
    with transaction.atomic():
        base = selectors.checkpoint_base_of(project)
        if base is not None:
            return base
        has_champion = Checkpoint.objects.filter(project=project, is_champion=True).exists()
        return Checkpoint.objects.create(
            project=project,
            model_spec=model_spec or model_spec_default(),
            kind=CheckpointKind.POLICY,
            is_champion=not has_champion,
        )


def model_spec_save(
    *,
    name: str,
    base_model: str,
    reward_backbone: str = "builtin:reward-backbone",
    chat_template: str = "",
    dtype: str = "auto",
    device: str = "auto",
) -> ModelSpec:
    """Create or update a model spec (a base model to tune, its reward backbone, how to load)."""
    if not name.strip():
        raise LabelingError("a model spec needs a name", field="name")
    for field, value in (("base_model", base_model), ("reward_backbone", reward_backbone)):
        if not value.strip():
            raise LabelingError(f"{field} must not be empty", field=field)
    if dtype not in MODEL_DTYPES:
        raise LabelingError(f"dtype must be one of {', '.join(MODEL_DTYPES)}", field="dtype")
    if device not in MODEL_DEVICES:
        raise LabelingError(f"device must be one of {', '.join(MODEL_DEVICES)}", field="device")
    spec, _ = ModelSpec.objects.update_or_create(
        name=name.strip(),
        defaults={
            "base_model": base_model.strip(),
            "reward_backbone": reward_backbone.strip(),
            "chat_template": chat_template,
            "dtype": dtype,
            "device": device,
        },
    )
    return spec


def project_model_set(*, project: Project, model_spec: ModelSpec) -> Checkpoint:
    """Tune ``project`` from ``model_spec``'s base model. Only before its first round: checkpoints
    and responses made by another model stay tied to that one."""
    with transaction.atomic():
        base = checkpoint_base(project=project, model_spec=model_spec)
        if base.model_spec_id == model_spec.pk:
            return base
        if Round.objects.filter(project=project).exists():
            raise Conflict(
                f"project {project.name!r} already has rounds on model {base.model_spec.name!r}; "
                "its model can only change before the first round",
                field="model",
            )
        if Response.objects.filter(checkpoint_ref=str(base.pk)).exists():
            # They would pass for the new model's answers (vs-champion pairs reuse them).
            raise Conflict(
                f"model {base.model_spec.name!r} already wrote responses for project "
                f"{project.name!r}; its model can only change before that",
                field="model",
            )
        base.model_spec = model_spec
        base.save(update_fields=["model_spec"])
        return base


def checkpoint_champion(*, project: Project) -> Checkpoint:
    """The project's champion; the base model until a checkpoint is promoted."""
    champion = Checkpoint.objects.champion_of(project)
    return champion if champion is not None else checkpoint_base(project=project)


def checkpoint_promote(*, checkpoint: Checkpoint) -> Checkpoint:
    """Make a policy checkpoint its project's champion (the next round starts from it)."""
    if checkpoint.kind != CheckpointKind.POLICY:
        raise LabelingError("only a policy checkpoint can be champion", field="checkpoint")
    with transaction.atomic():
        Checkpoint.objects.filter(project_id=checkpoint.project_id, is_champion=True).exclude(
            pk=checkpoint.pk
        ).update(is_champion=False)
        Checkpoint.objects.filter(pk=checkpoint.pk).update(is_champion=True)
    checkpoint.is_champion = True
    return checkpoint


# --- rounds --------------------------------------------------------------------------------------


def _enqueue(run_id: int) -> None:
    from rlhf import tasks

    transaction.on_commit(
        lambda: tasks.training_run_execute.using(queue_name=task_queue_name()).enqueue(run_id)
    )


def round_launch(
    *,
    project: Project,
    method: str = "dpo",
    config: dict[str, Any] | None = None,
    created_by: Any = None,
) -> Round:
    """Freeze the judgment snapshot, create the round and its four steps, enqueue the first."""
    try:  # the method, then the whole config, down to the engine specs it becomes
        resolved = resolve_config(method, config)
    except ConfigError as exc:
        raise LabelingError(str(exc), field=exc.field) from exc
    judgment_ids = selectors.snapshot_judgment_ids(project, resolved["snapshot"])
    rows = selectors.preference_rows(judgment_ids, resolved["snapshot"])
    if not rows:
        newest = resolved["snapshot"]["rounds"] == "newest"
        raise LabelingError(
            "the snapshot holds no usable preference ("
            + (
                "it takes the comparisons the latest round queued: judge them first, or set "
                "snapshot.rounds to 'all'; "
                if newest
                else "judge some comparisons first; "
            )
            + "or relax snapshot.min_agreement / ties / both_bad)",
            field="config",
        )
    with transaction.atomic():
        if Round.objects.filter(
            project=project, status__in=(RoundStatus.QUEUED, RoundStatus.RUNNING)
        ).exists():
            raise Conflict("a round of this project is already queued or running", field="project")
        parent = checkpoint_champion(project=project)
        number = (
            Round.objects.filter(project=project)
            .order_by("-number")
            .values_list("number", flat=True)
            .first()
            or 0
        ) + 1
        try:
            round_ = Round.objects.create(
                project=project,
                number=number,
                method=method,
                config=resolved,
                parent_checkpoint=parent,
                snapshot_judgment_ids=judgment_ids,
                snapshot_hash=selectors.snapshot_hash(judgment_ids, resolved["snapshot"]),
                snapshot_size=len(rows),
                created_by=created_by if getattr(created_by, "pk", None) else None,
            )
        except IntegrityError as exc:
            raise Conflict("a round of this project is already queued or running") from exc
        runs = TrainingRun.objects.bulk_create(
            [TrainingRun(round=round_, step=step) for step in STEP_ORDER]
        )
        _enqueue(runs[0].pk)
    return round_


def round_cancel(*, round: Round) -> Round:
    """Stop a round: queued steps are cancelled at once, a running one gets SIGTERM via the runner."""
    with transaction.atomic():
        locked = Round.objects.select_for_update().get(pk=round.pk)
        if not locked.is_active:
            raise Conflict(
                f"round {locked.number} is {locked.status}; only an active round can be cancelled"
            )
        now = timezone.now()
        TrainingRun.objects.filter(round=locked, status=RunStatus.QUEUED).update(
            status=RunStatus.CANCELLED, finished_at=now, error="cancelled before it started"
        )
        running = TrainingRun.objects.filter(round=locked, status=RunStatus.RUNNING)
        running.update(cancel_requested=True)
        if not running.exists():
            locked.status = RoundStatus.CANCELLED
            locked.finished_at = now
            locked.error = "cancelled"
            locked.save(update_fields=["status", "finished_at", "error"])
        return locked


def round_retry(*, round: Round) -> Round:
    """Run a failed or cancelled round again from its first unfinished step (same snapshot)."""
    with transaction.atomic():
        locked = Round.objects.select_for_update().get(pk=round.pk)
        if locked.status not in (RoundStatus.FAILED, RoundStatus.CANCELLED):
            raise Conflict(
                f"round {locked.number} is {locked.status}; only a failed or cancelled round can be retried"
            )
        if Round.objects.filter(
            project_id=locked.project_id, status__in=(RoundStatus.QUEUED, RoundStatus.RUNNING)
        ).exists():
            raise Conflict("another round of this project is queued or running")
        latest = {run.step: run for run in selectors.round_runs(locked)}
        new_runs = []
        for step in STEP_ORDER:
            previous = latest.get(step)
            if previous is not None and previous.status == RunStatus.SUCCEEDED:
                continue
            new_runs.append(
                TrainingRun(
                    round=locked, step=step, attempt=(previous.attempt + 1) if previous else 1
                )
            )
        if not new_runs:
            raise Conflict("every step of this round already succeeded")
        if new_runs[0].step in (Step.REWARD, Step.POLICY) and locked.checkpoint_id:
            # The policy is trained again: the old candidate no longer belongs to this round.
            locked.checkpoint = None
        created = TrainingRun.objects.bulk_create(new_runs)
        locked.status = RoundStatus.QUEUED
        locked.error = ""
        locked.finished_at = None
        locked.save(update_fields=["status", "error", "finished_at", "checkpoint"])
        _enqueue(created[0].pk)
    return locked


# --- what the runner reports ---------------------------------------------------------------------


def _enqueue_watch(run_id: int) -> None:
    """Schedule the run's watchdog one stale period ahead (backends without deferral: none)."""
    from rlhf import tasks

    watch = tasks.training_run_watch.using(queue_name=watch_queue_name())
    if not watch.get_backend().supports_defer:
        return
    run_after = timezone.now() + heartbeat_stale_after()
    transaction.on_commit(lambda: watch.using(run_after=run_after).enqueue(run_id))


def training_run_watch(*, run_id: int) -> str:
    """Reap stale runs; while this run is still running, look again one stale period later."""
    runs_reap()
    if TrainingRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).exists():
        _enqueue_watch(run_id)
        return "watching"
    return "done"


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
        _enqueue_watch(run_id)
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
        if next_run is not None:
            _enqueue(next_run.pk)
        else:
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


def round_responses_add(
    *,
    round: Round,
    candidate: Sequence[GeneratedSample],
    champion: Sequence[GeneratedSample],
) -> dict[str, int]:
    """Put a round's fresh responses into the queue, at the front.

    ``candidate``: samples of the new checkpoint (several per prompt); ``champion``: samples of
    the round's parent for prompts where it had none yet. Creates ``round-N:vs-champion``
    comparisons (new sample 0 vs the champion's response) and ``round-N:on-policy`` ones (two
    samples of the new policy). Identical texts collapse into one response, so a pair of
    identical samples makes no comparison.
    """
    new_ckpt = round.checkpoint
    if new_ckpt is None:
        raise LabelingError("the round has no new checkpoint to generate from")
    parent = round.parent_checkpoint
    generate = round.config.get("generate", {})
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
        vs_champion, on_policy = [], []
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
            if opponent is not None:
                vs_champion.append((added[0], opponent))
            if len(added) >= 2:
                on_policy.append((added[0], added[1]))
        created_vs = comparisons_create(
            project=round.project,
            pairs=vs_champion,
            priority=int(generate.get("vs_champion_priority", 100)),
            batch=selectors.batch_tag(round.number, selectors.VS_CHAMPION),
        )
        created_on = comparisons_create(
            project=round.project,
            pairs=on_policy,
            priority=int(generate.get("on_policy_priority", 90)),
            batch=selectors.batch_tag(round.number, selectors.ON_POLICY),
        )
    return {"vs_champion": len(created_vs), "on_policy": len(created_on)}


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


def _kill_orphan(run: TrainingRun) -> None:
    if run.pid and run.host == socket.gethostname():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(run.pid, signal.SIGKILL)


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
        _kill_orphan(run)
        if run.step in (Step.REWARD, Step.POLICY):
            partial_outputs_remove(run_output_dir(run.pk))
        reaped.append(run.pk)
    return reaped


def checkpoint_samples_add(
    *,
    checkpoint: Checkpoint,
    samples: Sequence[GeneratedSample],
    batch: str,
    priority: int = 50,
) -> int:
    """Responses a checkpoint generated outside a round (``manage.py generate``) into the queue:
    every pair of its distinct samples of a prompt becomes a comparison. Returns how many."""
    prompts = Prompt.objects.in_bulk({s.prompt_id for s in samples})
    by_prompt: dict[int, list[GeneratedSample]] = {}
    for sample in samples:
        by_prompt.setdefault(sample.prompt_id, []).append(sample)
    created = 0
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
            created += len(
                comparisons_create(
                    project=checkpoint.project,
                    pairs=pairs_all(added),
                    priority=priority,
                    batch=batch,
                )
            )
    return created
