"""The model side's management commands, with the fake engine (fast) or a live server."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from labeling.models import Comparison, Judgment, Project, Prompt, Split
from rlhf import services
from rlhf.models import Checkpoint, ModelSpec, Round, RoundStatus
from rlhf.training import questions
from tests.factories import ResponseFactory


def run(*args: Any, **options: Any) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


@pytest.mark.django_db
def test_demo_data_is_idempotent() -> None:
    first = run("demo_data", "--prompts", "5", "--held-out", "2")
    assert first.count("password: ") == 3  # admin + two annotators, shown once
    project = Project.objects.get()
    assert Prompt.objects.filter(project=project, split=Split.TEST).count() == 2
    assert project.annotators.count() == 2
    comparisons = Comparison.objects.count()
    assert comparisons > 0
    again = run("demo_data", "--prompts", "5", "--held-out", "2")
    assert "password: " not in again and "0 new comparisons" in again
    assert Comparison.objects.count() == comparisons
    assert Prompt.objects.count() == 7
    held_out = Prompt.objects.filter(split=Split.TEST).order_by("id")
    unseen, seen = (p.metadata["family"] for p in held_out)
    assert unseen in {"animal_legs", "comparisons"}  # families the policy never saw
    assert seen not in {"animal_legs", "comparisons"}


@pytest.mark.django_db
def test_bootstrap_models_registers_the_builtin_spec(fake_engine: Path) -> None:
    out = run("bootstrap_models", "--policy-steps", "5")
    assert "built-in models built" in out and "100.0%" in out
    spec = ModelSpec.objects.get(name="builtin")
    assert spec.base_model_path == str(fake_engine / "models" / "policy")


@pytest.mark.django_db
def test_bootstrap_models_smollm2_preset_registers_its_spec(fake_engine: Path) -> None:
    out = run("bootstrap_models", "--preset", "smollm2")
    assert "smollm2 models built (model spec 'smollm2')" in out
    spec = ModelSpec.objects.get(name="smollm2")
    assert spec.base_model_path == str(fake_engine / "models" / "smollm2")
    assert spec.reward_backbone_path == str(fake_engine / "models" / "minilm")
    assert ModelSpec.objects.filter(name="builtin").count() == 0  # the toy's spec is not touched
    run("bootstrap_models", "--preset", "smollm2", "--reward-backbone", "policy")
    spec.refresh_from_db()
    assert spec.reward_backbone == "builtin:smollm2"


@pytest.mark.django_db
def test_demo_data_smollm2_asks_real_questions(fake_engine: Path) -> None:
    out = run("demo_data", "--model", "smollm2", "--prompts", "10", "--held-out", "4")
    assert "Demo: SmolLM2 real questions" in out
    project = Project.objects.get(name="Demo: SmolLM2 real questions")
    texts = [p.messages[-1]["content"] for p in project.prompts.order_by("id")]
    assert len(texts) == 14
    assert all(questions.question_for(t) is not None for t in texts)  # every answer is known
    assert project.prompts.filter(split=Split.TEST).count() == 4
    assert Checkpoint.objects.get(project=project, is_champion=True).model_spec.name == "smollm2"
    again = run("demo_data", "--model", "smollm2", "--prompts", "10", "--held-out", "4")
    assert "0 new comparisons" in again


@pytest.mark.django_db
def test_launch_round_inline_with_progress(judged_project: Any, fake_engine: Path) -> None:
    out = run("launch_round", judged_project.name, "--method", "dpo", "--inline")
    assert "round 1 succeeded" in out
    for step in ("reward", "policy", "evaluate", "generate"):
        assert f"{step:<10} succeeded" in out
    assert Round.objects.get().status == RoundStatus.SUCCEEDED
    with pytest.raises(CommandError, match=r"policy\.beta"):
        run("launch_round", str(judged_project.pk), "--config", '{"policy": {"beta": -1}}')


@pytest.mark.django_db
def test_launch_round_reports_a_failure(
    judged_project: Any, fake_engine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_FAIL", "reward")
    with pytest.raises(CommandError, match="reward exploded"):
        run("launch_round", judged_project.name, "--inline")


@pytest.mark.django_db
def test_generate_puts_checkpoint_samples_into_the_queue(
    demo_project: Any, fake_engine: Path
) -> None:
    out = run("generate", demo_project.name, "--prompts", "3", "--samples", "2")
    base = Checkpoint.objects.get(project=demo_project)
    assert f"checkpoint #{base.pk}: 3 prompts (train), 6 responses, 3 new comparisons" in out
    batch = Comparison.objects.filter(batch=f"generate:ckpt-{base.pk}")
    assert batch.count() == 3
    assert {c.response_a.checkpoint_ref for c in batch} == {str(base.pk)}


@pytest.mark.django_db
def test_run_loop_prints_a_row_per_round(demo_project: Any, fake_engine: Path) -> None:
    out = run("run_loop", demo_project.name, "--rounds", "2", "--noise", "0.2", "--annotators", "3")
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.lstrip().startswith("round"))
    rows = lines[header + 1 : header + 3]
    assert rows[0].split()[0] == "1" and rows[1].split()[0] == "2"
    # The fake engine's rule win-rate vs base, on 3 prompts x 8 samples, with its Wilson interval;
    # the reward model's agreement with the rule, the KL to the base and the fluency figures.
    assert "55.0% (36-73)" in rows[0]  # Wilson: 0.543 ± 0.185
    assert "80.0%" in rows[0] and "0.04" in rows[0] and "6.5/6.0" in rows[0]
    # The rule win-rate samples both policies at the generation temperature, 8 answers a prompt.
    first = Round.objects.get(number=1)
    spec_file = Path(
        settings.PAIRWISE_DATA_DIR, "runs", f"loop-eval-{first.pk}", "rule-eval.spec.json"
    )
    rule_eval = json.loads(spec_file.read_text())
    assert (rule_eval["temperature"], rule_eval["num_samples"]) == (1.0, 8)
    assert rule_eval["parent_adapter"] is None and rule_eval["rules"] == ["correct_polite"]
    assert Round.objects.filter(status=RoundStatus.SUCCEEDED).count() == 2
    second = Round.objects.get(number=2)
    # Iterative DPO (the default): round 2 trains on the batch round 1 put into the queue, judged.
    # Round 1's candidate did not clear the promotion gate (the fake engine's answers tie), so
    # round 2 starts from the base again and also keeps what round 1 trained on.
    batches = set(
        Judgment.objects.filter(pk__in=second.snapshot_judgment_ids).values_list(
            "comparison__batch", flat=True
        )
    )
    assert second.parent_checkpoint == first.parent_checkpoint
    assert batches == {"round-1:on-policy", "round-1:vs-champion", "demo"}
    assert set(first.snapshot_judgment_ids) < set(second.snapshot_judgment_ids)
    # Nothing was promoted: the loop delivers the base model; round 2 is not judged yet.
    assert "champion after the loop: the base model; round 2's candidate is not decided" in out
    assert "held back" not in out


@pytest.mark.django_db
def test_run_loop_says_which_candidates_the_gate_holds_back(
    demo_project: Any, fake_engine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every candidate's answers read 13.0 under the base model against its parent's 6.0: over
    # PAIRWISE_FLUENCY_RATIO (2x), so the gate holds each back whatever humans say.
    monkeypatch.setenv("FAKE_PERPLEXITY", "13.0")
    out = run("run_loop", demo_project.name, "--rounds", "2", "--annotators", "2")
    rows = [line for line in out.splitlines() if line.split()[:2] in (["1", "dpo"], ["2", "dpo"])]
    assert len(rows) == 2
    assert all(row.endswith("held back at the gate: fluency_collapse") for row in rows)
    assert "the gate holds it back whatever humans say (fluency_collapse)" in out
    assert services.checkpoint_champion(project=demo_project).adapter_path is None


@pytest.mark.django_db
def test_run_loop_decides_the_last_candidate_when_asked(
    demo_project: Any, fake_engine: Path
) -> None:
    out = run("run_loop", demo_project.name, "--rounds", "1", "--annotators", "2", "--decide", "6")
    (round_,) = Round.objects.filter(project=demo_project)
    # 6 more judgments after the round, all of its vs-champion pairs (served first); they train
    # nothing. The fake engine's answers tie, so humans say 50% and the gate keeps the base.
    decided = Judgment.objects.filter(comparison__batch=f"round-{round_.number}:vs-champion")
    assert decided.count() == 6
    assert (
        "round 1's candidate, judged after the loop (6 judgments): humans prefer it in 50.0%" in out
    )
    assert "of 6 vs the base model, not promoted" in out
    assert out.splitlines()[-1].startswith("champion after the loop: the base model")
    assert services.checkpoint_champion(project=demo_project).adapter_path is None


@pytest.mark.django_db
def test_run_loop_decide_forced_promotes_the_last_candidate(
    demo_project: Any, fake_engine: Path
) -> None:
    out = run(
        "run_loop", demo_project.name, "--rounds", "1", "--decide", "4", "--promote", "always"
    )
    (round_,) = Round.objects.filter(project=demo_project)
    assert services.checkpoint_champion(project=demo_project).pk == round_.checkpoint_id
    assert "champion after the loop: round 1;" in out and out.rstrip().endswith(", promoted")


def test_run_loop_refuses_a_negative_decide() -> None:
    with pytest.raises(CommandError, match="--decide must be >= 0"):
        run("run_loop", "x", "--decide", "-1")


@pytest.mark.django_db
def test_run_loop_creates_a_missing_demo_project(fake_engine: Path) -> None:
    run("run_loop", "fresh", "--rounds", "1", "--prompts", "4", "--held-out", "2")
    assert Round.objects.get(project__name="fresh").status == RoundStatus.SUCCEEDED


@pytest.mark.django_db(transaction=True)
def test_simulate_annotators_drives_the_http_api(live_server: Any, demo_project: Any) -> None:
    open_before = Comparison.objects.filter(project=demo_project).open().count()
    out = run(
        "simulate_annotators",
        str(demo_project.pk),
        "--annotators",
        "2",
        "--rule",
        "correct",
        "--noise",
        "0.1",
        "--limit",
        "7",
        "--url",
        live_server.url,
    )
    assert "7 judgments by 2 simulated annotators" in out
    judgments = Judgment.objects.filter(comparison__project=demo_project)
    assert judgments.count() == 7
    assert set(judgments.values_list("annotator__username", flat=True)) == {
        "sim-annotator-1",
        "sim-annotator-2",
    }
    assert Comparison.objects.filter(project=demo_project).open().count() == open_before - 7
    connection.close()


def test_simulate_annotators_finds_the_demo_server_by_port(
    live_server: Any, demo_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``make demo PORT=…`` off 8000: PORT in the environment is enough, no --url."""
    monkeypatch.delenv("PAIRWISE_URL", raising=False)
    monkeypatch.setenv("PORT", live_server.url.rsplit(":", 1)[1])
    out = run("simulate_annotators", str(demo_project.pk), "--annotators", "1", "--limit", "2")
    assert "2 judgments by 1 simulated annotators" in out
    connection.close()


