"""The queue engine: leases, judgments and ``Comparison.judgment_count``, in one module.

(Over 500 lines on purpose: the claim, the submit and the count share the SQL names, the row
readers and the one definition of "claimable"; split, each half would import the other's
internals.)

``assignment_claim_next`` leases the annotator's next comparison, ``judgment_submit`` stores a
judgment atomically and idempotently, ``judgment_submit_and_claim_next`` does both in one
transaction (the API's ``next``), ``judgment_undo`` takes the annotator's last judgment back,
``assignment_skip`` passes on a comparison. ``labeling.services`` re-exports every action here:
callers (views, API, commands, rlhf) keep calling ``labeling.services.X``.

"Claimable" has one definition in SQL (``_CLAIMABLE``) and its ORM twin
``ComparisonQuerySet.claimable_by`` (used for the remaining counts); a property test
(tests/labeling/test_queue_claimable.py) holds the two equal. Gold comparisons
(``labeling.gold``) are never claimable so; they have their own pair, ``_GOLD_CLAIMABLE`` and
``gold_claimable_by`` (no k slots: every annotator once), held equal by the same test. With
``Project.gold_rate`` above 0 a claim first asks, in one query (``_GOLD_CANDIDATE_SQL``), where the
annotator stands in the gold schedule and which gold comparison is next, and leases that one when
it is due; at 0 the claim runs exactly the statements it runs without gold. A gold comparison stays
open (``_judgment_count_set``) and its lease re-counts against ``GOLD_SLOTS``, never reached. ``judgment_count`` is written only
through ``_judgment_count_set`` below: +1 in the submit's statement, a re-count from the stored
judgments in ``judgment_counts_refresh`` (undo, imports).

Concurrency. PostgreSQL: the candidate query takes the comparison's row lock with
``FOR UPDATE OF c SKIP LOCKED`` (then, when every claimable row is locked at that instant, once
more with a plain ``FOR UPDATE OF c``, which waits); the lease INSERT re-counts the slots in its own
statement; the partial unique index "one active lease per annotator and project" and the unique
(annotator, comparison) judgment index turn a double click into a retry that finds the stored row.
SQLite: ``transaction_mode = IMMEDIATE`` serializes writers (behind the fair write lock of
``config.sqlite_backend``, which gives up after the database ``timeout`` with "database is
locked"; an import holds that lock for its whole atomic write phase: a claim waited 4.5 s behind
8 000 imported responses, benchmarks/import_vs_claim.py). Either way every path that adds a lease
or a judgment first locks the comparison row, then re-counts, so k is never exceeded.

The hot path (one claim and one submit per judgment) is hand-written SQL through
``connection.cursor()``: the ORM's statement compilation cost several times the queries' own
time. Table names, column names and status values in it come from the models. The SQL is portable
between SQLite and PostgreSQL (``%s`` parameters, RETURNING); PostgreSQL also gets data-modifying
CTEs that save round trips. Rows come back as model instances through the fields' own database
converters (``labeling.sqlrows``), so callers see what the ORM would have given them.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from labeling import gold
from labeling.errors import Conflict, LabelingError
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
)
from labeling.preferences import id_list
from labeling.sqlrows import RowReader, db_datetime, saved


class _Names:
    """A model's table and column names (``_Names(Assignment).expires_at == "expires_at"``)."""

    def __init__(self, model: type[models.Model]) -> None:
        self.table = model._meta.db_table
        self._columns = {f.name: f.column for f in model._meta.concrete_fields}

    def __getattr__(self, name: str) -> str:
        try:
            return self._columns[name]
        except KeyError:
            raise AttributeError(name) from None


