"""Device and precision choices shared by every step: CPU here, CUDA + bf16 when available."""

from __future__ import annotations

import os
import random
import time
from typing import Any

import torch

THREADS_ENV = "PAIRWISE_TORCH_THREADS"


def resolve_device(device: str) -> str:
    """``auto`` picks cuda when available, else cpu; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but no CUDA device is available")
    return device


def model_dtype(dtype: str, device: str) -> torch.dtype:
    """The torch dtype to load weights in: ``auto`` is bfloat16 on a CUDA device that has it,
    float32 elsewhere (CPUs train tiny models fastest and safest in float32)."""
    if dtype == "auto":
        resolved = resolve_device(device)
        on_bf16 = resolved == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if on_bf16 else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def with_chat_template(tokenizer: Any, chat_template: str | None) -> Any:
    """The tokenizer, with ``chat_template`` as its template when one is given."""
    if chat_template:
        tokenizer.chat_template = chat_template
    return tokenizer


def set_seed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def idle_cores(sample_s: float = 0.2) -> float | None:
    """Cores left idle by everything else on the machine, sampled from /proc/stat (None elsewhere)."""

    def read() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    try:
        total_a, idle_a = read()
        time.sleep(sample_s)
        total_b, idle_b = read()
    except (OSError, ValueError, IndexError):
        return None
    if total_b <= total_a:
        return None
    return (os.cpu_count() or 1) * (idle_b - idle_a) / (total_b - total_a)


def configure_threads() -> int:
    """Size torch's intra-op pool to the CPU cores that are idle now (at least one); return it.

    On a shared CPU, OpenMP threads that outnumber the free cores spin waiting for each other:
    on 2 busy cores one training step of the tiny models took 2-10x longer with 2 threads than
    with 1. ``PAIRWISE_TORCH_THREADS`` or ``OMP_NUM_THREADS`` pin the number instead.
    """
    pinned = os.environ.get(THREADS_ENV) or os.environ.get("OMP_NUM_THREADS")
    if pinned:
        threads = max(1, int(pinned))
    else:
        cores = usable_cores()
        idle = idle_cores()
        threads = cores if idle is None else max(1, min(cores, round(idle)))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def trainer_device_kwargs(device: str) -> dict[str, Any]:
    """TrainingArguments fields for the device: fp32 on CPU, bf16 on CUDA when supported."""
    resolved = resolve_device(device)
    on_cuda = resolved == "cuda"
    return {
        "use_cpu": not on_cuda,
        "bf16": on_cuda and torch.cuda.is_bf16_supported(),
        "fp16": False,
        _checkpointing_field(): False,
        "report_to": "none",
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
        "save_strategy": "no",
        "logging_strategy": "steps",
        "logging_steps": 1,
    }


def _checkpointing_field() -> str:
    """TrainingArguments' name for activation (gradient) checkpointing: transformers renamed
    ``gradient_checkpointing`` to ``activation_checkpointing``: the pinned version has the new
    name, a GPU machine's own older transformers (5.17 on the H200 image) the old one."""
    import dataclasses

    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    return (
        "activation_checkpointing"
        if "activation_checkpointing" in names
        else "gradient_checkpointing"
    )


def offline_trainer_kwargs(spec: Any) -> dict[str, Any]:
    """TrainingArguments fields shared by the offline steps (reward, DPO): the spec's optimiser
    group, seeds, no evaluation loop, and the device fields."""
    return {
        "per_device_train_batch_size": spec.batch_size,
        "gradient_accumulation_steps": spec.gradient_accumulation_steps,
        "learning_rate": spec.learning_rate,
        "num_train_epochs": spec.num_epochs,
        "max_steps": spec.max_steps,
        "max_length": spec.max_length,
        "lr_scheduler_type": "linear",
        "seed": spec.seed,
        "data_seed": spec.seed,
        "eval_strategy": "no",
        **trainer_device_kwargs(spec.device),
    }
