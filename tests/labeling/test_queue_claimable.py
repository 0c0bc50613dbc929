"""One meaning of "claimable": the claim's SQL, the ORM's ``claimable_by`` and the rule agree.

Hypothesis draws small queues: one or two projects (k = 1..3), comparisons with priorities, some
closed, some gold, and for every (annotator, comparison) one state among none, judged (by the queue or
imported), a live / expired / just-expiring lease, a skip, a released lease. For one annotator
and project, the comparisons the claim's candidate query (``labeling.queue._CANDIDATE_SQL``,
walked in queue order as the claim walks it) offers must equal ``Comparison.objects
.claimable_by(...)`` (what the remaining counts read) and the rule computed here in Python, in
the same order. The same for gold (``labeling.gold``): the claim's gold query
(``_GOLD_NEXT_SQL``), ``gold_claimable_by`` and the gold rule (open, gold, neither judged nor
skipped by this annotator, whatever k and the leases) agree, and no gold comparison is ever
claimable as a normal one. Runs on SQLite and, with ``DATABASE_URL``, on PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labeling import queue as queue_engine
from labeling.models import (
    Assignment,
    AssignmentStatus,
    Comparison,
    ComparisonStatus,
    Judgment,
    Source,
)
from labeling.sqlrows import db_datetime
from tests.factories import ComparisonFactory, ProjectFactory

pytestmark = pytest.mark.django_db

ANNOTATORS = 3
CELLS = (
    "none",
    "judged",  # a judgment through the queue: its lease is done
    "imported",  # an imported judgment, no lease
    "live",  # an active lease, expiring later
    "expired",  # an active lease past its expiry
    "expiring_now",  # an active lease whose expiry is exactly now (not live)
    "skipped",
    "released",
)
LIVE_AFTER = {"live"}
JUDGED = {"judged", "imported"}


@dataclass(frozen=True)
class Queue:
    ks: list[int]
    comparisons: list[tuple[int, int, bool]]  # (project index, priority, closed)
    gold: list[str]  # [comparison]: its gold answer, "" when not gold
    cells: list[list[str]]  # [comparison][annotator]
    annotator: int
    project: int


@st.composite
def queues(draw: Any) -> Queue:
    ks = draw(st.lists(st.integers(1, 3), min_size=1, max_size=2))
    comparisons = draw(
        st.lists(
            st.tuples(st.integers(0, len(ks) - 1), st.integers(-1, 2), st.booleans()),
            min_size=1,
            max_size=6,
        )
    )
    cells = [
        draw(st.lists(st.sampled_from(CELLS), min_size=ANNOTATORS, max_size=ANNOTATORS))
        for _ in comparisons
    ]
    gold = draw(
        st.lists(
            st.sampled_from(["", "", "a", "b"]),
            min_size=len(comparisons),
            max_size=len(comparisons),
        )
    )
    return Queue(
        ks=ks,
        comparisons=comparisons,
        gold=gold,
        cells=cells,
        annotator=draw(st.integers(0, ANNOTATORS - 1)),
        project=draw(st.integers(0, len(ks) - 1)),
    )


def _sql_candidates(annotator: Any, project: Any, now: Any, lock: str = "") -> list[int]:
    """The claim's candidate query, walked as ``_claim_in`` walks it (passing each row taken)."""
    passed: list[int] = []
    with connection.cursor() as cursor:
        while True:
            passed_sql = f" AND c.id NOT IN ({', '.join(['%s'] * len(passed))})" if passed else ""
            cursor.execute(
                queue_engine._CANDIDATE_SQL.format(passed=passed_sql, lock=lock),
                [
                    project.pk,
                    annotator.pk,
                    annotator.pk,
                    db_datetime(now),
                    project.judgments_per_comparison,
                    *passed,
                ],
            )
            row = cursor.fetchone()
            if row is None:
                return passed
            passed.append(row[0])


def _sql_gold_candidates(annotator: Any, project: Any) -> list[int]:
    """The claim's gold query, walked in queue order."""
    passed: list[int] = []
    with connection.cursor() as cursor:
        while True:
            passed_sql = f" AND c.id NOT IN ({', '.join(['%s'] * len(passed))})" if passed else ""
            cursor.execute(
                queue_engine._GOLD_NEXT_SQL.format(passed=passed_sql),
                [project.pk, annotator.pk, annotator.pk, *passed],
            )
            row = cursor.fetchone()
            if row is None:
                return passed
            passed.append(row[0])


