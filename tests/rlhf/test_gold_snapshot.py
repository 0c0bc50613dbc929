"""A tuning round never trains on gold comparisons (``labeling.gold``): its snapshot and the export
of it leave them out, while the same comparisons, not gold, would have been in both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from labeling import services as labeling_services
from labeling.models import Comparison, Judgment, Project
from rlhf import selectors, services
from rlhf.models import RoundStatus
from tests.rlhf.test_snapshot_export import _admin_api, _exported, _trained_rows


def _pairs(rows: list[dict[str, Any]]) -> set[frozenset[str]]:
    return {frozenset((row["chosen"], row["rejected"])) for row in rows}


@pytest.mark.django_db
def test_a_round_trains_on_no_gold(
    judged_project: Project, fake_engine: Path, django_capture_on_commit_callbacks: Any
) -> None:
    snapshot = {"rounds": "all"}
    ids = selectors.snapshot_judgment_ids(judged_project, snapshot)
    before = _pairs(selectors.preference_rows(ids, snapshot))
    decided = [
        c
        for c in Comparison.objects.filter(judgments__isnull=False).distinct().order_by("id")
        if frozenset((c.response_a.text, c.response_b.text)) in before
    ][:3]
    assert len(decided) == 3
    for comparison in decided:
        labeling_services.comparison_gold_set(comparison=comparison, answer="a")
    gold_pairs = {frozenset((c.response_a.text, c.response_b.text)) for c in decided}

    with django_capture_on_commit_callbacks(execute=True):
        round_ = services.round_launch(
            project=judged_project, method="dpo", config={"snapshot": snapshot}
        )
    round_.refresh_from_db()
    assert round_.status == RoundStatus.SUCCEEDED, round_.error
    trained = _trained_rows(round_, fake_engine)
    assert trained and not _pairs(trained) & gold_pairs
    assert _pairs(trained) == before - gold_pairs
    exported, _ = _exported(_admin_api(), round_)
    assert not _pairs(exported) & gold_pairs
    # The gold judgments are still stored (they score the annotators).
    assert Judgment.objects.filter(comparison__in=decided).count() >= 3
