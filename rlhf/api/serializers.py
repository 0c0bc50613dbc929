"""Serializers of the tuning API: shapes only; the rules live in ``rlhf.services``."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from rlhf import selectors
from rlhf.leaderboard import Strength, WinRate
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
    promote_pending = serializers.BooleanField(
        default=False,
        help_text="First put the latest round's candidate through the promotion gate, so the "
        "round starts from it when humans have shown it better; the round records what the "
        "gate said (launch_decision).",
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
        help_text="The export URL with the filters of the rows the round trained on (its dataset "
        "card shows snapshot_hash as the preference hash): it reads today's votes and "
        "adjudications, so it gives other rows once one of them was edited; rows does not."
    )
    reward_snapshot_export = serializers.SerializerMethodField(
        help_text="The same for the rows the round's reward model trained on "
        "(snapshot.reward_rounds: the whole history by default)."
    )
    rows = serializers.SerializerMethodField(
        help_text="{reward, policy}: the URL of the rows each step was given, exactly "
        "(GET /api/v1/rounds/{id}/rows/?step=), for the steps that have started."
    )
    signals = serializers.SerializerMethodField(
        help_text="Each headline figure by its source: reward_model {says, win_rate_vs_parent, "
        "kl_to_parent, held_out_accuracy, held_out_pairs, accuracy_lower, accuracy_upper, "
        "sampled_says, sampled: [{opponent: base|champion, checkpoint, win_rate, lower, upper, "
        "pairs, prompts, samples_per_prompt, temperature, perplexity_under_base, "
        "opponent_perplexity_under_base, fluency_ratio, opponent_fluency_ratio}] (the evaluate "
        "step's sampled win-rates, Wilson 95% over prompts, the base model's perplexity on each "
        "side's samples, and that over its perplexity on its own samples of the same lengths: "
        "1 reads like the base model's own)} and "
        "humans {says, wins, losses, ties, judged, rate, lower, upper} (judged new-vs-parent "
        "pairs; the interval is Wilson's on the decisive judgments, ties a sure half), "
        "snapshot_size, and flags [{code, message}]: reward_model_coin, kl_high, kl_negative, "
        "kl_estimate_off, fluency_collapse, length_collapse, small_snapshot, humans_disagree, "
        "reward_pairs_withheld."
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
            "launch_decision",
            "checkpoint",
            "reward_checkpoint",
            "snapshot_hash",
            "snapshot_size",
            "snapshot_export",
            "reward_snapshot_hash",
            "reward_snapshot_size",
            "reward_snapshot_export",
            "rows",
            "error",
            "created_at",
            "finished_at",
            "runs",
            "signals",
        ]

    def get_snapshot_export(self, round_: Round) -> str:
        return selectors.round_export_url(round_)

    def get_reward_snapshot_export(self, round_: Round) -> str:
        return selectors.round_reward_export_url(round_)

    def get_rows(self, round_: Round) -> dict[str, str]:
        return selectors.round_rows_urls(round_, newest_attempts(round_.runs.all()))

    def get_signals(self, round_: Round) -> dict[str, Any]:
        # A list passes every round's human tallies (one query); a single round looks its up.
        tallies = self.context.get("human_tallies")
        humans = None if tallies is None else tallies.get(round_.pk)
        return selectors.round_signals(round_, humans).as_dict()

    def get_runs(self, round_: Round) -> list[dict[str, Any]]:
        # ``runs.all()``: a list of rounds prefetches them (one query, not one per round).
        runs = newest_attempts(round_.runs.all())
        return [dict(TrainingRunSerializer(run).data) for run in runs]


def _win_rate(rate: WinRate, opponent: int | None) -> dict[str, Any]:
    return {
        "opponent": opponent,
        "wins": rate.wins,
        "losses": rate.losses,
        "ties": rate.ties,
        "judged": rate.judged,
        "rate": rate.rate,
        "lower": rate.lower,
        "upper": rate.upper,
    }


def _strength(strength: Strength | None) -> dict[str, Any] | None:
    if strength is None:
        return None
    return {
        "strength": strength.strength,
        "lower": strength.lower,
        "upper": strength.upper,
        "judged": strength.judged,
    }


class CheckpointSerializer(serializers.ModelSerializer[Checkpoint]):
    """A checkpoint; with ``context["standings"]`` (``selectors.checkpoint_standings``) a policy
    also shows where it stands with humans (None for reward models or without standings)."""

    model_spec = serializers.CharField(source="model_spec.name")
    is_base = serializers.BooleanField(read_only=True)
    human_win_rate = serializers.SerializerMethodField(
        help_text="Against the named opponent (`opponent`, also human_win_rate_opponent: its "
        "parent, the champion its round paired it with), every judged pair of their responses; "
        "ties and both-bad count half: {opponent, wins, losses, ties, judged, rate, lower, upper} "
        "with a Wilson 95% interval. Its meaning does not change when another checkpoint is "
        "promoted."
    )
    human_win_rate_opponent = serializers.SerializerMethodField(
        help_text="The checkpoint id human_win_rate is measured against (null for the base)."
    )
    human_win_rate_vs_champion = serializers.SerializerMethodField(
        help_text="The same against the current champion, named in `opponent` (null when this "
        "checkpoint is the champion): what the promotion gate reads."
    )
    human_evaluations = serializers.SerializerMethodField(
        help_text="Each time its held-out pairs were sent to human evaluation: {opponent, batch, "
        "pairs, requested_at, requested_by} and its human win-rate against that opponent."
    )
    strength = serializers.SerializerMethodField(
        help_text="Bradley-Terry log-strength with bootstrap 95% interval: "
        "{strength, lower, upper, judged}; null before any judged pair."
    )
    gate = serializers.SerializerMethodField(
        help_text="What the promotion gate says of it against the current champion now, before "
        "anyone asks: {champion, passed, reason, more_pairs} (reason in words; more_pairs: "
        "about how many more judged pairs would decide it at the current rate, null when more "
        "judging would not change the answer). Null for the champion and reward models."
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
            "human_win_rate_opponent",
            "human_win_rate_vs_champion",
            "human_evaluations",
            "strength",
            "gate",
            "created_at",
        ]

    def _standing(self, checkpoint: Checkpoint) -> selectors.Standing | None:
        standings = self.context.get("standings")
        return None if standings is None else standings.by_checkpoint.get(checkpoint.pk)

    def get_human_win_rate(self, checkpoint: Checkpoint) -> dict[str, Any] | None:
        standing = self._standing(checkpoint)
        return None if standing is None else _win_rate(standing.vs_opponent, standing.opponent_id)

    def get_gate(self, checkpoint: Checkpoint) -> dict[str, Any] | None:
        standing = self._standing(checkpoint)
        if standing is None or standing.gate is None or standing.champion_id is None:
            return None
        gate = standing.gate
        return {
            "champion": standing.champion_id,
            "passed": gate.passed,
            "reason": gate.reason,
            "more_pairs": gate.more_pairs,
        }

    def get_human_win_rate_opponent(self, checkpoint: Checkpoint) -> int | None:
        standing = self._standing(checkpoint)
        return None if standing is None else standing.opponent_id

    def get_human_win_rate_vs_champion(self, checkpoint: Checkpoint) -> dict[str, Any] | None:
        standing = self._standing(checkpoint)
        return None if standing is None else _win_rate(standing.vs_champion, standing.champion_id)

    def get_human_evaluations(self, checkpoint: Checkpoint) -> list[dict[str, Any]] | None:
        standing = self._standing(checkpoint)
        if standing is None:
            return None
        return [
            {
                "batch": e.batch,
                "pairs": e.pairs,
                "requested_at": e.requested_at,
                "requested_by": e.requested_by,
                **_win_rate(e.win_rate, e.opponent_id),
            }
            for e in standing.evaluations
        ]

    def get_strength(self, checkpoint: Checkpoint) -> dict[str, Any] | None:
        standing = self._standing(checkpoint)
        return None if standing is None else _strength(standing.strength)


class LeaderboardRowSerializer(serializers.Serializer[Any]):
    checkpoint = serializers.IntegerField(source="checkpoint_id")
    strength = serializers.FloatField()
    lower = serializers.FloatField()
    upper = serializers.FloatField()
    judged = serializers.IntegerField()


class CheckpointPromoteSerializer(serializers.Serializer[Any]):
    force = serializers.BooleanField(
        default=False,
        help_text="Promote even if the promotion gate refuses (recorded on the checkpoint's "
        "metrics.promotion and logged).",
    )


class ProjectModelSerializer(serializers.Serializer[Any]):
    model_spec = serializers.CharField(
        help_text="The name of a model spec (manage.py model_spec, or the Django admin)."
    )


class GenerateRequestSerializer(serializers.Serializer[Any]):
    eval_only = serializers.BooleanField(
        default=True,
        help_text="Store the samples for evaluation and enqueue nothing (default). false: the "
        "pairs of training prompts' samples enter the labeling queue (held-out prompts' never).",
    )
    split = serializers.CharField(
        default="test", help_text="Which prompts to sample: test (held out) | train | all."
    )
    prompts = serializers.IntegerField(default=200, help_text="At most this many prompts.")
    samples = serializers.IntegerField(default=2, help_text="Samples per prompt.")
    temperature = serializers.FloatField(default=1.0, help_text="0 = greedy (then 1 sample).")
    max_new_tokens = serializers.IntegerField(default=32)
    seed = serializers.IntegerField(default=0)
    priority = serializers.IntegerField(
        default=50, help_text="Queue priority of the comparisons (eval_only=false)."
    )


class GenerateQueuedSerializer(GenerateRequestSerializer):
    checkpoint = serializers.IntegerField()
    job = serializers.CharField(
        allow_null=True,
        help_text="The job's id: GET /api/v1/jobs/{job}/ follows it (null with a task backend "
        "that keeps no results).",
    )


class JobSerializer(serializers.Serializer[Any]):
    """A background job (django-tasks) and how it ended."""

    id = serializers.CharField()
    task = serializers.CharField(help_text="What the job runs, e.g. checkpoint_generate.")
    status = serializers.CharField(help_text="READY, RUNNING, SUCCESSFUL or FAILED.")
    enqueued_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    result = serializers.JSONField(
        allow_null=True, help_text="What the job returned, once SUCCESSFUL."
    )
    errors = serializers.ListField(  # type: ignore[assignment]
        child=serializers.CharField(), help_text="The exceptions of failed attempts."
    )


class SampleSerializer(serializers.Serializer[Any]):
    """One response a checkpoint generated, with its prompt and how it was sampled."""

    id = serializers.IntegerField()
    prompt = serializers.IntegerField(source="prompt_id")
    prompt_external_id = serializers.CharField(source="prompt.external_id")
    messages = serializers.JSONField(source="prompt.messages")
    split = serializers.CharField(source="prompt.split")
    text = serializers.CharField()
    generation_params = serializers.JSONField()
    seed = serializers.IntegerField(allow_null=True)
    model_name = serializers.CharField()
    created_at = serializers.DateTimeField()


class HumanEvalRequestSerializer(serializers.Serializer[Any]):
    opponent = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="The opponent checkpoint's id (default: the current champion).",
    )
    priority = serializers.IntegerField(default=100, help_text="Queue priority of the pairs.")


class HumanEvalSerializer(serializers.Serializer[Any]):
    checkpoint = serializers.IntegerField()
    opponent = serializers.IntegerField()
    batch = serializers.CharField(help_text="The comparisons' provenance tag.")
    created = serializers.IntegerField(help_text="New comparisons in the queue.")
    pairs = serializers.IntegerField(help_text="Held-out prompts with responses of both.")
    held_out_prompts = serializers.IntegerField()
    missing = serializers.IntegerField(
        help_text="Held-out prompts without a response of one side (not paired)."
    )
