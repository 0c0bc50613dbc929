"""The closed loop, unattended: ``run_loop`` for 3 rounds with 3 simulated annotators at 20% noise.

Builds a fresh SQLite database in ``var/bench-loop/`` (the built-in models there are kept between
runs; the first run bootstraps them), creates a demo project of 160 training + 40 held-out
prompts (200 prompts: each round generates for all of them), then runs the loop in-process and
prints the per-round table of ``run_loop``:

- labels used (judgments in the snapshot) and preference rows,
- the reward model's held-out accuracy and its win-rate of the new policy vs its parent,
- the new policy's win-rate vs the base model under the annotators' rule on held-out prompts,
- the wall time of every step.

Targets on 2 CPU cores: one round (reward + DPO + evaluate + generate for 200 prompts) <= 60 s;
the rule win-rate vs base rises every round. The load average is printed: on a shared machine
other work slows the wall clock.

    .venv/bin/python benchmarks/loop.py [--rounds 3] [--reward-backbone minilm|policy]

Every rule but ``verbose`` at once, each also against one-shot DPO on the same number of labels
(one round on ``rounds x labels`` judgments of the base model's pairs), in parallel processes
that share one set of built-in models, then a summary table:

    .venv/bin/python benchmarks/loop.py --rules all --one-shot

``--preset smollm2``: the same loop on SmolLM2-135M-Instruct (``bootstrap_models --preset
smollm2``), its demo project of real questions with known answers, and rules a real model can be
judged on: ``factual`` (the known answer, arithmetic included) and ``factual_brief`` (the default:
right first, then brief). The round target is then 10 minutes on 2 CPU cores.

After the last round the annotators judge ``--decide`` more comparisons of its batch (200 by
default: one round's labels, which train nothing) and the promotion gate decides its candidate,
so the champion the loop reports is one humans chose (``--decide 0``: left undecided).

Columns: the rule win-rate of the new policy vs the base (sampled answers on held-out prompts,
95% Wilson interval), ``RM=rule`` the reward model's agreement with the rule's own (noiseless)
labels on those same answer pairs, ``KL base`` the exact token-level KL to the base model on the
new policy's answers, ``ppl`` the base model's perplexity on the new policy's answers / on its
own (fluency: word salad shows as a jump) and, in brackets, the new answers' perplexity over the
base model's own answers of the same lengths (``rlhf.training.fluency``: brevity raises a
perplexity, not this ratio).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_ROUND_S = 60.0
TARGET_ROUND_S_SMOLLM2 = 600.0
sys.path.insert(0, str(ROOT))
from rlhf.training.rules import REAL_QUESTION_RULES as SMOLLM2_RULES  # noqa: E402 (no torch, no Django)
from rlhf.training.specs import MODEL_PRESETS  # noqa: E402 (no torch, no Django)

SMOLLM2_DEFAULT_RULE = "factual_brief"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; exits 2 with the reason on a rule the preset cannot be judged by."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--annotators", type=int, default=3)
    parser.add_argument("--noise", type=float, default=0.2)
    parser.add_argument("--labels", type=int, default=200, help="simulated judgments per round")
    parser.add_argument(
        "--decide",
        type=int,
        default=None,
        help="judgments after the last round, on its batch, before the gate decides its "
        "candidate (they train nothing; default: --labels; 0: left undecided)",
    )
    parser.add_argument(
        "--rule", default=None, help="correct_polite (toy), factual_brief (smollm2) by default"
    )
    parser.add_argument(
        "--preset",
        choices=MODEL_PRESETS,
        default="toy",
        help="toy: the built-in tiny model; smollm2: SmolLM2-135M-Instruct on real questions",
    )
    parser.add_argument("--prompts", type=int, default=160)
    parser.add_argument("--held-out", type=int, default=40)
    parser.add_argument("--eval-samples", type=int, default=8, help="per held-out prompt and side")
    parser.add_argument("--method", default="dpo")
    parser.add_argument(
        "--seed", type=int, default=0, help="the annotators' and the rounds' seed (config seed)"
    )
    parser.add_argument("--config", default="{}", help="JSON overrides of the round config")
    parser.add_argument("--reward-backbone", choices=("minilm", "policy"), default="minilm")
    parser.add_argument("--data-dir", default=str(ROOT / "var" / "bench-loop"))
    parser.add_argument(
        "--rules", default="", help="comma-separated rules run in parallel ('all': all but verbose)"
    )
    parser.add_argument(
        "--one-shot", action="store_true", help="also one round on rounds x labels judgments"
    )
    parser.add_argument(
        "--variants",
        default="",
        help='with --rules: JSON {"name": config overrides, ...}, each run under every rule',
    )
    parser.add_argument(
        "--policy-steps", type=int, default=0, help="toy: bootstrap steps (0: the recipe's default)"
    )
    parser.add_argument(
        "--examples",
        type=int,
        default=0,
        help="after the loop: greedy answers of the base and the last round on held-out prompts "
        "(accuracy with intervals, and this many examples side by side)",
    )
    parser.add_argument(
        "--examples-only",
        action="store_true",
        help="print the examples of the loop already run in --data-dir, without running it again",
    )
    parser.add_argument("--models-from", default="", help=argparse.SUPPRESS)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--dtype", default="auto", help="auto | float32 | bfloat16 | float16")
    args = parser.parse_args(argv)
    smollm2 = args.preset == "smollm2"
    if args.rule is None:
        args.rule = SMOLLM2_DEFAULT_RULE if smollm2 else "correct_polite"
    if args.decide is None:
        args.decide = args.labels
    if args.decide < 0:
        parser.error("--decide must be >= 0")
    if smollm2:
        asked = [args.rule] + ([] if args.rules in ("", "all") else args.rules.split(","))
        wrong = [rule for rule in asked if rule not in SMOLLM2_RULES]
        if wrong:
            parser.error(
                f"--preset smollm2 is judged on real questions: rules {', '.join(SMOLLM2_RULES)} "
                f"(not {', '.join(wrong)}: those judge the toy's templated answers)"
            )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rules:
        return run_parallel(args)

    smollm2 = args.preset == "smollm2"
    data_dir = Path(args.data_dir).resolve() / (
        f"smollm2-{args.reward_backbone}" if smollm2 else args.reward_backbone
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    if args.models_from and not (data_dir / "models").exists():
        (data_dir / "models").symlink_to(Path(args.models_from).resolve())
    if not args.examples_only:
        for stale in ("bench.sqlite3", "bench.sqlite3-wal", "bench.sqlite3-shm"):
            (data_dir / stale).unlink(missing_ok=True)
        for stale in ("checkpoints", "runs"):
            shutil.rmtree(data_dir / stale, ignore_errors=True)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PAIRWISE_DATA_DIR": str(data_dir),
            "DATABASE_URL": f"sqlite:///{data_dir / 'bench.sqlite3'}",
            "PAIRWISE_HTTPS": "0",
            # The loop drives the steps itself (round_drive): no worker, no task rows.
            "TASKS_BACKEND": "django_tasks.backends.immediate.ImmediateBackend",
        }
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    if args.examples_only:
        from rlhf.models import Round

        last = Round.objects.filter(checkpoint__isnull=False).order_by("-number").first()
        if last is None:
            print(f"no round with a checkpoint in {data_dir}", file=sys.stderr)
            return 2
        print_examples(last, args.rule, args.held_out, max(1, args.examples or 8))
        return 0
    call_command("migrate", verbosity=0)
    started = time.monotonic()
    call_command(
        "bootstrap_models",
        reward_backbone=args.reward_backbone,
        preset=args.preset,
        policy_steps=args.policy_steps or None,
    )
    print(f"models ready in {time.monotonic() - started:.1f}s")
    load_before = os.getloadavg()[0]
    print(
        f"run_loop: {args.rounds} rounds, {args.annotators} simulated annotators, "
        f"rule {args.rule}, noise {args.noise:.0%}, {args.prompts}+{args.held_out} prompts, "
        f"reward backbone {args.reward_backbone}, preset {args.preset}; {os.cpu_count()} CPUs, "
        f"load {load_before:.2f}"
    )

    from rlhf.demo import demo_project_create
    from rlhf.loop import TABLE_HEADER, loop_run, table_row

    project = demo_project_create(
        name="bench",
        train_prompts=args.prompts,
        held_out_prompts=args.held_out,
        admin="",
        annotators=(),
        model=args.preset,
    ).project
    from rlhf.models import ModelSpec

    ModelSpec.objects.update(device=args.device, dtype=args.dtype)
    print(TABLE_HEADER)
    from rlhf.supervision import sigterm_stops_children

    settings = loop_settings(args)
    with sigterm_stops_children():
        figures = loop_run(
            project, settings, on_round=lambda row: print(table_row(row), flush=True)
        )
    load_after = os.getloadavg()[0]
    if args.examples and figures and figures[-1].status == "succeeded":
        from rlhf.models import Round

        print_examples(Round.objects.get(project=project, number=figures[-1].number),
                       args.rule, args.held_out, args.examples)  # fmt: skip
    print("FIGURES " + json.dumps([dataclasses.asdict(f) for f in figures]), flush=True)
    from rlhf.loop import champion_after, champion_line, rule_trend

    rising, clear = rule_trend(figures, settings.rounds)
    print(f"CHAMPION {champion_after(figures)}", flush=True)  # for --rules' summary
    print(champion_line(figures))
    slowest = max((f.round_s for f in figures), default=0.0)
    target = TARGET_ROUND_S_SMOLLM2 if smollm2 else TARGET_ROUND_S
    print(
        f"slowest round (reward + {args.method} + evaluate + generate): {slowest:.1f}s "
        f"(target <= {target:.0f}s: {'met' if slowest <= target else 'missed'}); "
        f"rule win-rate vs base rises every round: {'yes' if rising else 'no'} (last round "
        f"beyond the first's 95% interval: {'yes' if clear else 'no'}); "
        f"load average {load_before:.2f} -> {load_after:.2f}"
    )
    return 0 if all(f.status == "succeeded" for f in figures) else 1


def loop_settings(args: argparse.Namespace) -> Any:
    """The ``rlhf.loop.LoopSettings`` of the command line (``--seed`` seeds the annotators and,
    unless ``--config`` sets its own, the rounds)."""
    from rlhf.loop import LoopSettings

    settings = LoopSettings(
        rounds=args.rounds,
        method=args.method,
        config={"seed": args.seed, **json.loads(args.config)},
        annotators=args.annotators,
        rule=args.rule,
        noise=args.noise,
        limit=args.labels,
        eval_prompts=args.held_out,
        eval_samples=args.eval_samples,
        decide=args.decide,
        seed=args.seed,
    )
    if args.one_shot:  # the same labels, all on the base model's pairs, one round
        settings.limit, settings.rounds = args.labels * args.rounds, 1
    return settings


def print_examples(round_: Any, rule: str, max_prompts: int, shown: int) -> None:
    """Greedy answers of the base model and of ``round_``'s checkpoint on the held-out prompts:
    the share each gets right (the rule's correctness part, 95% Wilson interval), the rule
    win-rate between them (ties count half), and ``shown`` prompts side by side."""
    from django.conf import settings

    from labeling.models import Prompt, Split
    from rlhf import runner, selectors
    from rlhf.leaderboard import wilson_interval
    from rlhf.training import rules
    from rlhf.training.evaluate import win_rate

    prompts = list(
        Prompt.objects.filter(project=round_.project, split=Split.TEST).order_by("id")[:max_prompts]
    )
    workdir = Path(settings.PAIRWISE_DATA_DIR) / "runs" / f"loop-examples-{round_.pk}"
    workdir.mkdir(parents=True, exist_ok=True)
    runner.write_jsonl(workdir / "prompts.jsonl", selectors.prompt_rows(prompts))
    spec = round_.checkpoint.model_spec
    max_new = int(round_.config.get("generate", {}).get("max_new_tokens", 48))
    answers: dict[str, list[str]] = {}
    sides = (
        ("base", "base", None),
        ("last", f"round {round_.number}", round_.checkpoint.adapter_path),
    )
    for name, side, adapter in sides:
        output = workdir / f"{name}.jsonl"
        runner.engine_call(
            "generate",
            {"base_model": spec.base_model_path, "adapter": adapter, "prompts": str(workdir / "prompts.jsonl"),
             "output": str(output), "num_samples": 1, "temperature": 0.0, "max_new_tokens": max_new,
             **spec.engine_fields()},
            workdir=workdir, name=f"examples-{name}",
        )  # fmt: skip
        by_prompt = {row["prompt_id"]: row["text"] for row in runner.read_jsonl(output)}
        answers[side] = [by_prompt[str(p.pk)] for p in prompts]
    right = rules.factual if rule in SMOLLM2_RULES else rules.correct
    (base_side, base_texts), (new_side, new_texts) = answers.items()
    messages = [p.messages for p in prompts]
    print(f"\ngreedy answers on {len(prompts)} held-out prompts, base vs {new_side}:")
    for side, texts in answers.items():
        hits = int(sum(right(m, t) for m, t in zip(messages, texts, strict=True)))
        low, high = wilson_interval(hits, len(texts))
        words = sum(len(t.split()) for t in texts) / max(1, len(texts))
        print(f"  {side:<8} right {hits}/{len(texts)} = {100 * hits / len(texts):.1f}% "
              f"({100 * low:.0f}-{100 * high:.0f}), {words:.1f} words on average")  # fmt: skip
    # Ties count half, with the tolerance the engine's rule evaluation uses.
    rate, _ = win_rate(messages, new_texts, base_texts, rules.get_rule(rule), tie_tolerance=0.0)
    low, high = wilson_interval(rate * len(prompts), len(prompts))
    print(f"  rule {rule}: {new_side} vs base {100 * rate:.1f}% "
          f"({100 * low:.0f}-{100 * high:.0f}), ties half")  # fmt: skip
    for m, a, b in list(zip(messages, base_texts, new_texts, strict=True))[:shown]:
        question = rules.last_user_message(m)
        print(f"\n  Q: {question}\n    {base_side}: {a.strip()!r}\n    {new_side}: {b.strip()!r}")


def run_parallel(args: argparse.Namespace) -> int:
    """One process per rule (and per one-shot baseline), sharing one set of built-in models;
    prints each process's table, then the summary."""
    import subprocess

    from rlhf.training.rules import RULES

    if args.rules == "all":
        rules = (
            list(SMOLLM2_RULES)
            if args.preset == "smollm2"
            else [r for r in RULES if r != "verbose" and r not in SMOLLM2_RULES]
        )
    else:
        rules = args.rules.split(",")
    unknown = sorted(set(rules) - set(RULES))
    if unknown:
        print(f"unknown rule(s) {unknown}; known: {sorted(RULES)}", file=sys.stderr)
        return 2
    base = Path(args.data_dir).resolve()
    models = (
        base
        / "shared"
        / (f"smollm2-{args.reward_backbone}" if args.preset == "smollm2" else args.reward_backbone)
    )
    models.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PAIRWISE_DATA_DIR": str(models), "DJANGO_SETTINGS_MODULE": "config.settings",
           "DATABASE_URL": f"sqlite:///{models / 'bootstrap.sqlite3'}", "PAIRWISE_HTTPS": "0"}  # fmt: skip
    started = time.monotonic()
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [sys.executable, "manage.py", "bootstrap_models", "--reward-backbone", args.reward_backbone,
         "--device", args.device, "--preset", args.preset,
         *(["--policy-steps", str(args.policy_steps)] if args.policy_steps else [])],
        cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    print(f"models ready in {time.monotonic() - started:.1f}s")
    variants = json.loads(args.variants) if args.variants else {"default": json.loads(args.config)}
    # (label, rule, config, one-shot): every variant's loop; the one-shot baseline of the first
    jobs = [
        (f"{rule}:{name}", rule, config, False)
        for name, config in variants.items()
        for rule in rules
    ]
    first_name, first_config = next(iter(variants.items()))
    if args.one_shot:
        jobs += [(f"{rule}:{first_name}:one-shot", rule, first_config, True) for rule in rules]
    threads = max(1, (os.cpu_count() or 1) // len(jobs))
    passed = [f"--{k}={v}" for k, v in (("rounds", args.rounds), ("annotators", args.annotators),
              ("noise", args.noise), ("labels", args.labels), ("decide", args.decide), ("prompts", args.prompts),
              ("held-out", args.held_out), ("eval-samples", args.eval_samples),
              ("method", args.method), ("seed", args.seed), ("reward-backbone", args.reward_backbone), ("preset", args.preset),
              ("device", args.device), ("dtype", args.dtype), ("policy-steps", args.policy_steps))]  # fmt: skip
    procs = []
    for label, rule, config, one_shot in jobs:
        name = label.replace(":", "-")
        log = open(base / f"{name}.log", "w")  # noqa: SIM115 (closed below)
        command = [sys.executable, str(Path(__file__)), *passed, "--rule", rule,
                   f"--config={json.dumps(config)}", "--data-dir", str(base / name),
                   "--models-from", str(models / "models")]  # fmt: skip
        if one_shot:
            command.append("--one-shot")
        child_env = {**os.environ, "PAIRWISE_TORCH_THREADS": str(threads)}
        procs.append((label, name, log, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=child_env)))  # fmt: skip
    print(f"{len(jobs)} processes, {threads} torch threads each; logs in {base}/", flush=True)
    summary: dict[str, list[dict[str, Any]]] = {}
    champions: dict[str, int] = {}  # rlhf.loop.champion_after of each process (0: the base)
    for label, name, log, proc in procs:
        proc.wait()
        log.close()
        text = (base / f"{name}.log").read_text()
        print(f"\n== {label} (exit {proc.returncode})")
        markers = ("FIGURES ", "CHAMPION ")
        print("\n".join(line for line in text.splitlines() if not line.startswith(markers)))
        lines = [line for line in text.splitlines() if line.startswith("FIGURES ")]
        summary[label] = json.loads(lines[-1][len("FIGURES ") :]) if lines else []
        found = [line for line in text.splitlines() if line.startswith("CHAMPION ")]
        if found:
            champions[label] = int(found[-1].split()[1])
    print(f"\nvariants: {json.dumps(variants)}")
    print_summary([label for label, *_ in jobs], summary, champions, rounds=args.rounds)
    return 0 if all(proc.returncode == 0 for *_, proc in procs) else 1


