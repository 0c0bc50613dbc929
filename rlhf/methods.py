"""The registry of tuning methods and the round config (safe in the web process: no torch).

``METHOD_REGISTRY`` is the one list of methods. Each :class:`TrainingMethod` names its family
(which data the policy step trains on), its engine step (``python -m rlhf.training <step>``, whose
spec class is ``SPEC_TYPES[step]`` in the torch-free ``rlhf.training.specs``), its policy defaults,
the settings that define it, and its label and one-line description for the picker. The round
model's choices, the launch form, the ``launch_round`` command, config resolution and validation,
the runner's engine call and data file, and the runner's ``TRAINING_STEPS`` all derive from it.
Adding a method of an existing family is one entry here (plus the engine module when its step is
new: a spec class in ``specs.SPEC_TYPES`` and ``rlhf/training/<step>.py``).

A round config has five sections, each a flat dict:

- ``snapshot``: which judgments become preference rows (min agreement, tie / both-bad policy,
  which rounds' comparisons, whether held-out prompts count, annotator reliability weights and
  the reliability under which an annotator's votes are dropped);
- ``reward``: the reward-model trainer (RewardSpec fields);
- ``policy``: the policy trainer: the fields of the method's engine spec (DPOSpec for dpo / ipo /
  robust, KTOSpec for kto, OnlineSpec for grpo / rloo);
- ``evaluate`` and ``generate``: the evaluation (greedy against the parent, sampled against the
  base and the champion, scored by the reward model) and the responses that go back into the
  queue (held-out prompts' pairs only with ``generate.human_eval``).

The settings a section accepts are its engine spec's fields, less those the runner fills (paths,
the model's device / dtype / chat template, the seed). A launch checks the whole resolved config
against the engine's specs, so a bad value is refused with the field's name before any step runs.

"PPO" is not offered on purpose: TRL removed ``PPOTrainer`` (huggingface/trl PR #7020). GRPO is
PPO's clipped-ratio policy objective with a group-relative baseline in place of the learned critic;
RLOO is its REINFORCE cousin (leave-one-out baseline). Both are the PPO family of online RL here.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# labeling.reliability, not labeling.preferences: this module stays Django-free (benchmarks use it)
from labeling.reliability import WEIGHTINGS as ANNOTATOR_WEIGHTS
from rlhf.training.specs import (
    SPEC_TYPES,
    DPOSpec,
    EvaluateSpec,
    GenerateSpec,
    OnlineSpec,
    RewardSpec,
    SpecError,
)

# labeling.preferences.ADJUDICATED, spelled out here for the same reason (tests check they agree)
ADJUDICATED = ("ignore", "prefer")

PPO_NOTE = (
    "Looking for PPO? TRL removed PPOTrainer (PR #7020). GRPO is PPO's clipped-ratio objective "
    "with a group baseline instead of a critic; RLOO is its REINFORCE (leave-one-out) cousin. "
    "Both are PPO-family online RL against the round's reward model, with a KL penalty (beta > 0)."
)

SNAPSHOT_DEFAULTS: dict[str, Any] = {
    "min_agreement": 0.0,  # drop comparisons whose majority share is below this
    "ties": "drop",  # drop | split (a tie becomes both orders, weight 0.5 each)
    "both_bad": "drop",  # drop | split
    # all | latest (comparisons not made by a round + the latest round's) | newest (only the latest
    # round's, or the others before any round) | [round numbers; 0 = comparisons not made by one]
    "rounds": "all",
    "include_held_out": False,  # judgments on split=test prompts stay out of training
    # The rounds whose judgments train the reward model (same values as ``rounds``). The whole
    # history by default, whatever the policy trains on: the annotators' taste does not change
    # between rounds, and a reward model re-trained on each round's batch alone (200 labels)
    # stayed near a coin (benchmarks/loop.py: 58-70% held-out accuracy).
    "reward_rounds": "all",
    # none | dawid_skene | mace: votes count by their annotator's reliability, estimated on the
    # snapshot's judgments (labeling.reliability; the export's annotator_weights)
    "annotator_weights": "none",
    "drop_below": 0.0,  # with annotator_weights: drop the votes of annotators scoring less
    # prefer | ignore: a comparison a reviewer adjudicated trains on the adjudication, not its
    # votes (labeling.preferences; the export's adjudicated). Rounds stored before the option
    # existed read as ignore.
    "adjudicated": "prefer",
}
# Training hyperparameters default to the engine's own, except the step budgets: a round trains
# a fixed number of steps (``max_steps``) instead of epochs, so its time does not grow with the
# snapshot (the whole history by default). The DPO adapter is warm-started from the parent, so the
# policy keeps learning across rounds. DPO's learning rate is higher than the engine's, tuned on
# the built-in models (LoRA on a 3.5M-parameter policy): on round 1 of benchmarks/loop.py, 48
# steps at 5e-4 or 2e-3 left the sampled rule win-rate vs base at about 0.5 (96 steps at 2e-3:
# 0.57), at 5e-3 it reached 0.71. For a real base model override it (1e-5 to 1e-4 is usual for
# LoRA DPO). IPO, robust and KTO keep the engine's until measured. Any setting of a section
# (``settings_of``) can be overridden; note that ``max_steps`` > 0 wins over ``num_epochs``: to
# train by epochs, override ``max_steps`` with -1.
# DPO-family rounds are iterative DPO: each round trains on the batch the previous round put into
# the queue (its new-vs-champion and on-policy pairs, judged), with the parent policy as the frozen
# reference, so every round is a bounded step from where the last one ended. Measured on
# benchmarks/loop.py (3 rounds, 20% label noise, sampled rule win-rate vs base): this recipe went
# 60.8 -> 73.8 -> 74.1%; warm-starting on the whole history with the base as reference went
# 60.8 -> 58.1 -> 67.5% and its text degenerated; parent reference on the whole history (re-using
# the first batch every round) 60.8 -> 65.9 -> 63.7%.
# With the tie-aware promotion gate (more promotions, so more rounds warm-start from a promoted
# parent), ``reference: base`` (the KL anchored to the base instead of the parent) was measured
# on 2 seeds (benchmarks/loop.py --rules all, 2026-12-05): it kept polite's sampled answers more
# fluent (the base model's perplexity 5.8 / 6.1 against 15.5 / 11.0) but lost rule win-rate where
# the gate promoted (round 3: formatted 74.2 / 73.9 vs 79.8 / 76.2%, correct_polite 59.1 vs
# 73.6%, polite 77.2 / 77.5 vs 78.0 / 78.1%), so the parent stays the reference; the fluency
# flag, read on the sampled answers too, holds a drifted candidate back.
# KTO rounds follow the same recipe (the offline families share it).
OFFLINE_SNAPSHOT_DEFAULTS: dict[str, Any] = {"rounds": "newest"}
# The reward model adapts only the backbone's top 3 layers (the backward pass stops there): on
# benchmarks/loop.py's round data, 32 steps took 11-12 s instead of 16 s at equal or better
# held-out accuracy (0.64 vs 0.61 and 0.73 vs 0.71), with a learning rate of 3e-3.
REWARD_DEFAULTS: dict[str, Any] = {
    "max_steps": 32,
    "lora_top_layers": 3,
    "learning_rate": 3e-3,
    "members": 3,
}
# ``members``: the reward step trains 3 reward models from different seeds on the same rows and
# writes their weight average (rlhf.training.reward.average_members). A single from-scratch fit of
# 32 steps is a draw: benchmarks/reward_members.py (concise, 186 rows, 4 seeds) scored members of
# one step 0.11 apart on average (0.68 to 0.92 against the rule's noiseless labels), their
# average within 0.02 of their mean. The loop once delivered a round-3 reward model at 42%
# agreement with the rule (concise seed 2, 2026-12-06). The members also serve an ``uncertainty``
# project's queue: the worker orders it by how much they disagree about each pair (query by
# committee).
DPO_MAX_STEPS = 48  # batch 8: about 20 s on 2 busy cores, whatever the snapshot size
# Not scaled with the snapshot: a snapshot widened to every batch about a champion the gate held
# (up to 570 rows by round 3) given the same two passes as a round's batch (up to 96 steps) did
# worse than 48 steps on benchmarks/loop.py (correct_polite round 3: 61.1 vs 67.2% and 61.7 vs
# 69.2% on two seeds; concise: 64.5 vs 51.1% and 58.3 vs 82.8%, the latter word salad with the
# base model's perplexity at 25.8 against its 2.6 on its own, which the promotion gate's fluency
# flag now holds back).
# DPO's strength. beta 0.1 with sft_weight 0.1 (tuned on correct_polite alone) moved the policy
# 11-23 nats (KL to the base) in one round and 17-46 by round 3, and under rules it was not tuned
# for the text fell apart: the base model's perplexity on the answers went from 2.6 to 34-1046
# (word salad that still won under a rule that likes short answers). An NLL term of weight 1 on
# the chosen answers (RPO) fixed that. With it, beta 0.5 (sessions 5-9) left concise flat: round 1
# hardly changed the answers' length (10.5 words on average vs the base model's 10.5 on seed 0,
# 9.8 vs 10.9 on seed 1; rule win-rate 50.6 / 56.2% at 48 steps, 52.8 / 56.2% at 96), and without
# the NLL term it turned to word salad. DPO's gradient is scaled by
# beta, so at 0.1 the NLL term on the chosen answers weighs more against it: each round imitates
# what annotators chose more and pushes the rejected answers down less. Measured on
# benchmarks/loop.py (3 rounds x 200 labels, 20% noise), 2 seeds, the same built-in models and
# seeds for both (2026-12-05; see the [6] note), round 3 at beta 0.5 -> 0.1: polite 76.7 / 77.0
# -> 80.5 / 78.9%, correct_polite 67.2 / 69.2 -> 74.4 / 73.9%, formatted 70.6 / 76.4 -> 75.6 /
# 79.8%, concise 51.1 / 82.8 -> 74.7 / 56.6% (round 1: 50.6 / 56.2 -> 61.4 / 65.2%). The base
# model's perplexity on the round-3 samples (2.6 on its own): at 0.5, 5.3-25.8, five of eight
# candidates held back by the fluency flag (concise's 82.8% was word salad at 25.8); at 0.1,
# 3.5-5.8 but formatted seed 0's 8.6 (held back). The KL to the base by round 3: 7.7-18.1 nats at
# 0.5, 2.3-12.6 at 0.1.
DPO_BETA = 0.1
DPO_SFT_WEIGHT = 1.0
# Reward-model pairs (``policy.reward_pairs``, rlhf.training.dpo.reward_model_pairs): besides the
# human rows, each training prompt the round generates for gets one row from the round's reward
# model, the best-scored of 8 samples of the parent that reads fluently against the worst-scored.
# Measured on benchmarks/loop.py (3 rounds x 200 labels, 20% noise, 8 samples x 40 held-out prompts;
# 2026-12-05, seeds 0 and 2, the same built-in models), round 3's rule win-rate vs base without
# -> with them: polite 78.9 / 74.2 -> 81.4 / 79.8%, correct_polite 71.1 / 67.2 -> 79.8 / 79.1%,
# concise 70.5 / 72.2 -> 72.5 / 82.2%, formatted 80.2 / 75.5 -> 84.2 / 77.3%; one-shot DPO on the
# same 600 labels with them (seed 0): 73.4 / 65.2 / 57.7 / 59.5%. Why: best-of-4 of the base
# policy already wins 72-79% under every rule (best-of-16: 81-94%, at a KL of at most 1.8 nats),
# so the built-in policy can write what annotators prefer; 200 noisy human rows a round could
# not teach it that, and the reward model (trained on every judgment so far) carries their taste
# to every prompt. The fluency guard (``reward_pairs_fluency``): without it, concise seed 2 chose
# fragments and went to word salad (the base model's perplexity 20.6 and 28.2 against its own
# 2.8; with it 7.2 and 12.3, which the promotion gate's fluency flag still holds back).
DPO_REWARD_PAIRS = 8
# ... written only by a reward model whose held-out accuracy on people's labels is above this
# (``policy.reward_pairs_min_accuracy``; the runner checks it before the policy step). Under
# ``correct`` (benchmarks/loop.py, seed 0) round 1's reward model scored 50% on its 22 held-out
# pairs: its 160 pairs were noise by its own measure. Withheld, round 1 came out the same (50.2%
# vs 50.3% with them, KL to the base 2.21 vs 2.24: people's rows moved it) for a fifth less CPU.
DPO_REWARD_PAIRS_MIN_ACCURACY = DPOSpec.reward_pairs_min_accuracy
# Human rows whose chosen answer the base model reads over 2x its own answers of the same length
# (rlhf.training.fluency) are left out of a DPO step (dpo.fluent_rows): the NLL term on the chosen
# answers taught the policy the fragments that annotators who like short answers chose. Measured
# on benchmarks/loop.py, concise (2026-12-06), seeds 2 / 1, round 1 -> 3, rule win-rate vs base
# and round 3's answers length-matched: without it 60.8 -> 75.6 -> 84.1% at 3.35x and 71.1 -> 89.2
# -> 85.8% at 2.60x (both held back by the gate's fluency flag); with it 68.6 -> 78.1 -> 78.0% at
# 2.29x and 71.1 -> 86.9 -> 86.4% at 2.13x.
DPO_CHOSEN_FLUENCY_CAP = 2.0
# The policy's KL to the base model, token by token on the step's answers, added to DPO's loss at
# this weight (``policy.anchor_kl``, dpo.token_kl_to_base). With the parent as reference each
# round is a bounded step from the parent but nothing bounds the sum of the rounds: under concise
# the round-3 answers drifted (the base model read them 2.2-3.1x its own of the same length) and
# the gate held them back. Measured on benchmarks/loop.py --rule concise (2026-12-06, seeds 0-3,
# rule win-rate vs base, rounds 1 -> 3; round 3's length-matched fluency; champion delivered):
# 0 (off) 64.1 -> 70.9 -> 79.8% 1.80x r3, 61.4 -> 80.3 -> 86.1% 3.09x r2 (80.3%), 55.9 -> 78.9 ->
# 82.7% 2.63x r2 (78.9%), 67.5 -> 86.2 -> 86.4% 2.40x r1 (67.5%); 0.3: 66.1 -> 83.3 -> 89.5% 1.79x
# r3, 68.0 -> 84.8 -> 90.3% 1.50x r3, 56.7 -> 67.7 -> 72.5% 1.48x the base, 61.7 -> 84.2 -> 90.2%
# 1.65x r3. At 1.0 (seeds 1, 2) the answers hardly moved (1.11x / 1.06x) and neither rose past
# 70%; at 0.1 both loops ended at 66-67% (1.35x / 1.37x).
DPO_ANCHOR_KL = 0.3
# The evaluate step: greedy new-vs-parent (one answer a prompt, with the KL estimate), then
# ``sampled_per_prompt`` samples a prompt at ``sample_temperature`` against the base and the
# champion (the policy as it is used; several samples a prompt shrink the noise).
EVALUATE_DEFAULTS: dict[str, Any] = {
    "max_prompts": 200,
    "max_new_tokens": 32,
    "sampled_per_prompt": 4,
    "sample_temperature": 1.0,
}
GENERATE_DEFAULTS: dict[str, Any] = {
    "max_prompts": 200,  # training prompts that get fresh responses (and pairs in the queue)
    # Held-out prompts that also get samples of the new policy and the champion, stored for
    # evaluation: they never train, so their pairs stay out of the annotators' queue unless
    # ``human_eval`` asks for them (or an admin sends the checkpoint to human evaluation).
    "held_out_prompts": 50,
    "human_eval": False,  # queue new-vs-champion pairs on the held-out prompts too
    "num_samples": 2,  # samples of the new policy per prompt: the on-policy pair
    "temperature": 1.0,
    "max_new_tokens": 32,
    "vs_champion_priority": 100,
    "on_policy_priority": 90,
}
# Queue order of the pairs a round generates: ``priority = round number * QUEUE_TIER + within``.
# Round N's batch is what round N+1 trains on (``snapshot.rounds: newest``, the offline default;
# ``latest`` and ``all`` include it too), so it is served before any older round's leftovers and
# before comparisons no round made (tier 0). ``within`` orders a tier: the ``generate`` section's
# ``*_priority`` (fifo projects) or the live reward model's uncertainty score (``uncertainty``
# projects, ``rlhf.prioritize``); it must stay in ``[0, QUEUE_TIER)``.
QUEUE_TIER = 1_000_000

SECTIONS = ("snapshot", "reward", "policy", "evaluate", "generate")

# What the policy step trains on, by family (the runner writes that file):
FAMILIES = {
    "offline-pairs": "preference pairs from the judgment snapshot (preferences.jsonl)",
    "offline-unpaired": "desirable / undesirable completions from the judgment snapshot (kto.jsonl)",
    "online": "the training prompts, scored by the round's new reward model (prompts.jsonl)",
}
FAMILY_LABELS = {
    "offline-pairs": "Offline, preference pairs",
    "offline-unpaired": "Offline, unpaired answers",
    "online": "Online RL (PPO family)",
}
# Engine-spec fields the runner fills in, never settings of a round config.
RUNNER_FIELDS = frozenset(
    {
        "seed",
        "device",
        "dtype",
        "chat_template",
        "base_model",
        "data",
        "prompts",
        "reward_model",
        "output_dir",
        "output",
        "parent_adapter",
        "candidate_adapter",
        "adapter",
        "opponents",
        "merge",
    }
)


@dataclasses.dataclass(frozen=True)
class TrainingMethod:
    """One tuning method: what its policy step is and how the picker shows it."""

    name: str
    label: str  # the picker's option
    description: str  # one line under the picker
    family: str  # a key of FAMILIES
    engine_step: str  # ``python -m rlhf.training <engine_step>``; its spec is SPEC_TYPES[step]
    policy_defaults: Mapping[str, Any]
    # Policy settings that make the method what it is: they keep their default's value.
    pinned: tuple[str, ...] = ()
    snapshot: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # its own defaults

    @property
    def unpaired(self) -> bool:
        """Its policy trains on single answers (desirable / undesirable), not pairs."""
        return self.family == "offline-unpaired"

    @property
    def spec(self) -> type[Any]:
        """The engine's spec class of the policy step."""
        return SPEC_TYPES[self.engine_step]

    @property
    def snapshot_defaults(self) -> dict[str, Any]:
        return {
            **SNAPSHOT_DEFAULTS,
            **(OFFLINE_SNAPSHOT_DEFAULTS if self.is_offline else {}),
            **self.snapshot,
        }

    @property
    def is_offline(self) -> bool:
        return self.family != "online"


