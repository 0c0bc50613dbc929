"""Imports of existing preference datasets: TRL standard/conversational, HH, raw judgments.

Like every import (see ``labeling.interchange.imports``, which holds the shared ``ImportResult``
and batch sizes): every row is read and checked first, a file with any bad row raises
:class:`ImportRejected` and writes nothing, then everything is written in one transaction.

An import creates the prompts, responses, comparisons and judgments it needs, marked
``Source.IMPORTED``; the judgments belong to a per-format import user (``import-trl``…) or, for the
raw format, to the original annotators by username. The judged comparisons' counts are re-counted
by the queue's one writer of ``judgment_count`` (``services.judgment_counts_refresh``).

(A little over 500 lines: the four formats' row readers and the writer share the one
``_Preference`` record; split, neither half reads on its own.)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction

from labeling.interchange.formats import (
    IMPORT_FORMATS,
    ErrorList,
    RowError,
    completion_check,
    dict_check,
    float_check,
    hh_parse,
    id_check,
    int_check,
    json_cell,
    messages_check,
    text_check,
)
from labeling.interchange.imports import BATCH_SIZE, PAIRING_CHUNK, ImportResult, Rows
from labeling.models import (
    Choice,
    Comparison,
    Judgment,
    Project,
    Prompt,
    Response,
    Side,
    Source,
    Split,
    text_hash,
)
from labeling.services import LabelingError, judgment_counts_refresh, judgment_validate


@dataclass
class _Side:
    text: str
    model_name: str = ""
    checkpoint_ref: str = ""
    generation_params: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    external_id: str = ""


@dataclass
class _Preference:
    line: int
    prompt_id: str
    messages: list[dict[str, str]]
    metadata: dict[str, Any]
    split: str
    a: _Side
    b: _Side
    annotator: str
    choice: str
    strength: int | None = None
    rationale: str = ""
    flags: list[str] = field(default_factory=list)
    shown_left: str = Side.A
    time_spent_ms: int | None = None
    origin: str = ""
    created_at: datetime | None = None
    batch: str = ""
    priority: int = 0


def _content_id(messages: list[dict[str, str]]) -> str:
    digest = hashlib.sha256(
        json.dumps(messages, ensure_ascii=False, separators=(",", ":")).encode()
    ).hexdigest()
    return f"sha-{digest[:16]}"


def _strength_from_margin(value: Any, line: int, unit: str) -> int | None:
    margin = float_check(value, line, "margin", unit=unit)
    if margin is None or margin <= 0:
        return None
    return max(1, min(4, round(margin)))


def _implicit_pair(line: int, row: dict[str, Any], unit: str) -> tuple[Any, ...]:
    """TRL's implicit-prompt rows: ``chosen``/``rejected`` are whole conversations that share
    everything but the last (assistant) message, which is the prompt."""
    sides = []
    for name in ("chosen", "rejected"):
        turns = messages_check(row.get(name), line, name, unit=unit, last_role="assistant")
        if len(turns) < 2:
            raise RowError(
                line,
                name,
                "without a prompt, must be a conversation ending in the answer",
                unit=unit,
            )
        sides.append(turns)
    if sides[0][:-1] != sides[1][:-1]:
        raise RowError(
            line,
            "rejected",
            "must share the conversation before the last answer with chosen",
            unit=unit,
        )
    prompt = messages_check(sides[0][:-1], line, "chosen", unit=unit)
    return prompt, sides[0][-1]["content"], sides[1][-1]["content"]


def _pair_row(line: int, row: dict[str, Any], unit: str, conversational: bool) -> tuple[Any, ...]:
    if row.get("prompt") in (None, "") and isinstance(
        json_cell(row.get("chosen"), line, "chosen", unit=unit, strict=False), list
    ):
        return _implicit_pair(line, row, unit)
    for name in ("prompt", "chosen", "rejected"):
        if row.get(name) in (None, ""):
            raise RowError(line, name, "is required", unit=unit)
    prompt = json_cell(row["prompt"], line, "prompt", unit=unit, strict=False)
    if conversational and not isinstance(prompt, list):
        raise RowError(line, "prompt", "must be a list of messages (conversational)", unit=unit)
    messages = messages_check(prompt, line, "prompt", unit=unit)
    chosen = completion_check(row["chosen"], line, "chosen", unit=unit)
    rejected = completion_check(row["rejected"], line, "rejected", unit=unit)
    return messages, chosen, rejected


def _preference_row(
    line: int, row: Any, unit: str, dataset_format: str, annotator: str
) -> _Preference:
    if not isinstance(row, dict):
        raise RowError(line, None, "must be an object", unit=unit)
    if dataset_format in ("trl", "trl_conversational"):
        messages, chosen, rejected = _pair_row(
            line, row, unit, conversational=dataset_format == "trl_conversational"
        )
    elif dataset_format == "hh":
        chosen_turns = hh_parse(row.get("chosen"), line, "chosen", unit=unit)
        rejected_turns = hh_parse(row.get("rejected"), line, "rejected", unit=unit)
        if chosen_turns[:-1] != rejected_turns[:-1]:
            raise RowError(
                line,
                "rejected",
                "must share the conversation before the last answer with chosen",
                unit=unit,
            )
        messages = chosen_turns[:-1]
        chosen, rejected = chosen_turns[-1]["content"], rejected_turns[-1]["content"]
    else:
        return _raw_row(line, row, unit)
    if chosen == rejected:
        raise RowError(line, "rejected", "must differ from chosen", unit=unit)
    external = id_check(row.get("id", row.get("prompt_id")), line, "id", unit=unit)
    return _Preference(
        line=line,
        prompt_id=external or _content_id(messages),
        messages=messages,
        metadata={},
        split=Split.TRAIN,
        a=_Side(chosen),
        b=_Side(rejected),
        annotator=annotator,
        choice=Choice.A,
        strength=_strength_from_margin(row.get("margin"), line, unit),
    )


def _raw_side(row: dict[str, Any], side: str, line: int, unit: str) -> _Side:
    name = f"response_{side}"
    model = row.get(f"{name}_model") or ""
    checkpoint = row.get(f"{name}_checkpoint") or ""
    if not isinstance(model, str) or not isinstance(checkpoint, str):
        raise RowError(line, f"{name}_model", "must be a string", unit=unit)
    return _Side(
        text=text_check(row.get(name), line, name, unit=unit),
        model_name=model,
        checkpoint_ref=checkpoint[:64],
        generation_params=dict_check(row.get(f"{name}_params"), line, f"{name}_params", unit=unit),
        seed=int_check(row.get(f"{name}_seed"), line, f"{name}_seed", unit=unit),
        external_id=id_check(row.get(f"{name}_id"), line, f"{name}_id", unit=unit),
    )


def _raw_row(line: int, row: dict[str, Any], unit: str) -> _Preference:
    prompt_id = id_check(row.get("prompt_id"), line, "prompt_id", unit=unit)
    if not prompt_id:
        raise RowError(line, "prompt_id", "is required", unit=unit)
    messages = messages_check(row.get("prompt"), line, "prompt", unit=unit)
    split = row.get("prompt_split") or Split.TRAIN
    if split not in Split.values:
        raise RowError(line, "prompt_split", f"must be one of {', '.join(Split.values)}", unit=unit)
    annotator = row.get("annotator")
    if not isinstance(annotator, str) or not annotator.strip() or len(annotator) > 150:
        raise RowError(line, "annotator", "must be a username", unit=unit)
    strength = int_check(row.get("strength"), line, "strength", unit=unit)
    flags = json_cell(row.get("flags") or [], line, "flags", unit=unit)
    if not isinstance(flags, list) or not all(isinstance(flag, str) for flag in flags):
        raise RowError(line, "flags", "must be a list of flag names", unit=unit)
    choice = row.get("choice")
    try:
        judgment_validate(choice=choice, strength=strength, flags=flags)  # type: ignore[arg-type]
    except LabelingError as exc:
        raise RowError(line, exc.field, exc.message, unit=unit) from None
    shown_left = row.get("shown_left") or Side.A
    if shown_left not in Side.values:
        raise RowError(line, "shown_left", "must be a or b", unit=unit)
    source = row.get("source") or Source.IMPORTED
    if source not in Source.values:
        raise RowError(line, "source", f"must be one of {', '.join(Source.values)}", unit=unit)
    created_at = None
    if row.get("created_at"):
        try:
            created_at = datetime.fromisoformat(str(row["created_at"]))
        except ValueError:
            raise RowError(line, "created_at", "must be an ISO 8601 timestamp", unit=unit) from None
        if created_at.tzinfo is None:
            created_at = created_at.replace(tzinfo=UTC)
    rationale = row.get("rationale") or ""
    batch = row.get("batch") or ""
    if not isinstance(rationale, str) or not isinstance(batch, str) or len(batch) > 100:
        raise RowError(line, "batch", "must be a string of at most 100 characters", unit=unit)
    a, b = _raw_side(row, "a", line, unit), _raw_side(row, "b", line, unit)
    if a.text == b.text:
        raise RowError(line, "response_b", "must differ from response_a", unit=unit)
    return _Preference(
        line=line,
        prompt_id=prompt_id,
        messages=messages,
        metadata=dict_check(row.get("prompt_metadata"), line, "prompt_metadata", unit=unit),
        split=split,
        a=a,
        b=b,
        annotator=annotator.strip(),
        choice=str(choice),
        strength=strength,
        rationale=rationale,
        flags=sorted(set(flags)),
        shown_left=shown_left,
        time_spent_ms=int_check(row.get("time_spent_ms"), line, "time_spent_ms", unit=unit, low=0),
        origin=source,
        created_at=created_at,
        batch=batch,
        priority=int_check(row.get("priority"), line, "priority", unit=unit) or 0,
    )


_SWAP: dict[str, str] = {Choice.A: Choice.B, Choice.B: Choice.A}


#: Rows checked and written at a time: an import's memory stays flat whatever the file's size.
IMPORT_CHUNK_ROWS = 2000


def preferences_import(
    *,
    project: Project,
    rows: Rows,
    dataset_format: str,
    unit: str = "line",
    annotator: str | None = None,
    batch: str = "import",
) -> ImportResult:
    """Import an existing preference dataset (TRL standard/conversational, HH, raw judgments).

    Creates the prompts, responses, comparisons and judgments it needs, all marked imported.
    Prompts are matched by id (TRL/HH rows without one get a content-derived id), responses by
    text, comparisons by their pair of responses (either order); a judgment an annotator already
    gave on a comparison is a duplicate.

    Streams: rows are read, checked and written IMPORT_CHUNK_ROWS at a time inside one
    transaction, each chunk matched against the database (earlier chunks included), so memory
    stays flat with the file's size. A bad row stops the writing; the rest of the file is still
    checked (up to MAX_ERRORS errors are reported), then the transaction rolls back: all or
    nothing. On SQLite the import holds the write lock from its first row to its last.
    """
    if dataset_format not in IMPORT_FORMATS:
        raise LabelingError(
            f"unknown dataset format {dataset_format!r}; allowed: {', '.join(IMPORT_FORMATS)}",
            field="format",
        )
    importer = annotator or f"import-{dataset_format.replace('_', '-')}"
    result = ImportResult()
    errors = ErrorList()
    users: dict[str, int] = {}
    with transaction.atomic():
        for records in _record_chunks(rows, unit, dataset_format, importer, batch, errors):
            if not errors.errors:
                _chunk_write(project, records, users, unit, result, errors)
        errors.check()  # raised inside the transaction: every chunk written is rolled back
    return result


def _chunk_write(
    project: Project,
    records: list[_Preference],
    users: dict[str, int],
    unit: str,
    result: ImportResult,
    errors: ErrorList,
) -> None:
    prompts = _prompts_existing(project, {record.prompt_id for record in records})
    conflicts = _prompt_conflicts(records, prompts, unit)
    if conflicts:
        for error in conflicts:
            errors.add(error)
        return
    users.update(_users_ensure({record.annotator for record in records} - set(users), result))
    result.prompts_created += _prompts_create(project, records, prompts)
    responses = _responses_ensure(records, prompts, result)
    pairs = _comparisons_ensure(project, records, prompts, responses, result)
    touched = _judgments_create(records, prompts, responses, pairs, users, unit, result)
    judgment_counts_refresh(comparison_ids=touched)


def _record_chunks(
    rows: Rows, unit: str, dataset_format: str, importer: str, batch: str, errors: ErrorList
) -> Iterator[list[_Preference]]:
    """The checked rows, IMPORT_CHUNK_ROWS at a time; bad rows go to ``errors`` (reading stops
    once it is full)."""
    records: list[_Preference] = []
    for line, row in rows:
        if isinstance(row, RowError):
            errors.add(row)
        else:
            try:
                record = _preference_row(line, row, unit, dataset_format, importer)
            except RowError as error:
                errors.add(error)
            else:
                if dataset_format != "raw":
                    record.batch = batch
                if not errors.errors:  # after an error rows are only checked, not kept
                    records.append(record)
        if errors.full:
            break
        if len(records) >= IMPORT_CHUNK_ROWS:
            yield records
            records = []
    if records:
        yield records


def _prompts_existing(project: Project, external_ids: set[str]) -> dict[str, Prompt]:
    """The project's prompts with these ids (a chunk's worth: the IN list stays small)."""
    ids = sorted(external_ids)
    found: dict[str, Prompt] = {}
    for start in range(0, len(ids), BATCH_SIZE):
        for prompt in Prompt.objects.filter(
            project=project, external_id__in=ids[start : start + BATCH_SIZE]
        ).only("id", "external_id", "messages"):
            found[prompt.external_id] = prompt
    return found


def _prompt_conflicts(
    records: list[_Preference], prompts: dict[str, Prompt], unit: str
) -> list[RowError]:
    """One prompt id, one conversation: in the chunk and against the project (which holds the
    import's earlier chunks)."""
    errors = []
    first_messages: dict[str, list[dict[str, str]]] = {}
    for record in records:
        known = prompts.get(record.prompt_id)
        expected = (
            known.messages
            if known
            else first_messages.setdefault(record.prompt_id, record.messages)
        )
        if expected != record.messages:
            errors.append(
                RowError(
                    record.line,
                    "prompt",
                    f"prompt {record.prompt_id!r} already has different messages",
                    unit=unit,
                )
            )
    return errors


def _prompts_create(
    project: Project, records: list[_Preference], prompts: dict[str, Prompt]
) -> int:
    new: list[Prompt] = []
    for record in records:
        if record.prompt_id not in prompts:
            prompt = Prompt(
                project=project,
                external_id=record.prompt_id,
                messages=record.messages,
                metadata=record.metadata,
                split=record.split,
                source=Source.IMPORTED,
            )
            prompts[record.prompt_id] = prompt
            new.append(prompt)
    Prompt.objects.bulk_create(new, batch_size=BATCH_SIZE)
    return len(new)


#: (prompt pk, text hash) → response pk (existing) or Response (created by this import).
ResponseIndex = dict[tuple[int, str], Any]


def _response_pk(
    responses: ResponseIndex, prompts: dict[str, Prompt], record: _Preference, side: _Side
) -> int:
    value = responses[(prompts[record.prompt_id].pk, text_hash(side.text))]
    return value if isinstance(value, int) else int(value.pk)


def _responses_ensure(
    records: list[_Preference], prompts: dict[str, Prompt], result: ImportResult
) -> ResponseIndex:
    prompt_pks = [prompt.pk for prompt in prompts.values()]
    responses: ResponseIndex = {}
    for start in range(0, len(prompt_pks), PAIRING_CHUNK):
        for stored_pk, prompt_pk, stored_hash in Response.objects.filter(
            prompt_id__in=prompt_pks[start : start + PAIRING_CHUNK]
        ).values_list("pk", "prompt_id", "text_hash"):
            responses[(prompt_pk, stored_hash)] = stored_pk
    new: list[Response] = []
    for record in records:
        prompt_pk = prompts[record.prompt_id].pk
        for side in (record.a, record.b):
            key = (prompt_pk, text_hash(side.text))
            if key not in responses:
                response = Response(
                    prompt_id=prompt_pk,
                    text=side.text,
                    text_hash=key[1],
                    model_name=side.model_name,
                    checkpoint_ref=side.checkpoint_ref,
                    generation_params=side.generation_params,
                    seed=side.seed,
                    external_id=side.external_id,
                )
                responses[key] = response
                new.append(response)
    Response.objects.bulk_create(new, batch_size=BATCH_SIZE)
    result.responses_created += len(new)
    return responses


#: frozenset of the two response pks → (response a pk as stored, comparison pk or Comparison).
PairIndex = dict[frozenset[int], tuple[int, Any]]


def _comparisons_ensure(
    project: Project,
    records: list[_Preference],
    prompts: dict[str, Prompt],
    responses: ResponseIndex,
    result: ImportResult,
) -> PairIndex:
    prompt_pks = [prompt.pk for prompt in prompts.values()]
    pairs: PairIndex = {}
    for start in range(0, len(prompt_pks), PAIRING_CHUNK):
        for pk, a_pk, b_pk in Comparison.objects.filter(
            prompt_id__in=prompt_pks[start : start + PAIRING_CHUNK]
        ).values_list("pk", "response_a_id", "response_b_id"):
            pairs[frozenset((a_pk, b_pk))] = (a_pk, pk)
    new: list[Comparison] = []
    for record in records:
        a_pk = _response_pk(responses, prompts, record, record.a)
        b_pk = _response_pk(responses, prompts, record, record.b)
        if frozenset((a_pk, b_pk)) not in pairs:
            comparison = Comparison(
                project=project,
                prompt_id=prompts[record.prompt_id].pk,
                response_a_id=a_pk,
                response_b_id=b_pk,
                batch=record.batch,
                priority=record.priority,
            )
            pairs[frozenset((a_pk, b_pk))] = (a_pk, comparison)
            new.append(comparison)
    Comparison.objects.bulk_create(new, batch_size=BATCH_SIZE)
    result.comparisons_created += len(new)
    return pairs


def _judgments_create(
    records: list[_Preference],
    prompts: dict[str, Prompt],
    responses: ResponseIndex,
    pairs: PairIndex,
    users: dict[str, int],
    unit: str,
    result: ImportResult,
) -> list[int]:
    """Create the judgments (choices mapped onto the stored a/b order); returns the comparisons
    they went to."""
    prompt_pks = [prompt.pk for prompt in prompts.values()]
    judged: set[tuple[int, int]] = set()
    for start in range(0, len(prompt_pks), PAIRING_CHUNK):
        judged.update(
            Judgment.objects.filter(
                comparison__prompt_id__in=prompt_pks[start : start + PAIRING_CHUNK]
            ).values_list("annotator_id", "comparison_id")
        )
    new: list[Judgment] = []
    stamps: list[datetime | None] = []
    for record in records:
        a_pk = _response_pk(responses, prompts, record, record.a)
        b_pk = _response_pk(responses, prompts, record, record.b)
        stored_a, comparison = pairs[frozenset((a_pk, b_pk))]
        comparison_pk = comparison if isinstance(comparison, int) else comparison.pk
        user_pk = users[record.annotator]
        if (user_pk, comparison_pk) in judged:
            result.skip(f"{unit} {record.line} ({record.annotator} on {record.prompt_id})")
            continue
        judged.add((user_pk, comparison_pk))
        swapped = stored_a != a_pk
        new.append(
            Judgment(
                annotator_id=user_pk,
                comparison_id=comparison_pk,
                choice=_SWAP.get(record.choice, record.choice) if swapped else record.choice,
                strength=record.strength,
                rationale=record.rationale,
                flags=record.flags,
                shown_left=_SWAP[record.shown_left] if swapped else record.shown_left,
                time_spent_ms=record.time_spent_ms,
                source=Source.IMPORTED,
                origin=record.origin,
            )
        )
        stamps.append(record.created_at)
    Judgment.objects.bulk_create(new, batch_size=BATCH_SIZE)
    # bulk_create stamps auto_now_add fields with "now": put the dataset's times back.
    restored = []
    for judgment, stamp in zip(new, stamps, strict=True):
        if stamp is not None:
            judgment.created_at = stamp
            restored.append(judgment)
    Judgment.objects.bulk_update(restored, ["created_at"], batch_size=BATCH_SIZE)
    result.judgments_created += len(new)
    return sorted({judgment.comparison_id for judgment in new})


def _users_ensure(usernames: set[str], result: ImportResult) -> dict[str, int]:
    if not usernames:
        return {}
    user_model = get_user_model()
    found = dict(user_model.objects.filter(username__in=usernames).values_list("username", "pk"))
    missing = sorted(usernames - set(found))
    if missing:
        unusable = make_password(None)
        user_model.objects.bulk_create(
            [user_model(username=name, password=unusable) for name in missing]
        )
        found.update(user_model.objects.filter(username__in=missing).values_list("username", "pk"))
        result.users_created += len(missing)
    return found
