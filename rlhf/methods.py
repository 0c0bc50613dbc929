"""Tuning methods and their round-config defaults (plain data: safe to import in the web process).

A round config has five sections, each a flat dict:

- ``snapshot``: which judgments become preference rows (min agreement, tie / both-bad policy,
  which rounds' comparisons, whether held-out prompts count);
- ``reward``: the reward-model trainer (RewardSpec fields);
- ``policy``: the policy trainer: DPOSpec fields for dpo / ipo / robust, OnlineSpec fields for
  grpo / rloo;
- ``evaluate`` and ``generate``: the evaluation against the parent and the responses that go back
  into the queue.

"PPO" is not offered on purpose: TRL removed ``PPOTrainer`` (huggingface/trl PR #7020). GRPO is
PPO's clipped-ratio policy objective with a group-relative baseline in place of the learned critic;
RLOO is its REINFORCE cousin (leave-one-out baseline). Both are the PPO family of online RL here.
"""

from __future__ import annotations

import copy
from typing import Any

DPO_METHODS = ("dpo", "ipo", "robust")
ONLINE_METHODS = ("grpo", "rloo")
METHODS = DPO_METHODS + ONLINE_METHODS

PPO_NOTE = (
    "Looking for PPO? TRL removed PPOTrainer (PR #7020). GRPO is PPO's clipped-ratio objective "
    "with a group baseline instead of a critic; RLOO is its REINFORCE (leave-one-out) cousin. "
    "Both are PPO-family online RL against the round's reward model, with a KL penalty (beta > 0)."
)

METHOD_HELP = {
    "dpo": "Offline, from the preference snapshot (sigmoid DPO loss). The default.",
    "ipo": "DPO with the IPO loss: less prone to overfitting deterministic preferences.",
    "robust": "DPO with the robust loss: label_smoothing is the assumed label-noise rate.",
    "grpo": "PPO-family online RL: samples groups of responses, scores them with the new reward "
    "model, clipped-ratio update with a group baseline (no critic).",
    "rloo": "PPO-family online RL: REINFORCE with a leave-one-out baseline over each group.",
}

SNAPSHOT_DEFAULTS: dict[str, Any] = {
    "min_agreement": 0.0,  # drop comparisons whose majority share is below this
    "ties": "drop",  # drop | split (a tie becomes both orders, weight 0.5 each)
    "both_bad": "drop",  # drop | split
    # all | latest (comparisons not made by a round + the latest round's) | newest (only the latest
    # round's, or the others before any round) | [round numbers; 0 = comparisons not made by one]
    "rounds": "all",
    "include_held_out": False,  # judgments on split=test prompts stay out of training
}
# Training hyperparameters default to the engine's own, except the step budgets: a round trains
# a fixed number of steps (``max_steps``) instead of epochs, so its time does not grow with the
# snapshot (the whole history by default). The DPO adapter is warm-started from the parent, so the
# policy keeps learning across rounds. DPO's learning rate is higher than the engine's, tuned on
# the built-in models (LoRA on a 3.5M-parameter policy): on round 1 of benchmarks/loop.py, 48
# steps at 5e-4 or 2e-3 left the sampled rule win-rate vs base at about 0.5 (96 steps at 2e-3:
# 0.57), at 5e-3 it reached 0.71. For a real base model override it (1e-5 to 1e-4 is usual for
# LoRA DPO). IPO and robust keep the engine's until measured. Any key of ALLOWED can be overridden; note that
# ``max_steps`` > 0 wins over ``num_epochs``: to train by epochs, override ``max_steps`` with -1.
# DPO-family rounds are iterative DPO: each round trains on the batch the previous round put into
# the queue (its new-vs-champion and on-policy pairs, judged), with the parent policy as the frozen
# reference, so every round is a bounded step from where the last one ended. Measured on
# benchmarks/loop.py (3 rounds, 20% label noise, sampled rule win-rate vs base): this recipe went
# 60.8 -> 73.8 -> 74.1%; warm-starting on the whole history with the base as reference went
# 60.8 -> 58.1 -> 67.5% and its text degenerated; parent reference on the whole history (re-using
# the first batch every round) 60.8 -> 65.9 -> 63.7%.
DPO_SNAPSHOT_DEFAULTS: dict[str, Any] = {"rounds": "newest"}
# The reward model adapts only the backbone's top 3 layers (the backward pass stops there): on
# benchmarks/loop.py's round data, 32 steps took 11-12 s instead of 16 s at equal or better
# held-out accuracy (0.64 vs 0.61 and 0.73 vs 0.71), with a learning rate of 3e-3.
REWARD_DEFAULTS: dict[str, Any] = {"max_steps": 32, "lora_top_layers": 3, "learning_rate": 3e-3}
DPO_MAX_STEPS = 48  # batch 8: about 20 s on 2 busy cores, whatever the snapshot size
POLICY_DEFAULTS: dict[str, dict[str, Any]] = {
    "dpo": {
        "loss_type": "sigmoid",
        "beta": 0.1,
        "max_steps": DPO_MAX_STEPS,
        "learning_rate": 5e-3,
        "sft_weight": 0.1,
        "reference": "parent",
    },
    "ipo": {"loss_type": "ipo", "beta": 0.1, "max_steps": DPO_MAX_STEPS, "reference": "parent"},
    "robust": {
        "loss_type": "robust",
        "beta": 0.1,
        "label_smoothing": 0.2,
        "max_steps": DPO_MAX_STEPS,
        "reference": "parent",
    },
    "grpo": {"method": "grpo", "beta": 0.05},
    "rloo": {"method": "rloo", "beta": 0.05},
}
EVALUATE_DEFAULTS: dict[str, Any] = {"max_prompts": 200, "max_new_tokens": 32}
GENERATE_DEFAULTS: dict[str, Any] = {
    "max_prompts": 200,  # prompts that get fresh responses (held-out ones first)
    "num_samples": 2,  # samples of the new policy per prompt: the on-policy pair
    "temperature": 1.0,
    "max_new_tokens": 32,
    "vs_champion_priority": 100,
    "on_policy_priority": 90,
}