def _dpo_family(name: str, label: str, description: str, **policy: Any) -> TrainingMethod:
    return TrainingMethod(
        name=name,
        label=label,
        description=description,
        family="offline-pairs",
        engine_step="dpo",
        policy_defaults={
            "beta": 0.1,
            "max_steps": DPO_MAX_STEPS,
            "reference": "parent",
            **policy,
        },
        pinned=("loss_type",),
    )


def _online(name: str, label: str, description: str) -> TrainingMethod:
    return TrainingMethod(
        name=name,
        label=label,
        description=description,
        family="online",
        engine_step="online",
        policy_defaults={
            "method": name,
            "beta": 0.05,
            "reward_min_accuracy": OnlineSpec.reward_min_accuracy,
        },
        pinned=("method",),
    )


METHOD_REGISTRY: dict[str, TrainingMethod] = {
    m.name: m
    for m in (
        _dpo_family(
            "dpo",
            "DPO (direct preference optimisation)",
            "Offline, from the preference snapshot (sigmoid DPO loss). The default.",
            loss_type="sigmoid",
            learning_rate=5e-3,
            beta=DPO_BETA,
            sft_weight=DPO_SFT_WEIGHT,
            reward_pairs=DPO_REWARD_PAIRS,
            reward_pairs_min_accuracy=DPO_REWARD_PAIRS_MIN_ACCURACY,
            chosen_fluency_cap=DPO_CHOSEN_FLUENCY_CAP,
            anchor_kl=DPO_ANCHOR_KL,
        ),
        _dpo_family(
            "ipo",
            "IPO (DPO with the identity-preference loss)",
            "DPO with the IPO loss: less prone to overfitting deterministic preferences.",
            loss_type="ipo",
        ),
        _dpo_family(
            "robust",
            "Robust DPO (noisy labels)",
            "DPO with the robust loss: label_smoothing is the assumed label-noise rate.",
            loss_type="robust",
            label_smoothing=0.2,
        ),
        TrainingMethod(
            name="kto",
            label="KTO (unpaired: desirable / undesirable answers)",
            description="Offline, from the snapshot's judgments as single answers: the preferred "
            "one desirable, the other undesirable, both undesirable when judged both bad "
            "(Kahneman-Tversky loss, no pairs needed).",
            family="offline-unpaired",
            engine_step="kto",
            policy_defaults={"beta": 0.1, "max_steps": DPO_MAX_STEPS, "reference": "parent"},
            # both-bad judgments are KTO's own signal: two undesirable answers
            snapshot={"both_bad": "split"},
        ),
        _online(
            "grpo",
            "GRPO: PPO-family online RL (clipped ratio, group baseline)",
            "PPO-family online RL: samples groups of responses, scores them with the new reward "
            "model, clipped-ratio update with a group baseline (no critic).",
        ),
        _online(
            "rloo",
            "RLOO: PPO-family online RL (REINFORCE leave-one-out)",
            "PPO-family online RL: REINFORCE with a leave-one-out baseline over each group.",
        ),
    )
}
METHODS = tuple(METHOD_REGISTRY)
DEFAULT_METHOD = "dpo"
# Derived views, kept for scripts (benchmarks) that read them.
POLICY_DEFAULTS = {name: dict(m.policy_defaults) for name, m in METHOD_REGISTRY.items()}


