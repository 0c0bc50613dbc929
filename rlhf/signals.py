"""What a round's figures say, each labelled by its source, and plain-word warnings.

Two sources speak about a new policy: the reward model (its evaluate step's greedy win-rate vs
the parent, and its sampled win-rates vs the base and the champion with 95% intervals; only as good
as the reward model's own held-out accuracy) and humans (judged pairs of the new policy vs its
parent). Plain Python on figures the selectors read (no queries here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rlhf.leaderboard import WinRate, wilson_interval

COIN = 0.5
# The sampled KL estimate is "off" when it is further from the direct computation than this
# (absolute nats, or this share of the direct figure, whichever is larger).
KL_CHECK_ABS, KL_CHECK_REL = 0.25, 0.5
LENGTH_RATIO = 0.5  # mean length of the new answers over the parent's
DASH = "\N{EN DASH}"  # between the bounds of an interval
# Flags that hold a checkpoint back at the promotion gate whatever humans say (an admin can still
# force it): a simulated or hurried annotator may prefer broken text under some rules (short
# answers win under ``concise`` even as word salad), and a collapsed policy must not become the
# next round's parent. ``length_collapse`` only warns: under a preference for brief answers,
# halving the length is the point (SmolLM2 under factual_brief: 27 -> 12 tokens, the base model's
# perplexity on them 12.5 vs 10.6), and a collapse to junk shows in the perplexity too.
BLOCKING_FLAGS = ("fluency_collapse",)


@dataclass(frozen=True)
class Flag:
    code: str
    message: str


@dataclass(frozen=True)
class SampledWinRate:
    """The evaluate step's sampled reward-model win-rate of the new policy against one opponent
    (``label``: base | champion, ``checkpoint``: which one it was at evaluation time)."""

    label: str
    checkpoint: int | None
    win_rate: float
    lower: float | None
    upper: float | None
    pairs: int
    prompts: int
    samples_per_prompt: int | None
    temperature: float | None
    # the base model's perplexity on the sampled answers of each side (fluency as served)
    perplexity_candidate: float | None = None
    perplexity_opponent: float | None = None
    # ... each over the base model's on its own answers of the same lengths (1: reads like them)
    fluency_candidate: float | None = None
    fluency_opponent: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "opponent": self.label,
            "checkpoint": self.checkpoint,
            "win_rate": self.win_rate,
            "lower": self.lower,
            "upper": self.upper,
            "pairs": self.pairs,
            "prompts": self.prompts,
            "samples_per_prompt": self.samples_per_prompt,
            "temperature": self.temperature,
            "perplexity_under_base": self.perplexity_candidate,
            "opponent_perplexity_under_base": self.perplexity_opponent,
            "fluency_ratio": self.fluency_candidate,
            "opponent_fluency_ratio": self.fluency_opponent,
        }


@dataclass(frozen=True)
class RoundSignals:
    """A round's headline figures by source, and the flags they raise."""

    reward_win_rate: float | None  # the reward model's preference of new over parent
    kl: float | None  # the KL estimate of the new policy to its parent
    reward_accuracy: float | None  # the reward model's held-out accuracy
    reward_pairs: int | None  # ... on this many held-out pairs
    humans: WinRate  # judged new-vs-parent pairs
    snapshot_size: int
    kl_direct: float | None = None  # the exact token-level KL on the same samples
    perplexity_candidate: float | None = None  # the base model's, on the new policy's answers
    perplexity_parent: float | None = None  # ... on the parent's answers
    # the same answers' length-matched fluency ratios (over the base model's own sampled answers
    # of the same lengths; rlhf.training.fluency), when the evaluation measured them
    fluency_candidate: float | None = None
    fluency_parent: float | None = None
    length_candidate: float | None = None  # mean answer length in tokens
    length_parent: float | None = None
    flags: list[Flag] = field(default_factory=list)
    sampled: list[SampledWinRate] = field(default_factory=list)  # vs the base and the champion

    @property
    def reward_sampled_says(self) -> str:
        if not self.sampled:
            return "Reward model says (sampled): not evaluated."
        first = self.sampled[0]
        how = (
            f"{first.samples_per_prompt} samples a prompt at temperature {first.temperature:g}"
            if first.samples_per_prompt is not None and first.temperature is not None
            else "sampled"
        )
        parts = []
        for one in self.sampled:
            who = f"{one.label} #{one.checkpoint}" if one.checkpoint is not None else one.label
            interval = (
                f", 95% interval {_pct(one.lower)}{DASH}{_pct(one.upper)}"
                if one.lower is not None and one.upper is not None
                else ""
            )
            parts.append(
                f"{_pct(one.win_rate)} vs {who} ({one.pairs} pairs on {one.prompts} prompts"
                f"{interval})"
            )
        return f"Reward model says ({how}): new policy wins " + "; ".join(parts) + "."

    @property
    def reward_interval(self) -> tuple[float, float] | None:
        if self.reward_accuracy is None or not self.reward_pairs:
            return None
        return wilson_interval(self.reward_accuracy * self.reward_pairs, self.reward_pairs)

    @property
    def reward_says(self) -> str:
        if self.reward_win_rate is None:
            return "Reward model says: not evaluated yet."
        line = f"Reward model says: new policy wins {_pct(self.reward_win_rate)} vs parent"
        interval = self.reward_interval
        if self.reward_accuracy is None:
            return line + " (the reward model's held-out accuracy was not measured)."
        accuracy = f"reward-model held-out accuracy {_pct(self.reward_accuracy)}"
        if interval is None:
            return f"{line} ({accuracy}, held-out pair count not recorded)."
        return (
            f"{line} ({accuracy} on {self.reward_pairs} pairs, "
            f"95% interval {_pct(interval[0])}{DASH}{_pct(interval[1])})."
        )

    @property
    def humans_say(self) -> str:
        rate, interval = self.humans.rate, self.humans.interval
        if rate is None or interval is None:
            return "Humans say: not judged yet."
        return (
            f"Humans say: {_pct(rate)} of {self.humans.judged} judged new-vs-parent pairs "
            f"(95% interval {_pct(interval[0])}{DASH}{_pct(interval[1])})."
        )

    def as_dict(self) -> dict[str, Any]:
        interval = self.reward_interval
        humans = self.humans
        return {
            "reward_model": {
                "says": self.reward_says,
                "win_rate_vs_parent": self.reward_win_rate,
                "kl_to_parent": self.kl,
                "kl_to_parent_direct": self.kl_direct,
                "perplexity_under_base": self.perplexity_candidate,
                "parent_perplexity_under_base": self.perplexity_parent,
                "mean_length": self.length_candidate,
                "parent_mean_length": self.length_parent,
                "held_out_accuracy": self.reward_accuracy,
                "held_out_pairs": self.reward_pairs,
                "accuracy_lower": None if interval is None else interval[0],
                "accuracy_upper": None if interval is None else interval[1],
                "sampled_says": self.reward_sampled_says,
                "sampled": [one.as_dict() for one in self.sampled],
            },
            "humans": {
                "says": self.humans_say,
                "wins": humans.wins,
                "losses": humans.losses,
                "ties": humans.ties,
                "judged": humans.judged,
                "rate": humans.rate,
                "lower": humans.lower,
                "upper": humans.upper,
            },
            "snapshot_size": self.snapshot_size,
            "flags": [{"code": f.code, "message": f.message} for f in self.flags],
        }