def test_simulate_annotators_help_shows_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    from django.core.management import get_commands, load_command_class

    command = load_command_class(get_commands()["simulate_annotators"], "simulate_annotators")
    command.print_help("manage.py", "simulate_annotators")
    shown = capsys.readouterr().out
    assert "example" in shown
    assert 'simulate_annotators "Demo: helpful answers" --annotators 3' in shown
    assert "--url http://127.0.0.1:8001" in shown


def test_simulate_annotators_reports_an_unreachable_server(db: Any, demo_project: Any) -> None:
    with pytest.raises(CommandError, match="failed"):
        run("simulate_annotators", str(demo_project.pk), "--url", "http://127.0.0.1:9")


@pytest.mark.django_db
def test_reap_runs_marks_stale_runs_failed(judged_project: Any, fake_engine: Path) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from rlhf import runs, selectors
    from rlhf.models import TrainingRun

    round_ = services.round_launch(project=judged_project, method="dpo")
    step = selectors.round_runs(round_)[0]
    runs.training_run_claim(run_id=step.pk)
    TrainingRun.objects.filter(pk=step.pk).update(
        heartbeat_at=timezone.now() - timedelta(minutes=10)
    )
    assert f"reaped runs {step.pk}" in run("reap_runs")
    round_.refresh_from_db()
    assert round_.status == RoundStatus.FAILED and "no heartbeat" in round_.error


