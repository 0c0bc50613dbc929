"""Read queries of the labeling side that span models: access scoping, leases, project figures.

Writes go through ``labeling.services``; everything here only reads. Scoping helpers answer
"does not exist" for rows the user may not see, so callers turn that into a 404 (no id guessing).
"""

from __future__ import annotations

import hashlib
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from django.core.cache import cache
from django.db import connection
from django.db.models import (
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    TextField,
)
from django.db.models.functions import Cast, Length
from django.utils import timezone

from labeling import gold
from labeling.models import (
    Adjudication,
    Assignment,
    AssignmentStatus,
    Choice,
    Comparison,
    ComparisonStatus,
    Judgment,
    JudgmentRevision,
    Project,
    ReviewComment,
)
from labeling.preferences import UNDECIDED, Votes, decide, rounds_q
from labeling.quality import Quality, Row, quality, reliability_votes
from labeling.queue import gold_place
from labeling.reliability import Reliability, annotator_reliability
from labeling.roles import is_admin
from labeling.sqlrows import RowReader

# --- access ------------------------------------------------------------------------------------


def projects_visible_to(*, user: Any) -> QuerySet[Project]:
    """The projects a user may read and label in (admins: all; annotators: their own)."""
    if is_admin(user):
        return Project.objects.all()
    return Project.objects.filter(annotators=user)


def project_get_visible(*, user: Any, project_id: int) -> Project:
    """One project the user may see; ``Project.DoesNotExist`` otherwise.

    Membership is tried first (one hand-written query: the annotators' hot path, every queue
    call); only when that misses does the admin check run.
    """
    with connection.cursor() as cursor:
        cursor.execute(_MEMBER_PROJECT_SQL, [project_id, user.pk])
        row = cursor.fetchone()
    if row is not None:
        return cast(Project, _PROJECT.read(row, 0))
    if not is_admin(user):
        raise Project.DoesNotExist(f"no project {project_id} visible to {user}")
    return Project.objects.get(pk=project_id)


def comparison_get_visible(*, user: Any, comparison_id: int) -> Comparison:
    """One comparison (with its project) in a project the user may see; DoesNotExist otherwise.

    Like ``project_get_visible``: one hand-written query for members, then the admin check.
    """
    with connection.cursor() as cursor:
        cursor.execute(_MEMBER_COMPARISON_SQL, [comparison_id, user.pk])
        row = cursor.fetchone()
    if row is not None:
        comparison: Comparison = _COMPARISON.read(row, 0)
        comparison.project = _PROJECT.read(row, len(_COMPARISON))
        return comparison
    if not is_admin(user):
        raise Comparison.DoesNotExist(f"no comparison {comparison_id} visible to {user}")
    return Comparison.objects.select_related("project").get(pk=comparison_id)


_PROJECT = RowReader(Project, "p")
_COMPARISON = RowReader(Comparison, "c")
_MEMBERS = Project.annotators.through._meta
_IS_MEMBER = (
    f"EXISTS (SELECT 1 FROM {_MEMBERS.db_table} m "
    f"WHERE m.{_MEMBERS.get_field('project').column} = p.{Project._meta.pk.column} "
    f"AND m.{_MEMBERS.get_field('user').column} = %s)"
)
_MEMBER_PROJECT_SQL = (
    f"SELECT {_PROJECT.columns} FROM {Project._meta.db_table} p "
    f"WHERE p.{Project._meta.pk.column} = %s AND {_IS_MEMBER}"
)
_MEMBER_COMPARISON_SQL = (
    f"SELECT {_COMPARISON.columns}, {_PROJECT.columns} FROM {Comparison._meta.db_table} c "
    f"JOIN {Project._meta.db_table} p "
    f"ON p.{Project._meta.pk.column} = c.{Comparison._meta.get_field('project').column} "
    f"WHERE c.{Comparison._meta.pk.column} = %s AND {_IS_MEMBER}"
)


# --- leases ------------------------------------------------------------------------------------


