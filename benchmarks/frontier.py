"""What the built-in base policy can reach without learning anything new: best-of-k of its own
samples against one of its samples, under each preference rule (ties count half).

A policy that picks the best of k base samples stays within ``log k - (k - 1) / k`` nats of the
base (the best-of-k KL bound), so these win-rates are what a KL-bounded tuning round can hope
for, and how far the loop's figures (``benchmarks/loop.py``) are from it. Held-out prompts, half
from families the built-in policy never saw, half from its own, as the loop's evaluation uses.

    .venv/bin/python benchmarks/frontier.py [--models-dir DIR] [--samples 128] [--prompts 60]

Measured (2026-12-05, 2 CPU cores, the loop's toy models: the 175-step policy), this script with
its defaults: 128 samples on 60 + 60 prompts, 32 new tokens, temperature 1; best-of-k vs a base
sample, all prompts (k = 1 / 4 / 16 / 64; KL bound 0 / 0.64 / 1.84 / 3.17 nats):

- polite 49.1 / 75.1 / 80.8 / 81.0% (a base answer already polite can only be tied: ~81% is
  the ceiling)
- correct_polite 48.9 / 75.1 / 83.4 / 89.2%
- concise 49.9 / 79.3 / 94.2 / 97.5%
- formatted 49.6 / 72.0 / 87.7 / 92.3%

So 75% after three rounds is within what the policy can already write (best-of-4); the loop
reached 72-84% at round 3 with reward-model pairs (``policy.reward_pairs``) at KL 3-14 nats.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rlhf.training import bootstrap, corpus, generate, rules  # noqa: E402
from rlhf.training.devices import configure_threads  # noqa: E402
from rlhf.training.specs import BootstrapSpec, GenerateSpec  # noqa: E402

RULES = ("polite", "correct_polite", "concise", "formatted")
TEST_MODELS_STEPS = 60  # the tests' cached models (var/test-models)


def best_of_k_win_rate(scores: list[list[float]], k: int, draws: int = 50, seed: int = 0) -> float:
    """Per prompt, the first half of its sample scores is the policy's pool and the second half
    the opponents: the share of draws where the best of ``k`` from the pool beats a random
    opponent (ties count half), over all prompts."""
    rng = random.Random(seed)
    wins = total = 0.0
    for prompt_scores in scores:
        half = len(prompt_scores) // 2
        pool, opponents = prompt_scores[:half], prompt_scores[half:]
        if k > len(pool) or not opponents:
            raise ValueError(f"best of {k} needs at least {2 * k} samples a prompt")
        for _ in range(draws):
            best, other = max(rng.sample(pool, k)), rng.choice(opponents)
            wins += 1.0 if best > other else 0.5 if best == other else 0.0
            total += 1
    return wins / total if total else math.nan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", help="built-in models (default: the tests' cached ones)")
    parser.add_argument("--samples", type=int, default=128, help="per prompt (2 x the largest k)")
    parser.add_argument("--prompts", type=int, default=60, help="per half (unseen / seen)")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args(argv)
    if args.samples < 2 or args.prompts < 1:
        parser.error("--samples must be >= 2 and --prompts >= 1")
    configure_threads()
    if args.models_dir:
        models = Path(args.models_dir)
    else:
        data_dir = (
            ROOT / "var" / "test-models" / f"v{bootstrap.RECIPE_VERSION}-steps{TEST_MODELS_STEPS}"
        )
        bootstrap.run(BootstrapSpec(data_dir=str(data_dir), policy_steps=TEST_MODELS_STEPS,
                                    reward_backbone="policy"))  # fmt: skip
        models = data_dir / "models"
    rng = random.Random(7)
    rows: list[dict[str, Any]] = []
    for families, tag in ((corpus.HELD_OUT_FAMILIES, "unseen"), (corpus.TRAIN_FAMILIES, "seen")):
        for index in range(args.prompts):
            question = corpus.sample_question(rng, families)
            rows.append({"prompt_id": f"{tag}-{index}",
                         "prompt": corpus.prompt_messages(question, with_system=True)})  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="frontier-") as scratch:
        source, output = Path(scratch, "prompts.jsonl"), Path(scratch, "samples.jsonl")
        source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        generate.run(GenerateSpec(base_model=str(models / "policy"), prompts=str(source),
                                  output=str(output), num_samples=args.samples,
                                  max_new_tokens=args.max_new_tokens, temperature=1.0, seed=3))  # fmt: skip
        texts: dict[str, list[str]] = {}
        for line in output.read_text(encoding="utf-8").splitlines():
            sample = json.loads(line)
            texts.setdefault(sample["prompt_id"], []).append(sample["text"])
    prompt_of = {r["prompt_id"]: r["prompt"] for r in rows}
    ks = [k for k in (1, 4, 16, 64) if 2 * k <= args.samples]
    print(f"best-of-k of the base policy vs one of its samples, {len(rows)} held-out prompts x "
          f"{args.samples} samples; KL bound (nats): "
          + ", ".join(f"k={k} {math.log(k) - (k - 1) / k:.2f}" for k in ks))  # fmt: skip
    print("rule           | " + " | ".join(f"k={k:<3}" for k in ks))
    for name in RULES:
        judge = rules.get_rule(name)
        scores = [[judge(prompt_of[pid], t) for t in ts] for pid, ts in sorted(texts.items())]
        cells = [f"{100 * best_of_k_win_rate(scores, k):5.1f}" for k in ks]
        print(f"{name:<14} | " + " | ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
