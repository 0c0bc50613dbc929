"""Batched sampling of N responses per prompt from the base model or base+adapter, into JSONL.

Each output row records the run's seed and the sampling parameters. Batches are seeded
``seed + batch index`` in file order, so a run with the same spec reproduces its output.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from rlhf.training import data
from rlhf.training.checkpoints import atomic_file, load_adapter
from rlhf.training.devices import (
    configure_threads,
    model_dtype,
    resolve_device,
    with_chat_template,
)
from rlhf.training.progress import Events
from rlhf.training.specs import GenerateResult, GenerateSpec

Messages = Sequence[dict[str, str]]


def load_tokenizer(base_model: str, chat_template: str | None = None) -> Any:
    """The policy's tokenizer, left-padded for generation, with a pad token (and
    ``chat_template`` as its template when given)."""
    from transformers import AutoTokenizer

    tokenizer = with_chat_template(AutoTokenizer.from_pretrained(base_model), chat_template)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def with_adapter(model: Any, adapter: str | None, *, merge: bool = True) -> Any:
    """``model`` with the adapter in ``adapter`` on it: merged into the weights (for inference
    speed: no LoRA detour at every decoding step) unless ``merge`` is False. ``model`` is consumed."""
    if adapter is None:
        return model
    peft_model = load_adapter(model, adapter)
    return peft_model.merge_and_unload() if merge else peft_model


def load_policy(
    base_model: str,
    adapter: str | None,
    device: str,
    *,
    merge: bool = True,
    dtype: str = "auto",
    chat_template: str | None = None,
) -> tuple[Any, Any]:
    """Base model (+ adapter, merged for speed) and its tokenizer, left-padded for generation."""
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(base_model, chat_template)
    base = AutoModelForCausalLM.from_pretrained(base_model, dtype=model_dtype(dtype, device))
    model = with_adapter(base, adapter, merge=merge)
    return model.to(device).eval(), tokenizer


@torch.no_grad()
def sample(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Messages],
    *,
    num_samples: int = 1,
    max_new_tokens: int = 48,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: int = 0,
    repetition_penalty: float = 1.0,
    seed: int = 0,
    batch_size: int = 64,
    events: Events | None = None,
) -> list[list[tuple[str, int]]]:
    """For each prompt, ``num_samples`` (text, token count) pairs. temperature 0 = greedy."""
    if temperature == 0 and num_samples != 1:
        raise ValueError("greedy decoding returns one sequence per prompt")
    device = next(model.parameters()).device
    left = tokenizer
    if tokenizer.padding_side != "left":
        import copy

        left = copy.copy(tokenizer)
        left.padding_side = "left"
    results: list[list[tuple[str, int]]] = []
    total = len(prompts)
    started, new_tokens_total = time.monotonic(), 0
    for index, start in enumerate(range(0, total, batch_size)):
        if events is not None:
            events.check()
        chunk = prompts[start : start + batch_size]
        texts = [
            tokenizer.apply_chat_template(list(p), tokenize=False, add_generation_prompt=True)
            for p in chunk
        ]
        batch = left(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        torch.manual_seed(seed + index)
        # KV cache on: each new token attends to the cached keys/values of the left-padded batch
        kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "pad_token_id": tokenizer.pad_token_id,
                                  "eos_token_id": tokenizer.eos_token_id, "repetition_penalty": repetition_penalty,
                                  "use_cache": True}  # fmt: skip
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=top_k,
                          num_return_sequences=num_samples)  # fmt: skip
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        output = model.generate(**batch, **kwargs)
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        lengths = _lengths(new_tokens, tokenizer)
        new_tokens_total += sum(lengths)
        decoded = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        for row in range(len(chunk)):
            span = range(row * num_samples, (row + 1) * num_samples)
            results.append([(decoded[i].strip(), lengths[i]) for i in span])
        if events is not None:
            done = min(start + batch_size, total)
            elapsed = max(time.monotonic() - started, 1e-9)
            events.progress(done, total, metrics={"samples": done * num_samples,
                                                  "new_tokens": new_tokens_total,
                                                  "tokens_per_s": round(new_tokens_total / elapsed, 1)})  # fmt: skip
    return results


def _lengths(new_tokens: torch.Tensor, tokenizer: Any) -> list[int]:
    """Tokens up to and including the first EOS (the rest is padding)."""
    lengths = []
    for row in new_tokens.tolist():
        n = len(row)
        for i, token in enumerate(row):
            if token == tokenizer.eos_token_id or token == tokenizer.pad_token_id:
                n = i + 1 if token == tokenizer.eos_token_id else i
                break
        lengths.append(n)
    return lengths


def run(spec: GenerateSpec, events: Events | None = None) -> GenerateResult:
    events = events or Events()
    start = time.monotonic()
    threads = configure_threads()
    rows = data.load_prompts(spec.prompts)
    model, tokenizer = load_policy(
        spec.base_model,
        spec.adapter,
        resolve_device(spec.device),
        dtype=spec.dtype,
        chat_template=spec.chat_template,
    )
    events.log(
        f"generate: {len(rows)} prompts x {spec.num_samples} samples, batches of "
        f"{spec.batch_size} prompts, {threads} torch threads"
    )
    params = {
        "temperature": spec.temperature,
        "top_p": spec.top_p,
        "top_k": spec.top_k,
        "repetition_penalty": spec.repetition_penalty,
        "max_new_tokens": spec.max_new_tokens,
        "base_model": spec.base_model,
        "adapter": spec.adapter,
    }
    sampling_start = time.monotonic()
    samples = sample(
        model,
        tokenizer,
        [r["prompt"] for r in rows],
        num_samples=spec.num_samples,
        max_new_tokens=spec.max_new_tokens,
        temperature=spec.temperature,
        top_p=spec.top_p,
        top_k=spec.top_k,
        repetition_penalty=spec.repetition_penalty,
        seed=spec.seed,
        batch_size=spec.batch_size,
        events=events,
    )
    tokens = sum(n for outputs in samples for _, n in outputs)
    elapsed = max(time.monotonic() - sampling_start, 1e-9)
    events.log(
        f"generate: {tokens} new tokens in {elapsed:.1f} s ({tokens / elapsed:.1f} tokens/s)"
    )
    with atomic_file(spec.output) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for row, outputs in zip(rows, samples, strict=True):
            for sample_index, (text, _) in enumerate(outputs):
                record = {"prompt_id": row["prompt_id"], "sample_index": sample_index, "text": text,
                          "seed": spec.seed, "params": params}  # fmt: skip
                handle.write(json.dumps(record, sort_keys=True) + "\n")
    return GenerateResult(
        output=str(Path(spec.output).resolve()),
        num_prompts=len(rows),
        num_samples=len(rows) * spec.num_samples,
        wall_s=round(time.monotonic() - start, 3),
    )
