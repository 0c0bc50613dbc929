"""The unattended loop: simulated judging → round → judging → promotion → round → …

``run_loop`` (the command) and ``benchmarks/loop.py`` call :func:`loop_run`. Each round records
labels used, the reward model's held-out accuracy, the new policy's win-rate under the
annotators' rule against the base checkpoint on held-out prompts (the engine's ``evaluate``
with ``rules``), and the wall time of every step.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from labeling.models import Project, Prompt, Split
from rlhf import runner, selectors, services
from rlhf.leaderboard import WinRate, wilson_interval
from rlhf.models import Round, RoundStatus, resolve_data_path
from rlhf.simulate import annotators_ensure, judge_in_process, judge_over_http

ROUND_STEPS = ("reward", "policy", "evaluate", "generate")


@dataclass
class RoundFigures:
    number: int
    method: str
    status: str
    judged: int  # simulated judgments made before the round
    labels: int  # judgments in the round's snapshot
    preferences: int  # preference rows they made
    reward_accuracy: float | None
    rm_win_rate_vs_parent: float | None
    rule_win_rate_vs_base: float | None
    human_win_rate_prev: float | None  # the previous round's checkpoint vs its champion
    promoted_prev: bool
    # From the same sampled evaluation vs the base as the rule win-rate:
    rule_pairs: int = 0  # pairs judged by the rule (held-out prompts x samples)
    reward_rule_agreement: float | None = None  # the reward model vs the rule's own labels
    kl_to_base: float | None = None  # exact token-level KL of the new policy to the base
    perplexity: float | None = None  # the base model's perplexity on the new policy's answers
    perplexity_base: float | None = None  # ... on the base model's own answers
    # the new answers' perplexity over the base model's own at the same lengths (1: as fluent)
    fluency: float | None = None
    # The flags that hold this round's candidate back at the promotion gate whatever humans say
    # (``selectors.promotion_blockers``: its answers' fluency collapsed), by code.
    blocked: tuple[str, ...] = ()
    # The last round only, with ``LoopSettings.decide``: its candidate against the champion it was
    # made against, judged after the loop (``decided``: the judgments that took; they train
    # nothing), the human win-rate with its 95% interval, and whether the gate promoted it.
    decided: int = 0
    human_win_rate: float | None = None
    human_pairs: int = 0
    human_interval: tuple[float, float] | None = None
    human_vs: int = 0  # the round whose candidate was champion then (0: the base model)
    promoted: bool = False
    wall_s: dict[str, float] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)
    error: str = ""

    @property
    def round_s(self) -> float:
        return sum(self.wall_s.get(s, 0.0) for s in ROUND_STEPS)

    @property
    def round_cpu_s(self) -> float:
        return sum(self.cpu_s.get(s, 0.0) for s in ROUND_STEPS)


@dataclass
class LoopSettings:
    rounds: int = 3
    method: str = "dpo"
    config: dict[str, Any] = field(default_factory=dict)
    annotators: int = 3
    rule: str = "correct_polite"
    noise: float = 0.2
    limit: int | None = None  # simulated judgments per round
    url: str = ""  # judge over HTTP at this base URL; empty: in-process
    promote: str = "auto"  # auto (the promotion gate) | always (forced) | never
    eval_prompts: int = 100
    # The rule win-rate samples the policies as the round's generate step does (its temperature),
    # eval_samples answers per held-out prompt and side: greedy decoding judged one answer per
    # prompt and saturated once the policy's top answer was polite, while its samples still moved.
    eval_samples: int = 8
    # Judgments spent after the last round on its batch (its new-vs-champion pairs are served
    # first), then the promotion gate decides its candidate: without them the last candidate is
    # never judged, and what the loop delivers is at best the round before. 0: left undecided.
    decide: int = 0
    seed: int = 0


def _judge(
    project: Project,
    accounts: list[tuple[Any, str]],
    opts: LoopSettings,
    seed: int,
    limit: int | None,
) -> int:
    if opts.url:
        stats = judge_over_http(
            base_url=opts.url,
            project_id=project.pk,
            tokens=[t for _, t in accounts],
            rule=opts.rule,
            noise=opts.noise,
            limit=limit,
            seed=seed,
        )
    else:
        stats = judge_in_process(
            project=project,
            annotators=[u for u, _ in accounts],
            rule=opts.rule,
            noise=opts.noise,
            limit=limit,
            seed=seed,
        )
    return stats.judged


def _decide_promotion(project: Project, promote: str) -> tuple[WinRate | None, bool]:
    """The latest round's candidate through the gate, as a launch with ``promote_pending`` puts
    it (``auto``; ``always``: forced past it, recorded and logged; ``never``: only its human
    win-rate against the champion)."""
    pending = selectors.pending_candidate(project)
    if pending is None:
        return None, False
    if promote == "never":
        return pending.win_rate, False
    decision = services.pending_candidate_promote(
        project=project,
        force=promote == "always",
        promoted_by=f"run_loop --promote {promote}",
        pending=pending,
    )
    return pending.win_rate, bool(decision and decision["promoted"])


def rule_evaluation_vs_base(
    round_: Round, rule: str, max_prompts: int, samples: int = 8
) -> dict[str, Any] | None:
    """The round's new policy against the base model on held-out prompts: the engine's
    ``evaluate`` result, with the win-rate and the reward model's agreement under ``rule``.

    Both sample ``samples`` answers per prompt at the round's generation temperature (the same
    seed every round, so the base model's answers are the same each time); sample i of the new
    policy meets sample i of the base.
    """
    if round_.checkpoint is None or round_.reward_checkpoint is None:
        return None
    prompts = list(
        Prompt.objects.filter(project=round_.project, split=Split.TEST).order_by("id")[:max_prompts]
    )
    if not prompts:
        return None
    workdir = Path(settings.PAIRWISE_DATA_DIR) / "runs" / f"loop-eval-{round_.pk}"
    workdir.mkdir(parents=True, exist_ok=True)
    runner.write_jsonl(workdir / "prompts.jsonl", selectors.prompt_rows(prompts))
    model_spec = round_.checkpoint.model_spec
    merged = round_.reward_checkpoint.metrics.get("merged_dir", "")
    temperature = float(round_.config.get("generate", {}).get("temperature", 1.0))
    sampled = samples > 1 and temperature > 0  # else one greedy answer per prompt
    result = runner.engine_call(
        "evaluate",
        {
            "base_model": model_spec.base_model_path,
            "candidate_adapter": round_.checkpoint.adapter_path,
            "parent_adapter": None,
            "reward_model": resolve_data_path(merged),
            "prompts": str(workdir / "prompts.jsonl"),
            "max_prompts": max_prompts,
            "max_new_tokens": int(round_.config.get("evaluate", {}).get("max_new_tokens", 32)),
            "temperature": temperature if sampled else 0.0,
            "num_samples": samples if sampled else 1,
            "rules": [rule],
            **model_spec.engine_fields(),
        },
        workdir=workdir,
        name="rule-eval",
    )
    return result


def _figure(result: dict[str, Any] | None, key: str, rule: str | None = None) -> float | None:
    value = (result or {}).get(key)
    if rule is not None:
        value = (value or {}).get(rule)
    return float(value) if isinstance(value, int | float) else None


def loop_run(
    project: Project,
    opts: LoopSettings,
    *,
    on_round: Callable[[RoundFigures], None] = lambda f: None,
) -> list[RoundFigures]:
    """Run ``opts.rounds`` rounds end to end; returns (and reports) each round's figures."""
    accounts = annotators_ensure(project, opts.annotators, prefix="loop")
    figures: list[RoundFigures] = []
    for index in range(opts.rounds):
        started = time.monotonic()
        judged = _judge(project, accounts, opts, seed=opts.seed + 1000 * index, limit=opts.limit)
        judge_s = time.monotonic() - started
        human_prev, promoted = _decide_promotion(project, opts.promote)
        round_ = services.round_launch(project=project, method=opts.method, config=opts.config)
        round_ = runner.round_drive(round_.pk)
        round_ = Round.objects.select_related(
            "checkpoint__model_spec", "reward_checkpoint", "project"
        ).get(pk=round_.pk)
        walls = {"judge": judge_s}
        cpus: dict[str, float] = {}
        for run in selectors.round_runs(round_):
            if run.wall_s is not None:
                walls[run.step] = run.wall_s
            if run.cpu_s is not None:
                cpus[run.step] = run.cpu_s
        evaluation = None
        if round_.status == RoundStatus.SUCCEEDED:
            started = time.monotonic()
            evaluation = rule_evaluation_vs_base(
                round_, opts.rule, opts.eval_prompts, opts.eval_samples
            )
            walls["rule-eval"] = time.monotonic() - started
        checkpoint = round_.checkpoint
        reward = round_.reward_checkpoint
        row = RoundFigures(
            number=round_.number,
            method=round_.method,
            status=round_.status,
            judged=judged,
            labels=len(round_.snapshot_judgment_ids),
            preferences=round_.snapshot_size,
            reward_accuracy=(reward.metrics.get("eval_accuracy") if reward else None),
            rm_win_rate_vs_parent=(
                checkpoint.metrics.get("evaluate", {}).get("win_rate") if checkpoint else None
            ),
            rule_win_rate_vs_base=_figure(evaluation, "rule_win_rates", opts.rule),
            human_win_rate_prev=None if human_prev is None else human_prev.rate,
            promoted_prev=promoted,
            rule_pairs=int(_figure(evaluation, "num_prompts") or 0)
            * int(_figure(evaluation, "num_samples") or 0),
            reward_rule_agreement=_figure(evaluation, "reward_rule_agreement", opts.rule),
            kl_to_base=_figure(evaluation, "kl_direct"),
            perplexity=_figure(evaluation, "perplexity_base_candidate"),
            perplexity_base=_figure(evaluation, "perplexity_base_parent"),
            fluency=_figure(evaluation, "fluency_candidate"),
            wall_s=walls,
            cpu_s=cpus,
            error=round_.error,
            blocked=(
                tuple(flag.code for flag in selectors.promotion_blockers(checkpoint))
                if checkpoint is not None and round_.status == RoundStatus.SUCCEEDED
                else ()
            ),
        )
        figures.append(row)
        on_round(row)
        if round_.status != RoundStatus.SUCCEEDED:
            break
    last = figures[-1] if figures else None
    if opts.decide > 0 and last is not None and last.status == RoundStatus.SUCCEEDED:
        last.decided = _judge(
            project, accounts, opts, seed=opts.seed + 1000 * opts.rounds, limit=opts.decide
        )
        last.human_vs = champion_after(figures)
        rate, last.promoted = _decide_promotion(project, opts.promote)
        if rate is not None:
            last.human_win_rate, last.human_pairs = rate.rate, rate.judged
            last.human_interval = rate.interval
    return figures


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