def _literal(value: str) -> str:
    """A choice value as an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


A, C, J = _Names(Assignment), _Names(Comparison), _Names(Judgment)
P, PR, R = _Names(Project), _Names(Prompt), _Names(Response)
OPEN, COMPLETE = _literal(ComparisonStatus.OPEN), _literal(ComparisonStatus.COMPLETE)
CLOSED = _literal(ComparisonStatus.CLOSED)
ACTIVE, DONE = _literal(AssignmentStatus.ACTIVE), _literal(AssignmentStatus.DONE)
SKIPPED = _literal(AssignmentStatus.SKIPPED)

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
    f"FROM {PR.table} p, {R.table} ra, {R.table} rb "
    f"WHERE p.{PR.id} = %s AND ra.{R.id} = %s AND rb.{R.id} = %s"
)

# Live leases on a comparison (``{comparison}``: an SQL expression); ``%s``: now.
_LIVE_LEASES = (
    f"SELECT COUNT(*) FROM {A.table} l WHERE l.{A.comparison} = {{comparison}} "
    f"AND l.{A.status} = {ACTIVE} AND l.{A.expires_at} > %s"
)

# Neither judged nor skipped by annotator %s (%s). (``annotator + 0``: SQLite would otherwise
# walk all of the annotator's leases for each candidate instead of the comparison's few, 2-3 ms
# after 3 000 judgments; PostgreSQL picks the comparison's index either way.)
_UNSEEN = (
    f"NOT EXISTS (SELECT 1 FROM {J.table} j "
    f"WHERE j.{J.comparison} = c.{C.id} AND j.{J.annotator} = %s) "
    f"AND NOT EXISTS (SELECT 1 FROM {A.table} s "
    f"WHERE s.{A.comparison} = c.{C.id} AND s.{A.status} = {SKIPPED} AND s.{A.annotator} + 0 = %s)"
)

# THE definition of claimable (its ORM twin: ``ComparisonQuerySet.claimable_by``): comparisons
# of project %s, open, not gold, that annotator %s has neither judged nor skipped (%s), with a
# free slot (judgments + live leases at %s = now, under %s = k).
_CLAIMABLE = (
    f"c.{C.project} = %s AND c.{C.status} = {OPEN} AND c.{C.gold_answer} = '' AND {_UNSEEN} "
    f"AND c.{C.judgment_count} + ({_LIVE_LEASES.format(comparison=f'c.{C.id}')}) < %s"
)

# Gold (``labeling.gold``; ORM twin: ``ComparisonQuerySet.gold_claimable_by``): gold comparisons
# of project %s, open, that annotator %s has neither judged nor skipped (%s). No slots: every
# annotator once. (``gold_answer > ''``, as the partial index comparison_gold_idx is written.)
_IS_GOLD = f"c.{C.gold_answer} > ''"
_GOLD_CLAIMABLE = f"c.{C.project} = %s AND c.{C.status} = {OPEN} AND {_IS_GOLD} AND {_UNSEEN}"

# The next claimable comparison in queue order (``Comparison.Meta.ordering``); ``{passed}``:
# comparisons already tried, ``{lock}``: the row lock clause (PostgreSQL).
_CANDIDATE_SQL = (
    f"SELECT {_COMPARISON.columns} FROM {C.table} c WHERE {_CLAIMABLE}"
    f"{{passed}} ORDER BY c.{C.priority} DESC, c.{C.id} LIMIT 1{{lock}}"
)
_GOLD_NEXT_SQL = (
    f"SELECT c.{C.id} FROM {C.table} c WHERE {_GOLD_CLAIMABLE}"
    f"{{passed}} ORDER BY c.{C.priority} DESC, c.{C.id} LIMIT 1"
)

# An annotator's place in the gold schedule (``labeling.gold``). ``recent``: their latest %s
# human judgments in project %s (annotator %s first), newest first: enough to tell whether the
# next gold is due (no gap is longer), read along an index whatever their history. Of those: how
# many came since their last gold one (all of them if none), and that gold comparison (0: none).
_HUMAN = _literal(Source.HUMAN)
_GOLD_RECENT = (
    f"WITH recent AS (SELECT j.{J.id} AS id, j.{J.comparison} AS comparison, "
    f"jc.{C.gold_answer} AS answer FROM {J.table} j "
    f"JOIN {C.table} jc ON jc.{C.id} = j.{J.comparison} WHERE j.{J.annotator} = %s "
    f"AND jc.{C.project} = %s AND j.{J.source} = {_HUMAN} ORDER BY j.{J.id} DESC LIMIT %s), "
    "last_gold AS (SELECT r.id, r.comparison FROM recent r WHERE r.answer > '' "
    "ORDER BY r.id DESC LIMIT 1) "
)
_GOLD_PLACE = (
    "(SELECT COUNT(*) FROM recent WHERE recent.id > COALESCE((SELECT id FROM last_gold), 0)), "
    "COALESCE((SELECT comparison FROM last_gold), 0)"
)

# The claim's one gold query: the schedule and the next gold comparison (if any) in one row.
_GOLD_CANDIDATE_SQL = (
    f"{_GOLD_RECENT}SELECT {_GOLD_PLACE}, {_COMPARISON.columns} "
    f"FROM (SELECT 1 AS one) o LEFT JOIN {C.table} c ON c.{C.id} = "
    f"({_GOLD_NEXT_SQL.format(passed='')})"
)

# The labeling page's: the schedule, whether the current comparison (%s) is gold, and the gold
# comparisons the annotator would be served after it (``{passed}``), in queue order, one a row
# (at most %s; none: one row with NULL).
_GOLD_UPCOMING_SQL = (
    f"{_GOLD_RECENT}SELECT {_GOLD_PLACE}, "
    f"(SELECT COUNT(*) FROM {C.table} c WHERE c.{C.id} = %s AND {_IS_GOLD}), up.id "
    f"FROM (SELECT 1 AS one) o LEFT JOIN (SELECT c.{C.id} AS id, c.{C.priority} AS priority "
    f"FROM {C.table} c WHERE {_GOLD_CLAIMABLE}{{passed}} "
    f"ORDER BY c.{C.priority} DESC, c.{C.id} LIMIT %s) up ON true "
    "ORDER BY up.priority DESC, up.id"
)
UPCOMING_LIMIT = 1000

# A gold lease's slot count: never reached (gold takes no slot).
GOLD_SLOTS = 2**31 - 1

_CURRENT_LEASE_SQL = (
    f"SELECT {_ASSIGNMENT.columns}, {_COMPARISON.columns} "
    f"FROM {A.table} a JOIN {C.table} c ON c.{C.id} = a.{A.comparison} "
    f"WHERE a.{A.annotator} = %s AND a.{A.project} = %s AND a.{A.status} = {ACTIVE}"
)

_LEASE_STATUS_SQL = f"UPDATE {A.table} SET {A.status} = %s WHERE {A.id} = %s"

# Re-counted in the INSERT's own statement: on PostgreSQL a new statement reads a fresh snapshot,
# and the comparison row lock held since the candidate query keeps every other lease or judgment
# off it until commit. No row comes back when the slot has been taken meanwhile.
_LEASE_INSERT_SQL = (
    f"INSERT INTO {A.table} ({A.annotator}, {A.project}, {A.comparison}, {A.leased_at}, "
    f"{A.expires_at}, {A.shown_left}, {A.status}) "
    f"SELECT %s, %s, %s, %s, %s, %s, {ACTIVE} "
    f"WHERE (SELECT {C.judgment_count} FROM {C.table} WHERE {C.id} = %s) "
    f"+ ({_LIVE_LEASES.format(comparison='%s')}) < %s "
    f"RETURNING {A.id}"
)

# PostgreSQL: the lease's INSERT and the content look-up in one round trip (SQLite has no
# data-modifying CTEs). No row comes back when the INSERT's re-count found the slot taken.
_LEASE_INSERT_WITH_CONTENT_SQL = (
    f"WITH ins AS ({_LEASE_INSERT_SQL}) "
    f"SELECT ins.{A.id}, {_PROMPT.columns}, {_RESPONSE_A.columns}, {_RESPONSE_B.columns} "
    f"FROM ins, {PR.table} p, {R.table} ra, {R.table} rb "
    f"WHERE p.{PR.id} = %s AND ra.{R.id} = %s AND rb.{R.id} = %s"
)


# --- judgment_count: its one writer ------------------------------------------------------------
#
# ``judgment_count`` and the open/complete status follow from the stored judgments. Only this SET
# clause writes them: the submit adds 1 in its own statement (an UPDATE that reads the latest row
# version under the row lock, where a re-count could miss a concurrent commit on PostgreSQL);
# undo and imports re-count. A closed comparison stays closed.

_K = (
    f"SELECT {P.judgments_per_comparison} FROM {P.table} "
    f"WHERE {P.table}.{P.id} = {C.table}.{C.project}"
)


def _judgment_count_set(count: str) -> str:
    """The SET clause of an UPDATE of the comparison table that stores ``count`` (an SQL
    expression over the row's old values) and the status it implies."""
    return (
        f"{C.judgment_count} = {count}, {C.status} = CASE WHEN {C.status} = {CLOSED} "
        f"THEN {C.status} WHEN {C.gold_answer} > '' THEN {OPEN} "
        f"WHEN {count} >= ({_K}) THEN {COMPLETE} ELSE {OPEN} END"
    )


# Takes the comparison's row lock and counts the judgment in one statement; the rest of the
# submit's checks raise to roll it back. No row comes back for a closed comparison. A gold
# comparison's k is GOLD_SLOTS (a gold lease that expired is never "taken by others").
_COUNT_JUDGMENT_SQL = (
    f"UPDATE {C.table} SET {_judgment_count_set(f'{C.judgment_count} + 1')} "
    f"WHERE {C.id} = %s AND {C.status} <> {CLOSED} RETURNING {C.judgment_count}, "
    f"CASE WHEN {C.gold_answer} > '' THEN {GOLD_SLOTS} ELSE ({_K}) END AS k"
)

_RECOUNT = f"(SELECT COUNT(*) FROM {J.table} WHERE {J.table}.{J.comparison} = {C.table}.{C.id})"
_REFRESH_CHUNK = 500


def judgment_counts_refresh(*, comparison_ids: Iterable[int]) -> None:
    """Re-count these comparisons' judgments into ``judgment_count`` and set open/complete.

    Run inside the transaction that added or removed the judgments (after locking the rows
    where concurrent submits are possible, as ``judgment_undo`` does).
    """
    ids = sorted(set(comparison_ids))
    with connection.cursor() as cursor:
        for start in range(0, len(ids), _REFRESH_CHUNK):
            chunk = ids[start : start + _REFRESH_CHUNK]
            cursor.execute(
                f"UPDATE {C.table} SET {_judgment_count_set(_RECOUNT)} "
                f"WHERE {C.id} IN ({', '.join(['%s'] * len(chunk))})",
                chunk,
            )


# --- claims ------------------------------------------------------------------------------------


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
        sql += f" AND l.{A.annotator} <> %s"
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


class _Wait:
    """``_claim_in`` found only rows locked by others and could not wait for one (PostgreSQL)."""


# A claim that had to let go of its locks starts again in a fresh transaction, this many times at
# most (each retry follows a concurrent commit on the same comparisons, so the queue moved on).
_CLAIM_ATTEMPTS = 50


def _assignment_claim(
    *, annotator: Any, project: Project, now: datetime | None = None
) -> Assignment | None:
    for _ in range(_CLAIM_ATTEMPTS):
        with transaction.atomic(), connection.cursor() as cursor:
            lease = _claim_in(
                cursor, annotator=annotator, project=project, now=now or timezone.now()
            )
        if not isinstance(lease, _Wait):
            return lease
        # It would have waited for a row while holding the lock of one it passed: the commit
        # above let that one go; a fresh transaction claims again.
    raise Conflict("the queue is too busy to lease a comparison now: try again")


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

    Waiting for a row lock is allowed only while the transaction holds no comparison row lock:
    two transactions that each wait holding one can deadlock (each holds the row the other waits
    for). So when every claimable row is locked by others at this instant, it answers ``_Wait``
    instead of blocking when ``wait=False`` (the caller holds the lock of the comparison it just
    judged) or when it already locked a comparison that turned out full (``passed``); the caller
    then claims again after its commit.
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
            cursor.execute(_LEASE_STATUS_SQL, [AssignmentStatus.EXPIRED.value, current.pk])

    if project.gold_rate > 0:
        lease = _gold_claim(cursor, annotator=annotator, project=project, now=now)
        if lease is not None:
            return lease

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
            if postgres and (not wait or passed):
                return _Wait()
        if row is None:
            return None
        comparison = _COMPARISON.read(row, 0)
        lease = _lease_insert(
            cursor, annotator=annotator, project=project, comparison=comparison, now=now, k=k
        )
        if lease is not None:
            return lease
        passed.append(comparison.pk)
    return None


def _gold_claim(
    cursor: Any, *, annotator: Any, project: Project, now: datetime
) -> Assignment | None:
    """A lease on the annotator's next gold comparison when the schedule says one is due
    (``labeling.gold``), in one query more than a claim without gold; None otherwise."""
    recent = [annotator.pk, project.pk, gold.window(project.gold_rate)]
    cursor.execute(_GOLD_CANDIDATE_SQL, [*recent, project.pk, annotator.pk, annotator.pk])
    since, after, *_ = row = cursor.fetchone()
    comparison = _COMPARISON.read(row, 2)
    if comparison is None or not gold.gold_due(
        since=since,
        after=after,
        project_id=project.pk,
        annotator_id=annotator.pk,
        rate=project.gold_rate,
    ):
        return None
    # No row lock: a gold lease takes no slot, so there is nothing to re-count under it.
    return _lease_insert(
        cursor, annotator=annotator, project=project, comparison=comparison, now=now, k=GOLD_SLOTS
    )


@dataclass(frozen=True)
class GoldPlace:
    """Where an annotator stands in the gold schedule (``labeling.gold``)."""

    since: int  # human judgments since their last gold one (up to the schedule's window)
    after: int  # that gold comparison (0: none in the window)
    holds_gold: bool  # the comparison they hold now is gold
    upcoming: list[int]  # the gold comparisons they would be served next, in queue order


def gold_place(
    *, annotator: Any, project: Project, current_comparison_id: int | None = None
) -> GoldPlace:
    """The annotator's place in the gold schedule, in one query (the labeling page's figures)."""
    passed = f" AND c.{C.id} <> %s" if current_comparison_id is not None else ""
    params = [annotator.pk, project.pk, gold.window(project.gold_rate), current_comparison_id]
    params += [project.pk, annotator.pk, annotator.pk]
    if current_comparison_id is not None:
        params.append(current_comparison_id)
    params.append(UPCOMING_LIMIT)
    with connection.cursor() as cursor:
        cursor.execute(_GOLD_UPCOMING_SQL.format(passed=passed), params)
        rows = cursor.fetchall()
    since, after, holds_gold, _ = rows[0]
    return GoldPlace(
        since=int(since),
        after=int(after),
        holds_gold=bool(holds_gold),
        upcoming=[row[3] for row in rows if row[3] is not None],
    )


def _lease_insert(
    cursor: Any, *, annotator: Any, project: Project, comparison: Comparison, now: datetime, k: int
) -> Assignment | None:
    """Lease ``comparison`` (shown on a random side) if its slots, re-counted in the INSERT, are
    under ``k``; the lease comes back with its content loaded. None when the slot was taken."""
    db_now = db_datetime(now)
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
    if connection.vendor == "postgresql":
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
    if inserted is None:
        return None
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


# --- judgments ---------------------------------------------------------------------------------


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
# After the lock (a new statement: on PostgreSQL a fresh snapshot): the annotator's stored
# judgment, if any, and their latest lease on the comparison that was not skipped.
_JUDGMENT_AND_LEASE_SQL = (
    f"SELECT {_ASSIGNMENT.columns}, {_JUDGMENT.columns} "
    "FROM (SELECT 1 AS one) o "
    f"LEFT JOIN {J.table} j ON j.{J.annotator} = %s AND j.{J.comparison} = %s "
    f"LEFT JOIN {A.table} a ON a.{A.id} = (SELECT s.{A.id} FROM {A.table} s "
    f"WHERE s.{A.annotator} = %s AND s.{A.comparison} = %s AND s.{A.status} <> {SKIPPED} "
    f"ORDER BY s.{A.leased_at} DESC LIMIT 1)"
)

_JUDGMENT_FIELDS = [f for f in Judgment._meta.concrete_fields if not f.primary_key]
_JUDGMENT_COLUMNS = ", ".join(f.column for f in _JUDGMENT_FIELDS)
_JUDGMENT_INSERT_SQL = (
    f"INSERT INTO {J.table} ({_JUDGMENT_COLUMNS}) "
    f"VALUES ({', '.join(['%s'] * len(_JUDGMENT_FIELDS))}) RETURNING {J.id}"
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
    f"lease AS (SELECT s.* FROM {A.table} s "
    f"WHERE s.{A.annotator} = %s AND s.{A.comparison} = %s AND s.{A.status} <> {SKIPPED} "
    f"ORDER BY s.{A.leased_at} DESC LIMIT 1), "
    f"existing AS (SELECT e.* FROM {J.table} e "
    f"WHERE e.{J.annotator} = %s AND e.{J.comparison} = %s), "
    f"ins AS (INSERT INTO {J.table} ({_JUDGMENT_COLUMNS}) "
    "SELECT "
    + ", ".join(
        f"lease.{A.shown_left}" if f.attname == "shown_left" else "%s" for f in _JUDGMENT_FIELDS
    )
    + f" FROM lease, counted WHERE lease.{A.status} = {ACTIVE} AND lease.{A.expires_at} > %s "
    f"AND NOT EXISTS (SELECT 1 FROM existing) RETURNING {J.id}), "
    f"done AS (UPDATE {A.table} SET {A.status} = {DONE} "
    f"WHERE {A.id} IN (SELECT lease.{A.id} FROM lease, ins)) "
    f"SELECT counted.{C.judgment_count}, counted.k, {_ASSIGNMENT.columns}, {_JUDGMENT.columns}, "
    f"(SELECT {J.id} FROM ins) "
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


# --- rank: the absolute check (Project.ask_acceptable) ---
def _acceptable_checked(choice: str, acceptable: bool | None) -> None:
    if acceptable is not None and choice == Choice.BOTH_BAD:
        raise LabelingError(
            "acceptable must be empty when choice is both_bad (both are unacceptable)",
            field="acceptable",
        )


# --- end rank ---


def judgment_submit(
    *,
    annotator: Any,
    comparison: Comparison,
    choice: str,
    strength: int | None = None,
    rationale: str = "",
    flags: Sequence[str] = (),
    time_spent_ms: int | None = None,
    acceptable: bool | None = None,  # rank: Judgment.acceptable
    now: datetime | None = None,
    _retried: bool = False,
) -> SubmitResult:
    """Store one judgment. A retried submit returns the stored judgment and writes nothing."""
    _judgment_checked(choice=choice, strength=strength, flags=flags, time_spent_ms=time_spent_ms)
    _acceptable_checked(choice, acceptable)  # rank
    submit = {"annotator": annotator, "comparison": comparison, "choice": choice,
              "strength": strength, "rationale": rationale, "flags": flags,
              "time_spent_ms": time_spent_ms, "acceptable": acceptable}  # fmt: skip
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
    acceptable: bool | None = None,  # rank: Judgment.acceptable
    now: datetime | None = None,
) -> tuple[SubmitResult, Assignment | None]:
    """``judgment_submit`` then ``assignment_claim_next`` in ``project``, in one transaction.

    One commit per judgment instead of two: one WAL flush on PostgreSQL, one turn of the write
    lock on SQLite. Same outcomes as the two calls one after the other; when the single
    transaction cannot give them (a retried submit, the annotator's concurrent claim, every
    claimable row locked by others), it falls back to exactly those two calls.
    """
    _judgment_checked(choice=choice, strength=strength, flags=flags, time_spent_ms=time_spent_ms)
    _acceptable_checked(choice, acceptable)  # rank
    now = now or timezone.now()
    submit = {
        "acceptable": acceptable,  # rank
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
    acceptable: bool | None = None,  # rank
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
        acceptable=acceptable,  # rank
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
        cursor.execute(_LEASE_STATUS_SQL, [AssignmentStatus.DONE.value, lease.pk])
    judgment.pk = inserted
    saved(judgment)
    return judgment, lease


def judgment_undo(*, annotator: Any, project: Project, now: datetime | None = None) -> Assignment:
    """Take back the annotator's last judgment in a project and lease its comparison again."""
    now = now or timezone.now()
    with transaction.atomic():
        last = (
            Judgment.objects.filter(
                annotator=annotator,
                comparison__project=project,
                source=Source.HUMAN,
                ranking__isnull=True,  # rank: a ranking's judgments go with their ranking
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
        judgment_counts_refresh(comparison_ids=[locked.pk])
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
    ids = id_list(comparison_ids)  # a published dataset can hold more than SQLite binds
    with transaction.atomic():
        Assignment.objects.filter(comparison__in=ids, status=AssignmentStatus.ACTIVE).update(
            status=AssignmentStatus.RELEASED
        )
        return Comparison.objects.filter(pk__in=ids).update(status=ComparisonStatus.CLOSED)
