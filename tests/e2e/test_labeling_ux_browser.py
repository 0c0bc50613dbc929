"""What a first-time annotator hits on the labeling page, in a real browser (headless Chromium):
a form error keeps the page (DEBUG on and off), Ctrl+Enter from the rationale box gives the
keys back to the comparison, the strength is asked for up front, the next comparison is
announced, and the favicon is served."""

from __future__ import annotations

import os
from typing import Any

import pytest

from labeling.models import Assignment, Judgment, Project
from tests.factories import ComparisonFactory, ProjectFactory, UserFactory

# Playwright's sync API runs an event loop in this thread; the ORM calls below are still sync.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ux_project(db: Any) -> tuple[Any, Project]:
    annotator: Any = UserFactory.create(username="ann1")
    project: Any = ProjectFactory.create(name="First day")
    project.annotators.add(annotator)
    for _ in range(3):
        ComparisonFactory.create(project=project)
    return annotator, project


def _labeling_page(browser: Any, base_url: str, project: Project) -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=username]", "ann1")
    page.fill("input[name=password]", "pw")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/projects/{project.pk}/label/")
    page.wait_for_load_state("load")
    return page


def _shown(page: Any) -> int:
    return int(page.get_attribute("#label-panel", "data-assignment"))


def _wait_for_new_panel(page: Any, old: int) -> None:
    page.wait_for_function(
        """old => document.querySelector('#label-panel').dataset.assignment !== String(old)
            && !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')""",
        arg=old,
    )


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_a_form_error_keeps_the_page_and_the_next_submit_stays_htmx(
    browser: Any,
    live_server: Any,
    ux_project: tuple[Any, Project],
    settings: Any,
    debug: bool,
) -> None:
    settings.DEBUG = debug  # DEBUG loads django-htmx's handler that swaps in the whole 4xx page
    annotator, project = ux_project
    page = _labeling_page(browser, live_server.url, project)
    assert (page.locator("script[src*='django-htmx.js']").count() == 1) is debug
    page.evaluate("window.__samePage = true")  # gone if anything reloads the document
    first = _shown(page)

    page.keyboard.press("1")  # a side, but no strength
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.keyboard.press("Enter")
    assert answer.value.status == 422
    page.wait_for_selector("#label-error")
    assert "press 7, 8, 9 or 0" in page.inner_text("#label-error")
    # The page around the panel is intact and styled, and it is the same document.
    assert page.locator(".site-header").count() == 1
    assert page.evaluate("window.__samePage") is True
    assert page.evaluate("getComputedStyle(document.body).margin") == "0px"
    assert _shown(page) == first and page.is_checked("#choice-left")
    assert not Judgment.objects.exists()

    page.keyboard.press("9")
    page.keyboard.press("Enter")
    _wait_for_new_panel(page, first)
    assert page.evaluate("window.__samePage") is True  # an htmx swap, not a full-page POST
    judged = Judgment.objects.get(annotator=annotator)
    assert judged.strength == 3
    page.close()


def test_ctrl_enter_from_the_rationale_gives_the_keys_back(
    browser: Any, live_server: Any, ux_project: tuple[Any, Project]
) -> None:
    annotator, project = ux_project
    page = _labeling_page(browser, live_server.url, project)
    first = _shown(page)
    page.keyboard.press("1")
    page.keyboard.press("8")
    page.keyboard.press("r")
    page.keyboard.type("shorter")
    page.keyboard.press("Control+Enter")
    _wait_for_new_panel(page, first)
    second = _shown(page)
    assert page.evaluate("document.activeElement.tagName") != "TEXTAREA"
    assert page.evaluate("document.activeElement.id") == "label-panel"
    page.keyboard.press("2")  # a shortcut again, not text in the next rationale box
    page.keyboard.press("7")
    assert page.is_checked("#choice-right") and page.is_checked("#strength-1")
    assert page.input_value("#id_rationale") == ""
    page.keyboard.press("Enter")
    _wait_for_new_panel(page, second)
    judgments = Judgment.objects.filter(annotator=annotator).order_by("pk")
    assert [j.rationale for j in judgments] == ["shorter", ""]
    assert Assignment.objects.get(pk=second).comparison_id == judgments[1].comparison_id
    page.close()


def test_strength_and_the_keys_are_told_up_front_and_the_next_comparison_is_announced(
    browser: Any, live_server: Any, ux_project: tuple[Any, Project]
) -> None:
    _, project = ux_project
    page = _labeling_page(browser, live_server.url, project)
    legend = page.inner_text(".strength legend")
    assert "required when a side wins" in legend
    hint = page.inner_text("#keys-hint")
    assert "\n" not in hint.strip()  # one line of keys
    for key in ("1", "2", "7", "0", "Enter", "T", "B", "S", "U"):
        assert key in hint
    assert page.get_attribute("#judge-form", "aria-describedby") == "keys-hint"
    region = page.locator("#label-announce")
    assert region.get_attribute("aria-live") == "polite"
    first = _shown(page)
    page.keyboard.press("t")
    page.keyboard.press("Enter")
    _wait_for_new_panel(page, first)
    assert region.inner_text() == "Next comparison. Remaining 2."
    assert page.locator("#label-panel #label-announce").count() == 0  # outside the swap

    response = page.request.get(f"{live_server.url}/favicon.ico")
    assert response.status == 200 and response.headers["content-type"].startswith("image/")
    icon = page.get_attribute("link[rel=icon]", "href")
    assert icon and page.request.get(f"{live_server.url}{icon}").status == 200
    page.close()
