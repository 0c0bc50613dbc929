"""File formats of the dataset interchange: reading rows, checking their shape, naming errors.

Import files are JSON Lines, a JSON array, CSV or Parquet (rows numbered from 1). Every error
names the line (or, for a JSON list, the item) and the field, e.g. ``line 7, field "prompt": must
be a string or a list of messages``. Readers yield ``(line, row)``; validators raise
:class:`RowError`, which the import services collect so that one bad line rejects the whole file
before anything is written.

Conversation helpers live here too: rendering a message list as a plain prompt string or as an
Anthropic HH transcript (``"\\n\\nHuman: …\\n\\nAssistant: …"``) and parsing such transcripts back.

At about 500 lines: the readers, the row validators and the formats' column lists are one
vocabulary (every import and export names its columns from here).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.conf import settings

from labeling.interchange.csvsafe import csv_unescape
from labeling.safeinput import (
    UnsafeInput,
    json_load_bounded,
    json_parse,
    nesting_exceeded_at,
    value_check,
)
from labeling.services import LabelingError

CONTAINERS = ("jsonl", "json", "csv", "parquet")
EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
}
CONTENT_TYPES = {
    "application/jsonl": "jsonl",
    "application/x-ndjson": "jsonl",
    "application/x-jsonlines": "jsonl",
    "application/json": "json",
    "text/csv": "csv",
    "application/csv": "csv",
    "application/vnd.apache.parquet": "parquet",
}
ROLES = ("system", "user", "assistant")
MAX_ERRORS = 20


def max_upload_bytes() -> int:
    return int(settings.PAIRWISE_MAX_UPLOAD_MB) * 1024 * 1024


def max_rows() -> int:
    return int(getattr(settings, "PAIRWISE_MAX_IMPORT_ROWS", 1_000_000))


def max_text_chars() -> int:
    return int(getattr(settings, "PAIRWISE_MAX_TEXT_CHARS", 100_000))


class RowError(Exception):
    """One bad value: where it is and what is wrong with it."""

    def __init__(
        self, line: int | None, field_name: str | None, message: str, *, unit: str = "line"
    ):
        self.line = line
        self.field = field_name
        self.message = message
        self.unit = unit
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"{self.unit} {self.line}")
        if self.field:
            where.append(f'field "{self.field}"')
        return f"{', '.join(where)}: {self.message}" if where else self.message

    def as_dict(self) -> dict[str, Any]:
        return {self.unit: self.line, "field": self.field, "message": self.message}


class ImportRejected(LabelingError):
    """A file with bad rows: nothing was imported. ``errors`` lists every problem found."""

    def __init__(self, errors: list[RowError], *, status: int = 400) -> None:
        first = errors[0]
        more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
        super().__init__(f"{first}{more}; nothing was imported", field=first.field)
        self.errors = errors
        self.status = status


class ErrorList:
    """Collects row errors up to a limit; ``check()`` raises them all at once."""

    def __init__(self) -> None:
        self.errors: list[RowError] = []

    def add(self, error: RowError) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(error)

    @property
    def full(self) -> bool:
        return len(self.errors) >= MAX_ERRORS

    def check(self) -> None:
        if self.errors:
            raise ImportRejected(self.errors)


def container_detect(
    *, explicit: str | None = None, filename: str = "", content_type: str = "", head: bytes = b""
) -> str:
    """The container of an import: explicit, else by extension, content type, then content."""
    if explicit:
        value = explicit.lower().lstrip(".")
        if value in ("ndjson", "jsonlines"):
            value = "jsonl"
        if value not in CONTAINERS:
            raise LabelingError(
                f"unknown file format {explicit!r}; allowed: {', '.join(CONTAINERS)}",
                field="format",
            )
        return value
    lowered = filename.lower()
    for extension, container in EXTENSIONS.items():
        if lowered.endswith(extension):
            return container
    base_type = content_type.split(";")[0].strip().lower()
    if base_type in CONTENT_TYPES:
        return CONTENT_TYPES[base_type]
    if head.startswith(b"PAR1"):
        return "parquet"
    start = head.lstrip()[:1]
    if start in (b"{", b'"'):
        return "jsonl"
    if start == b"[":
        return "json"
    return "csv"


@dataclass
class SourceFile:
    """An import's bytes with what is known about them (a name, a content type)."""

    stream: IO[bytes]
    size: int
    name: str = ""
    content_type: str = ""
    rows: list[tuple[int, Any]] = field(default_factory=list)

    @classmethod
    def from_bytes(cls, data: bytes, *, name: str = "", content_type: str = "") -> SourceFile:
        return cls(io.BytesIO(data), len(data), name, content_type)

    @classmethod
    def from_path(cls, path: str) -> SourceFile:
        import os

        handle = open(path, "rb")  # noqa: SIM115 - closed by the caller (SourceFile.close)
        return cls(handle, os.path.getsize(path), os.path.basename(path))

    def close(self) -> None:
        self.stream.close()


