"""A snapshot (and a queue re-ordering) can name more rows than SQLite binds parameters in one
statement: 32 766 by default, fewer here (lowered for the test), and the queries still run; so can
the comparisons a published dataset closes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from labeling import services
from labeling.models import Comparison, Judgment, Project
from labeling.preferences import snapshot_rows
from tests.factories import ComparisonFactory

LIMIT = 50  # parameters a statement may bind, lowered on this test's SQLite connection


@pytest.fixture
def few_parameters(db: Any) -> Iterator[None]:
    """SQLite's parameter limit lowered to ``LIMIT`` (a stock build's is 32 766); elsewhere
    (PostgreSQL) nothing changes and the same queries must give the same answers."""
    if connection.vendor != "sqlite":
        yield
        return
    connection.ensure_connection()
    raw = connection.connection
    before = raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, LIMIT)
    try:
        with (
            connection.cursor() as cursor,
            pytest.raises(Exception, match="too many SQL variables"),
        ):
            cursor.execute(
                f"SELECT 1 WHERE 1 IN ({', '.join(['%s'] * (LIMIT + 1))})", [1] * (LIMIT + 1)
            )
        yield
    finally:
        raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, before)


def _absent_ids(model: Any = Comparison) -> list[int]:
    """``3 * LIMIT`` ids of no row of ``model``: above every id there is (PostgreSQL's sequences
    are not reset between tests, so a fixed range is taken once the suite has made enough rows)."""
    start = (model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000
    return list(range(start, start + 3 * LIMIT))


def _judge(user: Any, comparison: Comparison, choice: str) -> Judgment:
    return Judgment.objects.create(
        annotator=user, comparison=comparison, choice=choice, strength=3, shown_left="a"
    )


def test_a_snapshot_of_more_judgments_than_sqlite_binds(
    project: Project, annotator: Any, few_parameters: None
) -> None:
    comparisons = [ComparisonFactory.create(project=project) for _ in range(3)]
    judged = [_judge(annotator, c, side) for c, side in zip(comparisons, "aba", strict=True)]
    # ids of judgments that do not exist (deleted since, or never): they select nothing
    ids = [j.pk for j in judged] + _absent_ids(Judgment)
    rows = snapshot_rows(ids)
    expected = [
        c.response_a.text if side == "a" else c.response_b.text
        for c, side in zip(comparisons, "aba", strict=True)
    ]
    assert [row["chosen"] for row in rows] == expected
    assert snapshot_rows(ids[1:]) == rows[1:]


def test_queue_priorities_for_more_comparisons_than_sqlite_binds(
    project: Project, few_parameters: None
) -> None:
    comparisons = [ComparisonFactory.create(project=project) for _ in range(2)]
    priorities = {c.pk: 7 + i for i, c in enumerate(comparisons)}
    priorities.update({pk: 1 for pk in _absent_ids()})  # none of them
    assert services.comparisons_prioritize(project=project, priorities=priorities) == 2
    assert sorted(
        Comparison.objects.filter(project=project).values_list("priority", flat=True)
    ) == [7, 8]


def test_closing_more_comparisons_than_sqlite_binds(
    project: Project, annotator: Any, few_parameters: None
) -> None:
    comparisons = [ComparisonFactory.create(project=project) for _ in range(3)]
    lease = services.assignment_claim_next(annotator=annotator, project=project)
    assert lease is not None
    other = next(c.pk for c in comparisons if c.pk != lease.comparison_id)
    closing = [other, lease.comparison_id]
    ids = closing + _absent_ids()  # and ids of no comparison
    assert services.comparisons_close(comparison_ids=ids) == 2
    statuses = dict(Comparison.objects.values_list("pk", "status"))
    assert sorted(pk for pk, status in statuses.items() if status == "closed") == sorted(closing)
    lease.refresh_from_db()
    assert lease.status == "released"  # its comparison closed under it
