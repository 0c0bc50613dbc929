"""Write workflows of the labeling side: the ONE write path used by views, API, commands, tasks.

The queue: ``assignment_claim_next`` leases the annotator's next comparison,
``judgment_submit`` stores a judgment atomically and idempotently,
``judgment_submit_and_claim_next`` does both in one transaction (the API's ``next``),
``judgment_undo`` takes the annotator's last judgment back, ``assignment_skip`` passes on a
comparison. On PostgreSQL claims use ``FOR UPDATE SKIP LOCKED`` so concurrent annotators never wait
on each other; on SQLite ``transaction_mode = IMMEDIATE`` serializes writers. Either way every path
that adds a lease or a judgment first locks the comparison row, then re-counts, so k is never
exceeded. Claim and submit are hand-written SQL (see "the queue" below).
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
from django.db import IntegrityError, connection, transaction
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
from labeling.sqlrows import RowReader, db_datetime, saved


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
#
# The hot path (one claim and one submit per judgment) is hand-written SQL through
# ``connection.cursor()``: the ORM's statement compilation cost several times the queries' own
# time. The SQL is portable between SQLite and PostgreSQL (``%s`` parameters, RETURNING); only
# the row lock differs (``FOR UPDATE [SKIP LOCKED]`` on PostgreSQL; on SQLite the IMMEDIATE
# transaction already serializes writers). Rows come back as model instances through the fields'
# own database converters (``labeling.sqlrows``), so callers see what the ORM would have given them.


_ASSIGNMENT = RowReader(Assignment, "a")
_COMPARISON = RowReader(Comparison, "c")
_PROMPT = RowReader(Prompt, "p")
_RESPONSE_A = RowReader(Response, "ra")
_RESPONSE_B = RowReader(Response, "rb")
_JUDGMENT = RowReader(Judgment, "j")

# What showing a lease needs besides the comparison (what ``selectors.assignment_with_content``
# loads): its prompt and both responses, by primary key. A query of its own, run once the lease
# is settled: joined into the claim's queries it cost PostgreSQL more to plan than to run.
_CONTENT_SQL = (
    f"SELECT {_PROMPT.columns}, {_RESPONSE_A.columns}, {_RESPONSE_B.columns} "
    "FROM labeling_prompt p, labeling_response ra, labeling_response rb "
    "WHERE p.id = %s AND ra.id = %s AND rb.id = %s"
)

_LIVE_LEASES = (
    "SELECT COUNT(*) FROM labeling_assignment l "
    "WHERE l.comparison_id = {comparison} AND l.status = 'active' AND l.expires_at > %s"
)


def _with_content(cursor: Any, comparison: Comparison) -> Comparison:
    cursor.execute(
        _CONTENT_SQL, [comparison.prompt_id, comparison.response_a_id, comparison.response_b_id]
    )
    return _content_read(cursor.fetchone(), 0, comparison)


def _content_read(row: Sequence[Any], start: int, comparison: Comparison) -> Comparison:
    comparison.prompt = _PROMPT.read(row, start)
    start += len(_PROMPT)
    comparison.response_a = _RESPONSE_A.read(row, start)
    comparison.response_b = _RESPONSE_B.read(row, start + len(_RESPONSE_A))
    return comparison


def _live_leases(comparison_id: int, now: datetime, *, excluding: Any = None) -> int:
    sql = _LIVE_LEASES.format(comparison="%s")
    params: list[Any] = [comparison_id, db_datetime(now)]
    if excluding is not None:
        sql += " AND l.annotator_id <> %s"
        params.append(excluding.pk)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.fetchone()[0])


def assignment_claim_next(
    *, annotator: Any, project: Project, now: datetime | None = None
) -> Assignment | None:
    """The annotator's open lease, or a new lease on their next comparison; None when done.

    The lease comes back with its comparison, prompt and both responses loaded.
    """
    try:
        return _assignment_claim(annotator=annotator, project=project, now=now)
    except IntegrityError:
        # The same annotator's concurrent claim (a double click, a retried request) inserted its
        # lease first (one active lease per annotator and project): answer with that one.
        return _assignment_claim(annotator=annotator, project=project, now=now)


_CURRENT_LEASE_SQL = (
    f"SELECT {_ASSIGNMENT.columns}, {_COMPARISON.columns} "
    "FROM labeling_assignment a JOIN labeling_comparison c ON c.id = a.comparison_id "
    "WHERE a.annotator_id = %s AND a.project_id = %s AND a.status = 'active'"
)

# Open comparisons this annotator has neither judged nor skipped, with a free slot: the same
# filter as ``ComparisonQuerySet.claimable_by``, in queue order.
_CANDIDATE_SQL = (
    f"SELECT {_COMPARISON.columns} FROM labeling_comparison c "
    "WHERE c.project_id = %s AND c.status = 'open' "
    "AND NOT EXISTS (SELECT 1 FROM labeling_judgment j "
    "WHERE j.comparison_id = c.id AND j.annotator_id = %s) "
    "AND NOT EXISTS (SELECT 1 FROM labeling_assignment s "
    "WHERE s.comparison_id = c.id AND s.annotator_id = %s AND s.status = 'skipped') "
    f"AND c.judgment_count + ({_LIVE_LEASES.format(comparison='c.id')}) < %s"
    "{passed} ORDER BY c.priority DESC, c.id LIMIT 1{lock}"
)

# Re-counted in the INSERT's own statement: on PostgreSQL a new statement reads a fresh snapshot,
# and the comparison row lock held since the candidate query keeps every other lease or judgment
# off it until commit. No row comes back when the slot has been taken meanwhile.
_LEASE_INSERT_SQL = (
    "INSERT INTO labeling_assignment "
    "(annotator_id, project_id, comparison_id, leased_at, expires_at, shown_left, status) "
    "SELECT %s, %s, %s, %s, %s, %s, 'active' "
    "WHERE (SELECT judgment_count FROM labeling_comparison WHERE id = %s) "
    f"+ ({_LIVE_LEASES.format(comparison='%s')}) < %s "
    "RETURNING id"
)

# PostgreSQL: the lease's INSERT and the content look-up in one round trip (SQLite has no
# data-modifying CTEs). No row comes back when the INSERT's re-count found the slot taken.
_LEASE_INSERT_WITH_CONTENT_SQL = (
    f"WITH ins AS ({_LEASE_INSERT_SQL}) "
    f"SELECT ins.id, {_PROMPT.columns}, {_RESPONSE_A.columns}, {_RESPONSE_B.columns} "
    "FROM ins, labeling_prompt p, labeling_response ra, labeling_response rb "
    "WHERE p.id = %s AND ra.id = %s AND rb.id = %s"
)


class _Wait:
    """``_claim_in`` without waiting found only rows locked by others (PostgreSQL)."""


def _assignment_claim(
    *, annotator: Any, project: Project, now: datetime | None = None
) -> Assignment | None:
    with transaction.atomic(), connection.cursor() as cursor:
        lease = _claim_in(cursor, annotator=annotator, project=project, now=now or timezone.now())
    assert not isinstance(lease, _Wait)
    return lease


def _claim_in(
    cursor: Any,
    *,
    annotator: Any,
    project: Project,
    now: datetime,
    wait: bool = True,
    holds_lease: bool = True,
) -> Assignment | _Wait | None:
    """The claim's statements, inside the caller's transaction.

    ``wait=False``: when every claimable row is locked by others at this instant, answer
    ``_Wait`` instead of blocking on one (the caller then claims again after its commit: it may
    hold a comparison lock itself, and two such waits could deadlock).
    ``holds_lease=False``: the caller knows the annotator has no active lease in the project (it
    just closed the only one), so the look-up is skipped.
    """
    db_now = db_datetime(now)
    postgres = connection.vendor == "postgresql"
    if holds_lease:
        cursor.execute(_CURRENT_LEASE_SQL, [annotator.pk, project.pk])
        row = cursor.fetchone()
        if row is not None:
            current: Assignment = _ASSIGNMENT.read(row, 0)
            comparison = _COMPARISON.read(row, len(_ASSIGNMENT))
            if current.expires_at > now and comparison.status == ComparisonStatus.OPEN:
                comparison.project = project
                current.comparison = _with_content(cursor, comparison)
                current.project = project
                return current
            cursor.execute(
                "UPDATE labeling_assignment SET status = %s WHERE id = %s",
                [AssignmentStatus.EXPIRED.value, current.pk],
            )

    k = project.judgments_per_comparison
    passed: list[int] = []
    for _ in range(20):
        params = [project.pk, annotator.pk, annotator.pk, db_now, k, *passed]
        passed_sql = f" AND c.id NOT IN ({', '.join(['%s'] * len(passed))})" if passed else ""
        locks = [" FOR UPDATE OF c SKIP LOCKED", " FOR UPDATE OF c"] if postgres else [""]
        row = None
        for lock in locks:
            # When every row left is locked by concurrent claims/submits at this instant, wait
            # for one rather than answer "queue empty" while slots remain.
            cursor.execute(_CANDIDATE_SQL.format(passed=passed_sql, lock=lock), params)
            row = cursor.fetchone()
            if row is not None:
                break
            if not wait and postgres:
                return _Wait()
        if row is None:
            return None
        comparison = _COMPARISON.read(row, 0)
        shown_left = secrets.choice((Side.A, Side.B))
        expires_at = now + timedelta(minutes=project.lease_minutes)
        insert_params = [
            annotator.pk,
            project.pk,
            comparison.pk,
            db_now,
            db_datetime(expires_at),
            shown_left.value,
            comparison.pk,
            comparison.pk,
            db_now,
            k,
        ]
        if postgres:
            content = [comparison.prompt_id, comparison.response_a_id, comparison.response_b_id]
            cursor.execute(_LEASE_INSERT_WITH_CONTENT_SQL, insert_params + content)
            inserted = cursor.fetchone()
            if inserted is not None:
                _content_read(inserted, 1, comparison)
        else:
            cursor.execute(_LEASE_INSERT_SQL, insert_params)
            inserted = cursor.fetchone()
            if inserted is not None:
                _with_content(cursor, comparison)
        if inserted is not None:
            comparison.project = project
            lease = Assignment(
                id=inserted[0],
                annotator=annotator,
                project=project,
                comparison=comparison,
                leased_at=now,
                expires_at=expires_at,
                shown_left=shown_left,
                status=AssignmentStatus.ACTIVE,
            )
            saved(lease)
            return lease
        passed.append(comparison.pk)
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


class _AlreadyJudged(Exception):
    """Raised inside ``judgment_submit``'s transaction to undo its increment on a retry."""

    def __init__(self, judgment: Judgment) -> None:
        self.judgment = judgment


