"""Rankings under real concurrency, on PostgreSQL: many annotators lease and rank at once (and
submit twice); no set gets more than k rankings, ``ranking_count`` equals the rankings stored,
each ranking has its C(K, 2) judgments and no annotator votes twice on a pair."""

from __future__ import annotations

import random
from typing import Any

import pytest
from django.conf import settings
from django.db.models import Count

from labeling import services
from labeling.models import Judgment, Ranking, RankingSet
from tests.factories import ProjectFactory, PromptFactory, ResponseFactory, UserFactory
from tests.labeling.test_concurrency_pg import run_threads

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="needs PostgreSQL: set DATABASE_URL=postgres://…",
    ),
]


def test_many_annotators_rank_at_once() -> None:
    k, n_annotators, n_sets, size = 2, 10, 8, 4
    project: Any = ProjectFactory.create(judgments_per_comparison=k)
    services.project_depth_set(project=project, task_kind="ranking")
    annotators = [UserFactory.create(username=f"ranker{i}") for i in range(n_annotators)]
    project.annotators.add(*annotators)
    for _ in range(n_sets):
        prompt = PromptFactory.create(project=project)
        for i in range(size):
            ResponseFactory.create(prompt=prompt, text=f"{prompt.pk}: option {i}")
    services.ranking_sets_create(project=project, size=size)

    def work(index: int) -> None:
        annotator = annotators[index]
        rng = random.Random(index)
        while True:
            lease = services.ranking_lease_next(annotator=annotator, project=project)
            if lease is None:
                return
            order = list(lease.display_order)
            rng.shuffle(order)
            first = services.ranking_submit(
                annotator=annotator, ranking_set=lease.ranking_set, order=order
            )
            again = services.ranking_submit(
                annotator=annotator, ranking_set=lease.ranking_set, order=order
            )
            assert first.created and not again.created
            assert again.ranking.pk == first.ranking.pk

    assert run_threads(n_annotators, work) == []
    for ranking_set in RankingSet.objects.annotate(n=Count("rankings")):
        assert ranking_set.n == ranking_set.ranking_count == k
    assert Ranking.objects.count() == n_sets * k
    per_ranking = Ranking.objects.annotate(n=Count("judgments")).values_list("n", flat=True)
    assert set(per_ranking) == {size * (size - 1) // 2}
    doubled = (
        Judgment.objects.values("annotator", "comparison").annotate(n=Count("pk")).filter(n__gt=1)
    )
    assert not doubled.exists()
