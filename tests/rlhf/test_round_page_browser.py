"""The round page in a real browser (headless Chromium): the progress bar follows the worker's
progress through htmx polling, and polling stops once the round is over."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from rlhf import runs, selectors, services, tasks
from rlhf.models import Round, RoundStatus, RunStatus, TrainingRun
from tests.factories import UserFactory

# Playwright's sync API runs an event loop in this thread; the ORM calls below are still sync.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCREENSHOT = Path(__file__).resolve().parents[2] / "var" / "screenshots" / "round.png"


def _bar(page: Any, step: str) -> str:
    return str(page.get_attribute(f'[data-step="{step}"] [role=progressbar]', "aria-valuenow"))


def test_progress_bar_follows_the_run_and_polling_stops(
    browser: Any,
    live_server: Any,
    judged_project: Any,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    UserFactory.create(username="boss", role="admin")
    monkeypatch.setattr(
        tasks, "training_run_enqueue", lambda run_id: None
    )  # this test plays the worker
    round_ = services.round_launch(project=judged_project, method="dpo")
    reward = selectors.round_runs(round_)[0]
    runs.training_run_claim(run_id=reward.pk)
    history = [{"phase": "reward", "step": s, "loss": 1.0 / s} for s in range(1, 4)]
    TrainingRun.objects.filter(pk=reward.pk).update(
        progress={"phase": "reward", "step": 1, "total": 10, "eta_s": 9.0},
        metrics_history=history,
    )

    page = browser.new_page(viewport={"width": 1280, "height": 1200})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", "pw")
    page.keyboard.press("Enter")
    page.wait_for_url("**/projects/")  # where admins land
    page.goto(f"{live_server.url}/rounds/{round_.pk}/")
    assert _bar(page, "reward") == "10"
    assert page.locator("svg.chart").count() == 1

    # The worker reports progress: the page catches up on its next poll, without a reload.
    TrainingRun.objects.filter(pk=reward.pk).update(
        progress={"phase": "reward", "step": 6, "total": 10, "eta_s": 4.0}
    )
    page.wait_for_function(
        """() => document.querySelector('[data-step="reward"] [role=progressbar]')
              .getAttribute('aria-valuenow') === '60'""",
        timeout=10_000,
    )
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # The round fails: the reason shows up, the retry button appears, polling stops.
    TrainingRun.objects.filter(pk=reward.pk).update(
        status=RunStatus.FAILED, error="RuntimeError: out of memory", finished_at=timezone.now()
    )
    Round.objects.filter(pk=round_.pk).update(
        status=RoundStatus.FAILED, error="reward: RuntimeError: out of memory"
    )
    page.wait_for_selector("[data-testid=round-error]", timeout=10_000)
    assert "out of memory" in page.inner_text("[data-testid=round-error]")
    assert page.locator("button", has_text="Retry").count() == 1
    assert page.get_attribute("#round-live", "hx-trigger") is None
    assert errors == []