def _pct(value: float) -> str:
    return f"{value * 100:.0f}%"


def reward_model_below(reward_metrics: dict[str, Any] | None, min_accuracy: float) -> str | None:
    """Why the reward model is not above ``min_accuracy`` on people's labels, as a clause ("its
    held-out accuracy was 50% on 22 pairs, not above 50%"), or None when it is. A reward model
    with no held-out pairs is not second-guessed."""
    metrics = reward_metrics or {}
    accuracy, pairs = _number(metrics.get("eval_accuracy")), _count(metrics.get("num_eval"))
    if accuracy is None or not pairs or accuracy > min_accuracy:
        return None
    return (
        f"its held-out accuracy was {_pct(accuracy)} on {pairs} pairs, not above "
        f"{_pct(min_accuracy)}"
    )


def reward_pairs_withheld(reward_metrics: dict[str, Any] | None, min_accuracy: float) -> str | None:
    """Why the round's reward model may not write training pairs for its policy step
    (``policy.reward_pairs``; :func:`reward_model_below` with ``policy.reward_pairs_min_accuracy``),
    or None. The runner asks before the policy step; the round's flag says it."""
    below = reward_model_below(reward_metrics, min_accuracy)
    if below is None:
        return None
    return (
        f"The reward model's pairs did not train the new policy: {below} "
        "(policy.reward_pairs_min_accuracy), so the policy step trained on people's judgments alone."
    )


