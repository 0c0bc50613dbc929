"""Interchange files → HF datasets: preference rows, unpaired rows and prompts (formats in ``specs``).

Preference rows become TRL's conversational preference format: ``prompt`` (messages),
``chosen`` / ``rejected`` (one assistant message each), plus ``margin`` and ``weight`` when
given. The rows come decided: what votes mean (winner, margin on [0, 1], weight) is defined once,
on the Django side, in ``labeling.preferences``; this module only validates and converts.
Train/eval split is by prompt, so every response to one prompt falls on the same side: by a
row's ``split_position`` in [0, 1) where it carries one (the app's snapshots do: the place
``labeling.preferences.split_position`` gives the prompt, on which an export's test split is cut
too), else by a hash of ``prompt_id``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlhf.training.specs import SpecError

ROLES = ("system", "user", "assistant")


def _read_jsonl(path: str | Path, what: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SpecError(f"{what} {path}:{number}: invalid JSON: {exc}") from exc
            if not isinstance(row, dict):
                raise SpecError(f"{what} {path}:{number}: expected an object")
            rows.append(row)
    if not rows:
        raise SpecError(f"{what} {path}: no rows")
    return rows


def _check_messages(where: str, messages: Any) -> list[dict[str, str]]:
    if not isinstance(messages, list) or not messages:
        raise SpecError(f"{where}: field 'prompt': expected a non-empty list of messages")
    clean = []
    for message in messages:
        if (
            not isinstance(message, dict)
            or message.get("role") not in ROLES
            or not isinstance(message.get("content"), str)
        ):
            raise SpecError(
                f"{where}: field 'prompt': each message needs role in {list(ROLES)} and string content"
            )
        clean.append({"role": message["role"], "content": message["content"]})
    return clean


def load_pairs(path: str | Path) -> list[dict[str, Any]]:
    """Pair rows ``{"id", "prompt", "a", "b"}`` (the score step's input), validated, in order."""
    out = []
    for number, row in enumerate(_read_jsonl(path, "pairs"), start=1):
        where = f"pairs {path}:{number}"
        for field in ("a", "b"):
            if not isinstance(row.get(field), str):
                raise SpecError(f"{where}: field {field!r}: expected a string")
        out.append(
            {
                "id": str(row.get("id", number)),
                "prompt": _check_messages(where, row.get("prompt")),
                "a": row["a"],
                "b": row["b"],
            }
        )
    return out


def load_prompts(path: str | Path) -> list[dict[str, Any]]:
    """Prompt rows ``{"prompt_id", "prompt"}``, validated, in file order."""
    out = []
    for number, row in enumerate(_read_jsonl(path, "prompts"), start=1):
        where = f"prompts {path}:{number}"
        if not isinstance(row.get("prompt_id"), str):
            raise SpecError(f"{where}: field 'prompt_id': expected a string")
        out.append(
            {"prompt_id": row["prompt_id"], "prompt": _check_messages(where, row.get("prompt"))}
        )
    return out


def _load_rows(
    path: str | Path,
    what: str,
    *,
    texts: tuple[str, ...],
    numbers: tuple[str, ...],
    extra: tuple[str, ...] = (),
) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Rows with ``prompt_id``, ``prompt`` (messages), string ``texts``, optional ``numbers``
    (>= 0 for ``weight``) and ``extra`` fields the caller checks; any other field is refused.
    ``(where, row, clean)`` per row, ``clean`` holding the checked fields (numbers when present)."""
    allowed = {"prompt_id", "prompt", *texts, *numbers, *extra}
    out = []
    for number, row in enumerate(_read_jsonl(path, what), start=1):
        where = f"{what} {path}:{number}"
        unknown = sorted(set(row) - allowed)
        if unknown:
            raise SpecError(f"{where}: unknown field(s) {unknown}")
        if not isinstance(row.get("prompt_id"), str):
            raise SpecError(f"{where}: field 'prompt_id': expected a string")
        for field in texts:
            if not isinstance(row.get(field), str):
                raise SpecError(f"{where}: field '{field}': expected a string")
        clean: dict[str, Any] = {
            "prompt_id": row["prompt_id"],
            "prompt": _check_messages(where, row.get("prompt")),
            **{field: row[field] for field in texts},
        }
        for field in numbers:
            if row.get(field) is not None:
                value = row[field]
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise SpecError(f"{where}: field '{field}': expected a number")
                if field == "weight" and value < 0:
                    raise SpecError(f"{where}: field 'weight': must be >= 0")
                if field == "split_position" and not 0 <= value < 1:
                    raise SpecError(f"{where}: field 'split_position': must be in [0, 1)")
                clean[field] = float(value)
        out.append((where, row, clean))
    return out


def load_preferences(path: str | Path) -> list[dict[str, Any]]:
    """Preference rows, validated; ``margin`` / ``weight`` kept only when present."""
    rows = _load_rows(
        path,
        "preferences",
        texts=("chosen", "rejected"),
        numbers=("margin", "weight", "split_position"),
    )
    return [clean for _, _, clean in rows]


def load_unpaired(path: str | Path) -> list[dict[str, Any]]:
    """Unpaired rows (KTO), validated: a completion labelled desirable (true) or not (false)."""
    out = []
    for where, row, clean in _load_rows(
        path,
        "unpaired rows",
        texts=("completion",),
        numbers=("weight", "split_position"),
        extra=("label",),
    ):
        if not isinstance(row.get("label"), bool):
            raise SpecError(f"{where}: field 'label': expected true/false")
        out.append({**clean, "label": row["label"]})
    return out


def unpaired_dataset(rows: Sequence[dict[str, Any]]) -> Any:
    """A ``datasets.Dataset`` in TRL's conversational unpaired-preference format."""
    from datasets import Dataset

    return Dataset.from_list(
        [
            {
                "prompt": row["prompt"],
                "completion": [{"role": "assistant", "content": row["completion"]}],
                "label": row["label"],
            }
            for row in rows
        ]
    )


def split_position(prompt_id: str) -> float:
    """A prompt's place in [0, 1) for the held-out split: the first 8 bytes of sha256(prompt_id)."""
    digest = hashlib.sha256(prompt_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split(
    rows: Sequence[dict[str, Any]], eval_fraction: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, held out): a prompt's rows are held out when its place is below ``eval_fraction``,
    deterministically. The place is the rows' ``split_position`` where they carry one, else
    :func:`split_position` of the ``prompt_id``; SpecError when one prompt's rows carry two.
    With a fraction above 0 and two prompts or more, at least the lowest-placed prompt is held
    out: a small snapshot (ten prompts at 0.2 hold none out one time in nine) still gets
    held-out metrics rather than none."""
    positions: dict[str, float] = {}
    for row in rows:
        prompt = row["prompt_id"]
        position = row.get("split_position")
        if position is None:
            position = split_position(prompt)
        if positions.setdefault(prompt, position) != position:
            raise SpecError(
                f"field 'split_position': prompt {prompt!r} has rows at {positions[prompt]} "
                f"and at {position}"
            )
    held = {prompt for prompt, position in positions.items() if position < eval_fraction}
    if not held and eval_fraction > 0 and len(positions) > 1:
        held = {min(positions, key=positions.__getitem__)}
    train = [r for r in rows if r["prompt_id"] not in held]
    held_out = [r for r in rows if r["prompt_id"] in held]
    if not train:
        raise SpecError(f"field 'eval_fraction': {eval_fraction} leaves no training rows")
    return train, held_out


def to_trl_rows(
    rows: Sequence[dict[str, Any]], *, margin: bool, weight: bool
) -> list[dict[str, Any]]:
    """Conversational preference rows; missing margins default to 0, missing weights to 1."""
    out = []
    for row in rows:
        item: dict[str, Any] = {
            "prompt": row["prompt"],
            "chosen": [{"role": "assistant", "content": row["chosen"]}],
            "rejected": [{"role": "assistant", "content": row["rejected"]}],
        }
        if margin:
            item["margin"] = float(row.get("margin", 0.0))
        if weight:
            item["weight"] = float(row.get("weight", 1.0))
        out.append(item)
    return out


def preference_dataset(
    rows: Sequence[dict[str, Any]], *, margin: bool = False, weight: bool = False
) -> Any:
    """A ``datasets.Dataset`` in TRL's conversational preference format."""
    from datasets import Dataset

    return Dataset.from_list(to_trl_rows(rows, margin=margin, weight=weight))


def has_field(rows: Sequence[dict[str, Any]], field: str) -> bool:
    return any(field in r for r in rows)


def prompt_dataset(rows: Sequence[dict[str, Any]]) -> Any:
    from datasets import Dataset

    return Dataset.from_list([{"prompt": r["prompt"], "prompt_id": r["prompt_id"]} for r in rows])
