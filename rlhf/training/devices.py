"""Device and precision choices shared by every step: CPU here, CUDA + bf16 when available."""

from __future__ import annotations

import os
import random
from typing import Any

import torch


def resolve_device(device: str) -> str:
    """``auto`` picks cuda when available, else cpu; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but no CUDA device is available")
    return device


def set_seed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def configure_threads() -> None:
    """Use every CPU core for intra-op parallelism (no-op when already set by the environment)."""
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(os.cpu_count() or 1)


def trainer_device_kwargs(device: str) -> dict[str, Any]:
    """TrainingArguments fields for the device: fp32 on CPU, bf16 on CUDA when supported."""
    resolved = resolve_device(device)
    on_cuda = resolved == "cuda"
    return {
        "use_cpu": not on_cuda,
        "bf16": on_cuda and torch.cuda.is_bf16_supported(),
        "fp16": False,
        "activation_checkpointing": False,
        "report_to": "none",
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
        "save_strategy": "no",
        "logging_strategy": "steps",
        "logging_steps": 1,
    }
