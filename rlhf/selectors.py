"""Read queries of the model side: snapshots, preference rows, lineage, win-rates and the
human leaderboard (statistics in ``rlhf.leaderboard``), round views.

Nothing here writes. Nothing here imports the training engine.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import F, Q, QuerySet
from django.urls import reverse

from labeling.models import Choice, Comparison, Judgment, Project, Prompt, Response, Split
from labeling.preferences import adjudications_of, id_list, rounds_q, rows_hash, snapshot_rows
from labeling.safeinput import db_id
from rlhf import signals
from rlhf.leaderboard import (
    LOSS,
    TIE,
    WIN,
    Bar,
    GateVerdict,
    Outcome,
    Strength,
    WinRate,
    bars,
    bradley_terry,
    head_to_head,
    promotion_verdict,
)
from rlhf.methods import (
    METHOD_REGISTRY,
    QUEUE_TIER,
    SIZE_AWARE_MIN_PARAMS,
    ConfigError,
    resolve_config,
)
from rlhf.model_size import parameter_count
from rlhf.models import (
    DEFAULT_MODEL_SPEC,
    Checkpoint,
    CheckpointKind,
    ModelSpec,
    Round,
    RoundStatus,
    Step,
    TrainingRun,
    resolve_data_path,
    resolve_model_path,
)
from rlhf.signals import Flag, RoundSignals

VS_CHAMPION = "vs-champion"
ON_POLICY = "on-policy"
HUMAN_EVAL = "human-eval"  # new-vs-champion pairs on held-out prompts, queued only when asked
SAMPLE_SPLITS = ("test", "train", "all")  # which prompts an evaluation-only generation samples


def batch_tag(round_number: int, kind: str) -> str:
    """The provenance tag of comparisons a round puts into the queue."""
    return f"round-{round_number}:{kind}"


def batch_priority(round_number: int, within: int) -> int:
    """A comparison's queue priority: its round's tier (newest batch first), then ``within``
    (``0 <= within < QUEUE_TIER``; see ``rlhf.methods.QUEUE_TIER``)."""
    return round_number * QUEUE_TIER + within


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


def snapshot_judgment_ids(
    project: Project, snapshot: dict[str, Any], numbers: list[int] | None = None
) -> list[int]:
    """The ids of the judgments a round with this snapshot config would train on (sorted);
    ``numbers``: these rounds instead of what the config's ``rounds`` selects."""
    judgments = Judgment.objects.filter(comparison__project=project)
    if numbers is None:
        numbers = snapshot_rounds(project, snapshot.get("rounds", "all"))
    if numbers:
        judgments = judgments.filter(rounds_q(numbers, prefix="comparison__"))
    if not snapshot.get("include_held_out", False):
        judgments = judgments.exclude(comparison__prompt__split=Split.TEST)
    return sorted(judgments.values_list("pk", flat=True))