def method_choices() -> list[tuple[str, str]]:
    """``Round.method``'s choices (a callable: the list is not frozen into migrations)."""
    return [(m.name, m.label) for m in METHOD_REGISTRY.values()]


def policy_engine_steps() -> tuple[str, ...]:
    """The engine steps that train a policy, in registry order, each once."""
    return tuple(dict.fromkeys(m.engine_step for m in METHOD_REGISTRY.values()))


def _engine_settings(spec: type[Any]) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(spec) if f.name not in RUNNER_FIELDS)


def settings_of(method: TrainingMethod, section: str) -> tuple[str, ...]:
    """The keys a config section accepts for ``method``."""
    if section == "snapshot":
        return tuple(SNAPSHOT_DEFAULTS)
    if section == "generate":
        return tuple(GENERATE_DEFAULTS)
    specs: dict[str, type[Any]] = {
        "reward": RewardSpec,
        "policy": method.spec,
        "evaluate": EvaluateSpec,
    }
    return _engine_settings(specs[section])


class ConfigError(ValueError):
    """An unusable round config; ``field`` names the offending key (``section.key``)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def method_get(name: str) -> TrainingMethod:
    """The registered method ``name``; ConfigError (field ``method``) if there is none."""
    try:
        return METHOD_REGISTRY[name]
    except KeyError:
        hint = f" {PPO_NOTE}" if str(name).lower() == "ppo" else ""
        raise ConfigError(
            f"unknown method {name!r}; use one of {', '.join(METHODS)}.{hint}", field="method"
        ) from None


def default_config(
    method: str, *, model_params: int | None = None, snapshot_size: int | None = None
) -> dict[str, Any]:
    """The full default round config of a method; with the model's parameter count (and the
    snapshot's size), the size-aware defaults of :func:`size_defaults` on top."""
    entry = method_get(method)
    config: dict[str, Any] = {
        "seed": 0,
        "snapshot": copy.deepcopy(entry.snapshot_defaults),
        "reward": copy.deepcopy(REWARD_DEFAULTS),
        "policy": copy.deepcopy(dict(entry.policy_defaults)),
        "evaluate": copy.deepcopy(EVALUATE_DEFAULTS),
        "generate": copy.deepcopy(GENERATE_DEFAULTS),
    }
    sized = size_defaults(method, model_params=model_params, snapshot_size=snapshot_size)
    for section, values in sized.items():
        config[section].update(values)
    return config