def _build(drawn: Queue, now: Any) -> tuple[list[Any], list[Any], list[Comparison]]:
    user_model = get_user_model()
    users = [user_model.objects.create(username=f"prop-{i}") for i in range(ANNOTATORS)]
    projects = [ProjectFactory.create(judgments_per_comparison=k) for k in drawn.ks]
    comparisons = [
        ComparisonFactory.create(project=projects[p], priority=priority, gold_answer=answer)
        for (p, priority, _), answer in zip(drawn.comparisons, drawn.gold, strict=True)
    ]
    # One active lease per annotator and project (a unique index): later ones become "none".
    holding: set[tuple[int, int]] = set()
    for comparison, row in zip(comparisons, drawn.cells, strict=True):
        for index, (user, cell) in enumerate(zip(users, row, strict=True)):
            if cell in JUDGED:
                Judgment.objects.create(
                    annotator=user,
                    comparison=comparison,
                    choice="tie",
                    shown_left="a",
                    source=Source.HUMAN if cell == "judged" else Source.IMPORTED,
                )
            if cell in ("none", "imported"):
                continue
            status = {
                "judged": AssignmentStatus.DONE,
                "skipped": AssignmentStatus.SKIPPED,
                "released": AssignmentStatus.RELEASED,
            }.get(cell, AssignmentStatus.ACTIVE)
            if status == AssignmentStatus.ACTIVE:
                if (user.pk, comparison.project_id) in holding:
                    row[index] = "none"
                    continue
                holding.add((user.pk, comparison.project_id))
            expires = {
                "expired": now - timedelta(minutes=1),
                "expiring_now": now,
            }.get(cell, now + timedelta(minutes=5))
            Assignment.objects.create(
                annotator=user,
                project=comparison.project,
                comparison=comparison,
                leased_at=now - timedelta(minutes=10),
                expires_at=expires,
                shown_left="a",
                status=status,
            )
    queue_engine.judgment_counts_refresh(comparison_ids=[c.pk for c in comparisons])
    closed = [
        c.pk
        for c, (_, _, is_closed) in zip(comparisons, drawn.comparisons, strict=True)
        if is_closed
    ]
    Comparison.objects.filter(pk__in=closed).update(status=ComparisonStatus.CLOSED)
    return users, projects, comparisons


def _expected(drawn: Queue, comparisons: list[Comparison], *, gold: bool = False) -> list[int]:
    """The rule, from the drawn data alone (``gold``: the gold rule)."""
    k = drawn.ks[drawn.project]
    claimable = []
    for comparison, (project, priority, closed), answer, row in zip(
        comparisons, drawn.comparisons, drawn.gold, drawn.cells, strict=True
    ):
        judged = sum(cell in JUDGED for cell in row)
        live = sum(cell in LIVE_AFTER for cell in row)
        mine = row[drawn.annotator]
        unseen = mine not in JUDGED and mine != "skipped"
        if project != drawn.project or closed or not unseen or bool(answer) != gold:
            continue
        if gold or (judged < k and judged + live < k):  # normal: open, not complete, a free slot
            claimable.append((-priority, comparison.pk))
    return [pk for _, pk in sorted(claimable)]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(drawn=queues())
def test_sql_candidates_equal_orm_claimable_by(db: Any, drawn: Queue) -> None:
    now = timezone.now()
    with transaction.atomic():
        users, projects, comparisons = _build(drawn, now)
        annotator, project = users[drawn.annotator], projects[drawn.project]

        # The one writer of judgment_count left it equal to the judgments, status to match.
        # A gold comparison never completes.
        for comparison, (_, _, closed), answer, row in zip(
            comparisons, drawn.comparisons, drawn.gold, drawn.cells, strict=True
        ):
            comparison.refresh_from_db()
            judged = sum(cell in JUDGED for cell in row)
            assert comparison.judgment_count == judged
            k = comparison.project.judgments_per_comparison
            assert comparison.status == (
                ComparisonStatus.CLOSED
                if closed
                else ComparisonStatus.COMPLETE
                if judged >= k and not answer
                else ComparisonStatus.OPEN
            )

        orm = list(
            Comparison.objects.filter(project=project)
            .claimable_by(annotator, now=now)
            .order_by("-priority", "id")
            .values_list("pk", flat=True)
        )
        sql = _sql_candidates(annotator, project, now)
        expected = _expected(drawn, comparisons)
        assert sql == orm == expected, drawn
        gold_orm = list(
            Comparison.objects.filter(project=project)
            .gold_claimable_by(annotator)
            .order_by("-priority", "id")
            .values_list("pk", flat=True)
        )
        gold_sql = _sql_gold_candidates(annotator, project)
        assert gold_sql == gold_orm == _expected(drawn, comparisons, gold=True), drawn
        assert not set(gold_sql) & set(sql)
        if connection.vendor == "postgresql":
            # With the row lock the claim takes (no other transaction holds one here).
            assert _sql_candidates(annotator, project, now, " FOR UPDATE OF c SKIP LOCKED") == sql
        transaction.set_rollback(True)
