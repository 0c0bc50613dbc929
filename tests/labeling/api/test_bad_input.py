"""Bad input answers a 4xx with a reason and changes nothing, never a 500, on SQLite and PostgreSQL
alike: deeply nested JSON, ids past 2**63 - 1, huge page sizes, NUL characters, non-integer ids.
Every error under /api/v1/ answers JSON."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from labeling.api.pagination import MAX_PAGE_SIZE
from labeling.models import Comparison, Judgment, Project
from labeling.safeinput import DB_ID_MAX, MAX_JSON_DEPTH

TOO_BIG = str(DB_ID_MAX + 1)  # 9223372036854775808
DEEP = "[" * 100_000 + "]" * 100_000


def _post_raw(client: APIClient, url: str, body: str) -> Any:
    return client.generic("POST", url, body, content_type="application/json")


def _is_json_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body: dict[str, Any] = response.json()
    assert body["error"], body
    return body


# --- deeply nested JSON -------------------------------------------------------------------------


def test_deep_json_to_annotator_endpoints_is_400(
    api: APIClient, project: Project, queue: list[Comparison]
) -> None:
    urls = [
        f"/api/v1/comparisons/{queue[0].pk}/judgments/",
        f"/api/v1/projects/{project.pk}/queue/skip/",
    ]
    for url in urls:
        body = _is_json_error(_post_raw(api, url, DEEP), 400)
        assert f"nested more than {MAX_JSON_DEPTH} levels" in body["error"], url
    assert not Judgment.objects.exists()


def test_deep_json_to_admin_endpoints_is_400(admin_api: APIClient, project: Project) -> None:
    before = Project.objects.count()
    urls = [
        "/api/v1/projects/",
        f"/api/v1/projects/{project.pk}/rounds/",
        f"/api/v1/projects/{project.pk}/prompts/",
        f"/api/v1/projects/{project.pk}/responses/",
        f"/api/v1/projects/{project.pk}/preferences/?format=trl",
        f"/api/v1/projects/{project.pk}/gold/generate/",
    ]
    for url in urls:
        body = _is_json_error(_post_raw(admin_api, url, DEEP), 400)
        assert "nested more than" in body["error"], url
    patched = admin_api.generic(
        "PATCH", f"/api/v1/projects/{project.pk}/", DEEP, content_type="application/json"
    )
    _is_json_error(patched, 400)
    assert Project.objects.count() == before


def test_json_nested_past_the_limit_but_parseable_is_400(admin_api: APIClient) -> None:
    """Deep enough to pass Python's parser, deeper than anything the app stores."""
    value: Any = "x"
    for _ in range(MAX_JSON_DEPTH + 1):
        value = [value]
    response = admin_api.post(
        "/api/v1/projects/", {"name": "deep", "description": "", "extra": value}, format="json"
    )
    body = _is_json_error(response, 400)
    assert body["field"] == "extra" + "[0]" * (MAX_JSON_DEPTH - 1)
    assert not Project.objects.filter(name="deep").exists()


def test_deep_json_import_item_names_the_item(admin_api: APIClient, project: Project) -> None:
    deep: Any = {"k": 1}
    for _ in range(MAX_JSON_DEPTH + 5):
        deep = {"k": deep}
    response = admin_api.post(
        f"/api/v1/projects/{project.pk}/prompts/",
        ["fine", {"prompt": "also fine", "metadata": deep}],
        format="json",
    )
    body = _is_json_error(response, 400)
    assert body["error"].startswith('item 2, field "metadata.k.k.')
    assert "nested more than" in body["error"]
    assert not project.prompts.exists()


# --- ids past the largest database id -----------------------------------------------------------


