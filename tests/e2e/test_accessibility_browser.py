"""Accessibility basics in a real browser (headless Chromium): axe-core finds no serious or
critical violation (labels, names, contrast, landmarks, ARIA) on the main pages, the focus order
of the labeling page follows the task, and the labeling page stays light (HTML + CSS + JS).

axe-core is vendored in tests/e2e/vendor (MPL-2.0, unmodified) and injected by the test only;
the context bypasses the app's Content-Security-Policy for that injection alone."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import pytest

from labeling.models import Project
from rlhf import services, tasks
from rlhf.demo import demo_project_create
from rlhf.simulate import annotators_ensure, judge_in_process
from tests.factories import UserFactory

# Playwright's sync API runs an event loop in this thread; the ORM calls below are still sync.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).with_name("vendor") / "axe.min.js"
BLOCKING = ("serious", "critical")
PAGE_BUDGET = 60 * 1024  # bytes, cold: the labeling page's HTML + CSS + JS

RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 4).map(n => n.target.join(" ") + " :: " + n.failureSummary),
  }));
}"""


@pytest.fixture
def site(db: Any, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A demo project with judged comparisons, one round, an annotator and an admin."""
    settings.PAIRWISE_DATA_DIR = tmp_path / "data"
    settings.PAIRWISE_MIN_SNAPSHOT = 1
    monkeypatch.setattr(tasks, "training_run_enqueue", lambda run_id: None)
    project = demo_project_create(
        name="demo", train_prompts=6, held_out_prompts=2, annotators=("ann1",)
    ).project
    judges = [user for user, _ in annotators_ensure(project, 2)]
    judge_in_process(project=project, annotators=judges, rule="correct_polite", noise=0.0)
    services.round_launch(project=project, method="dpo", config={"snapshot": {"rounds": "all"}})
    demo_project_create(name="demo-open", train_prompts=3, held_out_prompts=0, annotators=("ann1",))
    UserFactory.create(username="boss", role="admin")
    ann1: Any = project.annotators.get(username="ann1")
    ann1.set_password("pw")
    ann1.save()
    return project


def _context(browser: Any) -> Any:
    return browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 1000})


def _log_in(page: Any, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pw")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    page.wait_for_load_state("load")


def _violations(page: Any) -> list[dict[str, Any]]:
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-settling')")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(RUN_AXE)
    return [v for v in found if v["impact"] in BLOCKING]


def test_the_main_pages_have_no_serious_axe_violations(
    browser: Any, live_server: Any, site: Project
) -> None:
    open_project = Project.objects.get(name="demo-open")
    round_ = site.rounds.get()
    context = _context(browser)
    page = context.new_page()
    seen: dict[str, list[dict[str, Any]]] = {}

    page.goto(f"{live_server.url}/accounts/login/")
    seen["login"] = _violations(page)

    _log_in(page, live_server.url, "ann1")
    page.goto(f"{live_server.url}/projects/{open_project.pk}/label/")
    seen["label"] = _violations(page)
    page.keyboard.press("1")
    page.keyboard.press("Enter")  # a form error: the alert, the kept input
    page.wait_for_selector("#label-error")
    seen["label with an error"] = _violations(page)
    page.goto(f"{live_server.url}/projects/{open_project.pk}/history/")
    seen["history"] = _violations(page)
    page.click(".nav-logout button")
    page.wait_for_url("**/accounts/login/")

    _log_in(page, live_server.url, "boss")
    admin_pages = {
        "projects": "/projects/",
        "project": f"/projects/{site.pk}/",
        "rounds": f"/projects/{site.pk}/rounds/",
        "round": f"/rounds/{round_.pk}/",
        "checkpoints": f"/projects/{site.pk}/checkpoints/",
        "upload": f"/projects/{site.pk}/upload/",
        "export": f"/projects/{site.pk}/export/",
        "api docs": "/api/v1/docs/",
    }
    for name, path in admin_pages.items():
        page.goto(f"{live_server.url}{path}")
        if name == "rounds":
            page.wait_for_selector("[data-testid=launch-steps]")
        seen[name] = _violations(page)
    page.goto(f"{live_server.url}/projects/{site.pk}/rounds/")
    page.wait_for_selector("[data-testid=launch-steps]")
    page.fill('[name="policy.beta"]', "0")
    page.click("#launch-button")
    page.wait_for_selector("[data-testid=launch-errors]")
    seen["rounds with an error"] = _violations(page)
    context.close()

    failing = {name: found for name, found in seen.items() if found}
    assert failing == {}, failing


def test_the_axe_check_catches_what_it_should(browser: Any) -> None:
    """The harness itself: a page with an unlabelled field and faint text fails it."""
    context = _context(browser)
    page = context.new_page()
    page.set_content(
        '<!doctype html><html lang="en"><head><title>bad</title></head><body><main>'
        '<input type="text"><p style="color:#bbb;background:#fff">faint</p></main></body></html>'
    )
    found = {v["id"] for v in _violations(page)}
    assert {"label", "color-contrast"} <= found
    context.close()


def test_the_labeling_page_focus_order_follows_the_task(
    browser: Any, live_server: Any, site: Project
) -> None:
    open_project = Project.objects.get(name="demo-open")
    context = _context(browser)
    page = context.new_page()
    _log_in(page, live_server.url, "ann1")
    page.goto(f"{live_server.url}/projects/{open_project.pk}/label/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")  # skip the navigation
    order: list[str] = []
    for _ in range(40):
        page.keyboard.press("Tab")
        name = page.evaluate(
            """() => { const e = document.activeElement;
                       if (!e.closest('#main')) return 'outside';
                       return e.name || e.id || e.tagName.toLowerCase(); }"""
        )
        order.append(name)
        if name == "submit-button":
            break
    assert "outside" not in order  # the skip link lands in the main content
    # Which side, then how much, then why, then submit: the order of the task.
    assert order.index("choice") < order.index("strength") < order.index("rationale")
    assert order.index("rationale") < order.index("submit-button")
    context.close()


def test_the_labeling_page_is_under_60_kb_cold(
    browser: Any, live_server: Any, site: Project
) -> None:
    """Bytes of the page's HTML + CSS + JS on a cold load, as production sends them: the HTML as
    rendered, the static files gzip-compressed (whitenoise serves its precompressed copies)."""
    open_project = Project.objects.get(name="demo-open")
    context = _context(browser)
    page = context.new_page()
    _log_in(page, live_server.url, "ann1")
    page.close()
    page = context.new_page()  # the session stays; the cache is a fresh page's (cold)
    page.route("**/*", lambda route: route.continue_())  # keeps the HTTP cache out
    loaded: list[Any] = []
    page.on("response", lambda response: loaded.append(response))
    page.goto(f"{live_server.url}/projects/{open_project.pk}/label/")
    page.wait_for_load_state("networkidle")
    sizes: dict[str, tuple[int, int]] = {}
    for response in loaded:
        kind = response.request.resource_type
        if kind not in ("document", "stylesheet", "script") or response.status != 200:
            continue
        body = response.body()
        wire = len(body) if kind == "document" else len(gzip.compress(body, 9))
        sizes[response.url.rsplit("/", 1)[-1] or "page"] = (len(body), wire)
    kinds = {response.request.resource_type for response in loaded}
    assert {"document", "stylesheet", "script"} <= kinds
    raw = sum(r for r, _ in sizes.values())
    wire = sum(w for _, w in sizes.values())
    print(f"labeling page cold: {wire} bytes sent ({raw} uncompressed): {sizes}")
    assert wire < PAGE_BUDGET, sizes
    context.close()