def reward_snapshot(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The snapshot config of a round's reward step: the policy's, over ``reward_rounds``."""
    return {**snapshot, "rounds": snapshot.get("reward_rounds", snapshot.get("rounds", "all"))}


def reward_training_rows(round_: Round) -> list[dict[str, Any]]:
    """The preference pairs the round's reward step trains on (rounds launched before the
    reward snapshot existed: the policy's)."""
    if round_.reward_judgment_ids:
        snapshot = reward_snapshot(round_.config["snapshot"])
        return preference_rows(round_.reward_judgment_ids, snapshot, frozen_adjudications(round_))
    return preference_rows(
        round_.snapshot_judgment_ids, round_.config["snapshot"], frozen_adjudications(round_)
    )


def frozen_adjudications(round_: Round) -> dict[int, tuple[str, int | None]]:
    """The adjudications the round's snapshots use, as frozen at launch
    (``Round.snapshot_adjudications``; none under ``snapshot.adjudicated: ignore``)."""
    return {
        int(comparison_id): (str(choice), None if strength is None else int(strength))
        for comparison_id, (choice, strength) in round_.snapshot_adjudications.items()
    }


def adjudications_of_judgments(
    adjudications: Mapping[int, tuple[str, int | None]], judgment_ids: Iterable[int]
) -> dict[int, tuple[str, int | None]]:
    """Those of ``adjudications`` (comparison id -> decision) whose comparison one of
    ``judgment_ids`` judged: what a round's snapshots can use, so what it keeps. One query."""
    if not adjudications:
        return {}
    ids = set(judgment_ids)
    # by the adjudicated comparisons (few), not by the snapshot's judgment ids (many)
    votes = Judgment.objects.filter(comparison_id__in=list(adjudications)).values_list(
        "pk", "comparison_id"
    )
    judged = {comparison_id for pk, comparison_id in votes if pk in ids}
    return {pk: decision for pk, decision in adjudications.items() if pk in judged}


def adjudications_to_freeze(
    project: Project, snapshot: dict[str, Any]
) -> dict[int, tuple[str, int | None]]:
    """The project's stored adjudications when the snapshot prefers them (else none): what a
    round launched now trains on (it keeps those of its snapshots' comparisons,
    :func:`adjudications_of_judgments`, as ``Round.snapshot_adjudications``). One query."""
    if snapshot.get("adjudicated", "ignore") != "prefer":
        return {}
    return adjudications_of(Comparison.objects.filter(project=project).values("pk"))


def round_reward_export_url(round_: Round) -> str:
    """The API export with the filters of the rows the round's reward model trained on (see
    :func:`round_export_url`)."""
    if not round_.reward_snapshot_export:
        return round_export_url(round_)
    path = reverse("api-export", args=[round_.project_id])
    return f"{path}?{urlencode(round_.reward_snapshot_export)}"


def preference_rows(
    judgment_ids: Iterable[int],
    snapshot: dict[str, Any],
    adjudications: Mapping[int, tuple[str, int | None]] | None = None,
) -> list[dict[str, Any]]:
    """The snapshot's preference pairs (the engine's JSONL format), by ``labeling.preferences``:
    the same rows an export with the round's filters holds (see :func:`snapshot_export_query`).
    ``adjudications``: a round's, frozen at launch (None: the stored ones)."""
    return snapshot_rows(
        judgment_ids,
        ties=snapshot.get("ties", "drop"),
        both_bad=snapshot.get("both_bad", "drop"),
        min_agreement=float(snapshot.get("min_agreement", 0.0)),
        adjudications=adjudications,
        **decision_options(snapshot),
    )


def decision_options(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The snapshot's annotator weighting and use of adjudications
    (``labeling.preferences.snapshot_rows`` arguments); rounds launched before an option existed
    have none (no weights; adjudications ignored)."""
    return {
        "annotator_weights": snapshot.get("annotator_weights", "none"),
        "drop_below": float(snapshot.get("drop_below", 0.0)),
        "adjudicated": snapshot.get("adjudicated", "ignore"),
    }


def snapshot_hash(rows: Iterable[dict[str, Any]]) -> str:
    """The content hash of a snapshot's rows (``labeling.preferences.PreferenceHash``): the one an
    export of the same data shows on its dataset card, whatever its format."""
    return rows_hash(rows)


def snapshot_export_query(
    project: Project,
    snapshot: dict[str, Any],
    judgment_ids: Sequence[int],
    *,
    method: str,
    numbers: list[int] | None = None,
) -> dict[str, str]:
    """Export parameters (``GET /api/v1/projects/{id}/export/``) that give exactly the rows a
    round of ``method`` trains on (:func:`training_rows`): its rounds, split, policies and
    judgment cut-off. Frozen on the round at launch (``Round.snapshot_export``)."""
    if numbers is None:
        numbers = snapshot_rounds(project, snapshot.get("rounds", "all"))
    newest = (
        Judgment.objects.filter(pk__in=id_list(judgment_ids))
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
    weighting = decision_options(snapshot)
    if weighting["annotator_weights"] != "none":
        query["annotator_weights"] = weighting["annotator_weights"]
        if weighting["drop_below"] > 0:
            query["drop_below"] = str(weighting["drop_below"])
    if weighting["adjudicated"] != "ignore":
        query["adjudicated"] = weighting["adjudicated"]
    if numbers:
        query["round"] = ",".join(map(str, numbers))
    if newest is not None:
        query["until"] = newest.isoformat()
    return query


# The rows files the runner writes into a step's run directory (rlhf.runner.plan_step)
PREFERENCES_FILE, KTO_FILE = "preferences.jsonl", "kto.jsonl"
ROWS_FILES = (PREFERENCES_FILE, KTO_FILE)


def step_rows_file(run: TrainingRun) -> Path | None:
    """The rows a round's reward or policy step trained on, as the runner wrote them into its
    run directory when it started (``rlhf.runner.plan_step``): the frozen adjudications, the
    judgments as they were then. None where the step trains on no rows (an online method's policy
    step: prompts and the reward model) or has not started."""
    if not run.run_dir:
        return None
    directory = Path(resolve_data_path(run.run_dir))
    return next((directory / name for name in ROWS_FILES if (directory / name).is_file()), None)


def round_rows_url(round_: Round, step: str) -> str:
    """The API download of exactly the rows the round's ``step`` trained on (the file it was
    given), unlike the export query (:func:`round_export_url`), which reads today's votes."""
    return f"{reverse('api-round-rows', args=[round_.pk])}?{urlencode({'step': step})}"


def round_rows_urls(round_: Round, runs: Sequence[TrainingRun]) -> dict[str, str]:
    """Step (``reward`` / ``policy``) -> :func:`round_rows_url`, for the steps of ``runs`` (the
    round's, :func:`round_runs`) that have written their rows."""
    return {
        run.step: round_rows_url(round_, run.step)
        for run in runs
        if run.step in (Step.REWARD, Step.POLICY) and step_rows_file(run) is not None
    }


def round_export_url(round_: Round) -> str:
    """The API export with the filters of the rows the round trained on: the same rows while
    no judgment of them is edited and no adjudication changed (:func:`round_rows_url`: the
    rows themselves)."""
    path = reverse("api-export", args=[round_.project_id])
    return f"{path}?{urlencode(round_.snapshot_export)}"


def kto_rows(
    judgment_ids: Iterable[int],
    snapshot: dict[str, Any],
    adjudications: Mapping[int, tuple[str, int | None]] | None = None,
) -> list[dict[str, Any]]:
    """Unpaired rows (the engine's KTO JSONL format) by ``labeling.preferences``: a decided pair's
    chosen response desirable and its rejected one undesirable; with ``both_bad: split`` both
    answers of a both-bad comparison undesirable; ties nothing."""
    return snapshot_rows(
        judgment_ids,
        both_bad=snapshot.get("both_bad", "drop"),
        min_agreement=float(snapshot.get("min_agreement", 0.0)),
        unpaired=True,
        adjudications=adjudications,
        **decision_options(snapshot),
    )


def training_rows(
    method: str,
    judgment_ids: Iterable[int],
    snapshot: dict[str, Any],
    adjudications: Mapping[int, tuple[str, int | None]] | None = None,
) -> list[dict[str, Any]]:
    """The snapshot rows that stand for a round of ``method``: what its policy trains on (KTO's
    completions, DPO's pairs), or for online RL the pairs its reward model trains on."""
    if METHOD_REGISTRY[method].unpaired:
        return kto_rows(judgment_ids, snapshot, adjudications)
    return preference_rows(judgment_ids, snapshot, adjudications)


def prompt_rows(prompts: Iterable[Prompt]) -> list[dict[str, Any]]:
    """Prompt rows (the engine's JSONL format)."""
    return [{"prompt_id": str(p.pk), "prompt": p.messages} for p in prompts]


def generation_prompts(project: Project, limit: int, *, held_out: int = 0) -> list[Prompt]:
    """The prompts a round generates for: at most ``limit`` training prompts (their pairs go to
    the queue), then at most ``held_out`` held-out ones (samples kept for evaluation)."""
    training = list(
        Prompt.objects.filter(project=project).exclude(split=Split.TEST).order_by("id")[:limit]
    )
    if held_out <= 0:
        return training
    return training + list(
        Prompt.objects.filter(project=project, split=Split.TEST).order_by("id")[:held_out]
    )


def split_prompts(project: Project, split: str, limit: int) -> list[Prompt]:
    """At most ``limit`` prompts of a split (``test`` | ``train`` | ``all``), by id."""
    prompts = Prompt.objects.filter(project=project)
    if split == "test":
        prompts = prompts.filter(split=Split.TEST)
    elif split == "train":
        prompts = prompts.exclude(split=Split.TEST)
    return list(prompts.order_by("id")[:limit])


def evaluation_prompts(project: Project, limit: int) -> list[Prompt]:
    """Held-out prompts for evaluation; all prompts when the project has none held out."""
    held_out = list(Prompt.objects.filter(project=project, split=Split.TEST).order_by("id")[:limit])
    return held_out or list(Prompt.objects.filter(project=project).order_by("id")[:limit])


def evaluation_opponents(project: Project) -> dict[str, Checkpoint]:
    """Whom the evaluate step's sampled evaluation measures a new policy against, by label: the
    project's base model and its champion now (the same checkpoint before any promotion)."""
    base = checkpoint_base_of(project)
    champion = Checkpoint.objects.champion_of(project) or base
    opponents = {"base": base, "champion": champion}
    return {label: c for label, c in opponents.items() if c is not None}


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


def checkpoint_samples(checkpoint: Checkpoint, *, split: str | None = None) -> QuerySet[Response]:
    """The responses ``checkpoint`` generated (oldest first) with their prompts; ``split``
    (``test`` | ``train``) keeps one split's."""
    samples = Response.objects.filter(
        checkpoint_ref=str(checkpoint.pk), prompt__project_id=checkpoint.project_id
    )
    if split is not None:
        samples = samples.filter(prompt__split=split)
    return samples.select_related("prompt").order_by("id")


# --- checkpoints -----------------------------------------------------------------------------


def checkpoint_outcomes(project_id: int, checkpoint_ids: Iterable[int]) -> list[Outcome]:
    """Every human judgment of a comparison between two different checkpoints among
    ``checkpoint_ids`` (any batch), as ``(a's checkpoint, b's checkpoint, WIN | LOSS | TIE)``
    from response a's side; ties and both-bad answers are TIE. One query."""
    refs = [str(pk) for pk in checkpoint_ids]
    if len(refs) < 2:
        return []
    rows = (
        Judgment.objects.filter(
            comparison__project_id=project_id,
            comparison__response_a__checkpoint_ref__in=refs,
            comparison__response_b__checkpoint_ref__in=refs,
        )
        .exclude(comparison__response_a__checkpoint_ref=F("comparison__response_b__checkpoint_ref"))
        .order_by("id")
        .values_list(
            "choice",
            "comparison__response_a__checkpoint_ref",
            "comparison__response_b__checkpoint_ref",
        )
    )
    results: dict[str, int] = {Choice.A: WIN, Choice.B: LOSS}
    return [(int(a_ref), int(b_ref), results.get(choice, TIE)) for choice, a_ref, b_ref in rows]


def human_win_rates(
    checkpoints: Iterable[Checkpoint], opponent: Checkpoint | None
) -> dict[int, WinRate]:
    """Human win-rate of each checkpoint over ``opponent`` from every judged comparison between
    their responses, keyed by checkpoint id (one query for them all; the opponent itself scores
    nothing)."""
    checkpoints = list(checkpoints)
    rates = {c.pk: WinRate(0, 0, 0) for c in checkpoints}
    if opponent is None:
        return rates
    ids = {c.pk for c in checkpoints} | {opponent.pk}
    tallies = head_to_head(checkpoint_outcomes(opponent.project_id, ids))
    for checkpoint in checkpoints:
        if checkpoint.pk != opponent.pk:
            rates[checkpoint.pk] = tallies.get((checkpoint.pk, opponent.pk), WinRate(0, 0, 0))
    return rates


def human_win_rate(checkpoint: Checkpoint, opponent: Checkpoint | None) -> WinRate:
    """Human win-rate of ``checkpoint`` over ``opponent`` from their judged comparisons."""
    return human_win_rates([checkpoint], opponent)[checkpoint.pk]


@dataclass(frozen=True)
class HumanEvaluation:
    """A recorded request for human evaluation of a checkpoint (``metrics["human_eval"]``) and
    where it stands against that named opponent now."""

    opponent_id: int
    batch: str
    pairs: int
    requested_at: str
    requested_by: str
    win_rate: WinRate


@dataclass(frozen=True)
class Standing:
    """Where a checkpoint stands with humans: its win-rate against a named opponent (its parent:
    the champion its round started from and made its vs-champion pairs against, so the figure
    keeps its meaning after later promotions), against the current champion (what the promotion
    gate reads), and its Bradley-Terry strength (None before it took part in a judged pair)."""

    opponent_id: int | None
    vs_opponent: WinRate
    champion_id: int | None  # the champion vs_champion is measured against (None: itself)
    vs_champion: WinRate
    strength: Strength | None
    evaluations: tuple[HumanEvaluation, ...] = ()
    # What the promotion gate says of it against the current champion now (None: it is the
    # champion): :func:`gate_verdict`, the reason in words and how many more pairs would decide.
    gate: GateVerdict | None = None


@dataclass(frozen=True)
class Standings:
    by_checkpoint: dict[int, Standing]
    leaderboard: list[Strength]  # strongest first
    champion_id: int | None
    judgments: int


def checkpoint_standings(
    project_id: int, checkpoints: Sequence[Checkpoint], *, gates: bool = True
) -> Standings:
    """Win-rates and the Bradley-Terry leaderboard of the given policy checkpoints (others are
    ignored) from every human judgment between two of them: one query, whatever their number;
    with ``gates``, each candidate's promotion-gate verdict too (one more query, for the rounds'
    blocking flags)."""
    policies = [c for c in checkpoints if c.kind == CheckpointKind.POLICY]
    ids = {c.pk for c in policies}
    champion_id = next((c.pk for c in policies if c.is_champion), None)
    outcomes = checkpoint_outcomes(project_id, ids)
    tallies = head_to_head(outcomes)
    board = bradley_terry(outcomes)
    strengths = {s.checkpoint_id: s for s in board}
    none = WinRate(0, 0, 0)
    gated = gates and champion_id is not None
    blockers = promotion_blockers_of(ids) if gated else {}
    by_checkpoint = {}
    for checkpoint in policies:
        opponent = checkpoint.parent_id if checkpoint.parent_id in ids else None
        rival = champion_id if champion_id != checkpoint.pk else None
        vs_champion = tallies.get((checkpoint.pk, rival), none) if rival is not None else none
        by_checkpoint[checkpoint.pk] = Standing(
            opponent_id=opponent,
            vs_opponent=tallies.get((checkpoint.pk, opponent), none) if opponent else none,
            champion_id=rival,
            vs_champion=vs_champion,
            strength=strengths.get(checkpoint.pk),
            evaluations=tuple(
                HumanEvaluation(
                    opponent_id=int(entry["opponent"]),
                    batch=str(entry.get("batch", "")),
                    pairs=int(entry.get("pairs", 0)),
                    requested_at=str(entry.get("at", "")),
                    requested_by=str(entry.get("by", "")),
                    win_rate=tallies.get((checkpoint.pk, int(entry["opponent"])), none),
                )
                for entry in checkpoint.metrics.get("human_eval", [])
            ),
            gate=(
                gate_verdict(checkpoint.pk, rival, vs_champion, blockers.get(checkpoint.pk, []))
                if gated and rival is not None
                else None
            ),
        )
    return Standings(
        by_checkpoint=by_checkpoint,
        leaderboard=board,
        champion_id=champion_id,
        judgments=len(outcomes),
    )


@dataclass(frozen=True)
class LineageNode:
    checkpoint: Checkpoint
    depth: int
    round: Round | None
    standing: Standing

    @property
    def win_rate(self) -> WinRate:
        """Its human win-rate against its named opponent (its parent)."""
        return self.standing.vs_opponent


@dataclass(frozen=True)
class Lineage:
    nodes: list[LineageNode]  # depth-first
    standings: Standings
    checkpoints: dict[int, Checkpoint]

    def leaderboard_rows(self) -> list[tuple[Checkpoint, Bar]]:
        """The leaderboard, strongest first, with each row's bar geometry."""
        return [
            (self.checkpoints[b.strength.checkpoint_id], b)
            for b in bars(self.standings.leaderboard)
        ]


def checkpoint_lineage(project: Project) -> Lineage:
    """The project's policy checkpoints as a tree in depth-first order (children by id), with
    their human standings (:func:`checkpoint_standings`)."""
    checkpoints = list(
        Checkpoint.objects.policies()
        .filter(project=project)
        .select_related("model_spec", "created_by")
        .order_by("id")
    )
    rounds = {
        r.checkpoint_id: r for r in Round.objects.filter(project=project, checkpoint__isnull=False)
    }
    standings = checkpoint_standings(project.pk, checkpoints)
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
                    standing=standings.by_checkpoint[checkpoint.pk],
                )
            )
            walk(checkpoint.pk, depth + 1)

    walk(None, 0)
    return Lineage(nodes=nodes, standings=standings, checkpoints={c.pk: c for c in checkpoints})


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
        pk = db_id(ref)
        if pk is None:  # past the largest id: no such row
            raise Project.DoesNotExist(f"no project {ref}")
        return Project.objects.get(pk=pk)
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


