"""Import files with deeply nested JSON or NUL characters are refused the same way on SQLite and
PostgreSQL, naming the line and the field, through the API (files and JSON bodies), the upload
page and the management commands; nothing is written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.models import Comparison, Judgment, Project, Prompt, Response
from labeling.safeinput import MAX_JSON_DEPTH
from tests.factories import PromptFactory

DEEP_LINE = '{"prompt": ' + "[" * 100_000 + "]" * 100_000 + "}"
NUL_PROMPT = json.dumps({"id": "p2", "prompt": "Hello\x00there"})  # the \u0000 escape


@pytest.fixture
def api(admin_user: Any) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=admin_user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def _nothing_written(project: Project) -> None:
    assert not Prompt.objects.filter(project=project).exclude(external_id="p1").exists()
    assert not Response.objects.filter(prompt__project=project).exists()
    assert not Comparison.objects.filter(project=project).exists()
    assert not Judgment.objects.exists()


def _upload(
    api: APIClient, project: Project, what: str, name: str, data: str, query: str = ""
) -> Any:
    upload = SimpleUploadedFile(name, data.encode(), content_type="application/octet-stream")
    return api.post(
        f"/api/v1/projects/{project.pk}/{what}/{query}", {"file": upload}, format="multipart"
    )


def _error(response: Any) -> str:
    assert response.status_code == 400, response.content[:300]
    return str(response.json()["error"])


def test_deep_jsonl_line_is_refused_naming_the_line(api: APIClient, project: Project) -> None:
    data = '{"id": "p0", "prompt": "fine"}\n' + DEEP_LINE + "\n"
    error = _error(_upload(api, project, "prompts", "p.jsonl", data))
    assert error.startswith(f"line 2: is nested more than {MAX_JSON_DEPTH} levels deep")
    raw = api.generic(
        "POST", f"/api/v1/projects/{project.pk}/prompts/", data, content_type="application/jsonl"
    )
    assert _error(raw).startswith("line 2: is nested")
    _nothing_written(project)


def test_deep_json_array_file_names_its_line(api: APIClient, project: Project) -> None:
    data = '[\n  "fine",\n  ' + "[" * 100_000 + "]" * 100_000 + "\n]"
    error = _error(_upload(api, project, "prompts", "p.json", data))
    assert error.startswith("line 3: is nested more than")
    _nothing_written(project)


def test_deep_but_parseable_metadata_names_the_field(api: APIClient, project: Project) -> None:
    deep: Any = 1
    for _ in range(MAX_JSON_DEPTH + 1):
        deep = [deep]
    data = json.dumps({"id": "p0", "prompt": "fine", "metadata": {"tags": deep}}) + "\n"
    error = _error(_upload(api, project, "prompts", "p.jsonl", data))
    assert error.startswith('line 1, field "metadata.tags[0][0]')
    _nothing_written(project)


def test_deep_json_in_a_csv_cell_names_line_and_field(api: APIClient, project: Project) -> None:
    data = 'id,prompt\np0,fine\np1,"' + "[" * 5000 + "]" * 5000 + '"\n'
    error = _error(_upload(api, project, "prompts", "p.csv", data))
    assert error.startswith('line 3, field "prompt": is nested more than')
    _nothing_written(project)


def test_nul_in_prompts_is_refused_naming_line_and_field(api: APIClient, project: Project) -> None:
    data = '{"id": "p0", "prompt": "fine"}\n' + NUL_PROMPT + "\n"
    error = _error(_upload(api, project, "prompts", "p.jsonl", data))
    assert error.startswith('line 2, field "prompt": contains a NUL character')
    body = api.post(
        f"/api/v1/projects/{project.pk}/prompts/",
        ["fine", {"prompt": [{"role": "user", "content": "a\x00"}]}],
        format="json",
    )
    assert _error(body).startswith('item 2, field "prompt[0].content": contains a NUL')
    csv_nul = _upload(api, project, "prompts", "p.csv", "id,prompt\np0,fine\np1,bad\x00text\n")
    assert _error(csv_nul).startswith('line 3, field "prompt": contains a NUL')
    csv_json_cell = 'id,prompt\np1,"[{""role"": ""user"", ""content"": ""a\\u0000""}]"\n'
    error = _error(_upload(api, project, "prompts", "p.csv", csv_json_cell))
    assert error.startswith('line 2, field "prompt[0].content": contains a NUL')
    key = _upload(
        api, project, "prompts", "p.jsonl", '{"prompt": "x", "metadata": {"k\\u0000": 1}}'
    )
    assert _error(key).startswith('line 1, field "metadata.k')
    _nothing_written(project)


def test_nul_in_responses_is_refused(api: APIClient, project: Project) -> None:
    PromptFactory.create(project=project, external_id="p1")
    data = json.dumps({"prompt_id": "p1", "responses": [{"text": "a"}, {"text": "b\x00"}]})
    error = _error(_upload(api, project, "responses", "r.jsonl", data + "\n"))
    assert error.startswith('line 1, field "responses[1].text": contains a NUL character')
    _nothing_written(project)


def test_nul_in_preferences_is_refused(api: APIClient, project: Project) -> None:
    rows = [
        {"prompt": "Q?", "chosen": "good", "rejected": "bad"},
        {"prompt": "Q2?", "chosen": "good", "rejected": "bad\x00"},
    ]
    data = "".join(json.dumps(row) + "\n" for row in rows)
    error = _error(_upload(api, project, "preferences", "d.jsonl", data, "?format=trl"))
    assert error.startswith('line 2, field "rejected": contains a NUL character')
    as_json = api.post(
        f"/api/v1/projects/{project.pk}/preferences/?format=trl", rows, format="json"
    )
    assert _error(as_json).startswith('item 2, field "rejected": contains a NUL')
    _nothing_written(project)


def test_upload_page_refuses_nul(admin_user: Any, project: Project) -> None:
    client = Client()
    client.force_login(admin_user)
    upload = SimpleUploadedFile("p.jsonl", (NUL_PROMPT + "\n").encode())
    response = client.post(f"/projects/{project.pk}/upload/", {"kind": "prompts", "file": upload})
    assert response.status_code == 422
    assert "line 1, field &quot;prompt&quot;: contains a NUL" in response.content.decode()
    _nothing_written(project)


@pytest.mark.parametrize(
    ("command", "extra", "content", "message"),
    [
        ("import_prompts", [], DEEP_LINE, "line 2: is nested more than"),
        ("import_prompts", [], NUL_PROMPT, 'line 2, field "prompt": contains a NUL'),
        (
            "import_responses",
            [],
            json.dumps({"prompt_id": "p1", "responses": ["a", "b\x00"]}),
            'line 2, field "responses[1]": contains a NUL',
        ),
        (
            "import_preferences",
            ["--format", "trl"],
            json.dumps({"prompt": "Q", "chosen": "a\x00", "rejected": "b"}),
            'line 2, field "chosen": contains a NUL',
        ),
        (
            "import_preferences",
            ["--format", "trl"],
            '{"prompt": "Q", "chosen": "a", "rejected": ' + "[" * 100_000 + "]" * 100_000 + "}",
            "line 2: is nested more than",
        ),
    ],
)
def test_commands_name_the_line(
    project: Project, tmp_path: Path, command: str, extra: list[str], content: str, message: str
) -> None:
    PromptFactory.create(project=project, external_id="p1")
    first = {
        "import_prompts": json.dumps({"id": "p0", "prompt": "fine"}),
        "import_responses": json.dumps({"prompt_id": "p1", "responses": ["x", "y"]}),
        "import_preferences": json.dumps({"prompt": "Q0", "chosen": "a", "rejected": "b"}),
    }[command]
    path = tmp_path / "data.jsonl"
    path.write_text(first + "\n" + content + "\n")
    with pytest.raises(CommandError, match=message.replace("[", r"\[").replace("]", r"\]")):
        call_command(command, project.name, str(path), *extra)
    _nothing_written(project)


def test_command_with_a_project_id_past_int64_is_a_command_error(
    project: Project, tmp_path: Path
) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('"fine"\n')
    with pytest.raises(CommandError, match="no project"):
        call_command("import_prompts", str(2**63), str(path))
