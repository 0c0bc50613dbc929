"""Write workflows of the model side that admins start: model specs, the project's model,
checkpoints (base, champion, promote), rounds (launch / cancel / retry), and a checkpoint's
samples into the queue (``manage.py generate``).

The ONE write path used by the htmx views, the API and the management commands. What the job
runner reports (claim, succeed, fail, reap) lives in ``rlhf.runs``; jobs are enqueued through
``rlhf.tasks``. Nothing here imports the training engine (the web process imports this module).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
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
from rlhf import selectors, tasks
from rlhf.leaderboard import GateVerdict, promotion_verdict
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
from rlhf.runs import GeneratedSample

logger = logging.getLogger(__name__)

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


class PromotionRefused(Conflict):
    """The promotion gate refused: humans have not shown the candidate better than the champion."""

    def __init__(self, verdict: GateVerdict) -> None:
        super().__init__(
            f"not promoted: {verdict.reason}. An admin can promote anyway with force.",
            field="checkpoint",
        )
        self.verdict = verdict


def checkpoint_promote(
    *, checkpoint: Checkpoint, force: bool = False, promoted_by: str = ""
) -> Checkpoint:
    """Make a policy checkpoint its project's champion (the next round starts from it).

    The gate: the Wilson 95% lower bound of its human win-rate against the current champion must
    exceed ``settings.PAIRWISE_PROMOTION_MIN_LOWER_BOUND`` (default 0.5), else
    :class:`PromotionRefused` (409) says why and how many more judged pairs would decide it.
    ``force=True`` promotes anyway. Every promotion records its evidence, whether it was forced
    and who asked (``promoted_by``) under ``metrics["promotion"]`` and logs it (a warning when
    forced past a refusal).
    """
    if checkpoint.kind != CheckpointKind.POLICY:
        raise LabelingError("only a policy checkpoint can be champion", field="checkpoint")
    with transaction.atomic():
        champion = checkpoint_champion(project=checkpoint.project)
        if champion.pk == checkpoint.pk:
            checkpoint.is_champion = True
            return checkpoint
        win_rate = selectors.human_win_rate(checkpoint, champion)
        verdict = promotion_verdict(
            win_rate,
            candidate=f"#{checkpoint.pk}",
            champion=f"#{champion.pk}",
            min_lower_bound=settings.PAIRWISE_PROMOTION_MIN_LOWER_BOUND,
        )
        if not verdict.passed and not force:
            raise PromotionRefused(verdict)
        record = {
            "at": timezone.now().isoformat(),
            "by": promoted_by,
            "forced": force and not verdict.passed,
            "previous_champion": champion.pk,
            "wins": win_rate.wins,
            "losses": win_rate.losses,
            "ties": win_rate.ties,
            "lower": win_rate.lower,
            "upper": win_rate.upper,
            "min_lower_bound": settings.PAIRWISE_PROMOTION_MIN_LOWER_BOUND,
            "verdict": verdict.reason,
        }
        Checkpoint.objects.filter(project_id=checkpoint.project_id, is_champion=True).exclude(
            pk=checkpoint.pk
        ).update(is_champion=False)
        checkpoint.metrics = {**checkpoint.metrics, "promotion": record}
        checkpoint.is_champion = True
        checkpoint.save(update_fields=["is_champion", "metrics"])
    if record["forced"]:
        logger.warning(
            "checkpoint #%s FORCED to champion by %s past the gate: %s",
            checkpoint.pk,
            promoted_by or "?",
            verdict.reason,
        )
    else:
        logger.info("checkpoint #%s promoted by %s: %s", checkpoint.pk, promoted_by, verdict.reason)
    return checkpoint


# --- rounds --------------------------------------------------------------------------------------


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
    rows = selectors.training_rows(method, judgment_ids, resolved["snapshot"])
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
    minimum = settings.PAIRWISE_MIN_SNAPSHOT
    if len(rows) < minimum:
        raise LabelingError(
            f"the snapshot holds {len(rows)} usable training rows, fewer than the "
            f"{minimum} a round needs (PAIRWISE_MIN_SNAPSHOT): judge {minimum - len(rows)} more "
            "decided comparisons first, or relax snapshot.min_agreement / ties / both_bad",
            field="config",
        )
    reward_snapshot = selectors.reward_snapshot(resolved["snapshot"])
    reward_ids = selectors.snapshot_judgment_ids(project, reward_snapshot)
    reward_rows = selectors.preference_rows(reward_ids, reward_snapshot)
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
                snapshot_hash=selectors.snapshot_hash(rows),
                snapshot_size=len(rows),
                snapshot_export=selectors.snapshot_export_query(
                    project, resolved["snapshot"], judgment_ids, method=method
                ),
                reward_judgment_ids=reward_ids,
                reward_snapshot_hash=selectors.snapshot_hash(reward_rows),
                reward_snapshot_size=len(reward_rows),
                reward_snapshot_export=selectors.snapshot_export_query(
                    project, reward_snapshot, reward_ids, method="dpo"
                ),
                created_by=created_by if getattr(created_by, "pk", None) else None,
            )
        except IntegrityError as exc:
            raise Conflict("a round of this project is already queued or running") from exc
        runs = TrainingRun.objects.bulk_create(
            [TrainingRun(round=round_, step=step) for step in STEP_ORDER]
        )
        tasks.training_run_enqueue(runs[0].pk)
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
        tasks.training_run_enqueue(created[0].pk)
    return locked


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
