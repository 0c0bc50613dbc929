"""A stand-in for ``python -m rlhf.training`` that speaks the same CLI protocol, fast and torch-free.

The runner tests point ``PAIRWISE_TRAINING_MODULE`` here to exercise supervision (progress,
heartbeat, cancel, kill, failure) without training. Environment knobs:
``FAKE_STEPS`` (progress events per step, default 4), ``FAKE_STEP_S`` (seconds between them,
default 0.01), ``FAKE_FAIL`` (an engine step name that fails), ``FAKE_IGNORE_TERM`` (1: ignore
SIGTERM, so the runner must SIGKILL), ``FAKE_IGNORE_EPIPE`` (1: go on when the reader of stdout
is gone, as a real step does until its next event, which may be minutes away), ``FAKE_PERPLEXITY`` (the base model's perplexity on the
evaluated candidate's answers; its parent's is 6.0), ``FAKE_REWARD_ACCURACY`` (the reward
model's held-out accuracy, default 0.75).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

stop = False


def emit(event: dict[str, Any]) -> None:
    try:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        if os.environ.get("FAKE_IGNORE_EPIPE") != "1":
            raise


def on_term(signum: int, frame: object) -> None:
    global stop
    stop = True


def train(total: int, delay: float, tmp: Path | None) -> bool:
    for step in range(1, total + 1):
        if stop:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            return False
        time.sleep(delay)
        emit(
            {
                "event": "progress",
                "step": step,
                "total": total,
                "loss": 1.0 / step,
                "metrics": {"rewards/accuracies": step / total},
                "eta_s": delay * (total - step),
            }
        )
    return True


def write_checkpoint(output: Path, spec: dict[str, Any], merged: bool) -> Path:
    tmp = output.parent / f".{output.name}.tmp-{os.getpid()}"
    tmp.mkdir(parents=True)
    (tmp / "adapter_config.json").write_text("{}")
    (tmp / "manifest.json").write_text(json.dumps({"spec": spec}))
    if merged:
        (tmp / "merged").mkdir()
        (tmp / "merged" / "config.json").write_text("{}")
    return tmp


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("step")
    parser.add_argument("--spec", required=True)
    parser.add_argument("--result")
    args = parser.parse_args()
    if os.environ.get("FAKE_IGNORE_TERM") == "1":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, on_term)
    spec = json.loads(Path(args.spec).read_text())
    total = int(os.environ.get("FAKE_STEPS", "4"))
    delay = float(os.environ.get("FAKE_STEP_S", "0.01"))
    emit({"event": "log", "message": f"fake {args.step} starting"})
    if os.environ.get("FAKE_FAIL") == args.step:
        emit({"event": "error", "message": f"RuntimeError: {args.step} exploded"})
        return 1
    result: dict[str, Any]
    if args.step == "bootstrap":
        if not train(total, delay, None):
            emit({"event": "cancelled"})
            return 143
        models = Path(spec["data_dir"]) / "models"
        result = {
            "policy_dir": str(models / "policy"),
            "reward_backbone_dir": str(models / "reward-backbone"),
            "recipe": "fake",
            "rebuilt": True,
            "final_loss": 1.0,
            "num_parameters": 42,
            "wall_s": 0.1,
        }
    elif "output_dir" in spec:  # reward and every policy step (dpo, kto, online, ...)
        output = Path(spec["output_dir"])
        tmp = write_checkpoint(output, spec, merged=args.step == "reward")
        members = [str(n) for n in range(int(spec.get("members", 1)))]
        kept = members if spec.get("keep_members") else []
        for member in kept:
            (tmp / "members" / member).mkdir(parents=True)
        if not train(total, delay, tmp):
            emit({"event": "cancelled"})
            return 143
        os.rename(tmp, output)
        result = {"checkpoint_dir": str(output), "steps": total, "wall_s": 0.1, "data_hash": "x"}
        if args.step == "reward":
            result.update(
                merged_dir=str(output / "merged"),
                eval_accuracy=float(os.environ.get("FAKE_REWARD_ACCURACY", "0.75")),
                num_train=4,
                num_eval=1,
                train_loss=0.5,
                eval_mean_margin=0.2,
                members=len(members),
                member_eval_accuracy=[0.7 for _ in members] if len(members) > 1 else [],
                member_dirs=[str(output / "members" / m) for m in kept],
            )
        else:
            result.update(eval_accuracy_after=0.7, train_loss=0.4)
    elif args.step == "evaluate":
        if not train(total, delay, None):
            emit({"event": "cancelled"})
            return 143
        result = {
            "num_prompts": 3,
            "win_rate": 0.6,
            "tie_rate": 0.1,
            "mean_reward_candidate": 0.5,
            "mean_reward_parent": 0.3,
            "kl": 0.02,
            "mean_length_candidate": 9.0,
            "mean_length_parent": 10.0,
            "rule_win_rates": {rule: 0.55 for rule in spec.get("rules", [])},
            "reward_rule_agreement": {rule: 0.8 for rule in spec.get("rules", [])},
            "num_samples": spec.get("num_samples", 1),
            "kl_direct": 0.04,
            "perplexity_base_candidate": float(os.environ.get("FAKE_PERPLEXITY", "6.5")),
            "perplexity_base_parent": 6.0,
            "wall_s": 0.1,
            # The sampled evaluation: 3 prompts x the samples, won 2 of 3 prompts outright.
            "sampled": {
                label: {
                    "prompts": 3,
                    "pairs": 3 * spec.get("sampled_per_prompt", 4),
                    "wins": 2 * spec.get("sampled_per_prompt", 4),
                    "losses": spec.get("sampled_per_prompt", 4),
                    "ties": 0,
                    "win_rate": 2 / 3,
                    "lower": 0.2077,
                    "upper": 0.9385,
                    "mean_reward_candidate": 0.5,
                    "mean_reward_opponent": 0.3,
                    "samples_per_prompt": spec.get("sampled_per_prompt", 4),
                    "temperature": spec.get("sample_temperature", 1.0),
                }
                for label in spec.get("opponents", {})
                if spec.get("sampled_per_prompt", 4) > 0
            },
        }
    elif args.step == "generate":
        prompts = [
            json.loads(line) for line in Path(spec["prompts"]).read_text().splitlines() if line
        ]
        who = Path(spec["adapter"]).name if spec.get("adapter") else "base"
        with open(spec["output"], "w") as handle:
            for row in prompts:
                for index in range(spec.get("num_samples", 2)):
                    text = f"fake answer {index} to {row['prompt_id']} by {who}"
                    if index % 2 == 0:  # polite samples: the simulated annotators' rules differ
                        text += " Thanks for asking!"
                    handle.write(
                        json.dumps(
                            {
                                "prompt_id": row["prompt_id"],
                                "sample_index": index,
                                "text": text,
                                "seed": index,
                                "params": {"t": 1},
                            }
                        )
                        + "\n"
                    )
        if not train(total, delay, None):
            emit({"event": "cancelled"})
            return 143
        result = {
            "output": spec["output"],
            "num_prompts": len(prompts),
            "num_samples": spec.get("num_samples", 2),
            "wall_s": 0.1,
        }
    elif args.step == "score":
        # A stand-in reward: the number of words (so tests can tell which pair is closest).
        pairs = [json.loads(line) for line in Path(spec["pairs"]).read_text().splitlines() if line]
        with open(spec["output"], "w") as handle:
            for pair in pairs:
                rewards = {f"reward_{s}": float(len(pair[s].split())) for s in ("a", "b")}
                handle.write(json.dumps({"id": pair["id"], **rewards}) + "\n")
        result = {"output": spec["output"], "num_pairs": len(pairs), "wall_s": 0.1}
    else:
        emit({"event": "error", "message": f"unknown step {args.step}"})
        return 2
    if args.result:
        Path(args.result).write_text(json.dumps(result))
    emit({"event": "result", "result": result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
