"""Preference exports: select judgments, aggregate them per comparison, stream rows in a format.

One pass over the project's judgments, ordered by comparison, read straight from a server-side
cursor in chunks (``connection.chunked_cursor``), so memory stays flat however large the project.
Rows of one comparison are aggregated (majority with ties broken by summed strength, unanimous
only, or every judgment as its own row) and written as TRL preference rows (standard or
conversational), KTO unpaired rows, Anthropic HH transcripts, or raw per-annotator judgments, in
JSON Lines, CSV or Parquet; commands also write a Hugging Face dataset directory. The split is by
prompt (a hash of the prompt id and a seed), so no prompt is ever in both train and test.

The web process never imports ``datasets``/``torch``: ``datasets`` is imported only inside
:func:`_hf_directory_write`, which only commands reach.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from django.db import connection
from django.db.models import Q
from django.utils.text import slugify

from labeling.interchange.formats import EXPORT_FORMATS, RAW_COLUMNS, hh_transcript, prompt_text
from labeling.models import Flag, Judgment, Project, Source, Split
from labeling.services import LabelingError

AGGREGATIONS = ("majority", "unanimous", "all")
TIE_POLICIES = ("drop",)
BOTH_BAD_POLICIES = ("drop", "separate", "only")
SPLITS = ("all", "train", "test")
STREAM_CONTAINERS = ("jsonl", "csv", "parquet")
FILE_CONTAINERS = (*STREAM_CONTAINERS, "hf")
SOURCES = ("all", *Source.values)
CHUNK_ROWS = 5000
PARQUET_BATCH_ROWS = 20_000

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass(frozen=True)
class ExportSpec:
    """What to export and how: format, container, aggregation, policies, filters, split."""

    dataset_format: str = "trl"
    container: str = "jsonl"
    aggregation: str = "majority"
    ties: str = "drop"
    both_bad: str = "drop"
    margin: bool = False
    weight: bool = False
    round: int | None = None
    batch: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    annotators: tuple[str, ...] = ()
    min_agreement: float | None = None
    exclude_flags: tuple[str, ...] = ()
    source: str = "all"
    split: str = "all"
    test_size: float = 0.1
    seed: int = 0

    def filters(self) -> dict[str, Any]:
        """The filters in force, for the dataset card."""
        values = {
            "round": self.round,
            "batch": self.batch,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "annotators": list(self.annotators) or None,
            "min_agreement": self.min_agreement,
            "exclude_flags": list(self.exclude_flags) or None,
            "source": None if self.source == "all" else self.source,
            "split": None if self.split == "all" else self.split,
        }
        return {key: value for key, value in values.items() if value is not None}


PARAMETERS = {
    "format": "dataset format: " + ", ".join(EXPORT_FORMATS),
    "container": "file type: " + ", ".join(FILE_CONTAINERS),
    "aggregation": ", ".join(AGGREGATIONS),
    "ties": ", ".join(TIE_POLICIES),
    "both_bad": ", ".join(BOTH_BAD_POLICIES),
    "margin": "1 to add a margin column (mean strength of the winning votes)",
    "weight": "1 to add a weight column (share of votes for the winner)",
    "round": "round number: comparisons whose batch is round-N or starts with round-N:",
    "batch": "exact comparison batch tag",
    "since": "judgments made on or after this ISO date/time",
    "until": "judgments made on or before this ISO date (whole day) or before this time",
    "annotators": "comma-separated usernames",
    "min_agreement": "0-1: drop comparisons whose winner has a smaller share of the votes",
    "exclude_flags": "comma-separated flags: " + ", ".join(Flag.values),
    "source": ", ".join(SOURCES),
    "split": ", ".join(SPLITS),
    "test_size": "0-1: share of prompts held out as test (by hash)",
    "seed": "integer seed of the split hash",
}


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise LabelingError(
            f"unknown {name} {value!r}; allowed: {', '.join(allowed)}", field=name
        )
    return value


def _flag(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("", "0", "false", "no", "off"):
        return False
    raise LabelingError(f"{name} must be 1 or 0; got {value!r}", field=name)


def _number(name: str, value: str, *, low: float = 0.0, high: float = 1.0) -> float:
    try:
        number = float(value)
    except ValueError:
        raise LabelingError(f"{name} must be a number from {low} to {high}", field=name) from None
    if not low <= number <= high:
        raise LabelingError(f"{name} must be a number from {low} to {high}", field=name)
    return number


def _moment(name: str, value: str, *, end: bool) -> datetime:
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime.combine(day + timedelta(days=1) if end else day, time(), tzinfo=UTC)
            return moment - timedelta(microseconds=1) if end else moment
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise LabelingError(
            f"{name} must be an ISO date (2026-01-31) or date-time; got {value!r}", field=name
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def export_spec_parse(
    params: Mapping[str, Any], *, containers: tuple[str, ...] = STREAM_CONTAINERS,
    ignore: tuple[str, ...] = (),
) -> ExportSpec:
    """An ExportSpec from query parameters / options; unknown names or values raise 400s."""
    unknown = sorted(set(params) - set(PARAMETERS) - set(ignore))
    if unknown:
        raise LabelingError(
            f"unknown parameter {unknown[0]!r}; allowed: {', '.join(PARAMETERS)}", field=unknown[0]
        )
    raw = {key: str(value).strip() for key, value in params.items() if value is not None}
    fields: dict[str, Any] = {}
    dataset_format = raw.get("format", "trl") or "trl"
    if dataset_format in FILE_CONTAINERS and "container" not in raw:
        raw["container"] = dataset_format
        dataset_format = "trl"
    fields["dataset_format"] = _choice("format", dataset_format, EXPORT_FORMATS)
    fields["container"] = _choice("container", raw.get("container") or "jsonl", containers)
    fields["aggregation"] = _choice("aggregation", raw.get("aggregation") or "majority", AGGREGATIONS)
    fields["ties"] = _choice("ties", raw.get("ties") or "drop", TIE_POLICIES)
    fields["both_bad"] = _choice("both_bad", raw.get("both_bad") or "drop", BOTH_BAD_POLICIES)
    if fields["both_bad"] == "separate" and "hf" not in containers:
        raise LabelingError(
            "both_bad=separate writes a side file: use it from the command, or both_bad=only",
            field="both_bad",
        )
    if fields["both_bad"] == "only" and fields["container"] != "jsonl":
        raise LabelingError("both_bad=only is written as jsonl", field="container")
    fields["margin"] = _flag("margin", raw.get("margin", ""))
    fields["weight"] = _flag("weight", raw.get("weight", ""))
    if raw.get("round"):
        value = raw["round"].removeprefix("round-")
        if not value.isdigit():
            raise LabelingError("round must be a round number, e.g. 3", field="round")
        fields["round"] = int(value)
    if raw.get("batch"):
        fields["batch"] = raw["batch"]
    if raw.get("since"):
        fields["since"] = _moment("since", raw["since"], end=False)
    if raw.get("until"):
        fields["until"] = _moment("until", raw["until"], end=True)
    if raw.get("annotators"):
        fields["annotators"] = tuple(
            sorted({name.strip() for name in raw["annotators"].split(",") if name.strip()})
        )
    if raw.get("min_agreement"):
        fields["min_agreement"] = _number("min_agreement", raw["min_agreement"])
    if raw.get("exclude_flags"):
        flags = tuple(sorted({f.strip() for f in raw["exclude_flags"].split(",") if f.strip()}))
        for flag in flags:
            _choice("exclude_flags", flag, tuple(Flag.values))
        fields["exclude_flags"] = flags
    fields["source"] = _choice("source", raw.get("source") or "all", SOURCES)
    fields["split"] = _choice("split", raw.get("split") or "all", SPLITS)
    if raw.get("test_size"):
        fields["test_size"] = _number("test_size", raw["test_size"])
    if raw.get("seed"):
        try:
            fields["seed"] = int(raw["seed"])
        except ValueError:
            raise LabelingError("seed must be an integer", field="seed") from None
    return ExportSpec(**fields)


# --- statistics --------------------------------------------------------------------------------


@dataclass
class ExportStats:
    """Counts gathered while exporting; the dataset card is written from them."""

    judgments: int = 0
    comparisons: int = 0
    comparisons_exported: int = 0
    rows: int = 0
    rows_by_split: Counter[str] = field(default_factory=Counter)
    prompts_by_split: dict[str, set[int]] = field(default_factory=lambda: {"train": set(), "test": set()})
    dropped: Counter[str] = field(default_factory=Counter)
    both_bad_rows: int = 0
    annotators: set[str] = field(default_factory=set)
    models: Counter[tuple[str, str]] = field(default_factory=Counter)
    multi_judged: int = 0
    unanimous_multi: int = 0
    agreement_sum: float = 0.0
    pair_agree: int = 0
    pair_total: int = 0
    content_hash: str = ""
    files: list[str] = field(default_factory=list)

    @property
    def mean_agreement(self) -> float | None:
        return self.agreement_sum / self.multi_judged if self.multi_judged else None

    @property
    def pairwise_agreement(self) -> float | None:
        return self.pair_agree / self.pair_total if self.pair_total else None


# --- reading -----------------------------------------------------------------------------------

_LEAN = (
    "comparison_id",
    "comparison__prompt_id",
    "comparison__prompt__external_id",
    "comparison__prompt__messages",
    "comparison__prompt__split",
    "comparison__response_a__text",
    "comparison__response_a__model_name",
    "comparison__response_a__checkpoint_ref",
    "comparison__response_b__text",
    "comparison__response_b__model_name",
    "comparison__response_b__checkpoint_ref",
    "annotator__username",
    "choice",
    "strength",
    "flags",
)
_RAW_EXTRA = (
    "comparison__prompt__metadata",
    "comparison__response_a__external_id",
    "comparison__response_a__generation_params",
    "comparison__response_a__seed",
    "comparison__response_b__external_id",
    "comparison__response_b__generation_params",
    "comparison__response_b__seed",
    "comparison__batch",
    "comparison__priority",
    "rationale",
    "shown_left",
    "time_spent_ms",
    "source",
    "origin",
    "created_at",
)
(
    C_COMPARISON, C_PROMPT, C_PROMPT_EXT, C_MESSAGES, C_PROMPT_SPLIT,
    C_A_TEXT, C_A_MODEL, C_A_CKPT, C_B_TEXT, C_B_MODEL, C_B_CKPT,
    C_USER, C_CHOICE, C_STRENGTH, C_FLAGS,
    C_METADATA, C_A_EXT, C_A_PARAMS, C_A_SEED, C_B_EXT, C_B_PARAMS, C_B_SEED,
    C_BATCH, C_PRIORITY, C_RATIONALE, C_SHOWN_LEFT, C_TIME, C_SOURCE, C_ORIGIN, C_CREATED,
) = range(len(_LEAN) + len(_RAW_EXTRA))


def _judgments_sql(project: Project, spec: ExportSpec) -> tuple[str, tuple[Any, ...]]:
    queryset = Judgment.objects.filter(comparison__project=project)
    if spec.round is not None:
        tag = f"round-{spec.round}"
        queryset = queryset.filter(Q(comparison__batch=tag) | Q(comparison__batch__startswith=f"{tag}:"))
    if spec.batch:
        queryset = queryset.filter(comparison__batch=spec.batch)
    if spec.since:
        queryset = queryset.filter(created_at__gte=spec.since)
    if spec.until:
        queryset = queryset.filter(created_at__lte=spec.until)
    if spec.annotators:
        queryset = queryset.filter(annotator__username__in=spec.annotators)
    if spec.source != "all":
        queryset = queryset.filter(source=spec.source)
    columns = _LEAN + (_RAW_EXTRA if spec.dataset_format == "raw" else ())
    queryset = queryset.order_by("comparison_id", "id").values_list(*columns)
    sql, params = queryset.query.get_compiler(using=queryset.db).as_sql()
    return sql, tuple(params)


def _records(project: Project, spec: ExportSpec) -> Iterator[tuple[Any, ...]]:
    """Judgment rows straight from a chunked (server-side on PostgreSQL) cursor."""
    sql, params = _judgments_sql(project, spec)
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(CHUNK_ROWS):
            yield from rows


def _json_value(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _iso(value: Any) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


# --- aggregation -------------------------------------------------------------------------------

_DECISIVE = ("a", "b")


def _majority(group: list[tuple[Any, ...]]) -> str | None:
    """The most frequent choice; a tie in count prefers a side (a or b) over tie/both_bad, then
    the larger summed strength; an exact a/b standoff is ``None`` (unresolved)."""
    counts = Counter(row[C_CHOICE] for row in group)
    top = max(counts.values())
    leaders = [choice for choice, count in counts.items() if count == top]
    if len(leaders) == 1:
        return leaders[0]
    sides = [choice for choice in leaders if choice in _DECISIVE]
    if len(sides) == 1:
        return sides[0]
    if not sides:
        return "tie" if "tie" in leaders else leaders[0]
    strength = {
        side: sum(row[C_STRENGTH] or 0 for row in group if row[C_CHOICE] == side) for side in sides
    }
    if strength["a"] == strength["b"]:
        return None
    return "a" if strength["a"] > strength["b"] else "b"


def _margin(group: list[tuple[Any, ...]], winner: str) -> float:
    strengths = [row[C_STRENGTH] for row in group if row[C_CHOICE] == winner and row[C_STRENGTH]]
    return float(sum(strengths)) / len(strengths) if strengths else 0.0


# --- rows --------------------------------------------------------------------------------------


class _PromptCache:
    """Decoded prompts and their split, kept for the prompts seen recently."""

    def __init__(self, spec: ExportSpec) -> None:
        self.spec = spec
        self.entries: dict[int, tuple[list[dict[str, str]], str, str, str]] = {}

    def get(self, row: tuple[Any, ...]) -> tuple[list[dict[str, str]], str, str, str]:
        prompt_pk = row[C_PROMPT]
        entry = self.entries.get(prompt_pk)
        if entry is None:
            if len(self.entries) > 50_000:
                self.entries.clear()
            messages = _json_value(row[C_MESSAGES])
            key = row[C_PROMPT_EXT] or f"prompt-{prompt_pk}"
            entry = (messages, prompt_text(messages), key, self._split(key, row[C_PROMPT_SPLIT]))
            self.entries[prompt_pk] = entry
        return entry

    def _split(self, key: str, stored: str) -> str:
        if stored == Split.TEST:
            return "test"
        digest = hashlib.sha256(f"{key}:{self.spec.seed}".encode()).digest()
        return "test" if int.from_bytes(digest[:8], "big") / 2**64 < self.spec.test_size else "train"


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def _pair_builder(spec: ExportSpec) -> Callable[..., list[dict[str, Any]]]:
    """A function (messages, text, chosen, rejected, margin, weight) → output rows."""
    fmt = spec.dataset_format

    def extras(row: dict[str, Any], margin: float, weight: float) -> dict[str, Any]:
        if spec.margin:
            row["margin"] = margin
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
        return lambda m, t, c, r, mg, w: [
            extras({"prompt": t, "completion": c, "label": True}, mg, w),
            extras({"prompt": t, "completion": r, "label": False}, mg, w),
        ]
    if fmt == "kto_conversational":
        return lambda m, t, c, r, mg, w: [
            extras({"prompt": m, "completion": _assistant(c), "label": True}, mg, w),
            extras({"prompt": m, "completion": _assistant(r), "label": False}, mg, w),
        ]
    raise LabelingError(f"unknown format {fmt!r}", field="format")


def _raw_row(row: tuple[Any, ...], prompt: tuple[Any, ...]) -> dict[str, Any]:
    choice, shown_left = row[C_CHOICE], row[C_SHOWN_LEFT]
    shown_choice = choice
    if choice in _DECISIVE:
        shown_choice = "left" if choice == shown_left else "right"
    values = (
        prompt[2],
        prompt[0],
        _json_value(row[C_METADATA]),
        row[C_PROMPT_SPLIT],
        row[C_A_TEXT], row[C_A_EXT], row[C_A_MODEL], row[C_A_CKPT],
        _json_value(row[C_A_PARAMS]), row[C_A_SEED],
        row[C_B_TEXT], row[C_B_EXT], row[C_B_MODEL], row[C_B_CKPT],
        _json_value(row[C_B_PARAMS]), row[C_B_SEED],
        row[C_BATCH],
        row[C_PRIORITY],
        row[C_USER],
        choice,
        row[C_STRENGTH],
        row[C_RATIONALE],
        _json_value(row[C_FLAGS]),
        shown_left,
        shown_choice,
        row[C_TIME],
        row[C_ORIGIN] or row[C_SOURCE],
        _iso(row[C_CREATED]),
    )
    return dict(zip(RAW_COLUMNS, values, strict=True))


def preference_rows(
    *, project: Project, spec: ExportSpec, stats: ExportStats
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(split, row)`` pairs in export order; split is ``train``/``test`` or ``both_bad``."""
    build = None if spec.dataset_format == "raw" else _pair_builder(spec)
    prompts = _PromptCache(spec)
    excluded_flags = set(spec.exclude_flags)
    wanted_split = spec.split
    only_both_bad = spec.both_bad == "only"
    group: list[tuple[Any, ...]] = []
    current = None

    def flush(group: list[tuple[Any, ...]]) -> Iterator[tuple[str, dict[str, Any]]]:
        stats.comparisons += 1
        n = len(group)
        stats.judgments += n
        if excluded_flags:
            for row in group:
                flags = row[C_FLAGS]
                if flags and flags != "[]" and excluded_flags.intersection(_json_value(flags)):
                    stats.dropped["flagged"] += 1
                    return
        winner = _majority(group) if n > 1 else group[0][C_CHOICE]
        share = (sum(1 for row in group if row[C_CHOICE] == winner) / n) if winner else 0.5
        if n > 1:
            stats.multi_judged += 1
            stats.agreement_sum += share
            choices = Counter(row[C_CHOICE] for row in group)
            stats.pair_agree += sum(c * (c - 1) // 2 for c in choices.values())
            stats.pair_total += n * (n - 1) // 2
            if len(choices) == 1:
                stats.unanimous_multi += 1
        if spec.min_agreement is not None and share < spec.min_agreement:
            stats.dropped["below_min_agreement"] += 1
            return
        first = group[0]
        prompt = prompts.get(first)
        split = prompt[3]
        if wanted_split != "all" and split != wanted_split:
            stats.dropped[f"not_in_{wanted_split}_split"] += 1
            return
        emitted = 0
        if build is None:
            for row in group:
                stats.annotators.add(row[C_USER])
                yield split, _raw_row(row, prompt)
                emitted += 1
        else:
            if spec.aggregation == "all":
                votes = [(row[C_CHOICE], [row], 1.0 / n) for row in group]
            elif spec.aggregation == "unanimous" and any(r[C_CHOICE] != first[C_CHOICE] for r in group):
                stats.dropped["not_unanimous"] += 1
                return
            elif winner is None:
                stats.dropped["unresolved_standoff"] += 1
                return
            else:
                votes = [(winner, group, share)]
            for choice, voters, weight in votes:
                if choice == "tie":
                    stats.dropped["tie"] += 1
                    continue
                if choice == "both_bad":
                    if spec.both_bad == "drop":
                        stats.dropped["both_bad"] += 1
                        continue
                    stats.both_bad_rows += 1
                    yield "both_bad", {
                        "prompt_id": prompt[2],
                        "prompt": prompt[0],
                        "response_a": first[C_A_TEXT],
                        "response_b": first[C_B_TEXT],
                    }
                    continue
                if only_both_bad:
                    continue
                if choice == "a":
                    chosen, rejected = first[C_A_TEXT], first[C_B_TEXT]
                else:
                    chosen, rejected = first[C_B_TEXT], first[C_A_TEXT]
                for out in build(prompt[0], prompt[1], chosen, rejected, _margin(voters, choice), weight):
                    yield split, out
                    emitted += 1
                for row in voters:
                    stats.annotators.add(row[C_USER])
        if emitted:
            stats.comparisons_exported += 1
            stats.rows += emitted
            stats.rows_by_split[split] += emitted
            stats.prompts_by_split[split].add(first[C_PROMPT])
            stats.models[(first[C_A_MODEL], first[C_A_CKPT])] += 1
            stats.models[(first[C_B_MODEL], first[C_B_CKPT])] += 1

    for row in _records(project, spec):
        if row[C_COMPARISON] != current:
            if group:
                yield from flush(group)
            group = []
            current = row[C_COMPARISON]
        group.append(row)
    if group:
        yield from flush(group)


# --- containers --------------------------------------------------------------------------------


def _csv_cell(value: Any) -> Any:
    if isinstance(value, list | dict):
        return _dumps(value)
    return value


class _Chunks:
    """A write-only file that hands out what was written since the last ``take()``."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0
        self.closed = False

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.parts.append(chunk)
        self.position += len(chunk)
        return len(chunk)

    def flush(self) -> None:
        return None

    def tell(self) -> int:
        return self.position

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts = []
        return data


def _parquet_schema(spec: ExportSpec) -> Any:
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    messages = pa.list_(message)
    fmt = spec.dataset_format
    if fmt == "raw":
        types: dict[str, Any] = {name: pa.string() for name in RAW_COLUMNS}
        types.update(
            prompt=messages,
            flags=pa.list_(pa.string()),
            strength=pa.int64(),
            time_spent_ms=pa.int64(),
            priority=pa.int64(),
            response_a_seed=pa.int64(),
            response_b_seed=pa.int64(),
        )
        return pa.schema(list(types.items()))
    text = pa.string()
    if fmt in ("trl", "trl_conversational"):
        kind = messages if fmt == "trl_conversational" else text
        fields = [("prompt", kind), ("chosen", kind), ("rejected", kind)]
    elif fmt == "hh":
        fields = [("chosen", text), ("rejected", text)]
    else:
        kind = messages if fmt == "kto_conversational" else text
        fields = [("prompt", kind), ("completion", kind), ("label", pa.bool_())]
    if spec.margin:
        fields.append(("margin", pa.float64()))
    if spec.weight:
        fields.append(("weight", pa.float64()))
    return pa.schema(fields)


_RAW_JSON_TEXT = ("prompt_metadata", "response_a_params", "response_b_params")


def _parquet_batches(rows: Iterator[dict[str, Any]], spec: ExportSpec) -> Iterator[Any]:
    import pyarrow as pa

    schema = _parquet_schema(spec)
    names = schema.names
    json_text = [name for name in _RAW_JSON_TEXT if name in names] if spec.dataset_format == "raw" else []
    while True:
        columns: dict[str, list[Any]] = {name: [] for name in names}
        count = 0
        for count, row in enumerate(rows, start=1):
            for name in names:
                columns[name].append(row[name])
            if count >= PARQUET_BATCH_ROWS:
                break
        if not count:
            return
        for name in json_text:
            columns[name] = [_dumps(value) for value in columns[name]]
        yield pa.Table.from_pydict(columns, schema=schema)
        if count < PARQUET_BATCH_ROWS:
            return


def rows_encode(
    rows: Iterator[dict[str, Any]], *, spec: ExportSpec, stats: ExportStats, container: str
) -> Iterator[bytes]:
    """Serialize rows into a container, chunk by chunk; the content hash is taken on the way."""
    digest = hashlib.sha256()

    def hashed(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            digest.update(_dumps(row).encode())
            digest.update(b"\n")
            yield row

    if container == "jsonl":
        lines: list[str] = []
        for row in rows:
            lines.append(_dumps(row))
            if len(lines) >= 2000:
                data = ("\n".join(lines) + "\n").encode()
                digest.update(data)
                yield data
                lines = []
        if lines:
            data = ("\n".join(lines) + "\n").encode()
            digest.update(data)
            yield data
    elif container == "csv":
        buffer = io.StringIO()
        writer = None
        for count, row in enumerate(hashed(rows), start=1):
            if writer is None:
                writer = csv.writer(buffer, lineterminator="\n")
                writer.writerow(list(row))
            writer.writerow([_csv_cell(value) for value in row.values()])
            if count % 2000 == 0:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        if writer is None:
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(_parquet_schema(spec).names)
        yield buffer.getvalue().encode()
    elif container == "parquet":
        import pyarrow.parquet as pq

        sink = _Chunks()
        writer = pq.ParquetWriter(sink, _parquet_schema(spec), compression="snappy")
        for table in _parquet_batches(hashed(rows), spec):
            writer.write_table(table)
            if data := sink.take():
                yield data
        writer.close()
        yield sink.take()
    else:
        raise LabelingError(f"unknown container {container!r}", field="container")
    stats.content_hash = digest.hexdigest()


def _main_rows(
    rows: Iterator[tuple[str, dict[str, Any]]], side: list[dict[str, Any]] | None
) -> Iterator[dict[str, Any]]:
    for split, row in rows:
        if split == "both_bad":
            if side is not None:
                side.append(row)
            continue
        yield row


def export_stream(*, project: Project, spec: ExportSpec, stats: ExportStats) -> Iterator[bytes]:
    """The export as a stream of bytes (the API's response body). Both-bad rows go into the
    stream only with ``both_bad=only`` (then they are all it holds)."""
    rows = preference_rows(project=project, spec=spec, stats=stats)
    if spec.both_bad == "only":
        selected = (row for split, row in rows if split == "both_bad")
        return rows_encode(selected, spec=spec, stats=stats, container="jsonl")
    return rows_encode(_main_rows(rows, None), spec=spec, stats=stats, container=spec.container)


def export_filename(project: Project, spec: ExportSpec, *, suffix: str | None = None) -> str:
    """A safe file name: the slugified project name, the format, the container."""
    name = slugify(project.name)[:80] or f"project-{project.pk}"
    extension = suffix or spec.container
    kind = "both-bad" if spec.both_bad == "only" else spec.dataset_format.replace("_", "-")
    return f"{name}-{kind}.{extension}"


# --- files -------------------------------------------------------------------------------------


class _SideFile:
    """Both-bad rows written to a JSON Lines side file as they come."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = path.open("w", encoding="utf-8")
        self.count = 0

    def append(self, row: dict[str, Any]) -> None:
        self.handle.write(_dumps(row) + "\n")
        self.count += 1

    def close(self) -> None:
        self.handle.close()


def preferences_export(*, project: Project, spec: ExportSpec, output: Path) -> ExportStats:
    """Write an export to a file (with a ``<file>.card.md`` sidecar) or, for the ``hf``
    container, a Hugging Face dataset directory with train/test splits and a README.md card."""
    from labeling.interchange.cards import dataset_card_render

    output = Path(output)
    stats = ExportStats()
    if spec.container == "hf":
        _hf_directory_write(project=project, spec=spec, output=output, stats=stats)
        card_path = output / "README.md"
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        side = _SideFile(Path(f"{output}.both_bad.jsonl")) if spec.both_bad == "separate" else None
        temporary = output.with_name(f".{output.name}.partial")
        try:
            with temporary.open("wb") as handle:
                for chunk in export_stream_to_side(project=project, spec=spec, stats=stats, side=side):
                    handle.write(chunk)
            os.replace(temporary, output)
        finally:
            temporary.unlink(missing_ok=True)
            if side is not None:
                side.close()
        stats.files.append(output.name)
        if side is not None:
            stats.files.append(side.path.name)
        card_path = Path(f"{output}.card.md")
    card_path.write_text(dataset_card_render(project=project, spec=spec, stats=stats), encoding="utf-8")
    return stats


def export_stream_to_side(
    *, project: Project, spec: ExportSpec, stats: ExportStats, side: Any
) -> Iterator[bytes]:
    """Like :func:`export_stream`, with both-bad rows handed to ``side`` (for files)."""
    if spec.both_bad == "only":
        return export_stream(project=project, spec=spec, stats=stats)
    rows = preference_rows(project=project, spec=spec, stats=stats)
    return rows_encode(_main_rows(rows, side), spec=spec, stats=stats, container=spec.container)


def _hf_directory_write(*, project: Project, spec: ExportSpec, output: Path, stats: ExportStats) -> None:
    """A ``datasets`` DatasetDict (train, test) saved with ``save_to_disk``. Commands only: this
    is the one place ``datasets`` is imported."""
    import datasets
    import pyarrow.parquet as pq

    work = Path(tempfile.mkdtemp(prefix="pairwise-hf-", dir=output.parent if output.parent.exists() else None))
    try:
        writers = {}
        schema = _parquet_schema(spec)
        for split in ("train", "test"):
            writers[split] = pq.ParquetWriter(work / f"{split}.parquet", schema)
        buffers: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
        digest = hashlib.sha256()
        side = _SideFile(work / "both_bad.jsonl") if spec.both_bad in ("separate",) else None

        def flush(split: str) -> None:
            for table in _parquet_batches(iter(buffers[split]), spec):
                writers[split].write_table(table)
            buffers[split] = []

        for split, row in preference_rows(project=project, spec=spec, stats=stats):
            if split == "both_bad":
                if side is not None:
                    side.append(row)
                continue
            digest.update(_dumps(row).encode())
            digest.update(b"\n")
            buffers[split].append(row)
            if len(buffers[split]) >= PARQUET_BATCH_ROWS:
                flush(split)
        for split in ("train", "test"):
            flush(split)
            writers[split].close()
        stats.content_hash = digest.hexdigest()
        cache = work / "cache"
        dataset = datasets.DatasetDict(
            {
                split: datasets.Dataset.from_parquet(str(work / f"{split}.parquet"), cache_dir=str(cache))
                if stats.rows_by_split.get(split)
                else datasets.Dataset(schema.empty_table())
                for split in ("train", "test")
            }
        )
        staging = work / "dataset"
        dataset.save_to_disk(str(staging))
        del dataset
        if side is not None:
            side.close()
            shutil.move(str(side.path), staging / "both_bad.jsonl")
            stats.files.append("both_bad.jsonl")
        if output.exists():
            shutil.rmtree(output)
        shutil.move(str(staging), output)
        stats.files[:0] = ["train", "test"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
