"""The queue and judgment workflows: claim, expiry, k, idempotent submit, undo, skip."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError
from django.utils import timezone

from labeling import queue as queue_engine
from labeling import selectors, services
from labeling.models import Assignment, AssignmentStatus, ComparisonStatus, Judgment
from tests.factories import ComparisonFactory, UserFactory


def test_claim_returns_highest_priority_first(
    project: Any, queue: list[Any], annotator: Any
) -> None:
    urgent = ComparisonFactory.create(project=project, priority=5)
    lease = services.assignment_claim_next(annotator=annotator, project=project)
    assert lease is not None and lease.comparison_id == urgent.pk
    assert lease.shown_left in ("a", "b")


def test_claim_gives_back_open_lease(project: Any, queue: list[Any], annotator: Any) -> None:
    first = services.assignment_claim_next(annotator=annotator, project=project)
    again = services.assignment_claim_next(annotator=annotator, project=project)
    assert first is not None and again is not None and first.pk == again.pk


def test_k_is_never_exceeded_and_leases_block_slots(
    project: Any, annotator: Any, other_annotator: Any
) -> None:
    only = ComparisonFactory.create(project=project)
    lease = services.assignment_claim_next(annotator=annotator, project=project)
    assert lease is not None and lease.comparison_id == only.pk
    assert services.assignment_claim_next(annotator=other_annotator, project=project) is None


def test_expired_lease_frees_its_slot(project: Any, annotator: Any, other_annotator: Any) -> None:
    ComparisonFactory.create(project=project)
    now = timezone.now()
    lease = services.assignment_claim_next(annotator=annotator, project=project, now=now)
    later = now + timedelta(minutes=project.lease_minutes + 1)
    stolen = services.assignment_claim_next(annotator=other_annotator, project=project, now=later)
    assert lease is not None and stolen is not None and stolen.comparison_id == lease.comparison_id
    # The first annotator's late submit is refused: the slot is taken, k=1 holds.
    with pytest.raises(services.Conflict):
        services.judgment_submit(
            annotator=annotator, comparison=lease.comparison, choice="a", strength=2, now=later
        )


def test_expired_lease_submit_accepted_while_slot_free(project: Any, annotator: Any) -> None:
    ComparisonFactory.create(project=project)
    now = timezone.now()
    lease = services.assignment_claim_next(annotator=annotator, project=project, now=now)
    assert lease is not None
    late = now + timedelta(minutes=project.lease_minutes + 5)
    result = services.judgment_submit(
        annotator=annotator, comparison=lease.comparison, choice="b", strength=1, now=late
    )
    assert result.created and result.judgment.shown_left == lease.shown_left


def test_k2_two_annotators_then_complete(
    project: Any, annotator: Any, other_annotator: Any
) -> None:
    project.judgments_per_comparison = 2
    project.save()
    comparison = ComparisonFactory.create(project=project)
    for user in (annotator, other_annotator):
        lease = services.assignment_claim_next(annotator=user, project=project)
        assert lease is not None and lease.comparison_id == comparison.pk
        services.judgment_submit(annotator=user, comparison=comparison, choice="tie")
    comparison.refresh_from_db()
    assert comparison.judgment_count == 2 and comparison.status == ComparisonStatus.COMPLETE
    third = UserFactory.create(username="ann3")
    project.annotators.add(third)
    assert services.assignment_claim_next(annotator=third, project=project) is None


def test_annotator_never_judges_same_comparison_twice(project: Any, annotator: Any) -> None:
    project.judgments_per_comparison = 3
    project.save()
    comparison = ComparisonFactory.create(project=project)
    services.assignment_claim_next(annotator=annotator, project=project)
    services.judgment_submit(annotator=annotator, comparison=comparison, choice="a", strength=3)
    assert services.assignment_claim_next(annotator=annotator, project=project) is None


def test_submit_is_idempotent(project: Any, queue: list[Any], annotator: Any) -> None:
    lease = services.assignment_claim_next(annotator=annotator, project=project)
    assert lease is not None
    first = services.judgment_submit(
        annotator=annotator, comparison=lease.comparison, choice="a", strength=4, rationale="x"
    )
    retry = services.judgment_submit(
        annotator=annotator, comparison=lease.comparison, choice="b", strength=1
    )
    assert first.created and not retry.created
    assert retry.judgment.pk == first.judgment.pk and retry.judgment.choice == "a"
    assert Judgment.objects.count() == 1
    lease.refresh_from_db()
    assert lease.status == AssignmentStatus.DONE


@pytest.mark.parametrize(
    ("choice", "strength", "flags", "field"),
    [
        ("left", 2, [], "choice"),
        ("tie", 2, [], "strength"),
        ("a", None, [], "strength"),
        ("a", 7, [], "strength"),
        ("a", 2, ["nonsense"], "flags"),
    ],
)
def test_submit_rejects_bad_input(
    project: Any,
    queue: list[Any],
    annotator: Any,
    choice: str,
    strength: Any,
    flags: list[str],
    field: str,
) -> None:
    lease = services.assignment_claim_next(annotator=annotator, project=project)
    assert lease is not None
    with pytest.raises(services.LabelingError) as error:
        services.judgment_submit(
            annotator=annotator,
            comparison=lease.comparison,
            choice=choice,
            strength=strength,
            flags=flags,
        )
    assert error.value.field == field
    assert Judgment.objects.count() == 0


def test_submit_without_lease_is_refused(project: Any, queue: list[Any], annotator: Any) -> None:
    with pytest.raises(services.Conflict):
        services.judgment_submit(annotator=annotator, comparison=queue[0], choice="tie")


def test_undo_reopens_and_releases(project: Any, queue: list[Any], annotator: Any) -> None:
    lease = services.assignment_claim_next(annotator=annotator, project=project)
    assert lease is not None
    services.judgment_submit(
        annotator=annotator, comparison=lease.comparison, choice="a", strength=2
    )
    nxt = services.assignment_claim_next(annotator=annotator, project=project)
    assert nxt is not None and nxt.comparison_id != lease.comparison_id
    back = services.judgment_undo(annotator=annotator, project=project)
    assert back.comparison_id == lease.comparison_id and back.shown_left == lease.shown_left
    lease.comparison.refresh_from_db()
    assert lease.comparison.judgment_count == 0 and lease.comparison.status == ComparisonStatus.OPEN
    nxt.refresh_from_db()
    assert nxt.status == AssignmentStatus.RELEASED
    assert not Judgment.objects.exists()
    with pytest.raises(services.LabelingError):
        services.judgment_undo(annotator=annotator, project=project)


def test_undo_refused_when_closed(project: Any, queue: list[Any], annotator: Any) -> None:
    lease = services.assignment_claim_next(annotator=annotator, project=project)
    assert lease is not None
    services.judgment_submit(annotator=annotator, comparison=lease.comparison, choice="tie")
    services.comparisons_close(comparison_ids=[lease.comparison_id])
    with pytest.raises(services.Conflict):
        services.judgment_undo(annotator=annotator, project=project)
    assert Judgment.objects.count() == 1


def test_skip_moves_on_and_never_returns(project: Any, annotator: Any) -> None:
    first, second = (
        ComparisonFactory.create(project=project),
        ComparisonFactory.create(project=project),
    )
    lease = services.assignment_claim_next(annotator=annotator, project=project)
    assert lease is not None and lease.comparison_id == first.pk
    services.assignment_skip(annotator=annotator, assignment=lease)
    nxt = services.assignment_claim_next(annotator=annotator, project=project)
    assert nxt is not None and nxt.comparison_id == second.pk
    services.assignment_skip(annotator=annotator, assignment=nxt)
    assert services.assignment_claim_next(annotator=annotator, project=project) is None


def test_comparisons_create_dedupes_pairs(project: Any) -> None:
    from tests.factories import PromptFactory

    prompt = PromptFactory.create(project=project)
    responses = services.responses_add(prompt=prompt, texts=["x", "y", "z", "x"], model_name="m")
    assert len({r.pk for r in responses}) == 3
    made = services.comparisons_create(project=project, pairs=services.pairs_all(responses))
    assert len(made) == 3
    again = services.comparisons_create(
        project=project, pairs=[(b, a) for a, b in services.pairs_all(responses)]
    )
    assert again == []
    sampled = services.pairs_all(responses, max_pairs=2, seed=1)
    assert len(sampled) == 2 and sampled == services.pairs_all(responses, max_pairs=2, seed=1)


def test_claim_query_count(
    project: Any, queue: list[Any], annotator: Any, django_assert_max_num_queries: Any
) -> None:
    # The open lease, the next comparison, the insert, the content; a savepoint pair.
    with django_assert_max_num_queries(6):
        lease = services.assignment_claim_next(annotator=annotator, project=project)
    assert lease is not None
    # The lease comes back ready to show: no further query for its content.
    with django_assert_max_num_queries(0):
        shown = selectors.assignment_with_content(assignment=lease)
        assert shown.comparison.prompt.messages and shown.comparison.response_a.text


# --- submit and claim the next in one transaction (the API's `next`) ---------------------------


def test_submit_and_claim_next_stores_and_leases(
    project: Any, queue: list[Any], annotator: Any, django_assert_max_num_queries: Any
) -> None:
    lease = services.assignment_claim_next(annotator=annotator, project=project)
    assert lease is not None
    # Count, judgment and lease, insert, lease done; next comparison, insert, content; savepoints.
    with django_assert_max_num_queries(9):
        result, nxt = services.judgment_submit_and_claim_next(
            annotator=annotator,
            comparison=lease.comparison,
            project=project,
            choice="b",
            strength=3,
            flags=["other", "other"],
        )
    assert result.created and result.judgment.shown_left == lease.shown_left
    stored = Judgment.objects.get()
    assert (stored.pk, stored.choice, stored.strength, stored.flags) == (
        result.judgment.pk,
        "b",
        3,
        ["other"],
    )
    assert nxt is not None and nxt.comparison_id == queue[1].pk
    assert nxt.comparison.response_a.text and nxt.comparison.prompt.messages
    lease.refresh_from_db()
    assert lease.status == AssignmentStatus.DONE
    queue[0].refresh_from_db()
    assert queue[0].judgment_count == 1 and queue[0].status == ComparisonStatus.COMPLETE


def test_submit_and_claim_next_retry_gives_stored_and_open_lease(
    project: Any, queue: list[Any], annotator: Any
) -> None:
    lease = services.assignment_claim_next(annotator=annotator, project=project)
    assert lease is not None
    kwargs = {"annotator": annotator, "comparison": lease.comparison, "project": project}
    first, nxt = services.judgment_submit_and_claim_next(**kwargs, choice="a", strength=1)
    again, nxt_again = services.judgment_submit_and_claim_next(**kwargs, choice="tie")
    assert first.created and not again.created and again.judgment.choice == "a"
    assert nxt is not None and nxt_again is not None and nxt_again.pk == nxt.pk
    queue[0].refresh_from_db()
    assert queue[0].judgment_count == 1 and Judgment.objects.count() == 1


def test_submit_and_claim_next_refusal_writes_nothing(
    project: Any, queue: list[Any], annotator: Any
) -> None:
    with pytest.raises(services.Conflict):
        services.judgment_submit_and_claim_next(
            annotator=annotator, comparison=queue[0], project=project, choice="tie"
        )
    queue[0].refresh_from_db()
    assert queue[0].judgment_count == 0 and not Judgment.objects.exists()
    assert not Assignment.objects.exists()


def test_submit_and_claim_next_with_expired_lease_claims_fresh(
    project: Any, annotator: Any
) -> None:
    first, second = (
        ComparisonFactory.create(project=project),
        ComparisonFactory.create(project=project),
    )
    now = timezone.now()
    lease = services.assignment_claim_next(annotator=annotator, project=project, now=now)
    assert lease is not None and lease.comparison_id == first.pk
    late = now + timedelta(minutes=project.lease_minutes + 1)
    result, nxt = services.judgment_submit_and_claim_next(
        annotator=annotator, comparison=first, project=project, choice="tie", now=late
    )
    assert result.created and nxt is not None and nxt.comparison_id == second.pk
    assert nxt.expires_at == late + timedelta(minutes=project.lease_minutes)
    assert Assignment.objects.filter(status=AssignmentStatus.ACTIVE).get().pk == nxt.pk


def test_submit_and_claim_next_falls_back_to_two_steps(
    project: Any, queue: list[Any], annotator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A concurrent claim of the same annotator (IntegrityError) or only locked rows left
    (PostgreSQL): the submit and the claim then run one after the other."""
    real_claim_in = queue_engine._claim_in
    outcomes: list[Any] = [IntegrityError("a concurrent claim"), queue_engine._Wait()]

    def claim_in(cursor: Any, **kwargs: Any) -> Any:
        if kwargs.get("wait") is False and outcomes:
            outcome = outcomes.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        return real_claim_in(cursor, **kwargs)

    monkeypatch.setattr(queue_engine, "_claim_in", claim_in)
    for index in range(2):
        lease = services.assignment_claim_next(annotator=annotator, project=project)
        assert lease is not None
        result, nxt = services.judgment_submit_and_claim_next(
            annotator=annotator, comparison=lease.comparison, project=project, choice="tie"
        )
        assert result.created and nxt is not None and nxt.comparison_id == queue[index + 1].pk
        assert Judgment.objects.count() == index + 1
    assert outcomes == []
