"""The launch form in a real browser (headless Chromium), keyboard only: pick a method with the
arrow keys (its defaults swap in), change a setting, see the preview follow, launch with Enter."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from rlhf import services, tasks
from rlhf.models import Checkpoint, Round
from tests.factories import UserFactory
from tests.rlhf.test_services import judged_pairs

# Playwright's sync API runs an event loop in this thread; the ORM calls below are still sync.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCREENSHOT = Path(__file__).resolve().parents[2] / "var" / "screenshots" / "launch.png"


def _idle(page: Any) -> None:
    # A function, not an expression string: Playwright evals a bare expression, which the CSP blocks.
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-settling')")


def _admin_page(browser: Any, live_server: Any) -> tuple[Any, list[str]]:
    """A page logged in as an admin, and the list its script errors go to."""
    UserFactory.create(username="boss", role="admin")
    page = browser.new_page(viewport={"width": 1280, "height": 1200})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", "pw")
    page.keyboard.press("Enter")
    page.wait_for_url("**/projects/")
    return page, errors


def test_launch_a_round_with_the_keyboard(
    browser: Any,
    live_server: Any,
    judged_project: Any,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tasks, "training_run_enqueue", lambda run_id: None)  # no worker here
    page, errors = _admin_page(browser, live_server)
    page.goto(f"{live_server.url}/projects/{judged_project.pk}/rounds/")
    page.wait_for_selector("[data-testid=launch-steps]")  # the preview loads itself

    page.focus("#method-dpo")
    page.keyboard.press("ArrowDown")  # the next method: IPO; its defaults swap in
    page.wait_for_selector("#method-ipo:checked")
    _idle(page)
    assert page.evaluate("document.activeElement.id") == "method-ipo"  # focus kept
    assert "IPO loss" in page.inner_text("[data-testid=method-help]")
    for _ in range(40):  # Tab on to the policy's step budget
        if page.evaluate("document.activeElement.name") == "policy.max_steps":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "policy.max_steps"
    page.keyboard.press("Control+A")
    page.keyboard.type("6")
    page.keyboard.press("Tab")  # a change previews the round with the form's values
    page.wait_for_function(
        "() => document.querySelector('[data-testid=launch-steps]').innerText.includes('6 steps')"
    )
    _idle(page)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    page.focus('[name="policy.max_steps"]')
    page.keyboard.press("Enter")  # submits the form
    page.wait_for_url("**/rounds/*/")
    round_ = Round.objects.get(project=judged_project)
    assert round_.method == "ipo" and round_.config["policy"]["max_steps"] == 6
    assert page.url.endswith(f"/rounds/{round_.pk}/")
    assert "Round 1 launched from checkpoint #" in page.inner_text("#round-live")
    assert errors == []
    page.close()


def test_the_launch_form_says_whether_it_promotes_the_pending_candidate_first(
    browser: Any,
    live_server: Any,
    pending_candidate: Checkpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A candidate humans preferred: the preview says the launch promotes it first; unticking
    the box (keyboard) says the round starts from the champion; launching with it ticked
    records the promotion on the round page."""
    monkeypatch.setattr(tasks, "training_run_enqueue", lambda run_id: None)  # no worker here
    candidate, demo_project = pending_candidate, pending_candidate.project
    judged_pairs(candidate, services.checkpoint_champion(project=demo_project), wins=40, losses=10)
    page, errors = _admin_page(browser, live_server)
    page.goto(f"{live_server.url}/projects/{demo_project.pk}/rounds/")
    pending = page.wait_for_selector("[data-testid=pending-candidate]")
    assert pending.get_attribute("data-gate") == "passes"
    assert "Launching promotes it first" in pending.inner_text()
    assert page.is_checked("input[name=promote_pending]")
    page.focus("input[name=promote_pending]")
    page.keyboard.press("Space")  # untick: the preview follows
    page.wait_for_function(
        "() => document.querySelector('[data-testid=pending-candidate]')"
        ".innerText.includes('Not asked to promote it')"
    )
    _idle(page)
    assert page.evaluate("document.activeElement.name") == "promote_pending"  # focus kept
    page.keyboard.press("Space")  # tick again
    page.wait_for_function(
        "() => document.querySelector('[data-testid=pending-candidate]')"
        ".innerText.includes('Launching promotes it first')"
    )
    _idle(page)
    page.click("#launch-button")
    page.wait_for_url("**/rounds/*/")
    decision = page.inner_text("[data-testid=launch-decision]")
    assert f"round 1's candidate #{candidate.pk}" in decision and "promoted" in decision
    assert Checkpoint.objects.champion_of(demo_project) == candidate
    assert errors == []
    page.close()
