"""Preference exports: select judgments, decide each comparison, stream rows in a format.

The comparisons (with their texts) and their judgments (or per-comparison vote counts the
database computes) are read side by side in id order from chunked, server-side cursors
(``connection.chunked_cursor``) and merged, so memory stays flat however large the project.
What the votes of one comparison mean (decision, margin, weight, tie and both-bad policies) is
``labeling.preferences``'s: the same rules as a round's training snapshot. Aggregation is the
majority decision, unanimous only, or every judgment as its own row; rows are TRL preference rows
(standard or conversational), KTO unpaired rows, Anthropic HH transcripts, or raw per-annotator
judgments, in JSON Lines, CSV or Parquet (files and Hugging Face dataset directories:
``export_files``). The split is by prompt (a hash of the prompt id and a seed), so no prompt is
ever in both train and test. Gold comparisons (``labeling.gold``) are in no export. With
``adjudicated=prefer`` a reviewer's adjudication decides its comparison in place of the votes
(``labeling.preferences``); the default ignores adjudications.

Why over 500 lines: the column layouts of the two cursors (the ``T_*`` / ``V_*`` indexes) and the
one hot loop that reads them by index belong together; split, each half would have to know the
other's layout.
"""

from __future__ import annotations

import functools
import itertools
import json
import operator
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.utils.text import slugify

from labeling import preferences, reliability
from labeling.interchange.containers import (
    rows_encode,
)
from labeling.interchange.formats import RAW_COLUMNS, hh_transcript, prompt_text
from labeling.interchange.specs import ExportSpec, ExportStats
from labeling.models import Adjudication, Comparison, Judgment, Project, Split
from labeling.services import LabelingError

CHUNK_ROWS = 5000


# --- reading -----------------------------------------------------------------------------------
#
# Two cursors read in comparison-id order and are merged here (a merge join): one over the
# comparisons with their prompt and response texts, one over the judgments (or, for majority and
# unanimous aggregation, their per-comparison counts computed by the database). Neither needs a
# sort (both walk an index in id order), texts are read once per comparison, and nothing is held
# beyond the current chunk.

_TEXT_COLUMNS = (
    "id",
    "prompt_id",
    "prompt__external_id",
    "prompt__messages",
    "prompt__split",
    "response_a__text",
    "response_a__model_name",
    "response_a__checkpoint_ref",
    "response_b__text",
    "response_b__model_name",
    "response_b__checkpoint_ref",
)
_TEXT_RAW = (
    "prompt__metadata",
    "response_a__external_id",
    "response_a__generation_params",
    "response_a__seed",
    "response_b__external_id",
    "response_b__generation_params",
    "response_b__seed",
    "batch",
    "priority",
)
(
    T_ID,
    T_PROMPT,
    T_PROMPT_EXT,
    T_MESSAGES,
    T_SPLIT,
    T_A_TEXT,
    T_A_MODEL,
    T_A_CKPT,
    T_B_TEXT,
    T_B_MODEL,
    T_B_CKPT,
    T_METADATA,
    T_A_EXT,
    T_A_PARAMS,
    T_A_SEED,
    T_B_EXT,
    T_B_PARAMS,
    T_B_SEED,
    T_BATCH,
    T_PRIORITY,
) = range(len(_TEXT_COLUMNS) + len(_TEXT_RAW))

_VOTE_COLUMNS = ("comparison_id", "annotator__username", "choice", "strength", "flags")
_VOTE_RAW = ("rationale", "shown_left", "time_spent_ms", "source", "origin", "created_at")
(
    V_COMPARISON,
    V_USER,
    V_CHOICE,
    V_STRENGTH,
    V_FLAGS,
    V_RATIONALE,
    V_SHOWN_LEFT,
    V_TIME,
    V_SOURCE,
    V_ORIGIN,
    V_CREATED,
) = range(len(_VOTE_COLUMNS) + len(_VOTE_RAW))

#: Per-comparison counts: n, votes for a / b / tie / both_bad, summed and counted strengths.
Counts = tuple[int, int, int, int, int, int, int, int, int]


def _comparisons(project: Project, spec: ExportSpec) -> QuerySet[Comparison]:
    # Gold comparisons measure annotators; no export holds them, the raw one included.
    queryset = Comparison.objects.filter(project=project).not_gold()
    if spec.rounds:
        queryset = queryset.filter(preferences.rounds_q(spec.rounds))
    if spec.batch:
        queryset = queryset.filter(batch=spec.batch)
    if spec.dataset_format != "raw":  # rank: unacceptable pairs go to the rewrite export
        queryset = queryset.exclude(pk__in=preferences.unacceptable_comparisons())
    return queryset


