"""Onboarding: the guidelines acknowledgement and the qualification set before live work.

With ``Project.onboarding_required`` on, an annotator (admins are exempt) must first acknowledge
the project's current guidelines (a change of the guidelines text asks again: the acknowledgement
names the text's hash) and then, when ``Project.qualification_items`` is above 0, answer that
many gold items (``labeling.gold``: the project's first gold comparisons by id) with at least
``Project.qualification_pass_mark`` of them right. A failed attempt is recorded (score, answers)
and the next attempt starts over. Qualification answers are ``QualificationAnswer`` rows, not
judgments: they take no slot and enter neither gold accuracy nor preferences nor agreement.

Until then the queue refuses them: ``onboarding_check`` raises ``NotOnboarded`` (403, with the
reason), which the labeling and ranking pages turn into a redirect to the onboarding page and
the API's queue endpoints into a 403. With onboarding off the check reads nothing; once onboarded
it reads one row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from labeling.errors import Conflict, LabelingError
from labeling.models import Choice, Comparison, Onboarding, Project, QualificationAnswer, text_hash
from labeling.roles import is_admin


class NotOnboarded(LabelingError):
    """The annotator has not finished the project's onboarding."""

    status = 403


@dataclass(frozen=True)
class OnboardingStatus:
    required: bool
    acknowledged: bool
    qualification_items: int  # how many items the set holds (fewer gold items: fewer)
    answered: int  # in the current attempt
    attempt: int
    qualified: bool
    last_score: float | None
    pass_mark: float
    next_item: Comparison | None

    @property
    def ready(self) -> bool:
        return not self.required or (self.acknowledged and self.qualified)

    @property
    def reason(self) -> str:
        if self.ready:
            return ""
        if not self.acknowledged:
            return "onboarding: acknowledge the project's guidelines first"
        if self.qualification_items == 0:
            return "onboarding: the project has no qualification items yet; ask an admin"
        return (
            f"onboarding: pass the qualification set first ({self.answered} of "
            f"{self.qualification_items} answered, pass mark {self.pass_mark:.0%})"
        )


def guidelines_hash(project: Project) -> str:
    return text_hash(project.guidelines)


def qualification_set(project: Project) -> list[Comparison]:
    """The project's qualification items: its first ``qualification_items`` gold comparisons."""
    if project.qualification_items <= 0:
        return []
    return list(
        Comparison.objects.gold()
        .filter(project=project)
        .select_related("prompt", "response_a", "response_b")
        .order_by("id")[: project.qualification_items]
    )


def onboarding_status(*, annotator: Any, project: Project) -> OnboardingStatus:
    required = project.onboarding_required and not is_admin(annotator)
    record = Onboarding.objects.filter(project=project, annotator=annotator).first()
    items = qualification_set(project) if project.qualification_items > 0 else []
    attempt = record.attempt if record else 1
    answered_ids = (
        set(
            QualificationAnswer.objects.filter(onboarding=record, attempt=attempt).values_list(
                "comparison_id", flat=True
            )
        )
        if record
        else set()
    )
    acknowledged = bool(
        record and record.acknowledged_at and record.guidelines_hash == guidelines_hash(project)
    )
    qualified = project.qualification_items == 0 or bool(record and record.qualified_at)
    if project.qualification_items > 0 and not items:
        qualified = False
    pending = [item for item in items if item.pk not in answered_ids]
    return OnboardingStatus(
        required=required,
        acknowledged=acknowledged,
        qualification_items=len(items),
        answered=len(answered_ids),
        attempt=attempt,
        qualified=qualified,
        last_score=record.last_score if record else None,
        pass_mark=project.qualification_pass_mark,
        next_item=pending[0] if pending and acknowledged and not qualified else None,
    )


def onboarding_check(*, annotator: Any, project: Project) -> None:
    """Refuse live work (``NotOnboarded``, 403) until the annotator is onboarded. Reads nothing
    when the project requires no onboarding."""
    if not project.onboarding_required or is_admin(annotator):
        return
    record = Onboarding.objects.filter(project=project, annotator=annotator).first()
    if (
        record is not None
        and record.acknowledged_at is not None
        and record.guidelines_hash == guidelines_hash(project)
        and (record.qualified_at is not None or project.qualification_items == 0)
    ):
        return  # the common case, once onboarded: one query
    status = onboarding_status(annotator=annotator, project=project)
    if not status.ready:
        raise NotOnboarded(status.reason, field="onboarding")


def _record(annotator: Any, project: Project) -> Onboarding:
    try:
        with transaction.atomic():
            record, _ = Onboarding.objects.get_or_create(project=project, annotator=annotator)
    except IntegrityError:  # a concurrent first request created it
        record = Onboarding.objects.get(project=project, annotator=annotator)
    return record


def guidelines_acknowledge(*, annotator: Any, project: Project) -> Onboarding:
    """Record that the annotator has read the project's current guidelines."""
    record = _record(annotator, project)
    now = timezone.now()
    Onboarding.objects.filter(pk=record.pk).update(
        acknowledged_at=now, guidelines_hash=guidelines_hash(project)
    )
    record.refresh_from_db()
    return record


@dataclass(frozen=True)
class QualificationResult:
    answer: QualificationAnswer
    finished: bool  # the attempt's last item was answered
    passed: bool
    score: float | None


def qualification_answer(
    *, annotator: Any, project: Project, comparison_id: int, choice: str
) -> QualificationResult:
    """Answer one qualification item of the current attempt; the last one scores the attempt:
    passed at or above the pass mark, else the next attempt starts over. Atomic."""
    if choice not in Choice.values:
        raise LabelingError(
            f"choice must be one of {', '.join(Choice.values)}; got {choice!r}", field="choice"
        )
    items = qualification_set(project)
    by_id = {item.pk: item for item in items}
    if comparison_id not in by_id:
        raise LabelingError(
            f"comparison {comparison_id} is not a qualification item of this project",
            field="comparison",
        )
    with transaction.atomic():
        record = Onboarding.objects.select_for_update().filter(pk=_record(annotator, project).pk)[0]
        if not (record.acknowledged_at and record.guidelines_hash == guidelines_hash(project)):
            raise Conflict(
                "acknowledge the guidelines before the qualification", field="onboarding"
            )
        if record.qualified_at is not None:
            raise Conflict("already qualified in this project", field="onboarding")
        answers = QualificationAnswer.objects.filter(onboarding=record, attempt=record.attempt)
        if answers.filter(comparison_id=comparison_id).exists():
            raise Conflict("this item is already answered in this attempt", field="comparison")
        answer = QualificationAnswer.objects.create(
            onboarding=record,
            attempt=record.attempt,
            comparison_id=comparison_id,
            choice=choice,
            correct=choice == by_id[comparison_id].gold_answer,
        )
        given = list(answers.values_list("correct", flat=True))
        if len(given) < len(items):
            return QualificationResult(answer, False, False, None)
        score = round(sum(given) / len(given), 4)
        passed = score >= project.qualification_pass_mark
        Onboarding.objects.filter(pk=record.pk).update(
            last_score=score,
            qualified_at=timezone.now() if passed else None,
            attempt=record.attempt if passed else record.attempt + 1,
        )
    return QualificationResult(answer, True, passed, score)