# --- size-aware defaults (smollm2 issue) ---------------------------------------------------------
# The defaults above are tuned for the 3.5M-parameter built-in toy and stay exactly as they are
# for any model under SIZE_AWARE_MIN_PARAMS (or of unknown size). A real base model gets values
# derived from its parameter count P (from its safetensors headers, rlhf.model_size) and the
# snapshot's size N (training rows), so a round on SmolLM2-135M needs no hand-set knob:
# - policy learning rate 5e-4 * sqrt(135M / P), within [1e-5, 1e-3] (the toy's 5e-3 would wreck
#   a pretrained model), the same for every method. Measured on SmolLM2-135M, round 1 of
#   benchmarks/loop.py --preset smollm2 (factual_brief, 162 preferences, 21 steps): at 1e-4 the
#   KL to the base was 0.14 and the rule win-rate vs base 56.9% (51-62); at 5e-4, KL 1.35, 63.4%
#   (58-69), greedy answers half as long (11.2 vs 19.7 words) and as often right (25 vs 24 of
#   40); at 1e-3, KL 2.85, 70.8% (66-75) but right on 20 of 40 ("The answer is not available.")
#   and briefer still (8.4 words): brevity bought with correctness. Over 3 rounds at 5e-4 the
#   win-rate went 63.4 -> 69.1 -> 72.5% (67-77), fluent (perplexity 11.6 vs the base's 10.6),
#   but mostly by brevity: greedy right on 21 of 40 vs the base's 24, 7.5 words vs 19.7;
# - LoRA rank 8 below 1B parameters, 16 above (alpha = 2 x rank), all linear layers up to 3B,
#   the attention projections only above;
# - batch 4 x 2 accumulation (the toy's effective 8) below 1B, 2 x 4 above (activation memory);
# - offline methods: max_steps one pass over the snapshot at that effective batch, within [8, 48]
#   (the toy's 48 is the ceiling: a round's time must not grow with the history);
# - max_length 192 tokens (prompt + answer: a system prompt, a question, a few sentences), and
#   48 new tokens to generate and evaluate (a real answer is a sentence or two; the toy's are 32);
# - evaluation on at most 50 held-out prompts with 2 samples each (generation dominates a CPU
#   round: benchmarks/round_budget.py --preset smollm2).
SIZE_AWARE_MIN_PARAMS = 20_000_000
SIZE_REFERENCE_PARAMS = 135_000_000
SIZE_REFERENCE_LR = 5e-4  # the policy's learning rate at SIZE_REFERENCE_PARAMS