def test_path_ids_past_int64_are_404_in_the_api(admin_api: APIClient, project: Project) -> None:
    gets = [
        f"/api/v1/projects/{TOO_BIG}/",
        f"/api/v1/projects/{TOO_BIG}/stats/",
        f"/api/v1/projects/{TOO_BIG}/rounds/",
        f"/api/v1/projects/{TOO_BIG}/checkpoints/",
        f"/api/v1/projects/{TOO_BIG}/leaderboard/",
        f"/api/v1/projects/{TOO_BIG}/export/",
        f"/api/v1/rounds/{TOO_BIG}/",
        f"/api/v1/checkpoints/{TOO_BIG}/samples/",
    ]
    posts = [
        f"/api/v1/projects/{TOO_BIG}/queue/next/",
        f"/api/v1/comparisons/{TOO_BIG}/judgments/",
        f"/api/v1/comparisons/{TOO_BIG}/gold/",
        f"/api/v1/rounds/{TOO_BIG}/cancel/",
        f"/api/v1/rounds/{TOO_BIG}/retry/",
        f"/api/v1/checkpoints/{TOO_BIG}/promote/",
        f"/api/v1/checkpoints/{TOO_BIG}/generate/",
        f"/api/v1/checkpoints/{TOO_BIG}/human-eval/",
        f"/api/v1/projects/{TOO_BIG}/prompts/",
    ]
    for url in gets:
        _is_json_error(admin_api.get(url), 404)
    for url in posts:
        _is_json_error(admin_api.post(url, {}, format="json"), 404)
    # The largest id there can be reaches the database and answers the view's own 404.
    assert admin_api.get(f"/api/v1/projects/{DB_ID_MAX}/").json()["error"] == (
        f"no project {DB_ID_MAX}"
    )


def test_path_ids_past_int64_are_404_on_pages(admin_user: Any) -> None:
    client = Client()
    client.force_login(admin_user)
    for url in [
        f"/projects/{TOO_BIG}/",
        f"/projects/{TOO_BIG}/label/",
        f"/projects/{TOO_BIG}/history/",
        f"/projects/{TOO_BIG}/rounds/",
        f"/projects/{TOO_BIG}/checkpoints/",
        f"/projects/{TOO_BIG}/upload/",
        f"/rounds/{TOO_BIG}/",
        f"/projects/1/gold/{TOO_BIG}/",
    ]:
        assert client.get(url).status_code == 404, url


def test_a_posted_lease_id_past_int64_is_a_conflict_not_a_500(
    annotator: Any, project: Project, queue: list[Comparison]
) -> None:
    client = Client()
    client.force_login(annotator)
    response = client.post(
        f"/projects/{project.pk}/label/", {"assignment": TOO_BIG, "choice": "left"}
    )
    assert response.status_code in (409, 422)
    assert not Judgment.objects.exists()


# --- pagination ---------------------------------------------------------------------------------


def test_a_huge_limit_is_clamped_to_the_largest_page(admin_api: APIClient) -> None:
    Project.objects.bulk_create(Project(name=f"p{i}") for i in range(MAX_PAGE_SIZE + 1))
    response = admin_api.get(f"/api/v1/projects/?limit={TOO_BIG}")
    assert response.status_code == 200
    body = response.json()
    assert len(body["results"]) == MAX_PAGE_SIZE and body["count"] == MAX_PAGE_SIZE + 1
    assert f"limit={MAX_PAGE_SIZE}" in body["next"]
    huge_offset = admin_api.get(f"/api/v1/projects/?limit=2&offset={TOO_BIG}")
    assert huge_offset.status_code == 200 and huge_offset.json()["results"] == []


# --- NUL characters -----------------------------------------------------------------------------


def test_nul_in_a_rationale_is_400_naming_the_field(
    api: APIClient, project: Project, queue: list[Comparison]
) -> None:
    lease = api.post(f"/api/v1/projects/{project.pk}/queue/next/").json()
    response = api.post(
        f"/api/v1/comparisons/{lease['comparison']}/judgments/",
        {"choice": "a", "strength": 2, "rationale": "fine\x00but not"},
        format="json",
    )
    body = _is_json_error(response, 400)
    assert body["field"] == "rationale" and "NUL" in body["error"]
    assert not Judgment.objects.exists()


def test_nul_in_a_project_name_or_config_is_400(admin_api: APIClient, project: Project) -> None:
    created = admin_api.post("/api/v1/projects/", {"name": "bad\x00name"}, format="json")
    assert _is_json_error(created, 400)["field"] == "name"
    form = admin_api.post("/api/v1/projects/", {"name": "bad\x00name"})  # form-encoded
    assert _is_json_error(form, 400)["field"] == "name"
    launched = admin_api.post(
        f"/api/v1/projects/{project.pk}/rounds/",
        {"method": "dpo", "config": {"policy": {"beta\x00": 0.1}}},
        format="json",
    )
    assert "NUL" in _is_json_error(launched, 400)["error"]
    surrogate = admin_api.generic(
        "POST",
        "/api/v1/projects/",
        '{"name": "half a pair \\ud800"}',
        content_type="application/json",
    )
    assert "surrogate" in _is_json_error(surrogate, 400)["error"]
    assert not Project.objects.filter(name__startswith="bad").exists()


