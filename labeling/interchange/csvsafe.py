"""CSV formula injection: text cells that a spreadsheet would run as a formula are written with a
leading apostrophe (the spreadsheet's "this is text" mark, not shown in the cell), and read back
without it, so a CSV export imports back to exactly the same text.

Annotators' rationales and models' responses are free text: ``=1+1``, ``@SUM(A1:A9)`` or
``=cmd|' /C calc'!A0`` would be formulas in Excel or LibreOffice (OWASP "CSV Injection"). The
escape is reversible: a cell starting with a formula character (``= + - @ % |``, tab or carriage
return; numbers such as ``-1.5`` excepted, as in ``defusedcsv``) gets ``'`` in front, and so does a
cell that starts with ``'`` followed by a formula character or another ``'``. Reading strips one
``'`` from exactly those. JSONL and Parquet carry the text exactly, unescaped.
"""

from __future__ import annotations

import re
from typing import Any

FORMULA_START = frozenset("=+-@%|\t\r")
_NUMBER = re.compile(r"-?[0-9,.]+")


def _marked(value: str) -> bool:
    """``'`` then a formula character or another ``'``: a cell this module escaped."""
    return len(value) > 1 and value[0] == "'" and (value[1] in FORMULA_START or value[1] == "'")


def csv_escape(value: Any) -> Any:
    """The cell to write for ``value`` (non-strings pass through)."""
    if not isinstance(value, str) or not value:
        return value
    if value[0] in FORMULA_START and not _NUMBER.fullmatch(value):
        return "'" + value
    if _marked(value):
        return "'" + value
    return value


def csv_unescape(value: Any) -> Any:
    """The text of a cell read from a CSV file: ``csv_escape`` undone."""
    if isinstance(value, str) and _marked(value):
        return value[1:]
    return value
