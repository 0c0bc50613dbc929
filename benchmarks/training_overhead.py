"""Overhead of our CLI over a bare TRL script: the same reward and DPO runs, timed end to end.

Run: ``.venv/bin/python benchmarks/training_overhead.py [--data-dir var/bench]``. Both paths start
a fresh Python process (imports included) on the same data, model and settings. Target: ratio <= 1.10.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

BARE_REWARD = """
import sys, torch
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from trl import RewardConfig, RewardTrainer
import json
base, data, out = sys.argv[1:4]
rows = [json.loads(l) for l in open(data)]
ds = Dataset.from_list([{"prompt": r["prompt"], "chosen": [{"role": "assistant", "content": r["chosen"]}],
    "rejected": [{"role": "assistant", "content": r["rejected"]}], "margin": r.get("margin", 0.0)} for r in rows])
tok = AutoTokenizer.from_pretrained(base)
model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
model.config.pad_token_id = tok.pad_token_id
args = RewardConfig(output_dir=out + "-scratch", per_device_train_batch_size=16, num_train_epochs=1, learning_rate=1e-3,
    max_length=256, use_cpu=True, report_to="none", save_strategy="no", disable_tqdm=True, seed=0)
trainer = RewardTrainer(model=model, args=args, train_dataset=ds, processing_class=tok,
    peft_config=LoraConfig(task_type="SEQ_CLS", r=16, lora_alpha=32, target_modules="all-linear", modules_to_save=["score"]))
trainer.train()
trainer.model.save_pretrained(out)
"""

BARE_DPO = """
import sys, json
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig, DPOTrainer
base, data, out = sys.argv[1:4]
rows = [json.loads(l) for l in open(data)]
ds = Dataset.from_list([{"prompt": r["prompt"], "chosen": [{"role": "assistant", "content": r["chosen"]}],
    "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in rows])
tok = AutoTokenizer.from_pretrained(base)
model = AutoModelForCausalLM.from_pretrained(base)
args = DPOConfig(output_dir=out + "-scratch", per_device_train_batch_size=8, num_train_epochs=1, learning_rate=5e-4,
    max_length=256, use_cpu=True, report_to="none", save_strategy="no", disable_tqdm=True, seed=0)
trainer = DPOTrainer(model=model, args=args, train_dataset=ds, processing_class=tok,
    peft_config=LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, target_modules="all-linear"))
trainer.train()
trainer.model.save_pretrained(out)
"""


def timed(command: list[str]) -> float:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(REPO),
        "TOKENIZERS_PARALLELISM": "false",
    }
    start = time.monotonic()
    subprocess.run(
        command, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=str(REPO / "var" / "bench"))
    parser.add_argument("--pairs", type=int, default=300)
    args = parser.parse_args()

    from rlhf.training import bootstrap, rules

    models = bootstrap.ensure_models(args.data_dir, reward_backbone="policy")
    work = Path(tempfile.mkdtemp(prefix="overhead-"))
    data = work / "prefs.jsonl"
    data.write_text(
        "".join(
            json.dumps(r) + "\n" for r in rules.synthetic_preferences(args.pairs, 0, clear_cut=True)
        )
    )
    # Same work on both sides: every pair trains (eval_fraction 0 here), one epoch.
    common = {"data": str(data), "num_epochs": 1.0, "eval_fraction": 0.0, "seed": 0}
    runs = {
        "reward": (
            {
                **common,
                "base_model": models.reward_backbone_dir,
                "batch_size": 16,
                "learning_rate": 1e-3,
                "merge": False,
            },
            BARE_REWARD,
            models.reward_backbone_dir,
        ),
        "dpo": (
            {**common, "base_model": models.policy_dir, "batch_size": 8},
            BARE_DPO,
            models.policy_dir,
        ),
    }
    print(f"{'step':8} {'ours_s':>8} {'bare_trl_s':>10} {'ratio':>6}")
    for step, (spec, bare, base) in runs.items():
        spec_path = work / f"{step}.json"
        spec_path.write_text(json.dumps({**spec, "output_dir": str(work / f"{step}-ours")}))
        ours = timed([sys.executable, "-m", "rlhf.training", step, "--spec", str(spec_path)])
        script = work / f"bare_{step}.py"
        script.write_text(bare)
        theirs = timed([sys.executable, str(script), base, str(data), str(work / f"{step}-bare")])
        print(f"{step:8} {ours:8.1f} {theirs:10.1f} {ours / theirs:6.2f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
