"""labeling.safeinput: the nesting limit, unstorable text, database ids; the fast path that skips
the walk never lets through what the walk refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labeling.safeinput import (
    DB_ID_MAX,
    MAX_JSON_DEPTH,
    UnsafeInput,
    db_id,
    json_parse,
    json_text_is_plain,
    nesting_exceeded_at,
    text_problem,
    value_check,
)


def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def test_depth_limit_is_exact() -> None:
    value_check(nested(MAX_JSON_DEPTH))
    with pytest.raises(UnsafeInput, match=f"nested more than {MAX_JSON_DEPTH}"):
        value_check(nested(MAX_JSON_DEPTH + 1))


def test_parser_recursion_becomes_unsafe_input() -> None:
    with pytest.raises(UnsafeInput) as caught:
        json_parse("[" * 100_000 + "]" * 100_000)
    assert caught.value.path == ""


def test_paths_name_the_value() -> None:
    with pytest.raises(UnsafeInput) as caught:
        value_check({"rows": [{"ok": "x"}, {"text": "a\x00b"}]})
    assert caught.value.path == "rows[1].text" and "NUL" in caught.value.message
    with pytest.raises(UnsafeInput) as key:
        value_check({"meta": {"k\x00": 1}})
    assert key.value.path == "meta.k\x00" and "(a key)" in key.value.message
    with pytest.raises(UnsafeInput, match="surrogate"):
        json_parse('["\\udc00"]')


def test_text_problem() -> None:
    assert text_problem("plain é 漢字 🙂") is None
    assert "NUL" in (text_problem("a\x00") or "")
    assert "surrogate" in (text_problem("a\ud800") or "")


def test_nan_refused_when_asked() -> None:
    assert json_parse("NaN") != json_parse("NaN")  # NaN passes by default
    with pytest.raises(ValueError, match="NaN"):
        json_parse("[NaN]", allow_nan=False)


def test_nesting_exceeded_at_skips_strings() -> None:
    text = '{"a": "[[[[[[", "b": ' + "[" * 5 + "]" * 5 + "}"
    assert nesting_exceeded_at(text, max_depth=3) == text.index("[[[[[]") + 2
    assert nesting_exceeded_at(text, max_depth=6) is None


def test_db_id() -> None:
    assert db_id("42") == 42 and db_id(str(DB_ID_MAX)) == DB_ID_MAX
    assert db_id(str(DB_ID_MAX + 1)) is None
    assert db_id("-1") is None and db_id("4a") is None and db_id("²") is None


# Text with NUL and lone surrogates mixed in (st.text never yields surrogates).
TEXT = st.lists(st.characters() | st.sampled_from(["\x00", "\ud800", "\udfff"])).map("".join)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(JSON_VALUES, st.integers(min_value=1, max_value=8))
def test_fast_path_never_passes_what_the_walk_refuses(value: Any, max_depth: int) -> None:
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
        if json_text_is_plain(text, max_depth=max_depth):
            value_check(json.loads(text), max_depth=max_depth)