def size_check(size: int) -> None:
    """Refuse an import larger than PAIRWISE_MAX_UPLOAD_MB (413, the sizes named)."""
    if size > max_upload_bytes():
        raise ImportRejected(
            [
                RowError(
                    None,
                    "file",
                    f"the file is {size / 1024 / 1024:.1f} MB; the largest accepted is "
                    f"{settings.PAIRWISE_MAX_UPLOAD_MB} MB (PAIRWISE_MAX_UPLOAD_MB)",
                )
            ],
            status=413,
        )


def rows_read(
    source: SourceFile, *, container: str | None = None, limits: bool = True
) -> Iterator[tuple[int, Any]]:
    """Yield ``(line, value)`` for each row; a line that cannot be read yields a RowError as its
    value (the import collects them with its own); unreadable files raise ImportRejected.

    ``limits``: refuse files over PAIRWISE_MAX_UPLOAD_MB and imports over the row limit (uploads);
    a server-side command that streams turns them off."""
    if limits:
        size_check(source.size)
    head = source.stream.read(64)
    source.stream.seek(0)
    kind = container_detect(
        explicit=container, filename=source.name, content_type=source.content_type, head=head
    )
    reader = {
        "jsonl": _jsonl_rows,
        "json": _json_rows,
        "csv": _csv_rows,
        "parquet": _parquet_rows,
    }[kind]
    limit_rows = max_rows() if limits else None
    for count, (line, value) in enumerate(reader(source.stream), start=1):
        if limit_rows is not None and count > limit_rows:
            raise ImportRejected(
                [RowError(line, None, f"too many rows: at most {limit_rows} per import")],
                status=413,
            )
        yield line, value if kind == "jsonl" else _row_checked(line, value)


def _row_checked(line: int, value: Any, *, unit: str = "line") -> Any:
    """A row, or the RowError naming its field nested too deep or holding unstorable text."""
    if isinstance(value, RowError):
        return value
    try:
        value_check(value)
    except UnsafeInput as exc:
        return RowError(line, exc.path or None, exc.message, unit=unit)
    return value