def print_summary(
    labels: list[str],
    summary: dict[str, list[dict[str, Any]]],
    champions: dict[str, int],
    rounds: int,
) -> None:
    from rlhf.leaderboard import wilson_interval  # rlhf.loop's, without Django

    def cell(row: dict[str, Any] | None) -> str:
        rate, pairs = (row or {}).get("rule_win_rate_vs_base"), (row or {}).get("rule_pairs")
        if rate is None or not pairs:
            return "—"
        low, high = wilson_interval(rate * pairs, pairs)
        return f"{100 * rate:.1f} ({100 * low:.0f}-{100 * high:.0f})"

    def number(value: Any, scale: float = 1.0, digits: int = 1) -> str:
        return "—" if value is None else f"{scale * value:.{digits}f}"

    print(
        "\nrule win-rate vs base, % (95% interval) per round; after the last round: reward-model "
        "held-out accuracy (RM acc), its agreement with the rule (RM=rule), KL to the base, "
        "the base model's perplexity on the new answers / on its own (ppl; matched: over its own "
        "answers of the same lengths), whether the gate "
        "holds it back whatever humans say (gate), the human win-rate of its candidate vs the "
        "champion of the time (rN: round N's candidate, r0 the base), judged after the loop "
        "(--decide; those judgments train nothing), and the champion the loop ends with"
    )
    head = " ".join(f"{'round ' + str(i + 1):>16}" for i in range(rounds))
    print(
        f"{'rule:variant':<28} {head} {'RM acc':>7} {'RM=rule':>8} {'KL':>6} {'ppl (matched)':>19} "
        f"{'gate':>8} {'humans vs':>17} {'champion':>8}"
    )
    for label in labels:
        rows = summary.get(label, [])
        cells = " ".join(f"{cell(rows[i] if i < len(rows) else None):>16}" for i in range(rounds))
        last = rows[-1] if rows else {}
        ppl = last.get("perplexity")
        fluency = "—" if ppl is None else f"{ppl:.1f}/{number(last.get('perplexity_base'))}"
        if ppl is not None and last.get("fluency") is not None:
            fluency += f" ({last['fluency']:.2f}x)"
        gate = "—" if not rows else "held" if last.get("blocked") else "open"
        humans = "—"
        if last.get("human_win_rate") is not None:
            humans = number(last["human_win_rate"], 100)
            if last.get("human_interval"):
                low, high = last["human_interval"]
                humans += f" ({100 * low:.0f}-{100 * high:.0f})"
            humans += f" r{last.get('human_vs', 0)}"  # vs that round's candidate (r0: the base)
        champion = champions.get(label)
        delivered = "—" if champion is None else f"round {champion}" if champion else "base"
        print(
            f"{label:<28} {cells} {number(last.get('reward_accuracy'), 100):>7} "
            f"{number(last.get('reward_rule_agreement'), 100):>8} "
            f"{number(last.get('kl_to_base'), digits=2):>6} {fluency:>19} {gate:>8} "
            f"{humans:>17} {delivered:>8}"
        )


if __name__ == "__main__":
    sys.exit(main())
