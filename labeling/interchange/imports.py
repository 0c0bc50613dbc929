"""Imports of prompts and responses (which become comparisons), and what every import shares.

Preference datasets have their own importer, ``labeling.interchange.preference_imports``, built
on the ``ImportResult``, ``Rows`` and batch sizes here.

Each import reads every row first, checks it, and collects errors (line and field named); a file
with any bad row raises :class:`ImportRejected` and writes nothing. Then everything is written in
one transaction with ``bulk_create``, so 100k-line files take seconds. Duplicates (a prompt id the
project already has or that appears twice, a response text the prompt already has, a judgment the
annotator already gave) are skipped and reported, never doubled.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from labeling.interchange.formats import (
    ErrorList,
    RowError,
    dict_check,
    id_check,
    int_check,
    json_cell,
    messages_check,
    text_check,
)
from labeling.models import (
    Project,
    Prompt,
    Response,
    Split,
    text_hash,
)
from labeling.services import LabelingError, comparisons_create, pairs_all

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
