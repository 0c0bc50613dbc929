"""The ranking page in a real browser (headless Chromium), keyboard only: the annotator lands on
it from login, moves responses with Shift+arrows, ties two with "=", submits with Enter; the
ranking and its derived judgments are stored. Also: the page has no inline script or style (the
strict Content-Security-Policy)."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

from labeling import services
from labeling.models import Judgment, Project, Ranking
from tests.factories import ProjectFactory, PromptFactory, ResponseFactory, UserFactory

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ranking_project(db: Any) -> tuple[Any, Project]:
    annotator: Any = UserFactory.create(username="ranker")
    project: Any = ProjectFactory.create(name="Rank them")
    project.annotators.add(annotator)
    services.project_depth_set(project=project, task_kind="ranking")
    for _ in range(2):
        prompt = PromptFactory.create(project=project)
        for i in range(4):
            ResponseFactory.create(prompt=prompt, text=f"Answer number {i} to {prompt.pk}.")
    services.ranking_sets_create(project=project, size=4)
    return annotator, project


def _order(page: Any) -> list[int]:
    return [
        int(v)
        for v in page.eval_on_selector_all(".rank-item", "els => els.map(e => e.dataset.response)")
    ]


def _ranks(page: Any) -> list[str]:
    return page.eval_on_selector_all(".rank-input", "els => els.map(e => e.value)")


def test_rank_with_the_keyboard_only(
    browser: Any, live_server: Any, ranking_project: tuple[Any, Project]
) -> None:
    annotator, project = ranking_project
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "ranker")
    page.fill("input[name=password]", "pw")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/projects/{project.pk}/rank/")  # the labeling page sent us here

    html = page.content()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert not re.search(r"\sstyle=", html), "style attribute"
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"

    lease = page.get_attribute("#rank-panel", "data-lease")
    r0, r1, r2, r3 = _order(page)
    assert page.evaluate("document.activeElement.dataset.response") == str(r0)
    for _ in range(3):
        page.keyboard.press("Shift+ArrowDown")  # r0 to the bottom
    assert _order(page) == [r1, r2, r3, r0]
    page.keyboard.press("1")  # select r1
    page.keyboard.press("Shift+ArrowDown")
    assert _order(page) == [r2, r1, r3, r0]
    page.keyboard.press("ArrowDown")  # select r3
    page.keyboard.press("=")  # tie it with r1
    assert _ranks(page) == ["1", "2", "2", "3"]
    assert "Tied" in page.inner_text("#rank-status")
    page.keyboard.press("Enter")
    page.wait_for_function(
        """old => document.querySelector('#rank-panel').dataset.lease !== old
            && !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')""",
        arg=lease,
    )

    ranking = Ranking.objects.get(annotator=annotator)
    assert ranking.order == [[r2], sorted([r1, r3]), [r0]]
    assert ranking.time_spent_ms is not None and ranking.time_spent_ms > 0
    assert Judgment.objects.filter(ranking=ranking).count() == 6
    assert Judgment.objects.filter(ranking=ranking, choice="tie").count() == 1
    assert page.inner_text("[data-testid=done-today]") == "1"
    # the next set is on screen, its first response focused: keep going with the keys
    assert page.evaluate("document.activeElement.classList.contains('rank-item')")
    page.keyboard.press("s")  # skip the second set
    page.wait_for_selector("#queue-empty")
    page.keyboard.press("u")  # take the ranking back: its set returns, shown as before
    page.wait_for_selector(".rank-item")
    assert _order(page) == [r0, r1, r2, r3]
    assert not Ranking.objects.exists() and not Judgment.objects.exists()
    assert errors == []
    page.close()


def test_onboarding_then_the_acceptable_check_with_the_keyboard(
    browser: Any, live_server: Any, db: Any
) -> None:
    from tests.factories import ComparisonFactory

    annotator: Any = UserFactory.create(username="newcomer")
    project: Any = ProjectFactory.create(name="Onboard me")
    project.annotators.add(annotator)
    services.project_depth_set(
        project=project,
        ask_acceptable=True,
        onboarding_required=True,
        qualification_items=1,
        qualification_pass_mark=1.0,
    )
    ComparisonFactory.create(project=project, gold_answer="b")
    ComparisonFactory.create(project=project)

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "newcomer")
    page.fill("input[name=password]", "pw")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/projects/{project.pk}/onboarding/")
    assert not re.search(r"\sstyle=|\son[a-z]+=", page.content())

    page.wait_for_function("() => document.activeElement.id === 'acknowledge'")
    page.keyboard.press("Enter")
    page.wait_for_selector("#qualification-form")
    page.keyboard.press("2")  # right is better: the gold answer
    page.wait_for_selector("#start-work")
    # In the live region after an htmx swap; in the page's messages after a plain POST (a key
    # pressed before htmx has processed the swapped-in form).
    page.wait_for_function("() => document.body.innerText.includes('Passed with 100%')")
    page.wait_for_function("() => document.activeElement.id === 'start-work'")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/projects/{project.pk}/label/")

    panel = page.get_attribute("#label-panel", "data-assignment")
    page.keyboard.press("1")
    page.keyboard.press("9")
    page.keyboard.press("n")  # not acceptable
    assert page.is_checked("#acceptable-no")
    page.keyboard.press("Enter")
    page.wait_for_function(
        """old => document.querySelector('#label-panel').dataset.assignment !== old
            && !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')""",
        arg=panel,
    )
    judgment = Judgment.objects.get(annotator=annotator)
    assert (judgment.strength, judgment.acceptable) == (3, False)
    assert errors == []
    page.close()
