"""Serializers of the tuning API: shapes only; the rules live in ``rlhf.services``."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from rlhf import selectors
from rlhf.methods import DEFAULT_METHOD, METHODS
from rlhf.models import Checkpoint, Round, TrainingRun, newest_attempts


class RoundLaunchSerializer(serializers.Serializer[Any]):
    method = serializers.CharField(
        default=DEFAULT_METHOD,
        help_text=f"One of {' | '.join(METHODS)} (default {DEFAULT_METHOD}). No 'ppo': TRL removed "
        "PPOTrainer (PR #7020); grpo and rloo are the PPO-family online RL methods.",
    )
    config = serializers.DictField(
        required=False,
        default=dict,
        help_text="Overrides of the method's defaults, by section: seed, snapshot, reward, "
        "policy, evaluate, generate.",
    )


class TrainingRunSerializer(serializers.ModelSerializer[TrainingRun]):
    percent = serializers.IntegerField(read_only=True)

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "step",
            "attempt",
            "status",
            "percent",
            "progress",
            "cancel_requested",
            "error",
            "log_tail",
            "result",
            "heartbeat_at",
            "started_at",
            "finished_at",
        ]


class RoundSerializer(serializers.ModelSerializer[Round]):
    runs = serializers.SerializerMethodField()
    snapshot_export = serializers.SerializerMethodField(
        help_text="The export URL of exactly the rows the round trained on (its dataset card "
        "shows snapshot_hash as the preference hash)."
    )

    class Meta:
        model = Round
        fields = [
            "id",
            "project",
            "number",
            "method",
            "status",
            "config",
            "parent_checkpoint",
            "checkpoint",
            "reward_checkpoint",
            "snapshot_hash",
            "snapshot_size",
            "snapshot_export",
            "error",
            "created_at",
            "finished_at",
            "runs",
        ]

    def get_snapshot_export(self, round_: Round) -> str:
        return selectors.round_export_url(round_)

    def get_runs(self, round_: Round) -> list[dict[str, Any]]:
        # ``runs.all()``: a list of rounds prefetches them (one query, not one per round).
        runs = newest_attempts(round_.runs.all())
        return [dict(TrainingRunSerializer(run).data) for run in runs]


class CheckpointSerializer(serializers.ModelSerializer[Checkpoint]):
    model_spec = serializers.CharField(source="model_spec.name")
    is_base = serializers.BooleanField(read_only=True)
    human_win_rate = serializers.SerializerMethodField(
        help_text="Judged new-vs-champion pairs: {wins, losses, ties, rate}."
    )

    class Meta:
        model = Checkpoint
        fields = [
            "id",
            "project",
            "kind",
            "model_spec",
            "parent",
            "is_base",
            "is_champion",
            "adapter_dir",
            "metrics",
            "human_win_rate",
            "created_at",
        ]

    def get_human_win_rate(self, checkpoint: Checkpoint) -> dict[str, Any] | None:
        win_rates = self.context.get("win_rates", {})
        rate = win_rates.get(checkpoint.pk)
        if rate is None:
            return None
        return {"wins": rate.wins, "losses": rate.losses, "ties": rate.ties, "rate": rate.rate}


class ProjectModelSerializer(serializers.Serializer[Any]):
    model_spec = serializers.CharField(
        help_text="The name of a model spec (manage.py model_spec, or the Django admin)."
    )