# --- a round's signals (statistics in ``rlhf.signals``) ----------------------------------------


def round_human_tallies(rounds: Sequence[Round]) -> dict[int, WinRate]:
    """Round id → the human judgments of its new checkpoint vs its parent, for rounds of one
    project (one query for them all, by the same count as the leaderboard)."""
    pairs = {r.pk: (r.checkpoint_id, r.parent_checkpoint_id) for r in rounds if r.checkpoint_id}
    if not pairs:
        return {}
    ids = {pk for pair in pairs.values() for pk in pair}
    tallies = head_to_head(checkpoint_outcomes(rounds[0].project_id, ids))
    return {pk: tallies.get(pair, WinRate(0, 0, 0)) for pk, pair in pairs.items()}


def round_signals(round_: Round, humans: WinRate | None = None) -> RoundSignals:
    """What the reward model and humans say of the round's new policy vs its parent, and the
    flags they raise, from the round's (loaded) checkpoints' metrics and ``humans`` (from
    :func:`round_human_tallies`; looked up here, one query, when not given)."""
    if humans is None:
        humans = round_human_tallies([round_]).get(round_.pk, WinRate(0, 0, 0))
    reward = round_.reward_checkpoint if round_.reward_checkpoint_id else None
    policy = round_.checkpoint if round_.checkpoint_id else None
    return signals.round_signals(
        reward_metrics=reward.metrics if reward else None,
        evaluate_metrics=(policy.metrics.get("evaluate") if policy else None),
        humans=humans,
        snapshot_size=round_.snapshot_size,
        kl_warn=settings.PAIRWISE_KL_WARN,
        min_snapshot=settings.PAIRWISE_MIN_SNAPSHOT,
        fluency_ratio=settings.PAIRWISE_FLUENCY_RATIO,
        fluency_sampled_ratio=settings.PAIRWISE_FLUENCY_SAMPLED_RATIO,
        fluency_brevity_ratio=settings.PAIRWISE_FLUENCY_BREVITY_RATIO,
        withheld=(policy.metrics.get("reward_pairs_withheld") if policy else None),
    )


