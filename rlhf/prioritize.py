"""Queue priorities from the live reward model, for projects with ``queue_order = uncertainty``.

The worker (``rlhf.runner.queue_rescore``) runs after a round's reward step (a new reward model)
and after its generate step (new pairs, scored by that round's reward model); never in a request.
It writes the project's open comparisons as pairs (:func:`open_pairs`), runs the engine's
``score`` step (``python -m rlhf.training score``) on the round's merged reward model and sets
each comparison's priority (:func:`priorities`, through
``labeling.services.comparisons_prioritize``) to

    priority = round tier * QUEUE_TIER + round(score * (QUEUE_TIER - 1))

The tier (``priority // QUEUE_TIER``, kept as it is: the number of the round that made the pair,
``rlhf.selectors.batch_priority``; 0 for pairs no round made, unless given a higher priority)
keeps the newest batch first, as in ``fifo`` projects; the score in [0, 1] orders pairs within a
tier:

- uncertainty: the pair's information (BALD) over ln 2: how much a committee disagrees about the
  pair. The committee is the reward models the round's reward step trained from different seeds
  on the same rows and averaged into its reward model (``reward.members``, kept for these
  projects: query by committee, ``rlhf.training.scoring.ensemble_information``); a round trained
  with one member falls back to dropout masks over the reward head's features
  (``rlhf.training.scoring.bald``). A pair every member calls a coin flip scores ~0, though its
  margin is ~0 too: ranking by the margin alone (``1 - |2p - 1|``, ``p = sigmoid(r_a - r_b)``,
  still used for score rows without ``information``) served those first, and annotators mostly
  called them ties, which train nothing (``benchmarks/active_learning.py``);
- disagreement with the votes so far (projects with k > 1 judgments per comparison): when the
  votes decided a side (``labeling.preferences.decide``), the model's probability of the other
  side. The score is the larger of the two, so a pair the model confidently decides against the
  annotators comes as early as an uncertain one.

Comparisons added after the scoring keep their fifo priority (same tier) until the next one.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from labeling.models import Comparison, Judgment, Project
from labeling.preferences import SIDES, Votes, decide, id_list
from rlhf.methods import QUEUE_TIER
from rlhf.selectors import batch_priority


def uncertainty_score(
    reward_a: float,
    reward_b: float,
    decided: str | None = None,
    information: float | None = None,
) -> float:
    """In [0, 1], higher first: the reward model's uncertainty about the pair (its
    ``information`` over ln 2 where the score step gave one, else ``1 - |2p - 1|``), or
    (``decided``: the side the votes chose, ``a`` / ``b``) its disagreement with the votes,
    whichever is larger."""

    def sigmoid(x: float) -> float:
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))

    if information is not None:
        uncertainty = min(1.0, max(0.0, information / math.log(2)))
    else:  # = 1 - |2p - 1|, p = sigmoid(r_a - r_b)
        uncertainty = 2.0 * sigmoid(-abs(reward_a - reward_b))
    p_a = sigmoid(reward_a - reward_b)
    if decided == "a":
        return max(uncertainty, 1.0 - p_a)
    if decided == "b":
        return max(uncertainty, p_a)
    return uncertainty


def open_pairs(project: Project) -> list[dict[str, Any]]:
    """The project's open comparisons as the score step's pair rows (``rlhf.training.specs``)."""
    comparisons = (
        Comparison.objects.open()
        .filter(project=project)
        .select_related("prompt", "response_a", "response_b")
        .order_by("id")
    )
    return [
        {
            "id": str(c.pk),
            "prompt": c.prompt.messages,
            "a": c.response_a.text,
            "b": c.response_b.text,
        }
        for c in comparisons.iterator(chunk_size=500)
    ]


def vote_decisions(comparison_ids: Iterable[int]) -> dict[int, str]:
    """The side (``a`` / ``b``) the votes so far decided, for the comparisons that have one."""
    votes: dict[int, list[tuple[str, int | None]]] = defaultdict(list)
    rows = Judgment.objects.filter(comparison_id__in=id_list(comparison_ids)).values_list(
        "comparison_id", "choice", "strength"
    )
    for comparison_id, choice, strength in rows:
        votes[comparison_id].append((choice, strength))
    decided = {pk: decide(Votes.of(v)).outcome for pk, v in votes.items()}
    return {pk: outcome for pk, outcome in decided.items() if outcome in SIDES}


def priorities(project: Project, scores: Iterable[Mapping[str, Any]]) -> dict[int, int]:
    """Comparison id -> priority from the score step's rows ``{id, reward_a, reward_b,
    information}`` (``information`` optional)."""
    rewards: dict[int, tuple[float, float, float | None]] = {
        int(row["id"]): (
            float(row["reward_a"]),
            float(row["reward_b"]),
            None if row.get("information") is None else float(row["information"]),
        )
        for row in scores
    }
    current = dict(
        Comparison.objects.filter(project=project, pk__in=id_list(rewards)).values_list(
            "pk", "priority"
        )
    )
    decided = vote_decisions(current)
    out = {}
    for pk, priority in current.items():
        reward_a, reward_b, information = rewards[pk]
        score = uncertainty_score(reward_a, reward_b, decided.get(pk), information)
        out[pk] = batch_priority(priority // QUEUE_TIER, round(score * (QUEUE_TIER - 1)))
    return out
