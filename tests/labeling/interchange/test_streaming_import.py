"""``import_preferences`` on the server streams: a file over the web upload limit
(PAIRWISE_MAX_UPLOAD_MB) imports in chunks (the chunk size lowered here so a small file spans
many), still all or nothing, a bad line named even when earlier chunks were already written.

Flat memory with size is measured by ``benchmarks/import_memory.py`` (peak memory at 10 MB vs
100 MB).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.interchange import preference_imports
from labeling.models import Comparison, Judgment, Project, Prompt, Response

ROWS = 1200
PADDING = "x" * 900  # ~1 KB a row: 1200 rows make a file over the lowered 1 MB limit


def _row(index: int, **changes: Any) -> dict[str, Any]:
    row = {
        "id": f"p{index % 500}",  # prompts recur across chunks
        "prompt": f"Question {index % 500}?",
        "chosen": f"good answer {index} {PADDING}",
        "rejected": f"bad answer {index}",
    }
    row.update(changes)
    return row


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def small_limits(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.PAIRWISE_MAX_UPLOAD_MB = 1
    settings.PAIRWISE_MAX_IMPORT_ROWS = 1000
    monkeypatch.setattr(preference_imports, "IMPORT_CHUNK_ROWS", 100)


def _counts(project: Project) -> tuple[int, int, int, int]:
    return (
        Prompt.objects.filter(project=project).count(),
        Response.objects.filter(prompt__project=project).count(),
        Comparison.objects.filter(project=project).count(),
        Judgment.objects.filter(comparison__project=project).count(),
    )


def test_the_command_imports_a_file_over_the_upload_limit(
    small_limits: None, project: Project, admin_user: Any, tmp_path: Path
) -> None:
    rows = [_row(index) for index in range(ROWS)]
    rows.append(_row(7))  # the same preference again, 11 chunks later: a duplicate
    path = _write(tmp_path / "big.jsonl", rows)
    assert path.stat().st_size > 1024 * 1024

    # The web upload still obeys the limit ...
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=admin_user).key}")
    upload = SimpleUploadedFile("big.jsonl", path.read_bytes(), "application/jsonl")
    refused = api.post(f"/api/v1/projects/{project.pk}/preferences/?format=trl", {"file": upload})
    assert refused.status_code == 413, refused.content
    assert _counts(project) == (0, 0, 0, 0)

    # ... the server-side command does not, and streams it in chunks.
    call_command("import_preferences", str(project.pk), str(path), "--format", "trl")
    assert _counts(project) == (500, 2 * ROWS, ROWS, ROWS)
    assert set(
        Judgment.objects.filter(comparison__project=project).values_list(
            "annotator__username", flat=True
        )
    ) == {"import-trl"}
    assert Comparison.objects.filter(project=project, judgment_count=1).count() == ROWS


def test_a_bad_line_in_a_late_chunk_imports_nothing_and_is_named(
    small_limits: None, project: Project, tmp_path: Path
) -> None:
    rows = [_row(index) for index in range(ROWS)]
    rows[1049] = {"prompt": "Q?", "chosen": "only chosen"}  # line 1050, chunk 11
    path = _write(tmp_path / "bad.jsonl", rows)
    users_before = get_user_model().objects.count()
    with pytest.raises(CommandError) as caught:
        call_command("import_preferences", str(project.pk), str(path), "--format", "trl")
    assert 'line 1050, field "rejected": is required' in str(caught.value)
    assert "nothing was imported" in str(caught.value)
    assert _counts(project) == (0, 0, 0, 0)
    assert get_user_model().objects.count() == users_before  # no import-trl user either


def test_a_prompt_id_reused_for_another_prompt_chunks_apart_is_refused(
    small_limits: None, project: Project, tmp_path: Path
) -> None:
    rows = [_row(index) for index in range(ROWS)]
    rows[1100] = _row(1100, id="p3", prompt="Not question 3")  # p3 was written in chunk 1
    path = _write(tmp_path / "conflict.jsonl", rows)
    with pytest.raises(CommandError) as caught:
        call_command("import_preferences", str(project.pk), str(path), "--format", "trl")
    assert """line 1101, field "prompt": prompt 'p3' already has different""" in str(caught.value)
    assert _counts(project) == (0, 0, 0, 0)