def size_defaults(
    method: str, *, model_params: int | None, snapshot_size: int | None = None
) -> dict[str, dict[str, Any]]:
    """The per-section defaults a base model of ``model_params`` parameters gets over the toy's
    (``{}`` for the toy, a small model or an unknown size). ``snapshot_size`` (training rows)
    sets the step budget; unknown, the ceiling. The launch form calls it (or
    :func:`default_config` / :func:`resolve_config` with the same keywords) to show the values
    a launch will resolve to."""
    if model_params is None or model_params < SIZE_AWARE_MIN_PARAMS:
        return {}
    entry = method_get(method)
    big = model_params >= 1_000_000_000
    rank = 16 if big else 8
    batch, accumulation = (2, 4) if big else (4, 2)
    steps = DPO_MAX_STEPS
    if snapshot_size is not None and snapshot_size > 0:
        steps = max(8, min(DPO_MAX_STEPS, math.ceil(snapshot_size / (batch * accumulation))))
    learning_rate = SIZE_REFERENCE_LR * math.sqrt(SIZE_REFERENCE_PARAMS / model_params)
    policy: dict[str, Any] = {
        "learning_rate": float(f"{min(1e-3, max(1e-5, learning_rate)):.2g}"),
        "lora_r": rank,
        "lora_alpha": 2 * rank,
        "lora_target_modules": (
            ["q_proj", "k_proj", "v_proj", "o_proj"]
            if model_params >= 3_000_000_000
            else ["all-linear"]
        ),
        "batch_size": batch,
        "gradient_accumulation_steps": accumulation,
        "max_length": 192,
        "max_completion_length": 48,
        # reward-model pairs sample as long as the round's answers: at the toy's 32 tokens a real
        # model's answers are cut off, and a cut answer is never chosen (dpo.pick_pair)
        "reward_pairs_max_new_tokens": 48,
    }
    if entry.is_offline:
        policy["max_steps"] = steps
    else:  # online RL: a step's batch holds whole groups of generations; its own step budget
        policy["batch_size"] = max(batch, 4)
    allowed = set(settings_of(entry, "policy"))
    return {
        "policy": {k: v for k, v in policy.items() if k in allowed},
        "evaluate": {"max_new_tokens": 48, "max_prompts": 50, "sampled_per_prompt": 2},
        "generate": {"max_new_tokens": 48},
    }


