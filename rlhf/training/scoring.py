"""Scoring conversations with a reward model (plain, merged or base+adapter)."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

Messages = Sequence[dict[str, str]]


def load_reward_model(
    directory: str | Path, device: str = "cpu", dtype: Any = None
) -> tuple[Any, Any]:
    """A merged reward model directory (model + tokenizer with a chat template); ``dtype`` a
    torch dtype (None: as saved)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    model = AutoModelForSequenceClassification.from_pretrained(
        str(directory), num_labels=1, dtype=dtype
    )
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
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: list[float] = []
    for batch in _reward_batches(tokenizer, prompts, responses, batch_size):
        batch = {k: v.to(device) for k, v in batch.items()}
        logits = model(**batch).logits
        out.extend(float(v) for v in logits[:, 0].float().cpu())
    if was_training:
        model.train()
    return out


def margins(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Messages],
    responses_a: Sequence[str],
    responses_b: Sequence[str],
    *,
    batch_size: int = 64,
) -> list[float]:
    """Each pair's reward margin ``r_a - r_b`` under ``model`` (:func:`score` of both sides)."""
    rewards_a = score(model, tokenizer, prompts, responses_a, batch_size=batch_size)
    rewards_b = score(model, tokenizer, prompts, responses_b, batch_size=batch_size)
    return [a - b for a, b in zip(rewards_a, rewards_b, strict=True)]


def _reward_batches(
    tokenizer: Any, prompts: Sequence[Messages], responses: Sequence[str], batch_size: int
) -> Any:
    """Right-padded token batches of the chat-templated (prompt, response) conversations."""
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
    for start in range(0, len(texts), batch_size):
        yield right(
            texts[start : start + batch_size],
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        )


@torch.no_grad()
def head_features(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Messages],
    responses: Sequence[str],
    *,
    batch_size: int = 64,
) -> tuple[Any, Any]:
    """The reward head's input features of each (prompt, response) (eval mode, as ``score``
    tokenizes them) and the head itself: ``(features [n, hidden], head)``."""
    # The final linear layer with one output (``score`` / ``classifier``; under PEFT's
    # ``modules_to_save`` several copies exist and the active one is the one that runs).
    heads = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == 1]
    if not heads:
        raise ValueError("the reward model has no linear head with one output")
    captured: list[tuple[Any, Any]] = []

    def keep(module: Any, inputs: tuple[Any, ...]) -> None:
        captured.append((module, inputs[0].detach().float()))

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    handles = [h.register_forward_pre_hook(keep) for h in heads]
    rows: list[Any] = []
    head: Any = None
    try:
        for batch in _reward_batches(tokenizer, prompts, responses, batch_size):
            captured.clear()
            model(**{k: v.to(device) for k, v in batch.items()})
            head, features = captured[-1]
            if features.dim() == 3:  # a decoder's head sees every position: read the last token
                last = batch["attention_mask"].sum(-1).to(features.device) - 1
                features = features[torch.arange(features.shape[0]), last]
            rows.append(features.cpu())
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return torch.cat(rows), head


def score_pairs(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Messages],
    responses_a: Sequence[str],
    responses_b: Sequence[str],
    *,
    batch_size: int = 64,
    passes: int = 32,
    rate: float = 0.5,
    seed: int = 0,
) -> tuple[list[float], list[float], list[float]]:
    """Each pair's rewards (what :func:`score` gives, read off the same features) and its
    information (:func:`bald`), from one forward pass per side."""
    if passes < 1 or not 0.0 < rate < 1.0:
        raise ValueError("passes must be >= 1 and rate in (0, 1)")
    if not prompts:
        return [], [], []
    features_a, head = head_features(model, tokenizer, prompts, responses_a, batch_size=batch_size)
    features_b, _ = head_features(model, tokenizer, prompts, responses_b, batch_size=batch_size)
    weight = head.weight.detach().float().reshape(-1).cpu()
    bias = 0.0 if head.bias is None else float(head.bias.detach().float().reshape(-1)[0])
    generator = torch.Generator().manual_seed(seed)
    keep = (torch.rand(passes, weight.numel(), generator=generator) >= rate).float() / (1 - rate)
    difference = features_a - features_b  # [pairs, hidden]; the bias cancels
    return (
        (features_a @ weight + bias).tolist(),
        (features_b @ weight + bias).tolist(),
        ensemble_information(difference @ (keep * weight).T),  # margins [pairs, passes]
    )