def assignment_with_content(*, assignment: Assignment) -> Assignment:
    """The lease with everything needed to show it: comparison, prompt and both responses.

    No query when they are loaded already; otherwise one cheap query by primary key (cheaper
    for PostgreSQL to plan than joining them into the claim's query).
    """
    if Assignment.comparison.is_cached(assignment):
        comparison = assignment.comparison
        if all(
            descriptor.is_cached(comparison)
            for descriptor in (Comparison.prompt, Comparison.response_a, Comparison.response_b)
        ):
            return assignment
    assignment.comparison = Comparison.objects.select_related(
        "prompt", "response_a", "response_b"
    ).get(pk=assignment.comparison_id)
    return assignment


def assignment_active(*, annotator: Any, project: Project) -> Assignment | None:
    """The annotator's active lease in a project (live or not yet noticed as expired)."""
    return Assignment.objects.filter(
        annotator=annotator, project=project, status=AssignmentStatus.ACTIVE
    ).first()


# --- project figures ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    comparisons_total: int
    comparisons_open: int
    comparisons_complete: int
    comparisons_closed: int
    live_leases: int
    judgments_total: int
    judgments_today: int


@dataclass(frozen=True)
class Agreement:
    comparisons_multiply_judged: int
    judgment_pairs: int
    agreeing_pairs: int
    pairwise_agreement: float | None
    side_choices: int
    left_choices: int
    position_bias_left: float | None


@dataclass(frozen=True)
class AnnotatorFigures:
    annotator_id: int
    username: str
    judgments: int
    median_time_spent_ms: float | None
    agreement_with_majority: float | None
    majority_comparisons: int
    tie_rate: float | None


@dataclass(frozen=True)
class ProjectStats:
    project_id: int
    progress: Progress
    agreement: Agreement
    annotators: list[AnnotatorFigures] = field(default_factory=list)
    quality: Quality | None = None
    gold: gold.GoldFigures | None = None


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _majority(counts: Counter[str]) -> str | None:
    """What these votes decide (``labeling.preferences``), or None when undecided."""
    outcome = decide(Votes(counts["a"], counts["b"], counts["tie"], counts["both_bad"])).outcome
    return None if outcome == UNDECIDED else outcome


RELIABILITY_CACHE_SECONDS = 7 * 24 * 3600


def _reliability_cached(rows: list[Row]) -> dict[Any, Reliability]:
    """Dawid-Skene and MACE fitted on these votes, from the cache when the same votes were fitted
    before. The fit is the stats page's slowest part (seconds at 100k judgments) and its input
    changes only when a vote does, so the key is a digest of the votes themselves: never stale,
    whichever process or cache backend answers."""
    votes = sorted(reliability_votes(rows))
    digest = hashlib.blake2b(digest_size=20)
    for comparison_id, annotator_id, choice in votes:
        digest.update(f"{comparison_id},{annotator_id},{choice};".encode())
    key = f"pairwise:reliability:v1:{digest.hexdigest()}"
    scores = cache.get(key)
    if scores is None:
        scores = annotator_reliability(votes)
        cache.set(key, scores, RELIABILITY_CACHE_SECONDS)
    return cast(dict[Any, Reliability], scores)