def online_refused(reward_metrics: dict[str, Any] | None, min_accuracy: float) -> str | None:
    """Why an online round (GRPO, RLOO) may not train against the round's reward model, or None
    (:func:`reward_model_below` with ``policy.reward_min_accuracy``): every step of it would
    chase a coin's opinions."""
    below = reward_model_below(reward_metrics, min_accuracy)
    if below is None:
        return None
    return (
        f"Online RL against this round's reward model would train on noise: {below} "
        "(policy.reward_min_accuracy). Judge more pairs and launch again, or set "
        "policy.reward_min_accuracy to 0 to train anyway."
    )


def round_signals(
    *,
    reward_metrics: dict[str, Any] | None,
    evaluate_metrics: dict[str, Any] | None,
    humans: WinRate,
    snapshot_size: int,
    kl_warn: float,
    min_snapshot: int,
    fluency_ratio: float,
    fluency_sampled_ratio: float,
    fluency_brevity_ratio: float,
    withheld: str | None = None,
) -> RoundSignals:
    """The signals of a round from its reward checkpoint's metrics, its policy checkpoint's
    ``evaluate`` metrics, the human tally of new vs parent and the snapshot size; the thresholds
    are the settings ``PAIRWISE_KL_WARN``, ``PAIRWISE_MIN_SNAPSHOT``, ``PAIRWISE_FLUENCY_RATIO``,
    ``PAIRWISE_FLUENCY_SAMPLED_RATIO`` and ``PAIRWISE_FLUENCY_BREVITY_RATIO``; ``withheld``: why
    the policy step trained without the reward model's pairs (:func:`reward_pairs_withheld`, as
    the runner recorded it on the policy checkpoint), a flag."""
    reward_metrics = reward_metrics or {}
    evaluate_metrics = evaluate_metrics or {}
    signals = RoundSignals(
        reward_win_rate=_number(evaluate_metrics.get("win_rate")),
        kl=_number(evaluate_metrics.get("kl")),
        reward_accuracy=_number(reward_metrics.get("eval_accuracy")),
        reward_pairs=_count(reward_metrics.get("num_eval")),
        humans=humans,
        snapshot_size=snapshot_size,
        kl_direct=_number(evaluate_metrics.get("kl_direct")),
        perplexity_candidate=_number(evaluate_metrics.get("perplexity_base_candidate")),
        perplexity_parent=_number(evaluate_metrics.get("perplexity_base_parent")),
        fluency_candidate=_number(evaluate_metrics.get("fluency_candidate")),
        fluency_parent=_number(evaluate_metrics.get("fluency_parent")),
        length_candidate=_number(evaluate_metrics.get("mean_length_candidate")),
        length_parent=_number(evaluate_metrics.get("mean_length_parent")),
        sampled=_sampled(evaluate_metrics.get("sampled")),
    )
    signals.flags.extend(
        _flags(
            signals,
            kl_warn=kl_warn,
            min_snapshot=min_snapshot,
            fluency_ratio=fluency_ratio,
            fluency_sampled_ratio=fluency_sampled_ratio,
            fluency_brevity_ratio=fluency_brevity_ratio,
        )
    )
    if withheld:
        signals.flags.append(Flag("reward_pairs_withheld", withheld))
    return signals


