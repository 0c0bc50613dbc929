"""Scoring conversations with a reward model (plain, merged or base+adapter)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

Messages = Sequence[dict[str, str]]


def load_reward_model(directory: str | Path, device: str = "cpu") -> tuple[Any, Any]:
    """A merged reward model directory (model + tokenizer with a chat template)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    model = AutoModelForSequenceClassification.from_pretrained(str(directory), num_labels=1)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model.to(device).eval(), tokenizer


@torch.no_grad()
def score(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Messages],
    responses: Sequence[str],
    *,
    batch_size: int = 64,
) -> list[float]:
    """Scalar reward of each (prompt, response): the chat template applied, right padding."""
    if len(prompts) != len(responses):
        raise ValueError("prompts and responses differ in length")
    right = copy.copy(tokenizer)
    right.padding_side = "right"
    if right.pad_token is None:
        right.pad_token = right.eos_token
    texts = [
        tokenizer.apply_chat_template([*p, {"role": "assistant", "content": r}], tokenize=False)
        for p, r in zip(prompts, responses, strict=True)
    ]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: list[float] = []
    for start in range(0, len(texts), batch_size):
        batch = right(texts[start : start + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
        batch = {k: v.to(device) for k, v in batch.items()}
        logits = model(**batch).logits
        out.extend(float(v) for v in logits[:, 0].float().cpu())
    if was_training:
        model.train()
    return out
