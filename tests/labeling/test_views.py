"""The htmx pages: login landing, access by role, labeling page (full page and fragment), the
judge / skip / undo round trips with and without htmx, errors, history and query counts.

Over 500 lines because it mirrors ``labeling/views.py`` one to one (one test module per module).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from labeling import services
from labeling.models import Assignment, AssignmentStatus, Judgment, Project
from tests.factories import ComparisonFactory, ProjectFactory, PromptFactory, ResponseFactory

HTMX = {"HX-Request": "true"}


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _label_url(project: Project) -> str:
    return reverse("label", args=[project.pk])


def _lease(user: Any, project: Project, *, shown_left: str | None = None) -> Assignment:
    lease = services.assignment_claim_next(annotator=user, project=project)
    assert lease is not None
    if shown_left is not None:
        Assignment.objects.filter(pk=lease.pk).update(shown_left=shown_left)
        lease.refresh_from_db()
    return lease


# --- login and access ------------------------------------------------------------------------


def test_login_page_renders(client: Client, db: Any) -> None:
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b'name="username"' in response.content


def test_anonymous_is_sent_to_login(client: Client, project: Project) -> None:
    response = client.get(_label_url(project))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_annotator_lands_on_labeling_page_after_login(
    client: Client, annotator: Any, project: Project
) -> None:
    response = client.post(reverse("login"), {"username": "ann1", "password": "pw"}, follow=True)
    assert response.redirect_chain[-1][0] == _label_url(project)
    assert response.status_code == 200


def test_annotator_in_several_projects_gets_a_picker(annotator: Any, project: Project) -> None:
    second: Any = ProjectFactory.create(name="second project")
    second.annotators.add(annotator)
    response = _client(annotator).get(reverse("home"))
    assert response.status_code == 200
    assert _label_url(project).encode() in response.content
    assert _label_url(second).encode() in response.content


def test_admin_lands_on_project_list_after_login(client: Client, admin_user: Any) -> None:
    response = client.post(reverse("login"), {"username": "admin", "password": "pw"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("project_list")
    assert response.status_code == 200


def test_annotator_gets_403_on_project_pages(annotator: Any, project: Project) -> None:
    client = _client(annotator)
    assert client.get(reverse("project_list")).status_code == 403
    assert client.get(reverse("project_detail", args=[project.pk])).status_code == 403


def test_annotator_gets_404_on_a_project_they_are_not_in(annotator: Any, db: Any) -> None:
    foreign: Any = ProjectFactory.create(name="foreign")
    ComparisonFactory.create(project=foreign)
    client = _client(annotator)
    assert client.get(_label_url(foreign)).status_code == 404
    assert client.get(reverse("history", args=[foreign.pk])).status_code == 404
    assert client.post(_label_url(foreign), {"choice": "tie"}).status_code == 404
    assert not Assignment.objects.filter(project=foreign).exists()


# --- project pages (admins) --------------------------------------------------------------------


def test_admin_creates_a_project(admin_user: Any, annotator: Any) -> None:
    client = _client(admin_user)
    response = client.post(
        reverse("project_list"),
        {
            "name": "Helpfulness",
            "guidelines": "Be *kind*.",
            "judgments_per_comparison": "3",
            "lease_minutes": "15",
            "max_pairs_per_prompt": "6",
            "annotators": [annotator.pk],
        },
    )
    project = Project.objects.get(name="Helpfulness")
    assert response.status_code == 302
    assert response["Location"] == reverse("project_detail", args=[project.pk])
    assert (project.judgments_per_comparison, project.lease_minutes) == (3, 15)
    assert project.max_pairs_per_prompt == 6
    assert list(project.annotators.all()) == [annotator]
    assert project.created_by == admin_user


def test_project_create_errors_are_422(admin_user: Any, project: Project) -> None:
    client = _client(admin_user)
    response = client.post(
        reverse("project_list"),
        {"name": "x", "judgments_per_comparison": "0", "lease_minutes": "10"},
    )
    assert response.status_code == 422
    duplicate = client.post(
        reverse("project_list"),
        {"name": project.name, "judgments_per_comparison": "1", "lease_minutes": "10"},
    )
    assert duplicate.status_code == 409
    assert b"already exists" in duplicate.content
    assert Project.objects.count() == 1


def test_project_overview_shows_queue_status(
    admin_user: Any, annotator: Any, project: Project, queue: list[Any]
) -> None:
    lease = _lease(annotator, project)
    services.judgment_submit(annotator=annotator, comparison=lease.comparison, choice="tie")
    _lease(annotator, project)
    client = _client(admin_user)
    response = client.get(reverse("project_detail", args=[project.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-testid="open">4<' in body
    assert 'data-testid="complete">1<' in body
    assert 'data-testid="live-leases">1<' in body
    assert "ann1" in body
    for page in ("upload", "export", "rounds", "checkpoints"):
        assert f"/projects/{project.pk}/{page}/" in body
    fragment = client.get(reverse("project_detail", args=[project.pk]), headers=HTMX)
    assert b"<html" not in fragment.content
    assert b'id="queue-status"' in fragment.content


def test_project_list_lists_projects(admin_user: Any, project: Project, queue: list[Any]) -> None:
    response = _client(admin_user).get(reverse("project_list"))
    assert response.status_code == 200
    assert project.name.encode() in response.content


# --- the labeling page -------------------------------------------------------------------------


def test_label_page_full_and_fragment(annotator: Any, project: Project, queue: list[Any]) -> None:
    client = _client(annotator)
    full = client.get(_label_url(project))
    assert full.status_code == 200
    assert b"<html" in full.content
    assert b'id="label-panel"' in full.content
    assert b"js/label.js" in full.content
    assert "HX-Request" in full["Vary"]

    fragment = client.get(_label_url(project), headers=HTMX)
    assert fragment.status_code == 200
    assert b"<html" not in fragment.content
    assert fragment.content.lstrip().startswith(b'<div id="label-panel"')
    assert "HX-Request" in fragment["Vary"]


@pytest.mark.parametrize("shown_left", ["a", "b"])
def test_page_shows_responses_in_the_shown_order(
    annotator: Any, project: Project, shown_left: str
) -> None:
    prompt: Any = PromptFactory.create(project=project)
    alpha: Any = ResponseFactory.create(prompt=prompt, text="ALPHA response")
    beta: Any = ResponseFactory.create(prompt=prompt, text="BETA response")
    ComparisonFactory.create(project=project, prompt=prompt, response_a=alpha, response_b=beta)
    _lease(annotator, project, shown_left=shown_left)
    body = _client(annotator).get(_label_url(project)).content.decode()
    left_first = body.index("ALPHA") < body.index("BETA")
    assert left_first == (shown_left == "a")


def test_multi_turn_prompt_is_a_conversation_with_roles(annotator: Any, project: Project) -> None:
    prompt: Any = PromptFactory.create(
        project=project,
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hi **there**"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": [{"type": "text", "text": "Now in `code`"}]},
        ],
    )
    ComparisonFactory.create(project=project, prompt=prompt)
    body = _client(annotator).get(_label_url(project)).content.decode()
    for role in ("system", "user", "assistant"):
        assert f'class="turn turn-{role}"' in body
    assert "<strong>there</strong>" in body
    assert "<code>code</code>" in body


def test_response_markdown_is_rendered_and_sanitized(annotator: Any, project: Project) -> None:
    prompt: Any = PromptFactory.create(project=project)
    evil: Any = ResponseFactory.create(
        prompt=prompt, text="```python\nx = 1\n```\n<script>alert(1)</script>"
    )
    ComparisonFactory.create(project=project, prompt=prompt, response_a=evil)
    body = _client(annotator).get(_label_url(project)).content.decode()
    assert '<pre><code class="language-python">x = 1' in body
    assert "<script>alert(1)" not in body


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
@pytest.mark.parametrize("shown_left", ["a", "b"])
@pytest.mark.parametrize(("shown_choice", "canonical_if_a_left"), [("left", "a"), ("right", "b")])
def test_submit_stores_the_canonical_choice(
    annotator: Any,
    project: Project,
    queue: list[Any],
    htmx: bool,
    shown_left: str,
    shown_choice: str,
    canonical_if_a_left: str,
) -> None:
    lease = _lease(annotator, project, shown_left=shown_left)
    data = {
        "assignment": lease.pk,
        "choice": shown_choice,
        "strength": "3",
        "rationale": "clearer",
        "flags": ["factual_error"],
        "time_spent_ms": "4200",
    }
    response = _client(annotator).post(_label_url(project), data, headers=HTMX if htmx else None)

    judgment = Judgment.objects.get(annotator=annotator, comparison=lease.comparison)
    expected = (
        canonical_if_a_left if shown_left == "a" else {"a": "b", "b": "a"}[canonical_if_a_left]
    )
    assert judgment.choice == expected
    assert judgment.shown_left == shown_left
    assert judgment.shown_choice == shown_choice
    assert (judgment.strength, judgment.rationale, judgment.flags) == (
        3,
        "clearer",
        ["factual_error"],
    )
    assert judgment.time_spent_ms == 4200
    if htmx:
        assert response.status_code == 200
        assert b"<html" not in response.content
        next_lease = Assignment.objects.get(annotator=annotator, status=AssignmentStatus.ACTIVE)
        assert next_lease.comparison_id != lease.comparison_id
        assert f'name="assignment" value="{next_lease.pk}"'.encode() in response.content
    else:
        assert response.status_code == 303
        assert response["Location"] == _label_url(project)


def test_submit_without_javascript_stores_null_time(
    annotator: Any, project: Project, queue: list[Any]
) -> None:
    lease = _lease(annotator, project)
    _client(annotator).post(
        _label_url(project), {"assignment": lease.pk, "choice": "tie", "time_spent_ms": ""}
    )
    judgment = Judgment.objects.get(annotator=annotator)
    assert judgment.time_spent_ms is None
    assert (judgment.choice, judgment.strength) == ("tie", None)


def test_leftover_strength_is_dropped_for_tie(
    annotator: Any, project: Project, queue: list[Any]
) -> None:
    lease = _lease(annotator, project)
    _client(annotator).post(
        _label_url(project), {"assignment": lease.pk, "choice": "both_bad", "strength": "2"}
    )
    judgment = Judgment.objects.get(annotator=annotator)
    assert (judgment.choice, judgment.strength) == ("both_bad", None)


def test_prg_then_get_shows_the_next_comparison(
    annotator: Any, project: Project, queue: list[Any]
) -> None:
    client = _client(annotator)
    lease = _lease(annotator, project)
    response = client.post(
        _label_url(project), {"assignment": lease.pk, "choice": "tie"}, follow=True
    )
    assert response.status_code == 200
    current = Assignment.objects.get(annotator=annotator, status=AssignmentStatus.ACTIVE)
    assert current.comparison_id != lease.comparison_id
    assert f'name="assignment" value="{current.pk}"'.encode() in response.content


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"choice": "left"}, b"A winning side needs a strength: press 7, 8, 9 or 0"),
        ({"choice": "sideways"}, b"Select a valid choice"),
        ({}, b"Pick a side"),
        ({"choice": "left", "strength": "9"}, b"Select a valid choice"),
    ],
    ids=["strength-missing", "bad-choice", "no-choice", "bad-strength"],
)
def test_bad_judgments_are_422_and_store_nothing(
    annotator: Any, project: Project, queue: list[Any], htmx: bool, data: dict, message: bytes
) -> None:
    lease = _lease(annotator, project)
    response = _client(annotator).post(
        _label_url(project),
        {"assignment": lease.pk, "rationale": "kept", **data},
        headers=HTMX if htmx else None,
    )
    assert response.status_code == 422
    assert message in response.content
    assert b'role="alert"' in response.content
    assert b">kept</textarea>" in response.content  # the annotator's input survives
    assert (b"<html" in response.content) is not htmx
    assert not Judgment.objects.exists()
    lease.refresh_from_db()
    assert lease.status == AssignmentStatus.ACTIVE


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_submit_on_someone_elses_lease_is_409(
    annotator: Any, other_annotator: Any, project: Project, queue: list[Any], htmx: bool
) -> None:
    theirs = _lease(other_annotator, project)
    response = _client(annotator).post(
        _label_url(project),
        {"assignment": theirs.pk, "choice": "tie"},
        headers=HTMX if htmx else None,
    )
    assert response.status_code == 409
    assert b"not assigned to you" in response.content
    assert not Judgment.objects.exists()


def test_submit_on_a_taken_comparison_is_409(
    annotator: Any, other_annotator: Any, project: Project
) -> None:
    ComparisonFactory.create(project=project)
    lease = _lease(annotator, project)
    Assignment.objects.filter(pk=lease.pk).update(
        leased_at=lease.leased_at.replace(year=2000), expires_at=lease.leased_at.replace(year=2001)
    )
    _lease(other_annotator, project)
    response = _client(annotator).post(
        _label_url(project), {"assignment": lease.pk, "choice": "tie"}, headers=HTMX
    )
    assert response.status_code == 409
    assert b"taken by others" in response.content
    assert not Judgment.objects.exists()


def test_double_submit_stores_one_judgment(
    annotator: Any, project: Project, queue: list[Any]
) -> None:
    client = _client(annotator)
    lease = _lease(annotator, project)
    data = {"assignment": lease.pk, "choice": "right", "strength": "1"}
    assert client.post(_label_url(project), data, headers=HTMX).status_code == 200
    assert client.post(_label_url(project), data, headers=HTMX).status_code == 200
    assert Judgment.objects.filter(annotator=annotator).count() == 1


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_skip(annotator: Any, project: Project, queue: list[Any], htmx: bool) -> None:
    client = _client(annotator)
    lease = _lease(annotator, project)
    response = client.post(
        reverse("label_skip", args=[project.pk]),
        {"assignment": lease.pk},
        headers=HTMX if htmx else None,
    )
    lease.refresh_from_db()
    assert lease.status == AssignmentStatus.SKIPPED
    if htmx:
        assert response.status_code == 200
        assert b"Skipped" in response.content
    else:
        assert response.status_code == 303
        assert b"Skipped" in client.get(response["Location"]).content
    nxt = Assignment.objects.get(annotator=annotator, status=AssignmentStatus.ACTIVE)
    assert nxt.comparison_id != lease.comparison_id


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_undo_brings_the_comparison_back_on_the_same_sides(
    annotator: Any, project: Project, queue: list[Any], htmx: bool
) -> None:
    client = _client(annotator)
    lease = _lease(annotator, project, shown_left="b")
    client.post(_label_url(project), {"assignment": lease.pk, "choice": "left", "strength": "2"})
    assert Judgment.objects.get().choice == "b"

    response = client.post(reverse("label_undo", args=[project.pk]), headers=HTMX if htmx else None)
    assert response.status_code == (200 if htmx else 303)
    assert not Judgment.objects.exists()
    again = Assignment.objects.get(annotator=annotator, status=AssignmentStatus.ACTIVE)
    assert (again.comparison_id, again.shown_left) == (lease.comparison_id, "b")
    if htmx:
        assert f'name="assignment" value="{again.pk}"'.encode() in response.content
        assert b"taken back" in response.content


def test_undo_with_nothing_to_undo_is_422(annotator: Any, project: Project) -> None:
    response = _client(annotator).post(reverse("label_undo", args=[project.pk]), headers=HTMX)
    assert response.status_code == 422
    assert b"no judgment to undo" in response.content


def test_empty_queue_state(annotator: Any, project: Project) -> None:
    response = _client(annotator).get(_label_url(project))
    assert response.status_code == 200
    assert "All done — nothing left to judge".encode() in response.content
    assert b'id="judge-form"' not in response.content
    assert b'id="undo-form"' in response.content


def test_last_judgment_leads_to_the_empty_state(annotator: Any, project: Project) -> None:
    ComparisonFactory.create(project=project)
    lease = _lease(annotator, project)
    response = _client(annotator).post(
        _label_url(project), {"assignment": lease.pk, "choice": "tie"}, headers=HTMX
    )
    assert b"All done" in response.content


def test_progress_counts(annotator: Any, project: Project, queue: list[Any]) -> None:
    client = _client(annotator)
    lease = _lease(annotator, project)
    client.post(_label_url(project), {"assignment": lease.pk, "choice": "tie"})
    body = client.get(_label_url(project)).content.decode()
    assert 'data-testid="done-today">1<' in body
    assert 'data-testid="remaining">4<' in body


def test_guidelines_are_rendered_in_a_details_panel(
    annotator: Any, project: Project, queue: list[Any]
) -> None:
    body = _client(annotator).get(_label_url(project)).content.decode()
    assert '<details class="guidelines' in body
    assert "<strong>correct</strong>" in body


def test_key_legend_is_on_the_page(annotator: Any, project: Project, queue: list[Any]) -> None:
    body = _client(annotator).get(_label_url(project)).content.decode()
    assert 'class="legend"' in body
    for key in ("<kbd>T</kbd>", "<kbd>B</kbd>", "<kbd>R</kbd>", "<kbd>S</kbd>", "<kbd>U</kbd>"):
        assert key in body


# --- history -----------------------------------------------------------------------------------


def test_history_shows_only_own_judgments(
    annotator: Any, other_annotator: Any, project: Project
) -> None:
    for text in ("MINE prompt", "THEIRS prompt"):  # k = 1: the queue hands out one each
        prompt: Any = PromptFactory.create(
            project=project, messages=[{"role": "user", "content": text}]
        )
        ComparisonFactory.create(project=project, prompt=prompt)
    for user, rationale in ((annotator, "my reason"), (other_annotator, "SECRET of ann2")):
        lease = _lease(user, project)
        services.judgment_submit(
            annotator=user, comparison=lease.comparison, choice="tie", rationale=rationale
        )
    body = _client(annotator).get(reverse("history", args=[project.pk])).content.decode()
    assert "MINE prompt" in body and "my reason" in body
    assert "THEIRS prompt" not in body and "SECRET of ann2" not in body


def test_history_is_newest_first_and_paginated(annotator: Any, project: Project) -> None:
    for _ in range(27):
        ComparisonFactory.create(project=project)
    for _ in range(27):
        lease = _lease(annotator, project)
        services.judgment_submit(annotator=annotator, comparison=lease.comparison, choice="tie")
    client = _client(annotator)
    first = client.get(reverse("history", args=[project.pk]))
    assert first.status_code == 200
    assert first.context["page"].paginator.count == 27
    assert len(first.context["page"].object_list) == 25
    newest = Judgment.objects.filter(annotator=annotator).order_by("-created_at", "-id").first()
    assert first.context["page"].object_list[0] == newest
    second = client.get(reverse("history", args=[project.pk]) + "?page=2")
    assert len(second.context["page"].object_list) == 2


# --- query counts ------------------------------------------------------------------------------


def test_label_page_query_count(
    annotator: Any, project: Project, queue: list[Any], django_assert_max_num_queries: Any
) -> None:
    client = _client(annotator)
    client.get(_label_url(project))  # the first visit claims the lease
    # session, user, project, lease (+savepoint), lease with content, 2 progress counts, role
    with django_assert_max_num_queries(10):
        response = client.get(_label_url(project))
    assert response.status_code == 200


def test_submit_query_count(
    annotator: Any, project: Project, queue: list[Any], django_assert_max_num_queries: Any
) -> None:
    client = _client(annotator)
    lease = _lease(annotator, project)
    # submit + next claim in one transaction, then the page reads (18 when they were two)
    with django_assert_max_num_queries(15):
        response = client.post(
            _label_url(project),
            {"assignment": lease.pk, "choice": "left", "strength": "2"},
            headers=HTMX,
        )
    assert response.status_code == 200


def test_expired_session_on_htmx_sends_the_browser_to_login(
    client: Client, project: Project
) -> None:
    response = client.post(
        _label_url(project),
        {"choice": "tie"},
        headers={**HTMX, "HX-Current-URL": f"http://testserver{_label_url(project)}"},
    )
    assert response.status_code == 200
    assert (
        response["HX-Redirect"] == f"{reverse('login')}?next=%2Fprojects%2F{project.pk}%2Flabel%2F"
    )


def test_logout_gives_back_leases(
    client: Any, project: Any, queue: list[Any], annotator: Any
) -> None:
    lease = services.assignment_claim_next(annotator=annotator, project=project)
    assert lease is not None
    client.force_login(annotator)
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    lease.refresh_from_db()
    assert lease.status == AssignmentStatus.RELEASED


def test_error_pages_explain(client: Any, project: Any, annotator: Any) -> None:
    client.force_login(annotator)
    response = client.get(f"/projects/{project.pk}/")
    assert response.status_code == 403
    assert b"Not allowed" in response.content
    missing = client.get("/projects/999999/label/")
    assert missing.status_code == 404
    assert b"not a member" in missing.content


@pytest.mark.parametrize("htmx", [False, True])
def test_admin_switches_queue_order_on_the_project_page(
    admin_user: Any, project: Project, htmx: bool
) -> None:
    client = _client(admin_user)
    page = client.get(reverse("project_detail", args=[project.pk])).content.decode()
    assert 'id="queue-order"' in page
    assert '<option value="fifo" selected>' in page
    url = reverse("queue_order_set", args=[project.pk])
    response = client.post(url, {"queue_order": "uncertainty"}, headers=HTMX if htmx else {})
    project.refresh_from_db()
    assert project.queue_order == "uncertainty"
    if htmx:
        assert response.status_code == 200
        body = response.content.decode()
        assert b"<html" not in response.content
        assert body.lstrip().startswith('<section id="queue-order"')
        assert '<option value="uncertainty" selected>' in body
        assert "Saved: Most uncertain for the reward model first." in body
    else:
        assert response.status_code == 303
        assert response["Location"] == reverse("project_detail", args=[project.pk])
        follow = client.get(response["Location"]).content.decode()
        assert "Queue order: Most uncertain for the reward model first." in follow


@pytest.mark.parametrize("htmx", [False, True])
def test_bad_queue_order_changes_nothing(admin_user: Any, project: Project, htmx: bool) -> None:
    client = _client(admin_user)
    url = reverse("queue_order_set", args=[project.pk])
    response = client.post(url, {"queue_order": "random"}, headers=HTMX if htmx else {})
    project.refresh_from_db()
    assert project.queue_order == "fifo"
    if htmx:
        assert response.status_code == 422  # a page's refusal (labeling.middleware)
        assert "queue_order: Select a valid choice." in response.content.decode()
    else:
        assert response.status_code == 303
        follow = client.get(response["Location"]).content.decode()
        assert "queue_order: Select a valid choice." in follow


def test_annotator_cannot_switch_queue_order(annotator: Any, project: Project) -> None:
    response = _client(annotator).post(
        reverse("queue_order_set", args=[project.pk]), {"queue_order": "uncertainty"}
    )
    assert response.status_code == 403
    project.refresh_from_db()
    assert project.queue_order == "fifo"


def test_a_page_refusal_is_422_and_the_api_keeps_400(admin_user: Any, project: Project) -> None:
    """labeling.middleware: an HTML 400 to a page's POST becomes 422 (htmx swaps it in DEBUG too);
    API answers and GET pages are left alone."""
    client = _client(admin_user)
    page = client.post(reverse("project_list"), {"name": ""}, headers=HTMX)
    assert page.status_code == 422 and page["Content-Type"].startswith("text/html")
    api = client.post("/api/v1/projects/", {"name": ""}, content_type="application/json")
    assert api.status_code == 400
