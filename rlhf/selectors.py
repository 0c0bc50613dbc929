"""Read queries of the model side: snapshots, preference rows, lineage, win-rates, round views.

Nothing here writes. Nothing here imports the training engine.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.db.models import Q, QuerySet
from django.urls import reverse

from labeling.models import Choice, Comparison, Judgment, Project, Prompt, Response, Split
from labeling.preferences import rounds_q, rows_hash, snapshot_rows
from rlhf.methods import METHOD_REGISTRY
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


def snapshot_rounds(project: Project, rounds: Any) -> list[int]:
    """The round numbers a snapshot's ``rounds`` setting selects now (0: comparisons no round
    made); ``latest`` / ``newest`` mean the newest succeeded round; ``all`` is every one (``[]``)."""
    succeeded = Round.objects.filter(project=project, status=RoundStatus.SUCCEEDED)
    if rounds in ("latest", "newest"):
        latest = succeeded.order_by("-number").values_list("number", flat=True).first()
        if latest is None:
            return [0]
        # newest: only what the latest round put into the queue (iterative DPO's fresh batch).
        return [latest] if rounds == "newest" else [0, latest]
    if rounds == "all":
        return []
    return sorted(set(rounds))


def snapshot_judgment_ids(project: Project, snapshot: dict[str, Any]) -> list[int]:
    """The ids of the judgments a round with this snapshot config would train on (sorted)."""
    judgments = Judgment.objects.filter(comparison__project=project)
    numbers = snapshot_rounds(project, snapshot.get("rounds", "all"))
    if numbers:
        judgments = judgments.filter(rounds_q(numbers, prefix="comparison__"))
    if not snapshot.get("include_held_out", False):
        judgments = judgments.exclude(comparison__prompt__split=Split.TEST)
    return sorted(judgments.values_list("pk", flat=True))


def preference_rows(judgment_ids: Iterable[int], snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """The snapshot's preference pairs (the engine's JSONL format), by ``labeling.preferences``:
    the same rows an export with the round's filters holds (see :func:`snapshot_export_query`)."""
    return snapshot_rows(
        judgment_ids,
        ties=snapshot.get("ties", "drop"),
        both_bad=snapshot.get("both_bad", "drop"),
        min_agreement=float(snapshot.get("min_agreement", 0.0)),
    )


def snapshot_hash(rows: Iterable[dict[str, Any]]) -> str:
    """The content hash of a snapshot's rows (``labeling.preferences.PreferenceHash``): the one an
    export of the same data shows on its dataset card, whatever its format."""
    return rows_hash(rows)


def snapshot_export_query(
    project: Project, snapshot: dict[str, Any], judgment_ids: Sequence[int], *, method: str
) -> dict[str, str]:
    """Export parameters (``GET /api/v1/projects/{id}/export/``) that give exactly the rows a
    round of ``method`` trains on (:func:`training_rows`): its rounds, split, policies and
    judgment cut-off. Frozen on the round at launch (``Round.snapshot_export``)."""
    numbers = snapshot_rounds(project, snapshot.get("rounds", "all"))
    newest = (
        Judgment.objects.filter(pk__in=list(judgment_ids))
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    unpaired = METHOD_REGISTRY[method].unpaired
    query = {
        "format": "kto_conversational" if unpaired else "trl_conversational",
        **({} if unpaired else {"margin": "1"}),
        "weight": "1",
        "aggregation": "majority",
        "ties": snapshot.get("ties", "drop"),
        "both_bad": snapshot.get("both_bad", "drop"),
        "split": "all" if snapshot.get("include_held_out", False) else "train",
        "test_size": "0",
    }
    if float(snapshot.get("min_agreement", 0.0)) > 0:
        query["min_agreement"] = str(snapshot["min_agreement"])
    if numbers:
        query["round"] = ",".join(map(str, numbers))
    if newest is not None:
        query["until"] = newest.isoformat()
    return query


def round_export_url(round_: Round) -> str:
    """The API export of exactly the rows the round trained on (no query)."""
    path = reverse("api-export", args=[round_.project_id])
    return f"{path}?{urlencode(round_.snapshot_export)}"


def kto_rows(judgment_ids: Iterable[int], snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """Unpaired rows (the engine's KTO JSONL format) by ``labeling.preferences``: a decided pair's
    chosen response desirable and its rejected one undesirable; with ``both_bad: split`` both
    answers of a both-bad comparison undesirable; ties nothing."""
    return snapshot_rows(
        judgment_ids,
        both_bad=snapshot.get("both_bad", "drop"),
        min_agreement=float(snapshot.get("min_agreement", 0.0)),
        unpaired=True,
    )


def training_rows(
    method: str, judgment_ids: Iterable[int], snapshot: dict[str, Any]
) -> list[dict[str, Any]]:
    """The snapshot rows that stand for a round of ``method``: what its policy trains on (KTO's
    completions, DPO's pairs), or for online RL the pairs its reward model trains on."""
    if METHOD_REGISTRY[method].unpaired:
        return kto_rows(judgment_ids, snapshot)
    return preference_rows(judgment_ids, snapshot)


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


def human_win_rates(
    checkpoints: Iterable[Checkpoint], opponent: Checkpoint | None
) -> dict[int, WinRate]:
    """Human win-rate of each checkpoint over ``opponent`` from judged vs-champion comparisons,
    keyed by checkpoint id (one query for them all; the opponent itself scores nothing)."""
    checkpoints = list(checkpoints)
    rates = {c.pk: WinRate(0, 0, 0) for c in checkpoints}
    if opponent is None:
        return rates
    theirs = str(opponent.pk)
    mine = {str(c.pk) for c in checkpoints if c.pk != opponent.pk}
    if not mine:
        return rates
    judgments = Judgment.objects.filter(
        comparison__batch__endswith=f":{VS_CHAMPION}",
        comparison__project_id=opponent.project_id,
    ).filter(
        Q(
            comparison__response_a__checkpoint_ref__in=mine,
            comparison__response_b__checkpoint_ref=theirs,
        )
        | Q(
            comparison__response_a__checkpoint_ref=theirs,
            comparison__response_b__checkpoint_ref__in=mine,
        )
    )
    tally: dict[str, list[int]] = {ref: [0, 0, 0] for ref in mine}  # wins, losses, ties
    rows = judgments.values_list(
        "choice", "comparison__response_a__checkpoint_ref", "comparison__response_b__checkpoint_ref"
    )
    for choice, a_ref, b_ref in rows:
        candidate = a_ref if a_ref in mine else b_ref
        if choice in (Choice.TIE, Choice.BOTH_BAD):
            tally[candidate][2] += 1
        elif (choice == Choice.A) == (a_ref == candidate):
            tally[candidate][0] += 1
        else:
            tally[candidate][1] += 1
    for checkpoint in checkpoints:
        if str(checkpoint.pk) in tally:
            rates[checkpoint.pk] = WinRate(*tally[str(checkpoint.pk)])
    return rates


def human_win_rate(checkpoint: Checkpoint, opponent: Checkpoint | None) -> WinRate:
    """Human win-rate of ``checkpoint`` over ``opponent`` from judged vs-champion comparisons."""
    return human_win_rates([checkpoint], opponent)[checkpoint.pk]


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
    win_rates = human_win_rates(checkpoints, champion)
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
                    win_rate=win_rates[checkpoint.pk],
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
