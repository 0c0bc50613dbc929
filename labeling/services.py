"""Write workflows of the labeling side: the ONE write path used by views, API, commands, tasks.

The queue: ``assignment_claim_next`` leases the annotator's next comparison,
``judgment_submit`` stores a judgment atomically and idempotently, ``judgment_undo`` takes the
annotator's last judgment back, ``assignment_skip`` passes on a comparison. On PostgreSQL claims use
``select_for_update(skip_locked=True)`` so concurrent annotators never wait on each other; on SQLite
``transaction_mode = IMMEDIATE`` serializes writers. Either way every path that adds a lease or a
judgment first locks the comparison row, then re-counts, so k is never exceeded.
"""

from __future__ import annotations

import itertools
import random
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from labeling.models import (
    Assignment,
    AssignmentStatus,
    Choice,
    Comparison,
    ComparisonStatus,
    Flag,
    Judgment,
    Project,
    Prompt,
    Response,
    Side,
    Source,
    Split,
    text_hash,
)
from labeling.roles import ADMIN_GROUP, ANNOTATOR_GROUP


class LabelingError(Exception):
    """A request the labeling rules refuse. ``status`` is the HTTP status to answer with."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Conflict(LabelingError):
    status = 409


# --- accounts ----------------------------------------------------------------------------------


def user_create(*, username: str, role: str, password: str | None = None) -> tuple[Any, str]:
    """Create an annotator or admin account; returns the user and the (random) password."""
    from django.contrib.auth import get_user_model

    if role not in (ANNOTATOR_GROUP, ADMIN_GROUP):
        raise LabelingError(f"unknown role {role!r}: use annotator or admin", field="role")
    password = password or secrets.token_urlsafe(12)
    user_model = get_user_model()
    with transaction.atomic():
        if user_model.objects.filter(username=username).exists():
            raise Conflict(f"user {username!r} already exists", field="username")
        user = user_model.objects.create_user(
            username=username, password=password, is_staff=role == ADMIN_GROUP
        )
        group, _ = Group.objects.get_or_create(name=role)
        user.groups.add(group)
    return user, password


# --- projects ----------------------------------------------------------------------------------


def project_create(
    *,
    name: str,
    created_by: Any = None,
    description: str = "",
    guidelines: str = "",
    judgments_per_comparison: int = 1,
    lease_minutes: int = 10,
    max_pairs_per_prompt: int | None = None,
    annotator_usernames: Sequence[str] = (),
) -> Project:
    """Create a project and make the named users its annotators (all must exist)."""
    from django.contrib.auth import get_user_model

    if not 1 <= judgments_per_comparison <= 50:
        raise LabelingError(
            "judgments_per_comparison must be between 1 and 50", field="judgments_per_comparison"
        )
    if lease_minutes < 1:
        raise LabelingError("lease_minutes must be at least 1", field="lease_minutes")
    wanted = set(annotator_usernames)
    users = list(get_user_model().objects.filter(username__in=wanted))
    missing = sorted(wanted - {u.username for u in users})
    if missing:
        raise LabelingError(f"unknown users {missing}", field="annotators")
    with transaction.atomic():
        if Project.objects.filter(name=name).exists():
            raise Conflict(f"a project named {name!r} already exists", field="name")
        project = Project.objects.create(
            name=name,
            created_by=created_by,
            description=description,
            guidelines=guidelines,
            judgments_per_comparison=judgments_per_comparison,
            lease_minutes=lease_minutes,
            max_pairs_per_prompt=max_pairs_per_prompt,
        )
        project.annotators.add(*users)
    return project


# --- prompts, responses, comparisons ----------------------------------------------------------


def prompts_add(*, project: Project, rows: Sequence[dict[str, Any]]) -> list[Prompt]:
    """Add prompts ``{messages, external_id?, split?, metadata?}`` (used by rlhf's demo data).

    A row whose ``external_id`` the project already has returns the stored prompt, not a double.
    """
    wanted = [str(row.get("external_id", "")) for row in rows]
    existing = {
        p.external_id: p
        for p in Prompt.objects.filter(project=project, external_id__in=[w for w in wanted if w])
    }
    result: list[Prompt] = []
    with transaction.atomic():
        for row, external_id in zip(rows, wanted, strict=True):
            prompt = existing.get(external_id) if external_id else None
            if prompt is None:
                prompt = Prompt.objects.create(
                    project=project,
                    external_id=external_id,
                    messages=row["messages"],
                    metadata=row.get("metadata", {}),
                    split=row.get("split", Split.TRAIN),
                )
                if external_id:
                    existing[external_id] = prompt
            result.append(prompt)
    return result


def responses_add(
    *,
    prompt: Prompt,
    texts: Sequence[str],
    model_name: str = "",
    checkpoint_ref: str = "",
    generation_params: dict[str, Any] | None = None,
    seeds: Sequence[int | None] | None = None,
) -> list[Response]:
    """Add responses to a prompt; a text the prompt already has is returned, not doubled."""
    existing = {r.text_hash: r for r in Response.objects.filter(prompt=prompt)}
    result: list[Response] = []
    for index, text in enumerate(texts):
        key = text_hash(text)
        response = existing.get(key)
        if response is None:
            response = Response.objects.create(
                prompt=prompt,
                text=text,
                text_hash=key,
                model_name=model_name,
                checkpoint_ref=checkpoint_ref,
                generation_params=generation_params or {},
                seed=seeds[index] if seeds else None,
            )
            existing[key] = response
        result.append(response)
    return result


def pairs_all(
    responses: Sequence[Response], *, max_pairs: int | None = None, seed: int = 0
) -> list[tuple[Response, Response]]:
    """All pairs of distinct responses (by id order), or at most ``max_pairs`` sampled ones."""
    unique = sorted({r.pk: r for r in responses}.values(), key=lambda r: r.pk)
    pairs = list(itertools.combinations(unique, 2))
    if max_pairs is not None and len(pairs) > max_pairs:
        pairs = sorted(
            random.Random(seed).sample(pairs, max_pairs), key=lambda p: (p[0].pk, p[1].pk)
        )
    return pairs


def comparisons_create(
    *,
    project: Project,
    pairs: Iterable[tuple[Response, Response]],
    priority: int = 0,
    batch: str = "",
) -> list[Comparison]:
    """Turn response pairs into queue items. A pair already compared (either order) is skipped."""
    wanted = [(a, b) for a, b in pairs if a.pk != b.pk]
    if not wanted:
        return []
    ids = {r.pk for pair in wanted for r in pair}
    seen = {
        frozenset(pair)
        for pair in Comparison.objects.filter(response_a__in=ids, response_b__in=ids).values_list(
            "response_a", "response_b"
        )
    }
    new: list[Comparison] = []
    for a, b in wanted:
        if a.prompt_id != b.prompt_id:
            raise LabelingError("a comparison's two responses must answer the same prompt")
        if a.text_hash == b.text_hash:
            continue
        key = frozenset((a.pk, b.pk))
        if key in seen:
            continue
        seen.add(key)
        new.append(
            Comparison(
                project=project,
                prompt_id=a.prompt_id,
                response_a=a,
                response_b=b,
                priority=priority,
                batch=batch,
            )
        )
    return Comparison.objects.bulk_create(new)


# --- the queue ---------------------------------------------------------------------------------


def _live_leases(comparison: Comparison, now: datetime, *, excluding: Any = None) -> int:
    leases = Assignment.objects.filter(
        comparison=comparison, status=AssignmentStatus.ACTIVE, expires_at__gt=now
    )
    if excluding is not None:
        leases = leases.exclude(annotator=excluding)
    return leases.count()


def assignment_claim_next(
    *, annotator: Any, project: Project, now: datetime | None = None
) -> Assignment | None:
    """The annotator's open lease, or a new lease on their next comparison; None when done."""
    try:
        return _assignment_claim(annotator=annotator, project=project, now=now)
    except IntegrityError:
        # The same annotator's concurrent claim (a double click, a retried request) inserted its
        # lease first (one active lease per annotator and project): answer with that one.
        return _assignment_claim(annotator=annotator, project=project, now=now)


def _assignment_claim(
    *, annotator: Any, project: Project, now: datetime | None = None
) -> Assignment | None:
    now = now or timezone.now()
    with transaction.atomic():
        current = (
            Assignment.objects.select_related("comparison")
            .filter(annotator=annotator, project=project, status=AssignmentStatus.ACTIVE)
            .first()
        )
        if current is not None:
            if current.expires_at > now and current.comparison.status == ComparisonStatus.OPEN:
                return current
            current.status = AssignmentStatus.EXPIRED
            current.save(update_fields=["status"])

        k = project.judgments_per_comparison
        passed: list[int] = []
        for _ in range(20):
            claimable = (
                Comparison.objects.filter(project=project)
                .exclude(pk__in=passed)
                .claimable_by(annotator, now=now)
                .order_by("-priority", "id")
            )
            candidate = claimable.select_for_update(skip_locked=True, of=("self",)).first()
            if candidate is None:
                # The rows left may all be locked by concurrent claims/submits at this instant;
                # wait for one rather than answer "queue empty" while slots remain.
                candidate = claimable.select_for_update(of=("self",)).first()
            if candidate is None:
                return None
            # Re-count under the row lock: the filter above may have read an older snapshot.
            taken = Comparison.objects.filter(pk=candidate.pk).values_list(
                "judgment_count", flat=True
            )[0] + _live_leases(candidate, now)
            if taken < k:
                return Assignment.objects.create(
                    annotator=annotator,
                    project=project,
                    comparison=candidate,
                    leased_at=now,
                    expires_at=now + timedelta(minutes=project.lease_minutes),
                    shown_left=secrets.choice((Side.A, Side.B)),
                )
            passed.append(candidate.pk)
    return None


def assignment_skip(*, annotator: Any, assignment: Assignment) -> None:
    """Pass on a leased comparison: its slot frees and this annotator is not offered it again."""
    updated = Assignment.objects.filter(
        pk=assignment.pk, annotator=annotator, status=AssignmentStatus.ACTIVE
    ).update(status=AssignmentStatus.SKIPPED)
    if not updated:
        raise Conflict("this lease is no longer active")


def assignment_release_all(*, annotator: Any, project: Project | None = None) -> int:
    """Give back the annotator's live leases (in one project, or all of them on logout)."""
    leases = Assignment.objects.filter(annotator=annotator, status=AssignmentStatus.ACTIVE)
    if project is not None:
        leases = leases.filter(project=project)
    return leases.update(status=AssignmentStatus.RELEASED)


@dataclass(frozen=True)
class SubmitResult:
    judgment: Judgment
    created: bool


STRENGTHLESS = (Choice.TIE, Choice.BOTH_BAD)


def judgment_validate(*, choice: str, strength: int | None, flags: Sequence[str]) -> None:
    """The shape rules of a judgment, with the field named in the error."""
    if choice not in Choice.values:
        raise LabelingError(
            f"choice must be one of {', '.join(Choice.values)}; got {choice!r}", field="choice"
        )
    if choice in STRENGTHLESS and strength is not None:
        raise LabelingError(f"strength must be empty when choice is {choice}", field="strength")
    if strength is not None and strength not in (1, 2, 3, 4):
        raise LabelingError("strength must be 1, 2, 3 or 4", field="strength")
    unknown = sorted(set(flags) - set(Flag.values))
    if unknown:
        raise LabelingError(
            f"unknown flags {unknown}; allowed: {', '.join(Flag.values)}", field="flags"
        )


def judgment_submit(
    *,
    annotator: Any,
    comparison: Comparison,
    choice: str,
    strength: int | None = None,
    rationale: str = "",
    flags: Sequence[str] = (),
    time_spent_ms: int | None = None,
    now: datetime | None = None,
) -> SubmitResult:
    """Store one judgment. A retried submit returns the stored judgment and writes nothing."""
    judgment_validate(choice=choice, strength=strength, flags=flags)
    if choice in (Choice.A, Choice.B) and strength is None:
        raise LabelingError("strength is required when a side is chosen (1-4)", field="strength")
    if time_spent_ms is not None and time_spent_ms < 0:
        raise LabelingError("time_spent_ms must not be negative", field="time_spent_ms")
    now = now or timezone.now()
    with transaction.atomic():
        locked = (
            Comparison.objects.select_for_update(of=("self",))
            .select_related("project")
            .get(pk=comparison.pk)
        )
        existing = Judgment.objects.filter(annotator=annotator, comparison=locked).first()
        if existing is not None:
            return SubmitResult(existing, created=False)
        if locked.status == ComparisonStatus.CLOSED:
            raise Conflict("this comparison is closed to new judgments")
        lease = (
            Assignment.objects.filter(annotator=annotator, comparison=locked)
            .exclude(status=AssignmentStatus.SKIPPED)
            .order_by("-leased_at")
            .first()
        )
        if lease is None:
            raise Conflict("no lease on this comparison: claim it from the queue first")
        if not lease.is_live(now):
            others = _live_leases(locked, now, excluding=annotator)
            if locked.judgment_count + others >= locked.project.judgments_per_comparison:
                raise Conflict("your lease expired and the comparison has been taken by others")
        judgment = Judgment.objects.create(
            annotator=annotator,
            comparison=locked,
            choice=choice,
            strength=strength,
            rationale=rationale,
            flags=sorted(set(flags)),
            shown_left=lease.shown_left,
            time_spent_ms=time_spent_ms,
            source=Source.HUMAN,
        )
        complete = locked.judgment_count + 1 >= locked.project.judgments_per_comparison
        Comparison.objects.filter(pk=locked.pk).update(
            judgment_count=F("judgment_count") + 1,
            status=ComparisonStatus.COMPLETE if complete else locked.status,
        )
        Assignment.objects.filter(pk=lease.pk).update(status=AssignmentStatus.DONE)
    return SubmitResult(judgment, created=True)


def judgment_undo(*, annotator: Any, project: Project, now: datetime | None = None) -> Assignment:
    """Take back the annotator's last judgment in a project and lease its comparison again."""
    now = now or timezone.now()
    with transaction.atomic():
        last = (
            Judgment.objects.filter(
                annotator=annotator, comparison__project=project, source=Source.HUMAN
            )
            .order_by("-created_at", "-id")
            .first()
        )
        if last is None:
            raise LabelingError("there is no judgment to undo")
        locked = Comparison.objects.select_for_update(of=("self",)).get(pk=last.comparison_id)
        if locked.status == ComparisonStatus.CLOSED:
            raise Conflict("that comparison is closed; its judgment can no longer be undone")
        Assignment.objects.filter(
            annotator=annotator, project=project, status=AssignmentStatus.ACTIVE
        ).update(status=AssignmentStatus.RELEASED)
        shown_left = last.shown_left
        last.delete()
        Comparison.objects.filter(pk=locked.pk).update(
            judgment_count=F("judgment_count") - 1, status=ComparisonStatus.OPEN
        )
        return Assignment.objects.create(
            annotator=annotator,
            project=project,
            comparison=locked,
            leased_at=now,
            expires_at=now + timedelta(minutes=project.lease_minutes),
            shown_left=shown_left,
        )


def comparisons_close(*, comparison_ids: Iterable[int]) -> int:
    """Freeze comparisons (no new judgments, no undo), e.g. when a dataset is published."""
    with transaction.atomic():
        Assignment.objects.filter(
            comparison__in=list(comparison_ids), status=AssignmentStatus.ACTIVE
        ).update(status=AssignmentStatus.RELEASED)
        return Comparison.objects.filter(pk__in=list(comparison_ids)).update(
            status=ComparisonStatus.CLOSED
        )
