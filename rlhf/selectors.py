"""Read queries of the model side: snapshots, preference rows, lineage, win-rates, round views.

Nothing here writes. Nothing here imports the training engine.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from labeling.models import Choice, Comparison, Judgment, Project, Prompt, Response, Split
from rlhf.models import (
    DEFAULT_MODEL_SPEC,
    Checkpoint,
    CheckpointKind,
    ModelSpec,
    Round,
    RoundStatus,
    TrainingRun,
)

VS_CHAMPION = "vs-champion"
ON_POLICY = "on-policy"


def batch_tag(round_number: int, kind: str) -> str:
    """The provenance tag of comparisons a round puts into the queue."""
    return f"round-{round_number}:{kind}"


# --- snapshots -------------------------------------------------------------------------------


def _rounds_filter(project: Project, rounds: Any) -> Q:
    not_from_rounds = ~Q(comparison__batch__startswith="round-")
    if rounds == "all":
        return Q()
    if rounds in ("latest", "newest"):
        latest = (
            Round.objects.filter(project=project, status=RoundStatus.SUCCEEDED)
            .order_by("-number")
            .values_list("number", flat=True)
            .first()
        )
        if latest is None:
            return not_from_rounds
        newest = Q(comparison__batch__startswith=f"round-{latest}:")
        # newest: only what the latest round put into the queue (iterative DPO's fresh batch).
        return newest if rounds == "newest" else not_from_rounds | newest
    condition = Q(pk__in=[])
    for number in rounds:
        if number == 0:
            condition |= not_from_rounds
        else:
            condition |= Q(comparison__batch__startswith=f"round-{number}:")
    return condition


def snapshot_judgment_ids(project: Project, snapshot: dict[str, Any]) -> list[int]:
    """The ids of the judgments a round with this snapshot config would train on (sorted)."""
    judgments = Judgment.objects.filter(comparison__project=project).filter(
        _rounds_filter(project, snapshot.get("rounds", "all"))
    )
    if not snapshot.get("include_held_out", False):
        judgments = judgments.exclude(comparison__prompt__split=Split.TEST)
    return sorted(judgments.values_list("pk", flat=True))


def snapshot_hash(judgment_ids: Sequence[int], snapshot: dict[str, Any]) -> str:
    payload = json.dumps({"judgments": list(judgment_ids), "snapshot": snapshot}, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def preference_rows(judgment_ids: Iterable[int], snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """Preference rows (the engine's JSONL format), one per comparison by majority vote.

    ``weight`` is the majority's share; ``margin`` the mean strength of the majority (0.25-1).
    A comparison under ``min_agreement`` or without a single majority is dropped; a tie or
    both-bad majority is dropped or, with the ``split`` policy, becomes both orders at half weight.
    """
    judgments = (
        Judgment.objects.filter(pk__in=list(judgment_ids))
        .select_related("comparison__prompt", "comparison__response_a", "comparison__response_b")
        .order_by("comparison_id", "id")
    )
    by_comparison: dict[int, list[Judgment]] = defaultdict(list)
    comparisons: dict[int, Comparison] = {}
    for judgment in judgments:
        by_comparison[judgment.comparison_id].append(judgment)
        comparisons[judgment.comparison_id] = judgment.comparison
    min_agreement = float(snapshot.get("min_agreement", 0.0))
    rows: list[dict[str, Any]] = []
    for comparison_id in sorted(by_comparison):
        votes = by_comparison[comparison_id]
        comparison = comparisons[comparison_id]
        counts: dict[str, int] = defaultdict(int)
        for vote in votes:
            counts[vote.choice] += 1
        top = max(counts.values())
        winners = [choice for choice, n in counts.items() if n == top]
        agreement = top / len(votes)
        if len(winners) != 1 or agreement < min_agreement:
            continue
        winner = winners[0]
        a, b = comparison.response_a, comparison.response_b
        base = {"prompt_id": str(comparison.prompt_id), "prompt": comparison.prompt.messages}
        if winner in (Choice.A, Choice.B):
            strengths = [v.strength or 2 for v in votes if v.choice == winner]
            chosen, rejected = (a, b) if winner == Choice.A else (b, a)
            rows.append(
                {
                    **base,
                    "chosen": chosen.text,
                    "rejected": rejected.text,
                    "margin": round(sum(strengths) / len(strengths) / 4, 4),
                    "weight": round(agreement, 4),
                }
            )
            continue
        policy = snapshot.get("ties" if winner == Choice.TIE else "both_bad", "drop")
        if policy == "split":
            for chosen, rejected in ((a, b), (b, a)):
                rows.append(
                    {
                        **base,
                        "chosen": chosen.text,
                        "rejected": rejected.text,
                        "margin": 0.0,
                        "weight": round(agreement / 2, 4),
                    }
                )
    return rows


def kto_rows(judgment_ids: Iterable[int], snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """Unpaired rows (the engine's KTO JSONL format): each preference row's chosen response as
    a desirable completion and its rejected one as an undesirable completion, with the row's
    weight. The one place that turns judgments into desirable / undesirable answers."""
    rows: list[dict[str, Any]] = []
    for pair in preference_rows(judgment_ids, snapshot):
        base = {"prompt_id": pair["prompt_id"], "prompt": pair["prompt"]}
        weight = {"weight": pair["weight"]} if "weight" in pair else {}
        rows.append({**base, "completion": pair["chosen"], "label": True, **weight})
        rows.append({**base, "completion": pair["rejected"], "label": False, **weight})
    return rows


def prompt_rows(prompts: Iterable[Prompt]) -> list[dict[str, Any]]:
    """Prompt rows (the engine's JSONL format)."""
    return [{"prompt_id": str(p.pk), "prompt": p.messages} for p in prompts]


def generation_prompts(project: Project, limit: int) -> list[Prompt]:
    """The prompts a round generates for: held-out ones first, then the rest, at most ``limit``."""
    held_out = list(Prompt.objects.filter(project=project, split=Split.TEST).order_by("id")[:limit])
    rest = list(
        Prompt.objects.filter(project=project)
        .exclude(split=Split.TEST)
        .order_by("id")[: max(0, limit - len(held_out))]
    )
    return held_out + rest


def evaluation_prompts(project: Project, limit: int) -> list[Prompt]:
    """Held-out prompts for evaluation; all prompts when the project has none held out."""
    held_out = list(Prompt.objects.filter(project=project, split=Split.TEST).order_by("id")[:limit])
    return held_out or list(Prompt.objects.filter(project=project).order_by("id")[:limit])


def training_prompts(project: Project, limit: int = 1000) -> list[Prompt]:
    """Prompts for online RL: the training split."""
    return list(Prompt.objects.filter(project=project).exclude(split=Split.TEST)[:limit])


def checkpoint_responses(checkpoint: Checkpoint, prompts: Iterable[Prompt]) -> dict[int, Response]:
    """One response per prompt that ``checkpoint`` generated (the oldest), keyed by prompt id."""
    found: dict[int, Response] = {}
    for response in Response.objects.filter(
        prompt__in=list(prompts), checkpoint_ref=str(checkpoint.pk)
    ).order_by("id"):
        found.setdefault(response.prompt_id, response)
    return found


# --- checkpoints -----------------------------------------------------------------------------


@dataclass(frozen=True)
class WinRate:
    """Judgments of ``checkpoint`` vs ``opponent`` pairs; ties and both-bad count half."""

    wins: int
    losses: int
    ties: int

    @property
    def judged(self) -> int:
        return self.wins + self.losses + self.ties

    @property
    def rate(self) -> float | None:
        if not self.judged:
            return None
        return (self.wins + 0.5 * self.ties) / self.judged


def human_win_rate(checkpoint: Checkpoint, opponent: Checkpoint | None) -> WinRate:
    """Human win-rate of ``checkpoint`` over ``opponent`` from judged vs-champion comparisons."""
    if opponent is None or opponent.pk == checkpoint.pk:
        return WinRate(0, 0, 0)
    mine, theirs = str(checkpoint.pk), str(opponent.pk)
    judgments = Judgment.objects.filter(
        comparison__batch__endswith=f":{VS_CHAMPION}",
        comparison__project_id=checkpoint.project_id,
    ).filter(
        Q(
            comparison__response_a__checkpoint_ref=mine,
            comparison__response_b__checkpoint_ref=theirs,
        )
        | Q(
            comparison__response_a__checkpoint_ref=theirs,
            comparison__response_b__checkpoint_ref=mine,
        )
    )
    wins = losses = ties = 0
    for choice, a_ref in judgments.values_list("choice", "comparison__response_a__checkpoint_ref"):
        if choice in (Choice.TIE, Choice.BOTH_BAD):
            ties += 1
        elif (choice == Choice.A) == (a_ref == mine):
            wins += 1
        else:
            losses += 1
    return WinRate(wins, losses, ties)


@dataclass(frozen=True)
class LineageNode:
    checkpoint: Checkpoint
    depth: int
    round: Round | None
    win_rate: WinRate


def checkpoint_lineage(project: Project) -> list[LineageNode]:
    """The project's policy checkpoints as a tree in depth-first order (children by id)."""
    checkpoints = list(
        Checkpoint.objects.policies()
        .filter(project=project)
        .select_related("model_spec", "created_by")
        .order_by("id")
    )
    champion = next((c for c in checkpoints if c.is_champion), None)
    rounds = {
        r.checkpoint_id: r for r in Round.objects.filter(project=project, checkpoint__isnull=False)
    }
    children: dict[int | None, list[Checkpoint]] = defaultdict(list)
    ids = {c.pk for c in checkpoints}
    for checkpoint in checkpoints:
        parent = checkpoint.parent_id if checkpoint.parent_id in ids else None
        children[parent].append(checkpoint)
    nodes: list[LineageNode] = []

    def walk(parent: int | None, depth: int) -> None:
        for checkpoint in children.get(parent, []):
            nodes.append(
                LineageNode(
                    checkpoint=checkpoint,
                    depth=depth,
                    round=rounds.get(checkpoint.pk),
                    win_rate=human_win_rate(checkpoint, champion),
                )
            )
            walk(checkpoint.pk, depth + 1)

    walk(None, 0)
    return nodes


def project_rounds(project: Project) -> QuerySet[Round]:
    return (
        Round.objects.filter(project=project)
        .select_related("checkpoint", "parent_checkpoint")
        .order_by("-number")
    )


def round_runs(round_: Round) -> list[TrainingRun]:
    """The newest attempt of each step of a round, in step order."""
    return TrainingRun.objects.filter(round=round_).latest_per_step()


def round_queue_figures(round_: Round) -> dict[str, int]:
    """How many of the round's comparisons are in the queue, and how many are judged."""
    comparisons = Comparison.objects.filter(
        project_id=round_.project_id, batch__startswith=f"{round_.batch_prefix}:"
    )
    return {
        "comparisons": comparisons.count(),
        "judged": comparisons.filter(judgment_count__gt=0).count(),
    }


def reward_checkpoints(project: Project) -> QuerySet[Checkpoint]:
    return Checkpoint.objects.filter(project=project, kind=CheckpointKind.REWARD).order_by("-id")


def project_by_ref(ref: str) -> Project:
    """A project by id (all digits) or by exact name; raises Project.DoesNotExist."""
    if ref.isdigit():
        return Project.objects.get(pk=int(ref))
    return Project.objects.get(name=ref)


def checkpoint_base_of(project: Project) -> Checkpoint | None:
    """The project's checkpoint 0 (the base model itself), if it exists yet."""
    return (
        Checkpoint.objects.policies()
        .filter(project=project, adapter_dir="", parent__isnull=True)
        .select_related("model_spec")
        .order_by("id")
        .first()
    )


def project_model_spec(project: Project) -> ModelSpec | None:
    """The model spec the project tunes: its base checkpoint's, or before that exists the one a
    first round would use (the built-in spec; None until it is created). Writes nothing."""
    base = checkpoint_base_of(project)
    if base is not None:
        return base.model_spec
    return ModelSpec.objects.filter(name=DEFAULT_MODEL_SPEC).first()
