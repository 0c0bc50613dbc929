"""Imports of prompts and responses: formats, validation (line and field), atomicity,
duplicates, size limits, pairing, and the commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from labeling.interchange.formats import ImportRejected, SourceFile, items_read, rows_read
from labeling.interchange.imports import prompts_import, responses_import
from labeling.models import Comparison, Project, Prompt, Response
from tests.factories import PromptFactory, ResponseFactory


def jsonl(*rows: Any) -> SourceFile:
    data = "\n".join(json.dumps(row) for row in rows).encode()
    return SourceFile.from_bytes(data, name="rows.jsonl")


def test_prompts_from_jsonl_strings_and_messages(project: Project) -> None:
    source = jsonl(
        "What is 2 + 2?",
        {"id": "p1", "prompt": "Name a color.", "metadata": {"topic": "art"}, "split": "test"},
        {
            "id": "p2",
            "prompt": [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": "Bye"},
            ],
        },
    )
    result = prompts_import(project=project, rows=rows_read(source))
    assert result.prompts_created == 3 and result.duplicates == 0
    by_id = {p.external_id: p for p in Prompt.objects.filter(project=project)}
    assert by_id[""].messages == [{"role": "user", "content": "What is 2 + 2?"}]
    assert by_id["p1"].metadata == {"topic": "art"} and by_id["p1"].split == "test"
    assert by_id["p2"].last_user_message == "Bye"


def test_prompts_from_csv(project: Project) -> None:
    data = (
        b"id,prompt,metadata,split\n"
        b'c1,"Hello, world",{"a": 1},train\n'
        b'c2,"[{""role"": ""user"", ""content"": ""Hi""}]",,\n'
    )
    result = prompts_import(
        project=project, rows=rows_read(SourceFile.from_bytes(data, name="p.csv"))
    )
    assert result.prompts_created == 2
    assert Prompt.objects.get(external_id="c1").metadata == {"a": 1}
    assert Prompt.objects.get(external_id="c2").messages == [{"role": "user", "content": "Hi"}]


def test_csv_text_that_looks_like_json_stays_text(project: Project) -> None:
    data = b'id,prompt\nt1,"[Draft] write a haiku"\nt2,{curly} braces\n'
    prompts_import(project=project, rows=rows_read(SourceFile.from_bytes(data, name="p.csv")))
    assert Prompt.objects.get(external_id="t1").last_user_message == "[Draft] write a haiku"
    assert Prompt.objects.get(external_id="t2").last_user_message == "{curly} braces"


def test_bad_line_names_line_and_field_and_imports_nothing(project: Project) -> None:
    source = jsonl({"id": "ok", "prompt": "fine"}, {"id": "x"}, {"id": "y", "prompt": 7})
    with pytest.raises(ImportRejected) as caught:
        prompts_import(project=project, rows=rows_read(source))
    messages = [str(error) for error in caught.value.errors]
    assert messages == [
        'line 2, field "prompt": is required',
        'line 3, field "prompt": must be a string or a list of messages',
    ]
    assert "nothing was imported" in caught.value.message
    assert not Prompt.objects.filter(project=project).exists()


@pytest.mark.parametrize(
    ("messages", "field", "text"),
    [
        (
            [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
            "prompt",
            "the last message must come from the user",
        ),
        ([{"role": "robot", "content": "a"}], "prompt[0].role", "must be one of"),
        ([{"role": "user", "content": ""}], "prompt[0].content", "non-empty string"),
        ([], "prompt", "must be a string or a list of messages"),
    ],
)
def test_message_list_rules(project: Project, messages: Any, field: str, text: str) -> None:
    with pytest.raises(ImportRejected) as caught:
        prompts_import(project=project, rows=rows_read(jsonl({"prompt": messages})))
    error = caught.value.errors[0]
    assert (error.line, error.field) == (1, field) and text in error.message


def test_invalid_json_line_is_reported(project: Project) -> None:
    source = SourceFile.from_bytes(b'"fine"\n{"prompt": \n', name="x.jsonl")
    with pytest.raises(ImportRejected) as caught:
        prompts_import(project=project, rows=rows_read(source))
    assert str(caught.value.errors[0]).startswith("line 2: not valid JSON")


def test_duplicate_ids_are_skipped_and_reported(project: Project) -> None:
    PromptFactory.create(project=project, external_id="old")
    source = jsonl(
        {"id": "old", "prompt": "a"}, {"id": "new", "prompt": "b"}, {"id": "new", "prompt": "c"}
    )
    result = prompts_import(project=project, rows=rows_read(source))
    assert result.prompts_created == 1
    assert result.skipped_duplicates == ["old", "new"]
    assert "skipped duplicates (2): [old, new]" in result.summary()


def test_size_limits(project: Project, settings: Any) -> None:
    settings.PAIRWISE_MAX_UPLOAD_MB = 1
    big = SourceFile.from_bytes(b'"x"\n' * 300_000, name="big.jsonl")
    with pytest.raises(ImportRejected) as caught:
        prompts_import(project=project, rows=rows_read(big))
    assert caught.value.status == 413 and "largest accepted is 1 MB" in caught.value.message
    settings.PAIRWISE_MAX_IMPORT_ROWS = 2
    with pytest.raises(ImportRejected) as caught:
        prompts_import(project=project, rows=rows_read(jsonl("a", "b", "c")))
    assert "too many rows: at most 2" in caught.value.message
    settings.PAIRWISE_MAX_TEXT_CHARS = 10
    with pytest.raises(ImportRejected) as caught:
        prompts_import(project=project, rows=rows_read(jsonl("a" * 11)))
    assert 'line 1, field "prompt": is 11 characters long' in caught.value.message


def test_json_list_items_are_numbered_as_items(project: Project) -> None:
    with pytest.raises(ImportRejected) as caught:
        prompts_import(project=project, rows=items_read(["fine", {"prompt": None}]), unit="item")
    assert str(caught.value.errors[0]) == 'item 2, field "prompt": is required'


def test_responses_grouped_become_all_pairs(project: Project) -> None:
    PromptFactory.create(project=project, external_id="p1")
    PromptFactory.create(project=project, external_id="p2")
    source = jsonl(
        {
            "prompt_id": "p1",
            "responses": [
                {"text": "one", "model": "m1", "params": {"temperature": 0.7}, "seed": 1},
                {"text": "two", "model": "m2"},
                {"text": "three", "model": "m3"},
            ],
        },
        {"prompt_id": "p2", "text": "solo", "model": "m1"},
        {"prompt_id": "p2", "text": "duo", "model": "m2"},
    )
    result = responses_import(project=project, rows=rows_read(source))
    assert (result.responses_created, result.comparisons_created) == (5, 4)
    one = Response.objects.get(text="one")
    assert (
        one.generation_params == {"temperature": 0.7} and one.seed == 1 and one.model_name == "m1"
    )
    assert set(Comparison.objects.filter(project=project).values_list("batch", flat=True)) == {
        "import"
    }


def test_responses_max_pairs_and_duplicates(project: Project) -> None:
    prompt = PromptFactory.create(project=project, external_id="p1")
    ResponseFactory.create(prompt=prompt, text="existing")
    rows = [{"prompt_id": "p1", "text": f"answer {i}"} for i in range(5)]
    rows.append({"prompt_id": "p1", "text": "existing"})
    rows.append({"prompt_id": "p1", "text": "answer 0"})
    result = responses_import(project=project, rows=rows_read(jsonl(*rows)), max_pairs=3)
    assert result.responses_created == 5 and result.duplicates == 2
    assert result.comparisons_created == 3
    project.max_pairs_per_prompt = 2
    project.save()
    PromptFactory.create(project=project, external_id="p2")
    again = responses_import(
        project=project,
        rows=rows_read(jsonl({"prompt_id": "p2", "responses": ["x", "y", "z", "w"]})),
    )
    assert again.comparisons_created == 2


def test_responses_from_csv_and_unknown_prompt(project: Project) -> None:
    PromptFactory.create(project=project, external_id="p1")
    data = b"prompt_id,text,model,params,seed\np1,alpha,m,{},3\np1,beta,m,,\nnope,gamma,m,,\n"
    with pytest.raises(ImportRejected) as caught:
        responses_import(project=project, rows=rows_read(SourceFile.from_bytes(data, name="r.csv")))
    assert (
        str(caught.value.errors[0])
        == "line 4, field \"prompt_id\": no prompt with id 'nope' in this project"
    )
    assert not Response.objects.exists()
    ok = data.rsplit(b"nope", 1)[0]
    result = responses_import(
        project=project, rows=rows_read(SourceFile.from_bytes(ok, name="r.csv"))
    )
    assert (result.responses_created, result.comparisons_created) == (2, 1)


def test_grouped_response_errors_name_the_item(project: Project) -> None:
    PromptFactory.create(project=project, external_id="p1")
    source = jsonl({"prompt_id": "p1", "responses": [{"text": "a"}, {"text": "b", "seed": "x"}]})
    with pytest.raises(ImportRejected) as caught:
        responses_import(project=project, rows=rows_read(source))
    assert str(caught.value.errors[0]) == 'line 1, field "responses[1].seed": must be an integer'


def test_commands_import_by_project_name(project: Project, tmp_path: Path, capsys: Any) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"id": "a", "prompt": "A?"}\n{"id": "b", "prompt": "B?"}\n')
    call_command("import_prompts", project.name, str(prompts))
    responses = tmp_path / "responses.jsonl"
    responses.write_text(
        '{"prompt_id": "a", "responses": [{"text": "1"}, {"text": "2"}, {"text": "3"}]}\n'
    )
    call_command("import_responses", str(project.pk), str(responses), "--max-pairs", "2")
    out = capsys.readouterr().out
    assert "created 2 prompts" in out and "2 comparisons" in out
    bad = tmp_path / "bad.csv"
    bad.write_text("id,prompt\nz,\n")
    with pytest.raises(CommandError, match='line 2, field "prompt": is required'):
        call_command("import_prompts", project.name, str(bad))
    with pytest.raises(CommandError, match="no project"):
        call_command("import_prompts", "missing", str(bad))


def test_hundred_thousand_prompts_import_quickly(project: Project) -> None:
    import time

    data = "".join(
        json.dumps({"id": f"p{i}", "prompt": f"Question {i}?"}) + "\n" for i in range(100_000)
    )
    started = time.process_time()
    result = prompts_import(
        project=project, rows=rows_read(SourceFile.from_bytes(data.encode(), name="x.jsonl"))
    )
    assert result.prompts_created == 100_000
    assert time.process_time() - started < 30  # CPU time (SQLite runs in-process): load-proof


def test_imports_write_in_bulk(project: Project, django_assert_max_num_queries: Any) -> None:
    prompts = jsonl(*({"id": f"p{i}", "prompt": f"Q{i}?"} for i in range(600)))
    with django_assert_max_num_queries(12):
        prompts_import(project=project, rows=rows_read(prompts))
    responses = jsonl(
        *({"prompt_id": f"p{i}", "responses": ["one", "two", "three"]} for i in range(600))
    )
    with django_assert_max_num_queries(60):  # batches, not rows: 1,800 rows each way
        result = responses_import(project=project, rows=rows_read(responses))
    assert (result.responses_created, result.comparisons_created) == (1800, 1800)
