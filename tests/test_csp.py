"""Content-Security-Policy: every page is served with a policy that allows only the app's own
scripts and styles (no 'unsafe-inline', no 'unsafe-eval'), and no template carries an inline
script, inline style element or style attribute that such a policy would block. The browser tests
fail on any violation at run time (tests/conftest.py, ``_no_csp_violations``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = [
    *sorted((ROOT / "templates").rglob("*.html")),
    *sorted((ROOT / "labeling").rglob("*.html")),
    *sorted((ROOT / "rlhf").rglob("*.html")),
]


def _policy(response: Any) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


@pytest.mark.parametrize("url", ["/accounts/login/", "/projects/", "/tokens/", "/api/v1/docs/"])
def test_pages_carry_a_strict_policy(admin_user: Any, url: str) -> None:
    client = Client()
    if url != "/accounts/login/":
        client.force_login(admin_user)
    response = client.get(url)
    assert response.status_code == 200
    policy = _policy(response)
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert "unsafe" not in response["Content-Security-Policy"]


def test_templates_have_no_inline_script_or_style() -> None:
    assert len(TEMPLATES) > 10
    for path in TEMPLATES:
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), f"inline <script> in {path}"
        assert "<style" not in text, f"<style> element in {path}"
        assert not re.search(r"\sstyle=", text), f"style attribute in {path}"
        assert not re.search(r"\son[a-z]+=", text), f"inline event handler in {path}"


def test_htmx_is_configured_for_the_policy(admin_user: Any) -> None:
    client = Client()
    client.force_login(admin_user)
    page = client.get("/projects/").content.decode()
    assert '"includeIndicatorStyles": false' in page and '"allowEval": false' in page
    assert '"attributesToSettle": ["class", "width", "height"]' in page