# --- end size-aware defaults ---------------------------------------------------------------------


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


def resolve_config(
    method: str,
    overrides: dict[str, Any] | None = None,
    *,
    model_params: int | None = None,
    snapshot_size: int | None = None,
) -> dict[str, Any]:
    """Defaults of ``method`` with ``overrides`` (same shape, any subset) applied and checked.

    ``model_params`` / ``snapshot_size``: the size-aware defaults (:func:`size_defaults`) of the
    base model and the snapshot replace the toy's before the overrides apply (overrides win).

    Checks, each raising ConfigError naming the field: the method, the sections and their keys,
    the round's own rules, then every section against the engine spec it becomes (the values the
    training step would refuse are refused here, before the round exists).
    """
    entry = method_get(method)
    config = default_config(method, model_params=model_params, snapshot_size=snapshot_size)
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
        allowed = settings_of(entry, key)
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
    _check(entry, config)
    check_against_engine(entry, config)
    return config


def _check(method: TrainingMethod, config: dict[str, Any]) -> None:
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
    if snapshot["annotator_weights"] not in ANNOTATOR_WEIGHTS:
        raise ConfigError(
            f"snapshot.annotator_weights must be one of {', '.join(ANNOTATOR_WEIGHTS)}",
            field="snapshot.annotator_weights",
        )
    if snapshot["adjudicated"] not in ADJUDICATED:
        raise ConfigError(
            f"snapshot.adjudicated must be one of {', '.join(ADJUDICATED)}",
            field="snapshot.adjudicated",
        )
    if not 0.0 <= float(snapshot["drop_below"]) <= 1.0:
        raise ConfigError("snapshot.drop_below must be in [0, 1]", field="snapshot.drop_below")
    if float(snapshot["drop_below"]) > 0 and snapshot["annotator_weights"] == "none":
        raise ConfigError(
            "snapshot.drop_below needs snapshot.annotator_weights dawid_skene or mace (the "
            "reliability it compares with)",
            field="snapshot.drop_below",
        )
    for name in ("rounds", "reward_rounds"):
        rounds = snapshot[name]
        if not (
            rounds in ("all", "latest", "newest")
            or (isinstance(rounds, list) and all(isinstance(r, int) and r >= 0 for r in rounds))
        ):
            raise ConfigError(
                f"snapshot.{name} must be 'all', 'latest', 'newest' or a list of round numbers",
                field=f"snapshot.{name}",
            )
    policy = config["policy"]
    if "beta" in policy and float(policy["beta"]) <= 0:
        raise ConfigError("policy.beta must be > 0 (the KL penalty)", field="policy.beta")
    for name in method.pinned:
        if policy.get(name) != method.policy_defaults[name]:
            raise ConfigError(
                f"policy.{name} must be {method.policy_defaults[name]!r} for method "
                f"{method.name!r} (choose the method that has the other one)",
                field=f"policy.{name}",
            )
    generate = config["generate"]
    if int(generate["num_samples"]) < 2:
        raise ConfigError(
            "generate.num_samples must be >= 2 (on-policy pairs)", field="generate.num_samples"
        )
    if int(generate["max_prompts"]) < 1:
        raise ConfigError("generate.max_prompts must be >= 1", field="generate.max_prompts")
    if int(generate["held_out_prompts"]) < 0:
        raise ConfigError(
            "generate.held_out_prompts must be >= 0", field="generate.held_out_prompts"
        )
    for name in ("vs_champion_priority", "on_policy_priority"):
        if not 0 <= int(generate[name]) < QUEUE_TIER:
            raise ConfigError(
                f"generate.{name} must be in [0, {QUEUE_TIER}) (it orders pairs within the "
                "round's batch)",
                field=f"generate.{name}",
            )


