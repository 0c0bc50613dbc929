"""The model side's data: model specs, checkpoints, rounds and training runs.

- :class:`ModelSpec`: which base policy and reward backbone a project tunes (the built-in tiny
  models by default, any Hugging Face causal LM / sequence-classification backbone otherwise).
- :class:`Checkpoint`: a policy (or reward model) adapter directory. Each project's base model
  is its checkpoint 0 (no adapter). At most one policy checkpoint per project is the champion.
- :class:`Round`: one tuning round: method and full config, the frozen data snapshot (judgment
  ids + hash), status and the checkpoint it produced.
- :class:`TrainingRun`: one step of a round (reward, policy, evaluate, generate) run by the job
  runner as a child process: status, progress, metrics history, log tail, heartbeat.

Workflows over these rows live in ``rlhf.services`` (admins) and ``rlhf.runs`` (the job runner);
nothing here imports torch (the method choices come from the registry in ``rlhf.methods``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from rlhf.methods import DEFAULT_METHOD, method_choices
from rlhf.model_size import parameter_count

BUILTIN_PREFIX = "builtin:"


DEFAULT_MODEL_SPEC = "builtin"  # the built-in tiny models' spec, created on first use
MODEL_DEVICES = ("auto", "cpu", "cuda")
MODEL_DTYPES = ("auto", "float32", "bfloat16", "float16")


def resolve_model_path(value: str) -> str:
    """``builtin:<name>`` → ``$PAIRWISE_DATA_DIR/models/<name>``; anything else unchanged."""
    if value.startswith(BUILTIN_PREFIX):
        return str(data_dir() / "models" / value[len(BUILTIN_PREFIX) :])
    return value


def data_dir() -> Path:
    """``$PAIRWISE_DATA_DIR``: checkpoints, run directories and built-in models live below it."""
    return Path(settings.PAIRWISE_DATA_DIR)


def resolve_data_path(value: str) -> str:
    """A path stored relative to ``$PAIRWISE_DATA_DIR`` made absolute (absolute ones unchanged)."""
    if not value:
        return ""
    path = Path(value)
    return str(path if path.is_absolute() else data_dir() / path)


def relative_to_data(path: str | Path) -> str:
    """The path to store for ``path``: relative to ``$PAIRWISE_DATA_DIR`` when below it, so the
    data dir can move (:func:`resolve_data_path` turns it back)."""
    path = Path(path)
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(data_dir().resolve()))
    return str(path)


class ModelSpec(models.Model):
    name = models.CharField(max_length=100, unique=True)
    base_model = models.CharField(
        max_length=500,
        help_text="Local directory or Hugging Face hub id of the causal LM; "
        "'builtin:policy' is the built-in tiny model.",
    )
    reward_backbone = models.CharField(
        max_length=500,
        help_text="Sequence-classification backbone for the reward model "
        "('builtin:reward-backbone' by default).",
    )
    chat_template = models.TextField(
        blank=True, help_text="Jinja chat template; empty: the tokenizer's own."
    )
    dtype = models.CharField(
        max_length=16,
        default="auto",
        help_text="auto (bfloat16 on a CUDA GPU that has it, else float32) | float32 | bfloat16 "
        "| float16",
    )
    device = models.CharField(max_length=8, default="auto", help_text="auto | cpu | cuda")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(device__in=list(MODEL_DEVICES)), name="modelspec_device_valid"
            ),
            models.CheckConstraint(
                condition=Q(dtype__in=list(MODEL_DTYPES)),
                name="modelspec_dtype_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def base_model_path(self) -> str:
        return resolve_model_path(self.base_model)

    @property
    def reward_backbone_path(self) -> str:
        return resolve_model_path(self.reward_backbone)

    def num_parameters(self) -> int | None:
        """The base model's parameter count from its safetensors headers (None: unknown, e.g. a
        hub id); drives the size-aware round defaults (``rlhf.methods.size_defaults``)."""
        return parameter_count(self.base_model_path)

    def engine_fields(self, *, policy: bool = True) -> dict[str, Any]:
        """What every training-engine spec of this model takes from it. The chat template is
        the policy's: steps on the reward backbone (``policy=False``) keep their tokenizer's."""
        fields: dict[str, Any] = {"device": self.device, "dtype": self.dtype}
        if policy and self.chat_template.strip():
            fields["chat_template"] = self.chat_template
        return fields


class CheckpointKind(models.TextChoices):
    POLICY = "policy", "Policy"
    REWARD = "reward", "Reward model"


class CheckpointQuerySet(models.QuerySet["Checkpoint"]):
    def policies(self) -> CheckpointQuerySet:
        return self.filter(kind=CheckpointKind.POLICY)

    def champion_of(self, project: Any) -> Checkpoint | None:
        return self.filter(project=project, is_champion=True).first()


class Checkpoint(models.Model):
    project = models.ForeignKey(
        "labeling.Project", on_delete=models.CASCADE, related_name="checkpoints"
    )
    model_spec = models.ForeignKey(ModelSpec, on_delete=models.PROTECT, related_name="checkpoints")
    kind = models.CharField(
        max_length=8, choices=CheckpointKind.choices, default=CheckpointKind.POLICY
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    adapter_dir = models.CharField(
        max_length=500,
        blank=True,
        help_text="Adapter directory relative to PAIRWISE_DATA_DIR; empty for the base model.",
    )
    created_by = models.ForeignKey(
        "TrainingRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    metrics = models.JSONField(default=dict, blank=True)
    is_champion = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CheckpointQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project"], condition=Q(is_champion=True), name="checkpoint_one_champion"
            ),
            models.CheckConstraint(
                condition=~Q(is_champion=True, kind="reward"),
                name="checkpoint_champion_is_policy",
            ),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def is_base(self) -> bool:
        return self.kind == CheckpointKind.POLICY and not self.adapter_dir

    @property
    def label(self) -> str:
        if self.is_base:
            return f"#{self.pk} base ({self.model_spec.name})"
        return f"#{self.pk} {self.kind}"

    @property
    def adapter_path(self) -> str | None:
        """The adapter's absolute directory, or None for the base model."""
        return resolve_data_path(self.adapter_dir) or None


class RoundStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = (RoundStatus.QUEUED, RoundStatus.RUNNING)
FINISHED_STATUSES = (RoundStatus.SUCCEEDED, RoundStatus.FAILED, RoundStatus.CANCELLED)


class Round(models.Model):
    project = models.ForeignKey("labeling.Project", on_delete=models.CASCADE, related_name="rounds")
    number = models.PositiveIntegerField()
    # The choices are the method registry's (a callable: new methods need no migration).
    method = models.CharField(max_length=16, choices=method_choices, default=DEFAULT_METHOD)
    config = models.JSONField(default=dict, help_text="The full, resolved round config.")
    parent_checkpoint = models.ForeignKey(
        Checkpoint, on_delete=models.PROTECT, related_name="rounds_started"
    )
    snapshot_judgment_ids = models.JSONField(default=list)
    snapshot_hash = models.CharField(max_length=64)
    snapshot_size = models.PositiveIntegerField(default=0, help_text="Preference rows used.")
    snapshot_export = models.JSONField(
        default=dict,
        blank=True,
        help_text="Export parameters that give exactly the rows the round trains on (frozen at "
        "launch: its rounds, split, policies and judgment cut-off).",
    )
    # What the reward step trains on (``snapshot.reward_rounds``; empty in rounds launched before
    # it existed, which trained the reward model on the policy's snapshot).
    reward_judgment_ids = models.JSONField(default=list, blank=True)
    reward_snapshot_hash = models.CharField(max_length=64, blank=True)
    reward_snapshot_size = models.PositiveIntegerField(
        default=0, help_text="Preference rows the reward model trains on."
    )
    reward_snapshot_export = models.JSONField(
        default=dict,
        blank=True,
        help_text="Export parameters that give exactly the rows the reward model trains on.",
    )
    # With ``snapshot.adjudicated: prefer``: the project's adjudications as they stood at launch,
    # ``{comparison id: [choice, strength]}``, so that a later change of one does not change what
    # the round trains on (or its hash).
    snapshot_adjudications = models.JSONField(default=dict, blank=True)
    # Asked at launch (``promote_pending``): the latest round's candidate put through the
    # promotion gate before this round chose its parent: ``{round, checkpoint, champion,
    # promoted, reason}`` (``services.pending_candidate_promote``); empty when not asked.
    launch_decision = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=10, choices=RoundStatus.choices, default=RoundStatus.QUEUED
    )
    reward_checkpoint = models.ForeignKey(
        Checkpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    checkpoint = models.ForeignKey(
        Checkpoint,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="produced_by_round",
        help_text="The policy checkpoint this round produced.",
    )
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["project", "number"], name="round_unique_number"),
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(status__in=["queued", "running"]),
                name="round_one_active_per_project",
            ),
        ]

    def __str__(self) -> str:
        return f"round {self.number} of {self.project_id}"

    @property
    def batch_prefix(self) -> str:
        return f"round-{self.number}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class Step(models.TextChoices):
    REWARD = "reward", "Reward model"
    POLICY = "policy", "Policy"
    EVALUATE = "evaluate", "Evaluate"
    GENERATE = "generate", "Generate"


