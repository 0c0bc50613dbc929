"""The job runner: a round end to end through services, tasks, runner and a fake engine (fast,
no torch); specs from rows; what a step's results become; the engine's command line."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from labeling.models import Comparison, Judgment, Response
from labeling.services import LabelingError
from rlhf import runner, selectors, services, supervision
from rlhf.models import Checkpoint, CheckpointKind, RoundStatus, RunStatus
from rlhf.runs import run_output_dir, training_run_claim
from rlhf.simulate import annotators_ensure, judge_in_process
from tests.factories import UserFactory


@pytest.mark.django_db
def test_round_runs_all_steps_and_fills_the_queue(
    judged_project: Any, fake_engine: Path, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        round_ = services.round_launch(project=judged_project, method="dpo")
    round_.refresh_from_db()
    assert round_.status == RoundStatus.SUCCEEDED, round_.error
    runs = selectors.round_runs(round_)
    assert [r.step for r in runs] == ["reward", "policy", "evaluate", "generate"]
    assert all(r.status == RunStatus.SUCCEEDED for r in runs)
    assert runs[0].progress["step"] == runs[0].progress["total"] == 3
    assert all(r.cpu_s is not None and r.cpu_s > 0 for r in runs)
    assert runs[0].metrics_history and "loss" in runs[0].metrics_history[-1]
    candidate = round_.checkpoint
    assert candidate is not None and round_.reward_checkpoint is not None
    assert candidate.kind == CheckpointKind.POLICY
    assert candidate.parent == round_.parent_checkpoint
    assert candidate.metrics["evaluate"]["win_rate"] == 0.6
    assert Path(str(candidate.adapter_path)).is_dir()
    assert round_.reward_checkpoint.metrics["eval_accuracy"] == 0.75
    # Frozen snapshot: the judgment ids and the rows the reward step trained on.
    rows = Path(fake_engine, runs[0].run_dir, "preferences.jsonl").read_text().splitlines()
    assert len(rows) == round_.snapshot_size
    assert json.loads(rows[0])["chosen"]
    # New responses went into the queue, at the front, with their provenance.
    new = Comparison.objects.filter(batch__startswith="round-1:")
    tags = set(new.values_list("batch", flat=True))
    assert tags == {"round-1:vs-champion", "round-1:on-policy"}
    assert new.count() == 8 * 2  # the 8 training prompts: held-out pairs stay out of the queue
    assert not new.filter(prompt__split="test").exists()
    first = Comparison.objects.filter(project=judged_project).open().first()
    assert first is not None and first.batch == "round-1:vs-champion"
    vs = new.filter(batch="round-1:vs-champion").first()
    assert vs is not None
    refs = {vs.response_a.checkpoint_ref, vs.response_b.checkpoint_ref}
    assert refs == {str(candidate.pk), str(round_.parent_checkpoint.pk)}
    assert Response.objects.filter(checkpoint_ref=str(candidate.pk)).count() == 22
    # The champion is unchanged until an admin promotes.
    assert Checkpoint.objects.champion_of(judged_project) == round_.parent_checkpoint


def _queue_state(project: Any) -> list[tuple[int, str, int]]:
    return list(Comparison.objects.filter(project=project).values_list("pk", "status", "priority"))


@pytest.mark.django_db
def test_model_spec_dtype_and_chat_template_reach_every_step(
    judged_project: Any, fake_engine: Path, django_capture_on_commit_callbacks: Any
) -> None:
    template = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}<assistant>"
    model_spec = services.checkpoint_champion(project=judged_project).model_spec
    model_spec.chat_template, model_spec.dtype = template, "bfloat16"
    model_spec.save()
    with django_capture_on_commit_callbacks(execute=True):
        round_ = services.round_launch(project=judged_project, method="dpo")
    round_.refresh_from_db()
    assert round_.status == RoundStatus.SUCCEEDED, round_.error
    specs = {name: spec for run in selectors.round_runs(round_) for name, spec in run.spec.items()}
    assert {name for name in specs} >= {"reward", "policy", "evaluate", "generate-candidate"}
    for name, spec in specs.items():
        assert spec["dtype"] == "bfloat16", name
        # The template is the policy's: the reward backbone keeps its own tokenizer's.
        assert spec.get("chat_template") == (None if name == "reward" else template), name


@pytest.mark.django_db
def test_failed_step_leaves_champion_and_queue_and_retry_succeeds(
    judged_project: Any,
    fake_engine: Path,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = _queue_state(judged_project)
    champion = services.checkpoint_champion(project=judged_project)
    monkeypatch.setenv("FAKE_FAIL", "dpo")
    with django_capture_on_commit_callbacks(execute=True):
        round_ = services.round_launch(project=judged_project, method="dpo")
    round_.refresh_from_db()
    assert round_.status == RoundStatus.FAILED
    assert "policy: RuntimeError: dpo exploded" in round_.error
    steps = {r.step: r.status for r in selectors.round_runs(round_)}
    assert steps == {
        "reward": RunStatus.SUCCEEDED,
        "policy": RunStatus.FAILED,
        "evaluate": RunStatus.CANCELLED,
        "generate": RunStatus.CANCELLED,
    }
    assert round_.checkpoint is None
    assert not Checkpoint.objects.policies().exclude(pk=champion.pk).exists()
    assert not run_output_dir(selectors.round_runs(round_)[1].pk).exists()
    assert _queue_state(judged_project) == before
    assert services.checkpoint_champion(project=judged_project) == champion

    monkeypatch.delenv("FAKE_FAIL")
    with django_capture_on_commit_callbacks(execute=True):
        services.round_retry(round=round_)
    round_.refresh_from_db()
    assert round_.status == RoundStatus.SUCCEEDED, round_.error
    runs = selectors.round_runs(round_)
    assert [(r.step, r.attempt) for r in runs] == [
        ("reward", 1),
        ("policy", 2),
        ("evaluate", 2),
        ("generate", 2),
    ]
    assert round_.checkpoint is not None


@pytest.mark.django_db
def test_cancel_mid_training_stops_the_child_and_keeps_no_checkpoint(
    judged_project: Any,
    fake_engine: Path,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_STEPS", "2000")
    monkeypatch.setenv("FAKE_STEP_S", "0.01")
    seen: list[int] = []
    original = supervision.Progress.on_event

    def cancel_once_training(self: supervision.Progress, event: dict[str, Any]) -> None:
        original(self, event)
        if self.phase == "reward" and event.get("event") == "progress" and not seen:
            seen.append(event["step"])
            services.round_cancel(round=self_round[0])

    self_round: list[Any] = []
    monkeypatch.setattr(supervision.Progress, "on_event", cancel_once_training)
    with django_capture_on_commit_callbacks(execute=True):
        self_round.append(services.round_launch(project=judged_project, method="ipo"))
    assert seen
    round_ = self_round[0]
    round_.refresh_from_db()
    assert round_.status == RoundStatus.CANCELLED
    reward, policy, *_ = selectors.round_runs(round_)
    assert reward.status == RunStatus.CANCELLED
    assert policy.status == RunStatus.CANCELLED
    assert 0 < reward.progress["step"] < 100
    assert round_.reward_checkpoint is None
    assert not Checkpoint.objects.filter(kind=CheckpointKind.REWARD).exists()
    output = run_output_dir(reward.pk)
    assert not output.exists()
    assert not list(output.parent.glob(f".{output.name}.*"))
    assert not Comparison.objects.filter(batch__startswith="round-1:").exists()


@pytest.mark.django_db
def test_task_is_safe_to_run_twice(
    judged_project: Any, fake_engine: Path, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        round_ = services.round_launch(project=judged_project, method="dpo")
    first = selectors.round_runs(round_)[0]
    assert runner.training_run_execute(first.pk) == "skipped"
    assert Checkpoint.objects.filter(kind=CheckpointKind.REWARD).count() == 1


@pytest.mark.django_db
def test_online_rl_round_trains_against_the_new_reward_model(
    judged_project: Any, fake_engine: Path, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        round_ = services.round_launch(
            project=judged_project, method="grpo", config={"policy": {"num_generations": 2}}
        )
    round_.refresh_from_db()
    assert round_.status == RoundStatus.SUCCEEDED, round_.error
    policy = selectors.round_runs(round_)[1]
    spec = policy.spec["policy"]
    reward = round_.reward_checkpoint
    assert reward is not None
    assert spec["method"] == "grpo" and spec["beta"] == 0.05 and spec["num_generations"] == 2
    assert spec["reward_model"] == str(Path(str(reward.adapter_path)) / "merged")
    prompts = Path(spec["prompts"]).read_text().splitlines()
    assert len(prompts) == 8  # the training split only
    assert policy.command[1:4] == ["-m", "tests.rlhf.fake_training", "online"]


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["grpo", "rloo"])
def test_online_rl_against_a_reward_model_no_better_than_a_coin_is_refused_with_the_reason(
    judged_project: Any,
    fake_engine: Path,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
) -> None:
    monkeypatch.setenv("FAKE_REWARD_ACCURACY", "0.5")
    config: dict[str, Any] = {"policy": {"num_generations": 2}}
    with django_capture_on_commit_callbacks(execute=True):
        round_ = services.round_launch(project=judged_project, method=method, config=config)
    round_.refresh_from_db()
    assert round_.status == RoundStatus.FAILED
    assert round_.reward_checkpoint is not None and round_.checkpoint is None  # no candidate
    runs = selectors.round_runs(round_)
    assert [r.status for r in runs[:2]] == [RunStatus.SUCCEEDED, RunStatus.FAILED]
    reason = (
        "Online RL against this round's reward model would train on noise: its held-out accuracy "
        "was 50% on 1 pairs, not above 50% (policy.reward_min_accuracy)"
    )
    assert reason in runs[1].error and reason in round_.error
    assert runs[1].command == []  # refused before any engine call
    client = Client()
    client.force_login(UserFactory.create(username="viewer", role="admin"))
    assert "would train on noise" in client.get(f"/rounds/{round_.pk}/").content.decode()
    # an admin who wants it anyway sets the bar to 0; a better reward model clears it
    for extra, accuracy in (({"reward_min_accuracy": 0}, "0.5"), ({}, "0.6")):
        monkeypatch.setenv("FAKE_REWARD_ACCURACY", accuracy)
        config = {"policy": {"num_generations": 2, **extra}, "snapshot": {"rounds": "all"}}
        with django_capture_on_commit_callbacks(execute=True):
            again = services.round_launch(project=judged_project, method=method, config=config)
        again.refresh_from_db()
        assert again.status == RoundStatus.SUCCEEDED, again.error


@pytest.mark.django_db
def test_an_online_reward_min_accuracy_outside_0_1_is_refused(judged_project: Any) -> None:
    with pytest.raises(LabelingError, match=r"policy.reward_min_accuracy: must be in \[0, 1\)"):
        services.round_launch(
            project=judged_project, method="grpo", config={"policy": {"reward_min_accuracy": -0.1}}
        )


@pytest.mark.django_db
@pytest.mark.parametrize("reward_pairs", [0, 4])
def test_reward_pairs_hand_the_dpo_step_the_round_reward_model_and_its_prompts(
    judged_project: Any,
    fake_engine: Path,
    django_capture_on_commit_callbacks: Any,
    reward_pairs: int,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        round_ = services.round_launch(
            project=judged_project, config={"policy": {"reward_pairs": reward_pairs}}
        )
    round_.refresh_from_db()
    assert round_.status == RoundStatus.SUCCEEDED, round_.error
    spec = selectors.round_runs(round_)[1].spec["policy"]
    assert spec["reward_pairs"] == reward_pairs
    assert Path(spec["data"]).name == "preferences.jsonl"  # the human rows, as always
    if not reward_pairs:
        assert "reward_model" not in spec and "prompts" not in spec
        return
    # the round page says how many of the pairs the policy trained on the reward model made
    policy_run = selectors.round_runs(round_)[1]
    policy_run.result = {**policy_run.result, "num_train": 30, "num_reward_pairs": 8}
    policy_run.save(update_fields=["result"])
    client = Client()
    client.force_login(UserFactory.create(username="viewer", role="admin"))
    page = client.get(f"/rounds/{round_.pk}/").content.decode()
    assert re.search(
        r'data-testid="policy-training-pairs">30 <span class="muted">\(8 made by the reward '
        r"model: the best of the parent's samples it scores against the worst",
        page,
    )
    reward = round_.reward_checkpoint
    assert reward is not None
    assert spec["reward_model"] == str(Path(str(reward.adapter_path)) / "merged")
    prompts = [json.loads(line) for line in Path(spec["prompts"]).read_text().splitlines()]
    assert len(prompts) == 8  # the training split only, those the generate step samples for
    assert {row["prompt_id"] for row in prompts} == {
        str(p.pk) for p in selectors.training_prompts(judged_project)
    }
    with django_capture_on_commit_callbacks(execute=True):
        capped = services.round_launch(
            project=judged_project,
            config={
                "policy": {"reward_pairs": reward_pairs},
                "generate": {"max_prompts": 3},
                "snapshot": {"rounds": "all"},  # round 1's batch is not judged yet
            },
        )
    spec = selectors.round_runs(capped)[1].spec["policy"]
    assert len(Path(spec["prompts"]).read_text().splitlines()) == 3


@pytest.mark.django_db
def test_a_reward_model_no_better_than_a_coin_writes_no_pairs_and_the_round_says_so(
    judged_project: Any,
    fake_engine: Path,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_REWARD_ACCURACY", "0.5")  # on its one held-out pair
    with django_capture_on_commit_callbacks(execute=True):
        round_ = services.round_launch(project=judged_project, method="dpo")
    round_.refresh_from_db()
    assert round_.status == RoundStatus.SUCCEEDED, round_.error
    assert round_.config["policy"]["reward_pairs"] == 8  # the default asked for them
    spec = selectors.round_runs(round_)[1].spec["policy"]
    assert spec["reward_pairs"] == 0
    assert "reward_model" not in spec and "prompts" not in spec
    assert Path(spec["data"]).name == "preferences.jsonl"  # people's rows still train
    candidate = round_.checkpoint
    assert candidate is not None
    withheld = candidate.metrics["reward_pairs_withheld"]
    assert "held-out accuracy was 50% on 1 pairs, not above 50%" in withheld
    client = Client()
    client.force_login(UserFactory.create(username="viewer", role="admin"))
    api = client.get(f"/api/v1/rounds/{round_.pk}/").json()
    assert {"code": "reward_pairs_withheld", "message": withheld} in api["signals"]["flags"]
    page = client.get(f"/rounds/{round_.pk}/").content.decode()
    assert "did not train the new policy" in page
    # an admin who wants them anyway lowers the bar; a better reward model clears it
    for config, accuracy in (({"policy": {"reward_pairs_min_accuracy": 0.4}}, "0.5"), ({}, "0.6")):
        monkeypatch.setenv("FAKE_REWARD_ACCURACY", accuracy)
        with django_capture_on_commit_callbacks(execute=True):
            again = services.round_launch(
                project=judged_project,
                method="dpo",
                config={**config, "snapshot": {"rounds": "all"}},
            )
        again.refresh_from_db()
        assert again.status == RoundStatus.SUCCEEDED, again.error
        spec = selectors.round_runs(again)[1].spec["policy"]
        assert spec["reward_pairs"] == 8 and spec["reward_model"] and spec["prompts"]
        assert again.checkpoint is not None
        assert "reward_pairs_withheld" not in again.checkpoint.metrics
        flags = client.get(f"/api/v1/rounds/{again.pk}/").json()["signals"]["flags"]
        assert "reward_pairs_withheld" not in {flag["code"] for flag in flags}


@pytest.mark.django_db
def test_a_reward_pairs_min_accuracy_outside_0_1_is_refused(judged_project: Any) -> None:
    with pytest.raises(
        LabelingError, match=r"policy.reward_pairs_min_accuracy: must be in \[0, 1\)"
    ):
        services.round_launch(
            project=judged_project, config={"policy": {"reward_pairs_min_accuracy": 1.0}}
        )


@pytest.mark.django_db
def test_a_reward_pairs_setting_of_one_is_refused(judged_project: Any) -> None:
    with pytest.raises(LabelingError, match=r"reward_pairs.*must be 0 \(off\) or >= 2"):
        services.round_launch(project=judged_project, config={"policy": {"reward_pairs": 1}})


@pytest.mark.django_db
def test_second_round_warm_starts_from_the_promoted_champion(
    judged_project: Any, fake_engine: Path, django_capture_on_commit_callbacks: Any
) -> None:
    # The whole history with the base as reference (the default is iterative DPO, tested below).
    config = {"snapshot": {"rounds": "all"}, "policy": {"reference": "base"}}
    with django_capture_on_commit_callbacks(execute=True):
        first = services.round_launch(project=judged_project, method="dpo", config=config)
    first.refresh_from_db()
    assert first.checkpoint is not None
    services.checkpoint_promote(checkpoint=first.checkpoint, force=True)  # not about the gate
    users = [u for u, _ in annotators_ensure(judged_project, 2)]
    judge_in_process(project=judged_project, annotators=users, rule="correct", noise=0.0)
    with django_capture_on_commit_callbacks(execute=True):
        second = services.round_launch(project=judged_project, method="dpo", config=config)
    second.refresh_from_db()
    assert second.status == RoundStatus.SUCCEEDED
    assert second.parent_checkpoint == first.checkpoint
    dpo = selectors.round_runs(second)[1].spec["policy"]
    assert dpo["parent_adapter"] == first.checkpoint.adapter_path
    assert dpo["reference"] == "base"
    assert second.checkpoint is not None and second.checkpoint.parent == first.checkpoint
    assert len(second.snapshot_judgment_ids) > len(first.snapshot_judgment_ids)
    # Round 2's generated pairs are judged against the promoted champion's responses.
    vs = Comparison.objects.filter(batch="round-2:vs-champion").first()
    assert vs is not None
    refs = {vs.response_a.checkpoint_ref, vs.response_b.checkpoint_ref}
    assert refs == {str(second.checkpoint.pk), str(first.checkpoint.pk)}


@pytest.mark.django_db
def test_iterative_dpo_by_default_parent_reference_and_the_newest_batch(
    judged_project: Any, fake_engine: Path, django_capture_on_commit_callbacks: Any
) -> None:
    """Iterative DPO (reference = the parent policy): round 1's parent is the base model."""
    config: dict[str, Any] = {}  # the defaults: reference = parent, snapshot = the newest batch
    with django_capture_on_commit_callbacks(execute=True):
        first = services.round_launch(project=judged_project, method="dpo", config=config)
    first.refresh_from_db()
    assert first.status == RoundStatus.SUCCEEDED, first.error
    dpo = selectors.round_runs(first)[1].spec["policy"]
    assert (dpo["reference"], dpo["parent_adapter"]) == ("base", None)
    assert first.checkpoint is not None
    services.checkpoint_promote(checkpoint=first.checkpoint, force=True)  # not about the gate
    with pytest.raises(LabelingError, match="latest round queued: judge them first"):
        services.round_launch(project=judged_project, method="dpo", config=config)
    users = [u for u, _ in annotators_ensure(judged_project, 2)]
    judge_in_process(project=judged_project, annotators=users, rule="polite", noise=0.0)
    with django_capture_on_commit_callbacks(execute=True):
        second = services.round_launch(project=judged_project, method="dpo", config=config)
    second.refresh_from_db()
    assert second.status == RoundStatus.SUCCEEDED, second.error
    batches = set(
        Judgment.objects.filter(pk__in=second.snapshot_judgment_ids).values_list(
            "comparison__batch", flat=True
        )
    )
    assert batches == {"round-1:vs-champion", "round-1:on-policy"}
    dpo = selectors.round_runs(second)[1].spec["policy"]
    assert (dpo["reference"], dpo["parent_adapter"]) == ("parent", first.checkpoint.adapter_path)


