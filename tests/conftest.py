"""Shared fixtures: users in their roles, a project with a filled queue."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labeling.models import Project
from labeling.roles import ADMIN_GROUP
from tests.factories import ComparisonFactory, ProjectFactory, UserFactory

# --- safe by default: throttles and CSP (helper "safe") ----------------------------------------


@pytest.fixture(autouse=True)
def _fresh_throttles() -> Iterator[None]:
    """API throttles count in the default cache, which outlives a test: each test starts with
    none spent. The rates themselves stay the production ones (tests/labeling/api/test_throttles)."""
    from django.core.cache import cache

    cache.clear()
    yield


class CSPWatchedBrowser:
    """The Chromium browser, with every page it opens watched for Content-Security-Policy
    violations (``securitypolicyviolation`` events and Chromium's console reports); the
    ``_no_csp_violations`` fixture fails the test that caused any."""

    SCRIPT = """document.addEventListener("securitypolicyviolation", (e) => console.error(
        "CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
        " at " + e.sourceFile + ":" + e.lineNumber + " " + (e.sample || "")));"""

    def __init__(self, browser: Any) -> None:
        self._browser = browser
        self.violations: list[str] = []
        self.console: list[str] = []

    def _on_console(self, message: Any) -> None:
        text = f"[{message.type}] {message.text}"
        self.console.append(text)
        if "Content Security Policy" in message.text or "CSP violation" in message.text:
            self.violations.append(text)

    def watch(self, context: Any) -> Any:
        context.add_init_script(self.SCRIPT)
        context.on("console", self._on_console)
        return context

    def new_context(self, **kwargs: Any) -> Any:
        return self.watch(self._browser.new_context(**kwargs))

    def new_page(self, **kwargs: Any) -> Any:
        page = self._browser.new_page(**kwargs)
        self.watch(page.context)
        return page

    def __getattr__(self, name: str) -> Any:
        return getattr(self._browser, name)


@pytest.fixture(autouse=True)
def _no_csp_violations(request: pytest.FixtureRequest) -> Iterator[None]:
    """A browser test fails on any CSP violation seen while it ran."""
    if "browser" not in request.fixturenames:
        yield
        return
    watched = request.getfixturevalue("browser")
    watched.violations.clear()
    yield
    violations, watched.violations[:] = list(watched.violations), []
    assert not violations, "Content-Security-Policy violations:\n" + "\n".join(violations)


# --- end safe by default ------------------------------------------------------------------------


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """One node id per test. Schemathesis names its items per operation (``test[GET /api/…]``)
    but, under pytest 9, leaves them all the test function's node id; pytest-xdist's file
    scheduler (``make test`` runs ``-n 2 --dist loadfile``) keys tests by node id and would run
    one of them. Such an item gets the id its name says."""
    for item in items:
        module, _, name = item.nodeid.rpartition("::")
        if module and name != item.name and item.name.startswith(f"{name}["):
            item._id = item._id.with_params(item.name[len(name) + 1 : -1])  # type: ignore[attr-defined]


@pytest.fixture
def admin_user(db: Any) -> Any:
    return UserFactory.create(username="admin", role=ADMIN_GROUP)


@pytest.fixture
def annotator(db: Any) -> Any:
    return UserFactory.create(username="ann1")


@pytest.fixture
def other_annotator(db: Any) -> Any:
    return UserFactory.create(username="ann2")


@pytest.fixture
def project(db: Any, annotator: Any, other_annotator: Any) -> Project:
    project = ProjectFactory.create()
    project.annotators.add(annotator, other_annotator)
    return project


@pytest.fixture
def queue(project: Project) -> list[Any]:
    """Five open comparisons in the project, in queue order."""
    return [ComparisonFactory.create(project=project) for _ in range(5)]


CHROMIUM = "/usr/bin/chromium"  # Debian's (make chromium); never a downloaded Playwright build
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium for the browser tests (one per test module)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (make chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield CSPWatchedBrowser(browser)  # helper "safe": fails a test on any CSP violation
        browser.close()