def _judgments(project: Project, spec: ExportSpec) -> QuerySet[Judgment]:
    queryset = Judgment.objects.filter(comparison_id__in=_comparisons(project, spec).values("id"))
    if spec.since:
        queryset = queryset.filter(created_at__gte=spec.since)
    if spec.until:
        queryset = queryset.filter(created_at__lte=spec.until)
    if spec.annotators:
        queryset = queryset.filter(annotator__username__in=spec.annotators)
    if spec.source != "all":
        queryset = queryset.filter(source=spec.source)
    return queryset


def _cursor_rows(queryset: QuerySet[Any]) -> Iterator[tuple[Any, ...]]:
    """Rows of a values_list queryset from a chunked (server-side on PostgreSQL) cursor, as the
    database returns them (JSON may come as text: see ``_json_value``)."""
    sql, params = queryset.query.get_compiler(using=queryset.db).as_sql()
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(CHUNK_ROWS):
            yield from rows


def _texts(project: Project, spec: ExportSpec) -> Iterator[tuple[Any, ...]]:
    columns = _TEXT_COLUMNS + (_TEXT_RAW if spec.dataset_format == "raw" else ())
    return _cursor_rows(_comparisons(project, spec).order_by("id").values_list(*columns))


def _votes(project: Project, spec: ExportSpec) -> Iterator[tuple[Any, ...]]:
    columns = _VOTE_COLUMNS + (_VOTE_RAW if spec.dataset_format == "raw" else ())
    return _cursor_rows(
        _judgments(project, spec).order_by("comparison_id", "id").values_list(*columns)
    )


def _counted(project: Project, spec: ExportSpec) -> Iterator[tuple[Any, ...]]:
    """``(comparison_id, n, na, nb, nt, nbb, sa, sb, ka, kb)`` per comparison, by the database."""

    def votes(choice: str) -> Count:
        return Count("id", filter=Q(choice=choice))

    queryset = (
        _judgments(project, spec)
        .order_by("comparison_id")
        .values("comparison_id")
        .annotate(
            n=Count("id"),
            na=votes("a"),
            nb=votes("b"),
            nt=votes("tie"),
            nbb=votes("both_bad"),
            sa=Sum("strength", filter=Q(choice="a")),
            sb=Sum("strength", filter=Q(choice="b")),
            ka=Count("strength", filter=Q(choice="a")),
            kb=Count("strength", filter=Q(choice="b")),
        )
        .values_list("comparison_id", "n", "na", "nb", "nt", "nbb", "sa", "sb", "ka", "kb")
    )
    return _cursor_rows(queryset)


def _flagged(project: Project, spec: ExportSpec) -> set[int]:
    """Comparisons with a judgment carrying one of the excluded flags."""
    if not spec.exclude_flags:
        return set()
    excluded = set(spec.exclude_flags)
    return {
        comparison_id
        for comparison_id, flags in _cursor_rows(
            _judgments(project, spec).values_list("comparison_id", "flags")
        )
        if flags and flags != "[]" and excluded.intersection(_json_value(flags))
    }


def _adjudications(project: Project, spec: ExportSpec) -> dict[int, tuple[str, int | None]]:
    """``adjudicated=prefer``: each selected comparison's adjudication as (choice, strength)."""
    return {
        comparison_id: (choice, strength)
        for comparison_id, choice, strength in Adjudication.objects.filter(
            comparison__in=_comparisons(project, spec)
        ).values_list("comparison_id", "choice", "strength")
    }


def _annotator_weights(project: Project, spec: ExportSpec) -> dict[str, float]:
    """Each annotator's vote weight under ``spec.annotator_weights`` (``labeling.reliability``),
    estimated once per export on the judgments it selects: the filters and the split (so a
    round's snapshot export, ``split=train``, sees the judgments the round did), before any
    decision rule (flags, agreement, policies). One pass over four small columns."""
    prompts = _PromptCache(spec)
    splits: dict[int, str] = {}
    votes: list[reliability.Vote] = []
    columns = (
        "comparison_id",
        "annotator__username",
        "choice",
        "comparison__prompt_id",
        "comparison__prompt__external_id",
        "comparison__prompt__split",
    )
    queryset = _judgments(project, spec).order_by("comparison_id", "id").values_list(*columns)
    for comparison_id, username, choice, prompt_pk, external_id, stored in _cursor_rows(queryset):
        if spec.split != "all":
            split = splits.get(prompt_pk)
            if split is None:
                split = prompts.split_of(preferences.split_key(external_id, prompt_pk), stored)
                splits[prompt_pk] = split
            if split != spec.split:
                continue
        votes.append((comparison_id, username, choice))
    return {
        str(name): weight
        for name, weight in reliability.annotator_weights(votes, spec.annotator_weights).items()
    }