TABLE_HEADER = (
    f"{'round':>5} {'method':<6} {'judged':>6} {'labels':>6} {'prefs':>5} {'RM acc':>7} "
    f"{'RM win':>7} {'rule win vs base (95%)':>22} {'RM=rule':>7} {'KL base':>7} "
    f"{'ppl (length-matched)':>20} {'human prev':>10} "
    f"{'judge':>6} {'reward':>6} {'policy':>6} {'eval':>6} {'gen':>6} {'round':>6} {'CPU':>6}"
)


def rule_interval(row: RoundFigures) -> tuple[float, float] | None:
    """The 95% Wilson interval of the rule win-rate vs base (ties count half)."""
    if row.rule_win_rate_vs_base is None or not row.rule_pairs:
        return None
    return wilson_interval(row.rule_win_rate_vs_base * row.rule_pairs, row.rule_pairs)


def rule_trend(figures: list[RoundFigures], rounds: int) -> tuple[bool, bool]:
    """Whether the rule win-rate vs base rose every round (all ``rounds`` measured), and whether
    the gain is beyond noise: the last round's 95% lower bound above the first round's upper
    bound (a flat loop, 49.7 -> 49.8 -> 50.0%, "rises" by the first test but not the second)."""
    rates = [f.rule_win_rate_vs_base for f in figures]
    known = [rate for rate in rates if rate is not None]
    if len(rates) != rounds or len(known) != len(rates):
        return False, False
    rising = all(b > a for a, b in itertools.pairwise(known))
    first, last = rule_interval(figures[0]), rule_interval(figures[-1])
    clear = len(figures) > 1 and first is not None and last is not None and last[0] > first[1]
    return rising, clear


