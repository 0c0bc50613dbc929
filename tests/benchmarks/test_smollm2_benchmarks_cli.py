"""The command lines of the smollm2 benchmarks (their full runs are minutes to hours: not tests):
``gpu_round.py`` (help, argument checks, the accelerate command for several GPUs, a clear error
without CUDA, the MFU arithmetic), ``loop.py --preset smollm2`` (rules a real model can be judged
on) and ``round_budget.py --preset``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.benchmarks import BENCH, bench_module

REPO = BENCH.parent


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True,
                          text=True, timeout=120, cwd=REPO)  # fmt: skip


def test_gpu_round_help_names_accelerate_and_the_figures() -> None:
    done = _run("gpu_round.py", "--help")
    assert done.returncode == 0
    assert "accelerate launch" in done.stdout
    assert "--gpus" in done.stdout and "--peak-tflops" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--samples", "1"], "--samples must be >= 2"),
        (["--gpus", "0"], "--gpus must be >= 1"),
        (["--pairs", "3"], "--pairs must be >= 8"),
        (["--dtype", "int8"], "invalid choice"),
        (["--config", "{nope"], "--config is not JSON"),
        (["--config", "[1]"], "--config must be a JSON object"),
    ],
)
def test_gpu_round_refuses_bad_arguments(args: list[str], message: str) -> None:
    done = _run("gpu_round.py", *args)
    assert done.returncode == 2
    assert message in done.stderr


def test_gpu_round_without_cuda_says_so() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device: the round would run")
    done = _run("gpu_round.py", "--pairs", "8", "--prompts", "1")
    assert done.returncode == 3
    assert "needs a CUDA GPU" in done.stderr
    assert "round_budget.py --preset smollm2" in done.stderr


def test_gpu_round_several_gpus_relaunch_under_accelerate() -> None:
    done = _run("gpu_round.py", "--gpus", "4", "--prompts", "50", "--dry-run")
    assert done.returncode == 0
    command = done.stdout.strip().splitlines()[0]
    assert "-m accelerate.commands.launch --num_processes 4 --mixed_precision bf16" in command
    assert command.endswith("gpu_round.py --prompts 50")  # --gpus and --dry-run are not passed on
    single = _run("gpu_round.py", "--dry-run", "--prompts", "7")
    assert single.returncode == 0 and "7 prompts x 2 samples, bfloat16 on cuda" in single.stdout


def test_gpu_round_peak_and_mfu_arithmetic() -> None:
    gpu = bench_module("gpu_round.py")
    assert gpu.peak_tflops("NVIDIA H200") == 989.0
    assert gpu.peak_tflops("NVIDIA L40S") == 362.0  # the longer name wins over "L40"
    assert gpu.peak_tflops("Some GPU") is None
    assert gpu.peak_tflops("Some GPU", 100.0) == 100.0
    assert gpu.mfu(989e12 * 0.5 * 10, 10.0, 989.0) == pytest.approx(0.5)
    assert gpu.mfu(1e12, 1.0, 1.0, devices=4) == pytest.approx(0.25)
    assert gpu.mfu(1e12, 1.0, None) is None


def test_loop_smollm2_is_judged_on_real_questions() -> None:
    loop = bench_module("loop.py")
    args = loop.parse_args(["--preset", "smollm2"])
    assert args.rule == "factual_brief"
    assert loop.parse_args([]).rule == "correct_polite"  # the toy keeps its default
    assert loop.parse_args(["--preset", "smollm2", "--rules", "all"]).rules == "all"
    seeded = loop.loop_settings(loop.parse_args(["--seed", "3", "--one-shot"]))
    assert seeded.seed == 3 and seeded.config == {"seed": 3}
    assert (seeded.rounds, seeded.limit) == (1, 600)  # one-shot: every label in one round
    own = loop.loop_settings(loop.parse_args(["--seed", "3", "--config", '{"seed": 7}']))
    assert own.seed == 3 and own.config == {"seed": 7}
    done = _run("loop.py", "--preset", "smollm2", "--rule", "polite")
    assert done.returncode == 2
    assert "judged on real questions" in done.stderr and "polite" in done.stderr
    bad_list = _run("loop.py", "--preset", "smollm2", "--rules", "factual,concise")
    assert bad_list.returncode == 2 and "concise" in bad_list.stderr


def test_round_budget_offers_the_smollm2_preset() -> None:
    done = _run("round_budget.py", "--help")
    assert done.returncode == 0
    assert "--preset {toy,smollm2}" in done.stdout
    bad = _run("round_budget.py", "--preset", "gpt")
    assert bad.returncode == 2