# Takes the comparison's row lock and counts the judgment in one statement (the CASE reads the
# old count); the rest of the submit's checks raise to roll it back.
_COUNT_JUDGMENT_SQL = (
    "UPDATE labeling_comparison SET judgment_count = judgment_count + 1, "
    "status = CASE WHEN judgment_count + 1 >= ({k}) THEN 'complete' ELSE status END "
    "WHERE id = %s AND status <> 'closed' RETURNING judgment_count, ({k}) AS k"
).format(
    k="SELECT judgments_per_comparison FROM labeling_project "
    "WHERE labeling_project.id = labeling_comparison.project_id"
)

# After the lock (a new statement: on PostgreSQL a fresh snapshot): the annotator's stored
# judgment, if any, and their latest lease on the comparison that was not skipped.
_JUDGMENT_AND_LEASE_SQL = (
    f"SELECT {_ASSIGNMENT.columns}, {_JUDGMENT.columns} "
    "FROM (SELECT 1 AS one) o "
    "LEFT JOIN labeling_judgment j ON j.annotator_id = %s AND j.comparison_id = %s "
    "LEFT JOIN labeling_assignment a ON a.id = (SELECT s.id FROM labeling_assignment s "
    "WHERE s.annotator_id = %s AND s.comparison_id = %s AND s.status <> 'skipped' "
    "ORDER BY s.leased_at DESC LIMIT 1)"
)