def champion_after(figures: list[RoundFigures]) -> int:
    """The round whose candidate is the champion when the loop ends (0: the base model).

    A round's candidate is promoted (or not) when the next round starts, after its pairs are
    judged, so the last round's candidate is decided only when the loop judges its batch after
    the last round (``LoopSettings.decide``): what the loop delivers is the champion, which can
    be an earlier round than the last row of the table."""
    champion = 0
    for earlier, later in itertools.pairwise(figures):
        if later.promoted_prev:
            champion = earlier.number
    if figures and figures[-1].promoted:  # decided after the loop (``LoopSettings.decide``)
        champion = figures[-1].number
    return champion


def human_cell(row: RoundFigures) -> str:
    """The last candidate's human win-rate vs the champion of the time, judged after the loop:
    "66.0% (59-72) of 190 vs round 2", or "—" when it was not judged."""
    if row.human_win_rate is None:
        return "—"
    cell = _pct(row.human_win_rate)
    if row.human_interval is not None:
        low, high = row.human_interval
        cell += f" ({100 * low:.0f}-{100 * high:.0f})"
    opponent = f"round {row.human_vs}" if row.human_vs else "the base model"
    return f"{cell} of {row.human_pairs} vs {opponent}"


def champion_line(figures: list[RoundFigures]) -> str:
    """What the loop delivers, in words: its champion, and the last candidate's state."""
    champion = champion_after(figures)
    line = f"champion after the loop: {f'round {champion}' if champion else 'the base model'}"
    last = figures[-1] if figures else None
    if last is not None and last.status == RoundStatus.SUCCEEDED and last.decided:
        verdict = "promoted" if last.promoted else "not promoted"
        line += (
            f"; round {last.number}'s candidate, judged after the loop ({last.decided} "
            f"judgments): humans prefer it in {human_cell(last)}, {verdict}"
        )
        if last.blocked and not last.promoted:
            line += f" (the gate holds it back: {', '.join(last.blocked)})"
    elif last is not None and last.status == RoundStatus.SUCCEEDED and last.number != champion:
        line += f"; round {last.number}'s candidate is not decided yet (its pairs are not judged)"
        if last.blocked:
            line += f", and the gate holds it back whatever humans say ({', '.join(last.blocked)})"
    return line


