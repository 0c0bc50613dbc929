"""The queue under real concurrency, on PostgreSQL (where ``FOR UPDATE SKIP LOCKED`` is real).

Runs only when the test database is PostgreSQL: ``DATABASE_URL=postgres://… pytest -m postgres``.
Many threads, one database connection each, claim and submit at once; afterwards the database must
show no comparison over k, no annotator twice on a comparison, every submitted judgment stored
exactly once, and ``judgment_count`` equal to the judgments actually stored.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Count

from labeling import services
from labeling.models import Assignment, AssignmentStatus, Comparison, ComparisonStatus, Judgment
from tests.factories import ComparisonFactory, ProjectFactory, UserFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="needs PostgreSQL: set DATABASE_URL=postgres://…",
    ),
]


def run_threads(count: int, work: Callable[[int], None]) -> list[BaseException]:
    """Run ``work(i)`` in ``count`` threads released together; returns the errors raised."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def body(index: int) -> None:
        try:
            barrier.wait()
            work(index)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker thread hung"
    return errors


def test_many_annotators_claim_and_submit_at_once() -> None:
    k, n_annotators, n_comparisons = 2, 16, 40
    project = ProjectFactory.create(judgments_per_comparison=k)
    annotators = [UserFactory.create(username=f"racer{i}") for i in range(n_annotators)]
    project.annotators.add(*annotators)
    comparisons = [ComparisonFactory.create(project=project) for _ in range(n_comparisons)]
    submitted: list[tuple[int, int]] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        annotator = annotators[index]
        rng = random.Random(index)
        while True:
            lease = services.assignment_claim_next(annotator=annotator, project=project)
            if lease is None:
                return
            choice = rng.choice(["a", "b", "tie", "both_bad"])
            strength = rng.randint(1, 4) if choice in ("a", "b") else None
            result = services.judgment_submit(
                annotator=annotator, comparison=lease.comparison, choice=choice, strength=strength
            )
            retry = services.judgment_submit(
                annotator=annotator, comparison=lease.comparison, choice=choice, strength=strength
            )
            assert result.created and not retry.created
            assert retry.judgment.pk == result.judgment.pk
            with lock:
                submitted.append((annotator.pk, lease.comparison_id))

    errors = run_threads(n_annotators, work)
    assert errors == []

    stored = list(Judgment.objects.values_list("annotator_id", "comparison_id"))
    assert sorted(stored) == sorted(submitted), "every submitted judgment stored exactly once"
    assert len(set(stored)) == len(stored), "an annotator judged a comparison twice"
    per_comparison = Counter(comparison_id for _, comparison_id in stored)
    assert max(per_comparison.values()) <= k, "a comparison got more than k judgments"
    assert len(stored) == k * n_comparisons, "the queue was not drained"
    rows = Comparison.objects.annotate(actual=Count("judgments")).values_list(
        "judgment_count", "actual", "status"
    )
    assert set(rows) == {(k, k, ComparisonStatus.COMPLETE)}
    assert {c.pk for c in comparisons} == set(per_comparison)
    assert not Assignment.objects.filter(status=AssignmentStatus.ACTIVE).exists()


def test_leases_never_overbook_k() -> None:
    """Claims alone (nobody submits): live leases per comparison never exceed k."""
    k, n_annotators = 2, 16
    project = ProjectFactory.create(judgments_per_comparison=k)
    annotators = [UserFactory.create(username=f"leaser{i}") for i in range(n_annotators)]
    project.annotators.add(*annotators)
    for _ in range(5):
        ComparisonFactory.create(project=project)  # 10 slots for 16 annotators

    def work(index: int) -> None:
        services.assignment_claim_next(annotator=annotators[index], project=project)

    assert run_threads(n_annotators, work) == []
    active = Assignment.objects.filter(status=AssignmentStatus.ACTIVE)
    per_comparison = Counter(active.values_list("comparison_id", flat=True))
    assert sum(per_comparison.values()) == 10
    assert set(per_comparison.values()) == {k}


def test_same_annotator_claiming_twice_at_once_gets_one_lease() -> None:
    """A double-clicked "next" (two requests of one annotator at once) yields one lease."""
    project = ProjectFactory.create()
    annotator = UserFactory.create(username="double")
    project.annotators.add(annotator)
    for _ in range(10):
        ComparisonFactory.create(project=project)
    leases: list[Any] = []

    def work(index: int) -> None:
        leases.append(services.assignment_claim_next(annotator=annotator, project=project))

    for _ in range(5):
        leases.clear()
        assert run_threads(4, work) == []
        assert len({lease.pk for lease in leases}) == 1
        assert Assignment.objects.filter(status=AssignmentStatus.ACTIVE).count() == 1
        lease = leases[0]
        services.judgment_submit(annotator=annotator, comparison=lease.comparison, choice="tie")


