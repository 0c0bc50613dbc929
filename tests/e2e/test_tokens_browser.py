"""The Tokens page in a real browser, by keyboard: an admin creates an annotator's token (the key
shown once, in the swapped panel) and revokes it. Also proves the suite's CSP net catches a
violation (tests/conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from rest_framework.authtoken.models import Token

from labeling.roles import ADMIN_GROUP
from tests.factories import UserFactory

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCREENSHOT = Path(__file__).resolve().parents[2] / "var" / "screenshots" / "tokens.png"


@pytest.fixture
def admin_page(browser: Any, live_server: Any) -> Any:
    UserFactory.create(username="boss", role=ADMIN_GROUP)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/accounts/login/")
    page.focus("input[name=username]")
    page.keyboard.type("boss")
    page.keyboard.press("Tab")
    page.keyboard.type("pw")
    page.keyboard.press("Enter")
    page.wait_for_url("**/projects/")
    yield page
    page.close()


def test_create_and_revoke_a_token_by_keyboard(admin_page: Any, live_server: Any) -> None:
    page = admin_page
    annotator = UserFactory.create(username="ann1")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_server.url}/tokens/")
    page.focus("#token-user")
    page.keyboard.press("End")  # boss, then ann1 in name order: pick ann1 from the keyboard
    page.keyboard.press("Home")
    assert page.eval_on_selector("#token-user", "s => s.selectedOptions[0].text") == "ann1"
    page.keyboard.press("Tab")  # to "Create token"
    assert page.evaluate("document.activeElement.textContent") == "Create token"
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid=new-token]")
    key = Token.objects.get(user=annotator).key
    assert page.input_value("#new-token-key") == key
    assert page.evaluate("document.activeElement.id") == "new-token-key"  # ready to copy
    assert page.locator("[data-token-user=ann1] code").inner_text() == key[:6] + "…"
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    page.on("dialog", lambda dialog: dialog.accept())
    page.focus("[data-token-user=ann1] button")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Token of ann1 revoked")
    assert not Token.objects.filter(user=annotator).exists()
    assert page.locator("[data-token-user=ann1]").count() == 0
    page.reload()
    assert key not in page.content()
    assert errors == []


def test_the_csp_net_catches_a_violation(browser: Any, admin_page: Any, live_server: Any) -> None:
    page = admin_page
    page.goto(f"{live_server.url}/tokens/")
    page.evaluate("document.body.setAttribute('style', 'color: red')")
    page.evaluate(
        "const s = document.createElement('script'); s.textContent = 'window.ran = 1';"
        "document.body.appendChild(s)"
    )
    page.wait_for_timeout(300)
    assert page.evaluate("window.ran") is None  # the inline script did not run
    caught = list(browser.violations)
    browser.violations.clear()  # seen on purpose: not a failure of this test
    assert any("style-src" in line for line in caught), caught
    assert any("script-src" in line for line in caught), caught
