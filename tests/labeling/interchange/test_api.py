"""The interchange API and pages: permissions and scoping, JSON and file imports, error shapes,
the streamed export, its card and file name, and the upload and export pages."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import StreamingHttpResponse
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.models import Comparison, Project, Prompt
from tests.factories import PromptFactory, UserFactory


@pytest.fixture
def api(admin_user: Any) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=admin_user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def url(project: Project, what: str) -> str:
    return f"/api/v1/projects/{project.pk}/{what}/"


def test_prompts_json_list(api: APIClient, project: Project) -> None:
    response = api.post(
        url(project, "prompts"), ["One?", {"id": "p2", "prompt": "Two?"}], format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["prompts_created"] == 2
    again = api.post(url(project, "prompts"), [{"id": "p2", "prompt": "Two?"}], format="json")
    assert again.json()["skipped_duplicates"] == ["p2"]


def test_prompts_bad_item_error_shape(api: APIClient, project: Project) -> None:
    response = api.post(url(project, "prompts"), ["ok", {"prompt": 5}], format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["error"].startswith(
        'item 2, field "prompt": must be a string or a list of messages'
    )
    assert body["field"] == "prompt"
    assert body["detail"]["errors"][0] == {
        "item": 2,
        "field": "prompt",
        "message": "must be a string or a list of messages",
    }
    assert not Prompt.objects.filter(project=project).exists()


def test_single_grouped_row_and_wrapped_list(api: APIClient, project: Project) -> None:
    PromptFactory.create(project=project, external_id="p1")
    one = {"prompt_id": "p1", "responses": [{"text": "x"}, {"text": "y"}]}
    response = api.post(url(project, "responses"), one, format="json")
    assert response.status_code == 201 and response.json()["comparisons_created"] == 1
    wrapped = {"prompts": ["a?", "b?"]}
    assert api.post(url(project, "prompts"), wrapped, format="json").json()["prompts_created"] == 2


def test_file_uploads_csv_and_jsonl(api: APIClient, project: Project) -> None:
    upload = SimpleUploadedFile(
        "prompts.csv", b"id,prompt\na,Alpha?\nb,Beta?\n", content_type="text/csv"
    )
    response = api.post(url(project, "prompts"), {"file": upload}, format="multipart")
    assert response.status_code == 201 and response.json()["prompts_created"] == 2
    responses = SimpleUploadedFile(
        "r.data",
        b'{"prompt_id": "a", "responses": [{"text": "1"}, {"text": "2"}, {"text": "3"}]}\n',
        content_type="application/octet-stream",
    )
    response = api.post(
        url(project, "responses") + "?format=jsonl&max_pairs=2",
        {"file": responses},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    assert response.json()["comparisons_created"] == 2
    raw_body = api.post(
        url(project, "prompts"), data=b'"Gamma?"\n"Delta?"\n', content_type="application/x-ndjson"
    )
    assert raw_body.status_code == 201 and raw_body.json()["prompts_created"] == 2


def test_file_errors_name_the_line(api: APIClient, project: Project, settings: Any) -> None:
    upload = SimpleUploadedFile("p.jsonl", b'"fine"\n{"id": 3, "prompt": ["x"]}\n')
    response = api.post(url(project, "prompts"), {"file": upload}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error"].startswith('line 2, field "prompt[0]": must be an object')
    settings.PAIRWISE_MAX_UPLOAD_MB = 0
    upload = SimpleUploadedFile("p.jsonl", b'"fine"\n')
    response = api.post(url(project, "prompts"), {"file": upload}, format="multipart")
    assert response.status_code == 413 and "PAIRWISE_MAX_UPLOAD_MB" in response.json()["error"]
    response = api.post(url(project, "prompts"), ["a JSON body counts too"], format="json")
    assert response.status_code == 413 and "largest accepted is 0 MB" in response.json()["error"]
    settings.PAIRWISE_MAX_UPLOAD_MB = 1
    settings.PAIRWISE_MAX_IMPORT_ROWS = 2
    response = api.post(url(project, "prompts"), ["a", "b", "c"], format="json")
    assert response.status_code == 413 and "too many rows: at most 2" in response.json()["error"]


def test_preferences_import_endpoint(api: APIClient, project: Project) -> None:
    rows = [{"prompt": "Q?", "chosen": "good", "rejected": "bad"}]
    response = api.post(url(project, "preferences") + "?format=trl", rows, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["judgments_created"] == 1
    unknown = api.post(url(project, "preferences") + "?format=alpaca", rows, format="json")
    assert (
        unknown.status_code == 400
        and "allowed: trl, trl_conversational, hh, raw" in unknown.json()["error"]
    )


def test_permissions_and_scoping(project: Project, annotator: Any, db: Any) -> None:
    outsider_user: Any = UserFactory.create(username="outsider")
    anonymous = APIClient()
    assert anonymous.get(url(project, "export")).status_code == 401
    member = APIClient()
    member.force_authenticate(annotator)
    assert member.get(url(project, "export")).status_code == 403
    assert member.post(url(project, "prompts"), ["x"], format="json").status_code == 403
    outsider = APIClient()
    outsider.force_authenticate(outsider_user)
    assert outsider.get(url(project, "export")).status_code == 404
    assert outsider.post(url(project, "responses"), [], format="json").status_code == 404
    pages = Client()
    pages.force_login(annotator)
    assert pages.get(f"/projects/{project.pk}/upload/").status_code == 403
    pages.force_login(outsider_user)
    assert pages.get(f"/projects/{project.pk}/export/").status_code == 404


def test_export_streams_with_safe_filename_and_card_link(
    api: APIClient, judged_project: Project
) -> None:
    judged_project.name = 'Evil"/../name\r\nX: y'
    judged_project.save()
    response = api.get(url(judged_project, "export") + "?format=trl&container=jsonl&round=1")
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Disposition"] == 'attachment; filename="evilname-x-y-trl.jsonl"'
    assert "card=1" in response["Link"] and 'rel="describedby"' in response["Link"]
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    rows = [json.loads(line) for line in body.splitlines()]
    assert len(rows) == 5 and set(rows[0]) == {"prompt", "chosen", "rejected"}
    card = api.get(url(judged_project, "export") + "?format=trl&container=jsonl&round=1&card=1")
    assert card.status_code == 200 and card["Content-Type"].startswith("text/markdown")
    assert "Rows: 5" in card.content.decode() and "- round: 1" in card.content.decode()


def test_export_parquet_stream(api: APIClient, judged_project: Project) -> None:
    import pyarrow.parquet as pq

    response = api.get(
        url(judged_project, "export") + "?format=trl_conversational&container=parquet&margin=1"
    )
    assert isinstance(response, StreamingHttpResponse)
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    table = pq.read_table(io.BytesIO(body))
    assert table.num_rows == 9 and table.column_names == ["prompt", "chosen", "rejected", "margin"]


def test_export_bad_parameters_are_400_with_allowed_values(
    api: APIClient, judged_project: Project
) -> None:
    response = api.get(url(judged_project, "export") + "?format=alpaca")
    assert response.status_code == 400
    assert (
        response.json()["field"] == "format"
        and "allowed: trl, trl_conversational" in response.json()["error"]
    )
    response = api.get(url(judged_project, "export") + "?sort=name")
    assert response.status_code == 400 and "allowed: format, container" in response.json()["error"]
    response = api.get(url(judged_project, "export") + "?container=hf")
    assert (
        response.status_code == 400 and "allowed: jsonl, csv, parquet" in response.json()["error"]
    )


def test_export_queries_do_not_grow_with_rows(
    api: APIClient, judged_project: Project, django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(8):
        response = api.get(url(judged_project, "export") + "?format=raw")
        b"".join(response.streaming_content)  # type: ignore[attr-defined]


def test_upload_page_plain_and_htmx(admin_user: Any, project: Project) -> None:
    client = Client()
    client.force_login(admin_user)
    page = client.get(f"/projects/{project.pk}/upload/")
    assert page.status_code == 200 and b'enctype="multipart/form-data"' in page.content
    upload = SimpleUploadedFile("p.jsonl", b'{"id": "a", "prompt": "A?"}\n')
    response = client.post(f"/projects/{project.pk}/upload/", {"kind": "prompts", "file": upload})
    assert response.status_code == 302
    assert "created 1 prompts" in client.get(response["Location"]).content.decode()
    bad = SimpleUploadedFile("p.jsonl", b'{"id": "b"}\n')
    response = client.post(f"/projects/{project.pk}/upload/", {"kind": "prompts", "file": bad})
    assert (
        response.status_code == 422  # a page: never 400 (labeling.roles)
        and "line 1, field &quot;prompt&quot;: is required" in response.content.decode()
    )
    PromptFactory.create(project=project, external_id="q")
    responses = SimpleUploadedFile("r.csv", b"prompt_id,text\nq,x\nq,y\n")
    response = client.post(
        f"/projects/{project.pk}/upload/",
        {"kind": "responses", "file": responses},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<section id="upload-result"')
    assert Comparison.objects.filter(project=project).count() == 1


def test_export_page(admin_user: Any, project: Project) -> None:
    client = Client()
    client.force_login(admin_user)
    page = client.get(f"/projects/{project.pk}/export/")
    assert page.status_code == 200
    assert f'action="/api/v1/projects/{project.pk}/export/"'.encode() in page.content
    assert b'name="min_agreement"' in page.content and b"export_preferences" in page.content


def test_raw_export_imports_back_through_the_api(api: APIClient, judged_project: Project) -> None:
    exported = api.get(url(judged_project, "export") + "?format=raw&container=parquet")
    body = b"".join(exported.streaming_content)  # type: ignore[attr-defined]
    copy = Project.objects.create(name="copy")
    upload = SimpleUploadedFile("raw.parquet", body)
    response = api.post(
        url(copy, "preferences") + "?format=raw", {"file": upload}, format="multipart"
    )
    assert response.status_code == 201, response.content
    assert response.json()["judgments_created"] == 18
    again = api.get(url(copy, "export") + "?format=raw&container=parquet")
    assert b"".join(again.streaming_content) == body  # type: ignore[attr-defined]


def test_upload_page_imports_a_preference_dataset(admin_user: Any, project: Project) -> None:
    client = Client()
    client.force_login(admin_user)
    rows = b'{"prompt": "Q?", "chosen": "good", "rejected": "bad"}\n'
    response = client.post(
        f"/projects/{project.pk}/upload/",
        {
            "kind": "preferences",
            "dataset_format": "trl",
            "file": SimpleUploadedFile("d.jsonl", rows),
        },
        follow=True,
    )
    assert response.status_code == 200
    assert "created 1 prompts, 2 responses, 1 comparisons, 1 judgments" in response.content.decode()
