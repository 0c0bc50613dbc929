"""Containers of the exports: rows (dicts) serialized as JSON Lines, CSV or Parquet, chunk by
chunk, with the content hash taken on the way.

The content hash is the sha256 of the rows as compact JSON lines (``row_json`` + newline) in
export order, whatever the container, so a JSONL and a Parquet export of the same rows carry the
same hash. Parquet is written a batch of rows at a time into a sink that hands the bytes on, so
the API can stream it too.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
from collections.abc import Iterator
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeling.interchange.csvsafe import csv_escape
from labeling.interchange.formats import RAW_COLUMNS
from labeling.services import LabelingError

if TYPE_CHECKING:
    from labeling.interchange.specs import ExportSpec, ExportStats

PARQUET_BATCH_ROWS = 10_000

_encoder = c_make_encoder(None, None, encode_basestring, None, ":", ",", False, False, True)


def row_json(value: Any) -> str:
    """``json.dumps(value, ensure_ascii=False, separators=(",", ":"))``, without its per-call
    set-up (the C encoder is made once)."""
    return "".join(_encoder(value, 0))


# --- containers --------------------------------------------------------------------------------


def _csv_cell(value: Any) -> Any:
    if isinstance(value, list | dict):
        return row_json(value)
    return csv_escape(value)  # no spreadsheet formula from annotators' or models' text


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


def parquet_schema(spec: ExportSpec) -> Any:
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


def parquet_batches(
    rows: Iterator[dict[str, Any]], spec: ExportSpec, digest: Any = None
) -> Iterator[Any]:
    """Arrow tables of up to PARQUET_BATCH_ROWS rows; ``digest`` (if given) is updated with the
    rows' JSON lines, a batch at a time."""
    import pyarrow as pa

    schema = parquet_schema(spec)
    names = schema.names
    json_text = (
        [name for name in _RAW_JSON_TEXT if name in names] if spec.dataset_format == "raw" else []
    )
    while True:
        dicts = list(itertools.islice(rows, PARQUET_BATCH_ROWS))
        if not dicts:
            return
        if digest is not None:
            digest.update(("\n".join(map(row_json, dicts)) + "\n").encode())
        batch = [tuple(row.values()) for row in dicts]
        del dicts
        columns = dict(zip(names, map(list, zip(*batch, strict=True)), strict=True))
        for name in json_text:
            columns[name] = [row_json(value) for value in columns[name]]
        yield pa.Table.from_pydict(columns, schema=schema)
        del batch, columns


class _NoDigest:
    def update(self, data: bytes) -> None:
        return None

    def hexdigest(self) -> str:
        return ""


def rows_encode(
    rows: Iterator[dict[str, Any]],
    *,
    spec: ExportSpec,
    stats: ExportStats,
    container: str,
    content_hash: bool = True,
) -> Iterator[bytes]:
    """Serialize rows into a container, chunk by chunk; the content hash is taken on the way
    (unless ``content_hash`` is false: a stream whose card is asked for separately)."""
    digest: Any = hashlib.sha256() if content_hash else _NoDigest()

    def hashed(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        if not content_hash:
            yield from rows
            return
        lines: list[str] = []
        for row in rows:
            lines.append(row_json(row))
            if len(lines) >= 2000:
                digest.update(("\n".join(lines) + "\n").encode())
                lines = []
            yield row
        if lines:
            digest.update(("\n".join(lines) + "\n").encode())

    if container == "jsonl":
        lines: list[str] = []
        for row in rows:
            lines.append(row_json(row))
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
        # csv quotes a cell holding "\n" (the line terminator) but not a lone "\r", which readers
        # take for a line end: a row with one is written with every cell quoted.
        quoted = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
        for count, row in enumerate(hashed(rows), start=1):
            if writer is None:
                writer = csv.writer(buffer, lineterminator="\n")
                writer.writerow(list(row))
            cells = [_csv_cell(value) for value in row.values()]
            if any(isinstance(cell, str) and "\r" in cell for cell in cells):
                quoted.writerow(cells)
            else:
                writer.writerow(cells)
            if count % 2000 == 0:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        if writer is None:
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(parquet_schema(spec).names)
        yield buffer.getvalue().encode()
    elif container == "parquet":
        import pyarrow.parquet as pq

        sink = _Chunks()
        writer = pq.ParquetWriter(sink, parquet_schema(spec), compression="snappy")
        for table in parquet_batches(rows, spec, digest if content_hash else None):
            writer.write_table(table)
            if data := sink.take():
                yield data
        writer.close()
        yield sink.take()
    else:
        raise LabelingError(f"unknown container {container!r}", field="container")
    stats.content_hash = digest.hexdigest()


class SideFile:
    """Both-bad rows written to a JSON Lines side file as they come."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = path.open("w", encoding="utf-8")
        self.count = 0

    def append(self, row: dict[str, Any]) -> None:
        self.handle.write(row_json(row) + "\n")
        self.count += 1

    def close(self) -> None:
        self.handle.close()
