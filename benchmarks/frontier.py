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

Measured again (2026-12-07, 2 CPU cores beside a loop, the same models and defaults; 6 min) with
``correct`` (rightness alone) and each rule on the two halves apart (``:unseen``: the families the
built-in policy never saw; ``:seen``: its own), k = 1 / 4 / 16 / 64:

- correct 50.0 / 52.2 / 59.0 / 72.9% (unseen 50.1 / 50.7 / 54.0 / 62.4%, seen 49.7 / 53.6 /
  64.3 / 83.3%); the other rules reproduced the figures above to the decimal on all prompts,
  and are alike on both halves (at k = 64, unseen / seen: polite 80.7 / 80.8%, concise 97.0 /
  97.7%, formatted 90.0 / 95.0%, correct_polite 85.5 / 92.8%).
- knowledge: 1.8% of the base's samples are right (0.4% unseen, 3.2% seen); 63.3% of the prompts
  have at least one right sample of 128 (36.7% unseen, 90.0% seen).

So under ``correct`` the 75% target is beyond best-of-64 (KL up to 3.17 nats): a policy that
said the right answer every time on every prompt where one base sample in 128 is right would
win 0.5 + (0.633 - 0.018) / 2 = 80.8%, a 40-fold concentration on answers the base writes 1.8%
of the time, and the annotators' pairs carry almost nothing to learn it from (two base samples
differ in rightness in about 2 x 0.018 x 0.982 = 3.5% of pairs).

``--preset smollm2 --models-dir var/smol/models --samples 32 --prompts 60`` (2026-12-07, 2 CPU
cores shared with five loops; 36 min): SmolLM2-135M-Instruct on 60 held-out real questions (48
facts, 12 arithmetic), 48 new tokens, k = 1 / 4 / 16:

- factual 49.5 / 62.6 / 70.7% (facts 48.5 / 65.7 / 72.6%, arithmetic 49.9 / 53.5 / 61.4%);
  factual_brief 48.7 / 78.0 / 90.1%.
- knowledge: 34.5% of its samples are right (facts 42.2%, arithmetic 3.9%); 83.3% of the
  questions have a right answer among 32 samples (facts 93.8%, arithmetic 41.7%).

So under ``factual`` 75% is beyond best-of-16 (KL up to 1.84 nats) and at the knowledge bound:
always the right answer wherever one of 32 samples is right would win 0.5 + (0.833 - 0.345) / 2
= 74.4%. The loop's 47-51% under ``factual`` (README) is far below even best-of-4 (62.6%): its
MiniLM reward model hardly tells a right answer from a wrong one, so the headroom there is the
reward model's, not the policy's.
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

from rlhf.training import bootstrap, corpus, generate, presets, questions, rules  # noqa: E402
from rlhf.training.devices import configure_threads  # noqa: E402
from rlhf.training.specs import BootstrapSpec, GenerateSpec  # noqa: E402

RULES = ("correct", "polite", "correct_polite", "concise", "formatted")
SMOLLM2_RULES = ("factual", "factual_brief")
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


