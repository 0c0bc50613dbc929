"""Overhead of our CLI over a bare TRL script: the same reward and DPO runs, timed end to end.

Run: ``.venv/bin/python benchmarks/training_overhead.py [--data-dir var/bench] [--repeats 3]``.
Both paths start a fresh Python process (imports included) on the same rows, model and trainer
settings. Runs alternate (ours, bare, bare, ours, ...) so that load swings on a shared machine hit
both sides alike; the figure is the median of the per-pair ratios. Target: ratio <= 1.10.

Two variants:

- ``training``: our step with ``eval_fraction`` 0 (and no merged reward model): the same work as
  the bare script, so the ratio is our wrapper's overhead;
- ``with-eval``: our step as a round runs it (held-out split, before/after metrics, merged reward
  model) against the bare script training on the same training rows: what the extras cost.

``--threads N`` pins torch's thread count on both sides (``OMP_NUM_THREADS``); by default each
side picks its own (ours: the idle cores, bare TRL: every core), as they would when run for real.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

# Trainer settings shared by both sides (ours: rlhf.training.devices.trainer_device_kwargs).
BARE_COMMON = """
import sys, json
from datasets import Dataset
from peft import LoraConfig
base, data, out = sys.argv[1:4]
rows = [json.loads(line) for line in open(data)]
def pairs(margin):
    return Dataset.from_list([{"prompt": r["prompt"], "chosen": [{"role": "assistant", "content": r["chosen"]}],
        "rejected": [{"role": "assistant", "content": r["rejected"]}], **({"margin": r.get("margin", 0.0)} if margin else {})}
        for r in rows])
settings = dict(output_dir=out + "-scratch", num_train_epochs=1, max_length=256, use_cpu=True, bf16=False,
    activation_checkpointing=False, report_to="none", save_strategy="no", disable_tqdm=True, seed=0)
"""

BARE_REWARD = (
    BARE_COMMON
    + """
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from trl import RewardConfig, RewardTrainer
tok = AutoTokenizer.from_pretrained(base)
model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
model.config.pad_token_id = tok.pad_token_id
args = RewardConfig(per_device_train_batch_size=16, learning_rate=1e-3, **settings)
trainer = RewardTrainer(model=model, args=args, train_dataset=pairs(True), processing_class=tok,
    peft_config=LoraConfig(task_type="SEQ_CLS", r=16, lora_alpha=32, target_modules="all-linear", modules_to_save=["score"]))
trainer.train()
trainer.model.save_pretrained(out)
"""
)

BARE_DPO = (
    BARE_COMMON
    + """
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig, DPOTrainer
tok = AutoTokenizer.from_pretrained(base)
model = AutoModelForCausalLM.from_pretrained(base)
args = DPOConfig(per_device_train_batch_size=8, learning_rate=5e-4, **settings)
trainer = DPOTrainer(model=model, args=args, train_dataset=pairs(False), processing_class=tok,
    peft_config=LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, target_modules="all-linear"))
trainer.train()
trainer.model.save_pretrained(out)
"""
)


def timed(command: list[str], threads: int | None) -> float:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(REPO),
        "TOKENIZERS_PARALLELISM": "false",
    }
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    start = time.monotonic()
    subprocess.run(
        command, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.monotonic() - start


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=str(REPO / "var" / "bench"))
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--steps", default="reward,dpo")
    parser.add_argument("--variants", default="training,with-eval")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))

    from rlhf.training import bootstrap, data, rules

    models = bootstrap.ensure_models(args.data_dir, reward_backbone="policy")
    work = Path(tempfile.mkdtemp(prefix="overhead-"))
    rows = rules.synthetic_preferences(args.pairs, 0, clear_cut=True)
    all_rows = write_jsonl(work / "prefs.jsonl", rows)
    train_rows = write_jsonl(work / "prefs-train.jsonl", data.split(rows, 0.2)[0])
    base = {"reward": models.reward_backbone_dir, "dpo": models.policy_dir}
    ours_spec = {
        "reward": {"base_model": base["reward"], "batch_size": 16, "learning_rate": 1e-3},
        "dpo": {"base_model": base["dpo"], "batch_size": 8, "learning_rate": 5e-4},
    }
    variants = {  # name: (our spec additions, the bare script's data)
        "training": ({"eval_fraction": 0.0, "merge": False}, all_rows),
        "with-eval": ({"eval_fraction": 0.2, "merge": True}, train_rows),
    }
    for step in ("reward", "dpo"):
        (work / f"bare_{step}.py").write_text(BARE_REWARD if step == "reward" else BARE_DPO)

    print(
        f"threads: {args.threads or 'each side its default'}; load average at start {os.getloadavg()[0]:.1f}"
    )
    print(f"{'step':7} {'variant':10} {'ours_s':>7} {'bare_s':>7} {'ratio':>6}  per-pair ratios")
    for step in args.steps.split(","):
        for variant in args.variants.split(","):
            extra, bare_data = variants[variant]
            if step == "dpo":
                extra = {k: v for k, v in extra.items() if k != "merge"}
            ours_times: list[float] = []
            bare_times: list[float] = []
            for repeat in range(args.repeats):
                spec_path = work / f"{step}-{variant}-{repeat}.json"
                spec = {**ours_spec[step], **extra, "data": str(all_rows), "num_epochs": 1.0, "seed": 0,
                        "output_dir": str(work / f"{step}-{variant}-{repeat}-ours")}  # fmt: skip
                spec_path.write_text(json.dumps(spec))
                ours = [sys.executable, "-m", "rlhf.training", step, "--spec", str(spec_path)]
                bare = [sys.executable, str(work / f"bare_{step}.py"), base[step], str(bare_data),
                        str(work / f"{step}-{variant}-{repeat}-bare")]  # fmt: skip
                order = [("ours", ours), ("bare", bare)]
                for side, command in order if repeat % 2 == 0 else order[::-1]:
                    (ours_times if side == "ours" else bare_times).append(
                        timed(command, args.threads)
                    )
            ratios = [o / b for o, b in zip(ours_times, bare_times, strict=True)]
            print(f"{step:7} {variant:10} {statistics.median(ours_times):7.1f} {statistics.median(bare_times):7.1f} "
                  f"{statistics.median(ratios):6.2f}  {' '.join(f'{r:.2f}' for r in ratios)}", flush=True)  # fmt: skip
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
