"""A new checkpoint against its parent (or the base) on held-out prompts, then sampled against
the base and the champion.

First both generate one response per prompt (greedy; or ``num_samples`` sampled ones, paired by
index); the reward model scores them. Reported: reward-model win rate (ties count half), mean
rewards, a KL estimate (mean over the candidate's responses of log p_candidate - log p_parent)
next to its direct computation on the same responses (the exact next-token KL summed over each
response's tokens, never negative: when the two disagree the estimate is noise), fluency (the base
model's perplexity on each side's responses: word salad shows as a jump; and, once the base model's
own sampled answers are read, each side's length-matched fluency ratio, ``fluency.py``), mean
response lengths in tokens, win rates under any rules named in the spec and the reward model's
agreement with them.

Then the sampled evaluation: ``sampled_per_prompt`` samples per prompt at ``sample_temperature``
of the candidate and of each opponent in ``opponents`` (the runner names the base and the
champion; an opponent with the parent's adapter reuses the parent, and sampling that matches the
first part reuses its samples), scored by the reward model: a win-rate with a 95% interval per
opponent (``rlhf.training.stats.sampled_win_rate``). :func:`win_rate` works with any scoring
function (library use).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from rlhf.training import data, generate, rules, scoring, stats
from rlhf.training import fluency as lengthfit
from rlhf.training.devices import configure_threads, model_dtype, resolve_device
from rlhf.training.progress import Events
from rlhf.training.specs import EvaluateResult, EvaluateSpec

Messages = Sequence[dict[str, str]]
Scorer = Callable[[Messages, str], float]


def win_rate(
    prompts: Sequence[Messages],
    candidate: Sequence[str],
    parent: Sequence[str],
    scorer: Scorer,
    *,
    tie_tolerance: float = 1e-4,
) -> tuple[float, float]:
    """(win rate with ties as half, tie rate) of candidate over parent under ``scorer``."""
    a = [scorer(p, c) for p, c in zip(prompts, candidate, strict=True)]
    b = [scorer(p, c) for p, c in zip(prompts, parent, strict=True)]
    return _win_rate(a, b, tie_tolerance)


def _win_rate(a: Sequence[float], b: Sequence[float], tolerance: float) -> tuple[float, float]:
    if not a:
        return 0.0, 0.0
    ties = sum(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))
    wins = sum(x - y > tolerance for x, y in zip(a, b, strict=True))
    return (wins + 0.5 * ties) / len(a), ties / len(a)


def _agreement(
    reward_a: Sequence[float],
    reward_b: Sequence[float],
    rule_a: Sequence[float],
    rule_b: Sequence[float],
) -> float | None:
    """How often the reward model prefers the side a rule prefers, over the pairs the rule
    decides (its noiseless labels): the reward model's accuracy on the policies' own answers.
    None when the rule decides no pair."""
    decided = [
        (ra - rb > 0) == (ua - ub > 0)
        for ra, rb, ua, ub in zip(reward_a, reward_b, rule_a, rule_b, strict=True)
        if ua != ub
    ]
    return sum(decided) / len(decided) if decided else None


def _ratio(
    read: tuple[list[float], list[int]], curve: lengthfit.LengthCurve | None
) -> float | None:
    """A set of answers' length-matched fluency ratio; None without a curve (or tokens)."""
    if curve is None:
        return None
    value = lengthfit.ratio(*read, curve)
    return None if math.isnan(value) else value


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def run(spec: EvaluateSpec, events: Events | None = None) -> EvaluateResult:
    from transformers import AutoModelForCausalLM

    events = events or Events()
    start = time.monotonic()
    configure_threads()
    device = resolve_device(spec.device)
    rows = data.load_prompts(spec.prompts)[: spec.max_prompts]
    prompts = [r["prompt"] for r in rows]
    tokenizer = generate.load_tokenizer(spec.base_model, spec.chat_template)
    base = AutoModelForCausalLM.from_pretrained(
        spec.base_model, dtype=model_dtype(spec.dtype, device)
    )
    # Both sides as plain merged models: generation without the LoRA detour at every token.
    candidate_model = (
        generate.with_adapter(copy.deepcopy(base), spec.candidate_adapter).to(device).eval()
    )
    # The base model judges fluency (its perplexity on both sides' answers) whatever the parent.
    base_copy: Any = copy.deepcopy(base) if spec.parent_adapter else None
    parent_model = generate.with_adapter(base, spec.parent_adapter).to(device).eval()
    base_model = parent_model if base_copy is None else base_copy.to(device).eval()
    settings: dict[str, Any] = {"max_new_tokens": spec.max_new_tokens, "temperature": spec.temperature,
                                "seed": spec.seed, "batch_size": spec.batch_size,
                                "num_samples": spec.num_samples}  # fmt: skip

    def responses(model: Any) -> list[tuple[str, int]]:
        events.check()
        generated = generate.sample(model, tokenizer, prompts, **settings)
        return [one for samples in generated for one in samples]

    events.log(f"evaluate: {len(rows)} prompts x {spec.num_samples} samples")
    # One entry per (prompt, sample): the candidate's sample i meets the parent's sample i.
    paired = [p for p in prompts for _ in range(spec.num_samples)]
    candidate = responses(candidate_model)
    events.progress(1, 4)
    parent = responses(parent_model)
    events.progress(2, 4)
    candidate_texts = [t for t, _ in candidate]
    parent_texts = [t for t, _ in parent]

    logp_candidate = scoring.completion_logps(candidate_model, tokenizer, paired, candidate_texts)
    logp_parent = scoring.completion_logps(parent_model, tokenizer, paired, candidate_texts)
    kl = _mean([c - p for c, p in zip(logp_candidate, logp_parent, strict=True)])
    kl_direct = _mean(
        scoring.completion_token_kl(
            candidate_model, parent_model, tokenizer, paired, candidate_texts
        )
    )
    # the base model's (log-probability, token count) on each answer: fluency, as perplexity and,
    # once its own sampled answers are read below, as the length-matched ratio (fluency.py)
    greedy_read = {
        side: scoring.completion_logps_and_counts(base_model, tokenizer, paired, texts)
        for side, texts in (("candidate", candidate_texts), ("parent", parent_texts))
    }
    fluency = {side: scoring.perplexity(*read) for side, read in greedy_read.items()}
    # the yardstick of the length-matched ratios: the base model's own sampled answers, here
    # when the parent is the base and sampled (a one-shot or the loop's evaluation against the
    # base), else those of the sampled evaluation below
    length_curve = (
        lengthfit.fit(*greedy_read["parent"])
        if not spec.parent_adapter and spec.temperature > 0
        else None
    )
    events.progress(3, 4)
    events.check()

    reward_model, reward_tokenizer = scoring.load_reward_model(
        spec.reward_model, device, model_dtype(spec.dtype, device)
    )
    reward_candidate = scoring.score(reward_model, reward_tokenizer, paired, candidate_texts)
    reward_parent = scoring.score(reward_model, reward_tokenizer, paired, parent_texts)
    rate, tie_rate = _win_rate(reward_candidate, reward_parent, spec.tie_tolerance)
    rule_rates, rule_agreement = {}, {}
    for name in sorted(spec.rules):
        rule = rules.get_rule(name)
        rule_candidate = [rule(p, t) for p, t in zip(paired, candidate_texts, strict=True)]
        rule_parent = [rule(p, t) for p, t in zip(paired, parent_texts, strict=True)]
        rule_rates[name] = _win_rate(rule_candidate, rule_parent, 0.0)[0]
        rule_agreement[name] = _agreement(
            reward_candidate, reward_parent, rule_candidate, rule_parent
        )
    events.progress(4, 4)
    sampled: dict[str, dict[str, Any]] = {}
    if spec.sampled_per_prompt > 0 and spec.opponents:
        n = spec.sampled_per_prompt
        sampling = {**settings, "temperature": spec.sample_temperature, "num_samples": n}
        same_sampling = spec.temperature == spec.sample_temperature and spec.num_samples == n
        cache: dict[str, list[str]] = {}  # adapter ("" = base) -> its texts, prompt-major

        def texts(model: Any) -> list[str]:
            events.check()
            generated = generate.sample(model, tokenizer, prompts, **sampling)
            return [text for samples in generated for text, _ in samples]

        mine = candidate_texts if same_sampling else texts(candidate_model)
        parent_key = spec.parent_adapter or ""
        # Fluency of the answers as they are sampled (served to annotators): greedy answers can
        # stay fluent while the samples turn to word salad. Once per answer set: the candidate's
        # (None), then each opponent adapter's (the base is the champion before any promotion).
        read: dict[str | None, tuple[list[float], list[int]]] = {}
        if same_sampling:  # the texts (and figures) of the first evaluation, on the same prompts
            cache[parent_key] = parent_texts
            read.update({None: greedy_read["candidate"], parent_key: greedy_read["parent"]})
        paired_n = [p for p in prompts for _ in range(n)]
        mine_scores = scoring.score(reward_model, reward_tokenizer, paired_n, mine)

        def base_read(key: str | None, texts: list[str]) -> tuple[list[float], list[int]]:
            if key not in read:
                read[key] = scoring.completion_logps_and_counts(
                    base_model, tokenizer, paired_n, texts
                )
            return read[key]

        def base_perplexity(key: str | None, texts: list[str]) -> float:
            return scoring.perplexity(*base_read(key, texts))

        mine_perplexity = base_perplexity(None, mine)
        events.log(f"evaluate: sampled, {len(rows)} prompts x {n} vs {sorted(spec.opponents)}")
        for label, adapter in sorted(spec.opponents.items()):
            if adapter not in cache:
                if adapter == parent_key:
                    cache[adapter] = texts(parent_model)
                else:
                    fresh = AutoModelForCausalLM.from_pretrained(
                        spec.base_model, dtype=model_dtype(spec.dtype, device)
                    )
                    model = generate.with_adapter(fresh, adapter or None).to(device).eval()
                    cache[adapter] = texts(model)
                    del model, fresh
            theirs = scoring.score(reward_model, reward_tokenizer, paired_n, cache[adapter])
            figures = stats.sampled_win_rate(
                [mine_scores[i : i + n] for i in range(0, len(mine_scores), n)],
                [theirs[i : i + n] for i in range(0, len(theirs), n)],
                tie_tolerance=spec.tie_tolerance,
            )
            sampled[label] = {
                **figures,
                "mean_reward_candidate": _mean(mine_scores),
                "mean_reward_opponent": _mean(theirs),
                "samples_per_prompt": n,
                "temperature": spec.sample_temperature,
                "perplexity_base_candidate": mine_perplexity,
                "perplexity_base_opponent": base_perplexity(adapter, cache[adapter]),
            }
        if "" in read:  # the base model's own sampled answers: the length curve (fluency.py)
            length_curve = length_curve or lengthfit.fit(*read[""])
            for label, adapter in spec.opponents.items():
                sampled[label]["fluency_candidate"] = _ratio(read[None], length_curve)
                sampled[label]["fluency_opponent"] = _ratio(read[adapter], length_curve)
    return EvaluateResult(
        sampled=sampled,
        num_prompts=len(rows),
        num_samples=spec.num_samples,
        win_rate=rate,
        tie_rate=tie_rate,
        mean_reward_candidate=_mean(reward_candidate),
        mean_reward_parent=_mean(reward_parent),
        kl=kl,
        kl_direct=kl_direct,
        perplexity_base_candidate=fluency["candidate"],
        perplexity_base_parent=fluency["parent"],
        fluency_candidate=_ratio(greedy_read["candidate"], length_curve),
        fluency_parent=_ratio(greedy_read["parent"], length_curve),
        length_curve=dataclasses.asdict(length_curve) if length_curve is not None else None,
        mean_length_candidate=_mean([float(n) for _, n in candidate]),
        mean_length_parent=_mean([float(n) for _, n in parent]),
        rule_win_rates=rule_rates,
        reward_rule_agreement=rule_agreement,
        wall_s=round(time.monotonic() - start, 3),
    )
