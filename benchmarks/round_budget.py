"""One tuning round on the built-in models, step by step: reward + DPO + evaluate + generate.

Run: ``.venv/bin/python benchmarks/round_budget.py [--reward-backbone minilm|policy] [--config round|spec]``.
``--config round`` (default) runs each step as a round launched from the app does: the engine's
spec defaults plus :mod:`rlhf.methods` overrides (evaluate 200 prompts, generate 200 prompts x 2
samples); ``spec`` the spec defaults with one DPO epoch and 100 evaluation prompts (the earlier figure).
Target: <= 60 s total on 2 CPU cores. Wall and CPU seconds are printed with the load average:
on a shared machine compare CPU seconds, or runs made back to back.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=None, help="default: var/bench-<reward backbone>")
    parser.add_argument("--reward-backbone", choices=("minilm", "policy"), default="policy")
    parser.add_argument("--config", choices=("round", "spec"), default="round")
    parser.add_argument("--pairs", type=int, default=300)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))

    from rlhf import methods
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

    if args.config == "round":
        policy_fields = {f for f in DPOSpec.__dataclass_fields__ if not f.startswith("_")}
        reward_fields = {f for f in RewardSpec.__dataclass_fields__ if not f.startswith("_")}
        reward_cfg: dict[str, Any] = {
            k: v for k, v in methods.REWARD_DEFAULTS.items() if k in reward_fields
        }
        dpo_cfg = {k: v for k, v in methods.POLICY_DEFAULTS["dpo"].items() if k in policy_fields}
        dpo_cfg["reference"] = "base"  # a first round: its parent is the base model
        evaluate_cfg = dict(methods.EVALUATE_DEFAULTS)
        generate_cfg = {
            k: methods.GENERATE_DEFAULTS[k]
            for k in ("num_samples", "temperature", "max_new_tokens")
        }
    else:
        reward_cfg, dpo_cfg = {}, {"num_epochs": 1.0}
        evaluate_cfg, generate_cfg = {"max_prompts": 100}, {"num_samples": 2}

    times: dict[str, tuple[float, float]] = {}

    def timed(name: str, step: Callable[[], Any]) -> Any:
        wall, cpu = time.monotonic(), cpu_s()
        result = step()
        times[name] = (time.monotonic() - wall, cpu_s() - cpu)
        return result

    load_start = os.getloadavg()[0]
    rm = timed("reward", lambda: reward.run(RewardSpec(base_model=models.reward_backbone_dir, data=str(prefs),
                                                       output_dir=str(work / "rm"), **reward_cfg)))  # fmt: skip
    policy = timed("dpo", lambda: dpo.run(DPOSpec(base_model=models.policy_dir, data=str(prefs),
                                                  output_dir=str(work / "dpo"), **dpo_cfg)))  # fmt: skip
    ev = timed("evaluate", lambda: evaluate.run(EvaluateSpec(
        base_model=models.policy_dir, candidate_adapter=policy.checkpoint_dir, reward_model=str(rm.merged_dir),
        prompts=str(prompts), rules=("correct_polite",), **evaluate_cfg)))  # fmt: skip
    timed("generate", lambda: generate.run(GenerateSpec(base_model=models.policy_dir, adapter=policy.checkpoint_dir,
                                                        prompts=str(prompts), output=str(work / "samples.jsonl"),
                                                        **generate_cfg)))  # fmt: skip

    print(f"reward backbone: {args.reward_backbone}; config: {args.config}; {args.pairs} pairs")
    print(
        f"load average {load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end (2 cores: > 2 means shared)"
    )
    print(f"{'step':9} {'wall_s':>7} {'cpu_s':>7}")
    for step, (wall, cpu) in times.items():
        print(f"{step:9} {wall:7.1f} {cpu:7.1f}")
    print(
        f"{'total':9} {sum(w for w, _ in times.values()):7.1f} {sum(c for _, c in times.values()):7.1f}"
    )
    print(f"reward: {rm.steps} steps, held-out accuracy {rm.eval_accuracy:.3f}; dpo: {policy.steps} steps, margin "
          f"{policy.eval_margin_before:.3f} -> {policy.eval_margin_after:.3f}; win rate {ev.win_rate:.3f}; "
          f"correct_polite win rate {ev.rule_win_rates['correct_polite']:.3f}")  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