def promotion_blockers(checkpoint: Checkpoint) -> list[Flag]:
    """The flags of the round that made ``checkpoint`` that hold it back at the promotion gate
    (``rlhf.signals.BLOCKING_FLAGS``: its answers' fluency collapsed); none for a checkpoint no
    round made."""
    return promotion_blockers_of([checkpoint.pk]).get(checkpoint.pk, [])


def promotion_blockers_of(checkpoint_ids: Iterable[int]) -> dict[int, list[Flag]]:
    """:func:`promotion_blockers` of several checkpoints, keyed by id (one query)."""
    found: dict[int, list[Flag]] = {}
    rounds = Round.objects.filter(checkpoint_id__in=list(checkpoint_ids)).select_related(
        "checkpoint", "reward_checkpoint"
    )
    for round_ in rounds:
        if round_.checkpoint_id is None:
            continue
        flags = round_signals(round_, humans=WinRate(0, 0, 0)).flags
        found[round_.checkpoint_id] = [f for f in flags if f.code in signals.BLOCKING_FLAGS]
    return found


def gate_verdict(
    checkpoint_id: int, champion_id: int, win_rate: WinRate, blockers: Sequence[Flag]
) -> GateVerdict:
    """What the promotion gate says of a candidate against the champion now, and why: the 95%
    lower bound of humans' win-rate (``win_rate``, against ``champion_id``) must exceed
    ``PAIRWISE_PROMOTION_MIN_LOWER_BOUND``, and its round must not have raised a flag that holds
    it back (``blockers``, :func:`promotion_blockers`). The one verdict
    ``services.checkpoint_promote`` enforces and the Checkpoints page and API show before anyone
    asks."""
    verdict = promotion_verdict(
        win_rate,
        candidate=f"#{checkpoint_id}",
        champion=f"#{champion_id}",
        min_lower_bound=settings.PAIRWISE_PROMOTION_MIN_LOWER_BOUND,
    )
    if blockers:  # humans preferring broken text does not make it the next parent
        return GateVerdict(
            passed=False,
            reason=f"{verdict.reason}; but its round raised a warning that holds it back: "
            + " ".join(flag.message for flag in blockers).rstrip("."),
        )
    return verdict


