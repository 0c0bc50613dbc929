"""The review pages in a real browser (headless Chromium), keyboard only: filter, move to a
comparison, adjudicate and comment; the invite link from creation to a logged-in new user."""

from __future__ import annotations

import os
from typing import Any

import pytest

from labeling.models import Adjudication, Comparison, Judgment, Project, ReviewComment
from tests.factories import (
    ComparisonFactory,
    ProjectFactory,
    PromptFactory,
    ResponseFactory,
    UserFactory,
)

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def review_project(db: Any) -> tuple[Any, Project, Any]:
    reviewer: Any = UserFactory.create(username="rev")
    voters = [UserFactory.create(username=f"voter{i}") for i in range(2)]
    project: Any = ProjectFactory.create(name="Python help")
    project.reviewers.add(reviewer)
    target = None
    for topic in ("sorting", "reverse a list", "dictionaries"):
        prompt: Any = PromptFactory.create(
            project=project, messages=[{"role": "user", "content": f"How do I do {topic}?"}]
        )
        comparison: Any = ComparisonFactory.create(
            project=project,
            prompt=prompt,
            response_a=ResponseFactory.create(prompt=prompt, text=f"Answer A on {topic}"),
            response_b=ResponseFactory.create(prompt=prompt, text=f"Answer B on {topic}"),
        )
        for voter, choice in zip(voters, ("a", "b"), strict=True):
            Judgment.objects.create(
                annotator=voter, comparison=comparison, choice=choice, strength=2, shown_left="a"
            )
        Comparison.objects.filter(pk=comparison.pk).update(judgment_count=2)
        if topic == "reverse a list":
            target = comparison
    return reviewer, project, target


def _settled(page: Any) -> None:
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')"
    )


def test_keyboard_only_review(
    browser: Any, live_server: Any, review_project: tuple[Any, Project, Any]
) -> None:
    _, project, target = review_project
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "rev")
    page.fill("input[name=password]", "pw")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/projects/{project.pk}/review/")
    assert page.locator("[data-testid=review-row]").count() == 3

    page.keyboard.press("/")
    page.keyboard.type("reverse")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=review-row]').length === 1"
    )
    _settled(page)
    assert "q=reverse" in page.url  # the filter is in the address: shareable, back works
    page.keyboard.press("Escape")  # out of the text box: the keys move again
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/review/{target.pk}/")
    assert page.locator("[data-testid=vote]").count() == 2

    page.keyboard.press("d")  # the adjudication's first choice: A
    page.keyboard.press("ArrowRight")  # B
    page.keyboard.press("ArrowRight")  # Tie
    page.keyboard.press("Tab")  # strength (none for a tie)
    page.keyboard.press("Tab")  # note
    page.keyboard.type("Both say the same thing")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=adjudication]').textContent.includes('Tie')"
    )
    _settled(page)
    adjudication = Adjudication.objects.get(comparison=target)
    assert (adjudication.choice, adjudication.note) == ("tie", "Both say the same thing")

    page.keyboard.press("c")
    page.keyboard.type("Check the second vote")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=comments]').textContent"
        ".includes('Check the second vote')"
    )
    assert ReviewComment.objects.get(comparison=target).text == "Check the second vote"
    assert errors == []


def test_invite_link_from_admin_to_new_user(browser: Any, live_server: Any, db: Any) -> None:
    UserFactory.create(username="boss", role="admin")
    project: Any = ProjectFactory.create(name="Invites")
    page = browser.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", "pw")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/projects/")
    page.goto(f"{live_server.url}/projects/{project.pk}/people/")
    page.select_option("form[action$='/people/invites/'] select[name=role]", "annotator")
    page.locator("form[action$='/people/invites/'] button[type=submit]").click()
    link = page.locator("[data-testid=invite-url]").input_value()
    assert "/invites/" in link

    fresh = browser.new_context().new_page()
    fresh.goto(link)
    fresh.fill("input[name=username]", "newbie")
    fresh.fill("input[name=password]", "c0rrect-horse")
    fresh.fill("input[name=password_again]", "c0rrect-horse")
    fresh.keyboard.press("Enter")
    fresh.wait_for_url(f"**/projects/{project.pk}/**")
    assert project.annotators.filter(username="newbie").exists()


def test_review_and_people_pages_have_no_serious_axe_violations(
    browser: Any, live_server: Any, review_project: tuple[Any, Project, Any]
) -> None:
    from tests.e2e.test_accessibility_browser import _context, _violations

    _, project, target = review_project
    UserFactory.create(username="boss", role="admin")
    voter = Judgment.objects.filter(comparison=target).first()
    assert voter is not None
    context = _context(browser)
    page = context.new_page()
    seen: dict[str, Any] = {}
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", "pw")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    for name, path in {
        "review": f"/projects/{project.pk}/review/?disagreement=on",
        "review detail": f"/projects/{project.pk}/review/{target.pk}/",
        "people": f"/projects/{project.pk}/people/",
    }.items():
        page.goto(f"{live_server.url}{path}")
        seen[name] = _violations(page)
    page.locator("form[action$='/people/invites/'] button[type=submit]").click()
    link = page.locator("[data-testid=invite-url]").input_value()
    seen["people with a link"] = _violations(page)
    fresh = _context(browser).new_page()  # logged out
    fresh.goto(link)
    seen["invite"] = _violations(fresh)
    voter.annotator.set_password("pw")
    voter.annotator.save()
    other = _context(browser).new_page()
    other.goto(f"{live_server.url}/accounts/login/")
    other.fill("input[name=username]", voter.annotator.username)
    other.fill("input[name=password]", "pw")
    other.keyboard.press("Enter")
    other.wait_for_url(lambda url: "/accounts/login/" not in url)
    project.annotators.add(voter.annotator)
    other.goto(f"{live_server.url}/projects/{project.pk}/history/")
    seen["history"] = _violations(other)
    other.goto(f"{live_server.url}/projects/{project.pk}/history/{voter.pk}/edit/")
    seen["judgment edit"] = _violations(other)
    failing = {name: found for name, found in seen.items() if found}
    assert failing == {}, failing