def table_row(row: RoundFigures) -> str:
    walls = row.wall_s

    def sec(name: str) -> str:
        return f"{walls[name]:.1f}" if name in walls else "—"

    human = _pct(row.human_win_rate_prev) + ("*" if row.promoted_prev else "")
    interval = rule_interval(row)
    rule = _pct(row.rule_win_rate_vs_base) + (
        "" if interval is None else f" ({100 * interval[0]:.0f}-{100 * interval[1]:.0f})"
    )
    kl = "—" if row.kl_to_base is None else f"{row.kl_to_base:.2f}"
    ppl = (
        "—"
        if row.perplexity is None or row.perplexity_base is None
        else f"{row.perplexity:.1f}/{row.perplexity_base:.1f}"
        + ("" if row.fluency is None else f" ({row.fluency:.2f}x)")
    )
    line = (
        f"{row.number:>5} {row.method:<6} {row.judged:>6} {row.labels:>6} {row.preferences:>5} "
        f"{_pct(row.reward_accuracy):>7} {_pct(row.rm_win_rate_vs_parent):>7} "
        f"{rule:>22} {_pct(row.reward_rule_agreement):>7} {kl:>7} {ppl:>20} {human:>10} "
        f"{sec('judge'):>6} {sec('reward'):>6} {sec('policy'):>6} {sec('evaluate'):>6} "
        f"{sec('generate'):>6} {row.round_s:>6.1f} {row.round_cpu_s:>6.1f}"
    )
    if row.blocked:
        line += f"  held back at the gate: {', '.join(row.blocked)}"
    if row.status != RoundStatus.SUCCEEDED:
        line += f"  {row.status}: {row.error}"
    return line