def snapshot_preview(project: Project, method: str, config: dict[str, Any] | None) -> int | None:
    """How many training rows a round of ``method`` with ``config`` would train on now (None
    when the method or config is not valid: the launch says why)."""
    try:
        resolved = resolve_config(method, config)
    except ConfigError:
        return None
    return len(snapshot_select(project, resolved["snapshot"], method).rows)


@dataclass(frozen=True)
class LaunchPreview:
    """What a round launched now would do: its resolved config, the rows it would train on and
    the checkpoints it would start from and stay near (the launch form's preview)."""

    method: str
    config: dict[str, Any]
    rows: int  # training rows of the policy step
    rounds: list[int]  # the round numbers the snapshot takes ([]: every comparison)
    min_rows: int  # PAIRWISE_MIN_SNAPSHOT
    parent: Checkpoint | None  # the champion it starts from; None: the base, made at launch
    # The latest round's candidate, not the champion, and what the gate says of it now; with
    # ``promote_pending`` a launch promotes it first when the gate passes it (``parent`` is then
    # that candidate, and the rows are those about it).
    pending: PendingCandidate | None = None
    promote_pending: bool = False

    @property
    def promotes_first(self) -> bool:
        return self.promote_pending and self.pending is not None and self.pending.gate.passed

    @property
    def data_words(self) -> str:
        """Which comparisons the rows come from, in words."""
        if not self.rounds:
            return "every judged comparison"
        parts = ["the comparisons no round made" if n == 0 else f"round {n}'s" for n in self.rounds]
        return ", ".join(parts)

    @property
    def starts_from(self) -> str:
        if self.parent is None:
            return "the base model"
        if self.parent.parent_id is None:
            return f"checkpoint #{self.parent.pk}, the base model"
        if self.promotes_first:
            return f"checkpoint #{self.parent.pk}, promoted to champion first"
        return f"checkpoint #{self.parent.pk}, the champion"

    @property
    def config_json(self) -> str:
        return json.dumps(self.config, indent=2)

    @property
    def short_by(self) -> int:
        """How many more training rows the round needs (0: enough)."""
        return max(0, self.min_rows - self.rows)

    @property
    def family(self) -> str:
        return METHOD_REGISTRY[self.method].family

    @property
    def policy_steps(self) -> int:
        """The policy step's budget: the config's ``max_steps`` or the engine's default."""
        policy = self.config["policy"]
        if "max_steps" in policy:
            return int(policy["max_steps"])
        spec = METHOD_REGISTRY[self.method].spec
        engine: dict[str, Any] = {f.name: f.default for f in dataclass_fields(spec)}
        return int(engine["max_steps"])

    @property
    def reference(self) -> str:
        """The model the policy's KL / DPO reference is, in words."""
        starts_from_base = self.parent is None or self.parent.parent_id is None
        if self.family == "online" or self.config["policy"].get("reference") == "base":
            return "the base model"
        if starts_from_base:
            return "the base model (the parent is the base)"
        return f"the parent, checkpoint #{self.parent.pk}" if self.parent else "the parent"


