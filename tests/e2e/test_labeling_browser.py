"""The labeling page in a real browser (headless Chromium): keyboard-only judging, undo, and
the same page with JavaScript off. Saves var/screenshots/labeling.png for the README."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from labeling.models import Assignment, AssignmentStatus, Judgment, Project
from tests.factories import (
    ComparisonFactory,
    ProjectFactory,
    PromptFactory,
    ResponseFactory,
    UserFactory,
)

# Playwright's sync API runs an event loop in this thread; the ORM calls below are still sync.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCREENSHOT = Path(__file__).resolve().parents[2] / "var" / "screenshots" / "labeling.png"

GUIDELINES = """Pick the response that is **correct**, **helpful** and **concise**.

- Prefer working code over long explanations.
- Use *Both bad* when neither answers the question.
"""
LEFT_TEXT = """Use slicing, which returns a new list:

```python
numbers = [1, 2, 3]
print(numbers[::-1])  # [3, 2, 1]
```

Or reverse **in place** with `numbers.reverse()`."""
RIGHT_TEXT = """You can call `reversed()`:

```python
for n in reversed([1, 2, 3]):
    print(n)
```

`reversed()` returns an *iterator*, so wrap it in `list()` if you need a list."""


@pytest.fixture
def labeling_project(db: Any) -> tuple[Any, Project]:
    annotator: Any = UserFactory.create(username="ann1")
    project: Any = ProjectFactory.create(name="Python help", guidelines=GUIDELINES)
    project.annotators.add(annotator)
    prompt: Any = PromptFactory.create(
        project=project,
        messages=[
            {"role": "system", "content": "You are a concise Python tutor."},
            {"role": "user", "content": "How do I reverse a list in Python?"},
        ],
    )
    ComparisonFactory.create(
        project=project,
        prompt=prompt,
        response_a=ResponseFactory.create(prompt=prompt, text=LEFT_TEXT),
        response_b=ResponseFactory.create(prompt=prompt, text=RIGHT_TEXT),
        priority=1,
    )
    ComparisonFactory.create(project=project)
    ComparisonFactory.create(project=project)
    return annotator, project


def _log_in(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=username]", "ann1")
    page.fill("input[name=password]", "pw")
    page.keyboard.press("Enter")


def _shown_assignment(page: Any) -> int:
    return int(page.get_attribute("#label-panel", "data-assignment"))


def _wait_for_new_panel(page: Any, old_assignment: int) -> None:
    page.wait_for_function(
        """old => document.querySelector('#label-panel').dataset.assignment !== String(old)
            && !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')""",
        arg=old_assignment,
    )


def test_keyboard_only_judging_and_undo(
    browser: Any, live_server: Any, labeling_project: tuple[Any, Project]
) -> None:
    annotator, project = labeling_project
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    _log_in(page, live_server.url)
    page.wait_for_url(f"**/projects/{project.pk}/label/")
    first = _shown_assignment(page)
    first_lease = Assignment.objects.get(pk=first)

    page.keyboard.press("1")  # left is better
    page.keyboard.press("9")  # clearly
    assert page.is_checked("#choice-left") and page.is_checked("#strength-3")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    page.keyboard.press("Enter")
    _wait_for_new_panel(page, first)

    judged = Judgment.objects.get(annotator=annotator, comparison=first_lease.comparison)
    assert judged.choice == first_lease.shown_left  # left on screen = the canonical side shown
    assert judged.strength == 3
    assert judged.time_spent_ms is not None and judged.time_spent_ms > 0

    second = _shown_assignment(page)
    page.keyboard.press("t")
    assert page.is_disabled("#strength-1")  # a tie has no strength
    page.keyboard.press("Enter")
    _wait_for_new_panel(page, second)
    second_lease = Assignment.objects.get(pk=second)
    tie = Judgment.objects.get(annotator=annotator, comparison=second_lease.comparison)
    assert (tie.choice, tie.strength) == ("tie", None)
    assert page.inner_text("[data-testid=done-today]") == "2"

    third = _shown_assignment(page)
    page.keyboard.press("u")
    _wait_for_new_panel(page, third)
    assert not Judgment.objects.filter(pk=tie.pk).exists()
    back = Assignment.objects.get(annotator=annotator, status=AssignmentStatus.ACTIVE)
    assert back.comparison_id == second_lease.comparison_id
    assert back.shown_left == second_lease.shown_left
    assert _shown_assignment(page) == back.pk
    assert "taken back" in page.inner_text("#label-panel")
    assert Judgment.objects.filter(annotator=annotator).count() == 1
    assert errors == []
    page.close()


def test_judging_works_without_javascript_on_a_narrow_screen(
    browser: Any, live_server: Any, labeling_project: tuple[Any, Project]
) -> None:
    annotator, project = labeling_project
    context = browser.new_context(java_script_enabled=False, viewport={"width": 420, "height": 900})
    page = context.new_page()
    _log_in(page, live_server.url)
    page.wait_for_url(f"**/projects/{project.pk}/label/")
    first = _shown_assignment(page)
    left, right = (
        page.locator("#response-left").bounding_box(),
        page.locator("#response-right").bounding_box(),
    )
    assert left is not None and right is not None
    assert right["y"] >= left["y"] + left["height"]  # narrow screen: stacked, not side by side

    page.click("button#submit-button")  # nothing chosen: the page says so, with a 400
    assert "Pick a side" in page.inner_text("#label-error")

    page.check("#choice-right")
    page.check("#strength-2")
    page.click("button#submit-button")
    page.wait_for_url(f"**/projects/{project.pk}/label/")
    assert _shown_assignment(page) != first
    lease = Assignment.objects.get(pk=first)
    judgment = Judgment.objects.get(annotator=annotator, comparison=lease.comparison)
    assert judgment.shown_choice == "right"
    assert judgment.strength == 2
    assert judgment.time_spent_ms is None
    context.close()
