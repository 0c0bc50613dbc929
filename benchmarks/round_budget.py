"""One tuning round on the built-in models, step by step: reward + DPO + evaluate + generate.

Run: ``.venv/bin/python benchmarks/round_budget.py [--reward-backbone minilm|policy]``.
Generation: 200 prompts x 2 samples. Target: <= 60 s total on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=None, help="default: var/bench-<reward backbone>")
    parser.add_argument("--reward-backbone", choices=("minilm", "policy"), default="policy")
    parser.add_argument("--pairs", type=int, default=300)
    args = parser.parse_args()

    from rlhf.training import bootstrap, corpus, dpo, evaluate, generate, reward, rules
    from rlhf.training.specs import DPOSpec, EvaluateSpec, GenerateSpec, RewardSpec

    data_dir = Path(args.data_dir or REPO / "var" / f"bench-{args.reward_backbone}")
    models = bootstrap.ensure_models(data_dir, reward_backbone=args.reward_backbone)
    work = Path(tempfile.mkdtemp(prefix="round-"))
    prefs = work / "prefs.jsonl"
    prefs.write_text(
        "".join(json.dumps(r) + "\n" for r in rules.synthetic_preferences(args.pairs, 0))
    )
    prompts = work / "prompts.jsonl"
    rows = corpus.demo_prompts(200, seed=1)
    prompts.write_text(
        "".join(
            json.dumps({"prompt_id": r["prompt_id"], "prompt": r["prompt"]}) + "\n" for r in rows
        )
    )

    times: dict[str, float] = {}
    start = time.monotonic()
    rm = reward.run(
        RewardSpec(
            base_model=models.reward_backbone_dir, data=str(prefs), output_dir=str(work / "rm")
        )
    )
    times["reward"] = time.monotonic() - start
    start = time.monotonic()
    policy = dpo.run(
        DPOSpec(
            base_model=models.policy_dir,
            data=str(prefs),
            output_dir=str(work / "dpo"),
            num_epochs=1.0,
        )
    )
    times["dpo"] = time.monotonic() - start
    start = time.monotonic()
    ev = evaluate.run(EvaluateSpec(base_model=models.policy_dir, candidate_adapter=policy.checkpoint_dir,
                                   reward_model=str(rm.merged_dir), prompts=str(prompts), max_prompts=100,
                                   rules=("correct_polite",)))  # fmt: skip
    times["evaluate"] = time.monotonic() - start
    start = time.monotonic()
    generate.run(GenerateSpec(base_model=models.policy_dir, adapter=policy.checkpoint_dir, prompts=str(prompts),
                              output=str(work / "samples.jsonl"), num_samples=2))  # fmt: skip
    times["generate"] = time.monotonic() - start

    print(f"reward backbone: {args.reward_backbone}")
    for step, seconds in times.items():
        print(f"{step:9} {seconds:6.1f} s")
    print(f"{'total':9} {sum(times.values()):6.1f} s")
    print(f"reward held-out accuracy {rm.eval_accuracy:.3f}; dpo margin {policy.eval_margin_before:.3f} -> "
          f"{policy.eval_margin_after:.3f}; win rate {ev.win_rate:.3f}; correct_polite win rate "
          f"{ev.rule_win_rates['correct_polite']:.3f}")  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
