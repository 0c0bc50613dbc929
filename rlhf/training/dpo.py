"""DPO with LoRA (TRL DPOTrainer): sigmoid, ipo or robust loss; warm start; base model as reference.

Warm start (``parent_adapter``): the trainer gets a fresh trainable adapter through
``peft_config`` and the parent's weights are then copied into it, so TRL's reference (the
model with adapters disabled) stays the base model. ``reference="parent"`` instead hands
TRL a PeftModel with the parent adapter loaded: TRL then freezes a copy of it as ``ref``.
Result: held-out implicit-reward accuracy (ties count half) and mean margin before/after.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from rlhf.training import data, generate, lora, scoring
from rlhf.training import fluency as lengthfit
from rlhf.training.callbacks import ProgressCallback, quiet_trainer
from rlhf.training.checkpoints import atomic_dir, file_hash, write_manifest
from rlhf.training.devices import (
    configure_threads,
    model_dtype,
    offline_trainer_kwargs,
    resolve_device,
    set_seed,
    with_chat_template,
)
from rlhf.training.progress import Events
from rlhf.training.specs import DPOResult, DPOSpec, KTOSpec, SpecError


def load_policy(
    base_model: str, device: str, *, dtype: str = "auto", chat_template: str | None = None
) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = with_chat_template(AutoTokenizer.from_pretrained(base_model), chat_template)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.chat_template is None:
        raise ValueError(
            f"the tokenizer of {base_model} has no chat template: give the model spec one"
        )
    model: Any = AutoModelForCausalLM.from_pretrained(base_model, dtype=model_dtype(dtype, device))
    return model.to(device), tokenizer


@contextlib.contextmanager
def reference_of(peft_model: Any) -> Iterator[None]:
    """The reference the trainer uses: adapter ``ref`` when present, else adapters disabled."""
    from trl.trainer.utils import use_adapter

    name = "ref" if "ref" in peft_model.peft_config else None
    with use_adapter(peft_model, adapter_name=name):
        yield


def pair_logps(
    model: Any, tokenizer: Any, rows: list[dict[str, Any]]
) -> tuple[list[float], list[float]]:
    """Log-probabilities of the chosen and of the rejected responses, in one batched pass."""
    prompts = [r["prompt"] for r in rows]
    logps = scoring.completion_logps(model, tokenizer, prompts + prompts, [r["chosen"] for r in rows] +
                                     [r["rejected"] for r in rows])  # fmt: skip
    return logps[: len(rows)], logps[len(rows) :]


def token_kl_to_base(model: Any, inputs: dict[str, Any]) -> Any:
    """The mean over the answers' tokens of KL(policy || base) of the next-token distributions,
    differentiable in the policy (``model``: a PeftModel; the base is it with adapters disabled).
    ``inputs``: TRL's DPO batch (``input_ids``, ``attention_mask``, ``completion_mask``).

    The logits are computed at the answers' positions only (``scoring.logits_at``), not over the
    whole batch, and the KL keeps only them for its gradient (``scoring.next_token_kl``)."""
    import torch
    from trl.trainer.utils import use_adapter

    batch = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}
    answer = scoring.predicting(inputs["completion_mask"])
    policy = scoring.logits_at(model, batch, answer)
    with torch.no_grad(), use_adapter(model, adapter_name=None):
        base = scoring.logits_at(model, batch, answer)
    kl = scoring.next_token_kl(policy, base)
    return kl.mean() if kl.numel() else kl.sum()


def anchored(trainer_class: Any, weight: float) -> Any:
    """``trainer_class`` (TRL's DPOTrainer or KTOTrainer: their batches both carry ``input_ids``,
    ``attention_mask`` and ``completion_mask``) with ``weight`` x :func:`token_kl_to_base` added
    to its loss, the KL logged as ``anchor_kl``. ``weight`` 0: the class itself."""
    if weight <= 0:
        return trainer_class

    class Anchored(trainer_class):  # type: ignore[misc, valid-type]
        def _compute_loss(self, model: Any, inputs: Any, return_outputs: bool) -> Any:
            result = super()._compute_loss(model, inputs, return_outputs)
            kl = token_kl_to_base(self.accelerator.unwrap_model(model), inputs)
            mode = "train" if self.model.training else "eval"
            self._metrics[mode]["anchor_kl"].append(float(kl.detach()))
            if return_outputs:
                return result[0] + weight * kl, result[1]
            return result + weight * kl

    return Anchored


def adapter_is_identity(peft_model: Any) -> bool:
    """True when the trainable adapter is freshly initialised (every LoRA B is zero) and the
    reference is the base model: the policy then equals the reference exactly."""
    if "ref" in peft_model.peft_config:
        return False
    lora_b = [p for name, p in peft_model.named_parameters() if ".lora_B." in name]
    return bool(lora_b) and all(not p.detach().any() for p in lora_b)


def implicit_reward_metrics(
    policy: tuple[list[float], list[float]], reference: tuple[list[float], list[float]], beta: float
) -> tuple[float | None, float | None]:
    """Accuracy (ties half) and mean of beta * [(log pi - log ref)(chosen) - (...)(rejected)]."""
    if not policy[0]:
        return None, None
    margins = [
        beta * ((pc - rc) - (pr - rr))
        for pc, rc, pr, rr in zip(policy[0], reference[0], policy[1], reference[1], strict=True)
    ]
    accuracy = sum(1.0 if m > 1e-6 else 0.5 if abs(m) <= 1e-6 else 0.0 for m in margins) / len(
        margins
    )
    return accuracy, sum(margins) / len(margins)


def policy_with_adapter(spec: DPOSpec | KTOSpec) -> tuple[Any, Any, Any]:
    """The policy, its tokenizer and the ``peft_config`` to hand the TRL trainer (shared by the
    offline policy steps). ``reference="parent"``: a PeftModel carrying the parent adapter,
    trainable (TRL freezes a copy of it as ``ref``), and no peft_config; else the base model and a
    fresh adapter's config (warm-started by :func:`warm_start` once the trainer made it)."""
    from peft import PeftModel

    model, tokenizer = load_policy(
        spec.base_model,
        resolve_device(spec.device),
        dtype=spec.dtype,
        chat_template=spec.chat_template,
    )
    if spec.reference == "parent":
        model = PeftModel.from_pretrained(model, str(spec.parent_adapter), is_trainable=True)
        return model, tokenizer, None
    peft_config = lora.lora_config(
        r=spec.lora_r,
        alpha=spec.lora_alpha,
        dropout=spec.lora_dropout,
        modules=spec.lora_target_modules,
        top_layers=spec.lora_top_layers,
        model=model,
        task_type="CAUSAL_LM",
        parent_adapter=spec.parent_adapter,
    )
    return model, tokenizer, peft_config