_LORA = ("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules", "lora_top_layers")
_OPTIM = (
    "learning_rate",
    "num_epochs",
    "max_steps",
    "batch_size",
    "gradient_accumulation_steps",
    "max_length",
    "eval_fraction",
)
ALLOWED: dict[str, dict[str, tuple[str, ...]]] = {
    "snapshot": {m: tuple(SNAPSHOT_DEFAULTS) for m in METHODS},
    "reward": {m: (*_OPTIM, *_LORA, "use_margin", "center_rewards_coefficient") for m in METHODS},
    "policy": {
        **{
            m: (*_OPTIM, *_LORA, "beta", "loss_type", "label_smoothing", "reference", "sft_weight")
            for m in DPO_METHODS
        },
        **{
            m: (
                *_LORA,
                "method",
                "beta",
                "learning_rate",
                "max_steps",
                "batch_size",
                "num_generations",
                "max_completion_length",
                "temperature",
                "eval_prompts",
            )
            for m in ONLINE_METHODS
        },
    },
    "evaluate": {
        m: ("max_prompts", "max_new_tokens", "temperature", "batch_size", "tie_tolerance", "rules")
        for m in METHODS
    },
    "generate": {m: tuple(GENERATE_DEFAULTS) for m in METHODS},
}
SECTIONS = ("snapshot", "reward", "policy", "evaluate", "generate")


class ConfigError(ValueError):
    """An unusable round config; ``field`` names the offending key (``section.key``)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def default_config(method: str) -> dict[str, Any]:
    """The full default round config of a method."""
    if method not in METHODS:
        raise ConfigError(
            f"unknown method {method!r}; use one of {', '.join(METHODS)}", field="method"
        )
    snapshot = copy.deepcopy(SNAPSHOT_DEFAULTS)
    if method in DPO_METHODS:
        snapshot.update(DPO_SNAPSHOT_DEFAULTS)
    return {
        "seed": 0,
        "snapshot": snapshot,
        "reward": copy.deepcopy(REWARD_DEFAULTS),
        "policy": copy.deepcopy(POLICY_DEFAULTS[method]),
        "evaluate": copy.deepcopy(EVALUATE_DEFAULTS),
        "generate": copy.deepcopy(GENERATE_DEFAULTS),
    }


def _same_kind(default: Any, value: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str | list)
    return True


def resolve_config(method: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults of ``method`` with ``overrides`` (same shape, any subset) applied and checked.

    Keys are checked against the defaults; the training engine checks the values again when it
    loads the spec, so a value this misses fails the step with a message naming the field.
    """
    config = default_config(method)
    for key, value in (overrides or {}).items():
        if key == "seed":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError("seed must be an integer", field="seed")
            config["seed"] = value
            continue
        if key not in SECTIONS:
            raise ConfigError(
                f"unknown config section {key!r}; sections: seed, {', '.join(SECTIONS)}", field=key
            )
        if not isinstance(value, dict):
            raise ConfigError(f"config section {key!r} must be an object", field=key)
        section = config[key]
        allowed = ALLOWED[key][method]
        for name, item in value.items():
            field = f"{key}.{name}"
            if name not in allowed:
                raise ConfigError(
                    f"unknown setting {field}; known: {', '.join(sorted(allowed))}", field=field
                )
            if name in section and not _same_kind(section[name], item):
                raise ConfigError(
                    f"{field} must be like {section[name]!r}, got {item!r}", field=field
                )
            section[name] = item
    _check(method, config)
    return config


def _check(method: str, config: dict[str, Any]) -> None:
    snapshot = config["snapshot"]
    if not 0.0 <= float(snapshot["min_agreement"]) <= 1.0:
        raise ConfigError(
            "snapshot.min_agreement must be in [0, 1]", field="snapshot.min_agreement"
        )
    for name in ("ties", "both_bad"):
        if snapshot[name] not in ("drop", "split"):
            raise ConfigError(
                f"snapshot.{name} must be 'drop' or 'split'", field=f"snapshot.{name}"
            )
    rounds = snapshot["rounds"]
    if not (
        rounds in ("all", "latest", "newest")
        or (isinstance(rounds, list) and all(isinstance(r, int) and r >= 0 for r in rounds))
    ):
        raise ConfigError(
            "snapshot.rounds must be 'all', 'latest', 'newest' or a list of round numbers",
            field="snapshot.rounds",
        )
    policy = config["policy"]
    if float(policy.get("beta", 0)) <= 0:
        raise ConfigError("policy.beta must be > 0 (the KL penalty)", field="policy.beta")
    generate = config["generate"]
    if int(generate["num_samples"]) < 2:
        raise ConfigError(
            "generate.num_samples must be >= 2 (on-policy pairs)", field="generate.num_samples"
        )
    if int(generate["max_prompts"]) < 1:
        raise ConfigError("generate.max_prompts must be >= 1", field="generate.max_prompts")
    if method in ONLINE_METHODS and policy.get("method") != method:
        raise ConfigError(f"policy.method must be {method!r}", field="policy.method")