def _flags(
    signals: RoundSignals,
    *,
    kl_warn: float,
    min_snapshot: int,
    fluency_ratio: float,
    fluency_sampled_ratio: float,
    fluency_brevity_ratio: float,
) -> list[Flag]:
    flags = []
    interval = signals.reward_interval
    if interval is not None and interval[0] <= COIN <= interval[1]:
        flags.append(
            Flag(
                "reward_model_coin",
                f"The reward model is barely better than a coin on {signals.reward_pairs} "
                f"held-out pairs (accuracy {_pct(signals.reward_accuracy or 0.0)}, 95% interval "
                f"{_pct(interval[0])}{DASH}{_pct(interval[1])} includes 50%): its win-rate is not "
                "evidence.",
            )
        )
    if signals.kl is not None and signals.kl < 0:
        flags.append(
            Flag(
                "kl_negative",
                f"The KL estimate to the parent is negative ({signals.kl:.4f}): a KL divergence "
                "cannot be below zero, so the estimate is noise (too few samples); do not read "
                "it as 'close to the parent'.",
            )
        )
    if (
        signals.kl is not None
        and signals.kl_direct is not None
        and abs(signals.kl - signals.kl_direct)
        > max(KL_CHECK_ABS, KL_CHECK_REL * signals.kl_direct)
    ):
        flags.append(
            Flag(
                "kl_estimate_off",
                f"The sampled KL estimate ({signals.kl:.3f}) disagrees with the direct "
                f"computation on the same answers ({signals.kl_direct:.3f}): read the direct "
                "figure.",
            )
        )
    drift = signals.kl_direct if signals.kl_direct is not None else signals.kl
    if drift is not None and drift > kl_warn:
        flags.append(
            Flag(
                "kl_high",
                f"The new policy drifted far from its parent (KL {drift:.3f} > {kl_warn:g}): "
                "a high reward-model win-rate may be the policy exploiting the reward model.",
            )
        )
    collapse = _fluency_collapse(
        signals, fluency_ratio, fluency_sampled_ratio, fluency_brevity_ratio
    )
    if collapse is not None:
        flags.append(Flag("fluency_collapse", collapse))
    new_len, old_len = signals.length_candidate, signals.length_parent
    if new_len is not None and old_len and new_len < LENGTH_RATIO * old_len:
        flags.append(
            Flag(
                "length_collapse",
                f"The new policy's answers collapsed in length: {new_len:.1f} tokens on average "
                f"vs its parent's {old_len:.1f}.",
            )
        )
    if signals.snapshot_size < min_snapshot:
        flags.append(
            Flag(
                "small_snapshot",
                f"The round trained on only {signals.snapshot_size} rows (fewer than "
                f"{min_snapshot}): too few to trust any of its figures.",
            )
        )
    upper = signals.humans.upper
    if (
        upper is not None
        and upper < COIN
        and signals.reward_win_rate is not None
        and signals.reward_win_rate > COIN
    ):
        flags.append(
            Flag(
                "humans_disagree",
                f"Humans and the reward model disagree: the reward model says the new policy wins "
                f"{_pct(signals.reward_win_rate)}, but humans prefer the parent (new policy "
                f"{_pct(signals.humans.rate or 0.0)} of {signals.humans.judged} judged pairs, "
                f"95% interval up to {_pct(upper)}). Believe the humans.",
            )
        )
    return flags


def _collapsed(new: float | None, old: float | None, ratio: float) -> bool:
    return new is not None and old is not None and new > ratio * old