def _json_value(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _iso(value: Any) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


# --- aggregation -------------------------------------------------------------------------------
#
# What the votes decide, their margin and weight are defined once, in ``labeling.preferences``.


def _votes_of(counts: tuple[Any, ...]) -> preferences.Votes:
    """``Votes`` from ``(n, na, nb, nt, nbb, sa, sb, ka, kb)`` (the database's or ``_counts``)."""
    _, na, nb, nt, nbb, sa, sb, ka, kb = counts
    return preferences.Votes(na, nb, nt, nbb, sa or 0, ka, sb or 0, kb)


def _counts(group: list[tuple[Any, ...]]) -> Counts:
    n = na = nb = nt = sa = sb = ka = kb = 0
    for row in group:
        n += 1
        choice = row[V_CHOICE]
        if choice == "a":
            na += 1
            if row[V_STRENGTH] is not None:
                sa += row[V_STRENGTH]
                ka += 1
        elif choice == "b":
            nb += 1
            if row[V_STRENGTH] is not None:
                sb += row[V_STRENGTH]
                kb += 1
        elif choice == "tie":
            nt += 1
    return n, na, nb, nt, n - na - nb - nt, sa, sb, ka, kb


# --- rows --------------------------------------------------------------------------------------


class _PromptCache:
    """Decoded prompts and their split, kept for the prompts seen recently."""

    def __init__(self, spec: ExportSpec) -> None:
        self.spec = spec
        self.entries: dict[int, tuple[list[dict[str, str]], str, str, str, str]] = {}

    def get(self, row: tuple[Any, ...]) -> tuple[list[dict[str, str]], str, str, str, str]:
        """``(messages, prompt text, prompt id, split, canonical messages JSON)`` of a text
        row's prompt."""
        prompt_pk = row[T_PROMPT]
        entry = self.entries.get(prompt_pk)
        if entry is None:
            if len(self.entries) >= 4096:
                self.entries.clear()
            messages = _json_value(row[T_MESSAGES])
            key = preferences.split_key(row[T_PROMPT_EXT], prompt_pk)
            entry = (
                messages,
                prompt_text(messages),
                key,
                self.split_of(key, row[T_SPLIT]),
                preferences.messages_json(messages),
            )
            self.entries[prompt_pk] = entry
        return entry

    def split_of(self, key: str, stored: str) -> str:
        """``test`` for a prompt held out or placed in the test share
        (``preferences.split_position``), else ``train``."""
        if stored == Split.TEST:
            return "test"
        position = preferences.split_position(key, self.spec.seed)
        return "test" if position < self.spec.test_size else "train"


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


UNPAIRED_FORMATS = ("kto", "kto_conversational")


def _pair_builder(spec: ExportSpec) -> Callable[..., list[dict[str, Any]]]:
    """A function (messages, text, chosen, rejected, margin, weight) → output rows (paired
    formats), or (messages, text, completion, label, weight) → rows (unpaired KTO formats)."""
    fmt = spec.dataset_format

    def extras(row: dict[str, Any], margin: float, weight: float) -> dict[str, Any]:
        if spec.margin:
            row["margin"] = margin
        if spec.weight:
            row["weight"] = weight
        return row

    def weighted(row: dict[str, Any], weight: float) -> dict[str, Any]:
        if spec.weight:
            row["weight"] = weight
        return row

    if fmt == "trl":
        return lambda m, t, c, r, mg, w: [extras({"prompt": t, "chosen": c, "rejected": r}, mg, w)]
    if fmt == "trl_conversational":
        return lambda m, t, c, r, mg, w: [
            extras({"prompt": m, "chosen": _assistant(c), "rejected": _assistant(r)}, mg, w)
        ]
    if fmt == "hh":
        return lambda m, t, c, r, mg, w: [
            extras({"chosen": hh_transcript(m, c), "rejected": hh_transcript(m, r)}, mg, w)
        ]
    if fmt == "kto":
        return lambda m, t, c, label, w: [
            weighted({"prompt": t, "completion": c, "label": label}, w)
        ]
    if fmt == "kto_conversational":
        return lambda m, t, c, label, w: [
            weighted({"prompt": m, "completion": _assistant(c), "label": label}, w)
        ]
    raise LabelingError(f"unknown format {fmt!r}", field="format")


def _raw_row(
    text: tuple[Any, ...], vote: tuple[Any, ...], prompt: tuple[Any, ...]
) -> dict[str, Any]:
    choice, shown_left = vote[V_CHOICE], vote[V_SHOWN_LEFT]
    shown_choice = choice
    if choice in preferences.SIDES:
        shown_choice = "left" if choice == shown_left else "right"
    values = (
        prompt[2],
        prompt[0],
        _json_value(text[T_METADATA]),
        text[T_SPLIT],
        text[T_A_TEXT],
        text[T_A_EXT],
        text[T_A_MODEL],
        text[T_A_CKPT],
        _json_value(text[T_A_PARAMS]),
        text[T_A_SEED],
        text[T_B_TEXT],
        text[T_B_EXT],
        text[T_B_MODEL],
        text[T_B_CKPT],
        _json_value(text[T_B_PARAMS]),
        text[T_B_SEED],
        text[T_BATCH],
        text[T_PRIORITY],
        vote[V_USER],
        choice,
        vote[V_STRENGTH],
        vote[V_RATIONALE],
        _json_value(vote[V_FLAGS]),
        shown_left,
        shown_choice,
        vote[V_TIME],
        vote[V_ORIGIN] or vote[V_SOURCE],
        _iso(vote[V_CREATED]),
    )
    return dict(zip(RAW_COLUMNS, values, strict=True))


def preference_rows(
    *, project: Project, spec: ExportSpec, stats: ExportStats, hashing: bool = True
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(split, row)`` pairs in export order; split is ``train``/``test`` or ``both_bad``.

    The hot loop of every export: figures are kept in locals and written to ``stats`` at the end.
    Votes become pairs (or KTO completions) through ``labeling.preferences``; their content hash
    goes to ``stats.preference_hash``.
    """
    # Reliability weights (opt-in): estimated once, before the rows; the votes are then read one
    # by one (the annotator of each matters) and decided by labeling.preferences.weighted_decision.
    weights = _annotator_weights(project, spec) if spec.annotator_weights != "none" else None
    drop_below = spec.drop_below
    per_judgment = spec.dataset_format == "raw" or spec.aggregation == "all" or weights is not None
    per_vote_rows = spec.dataset_format == "raw" or spec.aggregation == "all"
    build = None if spec.dataset_format == "raw" else _pair_builder(spec)
    unpaired = spec.dataset_format in UNPAIRED_FORMATS
    prompts = _PromptCache(spec)
    prompt_cache, prompt_of = prompts.entries, prompts.get
    flagged = _flagged(project, spec)
    wanted_split = spec.split
    side_both_bad = spec.both_bad in ("separate", "only")
    only_both_bad = spec.both_bad == "only"
    # the policy ``labeling.preferences`` applies; separate/only set both-bad rows aside instead
    ties_policy = spec.ties
    both_bad_policy = "drop" if side_both_bad else spec.both_bad
    unanimous = spec.aggregation == "unanimous"
    min_agreement = spec.min_agreement
    dropped = stats.dropped
    annotators = stats.annotators
    digest = preferences.PreferenceHash()
    add_pair: Callable[..., None] = digest.add_pair
    add_completion: Callable[..., None] = digest.add_completion
    if not hashing:  # a stream whose card is asked for separately
        add_pair = add_completion = _skip
    undecided = preferences.UNDECIDED

    def yielded(decision: preferences.Decision, weight: float | None) -> tuple[Any, ...]:
        """The pairs (or KTO completions) a decision yields under the export's policies."""
        if unpaired:
            return preferences.completions_of(decision, both_bad=both_bad_policy, weight=weight)
        return preferences.pairs_of(
            decision, ties=ties_policy, both_bad=both_bad_policy, weight=weight
        )

    # Few distinct vote counts occur: decisions and what they yield are cached by the raw counts.
    @functools.lru_cache(maxsize=8192)
    def counts_outcome(counts: Counts) -> tuple[preferences.Decision, tuple[Any, ...]]:
        decision = preferences.decide(_votes_of(counts))
        return decision, yielded(decision, None)

    @functools.lru_cache(maxsize=8192)
    def vote_outcome(
        choice: str, strength: int | None, n: int
    ) -> tuple[preferences.Decision, tuple[Any, ...]]:
        decision = preferences.vote_decision(choice, strength)
        return decision, yielded(decision, 1.0 / n)

    def weighted_outcome(
        group: list[tuple[Any, ...]],
    ) -> tuple[preferences.Decision, tuple[Any, ...], list[tuple[Any, ...]]]:
        """The weighted decision of one comparison's votes, what it yields, the votes kept."""
        assert weights is not None
        kept = [vote for vote in group if weights[vote[V_USER]] >= drop_below]
        decision, weight = preferences.weighted_decision(
            (vote[V_CHOICE], vote[V_STRENGTH], weights[vote[V_USER]]) for vote in kept
        )
        return decision, yielded(decision, weight), kept

    # adjudicated=prefer: an adjudicated comparison's decision is its adjudication's
    adjudications = _adjudications(project, spec) if spec.adjudicated == "prefer" else {}

    @functools.lru_cache(maxsize=16)
    def adjudged_outcome(
        adjudication: tuple[str, int | None],
    ) -> tuple[preferences.Decision, tuple[Any, ...]]:
        decision = preferences.adjudicated_decision(*adjudication)
        return decision, yielded(decision, None)

    if weights is not None:
        stats.reliability.update(weights)
    if per_judgment:
        keyed: Iterator[tuple[Any, ...]] = (
            (comparison_id, *_counts(group := list(rows)), group)
            for comparison_id, rows in itertools.groupby(_votes(project, spec), key=_first)
        )
    else:
        keyed = _counted(project, spec)
    if not per_vote_rows:
        judged = _judgments(project, spec).filter(annotator=OuterRef("pk"))
        annotators.update(
            get_user_model().objects.filter(Exists(judged)).values_list("username", flat=True)
        )
    texts = _texts(project, spec)
    models: Counter[tuple[str, str, str, str]] = Counter()
    split_rows = {"train": 0, "test": 0}
    split_prompts = stats.prompts_by_split
    comparisons = judgments = exported = multi = pair_agree = pair_total = unanimous_multi = 0
    agreement_sum = 0.0
    text: tuple[Any, ...] | None = next(texts, None)
    try:
        for item in keyed:
            comparison_id = item[0]
            while text is not None and text[T_ID] < comparison_id:
                text = next(texts, None)
            if text is None:
                break
            if text[T_ID] != comparison_id:
                continue
            n = item[1]
            comparisons += 1
            judgments += n
            if flagged and comparison_id in flagged:
                dropped["flagged"] += 1
                continue
            if weights is None:
                decision, examples = counts_outcome(item[1:10])
            else:
                decision, examples, kept = weighted_outcome(item[10])
                stats.votes_dropped_unreliable += n - len(kept)
            if decision.n > 1:
                multi += 1
                agreement_sum += decision.share
                pair_agree += decision.agreeing_pairs
                pair_total += decision.pairs
                if decision.unanimous:
                    unanimous_multi += 1
            adjudged = adjudications.get(comparison_id) if adjudications else None
            if adjudged is not None:
                decision, examples = adjudged_outcome(adjudged)
                stats.adjudicated += 1
            if min_agreement is not None and decision.share < min_agreement:
                dropped["below_min_agreement"] += 1
                continue
            prompt = prompt_cache.get(text[T_PROMPT]) or prompt_of(text)
            split = prompt[3]
            if wanted_split != "all" and split != wanted_split:
                dropped[f"not_in_{wanted_split}_split"] += 1
                continue
            emitted = 0
            if build is None:
                for vote in item[10]:
                    annotators.add(vote[V_USER])
                    yield split, _raw_row(text, vote, prompt)
                    emitted += 1
            else:
                if adjudged is not None:
                    outcomes = [(decision, examples, None)]
                elif per_vote_rows and weights is not None:
                    outcomes = [
                        (
                            one := preferences.vote_decision(vote[V_CHOICE], vote[V_STRENGTH]),
                            yielded(one, weights[vote[V_USER]] / len(kept)),
                            vote[V_USER],
                        )
                        for vote in kept
                    ]
                elif per_vote_rows:
                    outcomes = [
                        (*vote_outcome(vote[V_CHOICE], vote[V_STRENGTH], n), vote[V_USER])
                        for vote in item[10]
                    ]
                elif unanimous and not decision.unanimous:
                    dropped["not_unanimous"] += 1
                    continue
                elif decision.outcome == undecided:
                    dropped["undecided"] += 1
                    continue
                else:
                    outcomes = [(decision, examples, None)]
                a_text, b_text = text[T_A_TEXT], text[T_B_TEXT]
                for one, found, username in outcomes:
                    if one.outcome == "both_bad" and side_both_bad:
                        stats.both_bad_rows += 1
                        yield (
                            "both_bad",
                            {
                                "prompt_id": prompt[2],
                                "prompt": prompt[0],
                                "response_a": a_text,
                                "response_b": b_text,
                            },
                        )
                        continue
                    if only_both_bad:
                        continue
                    if not found:
                        dropped[one.outcome] += 1
                        continue
                    if unpaired:
                        for example in found:
                            completion = a_text if example.side == "a" else b_text
                            add_completion(prompt[4], completion, example.desirable, example.weight)
                            for out in build(
                                prompt[0], prompt[1], completion, example.desirable, example.weight
                            ):
                                yield split, out
                                emitted += 1
                    else:
                        for pair in found:
                            chosen, rejected = (
                                (a_text, b_text) if pair.chosen == "a" else (b_text, a_text)
                            )
                            add_pair(prompt[4], chosen, rejected, pair.margin, pair.weight)
                            for out in build(
                                prompt[0], prompt[1], chosen, rejected, pair.margin, pair.weight
                            ):
                                yield split, out
                                emitted += 1
                    if username is not None:
                        annotators.add(username)
            if emitted:
                exported += 1
                split_rows[split] += emitted
                split_prompts[split].add(text[T_PROMPT])
                models[(text[T_A_MODEL], text[T_A_CKPT], text[T_B_MODEL], text[T_B_CKPT])] += 1
    finally:
        stats.comparisons += comparisons
        stats.judgments += judgments
        stats.comparisons_exported += exported
        stats.rows += split_rows["train"] + split_rows["test"]
        stats.rows_by_split.update({k: v for k, v in split_rows.items() if v})
        stats.multi_judged += multi
        stats.agreement_sum += agreement_sum
        stats.pair_agree += pair_agree
        stats.pair_total += pair_total
        stats.unanimous_multi += unanimous_multi
        if build is not None and hashing:
            stats.preference_hash = digest.hexdigest()
        for (a_model, a_checkpoint, b_model, b_checkpoint), count in models.items():
            stats.models[(a_model, a_checkpoint)] += count
            stats.models[(b_model, b_checkpoint)] += count


_first = operator.itemgetter(0)


def _skip(*_: Any) -> None:
    """Hashing turned off."""


def main_rows(rows: Iterator[tuple[str, dict[str, Any]]], side: Any) -> Iterator[dict[str, Any]]:
    """The rows of the dataset itself; both-bad rows go to ``side`` (``append``) when given."""
    for split, row in rows:
        if split == "both_bad":
            if side is not None:
                side.append(row)
            continue
        yield row


def export_stream(
    *, project: Project, spec: ExportSpec, stats: ExportStats, content_hash: bool = True
) -> Iterator[bytes]:
    """The export as a stream of bytes (the API's response body). Both-bad rows go into the
    stream only with ``both_bad=only`` (then they are all it holds). ``content_hash=False``
    skips hashing the rows (the API's card is computed by its own request)."""
    rows = preference_rows(project=project, spec=spec, stats=stats, hashing=content_hash)
    if spec.both_bad == "only":
        selected = (row for split, row in rows if split == "both_bad")
        return rows_encode(
            selected, spec=spec, stats=stats, container="jsonl", content_hash=content_hash
        )
    return rows_encode(
        main_rows(rows, None),
        spec=spec,
        stats=stats,
        container=spec.container,
        content_hash=content_hash,
    )


def export_filename(project: Project, spec: ExportSpec, *, suffix: str | None = None) -> str:
    """A safe file name: the slugified project name, the format, the container."""
    name = slugify(project.name)[:80] or f"project-{project.pk}"
    extension = suffix or spec.container
    kind = "both-bad" if spec.both_bad == "only" else spec.dataset_format.replace("_", "-")
    return f"{name}-{kind}.{extension}"
