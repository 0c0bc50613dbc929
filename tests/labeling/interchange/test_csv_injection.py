"""CSV exports neutralise spreadsheet formulas in annotators' and models' text (OWASP "CSV
injection"); JSONL and Parquet carry the text exactly; a CSV export imports back to the same text."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from django.core.management import call_command

from labeling.interchange.csvsafe import FORMULA_START, csv_escape, csv_unescape
from labeling.interchange.exports import export_stream
from labeling.interchange.specs import ExportStats, export_spec_parse
from labeling.models import Judgment, Project
from tests.factories import ComparisonFactory, PromptFactory, ResponseFactory
from tests.labeling.interchange.conftest import Judge

PAYLOADS = [
    "=1+1",
    "@SUM(A1:A9)",
    "=cmd|' /C calc'!A0",
    "+1+2",
    "-2+3",
    "%0A=1",
    "|calc",
    "\t=1+1",
    "\r=1+1",
    "'=1+1",  # looks like an escaped cell already: must survive the round trip too
    "''",
]
HARMLESS = ["-1.5", "42", "'Tis the season", "plain text", "", "'"]


@pytest.fixture
def hostile_project(db: Any, judge: Judge) -> Project:
    project = Project.objects.create(name="hostile")
    for index, payload in enumerate(PAYLOADS):
        prompt = PromptFactory.create(
            project=project, messages=[{"role": "user", "content": payload}]
        )
        comparison = ComparisonFactory.create(
            project=project,
            prompt=prompt,
            response_a=ResponseFactory.create(prompt=prompt, text=payload, model_name=payload),
            response_b=ResponseFactory.create(prompt=prompt, text=f"safe {index}"),
        )
        judge(comparison, f"annotator{index}", "a", 2, rationale=payload)
    return project


def _export(project: Project, fmt: str, container: str) -> bytes:
    spec = export_spec_parse({"format": fmt, "container": container})
    return b"".join(export_stream(project=project, spec=spec, stats=ExportStats()))


@pytest.mark.parametrize("fmt", ["trl", "raw", "kto", "hh"])
def test_csv_cells_never_start_a_formula(hostile_project: Project, fmt: str) -> None:
    rows = list(csv.reader(io.StringIO(_export(hostile_project, fmt, "csv").decode())))
    cells = [cell for row in rows[1:] for cell in row]
    assert cells
    for cell in cells:
        assert not cell or cell[0] not in FORMULA_START, repr(cell)
    if fmt in ("trl", "raw"):
        # every payload is there, behind the apostrophe a spreadsheet hides
        for payload in PAYLOADS[:9]:
            assert "'" + payload in cells, payload


@pytest.mark.parametrize("container", ["jsonl", "parquet"])
def test_jsonl_and_parquet_keep_the_text_exact(hostile_project: Project, container: str) -> None:
    data = _export(hostile_project, "raw", container)
    if container == "jsonl":
        rows = [json.loads(line) for line in data.splitlines()]
    else:
        rows = pq.read_table(io.BytesIO(data)).to_pylist()
    assert sorted(row["rationale"] for row in rows) == sorted(PAYLOADS)


def test_csv_round_trip_restores_the_exact_text(hostile_project: Project, tmp_path: Path) -> None:
    first = tmp_path / "first.csv"
    call_command("export_preferences", "hostile", "--format", "raw", "--output", str(first))
    copy = Project.objects.create(name="copy")
    call_command("import_preferences", "copy", str(first), "--format", "raw")
    stored = Judgment.objects.filter(comparison__project=copy)
    assert sorted(stored.values_list("rationale", flat=True)) == sorted(PAYLOADS)
    assert sorted(stored.values_list("comparison__response_a__text", flat=True)) == sorted(PAYLOADS)
    second = tmp_path / "second.csv"
    call_command("export_preferences", "copy", "--format", "raw", "--output", str(second))
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize("text", PAYLOADS + HARMLESS)
def test_escape_is_reversible(text: str) -> None:
    assert csv_unescape(csv_escape(text)) == text
    escaped = csv_escape(text)
    assert not escaped or escaped[0] not in FORMULA_START or text in ("-1.5",)


def test_harmless_text_is_written_as_is() -> None:
    for text in HARMLESS:
        assert csv_escape(text) == text
    assert csv_escape(3) == 3 and csv_escape(None) is None