def project_model_params(project: Project) -> int | None:
    """The parameter count of the project's base model (the champion's model spec; None when
    unknown, e.g. a hub id): the size-aware round defaults follow it."""
    spec = ModelSpec.objects.filter(checkpoints__project=project, checkpoints__is_champion=True)
    base_model = spec.values_list("base_model", flat=True).first()  # one query
    return parameter_count(resolve_model_path(base_model)) if base_model is not None else None


def launch_defaults(project: Project, method: str) -> dict[str, Any]:
    """The config a launch of ``method`` with no overrides resolves to now: the toy's tuned
    defaults, or, for a base model of SIZE_AWARE_MIN_PARAMS or more, the size-aware ones for it
    and the snapshot it would train on (what ``services.round_launch`` resolves)."""
    model_params = project_model_params(project)
    if model_params is None or model_params < SIZE_AWARE_MIN_PARAMS:
        return resolve_config(method)
    rows = snapshot_preview(project, method, None)
    return resolve_config(method, model_params=model_params, snapshot_size=rows)


def launch_preview(
    project: Project, method: str, overrides: dict[str, Any] | None, promote_pending: bool = False
) -> LaunchPreview:
    """The preview of a launch of ``method`` with ``overrides`` (and ``promote_pending``: the
    latest candidate promoted first if the gate passes it); ConfigError names the field.
    Resolved as the launch resolves it: size-aware defaults for the base model and the rows."""
    model_params = project_model_params(project)
    config = resolve_config(method, overrides, model_params=model_params)
    pending = pending_candidate(project)
    promoted = pending.checkpoint if promote_pending and pending and pending.gate.passed else None
    chosen = snapshot_select(project, config["snapshot"], method, champion=promoted)
    if model_params is not None:
        config = resolve_config(
            method, overrides, model_params=model_params, snapshot_size=len(chosen.rows)
        )
    return LaunchPreview(
        method=method,
        config=config,
        rows=len(chosen.rows),
        rounds=chosen.rounds,
        min_rows=settings.PAIRWISE_MIN_SNAPSHOT,
        parent=promoted or Checkpoint.objects.champion_of(project),
        pending=pending,
        promote_pending=promote_pending,
    )