_JUDGMENT_FIELDS = [f for f in Judgment._meta.concrete_fields if not f.primary_key]
_JUDGMENT_INSERT_SQL = (
    f"INSERT INTO labeling_judgment ({', '.join(f.column for f in _JUDGMENT_FIELDS)}) "
    f"VALUES ({', '.join(['%s'] * len(_JUDGMENT_FIELDS))}) RETURNING id"
)

# PostgreSQL: the whole common case of a submit in one round trip. The comparison's UPDATE takes
# its row lock and counts (its re-check reads the latest row version); the judgment is inserted
# and the lease closed only when the lease is live and no judgment is stored yet. The reads share
# the statement's snapshot, so a concurrent submit of the same comparison by the same annotator
# can get past them: the unique (annotator, comparison) index then fails the INSERT and
# ``judgment_submit`` retries in a fresh transaction, which finds the stored judgment. Whatever
# else (a lease that expired) is decided in Python on the returned row, as on SQLite.
_SUBMIT_PG_SQL = (
    f"WITH counted AS ({_COUNT_JUDGMENT_SQL}), "
    "lease AS (SELECT s.* FROM labeling_assignment s "
    "WHERE s.annotator_id = %s AND s.comparison_id = %s AND s.status <> 'skipped' "
    "ORDER BY s.leased_at DESC LIMIT 1), "
    "existing AS (SELECT e.* FROM labeling_judgment e "
    "WHERE e.annotator_id = %s AND e.comparison_id = %s), "
    f"ins AS (INSERT INTO labeling_judgment ({', '.join(f.column for f in _JUDGMENT_FIELDS)}) "
    "SELECT "
    + ", ".join("lease.shown_left" if f.attname == "shown_left" else "%s" for f in _JUDGMENT_FIELDS)
    + " FROM lease, counted WHERE lease.status = 'active' AND lease.expires_at > %s "
    "AND NOT EXISTS (SELECT 1 FROM existing) RETURNING id), "
    "done AS (UPDATE labeling_assignment SET status = 'done' "
    "WHERE id IN (SELECT lease.id FROM lease, ins)) "
    f"SELECT counted.judgment_count, counted.k, {_ASSIGNMENT.columns}, {_JUDGMENT.columns}, "
    "(SELECT id FROM ins) "
    "FROM (SELECT 1 AS one) o LEFT JOIN counted ON true "
    "LEFT JOIN lease a ON true LEFT JOIN existing j ON true"
)


