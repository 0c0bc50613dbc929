"""One tuning round on the built-in models, step by step: reward + DPO + evaluate + generate.

Run: ``.venv/bin/python benchmarks/round_budget.py [--reward-backbone minilm|policy] [--config round|spec]``.
``--preset smollm2``: the same round on SmolLM2-135M-Instruct (real questions, rule
``factual_brief``, the size-aware defaults of ``rlhf.methods.size_defaults``); target <= 10 minutes
on 2 CPU cores; generation's tokens/s is printed. ``--prompts`` shrinks the prompt set (reduced
runs on a busy machine; the target is for 200). Measured once at reduced size on the shared 2-core
machine (load 4-13, 1 torch thread): ``--prompts 40 --pairs 80`` took 318 CPU-s / 595 s wall:
reward 23 CPU-s (MiniLM, 32 steps), DPO 147 (10 steps at 4 x 2, 192 tokens, with its before /
after held-out pass), evaluate 115 (40 prompts), generate 33 (80 samples, 56 tokens/s). DPO
dominates and grows with the snapshot (one pass, up to 48 steps): at 200 prompts x 2 and 300
pairs expect ~500 CPU-s of DPO, ~160 of generation, ~140 of evaluation (capped at 50 prompts).
Next lever: stop DPO's backward at the top layers (``lora_top_layers``, as the reward step does).
Full size, measured on the idle 2-core machine (2026-12-04): 490 s wall / 938 CPU-s, under the
600 s target: reward 15 s (32 steps, held-out accuracy 0.76), DPO 308 s (38 steps at 4 x 2, 63%
of the round), evaluate 69 s, generate 98 s at 110 tokens/s.
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
sys.path.insert(0, str(REPO))
from rlhf.training.specs import MODEL_PRESETS  # noqa: E402 (no torch, no Django)


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int | None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=None, help="default: var/bench-<reward backbone>")
    parser.add_argument(
        "--reward-backbone",
        choices=("minilm", "policy"),
        default=None,
        help="policy (toy), minilm (smollm2)",
    )
    parser.add_argument("--config", choices=("round", "spec"), default="round")
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--preset", choices=MODEL_PRESETS, default="toy")
    parser.add_argument("--prompts", type=int, default=200, help="evaluate / generate prompts")
    args = parser.parse_args()
    if args.preset == "smollm2":
        return smollm2_round(args)
    args.reward_backbone = args.reward_backbone or "policy"

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
    # a first round (the base model is the reference); reward-model pairs use this round's
    # reward model on the prompts, as rlhf.runner hands them over
    dpo_fields = methods.first_round_policy_fields(dpo_cfg, prompts=str(prompts),
                                                   reward_model=str(rm.merged_dir))  # fmt: skip
    policy = timed("dpo", lambda: dpo.run(DPOSpec(base_model=models.policy_dir, data=str(prefs),
                                                  output_dir=str(work / "dpo"), **dpo_fields)))  # fmt: skip
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
    print(f"reward: {rm.steps} steps, held-out accuracy {rm.eval_accuracy:.3f}; dpo: {policy.steps} steps ({policy.num_reward_pairs} reward-model pairs), margin "
          f"{policy.eval_margin_before:.3f} -> {policy.eval_margin_after:.3f}; win rate {ev.win_rate:.3f}; "
          f"correct_polite win rate {ev.rule_win_rates['correct_polite']:.3f}")  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    return 0


def smollm2_round(args: argparse.Namespace) -> int:
    """reward + DPO + evaluate + generate on the smollm2 preset, with the round's resolved config."""
    import io

    from rlhf import methods
    from rlhf.model_size import parameter_count
    from rlhf.training import bootstrap, dpo, evaluate, generate, questions, reward, rules
    from rlhf.training.devices import configure_threads
    from rlhf.training.progress import Events
    from rlhf.training.specs import BootstrapSpec, DPOSpec, EvaluateSpec, GenerateSpec, RewardSpec

    data_dir = Path(args.data_dir or REPO / "var" / "bench-smollm2")
    backbone = args.reward_backbone or "minilm"  # the preset's backbone (presets.py)
    models = bootstrap.run(
        BootstrapSpec(data_dir=str(data_dir), preset="smollm2", reward_backbone=backbone)
    )
    params = parameter_count(models.policy_dir)
    config = methods.resolve_config("dpo", model_params=params, snapshot_size=args.pairs)
    work = Path(tempfile.mkdtemp(prefix="round-smollm2-"))
    prefs = work / "prefs.jsonl"
    prefs.write_text("".join(json.dumps(r) + "\n" for r in rules.real_preferences(args.pairs, 0)))
    prompts = work / "prompts.jsonl"
    rows = questions.prompt_rows(args.prompts, seed=1)
    prompts.write_text("".join(json.dumps({"prompt_id": r["prompt_id"], "prompt": r["prompt"]}) + "\n"
                               for r in rows))  # fmt: skip
    generate_cfg = {
        k: config["generate"][k] for k in ("num_samples", "temperature", "max_new_tokens")
    }
    evaluate_cfg = {
        **config["evaluate"],
        "max_prompts": min(args.prompts, config["evaluate"]["max_prompts"]),
    }
    threads = configure_threads()
    times: dict[str, tuple[float, float]] = {}
    streams: dict[str, io.StringIO] = {}

    def timed(name: str, step: Any) -> Any:
        streams[name] = io.StringIO()
        wall, cpu = time.monotonic(), cpu_s()
        result = step(Events(streams[name]))
        times[name] = (time.monotonic() - wall, cpu_s() - cpu)
        print(f"{name} done: {times[name][0]:.1f} s wall, {times[name][1]:.1f} s CPU", flush=True)
        return result

    load_start = os.getloadavg()[0]
    rm = timed("reward", lambda ev: reward.run(RewardSpec(base_model=models.reward_backbone_dir, data=str(prefs),
                                                          output_dir=str(work / "rm"), **config["reward"]), ev))  # fmt: skip
    dpo_fields = methods.first_round_policy_fields(config["policy"], prompts=str(prompts),
                                                   reward_model=str(rm.merged_dir))  # fmt: skip
    policy = timed("dpo", lambda ev: dpo.run(DPOSpec(base_model=models.policy_dir, data=str(prefs),
                                                     output_dir=str(work / "dpo"), **dpo_fields), ev))  # fmt: skip
    ev_result = timed("evaluate", lambda ev: evaluate.run(EvaluateSpec(
        base_model=models.policy_dir, candidate_adapter=policy.checkpoint_dir, reward_model=str(rm.merged_dir),
        prompts=str(prompts), rules=("factual", "factual_brief"), **evaluate_cfg), ev))  # fmt: skip
    timed("generate", lambda ev: generate.run(GenerateSpec(base_model=models.policy_dir, adapter=policy.checkpoint_dir,
                                                           prompts=str(prompts), output=str(work / "samples.jsonl"),
                                                           **generate_cfg), ev))  # fmt: skip
    total = sum(w for w, _ in times.values())
    print(f"preset smollm2 ({params} parameters), reward backbone {backbone}; {args.pairs} pairs, "
          f"{args.prompts} prompts x {generate_cfg['num_samples']} samples; {threads} torch threads")  # fmt: skip
    print(
        f"load average {load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end (2 cores: > 2 means shared)"
    )
    print(f"resolved policy config: {json.dumps(config['policy'], sort_keys=True)}")
    print(f"{'step':9} {'wall_s':>7} {'cpu_s':>7}  tokens/s")
    for step, (wall, cpu) in times.items():
        rates = [e["metrics"].get("tokens_per_s") for e in map(json.loads, streams[step].getvalue().splitlines())
                 if e.get("event") == "progress" and "tokens_per_s" in e.get("metrics", {})]  # fmt: skip
        print(f"{step:9} {wall:7.1f} {cpu:7.1f}  {rates[-1] if rates else '-'}")
    print(f"{'total':9} {total:7.1f} {sum(c for _, c in times.values()):7.1f}  (target <= 600 s)")
    print(f"reward: {rm.steps} steps, held-out accuracy {rm.eval_accuracy}; dpo: {policy.steps} steps ({policy.num_reward_pairs} reward-model pairs), margin "
          f"{policy.eval_margin_before} -> {policy.eval_margin_after}; reward-model win rate {ev_result.win_rate:.3f}; "
          f"factual win rate {ev_result.rule_win_rates.get('factual')}")  # fmt: skip
    sample = (work / "samples.jsonl").read_text().splitlines()[:3]
    for line in sample:
        print("  sample:", json.loads(line)["text"][:100])
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
