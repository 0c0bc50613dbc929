"""Write workflows of the model side that admins start: model specs, the project's model,
checkpoints (base, champion, promote, send to human evaluation), rounds (launch / cancel /
retry), and a checkpoint's samples (``manage.py generate`` and the generate API: into the queue,
or evaluation-only).

The ONE write path used by the htmx views, the API and the management commands. What the job
runner reports (claim, succeed, fail, reap) lives in ``rlhf.runs``; jobs are enqueued through
``rlhf.tasks``. Nothing here imports the training engine (the web process imports this module).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from labeling.models import Project, Prompt, Response, Split
from labeling.services import (
    Conflict,
    LabelingError,
    comparisons_create,
)
from rlhf import selectors, tasks
from rlhf.leaderboard import GateVerdict
from rlhf.methods import QUEUE_TIER, ConfigError, resolve_config
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
from rlhf.runs import human_eval_record

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


# --- model presets (smollm2 issue) ---------------------------------------------------------------
# name -> (base_model, reward_backbone) of the built-in presets' model specs; ``bootstrap_models
# --preset NAME`` builds the directories (rlhf.training.presets).
PRESET_MODEL_SPECS: dict[str, tuple[str, str]] = {
    "smollm2": ("builtin:smollm2", "builtin:minilm"),
}


def model_spec_preset(preset: str, *, reward_backbone: str = "minilm") -> ModelSpec:
    """The model spec of a built-in preset: ``toy`` is the default spec, ``smollm2`` the
    SmolLM2-135M-Instruct one (created on first use; ``reward_backbone="policy"`` scores with the
    policy's own backbone instead of MiniLM)."""
    if preset == "toy":
        return model_spec_default()
    if preset not in PRESET_MODEL_SPECS:
        raise LabelingError(
            f"unknown preset {preset!r}; use toy or {', '.join(PRESET_MODEL_SPECS)}",
            field="preset",
        )
    base_model, backbone = PRESET_MODEL_SPECS[preset]
    if reward_backbone == "policy":
        backbone = base_model
    spec, _ = ModelSpec.objects.update_or_create(
        name=preset,
        defaults={"base_model": base_model, "reward_backbone": backbone, "device": "auto"},
    )
    return spec


# --- end model presets ---------------------------------------------------------------------------


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

    The gate: the 95% lower bound of its human win-rate against the current champion
    (``WinRate.interval``: tie-aware Wilson, the sign test at 50%) must
    exceed ``settings.PAIRWISE_PROMOTION_MIN_LOWER_BOUND`` (default 0.5), and the round that
    made it must not have flagged its answers' fluency as collapsed
    (:func:`selectors.promotion_blockers`), else
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
        verdict = selectors.gate_verdict(
            checkpoint.pk, champion.pk, win_rate, selectors.promotion_blockers(checkpoint)
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


def pending_candidate_promote(
    *,
    project: Project,
    force: bool = False,
    promoted_by: str = "",
    pending: selectors.PendingCandidate | None = None,
) -> dict[str, Any] | None:
    """Put the latest round's candidate (``selectors.pending_candidate``; ``pending`` when the
    caller has it already) through the promotion gate (``force``: past it, recorded). Returns
    what happened, ``{round, checkpoint, champion, promoted, forced, reason}`` with the gate's
    reason in words, or None when no candidate is pending (no round yet, or the latest round's
    candidate is the champion)."""
    pending = pending or selectors.pending_candidate(project)
    if pending is None:
        return None
    decision = {
        "round": pending.round_number,
        "checkpoint": pending.checkpoint.pk,
        "champion": pending.champion_id,
    }
    try:
        promoted = checkpoint_promote(
            checkpoint=pending.checkpoint, force=force, promoted_by=promoted_by
        )
    except PromotionRefused as refused:  # the verdict the gate gave, in its words
        return {**decision, "promoted": False, "forced": False, "reason": refused.verdict.reason}
    record = promoted.metrics["promotion"]
    return {**decision, "promoted": True, "forced": record["forced"], "reason": record["verdict"]}


def round_launch(
    *,
    project: Project,
    method: str = "dpo",
    config: dict[str, Any] | None = None,
    created_by: Any = None,
    promote_pending: bool = False,
) -> Round:
    """Freeze the judgment snapshot, create the round and its four steps, enqueue the first.

    ``promote_pending``: first put the latest round's candidate through the promotion gate
    (:func:`pending_candidate_promote`), so the round starts from it when humans have shown it
    better; what the gate said is recorded on the round (``launch_decision``). A launch that is
    then refused leaves the champion as it was.
    """
    if not promote_pending:
        return _round_launch(project, method, config, created_by, {})
    by = created_by.get_username() if getattr(created_by, "pk", None) else "a launch"
    with transaction.atomic():
        decision = pending_candidate_promote(project=project, promoted_by=f"{by} (at launch)")
        return _round_launch(project, method, config, created_by, decision or {})


def _round_launch(
    project: Project,
    method: str,
    config: dict[str, Any] | None,
    created_by: Any,
    launch_decision: dict[str, Any],
) -> Round:
    try:  # the method, then the whole config, down to the engine specs it becomes
        resolved = resolve_config(method, config)
    except ConfigError as exc:
        raise LabelingError(str(exc), field=exc.field) from exc
    # The adjudications the round trains on, frozen now: its rows (and their hashes) are made
    # with exactly these, whatever a reviewer changes later.
    frozen = selectors.adjudications_to_freeze(project, resolved["snapshot"])
    chosen = selectors.snapshot_select(project, resolved["snapshot"], method, frozen)
    judgment_ids, rows = chosen.judgment_ids, chosen.rows
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
    # smollm2 issue: the size-aware defaults of the project's base model and this snapshot (the
    # toy's tuned values for the built-in model); the overrides still win
    model_params = checkpoint_champion(project=project).model_spec.num_parameters()
    if model_params is not None:
        try:
            resolved = resolve_config(
                method, config, model_params=model_params, snapshot_size=len(rows)
            )
        except ConfigError as exc:
            raise LabelingError(str(exc), field=exc.field) from exc
    reward_snapshot = selectors.reward_snapshot(resolved["snapshot"])
    reward_ids = selectors.snapshot_judgment_ids(project, reward_snapshot)
    reward_rows = selectors.preference_rows(reward_ids, reward_snapshot, frozen)
    # kept on the round: the adjudications of its snapshots' comparisons, not the project's all
    kept = selectors.adjudications_of_judgments(frozen, [*judgment_ids, *reward_ids])
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
                    project,
                    resolved["snapshot"],
                    judgment_ids,
                    method=method,
                    numbers=chosen.rounds,
                ),
                reward_judgment_ids=reward_ids,
                reward_snapshot_hash=selectors.snapshot_hash(reward_rows),
                reward_snapshot_size=len(reward_rows),
                reward_snapshot_export=selectors.snapshot_export_query(
                    project, reward_snapshot, reward_ids, method="dpo"
                ),
                snapshot_adjudications={str(pk): list(d) for pk, d in kept.items()},
                launch_decision=launch_decision,
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


def generation_request(
    *,
    checkpoint: Checkpoint,
    eval_only: bool = True,
    split: str = "test",
    prompts: int = 200,
    samples: int = 2,
    temperature: float = 1.0,
    max_new_tokens: int = 32,
    seed: int = 0,
    priority: int = 50,
) -> dict[str, Any]:
    """Check a generation request (the generate API) and enqueue it on a worker: ``checkpoint``
    samples the prompts of ``split``; with ``eval_only`` (the default) its samples are stored for
    evaluation and nothing enters the queue. Returns the request as enqueued, with the job's id
    (``job``; None when the task backend keeps no results)."""
    if checkpoint.kind != CheckpointKind.POLICY:
        raise LabelingError("only a policy checkpoint generates", field="checkpoint")
    if split not in selectors.SAMPLE_SPLITS:
        raise LabelingError(
            f"split must be one of {', '.join(selectors.SAMPLE_SPLITS)}", field="split"
        )
    for field, value in (("prompts", prompts), ("samples", samples)):
        if value < 1:
            raise LabelingError(f"{field} must be >= 1", field=field)
    if max_new_tokens < 1:
        raise LabelingError("max_new_tokens must be >= 1", field="max_new_tokens")
    if temperature < 0:
        raise LabelingError("temperature must be >= 0", field="temperature")
    if temperature == 0 and samples != 1:
        raise LabelingError(
            "greedy decoding (temperature 0) gives one sample per prompt: set samples to 1",
            field="samples",
        )
    if not selectors.split_prompts(checkpoint.project, split, 1):
        raise LabelingError(f"the project has no prompts in split {split!r}", field="split")
    request = {
        "checkpoint": checkpoint.pk,
        "eval_only": eval_only,
        "split": split,
        "prompts": prompts,
        "samples": samples,
        "temperature": temperature,
        "max_new_tokens": max_new_tokens,
        "seed": seed,
        "priority": priority,
    }
    return {**request, "job": tasks.checkpoint_generate_enqueue(request)}


def checkpoint_human_eval(
    *,
    checkpoint: Checkpoint,
    opponent: Checkpoint | None = None,
    priority: int = 100,
    requested_by: str = "",
) -> dict[str, Any]:
    """Send ``checkpoint`` vs ``opponent`` (default: the champion) to human evaluation: pair their
    stored responses on the held-out prompts as ``human-eval:X-vs-Y`` comparisons at the front of
    the queue, and record the opponent on the checkpoint (``metrics["human_eval"]``).

    Pairs come from responses the two already wrote (a round's generate step, or an
    evaluation-only generation); a held-out prompt missing either side is counted, not paired.
    """
    project = checkpoint.project
    if checkpoint.kind != CheckpointKind.POLICY:
        raise LabelingError("only a policy checkpoint can be evaluated", field="checkpoint")
    if not 0 <= priority < QUEUE_TIER:
        raise LabelingError(
            f"priority must be in [0, {QUEUE_TIER}) (it orders pairs within the newest round's "
            "queue tier)",
            field="priority",
        )
    opponent = opponent or checkpoint_champion(project=project)
    if opponent.project_id != checkpoint.project_id or opponent.kind != CheckpointKind.POLICY:
        raise LabelingError(
            f"checkpoint #{opponent.pk} is not a policy of this project", field="opponent"
        )
    if opponent.pk == checkpoint.pk:
        raise LabelingError(
            f"checkpoint #{checkpoint.pk} is the opponent itself (the champion): name another",
            field="opponent",
        )
    held_out = list(Prompt.objects.filter(project=project, split=Split.TEST).order_by("id"))
    if not held_out:
        raise LabelingError(
            "the project has no held-out prompts (split 'test') to evaluate on", field="checkpoint"
        )
    mine = selectors.checkpoint_responses(checkpoint, held_out)
    theirs = selectors.checkpoint_responses(opponent, held_out)
    pairs = [(mine[p.pk], theirs[p.pk]) for p in held_out if p.pk in mine and p.pk in theirs]
    if not pairs:
        raise LabelingError(
            f"no held-out prompt has responses of both #{checkpoint.pk} and #{opponent.pk}: "
            "sample them first (evaluation-only generation: POST /api/v1/checkpoints/{id}/"
            "generate/ or manage.py generate PROJECT --checkpoint ID --eval-only)",
            field="opponent",
        )
    batch = f"{selectors.HUMAN_EVAL}:{checkpoint.pk}-vs-{opponent.pk}"
    # At the front: in the newest round's queue tier (rlhf.methods.QUEUE_TIER).
    newest = Round.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0
    tiered = selectors.batch_priority(newest, priority)
    with transaction.atomic():
        created = comparisons_create(project=project, pairs=pairs, priority=tiered, batch=batch)
        human_eval_record(
            checkpoint=checkpoint,
            opponent=opponent,
            batch=batch,
            pairs=len(created),
            by=requested_by,
        )
    return {
        "checkpoint": checkpoint.pk,
        "opponent": opponent.pk,
        "batch": batch,
        "created": len(created),
        "pairs": len(pairs),
        "held_out_prompts": len(held_out),
        "missing": len(held_out) - len(pairs),
    }