def _judgment_checked(
    *, choice: str, strength: int | None, flags: Sequence[str], time_spent_ms: int | None
) -> None:
    judgment_validate(choice=choice, strength=strength, flags=flags)
    if choice in (Choice.A, Choice.B) and strength is None:
        raise LabelingError("strength is required when a side is chosen (1-4)", field="strength")
    if time_spent_ms is not None and time_spent_ms < 0:
        raise LabelingError("time_spent_ms must not be negative", field="time_spent_ms")


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
    _retried: bool = False,
) -> SubmitResult:
    """Store one judgment. A retried submit returns the stored judgment and writes nothing."""
    _judgment_checked(choice=choice, strength=strength, flags=flags, time_spent_ms=time_spent_ms)
    submit = {"annotator": annotator, "comparison": comparison, "choice": choice,
              "strength": strength, "rationale": rationale, "flags": flags,
              "time_spent_ms": time_spent_ms}  # fmt: skip
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            judgment, _ = _judgment_store(cursor, **submit, now=now or timezone.now())
    except _AlreadyJudged as stored:
        return SubmitResult(stored.judgment, created=False)
    except IntegrityError:
        if _retried:
            raise
        # PostgreSQL: the same annotator's concurrent submit of this comparison committed while
        # this one waited for the row lock (see _SUBMIT_PG_SQL). A fresh transaction finds it.
        return judgment_submit(**submit, now=now, _retried=True)
    return SubmitResult(judgment, created=True)