STEP_ORDER = (Step.REWARD, Step.POLICY, Step.EVALUATE, Step.GENERATE)


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


def newest_attempts(runs: Iterable[TrainingRun]) -> list[TrainingRun]:
    """The newest attempt of each step among ``runs`` (e.g. a round's prefetched runs), in step
    order."""
    newest: dict[str, TrainingRun] = {}
    for run in sorted(runs, key=lambda run: (run.attempt, run.pk)):
        newest[run.step] = run
    return [newest[step] for step in STEP_ORDER if step in newest]


class TrainingRunQuerySet(models.QuerySet["TrainingRun"]):
    def running(self) -> TrainingRunQuerySet:
        return self.filter(status=RunStatus.RUNNING)

    def latest_per_step(self) -> list[TrainingRun]:
        """The newest attempt of each step, in step order."""
        return newest_attempts(self)


class TrainingRun(models.Model):
    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="runs")
    step = models.CharField(max_length=10, choices=Step.choices)
    attempt = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    cancel_requested = models.BooleanField(default=False)
    progress = models.JSONField(
        default=dict, blank=True, help_text="{step, total, eta_s, loss, phase}"
    )
    metrics_history = models.JSONField(default=list, blank=True)
    spec = models.JSONField(default=dict, blank=True, help_text="The step's full spec.")
    result = models.JSONField(default=dict, blank=True)
    log_tail = models.TextField(blank=True)
    error = models.TextField(blank=True)
    run_dir = models.CharField(max_length=500, blank=True)
    command = models.JSONField(default=list, blank=True)
    host = models.CharField(max_length=200, blank=True)
    pid = models.IntegerField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cpu_s = models.FloatField(
        null=True, blank=True, help_text="CPU seconds of the step's child processes."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TrainingRunQuerySet.as_manager()

    class Meta:
        ordering = ["round", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["round", "step", "attempt"], name="trainingrun_unique_attempt"
            ),
        ]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="trainingrun_live_idx")]

    def __str__(self) -> str:
        return f"{self.step} of round {self.round_id} (attempt {self.attempt})"

    @property
    def is_finished(self) -> bool:
        return self.status in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)

    @property
    def percent(self) -> int:
        if self.status == RunStatus.SUCCEEDED:
            return 100
        total = int(self.progress.get("total") or 0)
        if total <= 0:
            return 0
        within = max(0.0, min(1.0, int(self.progress.get("step") or 0) / total))
        # A step of several engine calls (generate: candidate, then champion) fills one bar.
        phases = max(1, int(self.progress.get("phase_count") or 1))
        done = max(0, min(phases - 1, int(self.progress.get("phase_index") or 0)))
        return round(100 * (done + within) / phases)

    @property
    def wall_s(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None
