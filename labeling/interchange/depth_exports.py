"""Exports of the labeling-depth features (issue 13), streamed as JSON Lines.

- **Rankings, both ways** (``labeling.ranking``): ``rankings_rows(as_="rankings")`` gives one
  row per ranking (the prompt, the K responses, the order in tiers best first, each response's
  rank: equal ranks are ties); ``as_="pairs"`` gives one row per derived pairwise judgment, each
  naming its ranking (``ranking_id``). The preference exports (``exports``) and the round
  snapshots read the same derived judgments as any other vote.
- **Rewrite / SFT** (``Project.ask_acceptable``): ``rewrite_rows`` gives the comparisons whose
  votes decided *both bad*, or whose better response was judged not acceptable
  (``labeling.preferences.unacceptable_comparisons``): material for rewriting into SFT
  demonstrations instead of DPO pairs, which leave them out.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

from django.db.models import Count, Q

from labeling import preferences
from labeling.models import Comparison, Judgment, Project, Ranking, RankingSet

CHUNK = 500
RANKING_SHAPES = ("rankings", "pairs")


def jsonl(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    for row in rows:
        yield (json.dumps(row, ensure_ascii=False, default=str) + "\n").encode()


def rankings_rows(project: Project, *, as_: str = "rankings") -> Iterator[dict[str, Any]]:
    if as_ == "pairs":
        yield from _ranking_pairs(project)
        return
    sets: dict[int, list[dict[str, Any]]] = {}
    for ranking_set in RankingSet.objects.filter(project=project).prefetch_related("responses"):
        sets[ranking_set.pk] = [
            {"id": r.pk, "text": r.text, "model_name": r.model_name}
            for r in sorted(ranking_set.responses.all(), key=lambda r: r.pk)
        ]
    rankings = (
        Ranking.objects.filter(ranking_set__project=project)
        .select_related("annotator", "ranking_set__prompt")
        .annotate(pairs=Count("judgments"))
        .order_by("id")
    )
    for ranking in rankings.iterator(chunk_size=CHUNK):
        prompt = ranking.ranking_set.prompt
        yield {
            "ranking_id": ranking.pk,
            "ranking_set_id": ranking.ranking_set_id,
            "prompt_id": str(prompt.pk),
            "prompt": prompt.messages,
            "annotator": ranking.annotator.get_username(),
            "responses": sets.get(ranking.ranking_set_id, []),
            "order": ranking.order,
            "ranks": {
                str(response_id): tier + 1
                for tier, ids in enumerate(ranking.order)
                for response_id in ids
            },
            "pairs": ranking.pairs,
            "time_spent_ms": ranking.time_spent_ms,
            "created_at": ranking.created_at.isoformat(),
        }


def _ranking_pairs(project: Project) -> Iterator[dict[str, Any]]:
    judgments = (
        Judgment.objects.filter(ranking__ranking_set__project=project)
        .select_related(
            "annotator", "comparison__prompt", "comparison__response_a", "comparison__response_b"
        )
        .order_by("ranking_id", "id")
    )
    for judgment in judgments.iterator(chunk_size=CHUNK):
        comparison = judgment.comparison
        text = {"a": comparison.response_a.text, "b": comparison.response_b.text}
        sided = judgment.choice in preferences.SIDES
        yield {
            "ranking_id": judgment.ranking_id,
            "judgment_id": judgment.pk,
            "comparison_id": comparison.pk,
            "annotator": judgment.annotator.get_username(),
            "prompt_id": str(comparison.prompt_id),
            "prompt": comparison.prompt.messages,
            "choice": judgment.choice,
            "response_a": text["a"],
            "response_b": text["b"],
            "chosen": text[judgment.choice] if sided else None,
            "rejected": text["b" if judgment.choice == "a" else "a"] if sided else None,
        }


def rewrite_rows(project: Project) -> Iterator[dict[str, Any]]:
    """Comparisons decided both-bad or judged not acceptable, with their texts and votes."""
    unacceptable = set(
        Comparison.objects.filter(
            project=project, pk__in=preferences.unacceptable_comparisons()
        ).values_list("pk", flat=True)
    )
    comparisons = (
        Comparison.objects.filter(project=project)
        .not_gold()
        .filter(Q(pk__in=unacceptable) | Q(judgments__choice="both_bad"))
        .distinct()
        .select_related("prompt", "response_a", "response_b")
        .order_by("id")
    )
    votes: dict[int, list[tuple[str, int | None]]] = {}
    for comparison_id, choice, strength in Judgment.objects.filter(
        comparison__in=comparisons.values("pk")
    ).values_list("comparison_id", "choice", "strength"):
        votes.setdefault(comparison_id, []).append((choice, strength))
    for comparison in comparisons.iterator(chunk_size=CHUNK):
        decision = preferences.decide(preferences.Votes.of(votes.get(comparison.pk, [])))
        if comparison.pk in unacceptable:
            reason = "unacceptable"
        elif decision.outcome == "both_bad":
            reason = "both_bad"
        else:
            continue
        text = {"a": comparison.response_a.text, "b": comparison.response_b.text}
        best = text[decision.outcome] if decision.outcome in preferences.SIDES else None
        yield {
            "comparison_id": comparison.pk,
            "prompt_id": str(comparison.prompt_id),
            "prompt": comparison.prompt.messages,
            "reason": reason,
            "best": best,
            "responses": [text["a"], text["b"]],
            "votes": dict(Counter(choice for choice, _ in votes.get(comparison.pk, []))),
            "completion": "",
        }