def test_nul_in_query_parameters_and_import_options_is_400(
    admin_api: APIClient, project: Project
) -> None:
    export = admin_api.get(f"/api/v1/projects/{project.pk}/export/?annotators=a%00b")
    assert _is_json_error(export, 400)["field"] == "annotators"
    imported = admin_api.post(
        f"/api/v1/projects/{project.pk}/prompts/?batch=x%00y", ["fine"], format="json"
    )
    assert _is_json_error(imported, 400)["field"] == "batch"
    wrapped = admin_api.post(
        f"/api/v1/projects/{project.pk}/responses/",
        {"batch": "x\x00y", "rows": []},
        format="json",
    )
    assert _is_json_error(wrapped, 400)["field"] == "batch"
    assert not project.prompts.exists()


def test_nul_in_a_page_form_is_refused(admin_user: Any) -> None:
    client = Client()
    client.force_login(admin_user)
    response = client.post(
        "/projects/", {"name": "a\x00b", "judgments_per_comparison": 1, "lease_minutes": 10}
    )
    assert response.status_code == 422  # a page's refusal (labeling.middleware)
    assert "form field 'name' contains a NUL character" in response.content.decode()
    assert not Project.objects.exists()


def test_nul_in_a_token_is_401(db: Any) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token abc\x00def")
    _is_json_error(client.get("/api/v1/projects/"), 401)


# --- every API error answers JSON ---------------------------------------------------------------


def test_non_integer_ids_and_unknown_paths_answer_json_404(api: APIClient) -> None:
    for url in [
        "/api/v1/projects/abc/",
        "/api/v1/projects/1.5/stats/",
        "/api/v1/comparisons/-1/judgments/",
        "/api/v1/nothing-here/",
    ]:
        body = _is_json_error(api.get(url), 404)
        assert body["error"].startswith("not found") and body["field"] is None


def test_405_answers_json(api: APIClient, project: Project) -> None:
    response = api.delete(f"/api/v1/projects/{project.pk}/queue/next/")
    body = _is_json_error(response, 405)
    assert "DELETE" in body["error"]
    docs = api.post("/api/v1/docs/")
    assert _is_json_error(docs, 405)["error"].startswith("method POST not allowed")
    assert docs["Allow"] == "GET, HEAD"


def test_500_answers_json(annotator: Any, project: Project, monkeypatch: Any) -> None:
    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("labeling.selectors.projects_listed_for", broken)
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(annotator)
    body = _is_json_error(client.get(f"/api/v1/projects/{project.pk}/"), 500)
    assert "boom" not in body["error"]


def test_pages_keep_html_errors(annotator: Any) -> None:
    client = Client()
    client.force_login(annotator)
    response = client.get("/projects/abc/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("value", ["x" * 10, "é", "a\tb"])
def test_ordinary_text_passes(admin_api: APIClient, value: str) -> None:
    response = admin_api.post("/api/v1/projects/", {"name": f"p {value}"}, format="json")
    assert response.status_code == 201, response.content


def test_every_route_takes_ids_through_the_bounded_converter() -> None:
    """A route added with ``<int:…>`` would answer 500 (SQLite) for an id past 2**63 - 1 again:
    every path converter of the project's routes is the bounded ``<id:…>``, or not an integer."""
    from django.urls import URLPattern, URLResolver, get_resolver
    from django.urls.converters import IntConverter

    def walk(patterns: list[Any], prefix: str = "") -> list[tuple[str, Any]]:
        found = []
        for entry in patterns:
            converters = getattr(entry.pattern, "converters", {})
            found += [(prefix + str(entry.pattern), c) for c in converters.values()]
            if isinstance(entry, URLResolver):
                found += walk(entry.url_patterns, prefix + str(entry.pattern))
            else:
                assert isinstance(entry, URLPattern)
        return found

    routes = walk(get_resolver().url_patterns)
    assert len(routes) > 40
    unbounded = [route for route, c in routes if type(c) is IntConverter]
    assert unbounded == []
