"""Preference exports written to files: a JSONL/CSV/Parquet file with its dataset card beside it,
or a Hugging Face dataset directory (train/test splits, README.md card). Commands only: the web
process streams through :mod:`labeling.interchange.exports` and never imports ``datasets``, which
is imported only inside :func:`_hf_directory_write`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from labeling.interchange.cards import dataset_card_render
from labeling.interchange.containers import (
    PARQUET_BATCH_ROWS,
    SideFile,
    parquet_batches,
    parquet_schema,
    row_json,
    rows_encode,
)
from labeling.interchange.exports import export_stream, main_rows, preference_rows
from labeling.interchange.specs import ExportSpec, ExportStats
from labeling.models import Project

# --- files -------------------------------------------------------------------------------------


def preferences_export(*, project: Project, spec: ExportSpec, output: Path) -> ExportStats:
    """Write an export to a file (with a ``<file>.card.md`` sidecar) or, for the ``hf``
    container, a Hugging Face dataset directory with train/test splits and a README.md card."""
    output = Path(output)
    stats = ExportStats()
    if spec.container == "hf":
        _hf_directory_write(project=project, spec=spec, output=output, stats=stats)
        card_path = output / "README.md"
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        side = SideFile(Path(f"{output}.both_bad.jsonl")) if spec.both_bad == "separate" else None
        temporary = output.with_name(f".{output.name}.partial")
        try:
            with temporary.open("wb") as handle:
                for chunk in export_stream_to_side(
                    project=project, spec=spec, stats=stats, side=side
                ):
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
    card_path.write_text(
        dataset_card_render(project=project, spec=spec, stats=stats), encoding="utf-8"
    )
    return stats


def export_stream_to_side(
    *, project: Project, spec: ExportSpec, stats: ExportStats, side: Any
) -> Iterator[bytes]:
    """Like :func:`export_stream`, with both-bad rows handed to ``side`` (for files)."""
    if spec.both_bad == "only":
        return export_stream(project=project, spec=spec, stats=stats)
    rows = preference_rows(project=project, spec=spec, stats=stats)
    return rows_encode(main_rows(rows, side), spec=spec, stats=stats, container=spec.container)


def _hf_directory_write(
    *, project: Project, spec: ExportSpec, output: Path, stats: ExportStats
) -> None:
    """A ``datasets`` DatasetDict (train, test) saved with ``save_to_disk``. Commands only: this
    is the one place ``datasets`` is imported."""
    import datasets
    import pyarrow.parquet as pq

    output.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".pairwise-hf-", dir=output.parent))
    try:
        writers = {}
        schema = parquet_schema(spec)
        for split in ("train", "test"):
            writers[split] = pq.ParquetWriter(work / f"{split}.parquet", schema)
        buffers: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
        digest = hashlib.sha256()
        lines: list[str] = []
        side = SideFile(work / "both_bad.jsonl") if spec.both_bad in ("separate",) else None

        def flush(split: str) -> None:
            for table in parquet_batches(iter(buffers[split]), spec):
                writers[split].write_table(table)
            buffers[split] = []

        for split, row in preference_rows(project=project, spec=spec, stats=stats):
            if split == "both_bad":
                if side is not None:
                    side.append(row)
                continue
            lines.append(row_json(row))
            if len(lines) >= 2000:
                digest.update(("\n".join(lines) + "\n").encode())
                lines = []
            buffers[split].append(row)
            if len(buffers[split]) >= PARQUET_BATCH_ROWS:
                flush(split)
        if lines:
            digest.update(("\n".join(lines) + "\n").encode())
        for split in ("train", "test"):
            flush(split)
            writers[split].close()
        stats.content_hash = digest.hexdigest()
        cache = work / "cache"
        dataset = datasets.DatasetDict(
            {
                split: datasets.Dataset.from_parquet(
                    str(work / f"{split}.parquet"), cache_dir=str(cache)
                )
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
        if output.is_dir():
            shutil.rmtree(output)
        elif output.exists():
            output.unlink()
        shutil.move(str(staging), output)
        stats.files[:0] = ["train", "test"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
