"""A KTO round: judgments become desirable / undesirable completions and the policy step is the
engine's ``kto``; with the fake engine (fast) and end to end on the built-in tiny models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rlhf import selectors, services
from rlhf.demo import demo_project_create
from rlhf.methods import default_config
from rlhf.models import ModelSpec, RoundStatus
from rlhf.simulate import annotators_ensure, judge_in_process
from tests.rlhf import test_full_round

tiny_models = test_full_round.tiny_models  # the shared session fixture (var/test-models)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


@pytest.mark.django_db
def test_kto_rows_are_the_preference_pairs_unpaired(judged_project: Any) -> None:
    # both_bad "drop": every row comes from a pair (KTO's default "split" adds both-bad answers)
    snapshot = default_config("kto")["snapshot"] | {"rounds": "all", "both_bad": "drop"}
    ids = selectors.snapshot_judgment_ids(judged_project, snapshot)
    pairs = selectors.preference_rows(ids, snapshot)
    rows = selectors.kto_rows(ids, snapshot)
    assert pairs and len(rows) == 2 * len(pairs)
    for pair, good, bad in zip(pairs, rows[::2], rows[1::2], strict=True):
        assert good == {"prompt_id": pair["prompt_id"], "prompt": pair["prompt"],
                        "split_position": pair["split_position"], "completion": pair["chosen"],
                        "label": True, "weight": pair["weight"]}  # fmt: skip
        assert bad == {**good, "completion": pair["rejected"], "label": False}


@pytest.mark.django_db
def test_a_kto_round_plans_a_kto_engine_call_on_kto_rows(
    judged_project: Any, fake_engine: Path, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        round_ = services.round_launch(
            project=judged_project, method="kto", config={"policy": {"desirable_weight": 1.2}}
        )
    round_.refresh_from_db()
    assert round_.status == RoundStatus.SUCCEEDED, round_.error
    assert round_.method == "kto" and round_.get_method_display().startswith("KTO")
    reward, policy, *_ = selectors.round_runs(round_)
    assert policy.command[1:4] == ["-m", "tests.rlhf.fake_training", "kto"]
    spec = policy.spec["policy"]
    assert spec["desirable_weight"] == 1.2 and spec["beta"] == 0.1
    assert spec["reference"] == "base"  # the parent is the base model: no adapter to refer to
    assert spec["parent_adapter"] is None and "reward_model" not in spec
    rows = _jsonl(Path(spec["data"]))
    assert Path(spec["data"]).name == "kto.jsonl"
    pairs = _jsonl(Path(fake_engine, reward.run_dir, "preferences.jsonl"))
    assert len(rows) == round_.snapshot_size and len(rows) >= 2 * len(pairs)
    assert rows == selectors.kto_rows(round_.snapshot_judgment_ids, round_.config["snapshot"])
    assert round_.config["snapshot"]["both_bad"] == "split"  # KTO's default
    assert [r["label"] for r in rows] == [True, False] * len(pairs)
    assert [r["completion"] for r in rows[::2]] == [p["chosen"] for p in pairs]
    assert [r["completion"] for r in rows[1::2]] == [p["rejected"] for p in pairs]
    assert round_.checkpoint is not None and round_.checkpoint.parent == round_.parent_checkpoint


@pytest.mark.training
@pytest.mark.django_db
def test_one_kto_round_on_the_builtin_models(
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
        name="kto", train_prompts=10, held_out_prompts=2, annotators=()
    ).project
    project.checkpoints.all().delete()
    base = services.checkpoint_base(project=project, model_spec=spec)
    users = [user for user, _ in annotators_ensure(project, 2)]
    judge_in_process(project=project, annotators=users, rule="correct_polite", noise=0.0)

    with django_capture_on_commit_callbacks(execute=True):
        round_ = services.round_launch(project=project, method="kto", config=test_full_round.TINY)
    round_.refresh_from_db()
    runs = selectors.round_runs(round_)
    assert round_.status == RoundStatus.SUCCEEDED, (round_.error, [r.log_tail for r in runs])
    candidate = round_.checkpoint
    assert candidate is not None and candidate.parent == base
    manifest = json.loads((Path(str(candidate.adapter_path)) / "manifest.json").read_text())
    assert manifest["method"] == "kto" and manifest["spec"]["batch_size"] == 4
    assert runs[1].command[-5] == "kto" and runs[1].progress["total"] == 3
    assert runs[1].result["steps"] == 3 and runs[1].result["eval_margin_before"] is not None
    assert 0.0 <= candidate.metrics["evaluate"]["win_rate"] <= 1.0
    assert selectors.round_queue_figures(round_)["comparisons"] > 0
