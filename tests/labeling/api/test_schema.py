"""The OpenAPI schema validates and lists our paths; the docs page renders without a CDN."""

from __future__ import annotations

import json
import re
from typing import Any

from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from labeling.roles import ADMIN_GROUP
from tests.factories import UserFactory

OUR_PATHS = {
    "/api/v1/projects/": {"get", "post"},
    "/api/v1/projects/{project_id}/": {"get", "patch"},
    "/api/v1/projects/{project_id}/queue/next/": {"post"},
    "/api/v1/projects/{project_id}/queue/skip/": {"post"},
    "/api/v1/projects/{project_id}/queue/undo/": {"post"},
    "/api/v1/comparisons/{comparison_id}/judgments/": {"post"},
    "/api/v1/projects/{project_id}/stats/": {"get"},
    "/api/v1/comparisons/{comparison_id}/gold/": {"post", "delete"},
    "/api/v1/projects/{project_id}/gold/generate/": {"post"},
}


def test_schema_is_valid_openapi_with_our_paths(db: Any) -> None:
    response = APIClient().get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    for path, methods in OUR_PATHS.items():
        assert methods <= set(schema["paths"][path]), path
    submit = schema["paths"]["/api/v1/comparisons/{comparison_id}/judgments/"]["post"]
    assert {"200", "201"} <= set(submit["responses"])
    # rate limits are documented: the submit throttle, and invalid tokens wherever a token goes
    for operation in (submit, schema["paths"]["/api/v1/projects/"]["get"]):
        assert "Retry-After" in operation["responses"]["429"]["description"]
        assert operation["responses"]["429"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }
    queue_next = schema["paths"]["/api/v1/projects/{project_id}/queue/next/"]["post"]
    assert {"200", "204"} <= set(queue_next["responses"])
    assert "tokenAuth" in schema["components"]["securitySchemes"]


def test_docs_page_renders_operations(db: Any) -> None:
    response = APIClient().get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    # no script, and nothing loaded from a CDN (a random token in the page may spell "cdn")
    assert "<script" not in html
    assert re.search(r'(?:src|href)="[^"]*cdn', html, flags=re.IGNORECASE) is None
    for path in OUR_PATHS:
        assert path in html
    assert "Submit your judgment of a leased comparison" in html
    assert "left.canonical" in html and "choice" in html
    assert "Authorization: Token" in html


def test_docs_page_renders_markdown_inside_the_site(db: Any) -> None:
    admin = UserFactory.create(username="boss", role=ADMIN_GROUP)
    client = APIClient()
    client.force_login(admin)
    html = client.get("/api/v1/docs/").content.decode()
    assert "`" not in html and "**" not in html  # the descriptions' markdown is rendered
    assert "<code>opponent</code>" in html
    assert 'class="site-header"' in html and 'href="/projects/"' in html  # the way back
    assert "css/app.css" in html and "<style" not in html


def test_schema_documents_errors_and_admin_only_fields(db: Any) -> None:
    schema = json.loads(APIClient().get("/api/v1/schema/?format=json").content)
    error = schema["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"error", "field", "detail"}
    detail = schema["paths"]["/api/v1/projects/{project_id}/"]
    assert {"400", "401", "403", "404"} <= set(detail["get"]["responses"])
    assert {"409", "415"} <= set(detail["patch"]["responses"]) - set(detail["get"]["responses"])
    not_found = detail["get"]["responses"]["404"]["content"]["application/json"]["schema"]
    assert not_found == {"$ref": "#/components/schemas/Error"}
    assert detail["get"]["parameters"][0]["schema"]["maximum"] == 2**63 - 1
    # Annotators never receive a project's annotators or gold rate.
    project = schema["components"]["schemas"]["Project"]
    assert {"annotators", "gold_rate"} & set(project["required"]) == set()
    assert {"annotators", "gold_rate"} <= set(project["properties"])
    samples = schema["paths"]["/api/v1/checkpoints/{checkpoint_id}/samples/"]["get"]
    page = samples["responses"]["200"]["content"]["application/json"]["schema"]
    assert page["$ref"].endswith("PaginatedSampleList")