def _decode(raw: bytes, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ImportRejected([RowError(line, None, f"not valid UTF-8 ({exc.reason})")]) from exc


def _jsonl_rows(stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
    for number, raw in enumerate(stream, start=1):
        text = _decode(raw, number).strip()
        if number == 1:
            text = text.lstrip("\ufeff")
        if not text:
            continue
        try:
            yield number, json_parse(text)
        except UnsafeInput as exc:
            yield number, RowError(number, exc.path or None, exc.message)
        except json.JSONDecodeError as exc:
            yield (
                number,
                RowError(number, None, f"not valid JSON ({exc.msg} at column {exc.colno})"),
            )


def _json_rows(stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
    text = _decode(stream.read(), 1).lstrip("\ufeff")
    try:
        data = json_load_bounded(text)
    except UnsafeInput as exc:
        offset = nesting_exceeded_at(text) or 0
        line = text.count("\n", 0, offset) + 1
        raise ImportRejected([RowError(line, None, exc.message)]) from None
    except json.JSONDecodeError as exc:
        raise ImportRejected(
            [RowError(exc.lineno, None, f"not valid JSON ({exc.msg} at column {exc.colno})")]
        ) from exc
    yield from _items(data)  # rows_read checks each row


def items_read(data: Any) -> Iterator[tuple[int, Any]]:
    """Rows of a JSON list (an API body); numbered as items, from 1. A row nested too deep or
    holding unstorable text comes as its RowError."""
    for item, row in _items(data):
        yield item, _row_checked(item, row, unit="item")


def _items(data: Any) -> Iterator[tuple[int, Any]]:
    if isinstance(data, dict) and ("prompt_id" in data or "prompt" in data):
        data = [data]  # one row sent on its own
    if isinstance(data, dict):
        for key in ("rows", "items", "prompts", "responses", "data"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
    if not isinstance(data, list):
        raise ImportRejected([RowError(None, None, "expected a JSON list of rows")])
    if len(data) > max_rows():
        raise ImportRejected(
            [RowError(None, None, f"too many rows: at most {max_rows()} per import")], status=413
        )
    yield from enumerate(data, start=1)


def _parquet_rows(stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
    """Rows of a Parquet file, numbered from 1 in file order (read a row group at a time)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(pa.BufferReader(stream.read()))
        number = 0
        for batch in parquet.iter_batches(batch_size=5000):
            for row in batch.to_pylist():
                number += 1
                yield number, row
    except (pa.ArrowException, OSError) as exc:
        raise ImportRejected(
            [RowError(None, "file", f"not a readable Parquet file ({exc})")]
        ) from exc


def _csv_rows(stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        reader = csv.DictReader(text)
        for record in reader:
            if not any(
                (value or "").strip() for value in record.values() if isinstance(value, str)
            ):
                continue
            if None in record:
                yield (
                    reader.line_num,
                    RowError(reader.line_num, None, "more cells than the header has columns"),
                )
                continue
            yield (
                reader.line_num,
                {k.strip(): csv_unescape(v) for k, v in record.items() if k is not None},
            )
    except UnicodeDecodeError as exc:
        raise ImportRejected([RowError(None, None, f"not valid UTF-8 ({exc.reason})")]) from exc
    except csv.Error as exc:
        raise ImportRejected([RowError(None, None, f"not valid CSV ({exc})")]) from exc
    finally:
        text.detach()


# --- values ------------------------------------------------------------------------------------


def text_check(value: Any, line: int, field_name: str, *, unit: str = "line") -> str:
    if not isinstance(value, str) or not value.strip():
        raise RowError(line, field_name, "must be a non-empty string", unit=unit)
    if len(value) > max_text_chars():
        raise RowError(
            line,
            field_name,
            f"is {len(value)} characters long; at most {max_text_chars()} are accepted",
            unit=unit,
        )
    return value


def json_cell(
    value: Any, line: int, field_name: str, *, unit: str = "line", strict: bool = True
) -> Any:
    """A CSV cell that carries JSON (lists, objects); other values pass through unchanged.
    Not ``strict``: a text that merely starts with ``[`` or ``{`` stays text."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return json_parse(value)
        except UnsafeInput as exc:
            where = f"{field_name}{'' if exc.path.startswith('[') else '.'}{exc.path}"
            raise RowError(
                line, where if exc.path else field_name, exc.message, unit=unit
            ) from None
        except json.JSONDecodeError as exc:
            if not strict:
                return value
            raise RowError(line, field_name, f"is not valid JSON ({exc.msg})", unit=unit) from exc
    return value


def messages_check(
    value: Any, line: int, field_name: str, *, unit: str = "line", last_role: str | None = "user"
) -> list[dict[str, str]]:
    """A prompt as a message list: a string becomes one user message."""
    value = json_cell(value, line, field_name, unit=unit, strict=False)
    if isinstance(value, str):
        return [{"role": "user", "content": text_check(value, line, field_name, unit=unit)}]
    if not isinstance(value, list) or not value:
        raise RowError(line, field_name, "must be a string or a list of messages", unit=unit)
    messages = []
    for index, message in enumerate(value):
        where = f"{field_name}[{index}]"
        if not isinstance(message, dict):
            raise RowError(line, where, "must be an object {role, content}", unit=unit)
        role = message.get("role")
        if role not in ROLES:
            raise RowError(line, f"{where}.role", f"must be one of {', '.join(ROLES)}", unit=unit)
        content = text_check(message.get("content"), line, f"{where}.content", unit=unit)
        messages.append({"role": role, "content": content})
    if last_role and messages[-1]["role"] != last_role:
        raise RowError(
            line, field_name, f"the last message must come from the {last_role}", unit=unit
        )
    return messages


def completion_check(value: Any, line: int, field_name: str, *, unit: str = "line") -> str:
    """A response: a string, or a conversational completion (one assistant message)."""
    value = json_cell(value, line, field_name, unit=unit, strict=False)
    if isinstance(value, list):
        if len(value) != 1 or not isinstance(value[0], dict) or value[0].get("role") != "assistant":
            raise RowError(
                line, field_name, "must be a string or a list with one assistant message", unit=unit
            )
        value = value[0].get("content")
        field_name = f"{field_name}[0].content"
    return text_check(value, line, field_name, unit=unit)


def int_check(
    value: Any,
    line: int,
    field_name: str,
    *,
    unit: str = "line",
    low: int | None = None,
    high: int | None = None,
) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise RowError(line, field_name, "must be an integer", unit=unit) from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RowError(line, field_name, "must be an integer", unit=unit)
    if (low is not None and value < low) or (high is not None and value > high):
        raise RowError(line, field_name, f"must be between {low} and {high}", unit=unit)
    return value


def float_check(value: Any, line: int, field_name: str, *, unit: str = "line") -> float | None:
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    except (TypeError, ValueError):
        raise RowError(line, field_name, "must be a number", unit=unit) from None


def dict_check(value: Any, line: int, field_name: str, *, unit: str = "line") -> dict[str, Any]:
    value = json_cell(value, line, field_name, unit=unit)
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise RowError(line, field_name, "must be an object", unit=unit)
    return value


def id_check(value: Any, line: int, field_name: str, *, unit: str = "line") -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RowError(line, field_name, "must be a string or an integer", unit=unit)
    text = str(value).strip()
    if len(text) > 200:
        raise RowError(line, field_name, "must be at most 200 characters", unit=unit)
    return text


# --- conversations -----------------------------------------------------------------------------


def prompt_text(messages: Iterable[dict[str, str]]) -> str:
    """A message list as one string: a lone user message as is, else ``Role: content`` turns."""
    turns = list(messages)
    if len(turns) == 1 and turns[0]["role"] == "user":
        return turns[0]["content"]
    return "\n\n".join(f"{turn['role'].capitalize()}: {turn['content']}" for turn in turns)


HH_LABELS = {"system": "System", "user": "Human", "assistant": "Assistant"}
HH_ROLES = {label: role for role, label in HH_LABELS.items()}


def hh_transcript(messages: Iterable[dict[str, str]], completion: str) -> str:
    """An Anthropic HH transcript: ``"\\n\\nHuman: …\\n\\nAssistant: …"``."""
    parts = [f"\n\n{HH_LABELS[turn['role']]}: {turn['content']}" for turn in messages]
    parts.append(f"\n\nAssistant: {completion}")
    return "".join(parts)


def hh_parse(
    transcript: Any, line: int, field_name: str, *, unit: str = "line"
) -> list[dict[str, str]]:
    """Split an HH transcript into messages; the last must be the assistant's answer."""
    import re

    text_check(transcript, line, field_name, unit=unit)
    pieces = re.split(r"\n\n(Human|Assistant|System): ", transcript)
    if pieces[0].strip() or len(pieces) < 3:
        raise RowError(
            line,
            field_name,
            'must be turns starting "\\n\\nHuman: " / "\\n\\nAssistant: "',
            unit=unit,
        )
    messages = [
        {"role": HH_ROLES[label], "content": content}
        for label, content in zip(pieces[1::2], pieces[2::2], strict=True)
    ]
    if messages[-1]["role"] != "assistant" or len(messages) < 2 or messages[-2]["role"] != "user":
        raise RowError(
            line,
            field_name,
            "must end with a Human turn followed by the Assistant's answer",
            unit=unit,
        )
    return messages


# --- preference dataset formats -----------------------------------------------------------------

#: Dataset formats an export writes and (all but KTO) an import reads.
EXPORT_FORMATS = ("trl", "trl_conversational", "kto", "kto_conversational", "hh", "raw")
IMPORT_FORMATS = ("trl", "trl_conversational", "hh", "raw")

#: The raw format: one row per judgment, everything needed to rebuild it, in this order.
RESPONSE_COLUMNS = ("", "_id", "_model", "_checkpoint", "_params", "_seed")
RAW_COLUMNS = (
    "prompt_id",
    "prompt",
    "prompt_metadata",
    "prompt_split",
    *(f"response_a{suffix}" for suffix in RESPONSE_COLUMNS),
    *(f"response_b{suffix}" for suffix in RESPONSE_COLUMNS),
    "batch",
    "priority",
    "annotator",
    "choice",
    "strength",
    "rationale",
    "flags",
    "shown_left",
    "shown_choice",
    "time_spent_ms",
    "source",
    "created_at",
)
