"""Exports: aggregation, policies, filters, split by prompt, dataset cards, containers, the
command, and the raw round trip (export → import → export is byte-identical).

Over 500 lines because it mirrors ``exports.py`` and ``export_files.py`` (one test module for the
export path, as the data flows)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from labeling.interchange.export_files import preferences_export
from labeling.interchange.exports import export_stream
from labeling.interchange.formats import SourceFile, rows_read
from labeling.interchange.preference_imports import preferences_import
from labeling.interchange.specs import ExportStats, export_spec_parse
from labeling.models import Comparison, Judgment, Project, Source
from labeling.services import LabelingError
from tests.factories import ComparisonFactory, PromptFactory, ResponseFactory
from tests.labeling.interchange.conftest import Judge


def export(project: Project, **params: Any) -> tuple[list[dict[str, Any]], ExportStats]:
    spec = export_spec_parse({key: str(value) for key, value in params.items()})
    stats = ExportStats()
    data = b"".join(export_stream(project=project, spec=spec, stats=stats))
    return [json.loads(line) for line in data.decode().splitlines()], stats


def voted(
    project: Project, judge: Judge, *votes: tuple[str, int | None], name: str = "x"
) -> Comparison:
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


@pytest.fixture
def empty_project(db: Any) -> Project:
    return Project.objects.create(name="agg")


def winner(rows: list[dict[str, Any]]) -> str | None:
    assert len(rows) <= 1
    return None if not rows else rows[0]["chosen"][0]


@pytest.mark.parametrize(
    ("votes", "expected"),
    [
        ([("a", 2), ("a", 1), ("b", 4)], "A"),  # plain majority
        ([("a", 1), ("b", 3)], None),  # shared top: undecided, whatever the strengths
        ([("a", 2), ("a", 2), ("b", 4), ("b", 1)], None),
        ([("a", 2), ("b", 2)], None),
        ([("tie", None), ("tie", None), ("a", 4)], None),  # majority says tie: dropped
        ([("a", 1), ("tie", None)], None),  # a side and a tie at equal count: undecided
        ([("b", 1), ("b", 1), ("tie", None)], "B"),
        ([("both_bad", None)], None),
    ],
)
def test_majority(empty_project: Project, judge: Judge, votes: Any, expected: str | None) -> None:
    voted(empty_project, judge, *votes)
    rows, stats = export(empty_project)
    assert winner(rows) == expected
    assert stats.comparisons == 1


def test_unanimous_only(empty_project: Project, judge: Judge) -> None:
    voted(empty_project, judge, ("a", 2), ("a", 3), name="agree")
    voted(empty_project, judge, ("a", 2), ("b", 3), ("a", 4), name="split")
    rows, stats = export(empty_project, aggregation="unanimous", margin=1, weight=1)
    assert [row["prompt"] for row in rows] == ["agree"]
    # strengths 2 and 3 on the margin scale: (1/3 + 2/3) / 2
    assert rows[0]["margin"] == 0.5 and rows[0]["weight"] == 1.0
    assert stats.dropped["not_unanimous"] == 1


def test_all_judgments_as_rows(empty_project: Project, judge: Judge) -> None:
    voted(empty_project, judge, ("a", 2), ("b", 3), ("tie", None), ("both_bad", None))
    rows, stats = export(empty_project, aggregation="all", weight=1)
    assert [(row["chosen"], row["weight"]) for row in rows] == [
        ("A for x", 0.25),
        ("B for x", 0.25),
    ]
    assert stats.dropped == {"tie": 1, "both_bad": 1}


def test_both_bad_only_and_separate_file(
    empty_project: Project, judge: Judge, tmp_path: Path
) -> None:
    voted(empty_project, judge, ("both_bad", None), name="bad")
    voted(empty_project, judge, ("a", 2), name="good")
    rows, _ = export(empty_project, both_bad="only")
    assert rows == [
        {
            "prompt_id": "bad",
            "prompt": [{"role": "user", "content": "bad"}],
            "response_a": "A for bad",
            "response_b": "B for bad",
        }
    ]
    spec = export_spec_parse({"both_bad": "separate"}, containers=("jsonl", "hf"))
    stats = preferences_export(project=empty_project, spec=spec, output=tmp_path / "out.jsonl")
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 1
    side = (tmp_path / "out.jsonl.both_bad.jsonl").read_text().splitlines()
    assert [json.loads(line)["prompt_id"] for line in side] == ["bad"]
    assert stats.both_bad_rows == 1


def test_split_policies_and_kto_completions(empty_project: Project, judge: Judge) -> None:
    voted(empty_project, judge, ("tie", None), name="tie")
    voted(empty_project, judge, ("both_bad", None), name="bad")
    voted(empty_project, judge, ("b", 4), name="won")
    rows, stats = export(empty_project, ties="split", both_bad="split", margin=1, weight=1)
    assert [(r["prompt"], r["chosen"], r["margin"], r["weight"]) for r in rows] == [
        ("tie", "A for tie", 0.0, 0.5),
        ("tie", "B for tie", 0.0, 0.5),
        ("bad", "A for bad", 0.0, 0.5),
        ("bad", "B for bad", 0.0, 0.5),
        ("won", "B for won", 1.0, 1.0),
    ]
    # KTO: a decided pair is one desirable and one undesirable completion; both-bad under
    # "split" two undesirable ones; a tie none.
    rows, stats = export(empty_project, format="kto", both_bad="split", weight=1)
    assert [(r["completion"], r["label"]) for r in rows] == [
        ("A for bad", False),
        ("B for bad", False),
        ("B for won", True),
        ("A for won", False),
    ]
    assert stats.dropped == {"tie": 1}
    _, same = export(empty_project, format="kto_conversational", both_bad="split", weight=1)
    assert same.preference_hash == stats.preference_hash  # one hash per data, any format


def test_the_preference_hash_is_the_same_in_every_paired_format(judged_project: Project) -> None:
    hashes = {
        export(judged_project, format=fmt, margin=1, weight=1)[1].preference_hash
        for fmt in ("trl", "trl_conversational", "hh")
    }
    assert len(hashes) == 1 and "" not in hashes


def test_round_filter_takes_several_rounds_and_zero(empty_project: Project, judge: Judge) -> None:
    for batch in ("import", "round-1", "round-2:on-policy", "round-3:vs-champion"):
        comparison = voted(empty_project, judge, ("a", 2), name=batch)
        Comparison.objects.filter(pk=comparison.pk).update(batch=batch)
    rows, _ = export(empty_project, round="0,2")
    assert [row["prompt"] for row in rows] == ["import", "round-2:on-policy"]
    with pytest.raises(LabelingError, match="round numbers") as error:
        export(empty_project, round="1,x")
    assert error.value.field == "round"


def test_min_agreement_and_agreement_figures(empty_project: Project, judge: Judge) -> None:
    voted(empty_project, judge, ("a", 2), ("a", 2), ("b", 2), name="two-thirds")
    voted(empty_project, judge, ("a", 2), ("a", 2), name="all")
    rows, stats = export(empty_project, min_agreement="0.9")
    assert [row["prompt"] for row in rows] == ["all"]
    assert stats.dropped["below_min_agreement"] == 1
    assert stats.multi_judged == 2 and stats.unanimous_multi == 1
    assert stats.pairwise_agreement == pytest.approx((1 + 1) / (3 + 1))


def test_filters_round_annotators_dates_flags(judged_project: Project) -> None:
    rows, _ = export(judged_project, round=1, format="raw")
    assert {row["prompt_id"] for row in rows} == {f"q{index}" for index in range(6)}
    rows, _ = export(judged_project, round="round-2", format="raw")
    assert {row["batch"] for row in rows} == {"round-2:vs-champion"}
    rows, _ = export(judged_project, annotators="bob", format="raw")
    assert {row["annotator"] for row in rows} == {"bob"} and len(rows) == 6
    rows, _ = export(judged_project, exclude_flags="other", format="raw")
    assert "Question 4?" not in {row["prompt"][-1]["content"] for row in rows}
    rows, _ = export(judged_project, since="2000-01-01", until="2001-01-01")
    assert rows == []
    rows, _ = export(judged_project, source="imported")
    assert rows == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"format": "alpaca"}, "format"),
        ({"aggregation": "mean"}, "aggregation"),
        ({"color": "red"}, "color"),
        ({"exclude_flags": "boring"}, "exclude_flags"),
        ({"since": "yesterday"}, "since"),
        ({"min_agreement": "2"}, "min_agreement"),
        ({"container": "hf"}, "container"),
    ],
)
def test_bad_parameters_name_allowed_values(params: dict[str, str], field: str) -> None:
    with pytest.raises(LabelingError) as caught:
        export_spec_parse(params)
    assert caught.value.field == field and caught.value.status == 400
    if field in ("format", "aggregation", "color", "exclude_flags", "container"):
        assert "allowed:" in caught.value.message


def test_split_by_prompt_never_leaks(db: Any, judge: Judge) -> None:
    project = Project.objects.create(name="leak")
    for index in range(60):
        prompt = PromptFactory.create(project=project, external_id=f"p{index}")
        responses = [ResponseFactory.create(prompt=prompt, text=f"r{index}-{n}") for n in range(3)]
        for first, second in ((0, 1), (0, 2), (1, 2)):
            comparison = ComparisonFactory.create(
                project=project,
                prompt=prompt,
                response_a=responses[first],
                response_b=responses[second],
            )
            judge(comparison, "alice", "a", 2)
    train, _ = export(project, split="train", test_size="0.3", seed=7)
    test, stats = export(project, split="test", test_size="0.3", seed=7)
    assert stats.rows_by_split["test"] == len(test) and not stats.rows_by_split["train"]
    train_prompts, test_prompts = {r["prompt"] for r in train}, {r["prompt"] for r in test}
    assert train_prompts and test_prompts and not train_prompts & test_prompts
    assert len(train) + len(test) == 180
    again, _ = export(project, split="test", test_size="0.3", seed=7)
    assert again == test
    other, _ = export(project, split="test", test_size="0.3", seed=8)
    assert {r["prompt"] for r in other} != test_prompts


def test_dataset_card_sidecar(judged_project: Project, tmp_path: Path) -> None:
    output = tmp_path / "prefs.jsonl"
    call_command(
        "export_preferences",
        judged_project.name,
        "--format",
        "trl",
        "--output",
        str(output),
        "--round",
        "1",
        "--margin",
    )
    card = (tmp_path / "prefs.jsonl.card.md").read_text()
    import hashlib

    digest = hashlib.sha256(output.read_bytes()).hexdigest()
    assert f"`{digest}`" in card
    for expected in (
        "Helpful chat / v1",
        "Format: `trl`",
        "Method: `majority`",
        "- round: 1",
        "Annotators: 2",
        "| policy | ckpt-7 |",
        "Pairwise agreement",
        "Rows: 5",  # comparison 2 is a 1-1 split: undecided
        "undecided: 1",
    ):
        assert expected in card, expected


def test_containers_carry_the_same_rows(judged_project: Project) -> None:
    import csv

    import pyarrow.parquet as pq

    hashes = set()
    decoded = {}
    for container in ("jsonl", "csv", "parquet"):
        spec = export_spec_parse({"format": "kto", "container": container})
        stats = ExportStats()
        data = b"".join(export_stream(project=judged_project, spec=spec, stats=stats))
        hashes.add(stats.content_hash)
        if container == "jsonl":
            decoded[container] = [json.loads(line) for line in data.splitlines()]
        elif container == "csv":
            decoded[container] = [
                {**row, "label": row["label"] == "True"}
                for row in csv.DictReader(io.StringIO(data.decode()))
            ]
        else:
            decoded[container] = pq.read_table(io.BytesIO(data)).to_pylist()
    assert len(hashes) == 1
    assert decoded["jsonl"] == decoded["csv"] == decoded["parquet"]


def test_raw_round_trip_is_byte_identical(judged_project: Project, tmp_path: Path) -> None:
    first = tmp_path / "first.jsonl"
    call_command(
        "export_preferences", str(judged_project.pk), "--format", "raw", "--output", str(first)
    )
    copy = Project.objects.create(name="copy")
    call_command("import_preferences", "copy", str(first), "--format", "raw")
    second = tmp_path / "second.jsonl"
    call_command("export_preferences", "copy", "--format", "raw", "--output", str(second))
    assert first.read_bytes() == second.read_bytes()
    imported = Judgment.objects.filter(comparison__project=copy)
    assert imported.count() == 18 and set(imported.values_list("source", flat=True)) == {
        Source.IMPORTED
    }
    assert set(imported.values_list("annotator__username", flat=True)) == {"alice", "bob"}
    assert Comparison.objects.filter(project=copy, judgment_count=2, status="complete").count() == 6
    # Importing the same file again doubles nothing.
    result = preferences_import(
        project=copy, rows=rows_read(SourceFile.from_path(str(first))), dataset_format="raw"
    )
    assert result.judgments_created == 0 and result.duplicates == 18


@pytest.mark.parametrize("container", ["csv", "parquet"])
def test_raw_round_trip_through_csv_and_parquet(
    judged_project: Project, tmp_path: Path, container: str
) -> None:
    first = tmp_path / f"first.{container}"
    call_command(
        "export_preferences", str(judged_project.pk), "--format", "raw", "--output", str(first)
    )
    Project.objects.create(name="copy")
    call_command("import_preferences", "copy", str(first), "--format", "raw")
    second = tmp_path / f"second.{container}"
    call_command("export_preferences", "copy", "--format", "raw", "--output", str(second))
    assert first.read_bytes() == second.read_bytes()


def test_trl_and_hh_imports(db: Any, tmp_path: Path) -> None:
    project = Project.objects.create(name="imported")
    trl = tmp_path / "trl.jsonl"
    trl.write_text(
        json.dumps({"prompt": "Hi?", "chosen": "Hello!", "rejected": "Go away.", "margin": 3})
        + "\n"
        + json.dumps({"prompt": "Hi?", "chosen": "Hey.", "rejected": "Go away."})
        + "\n"
    )
    call_command("import_preferences", "imported", str(trl), "--format", "trl")
    hh = tmp_path / "hh.jsonl"
    hh.write_text(
        json.dumps(
            {
                "chosen": "\n\nHuman: Hi?\n\nAssistant: Hello!\n\nHuman: Joke?\n\nAssistant: Knock knock.",
                "rejected": "\n\nHuman: Hi?\n\nAssistant: Hello!\n\nHuman: Joke?\n\nAssistant: No.",
            }
        )
        + "\n"
    )
    call_command("import_preferences", "imported", str(hh), "--format", "hh")
    judgments = Judgment.objects.filter(comparison__project=project).select_related("annotator")
    assert sorted(j.annotator.username for j in judgments) == [
        "import-hh",
        "import-trl",
        "import-trl",
    ]
    assert {j.source for j in judgments} == {Source.IMPORTED}
    assert sorted(j.strength or 0 for j in judgments) == [0, 0, 3]
    rows, _ = export(project, format="trl_conversational")
    joke = next(row for row in rows if row["chosen"][0]["content"] == "Knock knock.")
    assert [m["role"] for m in joke["prompt"]] == ["user", "assistant", "user"]
    hh_rows, _ = export(project, format="hh")
    assert hh_rows[-1]["chosen"].startswith("\n\nHuman: Hi?\n\nAssistant: Hello!\n\nHuman: Joke?")


def test_trl_implicit_prompt_rows(db: Any) -> None:
    project = Project.objects.create(name="implicit")
    question = [{"role": "user", "content": "Capital of France?"}]
    row = {
        "chosen": [*question, {"role": "assistant", "content": "Paris."}],
        "rejected": [*question, {"role": "assistant", "content": "Lyon."}],
    }
    result = preferences_import(
        project=project,
        rows=iter([(1, row)]),
        dataset_format="trl_conversational",
    )
    assert result.judgments_created == 1
    rows, _ = export(project, format="trl_conversational")
    assert rows == [
        {
            "prompt": question,
            "chosen": [{"role": "assistant", "content": "Paris."}],
            "rejected": [{"role": "assistant", "content": "Lyon."}],
        }
    ]


def test_preference_import_errors_are_atomic(db: Any, tmp_path: Path) -> None:
    project = Project.objects.create(name="atomic")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"prompt": "ok", "chosen": "x", "rejected": "y"})
        + "\n"
        + json.dumps({"prompt": "ok", "chosen": "x"})
        + "\n"
        + json.dumps(
            {
                "prompt": [{"role": "user", "content": "q"}],
                "chosen": [{"role": "user", "content": "x"}],
                "rejected": "y",
            }
        )
        + "\n"
    )
    with pytest.raises(CommandError) as caught:
        call_command("import_preferences", "atomic", str(bad), "--format", "trl")
    assert 'line 2, field "rejected": is required' in str(caught.value)
    assert 'line 3, field "chosen": must be a string or a list with one assistant message' in str(
        caught.value
    )
    assert not Comparison.objects.filter(project=project).exists()
    hh = tmp_path / "hh.jsonl"
    hh.write_text(
        json.dumps({"chosen": "no turns", "rejected": "\n\nHuman: a\n\nAssistant: b"}) + "\n"
    )
    with pytest.raises(CommandError, match='line 1, field "chosen"'):
        call_command("import_preferences", "atomic", str(hh), "--format", "hh")


def test_export_command_errors(judged_project: Project, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="allowed"):
        call_command(
            "export_preferences",
            str(judged_project.pk),
            "--output",
            str(tmp_path / "x.jsonl"),
            "--exclude-flags",
            "nope",
        )


def test_preference_import_refuses_a_prompt_id_with_other_messages(
    judged_project: Project, tmp_path: Path
) -> None:
    row = {
        "prompt_id": "q1",
        "prompt": [{"role": "user", "content": "Something else?"}],
        "response_a": "x",
        "response_b": "y",
        "annotator": "carol",
        "choice": "a",
        "strength": 2,
    }
    path = tmp_path / "raw.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(CommandError, match="line 1, field \"prompt\": prompt 'q1' already has"):
        call_command("import_preferences", str(judged_project.pk), str(path), "--format", "raw")


def test_reversed_pair_maps_the_choice(judged_project: Project, tmp_path: Path) -> None:
    comparison = Comparison.objects.filter(project=judged_project).select_related(
        "prompt", "response_a", "response_b"
    )[1]
    row = {
        "prompt_id": comparison.prompt.external_id,
        "prompt": comparison.prompt.messages,
        "response_a": comparison.response_b.text,
        "response_b": comparison.response_a.text,
        "annotator": "carol",
        "choice": "a",
        "strength": 4,
        "shown_left": "b",
    }
    path = tmp_path / "raw.jsonl"
    path.write_text(json.dumps(row) + "\n")
    call_command("import_preferences", str(judged_project.pk), str(path), "--format", "raw")
    judgment = Judgment.objects.get(annotator__username="carol")
    assert judgment.comparison_id == comparison.pk
    assert (judgment.choice, judgment.shown_left, judgment.shown_choice) == ("b", "a", "right")


def test_hf_directory_with_both_bad_side_file(
    empty_project: Project, judge: Judge, tmp_path: Path
) -> None:
    from datasets import load_from_disk

    voted(empty_project, judge, ("both_bad", None), name="bad")
    for index in range(8):
        voted(empty_project, judge, ("b", 3), name=f"good{index}")
    output = tmp_path / "dataset"
    call_command(
        "export_preferences",
        str(empty_project.pk),
        "--format",
        "kto",
        "--output",
        str(output),
        "--both-bad",
        "separate",
        "--test-size",
        "0.5",
        "--weight",
    )
    dataset = load_from_disk(str(output))
    assert len(dataset["train"]) + len(dataset["test"]) == 16
    assert dataset["train"].column_names == ["prompt", "completion", "label", "weight"]
    assert [json.loads(line)["prompt_id"] for line in (output / "both_bad.jsonl").open()] == ["bad"]
    card = (output / "README.md").read_text()
    assert "Both-bad rows set aside: 1" in card and "Files: train, test, both_bad.jsonl" in card
    as_file = tmp_path / "same.jsonl"
    call_command(
        "export_preferences",
        str(empty_project.pk),
        "--format",
        "kto",
        "--output",
        str(as_file),
        "--weight",
    )
    import hashlib

    digest = hashlib.sha256(as_file.read_bytes()).hexdigest()
    assert f"`{digest}`" in card  # the same rows, the same content hash, whatever the container


def test_csv_carries_message_lists_as_json(judged_project: Project) -> None:
    import csv

    spec = export_spec_parse({"format": "trl_conversational", "container": "csv"})
    data = b"".join(export_stream(project=judged_project, spec=spec, stats=ExportStats()))
    first = next(csv.DictReader(io.StringIO(data.decode())))
    assert json.loads(first["chosen"])[0]["role"] == "assistant"
    assert json.loads(first["prompt"])[-1]["role"] == "user"