def warm_start(trainer: Any, spec: DPOSpec | KTOSpec, events: Events, step: str) -> None:
    """Copy the parent's weights into the trainer's fresh adapter (reference: the base model)."""
    if spec.parent_adapter is not None and spec.reference == "base":
        lora.load_adapter_weights(trainer.model, spec.parent_adapter)
        events.log(f"{step}: warm start from {spec.parent_adapter}; reference is the base model")


def train_and_save(
    trainer: Any,
    tokenizer: Any,
    spec: DPOSpec | KTOSpec,
    events: Events,
    out: Path,
    *,
    method: str,
    eval_rows: list[dict[str, Any]],
    num_train: int,
    logps: Callable[[Any, Any, list[dict[str, Any]]], Any],
    score: Callable[[Any, Any], tuple[float | None, float | None]],
) -> tuple[dict[str, Any], str]:
    """Train an offline policy step and write its adapter checkpoint into ``out`` (shared by the
    offline policy steps). Held-out ``logps`` of the reference (one pass, which also serves as
    "before" while the adapter is still the identity) and of the policy before and after training
    are turned into (accuracy, margin) by ``score(policy, reference)``. Returns the metrics
    (the result's fields) and the data hash."""
    step = method.split("-")[0]
    warm_start(trainer, spec, events, step)
    with reference_of(trainer.model):
        reference = logps(trainer.model, tokenizer, eval_rows)
    before = (
        reference
        if adapter_is_identity(trainer.model)
        else logps(trainer.model, tokenizer, eval_rows)
    )
    accuracy_before, margin_before = score(before, reference)
    events.check()
    train_output = trainer.train()
    events.check()
    accuracy_after, margin_after = score(logps(trainer.model, tokenizer, eval_rows), reference)
    events.log(f"{step}: held-out margin {margin_before} -> {margin_after}")
    metrics: dict[str, Any] = {
        "eval_accuracy_before": accuracy_before,
        "eval_accuracy_after": accuracy_after,
        "eval_margin_before": margin_before,
        "eval_margin_after": margin_after,
        "train_loss": float(train_output.training_loss),
        "num_train": num_train,
        "num_eval": len(eval_rows),
        "steps": int(trainer.state.global_step),
    }
    data_hash = file_hash(spec.data)
    trained: Any = trainer.model
    trained.save_pretrained(str(out), selected_adapters=["default"], safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    write_manifest(
        out,
        base_model=spec.base_model,
        parent=spec.parent_adapter,
        method=method,
        spec=spec.to_dict(),
        data_hash=data_hash,
        seed=spec.seed,
        metrics=metrics,
        extra={"task": "causal-lm", "reference": spec.reference},
    )
    return metrics, data_hash


def reward_model_pairs(spec: DPOSpec, events: Events) -> list[dict[str, Any]]:
    """One preference row per prompt of ``spec.prompts``: of ``spec.reward_pairs`` samples of
    the parent policy, the one ``spec.reward_model`` scores best among those that read fluently,
    against the one it scores worst (rows whose samples are all the same text, or score the same,
    are left out).

    The human rows say which of two answers people prefer; the reward model, trained on every
    judgment so far, carries that taste to every training prompt and to pairs far enough apart
    to teach (best against worst of several), the way iterative DPO with a reward model does
    (Xiong et al. 2024; Dong et al. 2024, RLHFlow). Samples come from the parent (base + parent
    adapter), the policy the round starts from, so the pairs are on-policy.

    Fluently: the base model's perplexity on the answer at most ``spec.reward_pairs_fluency``
    times its perplexity on the parent's samples of the same length, and at most
    ``spec.reward_pairs_fluency_cap`` times on its own (:func:`fluency_excess`). A reward model
    rewards what it can see; under a rule that likes short answers, best-of-8 by it chose
    fragments ("oftever.", "Of course! Ottawa.") and two rounds of imitating them turned the
    policy to word salad (benchmarks/loop.py, concise, seed 2: the base model's perplexity on its
    samples 20.6 and 28.2 against 2.8). An unfluent sample can still be the rejected answer:
    pushing it down teaches the same thing."""
    import torch

    if not spec.reward_pairs or spec.prompts is None or spec.reward_model is None:
        return []
    started = time.monotonic()
    device = resolve_device(spec.device)
    prompts = data.load_prompts(spec.prompts)
    # the adapter stays unmerged: with it disabled the same weights are the base model, which
    # reads the samples below (no second load)
    policy, tokenizer = generate.load_policy(
        spec.base_model, spec.parent_adapter, device, merge=False, dtype=spec.dtype,
        chat_template=spec.chat_template,
    )  # fmt: skip
    messages = [row["prompt"] for row in prompts]
    samples = generate.sample(
        policy,
        tokenizer,
        messages,
        num_samples=spec.reward_pairs,
        max_new_tokens=spec.reward_pairs_max_new_tokens,
        temperature=1.0,
        seed=spec.seed,
    )
    with reference_of(policy) if spec.parent_adapter else contextlib.nullcontext():
        read = _read(policy, tokenizer, messages, samples)
        # the base model on its own answers (2 a prompt): the yardstick that does not drift with
        # the parent (round 1: the samples above are the base model's own)
        own = read
        if spec.parent_adapter:
            own = _read(policy, tokenizer, messages, generate.sample(
                policy, tokenizer, messages, num_samples=2, temperature=1.0, seed=spec.seed + 1,
                max_new_tokens=spec.reward_pairs_max_new_tokens))  # fmt: skip
    del policy
    excess = fluency_excess(read, own, spec.reward_pairs_fluency, spec.reward_pairs_fluency_cap)
    flat_prompts, flat_texts = _flat(messages, samples)
    reward_model, reward_tokenizer = scoring.load_reward_model(spec.reward_model, device)
    scores = scoring.score(reward_model, reward_tokenizer, flat_prompts, flat_texts)
    del reward_model
    if device == "cuda":
        torch.cuda.empty_cache()
    rows: list[dict[str, Any]] = []
    at = 0
    for row, texts in zip(prompts, samples, strict=True):
        scored = [(scores[at + i], text, excess[at + i]) for i, (text, _) in enumerate(texts)]
        at += len(texts)
        # an answer cut off at the token limit is no answer to prefer: the trainer would end it
        # with EOS there and teach the policy to stop mid-sentence
        complete = [count < spec.reward_pairs_max_new_tokens for _, count in texts]
        pair = pick_pair(scored, 1.0, complete)
        if pair is not None:
            rows.append({"prompt_id": f"rm-{row['prompt_id']}", "prompt": row["prompt"],
                         "chosen": pair[0], "rejected": pair[1]})  # fmt: skip
    unfluent = sum(e > 1.0 for e in excess)
    cut = sum(count >= spec.reward_pairs_max_new_tokens for texts in samples for _, count in texts)
    events.log(
        f"dpo: {len(rows)} reward-model pairs (best fluent vs worst of {spec.reward_pairs} parent "
        f"samples on {len(prompts)} prompts; not chosen: {unfluent} samples that read unfluently "
        f"for their length, {cut} cut off at {spec.reward_pairs_max_new_tokens} tokens) "
        f"in {time.monotonic() - started:.1f} s"
    )
    return rows


def fluent_rows(spec: DPOSpec, rows: list[dict[str, Any]], events: Events) -> list[dict[str, Any]]:
    """``rows`` without those whose chosen answer the base model reads over
    ``spec.chosen_fluency_cap`` times its own answers of the same length (all of them when the
    cap is 0). The yardstick: 2 samples of the base model a prompt of the rows' prompts.

    Annotators who prefer the shorter answer, as benchmarks/loop.py's simulated ones under
    ``concise`` do, choose a broken fragment over a whole wrong sentence; the step's NLL term
    then teaches the policy to write it."""
    if not spec.chosen_fluency_cap or not rows:
        return rows
    started = time.monotonic()
    device = resolve_device(spec.device)
    policy, tokenizer = generate.load_policy(
        spec.base_model, None, device, dtype=spec.dtype, chat_template=spec.chat_template
    )
    prompts = list(
        {json.dumps(row["prompt"], sort_keys=True): row["prompt"] for row in rows}.values()
    )
    own = _read(policy, tokenizer, prompts, generate.sample(
        policy, tokenizer, prompts, num_samples=2, temperature=1.0, seed=spec.seed + 2,
        max_new_tokens=spec.reward_pairs_max_new_tokens))  # fmt: skip
    curve = lengthfit.fit(*own)
    chosen = scoring.completion_logps_and_counts(
        policy, tokenizer, [row["prompt"] for row in rows], [row["chosen"] for row in rows]
    )
    del policy
    kept = [row for row, ratio in zip(rows, lengthfit.ratios(*chosen, curve), strict=True)
            if ratio <= spec.chosen_fluency_cap]  # fmt: skip
    events.log(
        f"dpo: {len(rows) - len(kept)} of {len(rows)} rows left out, their chosen answer over "
        f"{spec.chosen_fluency_cap:g}x the base model's own of its length "
        f"({time.monotonic() - started:.1f} s)"
    )
    return kept


def _flat(
    messages: Sequence[Any], samples: Sequence[Sequence[tuple[str, int]]]
) -> tuple[list[Any], list[str]]:
    """Each sample's prompt and text, in order (``samples``: generate.sample's per prompt)."""
    return ([m for m, texts in zip(messages, samples, strict=True) for _ in texts],
            [text for texts in samples for text, _ in texts])  # fmt: skip


def _read(
    model: Any,
    tokenizer: Any,
    messages: Sequence[Any],
    samples: Sequence[Sequence[tuple[str, int]]],
) -> tuple[list[float], list[int]]:
    """``model``'s log-probability of each sample and its token count."""
    return scoring.completion_logps_and_counts(model, tokenizer, *_flat(messages, samples))


def fluency_excess(
    samples: tuple[Sequence[float], Sequence[int]],
    base_own: tuple[Sequence[float], Sequence[int]],
    fluency: float,
    cap: float,
) -> list[float]:
    """Per sample (the base model's log-probability and token count of each): how far past the
    fluency a chosen answer may have it reads (at most 1 may be chosen). That is its perplexity
    over the parent's samples' of the same length (``fluency.py``'s curve fitted to ``samples``)
    divided by ``fluency``, or over the base model's own samples' of the same length
    (``base_own``) divided by ``cap``, whichever is larger.

    Relative to the parent alone the guard drifted with it: on benchmarks/loop.py (concise, seeds
    2 and 3) a parent whose samples the base read at 7-8 (2.8 on its own) let samples up to 16
    be chosen, and round 3 read 40 and 19.5 (word salad, held back by the gate). Length-matched,
    because a plain perplexity reads brevity as disfluency: the base model's own answers of at
    most 3 words read 4.55x its samples over all (benchmarks/fluency.py), so under a rule that
    likes brief answers the guard refused the briefest answers the base model writes itself."""
    parent_curve, base_curve = lengthfit.fit(*samples), lengthfit.fit(*base_own)
    return [
        max(over_parent / fluency, over_base / cap)
        for over_parent, over_base in zip(
            lengthfit.ratios(*samples, parent_curve),
            lengthfit.ratios(*samples, base_curve),
            strict=True,
        )
    ]


def pick_pair(
    samples: Sequence[tuple[float, str, float]],
    ceiling: float,
    complete: Sequence[bool] | None = None,
) -> tuple[str, str] | None:
    """(chosen, rejected) of one prompt's samples ``(reward, text, fluency)``: the best-scored
    sample whose fluency figure is at most ``ceiling`` and that is ``complete`` (not cut off at the
    token limit; all are, when not given) against the worst-scored of all; None when no sample
    can be chosen, or the two are the same text or score the same. Empty texts never count."""
    flags = [True] * len(samples) if complete is None else list(complete)
    if len(flags) != len(samples):
        raise ValueError("complete: one flag per sample")
    scored = [one for one in samples if one[1]]
    fluent = [one for one, ok in zip(samples, flags, strict=True)
              if one[1] and ok and one[2] <= ceiling]  # fmt: skip
    if not fluent:
        return None
    best = max(fluent, key=lambda one: one[0])
    worst = min(scored, key=lambda one: one[0])
    if best[1] == worst[1] or best[0] <= worst[0]:
        return None
    return best[1], worst[1]


def run(spec: DPOSpec, events: Events | None = None) -> DPOResult:
    from trl import DPOConfig, DPOTrainer

    events = events or Events()
    start = time.monotonic()
    configure_threads()
    set_seed(spec.seed)
    rows = data.load_preferences(spec.data)
    train_rows, eval_rows = data.split(rows, spec.eval_fraction)
    train_rows = fluent_rows(spec, train_rows, events)
    if not train_rows:
        raise SpecError(
            f"field 'chosen_fluency_cap': {spec.chosen_fluency_cap} leaves no training rows"
        )
    by_reward_model = reward_model_pairs(spec, events)
    train_rows = train_rows + by_reward_model
    events.log(
        f"dpo: {len(train_rows)} train / {len(eval_rows)} held-out pairs, loss {spec.loss_type}"
        + (f" + {spec.sft_weight} x sft" if spec.sft_weight > 0 else "")
        + (f" + {spec.anchor_kl} x KL to the base" if spec.anchor_kl > 0 else "")
    )
    model, tokenizer, peft_config = policy_with_adapter(spec)
    events.check()
    with (
        atomic_dir(spec.output_dir) as out,
        tempfile.TemporaryDirectory(prefix="dpo-trainer-") as scratch,
    ):
        args = DPOConfig(
            output_dir=scratch,
            # sft_weight > 0: RPO (DPO plus the chosen responses' NLL), which keeps the policy
            # fluent while DPO pushes the rejected answers down.
            loss_type=[spec.loss_type, "sft"] if spec.sft_weight > 0 else [spec.loss_type],
            loss_weights=[1.0, spec.sft_weight] if spec.sft_weight > 0 else None,
            beta=spec.beta,
            label_smoothing=spec.label_smoothing,
            **offline_trainer_kwargs(spec),
        )
        trainer = anchored(DPOTrainer, spec.anchor_kl)(
            model=model,
            args=args,
            train_dataset=data.preference_dataset(train_rows),
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=[ProgressCallback(events)],
        )
        quiet_trainer(trainer)
        metrics, data_hash = train_and_save(
            trainer,
            tokenizer,
            spec,
            events,
            out,
            method=f"dpo-{spec.loss_type}",
            eval_rows=eval_rows,
            num_train=len(train_rows),
            logps=pair_logps,
            score=lambda policy, reference: implicit_reward_metrics(policy, reference, spec.beta),
        )
    return DPOResult(
        checkpoint_dir=str(Path(spec.output_dir).resolve()),
        data_hash=data_hash,
        wall_s=round(time.monotonic() - start, 3),
        num_reward_pairs=len(by_reward_model),
        **metrics,
    )