@pytest.mark.django_db
def test_newest_keeps_every_batch_about_a_champion_the_gate_held(
    judged_project: Any, fake_engine: Path, django_capture_on_commit_callbacks: Any
) -> None:
    """Round 1's candidate is not promoted, so round 2 starts from the base again: it trains on
    everything judged about the base (round 1's snapshot and round 1's batch), not on round 1's
    batch alone. Once round 2's candidate is promoted, round 3 takes round 2's batch alone."""
    users = [u for u, _ in annotators_ensure(judged_project, 2)]

    def launch() -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            round_ = services.round_launch(project=judged_project, method="dpo", config={})
        round_.refresh_from_db()
        assert round_.status == RoundStatus.SUCCEEDED, round_.error
        return round_

    def batches(round_: Any) -> set[str]:
        return set(
            Judgment.objects.filter(pk__in=round_.snapshot_judgment_ids).values_list(
                "comparison__batch", flat=True
            )
        )

    first = launch()
    judge_in_process(project=judged_project, annotators=users, rule="polite", noise=0.0)
    second = launch()
    assert set(first.snapshot_judgment_ids) < set(second.snapshot_judgment_ids)
    assert {"round-1:vs-champion", "round-1:on-policy"} < batches(second)
    assert second.parent_checkpoint == first.parent_checkpoint  # the same champion: the base
    assert selectors.round_runs(second)[1].spec["policy"]["parent_adapter"] is None
    assert second.snapshot_export["round"] == "1,0"  # the export gives the same rows
    assert second.checkpoint is not None
    services.checkpoint_promote(checkpoint=second.checkpoint, force=True)
    judge_in_process(project=judged_project, annotators=users, rule="polite", noise=0.0)
    third = launch()
    assert batches(third) == {"round-2:vs-champion", "round-2:on-policy"}