def launch_decision_line(decision: Mapping[str, Any]) -> str:
    """A round's ``launch_decision`` in words (the launch's confirmation and the command)."""
    done = "promoted first" if decision["promoted"] else "not promoted"
    if decision.get("forced"):
        done += " (forced)"
    return (
        f"round {decision['round']}'s candidate #{decision['checkpoint']} was {done}: "
        f"{decision['reason']}"
    )


@dataclass(frozen=True)
class PendingCandidate:
    """The latest succeeded round's candidate while it is not the champion, with its human
    win-rate against the champion and what the promotion gate says of it now."""

    round_number: int
    checkpoint: Checkpoint
    champion_id: int
    win_rate: WinRate
    gate: GateVerdict


def pending_candidate(project: Project) -> PendingCandidate | None:
    """The candidate a launch with ``promote_pending`` puts through the gate first: the newest
    succeeded round's checkpoint, unless it is the champion (None then, or before any round)."""
    latest = (
        Round.objects.filter(project=project, status=RoundStatus.SUCCEEDED)
        .exclude(checkpoint=None)
        .select_related("checkpoint__model_spec")
        .order_by("-number")
        .first()
    )
    champion = Checkpoint.objects.champion_of(project)
    if latest is None or latest.checkpoint is None or champion is None:
        return None
    candidate = latest.checkpoint
    if candidate.pk == champion.pk:
        return None
    win_rate = human_win_rate(candidate, champion)
    gate = gate_verdict(candidate.pk, champion.pk, win_rate, promotion_blockers(candidate))
    return PendingCandidate(latest.number, candidate, champion.pk, win_rate, gate)