def _fluency_collapse(
    signals: RoundSignals, greedy: float, sampled: float, brevity: float
) -> str | None:
    """Why the new answers read as word salad (the base model's perplexity on them), or None:
    the greedy answers over ``greedy`` times the parent's greedy answers (or the base model's
    own samples, where those read worse), else the sampled ones over ``sampled`` times the base
    model's own samples.

    The greedy yardstick is the worse-reading of the two because the base model's greedy answers
    are its own mode, the most likely text it can write: against a parent that is the base (every
    round 1, and a one-shot round) any change read worse by the greedy ratio alone. Measured on
    concise's one-shot candidate (benchmarks/loop.py, seed 1): greedy 4.50 vs the base's greedy
    2.07 (2.2x, flagged) while its samples read 3.72 vs the base's 2.77 (1.3x).

    A perplexity reads brevity as disfluency too (a short answer's first words are its uncertain
    ones: the built-in base policy's own answers of at most 3 words read 4.55x its overall
    figure). Where the evaluation measured the length-matched ratios (rlhf.training.fluency: the
    perplexity over the base model's own at the same lengths), a rise whose answers read at most
    ``brevity`` times the base's own of their lengths is brevity, not a collapse; and answers
    over ``greedy`` / ``sampled`` times it are one whatever their length."""
    base = next((one for one in signals.sampled if one.label == "base"), None)
    new, old = signals.perplexity_candidate, signals.perplexity_parent
    own = base.perplexity_opponent if base is not None else None
    reference, yardstick = old, "its parent's"
    if own is not None and old is not None and own > old:
        reference, yardstick = own, "the base model's own samples'"
    greedy_reason = _unfluent(
        "The new policy's answers", new, reference, yardstick, "the base model's",
        signals.fluency_candidate, greedy, brevity, tail="",
    )  # fmt: skip
    if greedy_reason is not None or base is None:
        return greedy_reason
    return _unfluent(
        "The new policy's sampled answers", base.perplexity_candidate, base.perplexity_opponent,
        "the base model's own", "its", base.fluency_candidate, sampled, brevity,
        tail=", though its greedy answers may read well",
    )  # fmt: skip


def _unfluent(
    answers: str,
    new: float | None,
    reference: float | None,
    yardstick: str,
    whose: str,
    matched: float | None,
    limit: float,
    brevity: float,
    *,
    tail: str,
) -> str | None:
    """Why ``answers`` read as word salad, or None: the base model's (``whose``) perplexity on
    them, ``new``, over ``limit`` times ``reference`` (the ``yardstick``'s) and not explained by
    brevity (:func:`_brief`), or their length-matched ratio ``matched`` over ``limit``."""
    if _collapsed(new, reference, limit) and not _brief(matched, brevity):
        return (
            f"{answers} read as far less fluent than {yardstick}: {whose} perplexity on them is "
            f"{new:.1f} vs {reference:.1f} (over {limit:g}x){_matched(matched)}{tail}. Read some "
            "samples before trusting any win-rate."
        )
    if matched is not None and matched > limit:
        return (
            f"{answers} read as far less fluent than the base model's own of the same "
            f"lengths{_matched(matched)}, over {limit:g}x{tail}. Read some samples before "
            "trusting any win-rate."
        )
    return None


def _brief(matched: float | None, brevity: float) -> bool:
    """Whether answers whose perplexity rose read like the base model's own of their lengths."""
    return matched is not None and matched <= brevity


def _matched(ratio: float | None) -> str:
    return (
        f"; {ratio:.1f}x the base model's own answers of the same lengths"
        if ratio is not None
        else ""
    )


def _sampled(figures: Any) -> list[SampledWinRate]:
    """The evaluate step's sampled win-rates (base first, then champion), those it measured."""
    if not isinstance(figures, dict):
        return []
    order = {"base": 0, "champion": 1}
    found = []
    for label in sorted(figures, key=lambda name: (order.get(name, 2), name)):
        one = figures[label]
        rate = _number(one.get("win_rate")) if isinstance(one, dict) else None
        if rate is None:
            continue
        found.append(
            SampledWinRate(
                label=str(label),
                checkpoint=_count(one.get("checkpoint")),
                win_rate=rate,
                lower=_number(one.get("lower")),
                upper=_number(one.get("upper")),
                pairs=_count(one.get("pairs")) or 0,
                prompts=_count(one.get("prompts")) or 0,
                samples_per_prompt=_count(one.get("samples_per_prompt")),
                temperature=_number(one.get("temperature")),
                perplexity_candidate=_number(one.get("perplexity_base_candidate")),
                perplexity_opponent=_number(one.get("perplexity_base_opponent")),
                fluency_candidate=_number(one.get("fluency_candidate")),
                fluency_opponent=_number(one.get("fluency_opponent")),
            )
        )
    return found


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value