@pytest.mark.django_db
def test_launch_round_wait_follows_a_worker(
    judged_project: Any, fake_engine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rlhf import runner
    from rlhf.management.commands import launch_round

    def worker_runs_meanwhile(seconds: float) -> None:
        round_ = Round.objects.get()
        if round_.is_active:
            runner.round_drive(round_.pk)  # stands in for db_worker

    monkeypatch.setattr(launch_round.time, "sleep", worker_runs_meanwhile)
    out = run("launch_round", judged_project.name, "--method", "rloo", "--wait")
    assert "round 1 succeeded" in out
    assert "generate   succeeded" in out


@pytest.mark.django_db
def test_model_spec_command_creates_a_spec_and_sets_a_project_model(
    demo_project: Any, tmp_path: Path
) -> None:
    template = tmp_path / "template.jinja"
    template.write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    out = run("model_spec", "qwen", "--base-model", "Qwen/Qwen2.5-0.5B-Instruct", "--dtype",
              "bfloat16", "--chat-template-file", str(template), "--project", demo_project.name)  # fmt: skip
    assert "project 'demo' tunes it" in out
    spec = ModelSpec.objects.get(name="qwen")
    assert (spec.base_model, spec.dtype, spec.chat_template) == (
        "Qwen/Qwen2.5-0.5B-Instruct", "bfloat16", template.read_text(),
    )  # fmt: skip
    assert services.checkpoint_champion(project=demo_project).model_spec == spec
    with pytest.raises(CommandError, match="chat-template-file"):
        run("model_spec", "x", "--base-model", "m", "--chat-template-file", str(tmp_path / "no"))
    with pytest.raises(CommandError, match="base_model: base_model must not be empty"):
        run("model_spec", "x", "--base-model", " ")
    assert not ModelSpec.objects.filter(name="x").exists()


@pytest.mark.django_db
def test_a_project_model_changes_only_before_the_first_round(
    judged_project: Any, fake_engine: Path
) -> None:
    run("launch_round", judged_project.name, "--inline")
    with pytest.raises(CommandError, match="already has rounds on model"):
        run("model_spec", "other", "--base-model", "some/model", "--project", judged_project.name)
    assert services.checkpoint_champion(project=judged_project).model_spec.name != "other"


@pytest.mark.django_db
def test_a_project_model_changes_only_before_its_base_wrote_responses(demo_project: Any) -> None:
    base = services.checkpoint_base(project=demo_project)
    prompt = Prompt.objects.filter(project=demo_project).first()
    ResponseFactory.create(prompt=prompt, checkpoint_ref=str(base.pk))
    with pytest.raises(CommandError, match="already wrote responses"):
        run("model_spec", "other", "--base-model", "some/model", "--project", demo_project.name)
    base.refresh_from_db()
    assert base.model_spec.name != "other"


@pytest.mark.django_db(transaction=True)
def test_simulated_annotators_wait_out_the_submit_throttle(
    live_server: Any, demo_project: Any, settings: Any
) -> None:
    from rlhf.simulate import annotators_ensure, judge_over_http

    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**rates, "submit": "2/second"},
    }
    tokens = [token for _, token in annotators_ensure(demo_project, 1)]
    stats = judge_over_http(
        base_url=live_server.url,
        project_id=demo_project.pk,
        tokens=tokens,
        rule="correct",
        noise=0.0,
        limit=5,
    )
    assert stats.judged == 5
    assert Judgment.objects.filter(comparison__project=demo_project).count() == 5
    connection.close()
