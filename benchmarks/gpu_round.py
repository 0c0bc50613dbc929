"""One tuning round on CUDA in bfloat16: reward + DPO + evaluate + generate, with tokens/s and MFU.

The GPU counterpart of ``benchmarks/round_budget.py --preset smollm2``: the same steps on the same
data (real questions, rule ``factual_brief``, the size-aware defaults of
``rlhf.methods.size_defaults``), each on ``cuda`` in ``bfloat16``. Prints per step the wall
time, the tokens processed, tokens/s, the model FLOPs (6·P per trained token, 2·P per token only
run forward: DPO's reference pass, evaluation and generation; attention FLOPs left out) and the
model FLOPs utilisation (MFU) against the GPU's dense bf16 peak (known GPUs by name, or
``--peak-tflops``).

    .venv/bin/python benchmarks/gpu_round.py [--preset smollm2] [--model DIR_OR_HUB_ID]
    .venv/bin/python benchmarks/gpu_round.py --gpus 4      # re-runs itself under accelerate launch
    .venv/bin/python benchmarks/gpu_round.py --gpus 4 --dry-run   # prints that command only

With several GPUs the reward and DPO steps train data-parallel (TRL's trainers under
``accelerate launch``; every rank writes its own copy of the checkpoint, rank 0's is used);
evaluate and generate run on the main process while the others wait.
Without a CUDA device it exits with status 3 and says so (it cannot run on a CPU-only machine).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
NO_CUDA_STATUS = 3
# Dense bf16 tensor-core peaks, TFLOP/s, by a substring of torch.cuda.get_device_name().
PEAK_BF16_TFLOPS: dict[str, float] = {
    "H200": 989.0,
    "H100": 989.0,
    "H800": 989.0,
    "GH200": 989.0,
    "B200": 2250.0,
    "A100": 312.0,
    "A800": 312.0,
    "L40S": 362.0,
    "L40": 181.0,
    "A6000": 155.0,
    "L4": 121.0,
    "A10": 125.0,
    "4090": 165.0,
    "3090": 71.0,
    "V100": 125.0,  # fp16 (no bf16): the script then runs float16
    "T4": 65.0,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Several GPUs: --gpus N re-runs this script under `accelerate launch "
        "--num_processes N --mixed_precision bf16`.",
    )
    parser.add_argument("--preset", choices=("smollm2", "toy"), default="smollm2")
    parser.add_argument("--model", default="", help="any causal LM directory or hub id instead")
    parser.add_argument("--reward-backbone", default="", help="default: the preset's")
    parser.add_argument("--data-dir", default=str(REPO / "var" / "bench-gpu"))
    parser.add_argument("--pairs", type=int, default=300, help="preference pairs (DPO + reward)")
    parser.add_argument("--prompts", type=int, default=200, help="evaluate / generate prompts")
    parser.add_argument("--samples", type=int, default=2, help="generated samples per prompt")
    parser.add_argument("--dtype", choices=("bfloat16", "float16", "float32"), default="bfloat16")
    parser.add_argument("--gpus", type=int, default=1, help="GPUs (> 1: accelerate launch)")
    parser.add_argument("--peak-tflops", type=float, default=0.0, help="the GPU's dense peak")
    parser.add_argument("--config", default="{}", help="JSON overrides of the round config")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    args = parser.parse_args(argv)
    for name, low in (("pairs", 8), ("prompts", 1), ("samples", 2), ("gpus", 1)):
        if getattr(args, name) < low:
            parser.error(f"--{name} must be >= {low}, got {getattr(args, name)}")
    if args.peak_tflops < 0:
        parser.error("--peak-tflops must be > 0")
    try:
        overrides = json.loads(args.config)
    except json.JSONDecodeError as exc:
        parser.error(f"--config is not JSON: {exc}")
    if not isinstance(overrides, dict):
        parser.error("--config must be a JSON object of round config sections")
    args.overrides = overrides
    return args


def accelerate_command(argv: list[str], gpus: int) -> list[str]:
    """The ``accelerate launch`` command that re-runs this script on ``gpus`` processes."""
    rest, skip = [], False
    for item in argv:
        if skip:
            skip = False
            continue
        if item == "--gpus":
            skip = True
            continue
        if item.startswith("--gpus=") or item == "--dry-run":
            continue
        rest.append(item)
    return [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(gpus),
            "--mixed_precision", "bf16", str(Path(__file__).resolve()), *rest]  # fmt: skip


def peak_tflops(device_name: str, given: float = 0.0) -> float | None:
    """The dense bf16 peak of a GPU by name (``given`` wins); None when unknown."""
    if given > 0:
        return given
    for key in sorted(PEAK_BF16_TFLOPS, key=len, reverse=True):
        if key in device_name:
            return PEAK_BF16_TFLOPS[key]
    return None


def mfu(flops: float, seconds: float, peak: float | None, devices: int = 1) -> float | None:
    """Model FLOPs utilisation: achieved FLOP/s over the peak of all devices."""
    if peak is None or seconds <= 0:
        return None
    return flops / seconds / (peak * 1e12 * devices)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    inside_launcher = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if args.gpus > 1 and not inside_launcher:
        command = accelerate_command(argv, args.gpus)
        print(shlex.join(command), flush=True)
        if args.dry_run:
            return 0
        return _run_checked(command)
    if args.dry_run:
        print(f"plan: preset {args.preset}, model {args.model or '(preset)'}, {args.pairs} pairs, "
              f"{args.prompts} prompts x {args.samples} samples, {args.dtype} on cuda")  # fmt: skip
        return 0
    import torch

    if not torch.cuda.is_available():
        print(
            "gpu_round.py needs a CUDA GPU: torch.cuda.is_available() is False here "
            f"(torch {torch.__version__}). On a CPU-only machine run "
            "benchmarks/round_budget.py --preset smollm2 instead.",
            file=sys.stderr,
        )
        return NO_CUDA_STATUS
    return run_round(args)


def _run_checked(command: list[str]) -> int:
    import subprocess

    return subprocess.run(command, cwd=REPO, check=False).returncode


def run_round(args: argparse.Namespace) -> int:  # pragma: no cover - needs a GPU
    import torch

    sys.path.insert(0, str(REPO))
    from rlhf import methods
    from rlhf.model_size import parameter_count
    from rlhf.training import bootstrap, dpo, evaluate, generate, questions, reward, rules
    from rlhf.training.specs import BootstrapSpec, DPOSpec, EvaluateSpec, GenerateSpec, RewardSpec

    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    data_dir = Path(args.data_dir)
    if args.model:
        policy_dir, backbone_dir = args.model, args.reward_backbone or args.model
    else:
        built = bootstrap.run(BootstrapSpec(data_dir=str(data_dir), preset=args.preset))
        policy_dir = built.policy_dir
        backbone_dir = args.reward_backbone or built.reward_backbone_dir
    params = parameter_count(policy_dir)
    config = methods.resolve_config(
        "dpo", args.overrides, model_params=params, snapshot_size=args.pairs
    )
    dtype = args.dtype
    if dtype == "bfloat16" and not torch.cuda.is_bf16_supported():
        dtype = "float16"
    common = {"device": "cuda", "dtype": dtype}
    work = Path(tempfile.mkdtemp(prefix="gpu-round-")) if rank == 0 else None
    shared = data_dir / "gpu-round-work"
    if rank == 0:
        shutil.rmtree(shared, ignore_errors=True)
        shared.mkdir(parents=True)
    _barrier(world)
    prefs = shared / "prefs.jsonl"
    prompts = shared / "prompts.jsonl"
    preference_rows = (
        rules.real_preferences(args.pairs, 0)
        if args.preset == "smollm2" or args.model
        else rules.synthetic_preferences(args.pairs, 0)
    )
    if rank == 0:
        prefs.write_text("".join(json.dumps(r) + "\n" for r in preference_rows))
        rows = questions.prompt_rows(args.prompts, seed=1)
        prompts.write_text("".join(json.dumps({"prompt_id": r["prompt_id"], "prompt": r["prompt"]}) + "\n"
                                   for r in rows))  # fmt: skip
    _barrier(world)
    name = torch.cuda.get_device_name(0)
    peak = peak_tflops(name, args.peak_tflops)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    times: dict[str, float] = {}

    def timed(step: str, call: Callable[[], Any]) -> Any:
        torch.cuda.synchronize()
        start = time.monotonic()
        result = call()
        torch.cuda.synchronize()
        times[step] = time.monotonic() - start
        return result

    rm = timed("reward", lambda: reward.run(RewardSpec(base_model=backbone_dir, data=str(prefs),
                                                       output_dir=str(shared / f"rm-{rank}"), **common,
                                                       **config["reward"])))  # fmt: skip
    # a first round; reward-model pairs use this round's reward model, as rlhf.runner does
    dpo_fields = methods.first_round_policy_fields(config["policy"], prompts=str(prompts),
                                                   reward_model=str(rm.merged_dir))  # fmt: skip
    dpo_spec = DPOSpec(base_model=policy_dir, data=str(prefs), output_dir=str(shared / f"dpo-{rank}"),
                       **common, **dpo_fields)  # fmt: skip
    # the spec, not the config: the toy's config leaves max_length and the batch to its defaults
    pair_tokens = _pair_tokens(tokenizer, preference_rows, dpo_spec.max_length)
    policy = timed("dpo", lambda: dpo.run(dpo_spec))
    _barrier(world)
    if rank != 0:
        return 0
    assert work is not None
    ev = timed("evaluate", lambda: evaluate.run(EvaluateSpec(
        base_model=policy_dir, candidate_adapter=policy.checkpoint_dir, reward_model=str(rm.merged_dir),
        prompts=str(prompts), rules=("factual", "factual_brief"), **common, **config["evaluate"])))  # fmt: skip
    out = work / "samples.jsonl"
    timed("generate", lambda: generate.run(GenerateSpec(base_model=policy_dir, adapter=policy.checkpoint_dir,
                                                        prompts=str(prompts), output=str(out), **common,
                                                        num_samples=args.samples,
                                                        max_new_tokens=int(config["generate"]["max_new_tokens"]),
                                                        temperature=float(config["generate"]["temperature"]))))  # fmt: skip
    generated = [json.loads(line)["text"] for line in out.read_text().splitlines()]
    new_tokens = sum(
        len(tokenizer(t, add_special_tokens=False)["input_ids"]) + 1 for t in generated
    )
    p = float(params or 0)
    trained = int(policy.steps) * dpo_spec.batch_size * dpo_spec.gradient_accumulation_steps * world
    dpo_tokens = round(trained * pair_tokens)
    work_of = {  # step: (tokens, model FLOPs)
        "reward": (None, None),  # the backbone differs from the policy: tokens/s only via logs
        "dpo": (dpo_tokens, dpo_tokens * 8 * p),  # policy fwd+bwd (6P) + reference fwd (2P)
        "evaluate": (None, None),
        "generate": (new_tokens, new_tokens * 2 * p),
    }
    print(f"{name} x {world}, {dtype}; policy {policy_dir} ({params} parameters); peak "
          f"{peak if peak else '?'} TFLOP/s per GPU; {args.pairs} pairs, {args.prompts} prompts x "
          f"{args.samples} samples")  # fmt: skip
    print(f"{'step':9} {'wall_s':>7} {'tokens':>9} {'tokens/s':>9} {'TFLOP/s':>8} {'MFU':>6}")
    for step, wall in times.items():
        tokens, flops = work_of[step]
        rate = f"{tokens / wall:9.0f}" if tokens else f"{'-':>9}"
        achieved = f"{flops / wall / 1e12:8.2f}" if flops else f"{'-':>8}"
        ratio = mfu(flops, wall, peak, world) if flops else None
        print(f"{step:9} {wall:7.1f} {tokens or '-':>9} {rate} {achieved} "
              f"{(f'{100 * ratio:5.1f}%' if ratio is not None else '-'):>6}")  # fmt: skip
    print(f"{'total':9} {sum(times.values()):7.1f}")
    print(f"reward accuracy {rm.eval_accuracy}; dpo {policy.steps} steps, {policy.num_reward_pairs} "
          f"reward-model pairs; factual win rate vs parent {ev.rule_win_rates.get('factual')}")  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _barrier(world: int) -> None:  # pragma: no cover - needs a GPU
    if world > 1:
        from accelerate import PartialState

        PartialState().wait_for_everyone()


def _pair_tokens(tokenizer: Any, rows: list[dict[str, Any]], max_length: int) -> float:
    """Mean tokens of one training pair (prompt + chosen and prompt + rejected, each capped)."""
    total = 0
    for row in rows:
        for answer in (row["chosen"], row["rejected"]):
            text = tokenizer.apply_chat_template(
                [*row["prompt"], {"role": "assistant", "content": answer}], tokenize=False
            )
            total += min(max_length, len(tokenizer(text, add_special_tokens=False)["input_ids"]))
    return total / max(1, len(rows))


if __name__ == "__main__":
    raise SystemExit(main())
