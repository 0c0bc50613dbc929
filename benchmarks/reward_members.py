"""How far one reward step's model lands from another's on the same labels, and what averaging
members buys (``reward.members``): the reward step (``rlhf.training.reward.run``, the rounds'
settings) trains ``--members`` reward models from different seeds on the same simulated labels,
keeps each, and writes their weight average; each member and the average are scored against the
rule's noiseless labels on held-out pairs.

The labels: ``--labels`` pairs of two samples of the built-in base policy on the same prompt,
judged by a simulated annotator (``rules.RuleJudge``: the rule plus ``--noise``), ties dropped
as in a round's snapshot. Held-out: pairs on other prompts, the rule's label without noise, rule
ties left out. One line per ``--seeds`` (each its own labels and training seeds).

    .venv/bin/python benchmarks/reward_members.py [--models-dir DIR] [--rule concise] [--labels 200]

Measured (2026-12-06, 2 CPU cores, benchmarks/loop.py's toy models: the 175-step policy and the
MiniLM backbone), ``--rule concise --labels 200 --members 3 --seeds 4`` (8 min): 186 training
rows a seed, 371 held-out pairs.

    seed | rows | members' accuracy | their mean | average model
       0 |  186 | 0.809 0.865 0.863 | 0.845 | 0.863
       1 |  186 | 0.792 0.757 0.739 | 0.763 | 0.779
       2 |  186 | 0.863 0.774 0.682 | 0.773 | 0.771
       3 |  186 | 0.922 0.776 0.857 | 0.852 | 0.836
    members' spread (best - worst) 0.109 on average; the average model scored +0.004 against
    its members' mean

One step's members land 0.11 apart on the same labels (0.68 to 0.92); the average scores like
their mean (within 0.02), never like the worst draw, and not like the best either.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import active_learning  # noqa: E402  (its pool of base-policy pairs and the label rows)

from rlhf.methods import REWARD_DEFAULTS  # noqa: E402
from rlhf.training import reward, rules, scoring  # noqa: E402
from rlhf.training.devices import configure_threads  # noqa: E402
from rlhf.training.specs import RewardSpec  # noqa: E402


def accuracy(directory: str, held_out: list[dict[str, Any]]) -> float:
    model, tokenizer = scoring.load_reward_model(directory)
    value, _ = reward.pairwise_metrics(model, tokenizer, held_out)
    return float(value or 0.0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", help="built-in models (default: the tests' cached ones)")
    parser.add_argument("--rule", default="concise", choices=sorted(rules.RULES))
    parser.add_argument("--labels", type=int, default=200, help="simulated labels per seed")
    parser.add_argument("--noise", type=float, default=0.2, help="annotator label noise")
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--held-out-prompts", type=int, default=400)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--steps", type=int, help="reward steps (default: the rounds')")
    args = parser.parse_args(argv)
    for name in ("labels", "seeds", "held_out_prompts", "max_new_tokens"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if not 2 <= args.members <= 8:
        parser.error("--members must be in [2, 8]")
    if not 0.0 <= args.noise <= 1.0:
        parser.error("--noise must be in [0, 1]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    configure_threads()
    models = active_learning.models_dir(args.models_dir)
    settings = {**REWARD_DEFAULTS, "members": args.members, "keep_members": True}
    if args.steps:
        settings["max_steps"] = args.steps
    with tempfile.TemporaryDirectory(prefix="reward-members-") as scratch:
        work = Path(scratch)
        pool = active_learning.sampled_pairs(
            models / "policy", args.labels, 1000, work, args.max_new_tokens
        )
        held_pairs = active_learning.sampled_pairs(
            models / "policy", args.held_out_prompts, 2000, work, args.max_new_tokens
        )
        held_out = active_learning.truth_rows(held_pairs, args.rule)
        if not pool or not held_out:
            print("no usable pairs: raise --labels / --held-out-prompts", file=sys.stderr)
            return 1
        print(f"rule {args.rule}, {len(pool)} labelled pairs a seed at noise {args.noise}, "
              f"held-out {len(held_out)} pairs, {args.members} members, reward settings "
              f"{ {k: v for k, v in settings.items() if k != 'keep_members'} }")  # fmt: skip
        print("seed | rows | members' accuracy | their mean | average model")
        spreads, gains = [], []
        for seed in range(args.seeds):
            judge = rules.RuleJudge(args.rule, args.noise, seed)
            order = list(range(len(pool)))
            random.Random(seed).shuffle(order)
            rows = [
                {"prompt_id": f"pair-{index}", **row}  # the engine's preference rows name one
                for index in order
                for row in active_learning.training_rows(
                    pool[index],
                    judge.decide(pool[index].prompt, pool[index].a, pool[index].b),
                    "drop",
                )
            ]
            data = work / f"rows-{seed}.jsonl"
            data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
            result = reward.run(
                RewardSpec(
                    base_model=str(models / "reward-backbone"),
                    data=str(data),
                    output_dir=str(work / f"reward-{seed}"),
                    seed=seed,
                    eval_fraction=0.0,
                    **settings,
                )
            )
            members = [accuracy(d, held_out) for d in result.member_dirs]
            average = accuracy(str(result.merged_dir), held_out)
            mean = statistics.mean(members)
            spreads.append(max(members) - min(members))
            gains.append(average - mean)
            cells = " ".join(f"{a:.3f}" for a in members)
            print(f"{seed:>4} | {len(rows):>4} | {cells} | {mean:.3f} | {average:.3f}", flush=True)
    print(f"members' spread (best - worst) {statistics.mean(spreads):.3f} on average; the average "
          f"model scored {statistics.mean(gains):+.3f} against its members' mean")  # fmt: skip
    print(f"wall {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
