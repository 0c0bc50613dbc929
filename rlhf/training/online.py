"""Online RL of the policy with LoRA against a trained reward model: TRL GRPOTrainer or RLOOTrainer.

The reward model is a merged reward checkpoint directory, passed with its own tokenizer
(``reward_processing_classes``). ``beta`` > 0 keeps a KL penalty to the reference (the base
model: adapters disabled). Warm start copies the parent adapter's weights into the fresh
trainable adapter. Result: mean reward of greedy responses to the first ``eval_prompts``
prompts before and after training, and the trainer's last logged KL.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from rlhf.training import data, generate, lora, scoring
from rlhf.training.callbacks import ProgressCallback, quiet_trainer
from rlhf.training.checkpoints import atomic_dir, file_hash, write_manifest
from rlhf.training.devices import (
    configure_threads,
    model_dtype,
    resolve_device,
    set_seed,
    trainer_device_kwargs,
)
from rlhf.training.dpo import load_policy
from rlhf.training.progress import Events
from rlhf.training.specs import OnlineResult, OnlineSpec


def mean_greedy_reward(
    model: Any,
    tokenizer: Any,
    reward_model: Any,
    reward_tokenizer: Any,
    prompts: list[Any],
    max_new_tokens: int,
) -> float | None:
    if not prompts:
        return None
    texts = [
        s[0][0]
        for s in generate.sample(
            model, tokenizer, prompts, temperature=0.0, max_new_tokens=max_new_tokens
        )
    ]
    rewards = scoring.score(reward_model, reward_tokenizer, prompts, texts)
    return sum(rewards) / len(rewards)


def vllm_kwargs(spec: OnlineSpec) -> dict[str, Any]:
    """The TRL config's vLLM arguments (none unless ``use_vllm``); vLLM must be installed on the
    worker host that runs the step (``pip install vllm``)."""
    if not spec.use_vllm:
        return {}
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        raise RuntimeError(
            "policy.use_vllm is set but vllm is not installed on this worker host "
            "(pip install vllm, on a GPU host), or set policy.use_vllm to false"
        )
    kwargs: dict[str, Any] = {"use_vllm": True, "vllm_mode": spec.vllm_mode}
    if spec.vllm_mode == "server":
        kwargs["vllm_server_base_url"] = spec.vllm_server_base_url
    else:
        kwargs["vllm_gpu_memory_utilization"] = spec.vllm_gpu_memory_utilization
    return kwargs


def _last_logged(log_history: list[dict[str, Any]], key: str) -> float | None:
    for entry in reversed(log_history):
        if key in entry:
            return float(entry[key])
    return None


def run(spec: OnlineSpec, events: Events | None = None) -> OnlineResult:
    from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

    events = events or Events()
    start = time.monotonic()
    vllm = vllm_kwargs(spec)  # a host without vLLM fails here, before any model is loaded
    configure_threads()
    set_seed(spec.seed)
    device = resolve_device(spec.device)
    rows = data.load_prompts(spec.prompts)
    eval_prompts = [r["prompt"] for r in rows[: spec.eval_prompts]]
    model, tokenizer = load_policy(
        spec.base_model, device, dtype=spec.dtype, chat_template=spec.chat_template
    )
    tokenizer.padding_side = "left"
    reward_model, reward_tokenizer = scoring.load_reward_model(
        spec.reward_model, device, model_dtype(spec.dtype, device)
    )
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
    config_class: Any
    trainer_class: Any
    config_class, trainer_class = (
        (GRPOConfig, GRPOTrainer) if spec.method == "grpo" else (RLOOConfig, RLOOTrainer)
    )
    events.log(
        f"online: {spec.method} on {len(rows)} prompts, {spec.max_steps} steps, beta {spec.beta}"
    )
    events.check()
    with (
        atomic_dir(spec.output_dir) as out,
        tempfile.TemporaryDirectory(prefix="online-trainer-") as scratch,
    ):
        args = config_class(
            output_dir=scratch,
            per_device_train_batch_size=spec.batch_size,
            num_generations=spec.num_generations,
            max_completion_length=spec.max_completion_length,
            temperature=spec.temperature,
            beta=spec.beta,
            learning_rate=spec.learning_rate,
            max_steps=spec.max_steps,
            lr_scheduler_type="constant",
            seed=spec.seed,
            data_seed=spec.seed,
            **trainer_device_kwargs(spec.device),
            **vllm,
        )
        trainer = trainer_class(
            model=model,
            reward_funcs=reward_model,
            args=args,
            train_dataset=data.prompt_dataset(rows),
            processing_class=tokenizer,
            reward_processing_classes=reward_tokenizer,
            peft_config=peft_config,
            callbacks=[ProgressCallback(events)],
        )
        quiet_trainer(trainer)
        if spec.parent_adapter is not None:
            lora.load_adapter_weights(trainer.model, spec.parent_adapter)
            events.log(
                f"online: warm start from {spec.parent_adapter}; reference is the base model"
            )
        before = mean_greedy_reward(trainer.model, tokenizer, reward_model, reward_tokenizer, eval_prompts,
                                    spec.max_completion_length)  # fmt: skip
        events.check()
        trainer.train()
        events.check()
        after = mean_greedy_reward(trainer.model, tokenizer, reward_model, reward_tokenizer, eval_prompts,
                                   spec.max_completion_length)  # fmt: skip
        kl = _last_logged(trainer.state.log_history, "kl")
        events.log(f"online: mean reward {before} -> {after}, kl {kl}")
        metrics = {"mean_reward_before": before, "mean_reward_after": after, "kl": kl,
                   "steps": int(trainer.state.global_step)}  # fmt: skip
        trained: Any = trainer.model
        trained.save_pretrained(str(out), selected_adapters=["default"], safe_serialization=True)
        tokenizer.save_pretrained(str(out))
        write_manifest(
            out,
            base_model=spec.base_model,
            parent=spec.parent_adapter,
            method=spec.method,
            spec=spec.to_dict(),
            data_hash=file_hash(spec.prompts),
            seed=spec.seed,
            metrics=metrics,
            extra={"task": "causal-lm", "reference": "base", "reward_model": spec.reward_model},
        )
    return OnlineResult(
        checkpoint_dir=str(Path(spec.output_dir).resolve()),
        method=spec.method,
        mean_reward_before=before,
        mean_reward_after=after,
        kl=kl,
        steps=int(trainer.state.global_step),
        wall_s=round(time.monotonic() - start, 3),
    )
