"""Rankings: an annotator orders the K responses (3-9) of a ranking set, InstructGPT style.

A project with ``task_kind = ranking`` serves ``RankingSet`` rows (one prompt, K responses)
instead of pairwise comparisons. The write path is here and re-exported by
``labeling.services``: ``ranking_sets_create`` (admins: sets from the project's prompts),
``ranking_lease_next`` (the queue: lease the next set), ``ranking_submit`` and ``ranking_skip``.

**Storage and expansion.** A submitted ranking is stored as a ``Ranking`` (its ``order``: tiers
of response ids, best first; a tier of two or more is a tie) and expanded, in the same
transaction, into C(K, 2) ``Judgment`` rows, one per pair, each pointing back at its ranking
(``Judgment.ranking``): the pair's ``Comparison`` (created when missing, with the set's batch,
e.g. ``round-3:ranking``, so round snapshots find it; else ``ranking``), the choice ``a``/``b``
for the higher-ranked response or ``tie`` for a shared tier, no strength (a rank says nothing of
by how much: margin 0), ``shown_left`` the side shown higher when the set was first displayed. Those judgments are ordinary votes: snapshots and every preference export
read them exactly as they read pairwise judgments.

**No double counting.** One annotator has at most one vote on a pair
(``judgment_once_per_annotator``): a pair the annotator already judged (pairwise, or in an
earlier ranking of an overlapping set) is not derived again and keeps its earlier vote
(``RankingResult.pairs_kept``). So agreement figures (``labeling.selectors.project_stats``),
which compare the votes of different annotators on one comparison, count each annotator once per
pair; a single ranking never agrees with itself. ``time_spent_ms`` is stored on the ranking only
(the derived judgments carry none, so the median time per judgment is not inflated K-fold).

**Validation.** ``order`` must hold each of the set's K response ids exactly once (a permutation,
ties grouped); anything else is refused with a 400 naming ``order``, and nothing is written.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from labeling import gold
from labeling.errors import Conflict, LabelingError
from labeling.models import (
    RANKING_MAX_K,
    RANKING_MIN_K,
    AssignmentStatus,
    Choice,
    Comparison,
    ComparisonStatus,
    Judgment,
    Project,
    Prompt,
    Ranking,
    RankingLease,
    RankingSet,
    Response,
    Side,
    Source,
)
from labeling.queue import judgment_counts_refresh

RANKING = "ranking"
PAIRWISE = "pairwise"
BATCH = "ranking"

Order = list[list[int]]


def project_is_ranking(project: Project) -> bool:
    return project.task_kind == RANKING


def _ranking_project(project: Project) -> None:
    if not project_is_ranking(project):
        raise Conflict(
            "this project judges pairwise comparisons, not rankings: use queue/next",
            field="task_kind",
        )


# --- sets ----------------------------------------------------------------------------------------


def ranking_sets_create(
    *,
    project: Project,
    size: int = RANKING_MAX_K,
    prompts: Iterable[Prompt] | None = None,
    seed: int = 0,
    batch: str = "",
) -> list[RankingSet]:
    """A ranking set for each of the project's prompts (or ``prompts``) with at least 3 real
    responses (generated gold variants are left out): at most ``size`` of them, sampled with
    ``seed`` when the prompt has more. A prompt that already has a set of the same responses
    gets no second one."""
    if not RANKING_MIN_K <= size <= RANKING_MAX_K:
        raise LabelingError(
            f"size must be between {RANKING_MIN_K} and {RANKING_MAX_K}", field="size"
        )
    rng = random.Random(seed)
    chosen = Prompt.objects.filter(project=project).order_by("id")
    if prompts is not None:
        ids = [p.pk for p in prompts]
        chosen = chosen.filter(pk__in=ids)
        if chosen.count() != len(set(ids)):
            raise LabelingError("every prompt must belong to this project", field="prompts")
    responses: dict[int, list[int]] = {}
    for response_id, prompt_id in (
        Response.objects.filter(prompt__in=chosen)
        .exclude(model_name__startswith=gold.MODEL_PREFIX)
        .order_by("id")
        .values_list("id", "prompt_id")
    ):
        responses.setdefault(prompt_id, []).append(response_id)
    existing: set[tuple[int, frozenset[int]]] = set()
    through = RankingSet.responses.through
    members: dict[int, set[int]] = {}
    for set_id, response_id in through.objects.filter(rankingset__project=project).values_list(
        "rankingset_id", "response_id"
    ):
        members.setdefault(set_id, set()).add(response_id)
    for set_id, prompt_id in RankingSet.objects.filter(project=project).values_list(
        "id", "prompt_id"
    ):
        existing.add((prompt_id, frozenset(members.get(set_id, ()))))
    created: list[RankingSet] = []
    with transaction.atomic():
        for prompt_id, ids in sorted(responses.items()):
            if len(ids) < RANKING_MIN_K:
                continue
            picked = sorted(rng.sample(ids, size)) if len(ids) > size else ids
            key = (prompt_id, frozenset(picked))
            if key in existing:
                continue
            existing.add(key)
            ranking_set = RankingSet.objects.create(
                project=project, prompt_id=prompt_id, size=len(picked), batch=batch
            )
            ranking_set.responses.add(*picked)
            created.append(ranking_set)
    return created


# --- the queue -----------------------------------------------------------------------------------


def _claimable(project: Project, annotator: Any, now: datetime) -> QuerySet[RankingSet]:
    """Open sets of the project that the annotator has neither ranked nor skipped, with a free
    slot (rankings + live leases of others under k)."""
    live = (
        RankingLease.objects.filter(
            ranking_set=OuterRef("pk"), status=AssignmentStatus.ACTIVE, expires_at__gt=now
        )
        .values("ranking_set")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        RankingSet.objects.filter(project=project, status=ComparisonStatus.OPEN)
        .exclude(Exists(Ranking.objects.filter(ranking_set=OuterRef("pk"), annotator=annotator)))
        .exclude(
            Exists(
                RankingLease.objects.filter(
                    ranking_set=OuterRef("pk"),
                    annotator=annotator,
                    status=AssignmentStatus.SKIPPED,
                )
            )
        )
        .alias(live=Coalesce(Subquery(live, output_field=IntegerField()), 0))
        .filter(ranking_count__lt=project.judgments_per_comparison - F("live"))
        .order_by("id")
    )


def ranking_sets_remaining(*, annotator: Any, project: Project, now: datetime | None = None) -> int:
    """How many sets the annotator could still lease (the page's "remaining")."""
    return _claimable(project, annotator, now or timezone.now()).count()


def ranking_lease_next(
    *, annotator: Any, project: Project, now: datetime | None = None
) -> RankingLease | None:
    """The annotator's live ranking lease, or a new one on their next set; None when done."""
    _ranking_project(project)
    now = now or timezone.now()
    with transaction.atomic():
        current = (
            RankingLease.objects.select_related("ranking_set")
            .filter(annotator=annotator, project=project, status=AssignmentStatus.ACTIVE)
            .first()
        )
        if current is not None:
            if current.is_live(now) and current.ranking_set.status == ComparisonStatus.OPEN:
                return current
            RankingLease.objects.filter(pk=current.pk).update(status=AssignmentStatus.EXPIRED)
        for _ in range(5):
            candidates = _claimable(project, annotator, now)
            candidate = candidates.select_for_update(skip_locked=True, of=("self",)).first()
            if candidate is None:
                # Every claimable set may be locked by a claim in flight (PostgreSQL): wait for
                # one rather than answer "nothing left".
                candidate = candidates.select_for_update(of=("self",)).first()
            if candidate is None:
                return None
            # Re-counted under the row lock: a concurrent lease may have taken the last slot.
            if not _claimable(project, annotator, now).filter(pk=candidate.pk).exists():
                continue
            order = list(candidate.responses.order_by("id").values_list("id", flat=True))
            random.shuffle(order)
            try:
                with transaction.atomic():
                    return RankingLease.objects.create(
                        annotator=annotator,
                        project=project,
                        ranking_set=candidate,
                        display_order=order,
                        leased_at=now,
                        expires_at=now + timedelta(minutes=project.lease_minutes),
                    )
            except IntegrityError:  # the annotator's concurrent claim won: return that lease
                break
    return RankingLease.objects.filter(
        annotator=annotator, project=project, status=AssignmentStatus.ACTIVE
    ).first()


def ranking_skip(*, annotator: Any, lease: RankingLease) -> None:
    """Pass on a ranking set: its slot frees and it is not offered to this annotator again."""
    updated = RankingLease.objects.filter(
        pk=lease.pk, annotator=annotator, status=AssignmentStatus.ACTIVE
    ).update(status=AssignmentStatus.SKIPPED)
    if not updated:
        raise Conflict("this ranking lease is no longer active")


# --- submitting ----------------------------------------------------------------------------------


def order_parse(value: Any) -> Order:
    """A ranking's order from its input shape: a list whose items are response ids or lists of
    ids (a tie), best first; or the text form ``"3,1=4,2"`` (``=`` joins a tie)."""
    if isinstance(value, str):
        try:
            return [[int(part) for part in tier.split("=")] for tier in value.split(",") if tier]
        except ValueError:
            raise LabelingError(
                "order must be response ids separated by ',' (ties joined by '=')", field="order"
            ) from None
    if not isinstance(value, list) or not value:
        raise LabelingError("order must be a non-empty list of response ids", field="order")
    tiers: Order = []
    for item in value:
        tier = item if isinstance(item, list) else [item]
        if not tier or not all(isinstance(i, int) and not isinstance(i, bool) for i in tier):
            raise LabelingError(
                "each item of order must be a response id or a list of ids (a tie)",
                field="order",
            )
        tiers.append(list(tier))
    return tiers


def order_from_ranks(ranks: dict[int, int]) -> Order:
    """Tiers from rank numbers per response (equal numbers: a tie), as the page's form sends."""
    tiers: dict[int, list[int]] = {}
    for response_id, rank in ranks.items():
        tiers.setdefault(rank, []).append(response_id)
    return [sorted(tiers[rank]) for rank in sorted(tiers)]


def _order_checked(order: Order, response_ids: set[int]) -> dict[int, int]:
    """Each response's tier (0 = best); refuses anything but a permutation of the set's ids."""
    flat = [response_id for tier in order for response_id in tier]
    duplicates = sorted({i for i in flat if flat.count(i) > 1})
    if duplicates:
        raise LabelingError(f"order names responses {duplicates} more than once", field="order")
    unknown = sorted(set(flat) - response_ids)
    if unknown:
        raise LabelingError(f"responses {unknown} are not in this ranking set", field="order")
    missing = sorted(response_ids - set(flat))
    if missing:
        raise LabelingError(f"order leaves out responses {missing}", field="order")
    if len(order) < 2:
        raise LabelingError("a ranking cannot put every response in one tie", field="order")
    return {response_id: tier for tier, ids in enumerate(order) for response_id in ids}


@dataclass(frozen=True)
class RankingResult:
    ranking: Ranking
    created: bool
    judgments: list[Judgment]
    pairs_kept: int  # pairs the annotator had judged before: their earlier vote stands


def ranking_submit(
    *,
    annotator: Any,
    ranking_set: RankingSet,
    order: Any,
    time_spent_ms: int | None = None,
    now: datetime | None = None,
) -> RankingResult:
    """Store a ranking and its C(K, 2) derived judgments, atomically. A retried submit returns
    the stored ranking and writes nothing. ``order``: any shape ``order_parse`` reads."""
    order = order_parse(order)
    if time_spent_ms is not None and time_spent_ms < 0:
        raise LabelingError("time_spent_ms must not be negative", field="time_spent_ms")
    now = now or timezone.now()
    with transaction.atomic():
        locked = RankingSet.objects.select_for_update(of=("self",)).get(pk=ranking_set.pk)
        project = Project.objects.get(pk=locked.project_id)
        _ranking_project(project)
        response_ids = set(locked.responses.values_list("id", flat=True))
        tier_of = _order_checked(order, response_ids)
        stored = Ranking.objects.filter(annotator=annotator, ranking_set=locked).first()
        if stored is not None:
            return RankingResult(stored, False, list(stored.judgments.all()), 0)
        if locked.status == ComparisonStatus.CLOSED:
            raise Conflict("this ranking set is closed to new rankings")
        lease = (
            RankingLease.objects.filter(annotator=annotator, ranking_set=locked)
            .exclude(status=AssignmentStatus.SKIPPED)
            .order_by("-leased_at")
            .first()
        )
        if lease is None:
            raise Conflict("no lease on this ranking set: lease it from the queue first")
        if not lease.is_live(now):
            others = (
                RankingLease.objects.filter(
                    ranking_set=locked, status=AssignmentStatus.ACTIVE, expires_at__gt=now
                )
                .exclude(annotator=annotator)
                .count()
            )
            if locked.ranking_count + others >= project.judgments_per_comparison:
                raise Conflict("your lease expired and the set has been ranked by others")
        ranking = Ranking.objects.create(
            annotator=annotator,
            ranking_set=locked,
            order=[sorted(tier) for tier in order],  # ties in id order: one canonical form
            display_order=lease.display_order,
            time_spent_ms=time_spent_ms,
        )
        judgments, kept = _expand(ranking, locked, tier_of, lease.display_order, now)
        RankingLease.objects.filter(pk=lease.pk).update(status=AssignmentStatus.DONE)
        count = locked.ranking_count + 1
        RankingSet.objects.filter(pk=locked.pk).update(
            ranking_count=count,
            status=(
                ComparisonStatus.COMPLETE
                if count >= project.judgments_per_comparison
                else ComparisonStatus.OPEN
            ),
        )
    return RankingResult(ranking, True, judgments, kept)


def _expand(
    ranking: Ranking,
    ranking_set: RankingSet,
    tier_of: dict[int, int],
    display_order: Sequence[int],
    now: datetime,
) -> tuple[list[Judgment], int]:
    """One judgment per pair of the set's responses; returns them and the count of pairs kept
    from the annotator's earlier votes."""
    responses = {r.pk: r for r in Response.objects.filter(pk__in=list(tier_of))}
    ids = sorted(tier_of)
    comparisons: dict[frozenset[int], Comparison] = {
        frozenset((c.response_a_id, c.response_b_id)): c
        for c in Comparison.objects.filter(response_a__in=ids, response_b__in=ids)
    }
    missing = [
        Comparison(
            project_id=ranking_set.project_id,
            prompt_id=ranking_set.prompt_id,
            response_a=responses[a],
            response_b=responses[b],
            batch=ranking_set.batch or BATCH,
        )
        for a, b in itertools.combinations(ids, 2)
        if frozenset((a, b)) not in comparisons
    ]
    if missing:
        # Another set's ranking may add the same pair at the same moment: keep whichever is first.
        Comparison.objects.bulk_create(missing, ignore_conflicts=True)
        comparisons = {
            frozenset((c.response_a_id, c.response_b_id)): c
            for c in Comparison.objects.filter(response_a__in=ids, response_b__in=ids)
        }
    judged = set(
        Judgment.objects.filter(
            annotator_id=ranking.annotator_id,
            comparison__in=[c.pk for c in comparisons.values()],
        ).values_list("comparison_id", flat=True)
    )
    shown_at = {response_id: i for i, response_id in enumerate(display_order)}
    judgments: list[Judgment] = []
    kept = 0
    for a, b in itertools.combinations(ids, 2):
        comparison = comparisons[frozenset((a, b))]
        if comparison.pk in judged:
            kept += 1
            continue
        first, second = comparison.response_a_id, comparison.response_b_id
        if tier_of[first] < tier_of[second]:
            choice = Choice.A
        elif tier_of[first] > tier_of[second]:
            choice = Choice.B
        else:
            choice = Choice.TIE
        left = Side.A if shown_at.get(first, 0) <= shown_at.get(second, 0) else Side.B
        judgments.append(
            Judgment(
                annotator_id=ranking.annotator_id,
                comparison=comparison,
                choice=choice,
                strength=None,
                shown_left=left,
                source=Source.HUMAN,
                ranking=ranking,
                created_at=now,
            )
        )
    Judgment.objects.bulk_create(judgments)
    judgment_counts_refresh(comparison_ids=[j.comparison_id for j in judgments])
    return judgments, kept


def ranking_undo(*, annotator: Any, project: Project, now: datetime | None = None) -> RankingLease:
    """Take back the annotator's last ranking in a project (with its derived judgments) and
    lease its set to them again, shown in the same order as before."""
    now = now or timezone.now()
    with transaction.atomic():
        last = (
            Ranking.objects.filter(annotator=annotator, ranking_set__project=project)
            .order_by("-created_at", "-id")
            .first()
        )
        if last is None:
            raise LabelingError("there is no ranking to undo")
        locked = RankingSet.objects.select_for_update(of=("self",)).get(pk=last.ranking_set_id)
        if locked.status == ComparisonStatus.CLOSED:
            raise Conflict("that ranking set is closed; its ranking can no longer be undone")
        comparison_ids = list(last.judgments.values_list("comparison_id", flat=True))
        RankingLease.objects.filter(
            annotator=annotator, project=project, status=AssignmentStatus.ACTIVE
        ).update(status=AssignmentStatus.RELEASED)
        display_order = last.display_order
        last.delete()  # its judgments go with it (Judgment.ranking cascades)
        judgment_counts_refresh(comparison_ids=comparison_ids)
        RankingSet.objects.filter(pk=locked.pk).update(
            ranking_count=F("ranking_count") - 1, status=ComparisonStatus.OPEN
        )
        return RankingLease.objects.create(
            annotator=annotator,
            project=project,
            ranking_set=locked,
            display_order=display_order,
            leased_at=now,
            expires_at=now + timedelta(minutes=project.lease_minutes),
        )


# --- reads ---------------------------------------------------------------------------------------


def ranking_lease_content(lease: RankingLease) -> tuple[Prompt, list[Response]]:
    """The prompt and the responses of a lease, in the order first shown."""
    ranking_set = RankingSet.objects.select_related("prompt").get(pk=lease.ranking_set_id)
    responses = {r.pk: r for r in ranking_set.responses.all()}
    return ranking_set.prompt, [responses[i] for i in lease.display_order if i in responses]


def rankings_done_today(*, annotator: Any, project: Project, now: datetime | None = None) -> int:
    now = now or timezone.now()
    start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return Ranking.objects.filter(
        annotator=annotator, ranking_set__project=project, created_at__gte=start
    ).count()


def ranking_lease_get_own(*, annotator: Any, project: Project, lease_id: int) -> RankingLease:
    return RankingLease.objects.select_related("ranking_set").get(
        pk=lease_id, annotator=annotator, project=project
    )


def rankings_of(project: Project) -> QuerySet[Ranking]:
    """The project's rankings with what their export needs."""
    return (
        Ranking.objects.filter(ranking_set__project=project)
        .select_related("annotator", "ranking_set__prompt")
        .annotate(pairs=Count("judgments"))
        .order_by("id")
    )