@dataclass(frozen=True)
class Snapshot:
    rounds: list[int]  # the round numbers it takes ([]: all)
    judgment_ids: list[int]
    rows: list[dict[str, Any]]  # the training rows of the round's method


def rounds_since_champion(project: Project, champion: Checkpoint | None = None) -> list[int]:
    """The batches gathered about the champion (``champion``: the one a launch would promote
    first, in its stead), newest first: those of the succeeded rounds started from it, then the
    one of the round that made it (0, the comparisons no round made, for a champion no round
    made)."""
    champion = champion or Checkpoint.objects.champion_of(project)
    if champion is None:
        return []
    rounds = list(
        Round.objects.filter(project=project, status=RoundStatus.SUCCEEDED)
        .filter(Q(parent_checkpoint=champion) | Q(checkpoint=champion))
        .order_by("-number")
        .values_list("number", "checkpoint_id")
    )
    numbers = [number for number, _ in rounds]  # the one that made it comes last: it is older
    return numbers if any(made == champion.pk for _, made in rounds) else [*numbers, 0]


def snapshot_select(
    project: Project,
    snapshot: dict[str, Any],
    method: str,
    adjudications: Mapping[int, tuple[str, int | None]] | None = None,
    champion: Checkpoint | None = None,
) -> Snapshot:
    """What a round of ``method`` with this snapshot config trains on now (``adjudications``:
    the ones a launch freezes; None: the stored ones; ``champion``: the champion it would start
    from, when not the current one: a candidate the launch would promote first).

    ``rounds: newest`` takes the latest round's batch, once it is judged:

    - with every batch gathered since the champion was made, when the latest round's checkpoint
      was not promoted: the next round starts from the same champion, so it trains on all the
      labels about it (its own round's batch, or the comparisons no round made for the base, and
      the batches of the rounds started from it), not on the newest 200 again. Without this a
      loop whose candidates the promotion gate holds back (a real gain of a few points cannot
      clear the gate on one batch of human judgments) restarts every round from the same place
      with the same amount of data and never gets further;
    - then, while the rows are fewer than ``PAIRWISE_MIN_SNAPSHOT``, the batches before, newest
      first, then the comparisons no round made: once a policy answers alike, a batch judged by
      a rule-like preference is mostly ties (benchmarks/loop.py under ``correct``: 15 usable rows
      of 200 judgments) and the loop would stop.

    A batch nobody has judged yet is not passed over (the launch then says to judge it). Any
    other setting takes what it names.
    """
    setting = snapshot.get("rounds", "all")

    def take(numbers: list[int]) -> Snapshot:
        ids = snapshot_judgment_ids(project, snapshot, numbers)
        return Snapshot(numbers, ids, training_rows(method, ids, snapshot, adjudications))

    numbers = snapshot_rounds(project, setting)
    if setting != "newest":
        return take(numbers)
    if not snapshot_judgment_ids(project, snapshot, numbers):  # the latest batch, unjudged
        return Snapshot(numbers, [], [])
    chosen = take([*dict.fromkeys([*numbers, *rounds_since_champion(project, champion)])])
    older = (
        Round.objects.filter(project=project, status=RoundStatus.SUCCEEDED)
        .order_by("-number")
        .values_list("number", flat=True)
    )
    numbers = [*dict.fromkeys([*chosen.rounds, *older, 0])]
    for end in range(len(chosen.rounds) + 1, len(numbers) + 1):
        if len(chosen.rows) >= settings.PAIRWISE_MIN_SNAPSHOT:
            break
        chosen = take(numbers[:end])
    return chosen