def held_out_rows(preset: str, prompts: int) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """The held-out prompt rows, each ``prompt_id`` tagged by its half, and the halves' tags.
    The toy: ``prompts`` from the families the built-in policy never saw (``unseen``) and as
    many from its own (``seen``), as the loop's evaluation mixes them. ``smollm2``: ``prompts``
    real questions of the held-out draw (``questions.prompt_rows``), facts and arithmetic."""
    if preset == "smollm2":
        real = questions.prompt_rows(prompts, seed=0, held_out=True)
        tagged = [{"prompt_id": f"{'arithmetic' if r['family'] == 'arithmetic' else 'facts'}-{i}",
                   "prompt": r["prompt"]} for i, r in enumerate(real)]  # fmt: skip
        return tagged, ("facts", "arithmetic")
    rng = random.Random(7)
    rows: list[dict[str, Any]] = []
    for families, tag in ((corpus.HELD_OUT_FAMILIES, "unseen"), (corpus.TRAIN_FAMILIES, "seen")):
        for index in range(prompts):
            question = corpus.sample_question(rng, families)
            rows.append({"prompt_id": f"{tag}-{index}",
                         "prompt": corpus.prompt_messages(question, with_system=True)})  # fmt: skip
    return rows, ("unseen", "seen")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", help="built-in models (default: the tests' cached ones)")
    parser.add_argument("--preset", choices=("toy", "smollm2"), default="toy",
                        help="smollm2: SmolLM2-135M-Instruct on the real questions (--models-dir "
                        "of bootstrap_models --preset smollm2)")  # fmt: skip
    parser.add_argument("--samples", type=int, default=128, help="per prompt (2 x the largest k)")
    parser.add_argument("--prompts", type=int, default=60, help="per half (toy: unseen / seen)")
    parser.add_argument("--max-new-tokens", type=int, help="32 (toy), 48 (smollm2: a round's)")
    args = parser.parse_args(argv)
    if args.samples < 2 or args.prompts < 1:
        parser.error("--samples must be >= 2 and --prompts >= 1")
    smollm2 = args.preset == "smollm2"
    if smollm2 and not args.models_dir:
        parser.error("--preset smollm2 needs --models-dir (bootstrap_models --preset smollm2)")
    tokens = args.max_new_tokens or (48 if smollm2 else 32)
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
    policy = models / (presets.SMOLLM2 if smollm2 else "policy")
    rows, tags = held_out_rows(args.preset, args.prompts)
    with tempfile.TemporaryDirectory(prefix="frontier-") as scratch:
        source, output = Path(scratch, "prompts.jsonl"), Path(scratch, "samples.jsonl")
        source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        generate.run(GenerateSpec(base_model=str(policy), prompts=str(source),
                                  output=str(output), num_samples=args.samples,
                                  max_new_tokens=tokens, temperature=1.0, seed=3))  # fmt: skip
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
    halves = {"": sorted(texts)}
    for tag in tags:
        halves[f":{tag}"] = [p for p in sorted(texts) if p.startswith(f"{tag}-")]
    right_rule = "factual" if smollm2 else "correct"
    scores = {name: {pid: [rules.get_rule(name)(prompt_of[pid], t) for t in texts[pid]]
                     for pid in texts} for name in (SMOLLM2_RULES if smollm2 else RULES)}  # fmt: skip
    for name, by_prompt in scores.items():
        for suffix, ids in halves.items():
            picked = [by_prompt[pid] for pid in ids]
            cells = [f"{100 * best_of_k_win_rate(picked, k):5.1f}" for k in ks]
            print(f"{name + suffix:<14} | " + " | ".join(cells))
    print(f"knowledge (rule {right_rule}): share of the base's samples that are right / share of "
          f"prompts with at least one right sample of {args.samples}")  # fmt: skip
    for suffix, ids in halves.items():
        right, known = knowledge([[v == 1.0 for v in scores[right_rule][p]] for p in ids])
        print(f"{'all' + suffix:<14} | {100 * right:5.1f} | {100 * known:5.1f}")
    return 0


def knowledge(right: list[list[bool]]) -> tuple[float, float]:
    """(the share of samples that are right, the share of prompts with at least one right
    sample). Under a 0/1 rule a policy right with chance ``p`` on a prompt wins against a base
    right with chance ``q`` ``0.5 + (p - q) / 2`` of the time (ties half), so its win-rate is at
    most ``0.5 + (known - right) / 2`` when it can only say what the base already says sometimes."""
    if not right:
        return math.nan, math.nan
    samples = [flag for prompt in right for flag in prompt]
    return sum(samples) / len(samples), sum(any(prompt) for prompt in right) / len(right)


if __name__ == "__main__":
    sys.exit(main())