def test_concurrent_retries_store_one_judgment() -> None:
    project = ProjectFactory.create()
    annotator = UserFactory.create(username="retrier")
    project.annotators.add(annotator)
    comparison = ComparisonFactory.create(project=project)
    lease = services.assignment_claim_next(annotator=annotator, project=project)
    assert lease is not None
    created: list[bool] = []

    def work(index: int) -> None:
        result = services.judgment_submit(
            annotator=annotator, comparison=comparison, choice="a", strength=index % 4 + 1
        )
        created.append(result.created)

    assert run_threads(8, work) == []
    assert sorted(created) == [False] * 7 + [True]
    comparison.refresh_from_db()
    assert comparison.judgment_count == Judgment.objects.count() == 1


def test_concurrent_retries_with_next_store_one_judgment_and_one_lease() -> None:
    """Retries of the API's submit+next: one judgment, and every retry gets the same next lease."""
    project = ProjectFactory.create()
    annotator = UserFactory.create(username="retrier")
    project.annotators.add(annotator)
    comparison, _ = (
        ComparisonFactory.create(project=project),
        ComparisonFactory.create(project=project),
    )
    lease = services.assignment_claim_next(annotator=annotator, project=project)
    assert lease is not None
    judged = lease.comparison
    outcomes: list[tuple[bool, int | None]] = []

    def work(index: int) -> None:
        result, nxt = services.judgment_submit_and_claim_next(
            annotator=annotator, comparison=judged, project=project, choice="b", strength=2
        )
        outcomes.append((result.created, nxt.pk if nxt else None))

    assert run_threads(8, work) == []
    assert sorted(created for created, _ in outcomes) == [False] * 7 + [True]
    active = Assignment.objects.get(annotator=annotator, status=AssignmentStatus.ACTIVE)
    assert {lease_id for _, lease_id in outcomes} == {active.pk}
    assert active.comparison_id != judged.pk
    assert Judgment.objects.get().comparison_id == judged.pk
    judged.refresh_from_db()
    assert judged.judgment_count == 1
    assert comparison.pk in (judged.pk, active.comparison_id)


def test_submit_with_next_in_one_transaction_under_load() -> None:
    """The API's path: each judgment and the next lease in one transaction, many at once."""
    k, n_annotators, n_comparisons = 2, 16, 40
    project = ProjectFactory.create(judgments_per_comparison=k)
    annotators = [UserFactory.create(username=f"chain{i}") for i in range(n_annotators)]
    project.annotators.add(*annotators)
    for _ in range(n_comparisons):
        ComparisonFactory.create(project=project)
    submitted: list[tuple[int, int]] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        annotator = annotators[index]
        lease = services.assignment_claim_next(annotator=annotator, project=project)
        while lease is not None:
            result, lease_next = services.judgment_submit_and_claim_next(
                annotator=annotator, comparison=lease.comparison, project=project, choice="tie"
            )
            assert result.created
            with lock:
                submitted.append((annotator.pk, lease.comparison_id))
            lease = lease_next

    assert run_threads(n_annotators, work) == []
    stored = list(Judgment.objects.values_list("annotator_id", "comparison_id"))
    assert sorted(stored) == sorted(submitted)
    assert len(set(stored)) == len(stored) == k * n_comparisons
    assert max(Counter(c for _, c in stored).values()) == k
    rows = Comparison.objects.annotate(actual=Count("judgments")).values_list(
        "judgment_count", "actual", "status"
    )
    assert set(rows) == {(k, k, ComparisonStatus.COMPLETE)}
    assert not Assignment.objects.filter(status=AssignmentStatus.ACTIVE).exists()


def test_gold_mixed_in_under_load() -> None:
    """Gold at rate 0.25 among normal items, 12 annotators submitting with ``next`` at once: every
    annotator judges every gold item at most once, gold stays open, and no normal comparison goes
    over k (gold took none of its slots)."""
    k, n_annotators = 2, 12
    project = ProjectFactory.create(judgments_per_comparison=k, gold_rate=0.25)
    annotators = [UserFactory.create(username=f"golden{i}") for i in range(n_annotators)]
    project.annotators.add(*annotators)
    normal = [ComparisonFactory.create(project=project) for _ in range(30)]
    golds = [ComparisonFactory.create(project=project, gold_answer="a") for _ in range(6)]

    def work(index: int) -> None:
        annotator = annotators[index]
        lease = services.assignment_claim_next(annotator=annotator, project=project)
        while lease is not None:
            _, lease = services.judgment_submit_and_claim_next(
                annotator=annotator,
                comparison=lease.comparison,
                project=project,
                choice="a",
                strength=2,
            )

    assert run_threads(n_annotators, work) == []
    counts = dict(
        Comparison.objects.filter(project=project)
        .annotate(n=Count("judgments"))
        .values_list("pk", "n")
    )
    assert all(counts[c.pk] == k for c in normal)  # every slot filled, none over
    assert sum(counts[c.pk] for c in golds) > 0
    for comparison in Comparison.objects.filter(pk__in=[c.pk for c in golds]):
        assert comparison.status == ComparisonStatus.OPEN
        assert comparison.judgment_count == counts[comparison.pk] <= n_annotators
    assert not Assignment.objects.filter(status=AssignmentStatus.ACTIVE).exists()