def bald(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Messages],
    responses_a: Sequence[str],
    responses_b: Sequence[str],
    *,
    passes: int = 32,
    rate: float = 0.5,
    seed: int = 0,
) -> list[float]:
    """Per pair, the mutual information between the preference and an ensemble of reward heads
    (BALD): H(mean p) - mean H(p), with p = sigmoid(r_a - r_b) under each of ``passes`` heads,
    each the trained head with one dropout mask (``rate``) over its input features, the same
    mask for both responses (so each pass is one function of the pair).

    Unlike the margin's uncertainty, a pair whose two responses look alike to the model (a
    likely tie: every head calls it a coin flip) scores ~0, as does a pair every head decides the
    same way; a pair that differs in what the model sees but whose heads disagree scores high.
    """
    return score_pairs(
        model, tokenizer, prompts, responses_a, responses_b, passes=passes, rate=rate, seed=seed
    )[2]


def ensemble_information(margins: Any) -> list[float]:
    """BALD from each pair's reward margins under an ensemble (``[pairs, members]``, logits of
    ``a`` over ``b``): the entropy of the mean preference minus the mean of the members'
    entropies, in nats, within [0, ln 2]."""
    p = torch.sigmoid(torch.as_tensor(margins, dtype=torch.float64)).clamp(1e-12, 1 - 1e-12)

    def entropy(q: Any) -> Any:
        return -(q * q.log() + (1 - q) * (1 - q).log())

    information = entropy(p.mean(dim=1)) - entropy(p).mean(dim=1)
    return [max(0.0, float(v)) for v in information]


def _completion_batch(
    tokenizer: Any, prompts: Sequence[Messages], completions: Sequence[str]
) -> tuple[Any, Any]:
    """Right-padded ids of prompt+completion and a mask over the completion tokens."""
    rows, masks = [], []
    for prompt, completion in zip(prompts, completions, strict=True):
        prompt_ids = tokenizer.apply_chat_template(
            list(prompt), tokenize=True, add_generation_prompt=True
        )
        full = tokenizer.apply_chat_template(
            [*prompt, {"role": "assistant", "content": completion}], tokenize=True
        )
        prompt_ids = _ids(prompt_ids)
        full = _ids(full)
        shared = 0
        while shared < min(len(prompt_ids), len(full)) and prompt_ids[shared] == full[shared]:
            shared += 1
        rows.append(full)
        masks.append([0] * shared + [1] * (len(full) - shared))
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    attention = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    completion_mask = torch.tensor([m + [0] * (width - len(m)) for m in masks])
    return {"input_ids": ids, "attention_mask": attention}, completion_mask


def _ids(value: Any) -> list[int]:
    if isinstance(value, dict) or hasattr(value, "keys"):
        value = value["input_ids"]
    return list(value)


def completion_logps(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Messages],
    completions: Sequence[str],
    *,
    batch_size: int = 32,
) -> list[float]:
    """Sum of the causal LM's log-probabilities of each completion given its (chat-templated) prompt."""
    return completion_logps_and_counts(
        model, tokenizer, prompts, completions, batch_size=batch_size
    )[0]