def check_against_engine(method: TrainingMethod, config: dict[str, Any]) -> None:
    """Build each engine spec the round will run from ``config``, with stand-ins for the paths
    the runner fills in, and let the spec validate itself; ConfigError names ``section.field``."""
    generate_fields = {f.name for f in dataclasses.fields(GenerateSpec)}
    sections: list[tuple[str, type[Any], dict[str, Any]]] = [
        ("reward", RewardSpec, config["reward"]),
        ("policy", method.spec, config["policy"]),
        ("evaluate", EvaluateSpec, config["evaluate"]),
        ("generate", GenerateSpec, {k: v for k, v in config["generate"].items()
                                    if k in generate_fields}),
    ]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="pairwise-config-check-") as scratch:
        for section, spec, settings in sections:
            values = {**spec.placeholder_paths(Path(scratch)), "seed": config["seed"], **settings}
            try:
                spec.from_json(values)
            except SpecError as exc:
                field = f"{section}.{exc.field}" if exc.field else section
                reason = str(exc).split(f"field '{exc.field}': ", 1)[-1]
                raise ConfigError(f"{field}: {reason}", field=field) from exc


def first_round_policy_fields(
    policy: Mapping[str, Any], *, prompts: str, reward_model: str
) -> dict[str, Any]:
    """A resolved config's ``policy`` section as the fields of an offline policy step's spec in a
    first round run outside the runner (the benchmarks): the base model is the reference, and
    reward-model pairs (``reward_pairs`` > 0) get what ``rlhf.runner`` hands the step, the
    prompts file and the round's merged reward model. Lists become the spec's tuples."""
    fields: dict[str, Any] = {
        key: tuple(value) if isinstance(value, list) else value for key, value in policy.items()
    }
    fields["reference"] = "base"
    if int(policy.get("reward_pairs", 0)):
        fields.update(prompts=prompts, reward_model=reward_model)
    return fields
