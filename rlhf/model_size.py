"""How big a model directory is, without torch: parameter counts from safetensors headers.

Safe in the web process (the launch form shows the size-aware defaults of :mod:`rlhf.methods`
that these counts drive). A safetensors file starts with an 8-byte little-endian header length
and a JSON header giving every tensor's shape; sharded checkpoints list their files in
``model.safetensors.index.json``. A hub id or a directory without safetensors gives None.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

MAX_HEADER_BYTES = 100_000_000


def safetensors_parameters(path: str | Path) -> int:
    """The number of parameters stored in one ``.safetensors`` file."""
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        if length > MAX_HEADER_BYTES:
            raise ValueError(f"{path}: implausible safetensors header of {length} bytes")
        header = json.loads(handle.read(length))
    return sum(
        math.prod(entry["shape"])
        for name, entry in header.items()
        if name != "__metadata__" and isinstance(entry, dict)
    )


def parameter_count(model_dir: str | Path) -> int | None:
    """Parameters of the model saved in ``model_dir`` (None when unknown: not a local directory,
    no safetensors, or an unreadable header)."""
    directory = Path(model_dir)
    if not directory.is_dir():
        return None
    try:
        index = directory / "model.safetensors.index.json"
        if index.is_file():
            files = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
            return sum(safetensors_parameters(directory / name) for name in sorted(files))
        single = directory / "model.safetensors"
        if single.is_file():
            return safetensors_parameters(single)
    except (OSError, ValueError, KeyError, struct.error):
        return None
    return None
