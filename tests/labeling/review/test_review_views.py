"""The review pages, an annotator's judgment edit and history, the people pages and the invite
link: roles enforced (annotators 403, reviewers review but do not manage), filters, htmx
fragments, query counts, and no inline script or style (the strict CSP)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from labeling import services
from labeling.models import (
    Adjudication,
    Comparison,
    Judgment,
    JudgmentRevision,
    Project,
    ProjectInvite,
    ReviewComment,
)
from tests.factories import (
    ComparisonFactory,
    ProjectFactory,
    PromptFactory,
    ResponseFactory,
    UserFactory,
)

Judge = Any

HTMX = {"HX-Request": "true"}


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def reviewer(project: Project) -> Any:
    user = UserFactory.create(username="rev")
    project.reviewers.add(user)
    return user


def _comparison(project: Project, name: str, *, batch: str = "") -> Any:
    prompt = PromptFactory.create(
        project=project, external_id=name, messages=[{"role": "user", "content": f"Ask {name}"}]
    )
    return ComparisonFactory.create(
        project=project,
        prompt=prompt,
        batch=batch,
        response_a=ResponseFactory.create(prompt=prompt, text=f"A answers {name}"),
        response_b=ResponseFactory.create(prompt=prompt, text=f"B answers {name}"),
    )


@pytest.fixture
def judge(db: Any) -> Any:
    """Store a judgment directly; users are found by name, created when new (no password reset,
    which would log the tests' clients out)."""

    def make(
        comparison: Any, username: str, choice: str, strength: int | None, **extra: Any
    ) -> Any:
        user, _ = get_user_model().objects.get_or_create(username=username)
        judgment = Judgment.objects.create(
            annotator=user,
            comparison=comparison,
            choice=choice,
            strength=strength,
            shown_left="a",
            **extra,
        )
        Comparison.objects.filter(pk=comparison.pk).update(
            judgment_count=comparison.judgments.count()
        )
        return judgment

    return make


@pytest.fixture
def judged(project: Project, judge: Judge) -> dict[str, Any]:
    agreed = _comparison(project, "agreed", batch="round-1")
    judge(agreed, "ann1", "a", 3)
    judge(agreed, "ann2", "a", 2)
    split = _comparison(project, "split", batch="round-2")
    judge(split, "ann1", "a", 3, rationale="A is correct")
    judge(split, "ann2", "b", 1, flags=["unsafe"])
    gold = _comparison(project, "gold")
    Comparison.objects.filter(pk=gold.pk).update(gold_answer="a")
    judge(gold, "ann2", "b", 1)
    unjudged = _comparison(project, "unjudged")
    return {"agreed": agreed, "split": split, "gold": gold, "unjudged": unjudged}


def _listed(client: Client, project: Project, **params: Any) -> list[int]:
    response = client.get(reverse("review", args=[project.pk]), params)
    assert response.status_code == 200, response.content
    return [int(pk) for pk in re.findall(rb'data-comparison="(\d+)"', response.content)]


NO_INLINE = (
    re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>"),
    re.compile(rb"\sstyle="),
    re.compile(rb"\son[a-z]+="),
)


def _csp_clean(content: bytes) -> None:
    for pattern in NO_INLINE:
        assert not pattern.search(content), pattern.pattern


# --- roles --------------------------------------------------------------------------------------


def test_annotators_get_403_on_review_and_people_pages(
    project: Project, annotator: Any, judged: dict[str, Any]
) -> None:
    client = _client(annotator)
    comparison = judged["split"]
    for url in (
        reverse("review", args=[project.pk]),
        reverse("review_detail", args=[project.pk, comparison.pk]),
        reverse("people", args=[project.pk]),
    ):
        assert client.get(url).status_code == 403, url
    for url, data in (
        (reverse("review_comment", args=[project.pk, comparison.pk]), {"text": "x"}),
        (reverse("review_adjudicate", args=[project.pk, comparison.pk]), {"choice": "tie"}),
        (reverse("people", args=[project.pk]), {"username": "ann1", "role": "reviewer"}),
        (reverse("invite_create", args=[project.pk]), {"role": "reviewer", "valid_days": 7}),
    ):
        assert client.post(url, data).status_code == 403, url
    assert not ReviewComment.objects.exists() and not Adjudication.objects.exists()
    assert not project.reviewers.exists() and not ProjectInvite.objects.exists()


def test_reviewers_review_but_do_not_manage(
    project: Project, reviewer: Any, judged: dict[str, Any]
) -> None:
    client = _client(reviewer)
    assert client.get(reverse("review", args=[project.pk])).status_code == 200
    assert client.get(reverse("people", args=[project.pk])).status_code == 403
    assert (
        client.post(reverse("people", args=[project.pk]), {"username": "rev", "role": "annotator"})
    ).status_code == 403
    assert client.get(reverse("project_detail", args=[project.pk])).status_code == 403
    rounds = reverse("rlhf:project_rounds", args=[project.pk])
    assert client.get(rounds).status_code == 403
    assert client.post(rounds, {"method": "dpo"}).status_code == 403
    # Reviewing another project is not allowed.
    other = Project.objects.create(name="other")
    assert client.get(reverse("review", args=[other.pk])).status_code == 403
    # Home lists the project to review.
    home = client.get(reverse("home"))
    assert reverse("review", args=[project.pk]).encode() in home.content


def test_anonymous_is_sent_to_login(client: Client, project: Project) -> None:
    response = client.get(reverse("review", args=[project.pk]))
    assert response.status_code == 302 and reverse("login") in response["Location"]


# --- the review list ------------------------------------------------------------------------------


def test_filters(project: Project, reviewer: Any, judged: dict[str, Any]) -> None:
    client = _client(reviewer)
    ids = {name: c.pk for name, c in judged.items()}
    assert _listed(client, project) == sorted(ids.values(), reverse=True)
    assert _listed(client, project, disagreement="on") == [ids["split"]]
    assert _listed(client, project, flag="unsafe") == [ids["split"]]
    assert _listed(client, project, flag="any") == [ids["split"]]
    assert _listed(client, project, flag="other") == []
    assert _listed(client, project, gold="yes") == [ids["gold"]]
    assert ids["gold"] not in _listed(client, project, gold="no")
    assert set(_listed(client, project, annotator="ann1")) == {ids["agreed"], ids["split"]}
    assert _listed(client, project, round=2) == [ids["split"]]
    assert set(_listed(client, project, round=0)) == {ids["gold"], ids["unjudged"]}
    assert _listed(client, project, q="B answers agreed") == [ids["agreed"]]
    assert _listed(client, project, q="ask unjudged") == [ids["unjudged"]]
    services.comparison_adjudicate(
        comparison=judged["split"], adjudicator=reviewer, choice="a", strength=2
    )
    assert _listed(client, project, adjudicated="yes") == [ids["split"]]
    assert ids["split"] not in _listed(client, project, adjudicated="no")
    bad = client.get(reverse("review", args=[project.pk]), {"gold": "maybe"})
    assert bad.status_code == 422 and b"Gold" in bad.content


def test_the_list_is_paginated_in_constant_queries(
    project: Project, reviewer: Any, judge: Judge, django_assert_num_queries: Any
) -> None:
    client = _client(reviewer)
    url = reverse("review", args=[project.pk])

    def add(count: int, offset: int) -> None:
        for index in range(count):
            comparison = _comparison(project, f"c{offset + index}")
            judge(comparison, "ann1", "a", 2)
            judge(comparison, "ann2", "b", 2, flags=["other"])

    add(2, 0)
    client.get(url)  # warm the session
    # session, user, project, reviewer check, count, rows, votes
    with django_assert_num_queries(8):
        small = client.get(url, {"disagreement": "on"})
    add(40, 2)
    with django_assert_num_queries(8):
        large = client.get(url, {"disagreement": "on"})
    assert small.content.count(b"data-review-row") == 2
    assert large.content.count(b"data-review-row") == 25
    assert b"Page 1 of 2" in large.content
    assert b"disagreement=on&amp;page=2" in large.content
    fragment = client.get(url, {"page": "2", "disagreement": "on"}, headers=HTMX)
    assert fragment.content.lstrip().startswith(b'<section id="review-results"')
    assert fragment.content.count(b"data-review-row") == 17
    _csp_clean(large.content)


# --- one comparison: votes, comments, adjudication ---------------------------------------------


def test_detail_shows_every_vote_with_earlier_values(
    project: Project, reviewer: Any, judged: dict[str, Any]
) -> None:
    split = judged["split"]
    mine = Judgment.objects.get(comparison=split, annotator__username="ann1")
    services.judgment_edit(
        annotator=mine.annotator, judgment=mine, choice="tie", strength=None, rationale="unsure"
    )
    response = _client(reviewer).get(reverse("review_detail", args=[project.pk, split.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count('data-testid="vote"') == 2
    assert "A answers split" in body and "B answers split" in body
    assert "unsafe" in body and "unsure" in body
    assert "a (3) until" in body  # the edited vote's earlier value
    assert 'data-testid="votes-decide">undecided<' in body  # one tie, one b
    _csp_clean(response.content)


def test_comment_and_adjudicate_with_htmx_and_without(
    project: Project, reviewer: Any, judged: dict[str, Any]
) -> None:
    split = judged["split"]
    client = _client(reviewer)
    comment_url = reverse("review_comment", args=[project.pk, split.pk])
    fragment = client.post(comment_url, {"text": "Look at B's safety flag"}, headers=HTMX)
    assert fragment.status_code == 200
    assert fragment.content.lstrip().startswith(b'<section id="review-comments"')
    assert b"Look at B&#x27;s safety flag" in fragment.content
    plain = client.post(comment_url, {"text": "second"})
    assert plain.status_code == 303
    empty = client.post(comment_url, {"text": ""}, headers=HTMX)
    assert empty.status_code == 422 and b'role="alert"' in empty.content
    assert list(split.comments.values_list("text", flat=True)) == [
        "Look at B's safety flag",
        "second",
    ]

    adjudicate_url = reverse("review_adjudicate", args=[project.pk, split.pk])
    missing = client.post(adjudicate_url, {"choice": "a"}, headers=HTMX)
    assert missing.status_code == 422 and b"strength" in missing.content
    assert not Adjudication.objects.exists()
    done = client.post(
        adjudicate_url, {"choice": "a", "strength": "3", "note": "B is unsafe"}, headers=HTMX
    )
    assert done.status_code == 200
    assert done.content.lstrip().startswith(b'<section id="review-adjudication"')
    adjudication = Adjudication.objects.get(comparison=split)
    assert (adjudication.choice, adjudication.strength, adjudication.adjudicator) == (
        "a",
        3,
        reviewer,
    )
    assert b"A is better" in done.content and b"rev" in done.content
    assert set(Judgment.objects.filter(comparison=split).values_list("choice", flat=True)) == {
        "a",
        "b",
    }
    cleared = client.post(adjudicate_url, {"action": "clear"})
    assert cleared.status_code == 303 and not Adjudication.objects.exists()
    # A comparison of another project is not reachable through this one.
    other = _comparison(Project.objects.create(name="other"), "x")
    assert (
        client.post(reverse("review_comment", args=[project.pk, other.pk]), {"text": "x"})
    ).status_code == 404


# --- history and edits ---------------------------------------------------------------------------


def test_history_shows_the_texts_and_the_edit_round_trip(
    project: Project, annotator: Any, judged: dict[str, Any]
) -> None:
    client = _client(annotator)
    history = client.get(reverse("history", args=[project.pk]))
    body = history.content.decode()
    assert "A answers split" in body and "B answers split" in body and "Ask split" in body
    mine = Judgment.objects.get(comparison=judged["split"], annotator=annotator)
    edit_url = reverse("judgment_edit", args=[project.pk, mine.pk])
    assert edit_url in body
    _csp_clean(history.content)

    page = client.get(edit_url)
    assert page.status_code == 200
    assert re.search(rb'value="left"[^>]*checked', page.content)  # as judged: A shown left
    assert re.search(rb'name="strength"[^>]*>.*?<option value="3" selected', page.content, re.S)
    _csp_clean(page.content)
    response = client.post(
        edit_url, {"choice": "right", "strength": "4", "rationale": "B after all"}
    )
    assert response.status_code == 303
    mine.refresh_from_db()
    assert (mine.choice, mine.strength, mine.rationale) == ("b", 4, "B after all")  # shown_left a
    assert JudgmentRevision.objects.get(judgment=mine).choice == "a"
    assert b"edited" in client.get(reverse("history", args=[project.pk])).content

    bad = client.post(edit_url, {"choice": "left"})
    assert bad.status_code == 422 and b"strength" in bad.content
    services.comparisons_close(comparison_ids=[judged["split"].pk])
    closed = client.post(edit_url, {"choice": "tie"})
    assert closed.status_code == 409 and b"closed" in closed.content
    assert Judgment.objects.get(pk=mine.pk).choice == "b"
    after = client.get(reverse("history", args=[project.pk])).content.decode()
    assert f'href="{edit_url}" data-testid="edit-link"' not in after
    assert "can no longer change" in after


def test_nobody_edits_anothers_judgment(
    project: Project, other_annotator: Any, annotator: Any, judged: dict[str, Any]
) -> None:
    mine = Judgment.objects.get(comparison=judged["split"], annotator=annotator)
    url = reverse("judgment_edit", args=[project.pk, mine.pk])
    assert _client(other_annotator).get(url).status_code == 404
    assert _client(other_annotator).post(url, {"choice": "tie"}).status_code == 404
    assert Judgment.objects.get(pk=mine.pk).choice == "a"


# --- people and invites ----------------------------------------------------------------------------


def test_admin_adds_and_removes_members(
    project: Project, admin_user: Any, annotator: Any, queue: list[Any]
) -> None:
    client = _client(admin_user)
    page = client.get(reverse("people", args=[project.pk]))
    assert page.status_code == 200 and b"ann1" in page.content
    _csp_clean(page.content)
    added = client.post(
        reverse("people", args=[project.pk]), {"username": "ann1", "role": "reviewer"}, headers=HTMX
    )
    assert added.status_code == 200 and added.content.lstrip().startswith(b'<div id="people"')
    assert project.reviewers.filter(pk=annotator.pk).exists()
    unknown = client.post(
        reverse("people", args=[project.pk]), {"username": "nobody", "role": "annotator"}
    )
    assert unknown.status_code == 422 and b"no user" in unknown.content
    lease = services.assignment_claim_next(annotator=annotator, project=project)
    assert lease is not None
    removed = client.post(
        reverse("people_remove", args=[project.pk]), {"user": annotator.pk, "role": "annotator"}
    )
    assert removed.status_code == 303
    assert not project.annotators.filter(pk=annotator.pk).exists()
    lease.refresh_from_db()
    assert lease.status == "released"
    assert project.reviewers.filter(pk=annotator.pk).exists()  # the other role stays


def test_invite_link_works_once(client: Client, project: Project, admin_user: Any) -> None:
    admin = _client(admin_user)
    created = admin.post(
        reverse("invite_create", args=[project.pk]),
        {"role": "reviewer", "note": "Dana", "valid_days": 3},
    )
    assert created.status_code == 201
    url = re.search(rb'data-testid="invite-url"', created.content) and re.search(
        rb'value="(http://testserver/invites/[^"]+/)"', created.content
    )
    assert url
    link = url.group(1).decode().removeprefix("http://testserver")
    token = link.rstrip("/").rsplit("/", 1)[1]
    invite = ProjectInvite.objects.get()
    assert token not in invite.token_hash and invite.token_hash == services.invite_token_hash(token)

    page = client.get(link)
    assert page.status_code == 200 and b"Join" in page.content
    assert page["Referrer-Policy"] == "same-origin"
    weak = client.post(link, {"username": "dana", "password": "x", "password_again": "x"})
    assert weak.status_code == 422
    assert not get_user_model().objects.filter(username="dana").exists()
    differ = client.post(
        link, {"username": "dana", "password": "tr0ub4dor&3x", "password_again": "other"}
    )
    assert differ.status_code == 422
    joined = client.post(
        link, {"username": "dana", "password": "tr0ub4dor&3x", "password_again": "tr0ub4dor&3x"}
    )
    assert joined.status_code == 303 and joined["Location"] == reverse("review", args=[project.pk])
    dana = get_user_model().objects.get(username="dana")
    assert dana.check_password("tr0ub4dor&3x")
    assert project.reviewers.filter(pk=dana.pk).exists()
    assert not project.annotators.filter(pk=dana.pk).exists()
    assert client.get(reverse("review", args=[project.pk])).status_code == 200  # logged in

    again = Client().post(
        link, {"username": "eve", "password": "tr0ub4dor&3x", "password_again": "tr0ub4dor&3x"}
    )
    assert again.status_code == 409 and b"used" in again.content
    assert not get_user_model().objects.filter(username="eve").exists()
    assert Client().get("/invites/not-a-token/").status_code == 404


def test_a_logged_in_user_joins_with_their_account_once(
    project: Project, admin_user: Any, annotator: Any
) -> None:
    """An invite to a second project, for someone with an account: one button, no new user."""
    other = ProjectFactory.create(name="second")
    invite, token = services.invite_create(project=other, role="annotator", created_by=admin_user)
    link = reverse("invite_accept", args=[token])
    users = get_user_model().objects.count()
    member = _client(annotator)
    page = member.get(link)
    assert page.status_code == 200 and b'data-testid="invite-join"' in page.content
    assert b"Join as ann1" in page.content and b'name="password"' not in page.content
    joined = member.post(link)
    assert joined.status_code == 303 and joined["Location"] == reverse("label", args=[other.pk])
    assert other.annotators.filter(pk=annotator.pk).exists()
    assert get_user_model().objects.count() == users  # nobody new
    invite.refresh_from_db()
    assert invite.used_by == annotator and invite.used_at is not None
    # the link works once: nobody else joins with it
    someone = UserFactory.create(username="someone")
    again = _client(someone).post(link)
    assert again.status_code == 409 and b"used" in again.content
    assert not other.annotators.filter(pk=someone.pk).exists()


def test_a_member_who_holds_the_role_already_leaves_the_link_unused(
    project: Project, admin_user: Any, annotator: Any
) -> None:
    invite, token = services.invite_create(project=project, role="annotator", created_by=admin_user)
    refused = _client(annotator).post(reverse("invite_accept", args=[token]))
    assert refused.status_code == 409 and b"already" in refused.content
    invite.refresh_from_db()
    assert invite.used_at is None  # still good for whom it was meant
    joined = Client().post(
        reverse("invite_accept", args=[token]),
        {"username": "newbie", "password": "tr0ub4dor&3x", "password_again": "tr0ub4dor&3x"},
    )
    assert joined.status_code == 303
    assert project.annotators.filter(username="newbie").exists()


def test_expired_and_withdrawn_invites_refuse(project: Project, admin_user: Any) -> None:
    invite, token = services.invite_create(project=project, role="annotator", created_by=admin_user)
    ProjectInvite.objects.filter(pk=invite.pk).update(expires_at=timezone.now() - timedelta(1))
    expired = Client().get(reverse("invite_accept", args=[token]))
    assert expired.status_code == 409 and b"expired" in expired.content
    fresh, fresh_token = services.invite_create(
        project=project, role="annotator", created_by=admin_user
    )
    response = _client(admin_user).post(reverse("invite_revoke", args=[project.pk, fresh.pk]))
    assert response.status_code == 303
    withdrawn = Client().post(
        reverse("invite_accept", args=[fresh_token]),
        {"username": "z", "password": "tr0ub4dor&3x", "password_again": "tr0ub4dor&3x"},
    )
    assert withdrawn.status_code == 409
    assert not get_user_model().objects.filter(username="z").exists()


def test_people_page_ids_are_unique(project: Project, admin_user: Any) -> None:
    content = _client(admin_user).get(reverse("people", args=[project.pk])).content
    ids = re.findall(rb'\sid="([^"]+)"', content)
    assert len(ids) == len(set(ids))
    for target in re.findall(rb'<label for="([^"]+)"', content):
        assert target in ids


def test_history_page_costs_the_same_queries_for_any_number_of_items(
    project: Project, annotator: Any, judge: Judge, django_assert_num_queries: Any
) -> None:
    client = _client(annotator)
    url = reverse("history", args=[project.pk])
    first = _comparison(project, "first")
    judge(first, "ann1", "a", 2)
    client.get(url)
    # session, user, project, count, the nav's admin check, the page with texts and edit state
    with django_assert_num_queries(6):
        small = client.get(url)
    for index in range(12):
        judge(_comparison(project, f"more{index}"), "ann1", "b", 1)
    long_text = "word " * 2000
    first.response_a.text = long_text
    first.response_a.save()
    with django_assert_num_queries(6):
        large = client.get(url)
    assert small.content.count(b'data-testid="history-item"') == 1
    assert large.content.count(b'data-testid="history-item"') == 13
    assert large.content.count(b'data-testid="edit-link"') == 13
    assert b"Shortened" in large.content and len(large.content) < 60_000
    # A closed comparison's judgment: its page says why and offers no form.
    services.comparisons_close(comparison_ids=[first.pk])
    mine = Judgment.objects.get(comparison=first)
    page = client.get(reverse("judgment_edit", args=[project.pk, mine.pk]))
    assert (
        b'data-testid="not-editable"' in page.content
        and b'<form method="post" class="judge"' not in page.content
    )
    assert b"word word" in page.content  # the full text


def test_detail_costs_the_same_queries_for_any_number_of_votes(
    project: Project, reviewer: Any, judge: Judge, django_assert_num_queries: Any
) -> None:
    client = _client(reviewer)
    comparison = _comparison(project, "many")
    judge(comparison, "v0", "a", 2)
    url = reverse("review_detail", args=[project.pk, comparison.pk])
    client.get(url)
    # session, user, project, admin and reviewer checks, comparison, votes, revisions, comments
    with django_assert_num_queries(9):
        client.get(url)
    for index in range(1, 8):
        vote = judge(comparison, f"v{index}", "b", 1)
        services.judgment_edit(annotator=vote.annotator, judgment=vote, choice="tie", strength=None)
        services.comparison_comment_add(comparison=comparison, author=reviewer, text=f"c{index}")
    with django_assert_num_queries(9):
        response = client.get(url)
    assert response.content.count(b'data-testid="vote"') == 8
