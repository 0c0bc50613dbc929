"""Which reward backbone for the smollm2 preset: MiniLM vs the policy's own backbone.

Trains the reward model (the round's reward step: LoRA on the top layers, the scalar head in
``modules_to_save``: ``score`` for SmolLM2, ``classifier`` for MiniLM) on preference pairs over
the real questions (``rules.real_preferences``, rule ``factual_brief``: right first, then brief),
then scores held-out pairs drawn with another seed and prints, per backbone, the held-out
accuracy, the training and scoring wall time and accuracy per second of training.

    .venv/bin/python benchmarks/reward_backbone.py [--pairs 200] [--held-out 200] [--steps 32]

The round's reward config (``rlhf.methods.REWARD_DEFAULTS``) is used for both; ``--steps``
overrides its step budget (reduced sizes on a busy machine).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=200, help="training pairs")
    parser.add_argument("--held-out", type=int, default=200, help="held-out pairs")
    parser.add_argument("--steps", type=int, default=0, help="reward steps (0: the round's)")
    parser.add_argument("--data-dir", default=str(REPO / "var" / "bench-smollm2"))
    parser.add_argument("--backbones", default="minilm,policy")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))

    from rlhf import methods
    from rlhf.training import bootstrap, reward, rules, scoring
    from rlhf.training.devices import configure_threads
    from rlhf.training.specs import BootstrapSpec, RewardSpec

    threads = configure_threads()
    dirs: dict[str, str] = {}
    for backbone in args.backbones.split(","):
        built = bootstrap.run(
            BootstrapSpec(data_dir=args.data_dir, preset="smollm2", reward_backbone=backbone)
        )
        dirs[backbone] = built.reward_backbone_dir
    work = Path(tempfile.mkdtemp(prefix="reward-backbone-"))
    train = work / "train.jsonl"
    train.write_text(
        "".join(json.dumps(r) + "\n" for r in rules.real_preferences(args.pairs, seed=0))
    )
    held_out = rules.real_preferences(args.held_out, seed=1, held_out=True)
    config: dict[str, Any] = dict(methods.REWARD_DEFAULTS)
    if args.steps:
        config["max_steps"] = args.steps
    print(f"{args.pairs} training pairs, {len(held_out)} held-out pairs, config {config}, "
          f"{threads} threads, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"{'backbone':9} {'params':>8} {'train_s':>8} {'cpu_s':>7} {'score_s':>8} "
          f"{'accuracy':>9} {'acc/train_s':>12}")  # fmt: skip
    for name, directory in dirs.items():
        wall, cpu = time.monotonic(), cpu_s()
        result = reward.run(
            RewardSpec(
                base_model=directory,
                data=str(train),
                output_dir=str(work / name),
                device="cpu",
                eval_fraction=0.0,
                **config,
            )
        )
        train_s, train_cpu = time.monotonic() - wall, cpu_s() - cpu
        model, tokenizer = scoring.load_reward_model(str(result.merged_dir))
        wall = time.monotonic()
        prompts = [r["prompt"] for r in held_out]
        chosen = scoring.score(model, tokenizer, prompts, [r["chosen"] for r in held_out])
        rejected = scoring.score(model, tokenizer, prompts, [r["rejected"] for r in held_out])
        score_s = time.monotonic() - wall
        accuracy = sum(
            1.0 if c > r else 0.5 if c == r else 0.0 for c, r in zip(chosen, rejected, strict=True)
        ) / len(held_out)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        print(f"{name:9} {params:7.1f}M {train_s:8.1f} {train_cpu:7.1f} {score_s:8.1f} "
              f"{accuracy:9.3f} {(accuracy - 0.5) / train_s:12.4f}")  # fmt: skip
        del model
    print("acc/train_s: held-out accuracy above a coin (0.5) per second of training")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
