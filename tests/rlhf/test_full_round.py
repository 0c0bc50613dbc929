"""One full round on the built-in tiny models: the real engine, in child processes, on CPU.

Shares the tiny models the training-engine tests build (``var/test-models/``, small budget) and
trains a few steps only: this checks the bridge (specs, files, results, checkpoints, queue), not
model quality (``benchmarks/loop.py`` measures that).
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from labeling.models import Comparison, Response
from rlhf import selectors, services
from rlhf.demo import demo_project_create
from rlhf.methods import QUEUE_TIER
from rlhf.models import ModelSpec, RoundStatus
from rlhf.runs import run_output_dir
from rlhf.simulate import annotators_ensure, judge_in_process
from tests.benchmarks import bench_module

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_POLICY_STEPS = 60  # the budget of tests/rlhf/training/conftest.py: one cache for both

TINY = {
    "reward": {"max_steps": 3, "batch_size": 8, "max_length": 64},
    "policy": {"max_steps": 3, "batch_size": 4, "max_length": 64},
    "evaluate": {"max_prompts": 4, "max_new_tokens": 8},
    "generate": {"max_prompts": 4, "max_new_tokens": 8},
}


@pytest.fixture(scope="session")
def tiny_models() -> Path:
    from rlhf.training import bootstrap
    from rlhf.training.specs import BootstrapSpec

    data_dir = (
        REPO_ROOT / "var" / "test-models" / f"v{bootstrap.RECIPE_VERSION}-steps{TEST_POLICY_STEPS}"
    )
    bootstrap.run(
        BootstrapSpec(
            data_dir=str(data_dir), policy_steps=TEST_POLICY_STEPS, reward_backbone="policy"
        )
    )
    return data_dir / "models"


@pytest.mark.training
@pytest.mark.django_db
def test_one_full_round_on_the_builtin_models(
    tiny_models: Path, data_dir: Path, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.PAIRWISE_HEARTBEAT_S = 1
    spec = ModelSpec.objects.create(
        name="tiny",
        base_model=str(tiny_models / "policy"),
        reward_backbone=str(tiny_models / "reward-backbone"),
        device="cpu",
    )
    project = demo_project_create(
        name="full", train_prompts=10, held_out_prompts=2, annotators=()
    ).project
    # The base checkpoint must use the tiny spec, before anything else makes checkpoint 0.
    project.checkpoints.all().delete()
    base = services.checkpoint_base(project=project, model_spec=spec)
    users = [user for user, _ in annotators_ensure(project, 2)]
    judge_in_process(project=project, annotators=users, rule="correct_polite", noise=0.0)

    with django_capture_on_commit_callbacks(execute=True):
        round_ = services.round_launch(project=project, method="dpo", config=TINY)
    round_.refresh_from_db()
    runs = selectors.round_runs(round_)
    assert round_.status == RoundStatus.SUCCEEDED, (round_.error, [r.log_tail for r in runs])
    assert [r.step for r in runs] == ["reward", "policy", "evaluate", "generate"]

    reward, candidate = round_.reward_checkpoint, round_.checkpoint
    assert reward is not None and candidate is not None
    assert reward.metrics["eval_accuracy"] is not None
    assert Path(run_output_dir(runs[0].pk), "merged").is_dir()
    assert candidate.parent == base
    adapter = Path(str(candidate.adapter_path))
    manifest = json.loads((adapter / "manifest.json").read_text())
    assert manifest["spec"]["loss_type"] == "sigmoid"
    assert list(adapter.glob("*.safetensors"))
    assert not list(adapter.rglob("*.bin")) and not list(adapter.rglob("*.pkl"))
    evaluation = candidate.metrics["evaluate"]
    assert 0.0 <= evaluation["win_rate"] <= 1.0 and evaluation["num_prompts"] == 2
    assert runs[1].metrics_history and runs[1].progress["total"] == 3

    # Fresh responses went into the queue with their provenance, ahead of everything else.
    # 4 training prompts (pairs into the queue) and the 2 held-out ones (kept for evaluation).
    new_responses = Response.objects.filter(checkpoint_ref=str(candidate.pk))
    assert new_responses.values("prompt").distinct().count() == 6
    assert Response.objects.filter(checkpoint_ref=str(base.pk)).count() == 6
    vs_champion = Comparison.objects.filter(batch="round-1:vs-champion")
    assert vs_champion.count() == 4
    assert set(vs_champion.values_list("priority", flat=True)) == {1 * QUEUE_TIER + 100}
    assert not Comparison.objects.filter(batch__startswith="round-1:", prompt__split="test")
    # The sampled evaluation: 4 samples a held-out prompt vs the base (also the champion).
    sampled = evaluation["sampled"]
    assert {label: f["checkpoint"] for label, f in sampled.items()} == {
        "base": base.pk, "champion": base.pk,
    }  # fmt: skip
    assert sampled["base"]["pairs"] == 2 * 4
    assert sampled["base"]["lower"] <= sampled["base"]["win_rate"] <= sampled["base"]["upper"]
    first_open = Comparison.objects.filter(project=project).open().first()
    assert first_open is not None and first_open.batch == "round-1:vs-champion"

    # benchmarks/loop.py's examples: greedy answers of the base and the round side by side.
    printed = io.StringIO()
    with redirect_stdout(printed):
        bench_module("loop.py").print_examples(round_, "correct_polite", max_prompts=2, shown=1)
    text = printed.getvalue()
    assert "greedy answers on 2 held-out prompts, base vs round 1:" in text
    assert text.count(" right ") == 2 and "rule correct_polite: round 1 vs base" in text
    assert text.count("\n  Q: ") == 1 and "    base: '" in text and "    round 1: '" in text