@torch.no_grad()
def completion_logps_and_counts(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Messages],
    completions: Sequence[str],
    *,
    batch_size: int = 32,
) -> tuple[list[float], list[int]]:
    """``completion_logps`` and, from the same tokenization, the number of completion tokens
    each sum runs over (what a perplexity divides by)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    logps_out: list[float] = []
    counts: list[int] = []
    for start in range(0, len(prompts), batch_size):
        batch, mask = _completion_batch(
            tokenizer, prompts[start : start + batch_size], completions[start : start + batch_size]
        )
        counts.extend(int(n) for n in mask[:, 1:].sum(-1))
        batch = {k: v.to(device) for k, v in batch.items()}
        logits = model(**batch).logits[:, :-1].float()
        targets = batch["input_ids"][:, 1:]
        logps = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        logps_out.extend(float(v) for v in (logps * mask[:, 1:].to(device)).sum(-1).cpu())
    if was_training:
        model.train()
    return logps_out, counts


@torch.no_grad()
def completion_token_kl(
    model: Any,
    reference: Any,
    tokenizer: Any,
    prompts: Sequence[Messages],
    completions: Sequence[str],
    *,
    batch_size: int = 32,
) -> list[float]:
    """Per completion, the exact KL(model || reference) of the next-token distributions summed
    over the completion's tokens (each term over the whole vocabulary, so never negative).

    On completions sampled from ``model`` its mean estimates the sequence-level KL with far less
    noise than the mean of ``log p_model - log p_reference`` at the sampled tokens, which can come
    out negative; evaluate reports both, and a round's signals flag their disagreement.
    """
    device = next(model.parameters()).device
    out: list[float] = []
    for start in range(0, len(prompts), batch_size):
        batch, mask = _completion_batch(
            tokenizer, prompts[start : start + batch_size], completions[start : start + batch_size]
        )
        batch = {k: v.to(device) for k, v in batch.items()}
        positions = predicting(mask).to(device)
        per_token = torch.zeros(positions.shape, dtype=torch.float32, device=device)
        per_token[positions] = next_token_kl(
            logits_at(model, batch, positions), logits_at(reference, batch, positions)
        ).float()
        out.extend(float(v) for v in per_token.sum(-1).cpu())
    return out


def predicting(mask: Any) -> Any:
    """The positions whose logits predict a token of ``mask`` (batch x length): position t predicts
    token t + 1, so the mask shifted one to the left (the last position predicts nothing)."""
    import torch

    positions = torch.zeros_like(mask, dtype=torch.bool)
    positions[:, :-1] = mask[:, 1:].bool()
    return positions


def logits_at(model: Any, batch: dict[str, Any], positions: Any) -> Any:
    """``model``'s logits at the ``positions`` (a boolean batch x length mask) only, one row per
    position in row-major order: a forward hook hands the output layer just those positions'
    hidden states, so the batch x length x vocabulary logits are never built. A model whose
    forward does not feed its output layer that way (the hook sees another shape) gets the full
    logits, then the positions."""
    head = model.get_output_embeddings()
    wanted = int(positions.sum())
    taken: list[bool] = []

    def take(module: Any, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        hidden = args[0]
        if taken or hidden.shape[:2] != positions.shape:
            return None
        taken.append(True)
        return (hidden[positions].unsqueeze(0), *args[1:])

    handle = head.register_forward_pre_hook(take)
    try:
        logits = model(**batch, use_cache=False).logits
    finally:
        handle.remove()
    if not taken:  # the hook declined: these are the full logits
        return logits[positions]
    if logits.shape[:2] == (1, wanted):
        return logits[0]
    return model(**batch, use_cache=False).logits[positions]  # the forward reshaped them


KL_CHUNK = 64  # positions whose float32 softmax temporaries next_token_kl holds at once


def next_token_kl(logits: Any, reference_logits: Any, *, chunk: int = KL_CHUNK) -> Any:
    """KL(p || q) of each position's next-token distributions (``logits`` of p, ``reference_logits``
    of q, vocabulary last), exact over the vocabulary in float32 (or the logits' wider type), never
    negative; differentiable in ``logits``.

    Memory: the softmax temporaries exist for ``chunk`` positions at a time, in the forward pass
    and again in the backward pass, which recomputes them from the two logits tensors (the only
    tensors kept for it): a large vocabulary costs the logits themselves, not five float32 copies
    of them."""
    vocabulary = logits.shape[-1]
    rows = _NextTokenKL.apply(
        logits.reshape(-1, vocabulary), reference_logits.reshape(-1, vocabulary), chunk
    )
    return rows.reshape(logits.shape[:-1])


def _kl_terms(logits: Any, reference_logits: Any) -> tuple[Any, Any, Any]:
    """p, log p - log q and KL(p || q) per row, in float32 or the logits' wider type."""
    dtype = torch.promote_types(logits.dtype, torch.float32)
    logp = torch.log_softmax(logits.to(dtype), dim=-1)
    difference = logp - torch.log_softmax(reference_logits.to(dtype), dim=-1)
    p = logp.exp()
    return p, difference, (p * difference).sum(-1)


class _NextTokenKL(torch.autograd.Function):
    """Rows of KL(p || q), chunked; the gradient in p's logits is p * (log p - log q - KL)."""

    @staticmethod
    def forward(ctx: Any, logits: Any, reference_logits: Any, chunk: int) -> Any:
        ctx.save_for_backward(logits, reference_logits)
        ctx.chunk = chunk
        dtype = torch.promote_types(logits.dtype, torch.float32)
        out = torch.empty(logits.shape[0], dtype=dtype, device=logits.device)
        for start in range(0, logits.shape[0], chunk):
            stop = start + chunk
            out[start:stop] = _kl_terms(logits[start:stop], reference_logits[start:stop])[2]
        return out.clamp_min(0.0)

    @staticmethod
    def backward(ctx: Any, grad: Any) -> tuple[Any, None, None]:
        logits, reference_logits = ctx.saved_tensors
        out = torch.empty_like(logits)
        for start in range(0, logits.shape[0], ctx.chunk):
            stop = start + ctx.chunk
            p, difference, kl = _kl_terms(logits[start:stop], reference_logits[start:stop])
            out[start:stop] = grad[start:stop, None] * p * (difference - kl[:, None])
        return out, None, None


def perplexity(logps: Sequence[float], token_counts: Sequence[int]) -> float:
    """exp(-total log-probability / total tokens): how surprised a model is by these texts."""
    tokens = sum(token_counts)
    return math.exp(-sum(logps) / tokens) if tokens else float("nan")
