"""A ranking's derived pairwise judgments feed a round's snapshot exactly as judgments do
(rlhf.selectors.snapshot_select), by round when the ranking set came from a round."""

from __future__ import annotations

from typing import Any

import pytest

from labeling import services
from labeling.models import Judgment, Project
from rlhf.selectors import snapshot_select
from tests.factories import PromptFactory, ResponseFactory

pytestmark = pytest.mark.django_db


def test_rankings_feed_snapshots(project: Project, annotator: Any) -> None:
    services.project_depth_set(project=project, task_kind="ranking")
    prompt = PromptFactory.create(project=project)
    responses = [ResponseFactory.create(prompt=prompt, text=f"take {i}") for i in range(4)]
    [ranking_set] = services.ranking_sets_create(project=project, batch="round-3:ranking")
    lease = services.ranking_lease_next(annotator=annotator, project=project)
    assert lease is not None
    best, second, third, worst = (r.pk for r in responses)
    result = services.ranking_submit(
        annotator=annotator, ranking_set=ranking_set, order=[best, [second, third], worst]
    )

    every = snapshot_select(project, {"rounds": "all"}, "dpo")
    assert every.judgment_ids == sorted(j.pk for j in result.judgments)
    texts = {r.pk: r.text for r in responses}
    assert {(row["chosen"], row["rejected"]) for row in every.rows} == {
        (texts[best], texts[second]),
        (texts[best], texts[third]),
        (texts[best], texts[worst]),
        (texts[second], texts[worst]),
        (texts[third], texts[worst]),
    }
    assert snapshot_select(project, {"rounds": [3]}, "dpo").judgment_ids == every.judgment_ids
    assert snapshot_select(project, {"rounds": [2]}, "dpo").judgment_ids == []
    kto = snapshot_select(project, {"rounds": "all"}, "kto")
    assert len(kto.rows) == 10  # 5 decided pairs, each a desirable and an undesirable example
    assert Judgment.objects.filter(ranking__isnull=False).count() == 6
