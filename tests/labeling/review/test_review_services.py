"""Review services: judgment edits with their audit trail, comments, adjudication beside the
votes, and what an adjudication does to exports and snapshots (``adjudicated=prefer``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from labeling import services
from labeling.interchange.exports import export_stream
from labeling.interchange.specs import ExportStats, export_spec_parse
from labeling.models import (
    Adjudication,
    Comparison,
    ComparisonStatus,
    Judgment,
    JudgmentRevision,
    Project,
    Source,
)
from labeling.preferences import snapshot_rows
from labeling.services import Conflict, LabelingError
from tests.factories import ComparisonFactory, PromptFactory, ResponseFactory, UserFactory
from tests.labeling.interchange.conftest import Judge


def _voted(project: Project, judge: Judge, *votes: tuple[str, int | None], name: str) -> Any:
    prompt = PromptFactory.create(
        project=project, external_id=name, messages=[{"role": "user", "content": name}]
    )
    comparison: Any = ComparisonFactory.create(
        project=project,
        prompt=prompt,
        response_a=ResponseFactory.create(prompt=prompt, text=f"A for {name}"),
        response_b=ResponseFactory.create(prompt=prompt, text=f"B for {name}"),
    )
    for index, (choice, strength) in enumerate(votes):
        judge(comparison, f"voter{index}", choice, strength)
    return comparison


def _export(project: Project, **params: Any) -> tuple[list[dict[str, Any]], ExportStats]:
    spec = export_spec_parse({key: str(value) for key, value in params.items()})
    stats = ExportStats()
    data = b"".join(export_stream(project=project, spec=spec, stats=stats))
    return [json.loads(line) for line in data.decode().splitlines()], stats


@pytest.fixture
def empty_project(db: Any) -> Project:
    return Project.objects.create(name="review")


# --- judgment edits --------------------------------------------------------------------------


def test_an_edit_keeps_the_previous_values(empty_project: Project, judge: Judge) -> None:
    comparison = _voted(empty_project, judge, ("a", 2), name="q")
    judgment = Judgment.objects.get(comparison=comparison)
    edited = services.judgment_edit(
        annotator=judgment.annotator,
        judgment=judgment,
        choice="b",
        strength=4,
        rationale="on second thought",
        flags=["other"],
    )
    stored = Judgment.objects.get(pk=judgment.pk)
    assert (stored.choice, stored.strength, stored.rationale, stored.flags) == (
        "b",
        4,
        "on second thought",
        ["other"],
    )
    assert edited.choice == "b"
    [revision] = JudgmentRevision.objects.filter(judgment=judgment)
    assert (revision.choice, revision.strength, revision.rationale, revision.flags) == (
        "a",
        2,
        "",
        [],
    )
    assert revision.edited_by == judgment.annotator
    # A second edit adds a second revision; an edit that changes nothing adds none.
    services.judgment_edit(
        annotator=judgment.annotator, judgment=stored, choice="tie", strength=None
    )
    services.judgment_edit(
        annotator=judgment.annotator, judgment=stored, choice="tie", strength=None
    )
    assert list(
        JudgmentRevision.objects.filter(judgment=judgment).values_list("choice", flat=True)
    ) == ["b", "a"]
    assert Comparison.objects.get(pk=comparison.pk).judgment_count == 1


def test_only_the_annotator_edits_and_only_while_open(empty_project: Project, judge: Judge) -> None:
    comparison = _voted(empty_project, judge, ("a", 2), ("b", 2), name="q")
    mine, theirs = Judgment.objects.filter(comparison=comparison).order_by("id")
    with pytest.raises(services.Forbidden):
        services.judgment_edit(annotator=mine.annotator, judgment=theirs, choice="a", strength=1)
    with pytest.raises(LabelingError) as bad:
        services.judgment_edit(annotator=mine.annotator, judgment=mine, choice="a", strength=None)
    assert bad.value.field == "strength"
    Comparison.objects.filter(pk=comparison.pk).update(status=ComparisonStatus.COMPLETE)
    services.judgment_edit(annotator=mine.annotator, judgment=mine, choice="b", strength=1)
    services.comparisons_close(comparison_ids=[comparison.pk])
    with pytest.raises(Conflict, match="closed"):
        services.judgment_edit(annotator=mine.annotator, judgment=mine, choice="a", strength=1)
    assert Judgment.objects.get(pk=mine.pk).choice == "b"
    assert JudgmentRevision.objects.filter(judgment=mine).count() == 1


def test_no_edit_after_adjudication_nor_of_imported_judgments(
    empty_project: Project, judge: Judge
) -> None:
    comparison = _voted(empty_project, judge, ("a", 2), name="q")
    judgment = Judgment.objects.get(comparison=comparison)
    reviewer = UserFactory.create(username="rev")
    services.comparison_adjudicate(
        comparison=comparison, adjudicator=reviewer, choice="b", strength=3
    )
    with pytest.raises(Conflict, match="adjudicated"):
        services.judgment_edit(
            annotator=judgment.annotator, judgment=judgment, choice="b", strength=1
        )
    other = _voted(empty_project, judge, ("a", 2), name="r")
    imported = Judgment.objects.get(comparison=other)
    Judgment.objects.filter(pk=imported.pk).update(source=Source.IMPORTED)
    with pytest.raises(Conflict, match="imported"):
        services.judgment_edit(
            annotator=imported.annotator, judgment=imported, choice="b", strength=1
        )
    assert not JudgmentRevision.objects.exists()


# --- comments and adjudication ----------------------------------------------------------------


def test_comments_need_text(empty_project: Project, judge: Judge) -> None:
    comparison = _voted(empty_project, judge, ("a", 2), name="q")
    author = UserFactory.create(username="rev")
    with pytest.raises(LabelingError) as empty:
        services.comparison_comment_add(comparison=comparison, author=author, text="   ")
    assert empty.value.field == "text"
    comment = services.comparison_comment_add(comparison=comparison, author=author, text=" ok ")
    assert comment.text == "ok"
    assert list(comparison.comments.values_list("text", flat=True)) == ["ok"]


def test_adjudication_sits_beside_the_votes(empty_project: Project, judge: Judge) -> None:
    comparison = _voted(empty_project, judge, ("a", 2), ("b", 3), name="q")
    votes_before = list(Judgment.objects.values_list("pk", "choice", "strength").order_by("pk"))
    reviewer = UserFactory.create(username="rev")
    first = services.comparison_adjudicate(
        comparison=comparison, adjudicator=reviewer, choice="a", strength=3, note=" A is right "
    )
    assert (first.choice, first.strength, first.note, first.adjudicator) == (
        "a",
        3,
        "A is right",
        reviewer,
    )
    again = services.comparison_adjudicate(
        comparison=comparison, adjudicator=reviewer, choice="tie"
    )
    assert again.pk == first.pk and again.choice == "tie" and again.strength is None
    assert again.created_at == first.created_at and again.updated_at >= first.updated_at
    assert (
        list(Judgment.objects.values_list("pk", "choice", "strength").order_by("pk"))
        == votes_before
    )
    assert services.comparison_adjudication_clear(comparison=comparison) == 1
    assert not Adjudication.objects.exists()


def test_adjudication_refusals_change_nothing(empty_project: Project, judge: Judge) -> None:
    reviewer = UserFactory.create(username="rev")
    unjudged = ComparisonFactory.create(project=empty_project)
    with pytest.raises(Conflict, match="nobody"):
        services.comparison_adjudicate(
            comparison=unjudged, adjudicator=reviewer, choice="a", strength=1
        )
    comparison = _voted(empty_project, judge, ("a", 2), name="q")
    with pytest.raises(LabelingError) as bad:
        services.comparison_adjudicate(
            comparison=comparison, adjudicator=reviewer, choice="tie", strength=2
        )
    assert bad.value.field == "strength"
    with pytest.raises(LabelingError):
        services.comparison_adjudicate(comparison=comparison, adjudicator=reviewer, choice="left")
    Comparison.objects.filter(pk=comparison.pk).update(gold_answer="a")
    with pytest.raises(Conflict, match="gold"):
        services.comparison_adjudicate(
            comparison=comparison, adjudicator=reviewer, choice="b", strength=1
        )
    assert not Adjudication.objects.exists()


# --- exports and snapshots --------------------------------------------------------------------


def test_export_prefers_the_adjudication_only_when_asked(
    empty_project: Project, judge: Judge
) -> None:
    split = _voted(empty_project, judge, ("a", 2), ("b", 3), name="split")  # undecided
    overruled = _voted(empty_project, judge, ("a", 4), ("a", 4), ("b", 1), name="overruled")
    _voted(empty_project, judge, ("b", 2), name="plain")
    reviewer = UserFactory.create(username="rev")
    services.comparison_adjudicate(comparison=split, adjudicator=reviewer, choice="b", strength=4)
    services.comparison_adjudicate(comparison=overruled, adjudicator=reviewer, choice="both_bad")

    default_rows, default_stats = _export(empty_project, margin=1, weight=1)
    assert [(r["prompt"], r["chosen"]) for r in default_rows] == [
        ("overruled", "A for overruled"),
        ("plain", "B for plain"),
    ]
    assert default_stats.adjudicated == 0
    assert _export(empty_project, margin=1, weight=1, adjudicated="ignore")[0] == default_rows

    rows, stats = _export(empty_project, margin=1, weight=1, adjudicated="prefer")
    assert [(r["prompt"], r["chosen"], r["margin"], r["weight"]) for r in rows] == [
        ("split", "B for split", 1.0, 1.0),  # the reviewer decided the split
        ("plain", "B for plain", 0.3333, 1.0),  # no adjudication: its votes, as before
    ]  # "overruled" was adjudicated both bad: dropped under both_bad=drop
    assert stats.adjudicated == 2
    # Whatever the aggregation: one row for an adjudicated comparison.
    every, _ = _export(empty_project, aggregation="all", adjudicated="prefer", both_bad="split")
    assert sum(r["prompt"] == "overruled" for r in every) == 2  # both-bad split: both orders
    assert sum(r["prompt"] == "split" for r in every) == 1
    # The round snapshot's rows follow the same rule.
    ids = list(Judgment.objects.values_list("pk", flat=True))
    snap = snapshot_rows(ids, adjudicated="prefer")
    assert [(r["prompt"][0]["content"], r["chosen"]) for r in snap] == [
        ("split", "B for split"),
        ("plain", "B for plain"),
    ]
    assert [r["chosen"] for r in snapshot_rows(ids)] == ["A for overruled", "B for plain"]


def test_adjudicated_parameter_is_checked(db: Any) -> None:
    with pytest.raises(LabelingError) as unknown:
        export_spec_parse({"adjudicated": "always"})
    assert unknown.value.field == "adjudicated"
    with pytest.raises(LabelingError, match="raw"):
        export_spec_parse({"format": "raw", "adjudicated": "prefer"})
    assert export_spec_parse({"adjudicated": "prefer"}).filters() == {"adjudicated": "prefer"}


def test_the_export_command_takes_adjudicated(
    empty_project: Project, judge: Judge, tmp_path: Any
) -> None:
    from django.core.management import call_command

    split = _voted(empty_project, judge, ("a", 2), ("b", 3), name="split")
    reviewer = UserFactory.create(username="rev")
    services.comparison_adjudicate(comparison=split, adjudicator=reviewer, choice="a", strength=2)
    for option, expected in (("ignore", []), ("prefer", ["A for split"])):
        output = tmp_path / f"{option}.jsonl"
        call_command(
            "export_preferences", str(empty_project.pk), "--output", str(output),
            "--adjudicated", option,
        )  # fmt: skip
        rows = [json.loads(line) for line in output.read_text().splitlines()]
        assert [row["chosen"] for row in rows] == expected


def test_a_judgment_from_a_ranking_is_not_edited_alone(
    empty_project: Project, judge: Judge
) -> None:
    from labeling.models import Ranking, RankingSet

    comparison = _voted(empty_project, judge, ("a", 2), name="ranked")
    judgment = Judgment.objects.get(comparison=comparison)
    ranking_set = RankingSet.objects.create(project=empty_project, prompt=comparison.prompt, size=3)
    ranking = Ranking.objects.create(
        annotator=judgment.annotator, ranking_set=ranking_set, order=[[1], [2], [3]]
    )
    Judgment.objects.filter(pk=judgment.pk).update(ranking=ranking)
    with pytest.raises(Conflict, match="ranking"):
        services.judgment_edit(
            annotator=judgment.annotator, judgment=judgment, choice="b", strength=1
        )
    assert not JudgmentRevision.objects.exists()
