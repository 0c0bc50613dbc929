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
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_ROUND_S = 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--annotators", type=int, default=3)
    parser.add_argument("--noise", type=float, default=0.2)
    parser.add_argument("--labels", type=int, default=200, help="simulated judgments per round")
    parser.add_argument("--rule", default="correct_polite")
    parser.add_argument("--prompts", type=int, default=160)
    parser.add_argument("--held-out", type=int, default=40)
    parser.add_argument("--eval-samples", type=int, default=8, help="per held-out prompt and side")
    parser.add_argument("--method", default="dpo")
    parser.add_argument("--config", default="{}", help="JSON overrides of the round config")
    parser.add_argument("--reward-backbone", choices=("minilm", "policy"), default="minilm")
    parser.add_argument("--data-dir", default=str(ROOT / "var" / "bench-loop"))
    args = parser.parse_args()

    data_dir = Path(args.data_dir).resolve() / args.reward_backbone
    data_dir.mkdir(parents=True, exist_ok=True)
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

    call_command("migrate", verbosity=0)
    started = time.monotonic()
    call_command("bootstrap_models", reward_backbone=args.reward_backbone)
    print(f"models ready in {time.monotonic() - started:.1f}s")
    load_before = os.getloadavg()[0]
    print(
        f"run_loop: {args.rounds} rounds, {args.annotators} simulated annotators, "
        f"rule {args.rule}, noise {args.noise:.0%}, {args.prompts}+{args.held_out} prompts, "
        f"reward backbone {args.reward_backbone}; {os.cpu_count()} CPUs, load {load_before:.2f}"
    )

    from rlhf.demo import demo_project_create
    from rlhf.loop import TABLE_HEADER, LoopSettings, loop_run, table_row

    project = demo_project_create(
        name="bench",
        train_prompts=args.prompts,
        held_out_prompts=args.held_out,
        admin="",
        annotators=(),
    ).project
    print(TABLE_HEADER)
    from rlhf.supervision import sigterm_stops_children

    with sigterm_stops_children():
        figures = loop_run(
            project,
            LoopSettings(
                rounds=args.rounds,
                method=args.method,
                config=json.loads(args.config),
                annotators=args.annotators,
                rule=args.rule,
                noise=args.noise,
                limit=args.labels,
                eval_prompts=args.held_out,
                eval_samples=args.eval_samples,
            ),
            on_round=lambda row: print(table_row(row), flush=True),
        )
    load_after = os.getloadavg()[0]
    rates = [f.rule_win_rate_vs_base for f in figures]
    rising = (
        len(rates) == args.rounds
        and None not in rates
        and all(b > a for a, b in itertools.pairwise(rates))  # type: ignore[operator]
    )
    slowest = max((f.round_s for f in figures), default=0.0)
    print(
        f"slowest round (reward + {args.method} + evaluate + generate): {slowest:.1f}s "
        f"(target <= {TARGET_ROUND_S:.0f}s: {'met' if slowest <= TARGET_ROUND_S else 'missed'}); "
        f"rule win-rate vs base rises every round: {'yes' if rising else 'no'}; "
        f"load average {load_before:.2f} -> {load_after:.2f}"
    )
    return 0 if all(f.status == "succeeded" for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
