"""Imports: prompts, responses (which become comparisons) and existing preference datasets.

Each import reads every row first, checks it, and collects errors (line and field named); a file
with any bad row raises :class:`ImportRejected` and writes nothing. Then everything is written in
one transaction with ``bulk_create``, so 100k-line files take seconds. Duplicates (a prompt id the
project already has or that appears twice, a response text the prompt already has, a judgment the
annotator already gave) are skipped and reported, never doubled.

Imported preference datasets create prompts, responses, comparisons and judgments marked
``Source.IMPORTED``; the judgments belong to a per-format import user (``import-trl``…) or, for the
raw format, to the original annotators by username.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce

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
from labeling.models import (
    Choice,
    Comparison,
    ComparisonStatus,
    Judgment,
    Project,
    Prompt,
    Response,
    Side,
    Source,
    Split,
    text_hash,
)
from labeling.services import LabelingError, comparisons_create, judgment_validate, pairs_all

BATCH_SIZE = 1000
SPLIT_VALUES = frozenset(Split.values)
PAIRING_CHUNK = 200
MAX_REPORTED_DUPLICATES = 100

Rows = Iterable[tuple[int, Any]]


@dataclass
class ImportResult:
    """What an import wrote, and what it skipped as duplicates."""

    prompts_created: int = 0
    responses_created: int = 0
    comparisons_created: int = 0
    judgments_created: int = 0
    users_created: int = 0
    duplicates: int = 0
    skipped_duplicates: list[str] = field(default_factory=list)

    def skip(self, what: str) -> None:
        self.duplicates += 1
        if len(self.skipped_duplicates) < MAX_REPORTED_DUPLICATES:
            self.skipped_duplicates.append(what)

    def as_dict(self) -> dict[str, Any]:
        return {
            "prompts_created": self.prompts_created,
            "responses_created": self.responses_created,
            "comparisons_created": self.comparisons_created,
            "judgments_created": self.judgments_created,
            "users_created": self.users_created,
            "duplicates": self.duplicates,
            "skipped_duplicates": self.skipped_duplicates,
        }

    def summary(self) -> str:
        parts = [
            f"{self.prompts_created} prompts",
            f"{self.responses_created} responses",
            f"{self.comparisons_created} comparisons",
        ]
        if self.judgments_created or self.users_created:
            parts.append(f"{self.judgments_created} judgments")
        text = "created " + ", ".join(parts)
        if self.duplicates:
            shown = ", ".join(self.skipped_duplicates)
            more = " …" if self.duplicates > len(self.skipped_duplicates) else ""
            text += f"; skipped duplicates ({self.duplicates}): [{shown}{more}]"
        return text


# --- prompts -----------------------------------------------------------------------------------


def _prompt_row(line: int, row: Any, unit: str) -> Prompt:
    if isinstance(row, str):
        row = {"prompt": row}
    if not isinstance(row, dict):
        raise RowError(line, None, "must be a prompt string or an object with a prompt", unit=unit)
    field_name = "prompt" if "prompt" in row else "messages"
    if row.get(field_name) in (None, ""):
        raise RowError(line, "prompt", "is required", unit=unit)
    messages = messages_check(row.get(field_name), line, field_name, unit=unit)
    external_id = id_check(row.get("id", row.get("external_id")), line, "id", unit=unit)
    metadata = dict_check(row.get("metadata"), line, "metadata", unit=unit)
    split = row.get("split") or Split.TRAIN
    if split not in SPLIT_VALUES:
        raise RowError(line, "split", f"must be one of {', '.join(Split.values)}", unit=unit)
    return Prompt(external_id=external_id, messages=messages, metadata=metadata, split=split)


def prompts_import(*, project: Project, rows: Rows, unit: str = "line") -> ImportResult:
    """Import prompts (strings or message lists with optional id, metadata, split)."""
    errors = ErrorList()
    result = ImportResult()
    existing = set(
        Prompt.objects.filter(project=project)
        .exclude(external_id="")
        .values_list("external_id", flat=True)
    )
    new: list[Prompt] = []
    for line, row in rows:
        if isinstance(row, RowError):
            errors.add(row)
            continue
        try:
            prompt = _prompt_row(line, row, unit)
        except RowError as error:
            errors.add(error)
            continue
        if prompt.external_id:
            if prompt.external_id in existing:
                result.skip(prompt.external_id)
                continue
            existing.add(prompt.external_id)
        prompt.project = project
        new.append(prompt)
    errors.check()
    with transaction.atomic():
        Prompt.objects.bulk_create(new, batch_size=BATCH_SIZE)
    result.prompts_created = len(new)
    return result


# --- responses ---------------------------------------------------------------------------------


def _prompt_index(project: Project) -> tuple[dict[str, int], set[int]]:
    by_external = dict(
        Prompt.objects.filter(project=project)
        .exclude(external_id="")
        .values_list("external_id", "pk")
    )
    pks = set(Prompt.objects.filter(project=project).values_list("pk", flat=True))
    return by_external, pks


def _prompt_lookup(
    value: Any, line: int, unit: str, by_external: dict[str, int], pks: set[int]
) -> int:
    if value is None or value == "":
        raise RowError(line, "prompt_id", "is required", unit=unit)
    key = id_check(value, line, "prompt_id", unit=unit)
    if key in by_external:
        return by_external[key]
    if key.isdigit() and int(key) in pks:
        return int(key)
    raise RowError(line, "prompt_id", f"no prompt with id {key!r} in this project", unit=unit)


def _response_item(item: Any, line: int, where: str, unit: str) -> dict[str, Any]:
    if isinstance(item, str):
        item = {"text": item}
    if not isinstance(item, dict):
        raise RowError(line, where or None, "must be a response object {text, model…}", unit=unit)
    prefix = f"{where}." if where else ""
    model = item.get("model", item.get("model_name")) or ""
    if not isinstance(model, str) or len(model) > 200:
        raise RowError(
            line, f"{prefix}model", "must be a string of at most 200 characters", unit=unit
        )
    checkpoint = item.get("checkpoint", item.get("checkpoint_ref")) or ""
    if not isinstance(checkpoint, str) or len(checkpoint) > 64:
        raise RowError(
            line, f"{prefix}checkpoint", "must be a string of at most 64 characters", unit=unit
        )
    return {
        "text": text_check(item.get("text"), line, f"{prefix}text", unit=unit),
        "model_name": model,
        "checkpoint_ref": checkpoint,
        "generation_params": dict_check(item.get("params"), line, f"{prefix}params", unit=unit),
        "seed": int_check(item.get("seed"), line, f"{prefix}seed", unit=unit),
        "external_id": id_check(item.get("id"), line, f"{prefix}id", unit=unit),
    }


def responses_import(
    *,
    project: Project,
    rows: Rows,
    unit: str = "line",
    max_pairs: int | None = None,
    batch: str = "import",
    seed: int = 0,
) -> ImportResult:
    """Import responses grouped by prompt or flat; each prompt's responses become comparisons.

    Pairs: all pairs of the prompt's responses, or at most ``max_pairs`` sampled ones (default:
    ``project.max_pairs_per_prompt``). Pairs already compared are not doubled.
    """
    if max_pairs is None:
        max_pairs = project.max_pairs_per_prompt
    if max_pairs is not None and max_pairs < 1:
        raise LabelingError("max pairs must be at least 1", field="max_pairs")
    errors = ErrorList()
    result = ImportResult()
    by_external, pks = _prompt_index(project)
    seen = set(
        Response.objects.filter(prompt__project=project).values_list("prompt_id", "text_hash")
    )
    answered = {prompt_pk for prompt_pk, _ in seen}
    new: list[Response] = []
    for line, row in rows:
        if isinstance(row, RowError):
            errors.add(row)
            continue
        try:
            if not isinstance(row, dict):
                raise RowError(line, None, "must be an object with prompt_id", unit=unit)
            prompt_pk = _prompt_lookup(row.get("prompt_id"), line, unit, by_external, pks)
            if "responses" in row:
                group = json_cell(row["responses"], line, "responses", unit=unit)
                if not isinstance(group, list) or not group:
                    raise RowError(line, "responses", "must be a non-empty list", unit=unit)
                items = [
                    _response_item(item, line, f"responses[{index}]", unit)
                    for index, item in enumerate(group)
                ]
            else:
                items = [_response_item(row, line, "", unit)]
        except RowError as error:
            errors.add(error)
            continue
        for item in items:
            key = (prompt_pk, text_hash(item["text"]))
            if key in seen:
                result.skip(f"{unit} {line} (prompt {row.get('prompt_id')})")
                continue
            seen.add(key)
            new.append(Response(prompt_id=prompt_pk, text_hash=key[1], **item))
    errors.check()
    with transaction.atomic():
        Response.objects.bulk_create(new, batch_size=BATCH_SIZE)
        result.comparisons_created = _pairs_create(
            project=project, new=new, answered=answered, max_pairs=max_pairs, batch=batch, seed=seed
        )
    result.responses_created = len(new)
    return result


def _pairs_create(
    *,
    project: Project,
    new: list[Response],
    answered: set[int],
    max_pairs: int | None,
    batch: str,
    seed: int,
) -> int:
    """Comparisons for every prompt that got new responses, over all its responses; only the
    prompts that had responses before are read back."""
    by_prompt: dict[int, list[Response]] = defaultdict(list)
    for response in new:
        by_prompt[response.prompt_id].append(response)
    prompt_ids = sorted(by_prompt)
    created = 0
    for start in range(0, len(prompt_ids), PAIRING_CHUNK):
        chunk = prompt_ids[start : start + PAIRING_CHUNK]
        older = [prompt_id for prompt_id in chunk if prompt_id in answered]
        if older:
            existing = (
                Response.objects.filter(prompt_id__in=older)
                .exclude(pk__in=[r.pk for prompt_id in older for r in by_prompt[prompt_id]])
                .only("id", "prompt_id", "text_hash")
            )
            for response in existing:
                by_prompt[response.prompt_id].append(response)
        pairs = [
            pair
            for prompt_id in chunk
            for pair in pairs_all(by_prompt[prompt_id], max_pairs=max_pairs, seed=seed + prompt_id)
        ]
        created += len(comparisons_create(project=project, pairs=pairs, batch=batch))
    return created


# --- preference datasets -----------------------------------------------------------------------


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
    """
    if dataset_format not in IMPORT_FORMATS:
        raise LabelingError(
            f"unknown dataset format {dataset_format!r}; allowed: {', '.join(IMPORT_FORMATS)}",
            field="format",
        )
    importer = annotator or f"import-{dataset_format.replace('_', '-')}"
    records = _preference_records(rows, unit, dataset_format, importer, batch)
    prompts = _prompts_existing(project, {record.prompt_id for record in records})
    _prompt_conflicts_check(records, prompts, unit)

    result = ImportResult()
    with transaction.atomic():
        users = _users_ensure({record.annotator for record in records}, result)
        result.prompts_created = _prompts_create(project, records, prompts)
        responses = _responses_ensure(records, prompts, result)
        pairs = _comparisons_ensure(project, records, prompts, responses, result)
        touched = _judgments_create(records, prompts, responses, pairs, users, unit, result)
        _judgment_counts_refresh(project, touched)
    return result