def project_stats(
    *, project: Project, now: datetime | None = None, with_quality: bool = True
) -> ProjectStats:
    """Progress, agreement and per-annotator figures of one project, in five queries whatever
    the number of annotators.

    - pairwise agreement: over comparisons with two or more judgments, the share of pairs of
      judgments on the same comparison that made the same choice (a, b, tie or both_bad);
    - position bias: among judgments that picked a side, the share that picked the side shown
      on the left (0.5 is unbiased);
    - agreement with majority: for each judgment on a comparison others judged too, whether it
      matches the strict plurality of the *other* judgments (skipped when those tie);
    - tie rate: the share of an annotator's judgments that are ``tie``;
    - ``quality`` (unless ``with_quality`` is off, as for the page's 15-second refresh):
      ``labeling.quality`` over the same rows: Krippendorff's alpha, Fleiss' and Cohen's kappa per
      project, round and annotator, and the bias audit with its flags;
    - ``gold`` (with ``quality``): each annotator's accuracy on gold comparisons
      (``labeling.gold``). Gold judgments count as work done (judgments, done, median time) but
      are left out of every agreement and bias figure above.
    """
    now = now or timezone.now()
    start_of_day = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    judgments = Judgment.objects.filter(comparison__project=project)

    comparison_counts = Comparison.objects.filter(project=project).aggregate(
        total=Count("pk"),
        open=Count("pk", filter=Q(status=ComparisonStatus.OPEN)),
        complete=Count("pk", filter=Q(status=ComparisonStatus.COMPLETE)),
        closed=Count("pk", filter=Q(status=ComparisonStatus.CLOSED)),
        gold=Count("pk", filter=~Q(gold_answer="")),
    )
    live_leases = Assignment.objects.filter(
        project=project, status=AssignmentStatus.ACTIVE, expires_at__gt=now
    ).count()
    sided = Q(choice__in=[Choice.A, Choice.B], comparison__gold_answer="")
    judgment_counts = judgments.aggregate(
        total=Count("pk"),
        today=Count("pk", filter=Q(created_at__gte=start_of_day)),
        sided=Count("pk", filter=sided),
        left=Count("pk", filter=sided & Q(choice=F("shown_left"))),
    )

    # Per-annotator counts in SQL; the median and the majority need the rows themselves, but only
    # three small columns of them.
    per_annotator = list(
        judgments.values("annotator_id", "annotator__username")
        .annotate(n=Count("pk"), ties=Count("pk", filter=Q(choice=Choice.TIE)))
        .order_by("annotator__username")
    )
    times: dict[int, list[int]] = defaultdict(list)
    by_comparison: dict[int, list[tuple[int, str]]] = defaultdict(list)
    columns = [
        "annotator_id",
        "comparison_id",
        "choice",
        "time_spent_ms",
        "comparison__gold_answer",
    ]
    gold_rows: list[tuple[int, str, str]] = []
    if with_quality:
        judgments = judgments.annotate(
            length_a=Length("comparison__response_a__text"),
            length_b=Length("comparison__response_b__text"),
        )
        columns += ["strength", "shown_left", "comparison__batch", "length_a", "length_b"]
    rows: list[Row] = []
    for annotator_id, comparison_id, choice, time_spent_ms, answer, *more in judgments.values_list(
        *columns
    ).order_by():
        if time_spent_ms is not None:
            times[annotator_id].append(time_spent_ms)
        if answer:
            gold_rows.append((annotator_id, choice, answer))
            continue
        by_comparison[comparison_id].append((annotator_id, choice))
        if more:
            strength, shown_left, batch, length_a, length_b = more
            rows.append(
                Row(
                    annotator_id=annotator_id,
                    comparison_id=comparison_id,
                    choice=choice,
                    strength=strength,
                    shown_left=shown_left,
                    time_spent_ms=time_spent_ms,
                    batch=batch,
                    length_a=length_a or 0,
                    length_b=length_b or 0,
                )
            )

    pairs = agreeing = multiply_judged = 0
    majority_hits: Counter[int] = Counter()
    majority_seen: Counter[int] = Counter()
    for votes in by_comparison.values():
        if len(votes) < 2:
            continue
        multiply_judged += 1
        counts = Counter(choice for _, choice in votes)
        pairs += len(votes) * (len(votes) - 1) // 2
        agreeing += sum(c * (c - 1) // 2 for c in counts.values())
        for annotator_id, choice in votes:
            others = counts.copy()
            others[choice] -= 1
            majority = _majority(others)
            if majority is None:
                continue
            majority_seen[annotator_id] += 1
            majority_hits[annotator_id] += majority == choice

    figures = [
        AnnotatorFigures(
            annotator_id=row["annotator_id"],
            username=row["annotator__username"],
            judgments=row["n"],
            median_time_spent_ms=(
                statistics.median(times[row["annotator_id"]])
                if times[row["annotator_id"]]
                else None
            ),
            agreement_with_majority=_ratio(
                majority_hits[row["annotator_id"]], majority_seen[row["annotator_id"]]
            ),
            majority_comparisons=majority_seen[row["annotator_id"]],
            tie_rate=_ratio(row["ties"], row["n"]),
        )
        for row in per_annotator
    ]
    usernames = {row["annotator_id"]: row["annotator__username"] for row in per_annotator}
    return ProjectStats(
        project_id=project.pk,
        progress=Progress(
            comparisons_total=comparison_counts["total"],
            comparisons_open=comparison_counts["open"],
            comparisons_complete=comparison_counts["complete"],
            comparisons_closed=comparison_counts["closed"],
            live_leases=live_leases,
            judgments_total=judgment_counts["total"],
            judgments_today=judgment_counts["today"],
        ),
        agreement=Agreement(
            comparisons_multiply_judged=multiply_judged,
            judgment_pairs=pairs,
            agreeing_pairs=agreeing,
            pairwise_agreement=_ratio(agreeing, pairs),
            side_choices=judgment_counts["sided"],
            left_choices=judgment_counts["left"],
            position_bias_left=_ratio(judgment_counts["left"], judgment_counts["sided"]),
        ),
        annotators=figures,
        quality=(
            quality(rows, usernames, scores=_reliability_cached(rows)) if with_quality else None
        ),
        gold=(
            gold.gold_figures(gold_rows, usernames, items=comparison_counts["gold"])
            if with_quality
            else None
        ),
    )


# --- pages (labeling.views) --------------------------------------------------------------------


@dataclass(frozen=True)
class LabelingProgress:
    done_today: int
    remaining: int


def labeling_progress(
    *,
    annotator: Any,
    project: Project,
    current_comparison_id: int | None = None,
    now: datetime | None = None,
) -> LabelingProgress:
    """One annotator's figures on the labeling page: judged today, and still claimable by them.

    ``remaining`` counts the comparison they hold now (``current_comparison_id``) plus those
    they could claim next, in two queries; with gold on (``Project.gold_rate``), plus the gold
    items the schedule will mix in among them (``labeling.gold.gold_ahead``), in one query more,
    so that the figure drops by one with every item, gold or not.
    """
    now = now or timezone.now()
    start_of_day = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    done_today = Judgment.objects.filter(
        annotator=annotator, comparison__project=project, created_at__gte=start_of_day
    ).count()
    claimable = Comparison.objects.filter(project=project).claimable_by(annotator, now=now)
    if current_comparison_id is not None:
        claimable = claimable.exclude(pk=current_comparison_id)
    normal_left = claimable.count()
    remaining = normal_left + (1 if current_comparison_id is not None else 0)
    if project.gold_rate > 0:
        place = gold_place(
            annotator=annotator, project=project, current_comparison_id=current_comparison_id
        )
        since, after = place.since, place.after
        if current_comparison_id is not None:
            # Where the schedule will stand once the current item is judged.
            since, after = (0, current_comparison_id) if place.holds_gold else (since + 1, after)
        remaining += gold.gold_ahead(
            normal_left=normal_left,
            upcoming=place.upcoming,
            since=since,
            after=after,
            gap_of=lambda last: gold.gap(
                project_id=project.pk, annotator_id=annotator.pk, after=last, rate=project.gold_rate
            ),
        )
    return LabelingProgress(done_today=done_today, remaining=remaining)


def judgments_by_annotator(*, annotator: Any, project: Project) -> QuerySet[Judgment]:
    """An annotator's own judgments in a project, newest first, with the texts they judged,
    how often each was edited (``revision_count``) and whether its comparison was adjudicated
    (``adjudicated``; then, as when it is closed, it can no longer be edited). One query a page."""
    revisions = (
        JudgmentRevision.objects.filter(judgment=OuterRef("pk"))
        .order_by()
        .values("judgment")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        Judgment.objects.filter(annotator=annotator, comparison__project=project)
        .select_related("comparison__prompt", "comparison__response_a", "comparison__response_b")
        .annotate(
            revision_count=Subquery(revisions, output_field=IntegerField()),
            adjudicated=Exists(Adjudication.objects.filter(comparison=OuterRef("comparison"))),
        )
        .order_by("-created_at", "-id")
    )


def projects_with_counts() -> QuerySet[Project]:
    """Every project with its comparison and annotator counts (one query)."""
    return Project.objects.annotate(
        comparisons_total=Count("comparisons", distinct=True),
        comparisons_open=Count(
            "comparisons", filter=Q(comparisons__status=ComparisonStatus.OPEN), distinct=True
        ),
        annotators_total=Count("annotators", distinct=True),
    ).order_by("name")


def assignment_get_own(*, annotator: Any, project: Project, assignment_id: int) -> Assignment:
    """A lease of this annotator in this project, with its content; DoesNotExist otherwise."""
    return Assignment.objects.select_related(
        "comparison__prompt", "comparison__response_a", "comparison__response_b"
    ).get(pk=assignment_id, annotator=annotator, project=project)


def comparisons_for_gold(*, project: Project, gold_only: bool = False) -> QuerySet[Comparison]:
    """The project's comparisons for the gold page (admins): gold first, with their texts."""
    comparisons = Comparison.objects.filter(project=project)
    if gold_only:
        comparisons = comparisons.gold()
    return comparisons.select_related("prompt", "response_a", "response_b").order_by(
        F("gold_answer").desc(), "id"
    )


# --- review (helper: review) ---------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewFilters:
    """What the review list is narrowed to; empty values filter nothing."""

    round: int | None = None  # comparisons of round N (0: those no round made)
    annotator: str = ""  # judged by this username
    disagreement: bool = False  # votes that do not all make the same choice
    flag: str = ""  # "any" or one Flag value: some judgment carries it
    gold: str = ""  # "yes" / "no"
    adjudicated: str = ""  # "yes" / "no"
    status: str = ""  # a ComparisonStatus value
    q: str = ""  # text in the prompt or either response


def _flag_q(flag: str) -> Q:
    """On a judgment queryset aliased with ``flags_text`` (its flags as JSON text: SQLite has no
    JSON containment)."""
    if flag == "any":
        return ~Q(flags_text__in=["[]", ""]) & Q(flags_text__isnull=False)
    return Q(flags_text__contains=f'"{flag}"')


def comparisons_for_review(*, project: Project, filters: ReviewFilters) -> QuerySet[Comparison]:
    """The project's comparisons for reviewers, newest first, narrowed by ``filters``; each with
    its prompt, responses and adjudication joined and its judgments (with annotators) prefetched,
    so a page of any size costs the same three queries (count, rows, judgments)."""
    comparisons = Comparison.objects.filter(project=project)
    if filters.round is not None:
        comparisons = comparisons.filter(rounds_q([filters.round]))
    if filters.annotator:
        comparisons = comparisons.filter(
            Exists(
                Judgment.objects.filter(
                    comparison=OuterRef("pk"), annotator__username=filters.annotator
                )
            )
        )
    if filters.disagreement:
        distinct_choices = (
            Judgment.objects.filter(comparison=OuterRef("pk"))
            .order_by()
            .values("comparison")
            .annotate(n=Count("choice", distinct=True))
            .values("n")
        )
        comparisons = comparisons.alias(
            distinct_choices=Subquery(distinct_choices, output_field=IntegerField())
        ).filter(distinct_choices__gt=1)
    if filters.flag:
        flagged = Judgment.objects.alias(flags_text=Cast("flags", TextField())).filter(
            _flag_q(filters.flag), comparison=OuterRef("pk")
        )
        comparisons = comparisons.filter(Exists(flagged))
    if filters.gold == "yes":
        comparisons = comparisons.gold()
    elif filters.gold == "no":
        comparisons = comparisons.not_gold()
    if filters.adjudicated:
        comparisons = comparisons.filter(adjudication__isnull=filters.adjudicated == "no")
    if filters.status:
        comparisons = comparisons.filter(status=filters.status)
    if filters.q:
        comparisons = comparisons.alias(messages_text=Cast("prompt__messages", TextField())).filter(
            Q(messages_text__icontains=filters.q)
            | Q(response_a__text__icontains=filters.q)
            | Q(response_b__text__icontains=filters.q)
            | Q(prompt__external_id=filters.q)
        )
    return (
        comparisons.select_related(
            "prompt", "response_a", "response_b", "adjudication__adjudicator"
        )
        .prefetch_related(
            Prefetch(
                "judgments",
                queryset=Judgment.objects.select_related("annotator").order_by("id"),
            )
        )
        .order_by("-id")
    )


def comparison_for_review(*, project: Project, comparison_id: int) -> Comparison:
    """One comparison of the project with everything a reviewer sees: texts, every vote (with
    its annotator and earlier values), the comments and the adjudication (five queries)."""
    return (
        Comparison.objects.filter(project=project)
        .select_related(
            "project", "prompt", "response_a", "response_b", "adjudication__adjudicator"
        )
        .prefetch_related(
            Prefetch(
                "judgments",
                queryset=Judgment.objects.select_related("annotator").order_by("id"),
            ),
            Prefetch(
                "judgments__revisions",
                queryset=JudgmentRevision.objects.order_by("-replaced_at", "-id"),
            ),
            Prefetch("comments", queryset=ReviewComment.objects.select_related("author")),
        )
        .get(pk=comparison_id)
    )


def adjudication_of(comparison: Comparison) -> Adjudication | None:
    """The comparison's adjudication, if any (no query when it was joined)."""
    try:
        return comparison.adjudication
    except Adjudication.DoesNotExist:
        return None


def votes_summary(comparison: Comparison) -> dict[str, Any]:
    """What the prefetched votes of a comparison say: counts per choice, whether they disagree,
    whether any carries a flag, and what they decide (``labeling.preferences``)."""
    judgments = list(comparison.judgments.all())
    counts = Counter(j.choice for j in judgments)
    return {
        "counts": {choice: counts[choice] for choice in Choice.values if counts[choice]},
        "n": len(judgments),
        "disagreement": len(counts) > 1,
        "flagged": any(j.flags for j in judgments),
        "adjudication": adjudication_of(comparison),
        "decision": decide(Votes.of((j.choice, j.strength) for j in judgments)).outcome
        if judgments
        else UNDECIDED,
    }


def judgment_get_own(*, annotator: Any, judgment_id: int) -> Judgment:
    """One of the annotator's own judgments, with its comparison's texts; DoesNotExist else."""
    return Judgment.objects.select_related(
        "comparison__prompt",
        "comparison__response_a",
        "comparison__response_b",
        "comparison__project",
    ).get(pk=judgment_id, annotator=annotator)


def project_members(*, project: Project) -> dict[str, list[Any]]:
    """A project's annotators and reviewers (two queries)."""
    return {
        "annotator": list(project.annotators.order_by("username")),
        "reviewer": list(project.reviewers.order_by("username")),
    }


def projects_listed_for(*, user: Any) -> QuerySet[Project]:
    """The projects the API lists to a user, each with ``is_annotator`` and ``is_reviewer`` (the
    user's roles in it): admins all; others those they annotate or review (a reviewer-only user
    reviews through the API too, and finds the project here)."""
    annotates = Project.annotators.through.objects.filter(project=OuterRef("pk"), user=user.pk)
    reviews = Project.reviewers.through.objects.filter(project=OuterRef("pk"), user=user.pk)
    projects = Project.objects.annotate(is_annotator=Exists(annotates), is_reviewer=Exists(reviews))
    if is_admin(user):
        return projects
    return projects.filter(Q(is_annotator=True) | Q(is_reviewer=True))


def projects_reviewable_by(*, user: Any) -> QuerySet[Project]:
    """The projects a user may review (admins: all; reviewers: theirs)."""
    if is_admin(user):
        return Project.objects.all()
    return Project.objects.filter(reviewers=user)


def user_by_username(*, username: str) -> Any:
    """A user by username; a 400 naming the field when there is none."""
    from django.contrib.auth import get_user_model

    from labeling.errors import LabelingError

    user = get_user_model().objects.filter(username=username.strip()).first()
    if user is None:
        raise LabelingError(f"no user {username!r}: invite them instead", field="username")
    return user


def user_by_id(*, user_id: int) -> Any:
    from django.contrib.auth import get_user_model

    from labeling.errors import LabelingError

    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        raise LabelingError(f"no user {user_id}", field="user")
    return user


def judgment_edit_refusal(*, judgment: Judgment) -> str:
    """Why its annotator can no longer change a judgment ("" when they can): the rule of
    ``services.judgment_edit``, read for the page (the service re-checks it under a lock)."""
    if judgment.source != "human":
        return "it was imported"
    if judgment.ranking_id is not None:
        return "it comes from a ranking"
    if judgment.comparison.status == ComparisonStatus.CLOSED:
        return "its comparison is closed"
    if Adjudication.objects.filter(comparison_id=judgment.comparison_id).exists():
        return "a reviewer has adjudicated its comparison"
    return ""
