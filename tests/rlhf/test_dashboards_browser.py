"""The quality dashboards in a real browser (headless Chromium): the project page's label quality
(reliability, flags) and gold accuracy, the Checkpoints page's human leaderboard, and a round's
signals with the flags that warn of a collapse. What an admin sees, not what a view returns."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from labeling import services as labeling_services
from labeling.models import Judgment, Side
from rlhf.models import Round
from tests.factories import UserFactory
from tests.labeling.planted import CONSISTENT, RANDOM, comparison_add, planted_project

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(browser: Any, live_server: Any) -> Iterator[Any]:
    UserFactory.create(username="boss", role="admin")
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", "pw")
    page.keyboard.press("Enter")
    page.wait_for_url("**/projects/")
    yield page
    page.close()
    assert errors == []


def _row(page: Any, testid: str, username: str) -> Any:
    return page.locator(f'[data-testid="{testid}"]', has_text=username).first


def test_project_page_shows_reliability_and_gold_accuracy(page: Any, live_server: Any) -> None:
    project = planted_project()
    # Ten gold items answered "a": the consistent annotators get them right, the random one wrong.
    users = {
        j.annotator.username: j.annotator for j in Judgment.objects.select_related("annotator")
    }
    for index in range(10):
        gold = comparison_add(project, f"gold-{index}")
        labeling_services.comparison_gold_set(comparison=gold, answer="a")
        for username in (*CONSISTENT, RANDOM):
            Judgment.objects.create(
                annotator=users[username],
                comparison=gold,
                choice="a" if username != RANDOM else "b",
                strength=2,
                shown_left=Side.A,
            )

    page.goto(f"{live_server.url}/projects/{project.pk}/")
    quality = page.locator("#label-quality")
    assert quality.is_visible()
    good, random_ = (
        _row(page, "quality-annotator", "good0"),
        _row(page, "quality-annotator", RANDOM),
    )
    ds_good = float(good.locator('[data-testid="reliability-ds"]').inner_text())
    ds_random = float(random_.locator('[data-testid="reliability-ds"]').inner_text())
    assert ds_random < 0.4 < ds_good
    assert "unreliable" in random_.inner_text().lower()

    gold = page.locator("#gold-accuracy")
    assert gold.is_visible()
    assert "10 gold comparisons" in gold.inner_text()
    flagged = _row(page, "gold-annotator", RANDOM)
    assert "flagged" in (flagged.get_attribute("class") or "")
    assert "0%" in flagged.inner_text()
    assert "flagged" not in (_row(page, "gold-annotator", "good0").get_attribute("class") or "")


def test_checkpoints_page_plots_the_leaderboard(
    page: Any, live_server: Any, round_history: Any, demo_project: Any
) -> None:
    rounds = round_history(demo_project, 2)
    page.goto(f"{live_server.url}/projects/{demo_project.pk}/checkpoints/")
    rows = page.locator("[data-leaderboard]")
    assert rows.count() == 3  # the base and both rounds' checkpoints
    for index in range(3):
        whiskers = rows.nth(index).locator(".whiskers")
        assert whiskers.is_visible()
        label = str(whiskers.get_attribute("aria-label"))
        assert label.startswith("strength ") and " interval " in label
        # the interval bar is drawn with a width, inside the axis
        assert rows.nth(index).locator(".ci").bounding_box()["width"] > 0
    newest = rounds[-1].checkpoint_id
    line = page.locator(f'[data-checkpoint="{newest}"] [data-win-rate]')
    assert f"vs #{rounds[-1].parent_checkpoint_id}" in line.inner_text()


def test_round_page_warns_of_word_salad_and_a_wrong_kl(
    page: Any, live_server: Any, round_history: Any, demo_project: Any
) -> None:
    (round_,) = round_history(demo_project, 1)
    policy = Round.objects.get(pk=round_.pk).checkpoint
    assert policy is not None
    policy.metrics = {
        "evaluate": {
            "win_rate": 0.92,
            "kl": 0.75,
            "kl_direct": 6.0,
            "perplexity_base_candidate": 80.0,
            "perplexity_base_parent": 3.0,
            "mean_length_candidate": 2.0,
            "mean_length_parent": 12.0,
        }
    }
    policy.save(update_fields=["metrics"])
    page.goto(f"{live_server.url}/rounds/{round_.pk}/")
    signals = page.locator('[data-testid="round-signals"]')
    assert "Reward model says: new policy wins 92% vs parent" in signals.inner_text()
    for code in ("kl_estimate_off", "kl_high", "fluency_collapse", "length_collapse"):
        assert page.locator(f'[data-flag="{code}"]').is_visible(), code
    assert "80.0 vs 3.0" in page.locator('[data-flag="fluency_collapse"]').inner_text()
