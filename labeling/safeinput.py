"""Limits on what comes from outside, whatever the entry point (API, pages, imports, commands).

- JSON is parsed with a nesting limit (``MAX_JSON_DEPTH``): 100k nested arrays would otherwise
  raise RecursionError (a 500) in the parser or in any code that walks the value later.
- Text holds no NUL character and no lone surrogate: PostgreSQL refuses NUL in text and in
  ``jsonb`` and no database driver can encode a lone surrogate, while SQLite stores NUL. Both
  databases refuse them the same way: here, before anything is written.
- A database id is at most ``DB_ID_MAX`` (a signed 64-bit integer): SQLite's driver raises
  OverflowError on larger ones.

Every refusal is an :class:`UnsafeInput` that names where the bad value is (``path``, e.g.
``rows[3].prompt[0].content``) and what is wrong with it.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_JSON_DEPTH = 64
DB_ID_MAX = 2**63 - 1

NUL = "\x00"
_SURROGATE = re.compile("[\ud800-\udfff]")
# In JSON text a NUL or a lone surrogate can only come as an escape (raw control characters are
# invalid JSON, and decoded UTF-8 holds no surrogates).
_RISKY_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


class UnsafeInput(ValueError):
    """A value the app refuses: ``path`` names it (empty: the whole value), ``message`` says why."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored (a NUL, a lone surrogate), or None."""
    if NUL in value:
        return "contains a NUL character (\\u0000), which cannot be stored"
    if not value.isascii() and _SURROGATE.search(value):
        return "contains a lone surrogate (\\ud800-\\udfff), which is not valid Unicode"
    return None


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def value_check(value: Any, path: str = "", *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse a parsed value nested deeper than ``max_depth`` or holding unstorable text (keys
    included). Iterative: a deep value cannot exhaust the stack here."""
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, str):
            if problem := text_problem(item):
                raise UnsafeInput(where, problem)
        elif isinstance(item, dict | list):
            if depth >= max_depth:
                raise UnsafeInput(where, f"is nested more than {max_depth} levels deep")
            if isinstance(item, dict):
                for key, inner in item.items():
                    if isinstance(key, str) and (problem := text_problem(key)):
                        raise UnsafeInput(_join(where, key), f"(a key) {problem}")
                    stack.append((inner, _join(where, str(key)), depth + 1))
            else:
                stack.extend((inner, _join(where, i), depth + 1) for i, inner in enumerate(item))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_parse(
    text: str | bytes, *, max_depth: int = MAX_JSON_DEPTH, allow_nan: bool = True
) -> Any:
    """``json.loads`` that refuses deep nesting and unstorable text with :class:`UnsafeInput`;
    malformed JSON still raises ``json.JSONDecodeError`` (a ValueError). ``allow_nan=False``
    also refuses ``NaN`` and ``Infinity``."""
    value = json_load_bounded(text, max_depth=max_depth, allow_nan=allow_nan)
    if not json_text_is_plain(text, max_depth=max_depth):
        value_check(value, max_depth=max_depth)
    return value


def json_text_is_plain(text: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """True when JSON text surely parses to a value :func:`value_check` accepts: no NUL or
    surrogate escape, fewer brackets than the depth limit. A fast test (string searches only)
    that spares the walk for most rows and bodies."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if "\\u" in text and _RISKY_ESCAPE.search(text):
        return False
    if NUL in text or (not text.isascii() and _SURROGATE.search(text)):
        return False  # raw: not valid JSON inside a string, but a caller may hand such text
    return text.count("[") + text.count("{") <= max_depth


def json_load_bounded(
    text: str | bytes, *, max_depth: int = MAX_JSON_DEPTH, allow_nan: bool = True
) -> Any:
    """``json.loads`` with a parser's RecursionError (deep nesting) as :class:`UnsafeInput`;
    the caller runs :func:`value_check` (e.g. once per row, to name the row)."""
    try:
        return json.loads(text, parse_constant=None if allow_nan else _no_constant)
    except RecursionError:
        raise UnsafeInput("", f"is nested more than {max_depth} levels deep") from None


def nesting_exceeded_at(text: str, *, max_depth: int = MAX_JSON_DEPTH) -> int | None:
    """The offset in JSON text where brackets first nest deeper than ``max_depth`` (strings
    skipped), or None: to name the line of a file the parser refused as too deep."""
    depth, in_string, escaped = 0, False, False
    for offset, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                return offset
        elif char in "]}":
            depth -= 1
    return None


def db_id(value: Any) -> int | None:
    """``value`` as a database id (a non-negative integer in range), or None."""
    text = str(value).strip()
    if not text.isascii() or not text.isdigit():
        return None
    number = int(text)
    return number if number <= DB_ID_MAX else None