@pytest.mark.django_db
def test_cancel_while_a_step_finishes_stops_the_round(
    judged_project: Any, fake_engine: Path
) -> None:
    round_ = services.round_launch(project=judged_project, method="dpo")  # not committed
    reward = selectors.round_runs(round_)[0]
    claimed = training_run_claim(run_id=reward.pk)
    assert claimed is not None
    services.round_cancel(round=round_)  # the step is running: only flagged
    round_.refresh_from_db()
    assert round_.status == RoundStatus.RUNNING
    workdir = runner.run_dir_for(claimed)
    output = run_output_dir(claimed.pk)
    (output / "merged").mkdir(parents=True)
    runner.record_success(
        claimed,
        workdir,
        {"reward": {"checkpoint_dir": str(output), "merged_dir": str(output / "merged")}},
    )
    round_.refresh_from_db()
    assert round_.status == RoundStatus.CANCELLED
    assert [r.status for r in selectors.round_runs(round_)] == [
        RunStatus.SUCCEEDED,
        RunStatus.CANCELLED,
        RunStatus.CANCELLED,
        RunStatus.CANCELLED,
    ]


# --- the engine's command line ---------------------------------------------------------------


def test_the_python_launcher_command() -> None:
    command = runner.build_command("dpo", "/r/spec.json", "/r/result.json", launcher="python")
    assert command[1:] == [
        "-m",
        "rlhf.training",
        "dpo",
        "--spec",
        "/r/spec.json",
        "--result",
        "/r/result.json",
    ]