def judgment_submit_and_claim_next(
    *,
    annotator: Any,
    comparison: Comparison,
    project: Project,
    choice: str,
    strength: int | None = None,
    rationale: str = "",
    flags: Sequence[str] = (),
    time_spent_ms: int | None = None,
    now: datetime | None = None,
) -> tuple[SubmitResult, Assignment | None]:
    """``judgment_submit`` then ``assignment_claim_next`` in ``project``, in one transaction.

    One commit per judgment instead of two: one WAL flush on PostgreSQL, one turn of the write
    lock on SQLite. Same outcomes as the two calls one after the other; when the single
    transaction cannot give them (a retried submit, the annotator's concurrent claim, every
    claimable row locked by others), it falls back to exactly those two calls.
    """
    _judgment_checked(choice=choice, strength=strength, flags=flags, time_spent_ms=time_spent_ms)
    now = now or timezone.now()
    submit = {
        "annotator": annotator,
        "comparison": comparison,
        "choice": choice,
        "strength": strength,
        "rationale": rationale,
        "flags": flags,
        "time_spent_ms": time_spent_ms,
        "now": now,
    }
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            judgment, closed = _judgment_store(cursor, **submit)
            # The lease just closed was the annotator's one active lease in the project (one per
            # annotator and project, a unique index): nothing to look up before claiming.
            holds_lease = not (
                closed.status == AssignmentStatus.ACTIVE and closed.project_id == project.pk
            )
            lease = _claim_in(
                cursor,
                annotator=annotator,
                project=project,
                now=now,
                wait=False,
                holds_lease=holds_lease,
            )
    except _AlreadyJudged as stored:
        result = SubmitResult(stored.judgment, created=False)
        return result, assignment_claim_next(annotator=annotator, project=project)
    except IntegrityError:
        # The annotator's concurrent claim inserted its lease first; all of this rolled back.
        result = judgment_submit(**submit)
        return result, assignment_claim_next(annotator=annotator, project=project)
    result = SubmitResult(judgment, created=True)
    if isinstance(lease, _Wait):
        return result, assignment_claim_next(annotator=annotator, project=project)
    return result, lease


def _judgment_store(
    cursor: Any,
    *,
    annotator: Any,
    comparison: Comparison,
    choice: str,
    strength: int | None,
    rationale: str,
    flags: Sequence[str],
    time_spent_ms: int | None,
    now: datetime,
) -> tuple[Judgment, Assignment]:
    """The submit's statements, inside the caller's transaction (which a raise rolls back).

    Returns the judgment and the lease it closed, as it was before.
    """
    judgment = Judgment(
        annotator=annotator,
        comparison=comparison,
        choice=choice,
        strength=strength,
        rationale=rationale,
        flags=sorted(set(flags)),
        time_spent_ms=time_spent_ms,
        source=Source.HUMAN,
        created_at=timezone.now(),
    )
    inserted: int | None = None
    if connection.vendor == "postgresql":
        values = [
            f.get_db_prep_save(getattr(judgment, f.attname), connection)
            for f in _JUDGMENT_FIELDS
            if f.attname != "shown_left"
        ]
        cursor.execute(
            _SUBMIT_PG_SQL,
            [comparison.pk, *([annotator.pk, comparison.pk] * 2), *values, db_datetime(now)],
        )
        row = cursor.fetchone()
        counted = None if row[0] is None else (row[0], row[1])
        inserted, start = row[-1], 2
    else:
        cursor.execute(_COUNT_JUDGMENT_SQL, [comparison.pk])
        counted = cursor.fetchone()
        cursor.execute(
            _JUDGMENT_AND_LEASE_SQL, [annotator.pk, comparison.pk, annotator.pk, comparison.pk]
        )
        row, start = cursor.fetchone(), 0
    existing = _JUDGMENT.read(row, start + len(_ASSIGNMENT))
    if existing is not None:
        raise _AlreadyJudged(existing)
    if counted is None:
        if not Comparison.objects.filter(pk=comparison.pk).exists():
            raise Comparison.DoesNotExist(f"no comparison {comparison.pk}")
        raise Conflict("this comparison is closed to new judgments")
    judgment_count, k = counted
    lease: Assignment | None = _ASSIGNMENT.read(row, start)
    if lease is None:
        raise Conflict("no lease on this comparison: claim it from the queue first")
    judgment.shown_left = lease.shown_left
    if inserted is None:
        if not lease.is_live(now):
            others = _live_leases(comparison.pk, now, excluding=annotator)
            if judgment_count - 1 + others >= k:
                raise Conflict("your lease expired and the comparison has been taken by others")
        cursor.execute(
            _JUDGMENT_INSERT_SQL,
            [
                f.get_db_prep_save(getattr(judgment, f.attname), connection)
                for f in _JUDGMENT_FIELDS
            ],
        )
        inserted = cursor.fetchone()[0]
        cursor.execute(
            "UPDATE labeling_assignment SET status = %s WHERE id = %s",
            [AssignmentStatus.DONE.value, lease.pk],
        )
    judgment.pk = inserted
    saved(judgment)
    return judgment, lease


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
