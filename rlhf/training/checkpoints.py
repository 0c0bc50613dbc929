"""Checkpoint directories: atomic writes, ``manifest.json``, loading adapters, merging, export.

A checkpoint directory holds a PEFT adapter (safetensors), the tokenizer and ``manifest.json``
(base model, parent, method, full spec, data hash, seed, library versions, metrics). It is
written into a temp dir in the same parent and renamed into place, so a crash or a
cancellation never leaves a partial checkpoint. Only safetensors and JSON: never pickle.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
MERGED = "merged"


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a checkpoint."""
    import accelerate
    import datasets
    import peft
    import torch
    import transformers
    import trl

    return {
        "accelerate": accelerate.__version__,
        "datasets": datasets.__version__,
        "peft": peft.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
    }


def file_hash(path: str | Path) -> str:
    """sha256 of a file's bytes (the data snapshot hash)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    for directory in sorted([root, *[p for p in root.rglob("*") if p.is_dir()]], reverse=True):
        with contextlib.suppress(OSError):
            fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def temp_dir_for(final: str | Path) -> Path:
    """The temp path used while ``final`` is being written (same parent, hidden name)."""
    final = Path(final)
    return final.parent / f".{final.name}.tmp-{os.getpid()}"


@contextlib.contextmanager
def atomic_dir(final: str | Path) -> Iterator[Path]:
    """Yield a temp dir next to ``final``; on success fsync and rename it to ``final``.

    On any exception (including :class:`~rlhf.training.progress.Cancelled`) the temp dir is
    removed and ``final`` is left untouched.
    """
    final = Path(final)
    if final.exists():
        raise FileExistsError(f"checkpoint directory already exists: {final}")
    tmp = temp_dir_for(final)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        _fsync_tree(tmp)
        os.rename(tmp, final)
        with contextlib.suppress(OSError):
            fd = os.open(final.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(final: str | Path) -> Iterator[Path]:
    """Yield a temp file path next to ``final``; rename it into place on success."""
    final = Path(final)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_manifest(
    directory: str | Path,
    *,
    base_model: str,
    parent: str | None,
    method: str,
    spec: Mapping[str, Any],
    data_hash: str | None,
    seed: int,
    metrics: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``manifest.json`` into ``directory`` and return it."""
    manifest: dict[str, Any] = {
        "format": 1,
        "base_model": base_model,
        "parent": parent,
        "method": method,
        "spec": dict(spec),
        "data_hash": data_hash,
        "seed": seed,
        "libraries": library_versions(),
        "metrics": dict(metrics),
    }
    if extra:
        manifest.update(extra)
    Path(directory, MANIFEST).write_text(
        json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8"
    )
    return manifest


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest of a checkpoint directory."""
    result: dict[str, Any] = json.loads(Path(directory, MANIFEST).read_text(encoding="utf-8"))
    return result


def load_adapter(
    model: Any, adapter_dir: str | Path, *, adapter_name: str = "default", trainable: bool = False
) -> Any:
    """Put the adapter in ``adapter_dir`` onto a base ``model`` you loaded yourself.

    The adapter config's ``base_model_name_or_path`` (an absolute path on the training host) is
    ignored: the caller decides the base model.
    """
    from peft import PeftModel

    return PeftModel.from_pretrained(
        model, str(adapter_dir), adapter_name=adapter_name, is_trainable=trainable
    )


def save_model(model: Any, tokenizer: Any, directory: str | Path) -> None:
    """save_pretrained with safetensors, model and tokenizer side by side."""
    model.save_pretrained(str(directory), safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(directory))