def test_the_accelerate_launcher_command() -> None:
    command = runner.build_command(
        "online",
        "/r/spec.json",
        "/r/result.json",
        launcher="accelerate",
        accelerate_config="/etc/pairwise/fsdp.yaml",
    )
    assert Path(command[0]).name == "accelerate"
    assert command[1:] == [
        "launch",
        "--config_file",
        "/etc/pairwise/fsdp.yaml",
        "-m",
        "rlhf.training",
        "online",
        "--spec",
        "/r/spec.json",
        "--result",
        "/r/result.json",
    ]
    # Generation and evaluation stay single-process; without a config file none is passed.
    assert runner.build_command("generate", "s", "r", launcher="accelerate")[1:3] == [
        "-m",
        "rlhf.training",
    ]
    assert "--config_file" not in runner.build_command(
        "reward", "s", "r", launcher="accelerate", accelerate_config=""
    )


def test_the_launcher_follows_settings(settings: Any) -> None:
    settings.PAIRWISE_LAUNCHER = "accelerate"
    settings.PAIRWISE_ACCELERATE_CONFIG = "/cfg.yaml"
    assert runner.build_command("dpo", "s", "r")[1:4] == ["launch", "--config_file", "/cfg.yaml"]
    settings.PAIRWISE_LAUNCHER = "mpirun"
    with pytest.raises(ValueError, match="PAIRWISE_LAUNCHER"):
        runner.build_command("dpo", "s", "r")