def _preference_records(
    rows: Rows, unit: str, dataset_format: str, importer: str, batch: str
) -> list[_Preference]:
    errors = ErrorList()
    records: list[_Preference] = []
    for line, row in rows:
        if isinstance(row, RowError):
            errors.add(row)
            continue
        try:
            record = _preference_row(line, row, unit, dataset_format, importer)
        except RowError as error:
            errors.add(error)
            continue
        if dataset_format != "raw":
            record.batch = batch
        records.append(record)
    errors.check()
    return records


def _prompts_existing(project: Project, external_ids: set[str]) -> dict[str, Prompt]:
    """The project's prompts with these ids (looked up in chunks: no giant IN lists)."""
    pks = [
        pk
        for external_id, pk in Prompt.objects.filter(project=project)
        .exclude(external_id="")
        .values_list("external_id", "pk")
        if external_id in external_ids
    ]
    found: dict[str, Prompt] = {}
    for start in range(0, len(pks), BATCH_SIZE):
        for prompt in Prompt.objects.filter(pk__in=pks[start : start + BATCH_SIZE]).only(
            "id", "external_id", "messages"
        ):
            found[prompt.external_id] = prompt
    return found


def _prompt_conflicts_check(
    records: list[_Preference], prompts: dict[str, Prompt], unit: str
) -> None:
    """One prompt id, one conversation: in the file and against the project."""
    errors = ErrorList()
    first_messages: dict[str, list[dict[str, str]]] = {}
    for record in records:
        known = prompts.get(record.prompt_id)
        expected = (
            known.messages
            if known
            else first_messages.setdefault(record.prompt_id, record.messages)
        )
        if expected != record.messages:
            errors.add(
                RowError(
                    record.line,
                    "prompt",
                    f"prompt {record.prompt_id!r} already has different messages",
                    unit=unit,
                )
            )
    errors.check()


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
    result.responses_created = len(new)
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
    result.comparisons_created = len(new)
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
    result.judgments_created = len(new)
    return sorted({judgment.comparison_id for judgment in new})


def _users_ensure(usernames: set[str], result: ImportResult) -> dict[str, int]:
    user_model = get_user_model()
    found = dict(user_model.objects.filter(username__in=usernames).values_list("username", "pk"))
    missing = sorted(usernames - set(found))
    if missing:
        unusable = make_password(None)
        user_model.objects.bulk_create(
            [user_model(username=name, password=unusable) for name in missing]
        )
        found.update(user_model.objects.filter(username__in=missing).values_list("username", "pk"))
        result.users_created = len(missing)
    return found


def _judgment_counts_refresh(project: Project, comparison_ids: list[int]) -> None:
    counts = (
        Judgment.objects.filter(comparison=OuterRef("pk"))
        .values("comparison")
        .annotate(n=Count("pk"))
        .values("n")
    )
    for start in range(0, len(comparison_ids), BATCH_SIZE):
        chunk = comparison_ids[start : start + BATCH_SIZE]
        Comparison.objects.filter(pk__in=chunk).update(judgment_count=Coalesce(Subquery(counts), 0))
        Comparison.objects.filter(
            pk__in=chunk,
            status=ComparisonStatus.OPEN,
            judgment_count__gte=project.judgments_per_comparison,
        ).update(status=ComparisonStatus.COMPLETE)
