"""Evaluation kept apart from training: held-out pairs stay out of the queue unless an admin asks
for human evaluation, evaluation-only generation and a checkpoint's samples, win-rates that name
their opponent, and the evaluate step's sampled reward-model figures (fake engine, fast)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.models import Choice, Comparison, Judgment, Response, Side, Split
from rlhf import services
from rlhf.methods import QUEUE_TIER
from rlhf.models import Checkpoint, CheckpointKind
from rlhf.training.stats import sampled_win_rate, wilson_interval
from tests.factories import UserFactory


@pytest.fixture
def admin_api(db: Any) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=UserFactory.create(username="boss", role="admin"))
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def newcomer(judged_project: Any) -> Any:
    """An annotator who has judged nothing yet: everything open is claimable for them."""
    user = UserFactory.create(username="newcomer")
    judged_project.annotators.add(user)
    return user


def _launch(api: APIClient, project: Any, capture: Any, config: dict[str, Any]) -> dict[str, Any]:
    with capture(execute=True):
        launched = api.post(
            f"/api/v1/projects/{project.pk}/rounds/", {"config": config}, format="json"
        )
    assert launched.status_code == 201, launched.json()
    detail = api.get(f"/api/v1/rounds/{launched.json()['id']}/").json()
    assert detail["status"] == "succeeded", detail["error"]
    return detail


def _claimable_held_out(annotator: Any, project: Any) -> list[Comparison]:
    claimable = Comparison.objects.filter(project=project).claimable_by(
        annotator, now=timezone.now()
    )
    return list(claimable.filter(prompt__split=Split.TEST, batch__startswith="round-"))


@pytest.mark.django_db
def test_a_round_leaves_no_claimable_held_out_pair_by_default(
    admin_api: APIClient, judged_project: Any, newcomer: Any, fake_engine: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    detail = _launch(admin_api, judged_project, django_capture_on_commit_callbacks, {})
    generate = detail["runs"][-1]["result"]["comparisons"]
    assert generate == {"vs_champion": 8, "on_policy": 8, "human_eval": 0, "held_out_prompts": 3}
    assert _claimable_held_out(newcomer, judged_project) == []
    # The held-out prompts were sampled all the same (kept for evaluation), by both sides.
    candidate = detail["checkpoint"]
    samples = admin_api.get(f"/api/v1/checkpoints/{candidate}/samples/?split=test").json()
    assert samples["count"] == 3 * 2
    parent = detail["parent_checkpoint"]
    assert admin_api.get(f"/api/v1/checkpoints/{parent}/samples/?split=test").json()["count"] == 3


@pytest.mark.django_db
def test_a_round_with_human_eval_queues_held_out_pairs_and_names_the_opponent(
    admin_api: APIClient, judged_project: Any, newcomer: Any, fake_engine: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    config = {"generate": {"human_eval": True}}
    detail = _launch(admin_api, judged_project, django_capture_on_commit_callbacks, config)
    assert detail["runs"][-1]["result"]["comparisons"]["human_eval"] == 3
    held_out = _claimable_held_out(newcomer, judged_project)
    assert len(held_out) == 3 and {c.batch for c in held_out} == {"round-1:human-eval"}
    # at the front, like vs-champion pairs: in round 1's queue tier
    assert all(c.priority == 1 * QUEUE_TIER + 100 for c in held_out)
    refs = {(c.response_a.checkpoint_ref, c.response_b.checkpoint_ref) for c in held_out}
    assert refs == {(str(detail["checkpoint"]), str(detail["parent_checkpoint"]))}
    listed = admin_api.get(f"/api/v1/projects/{judged_project.pk}/checkpoints/").json()
    candidate = next(c for c in listed if c["id"] == detail["checkpoint"])
    (evaluation,) = candidate["human_evaluations"]
    assert (evaluation["opponent"], evaluation["batch"], evaluation["pairs"]) == (
        detail["parent_checkpoint"], "round-1:human-eval", 3,
    )  # fmt: skip
    assert evaluation["requested_by"] == "round 1"


@pytest.mark.django_db
def test_the_round_config_refuses_a_negative_held_out_count(
    admin_api: APIClient, judged_project: Any
) -> None:
    bad = admin_api.post(
        f"/api/v1/projects/{judged_project.pk}/rounds/",
        {"config": {"generate": {"held_out_prompts": -1}}},
        format="json",
    )
    assert bad.status_code == 400 and bad.json()["field"] == "generate.held_out_prompts"
    wrong_kind = admin_api.post(
        f"/api/v1/projects/{judged_project.pk}/rounds/",
        {"config": {"generate": {"human_eval": "yes"}}},
        format="json",
    )
    assert wrong_kind.status_code == 400 and wrong_kind.json()["field"] == "generate.human_eval"


@pytest.mark.django_db
def test_send_a_checkpoint_vs_the_champion_to_human_evaluation(
    admin_api: APIClient, judged_project: Any, newcomer: Any, fake_engine: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    detail = _launch(admin_api, judged_project, django_capture_on_commit_callbacks, {})
    candidate, base = detail["checkpoint"], detail["parent_checkpoint"]
    before = Comparison.objects.count()
    sent = admin_api.post(f"/api/v1/checkpoints/{candidate}/human-eval/", {}, format="json")
    assert sent.status_code == 201, sent.json()
    assert sent.json() == {
        "checkpoint": candidate, "opponent": base, "batch": f"human-eval:{candidate}-vs-{base}",
        "created": 3, "pairs": 3, "held_out_prompts": 3, "missing": 0,
    }  # fmt: skip
    assert Comparison.objects.count() == before + 3
    held_out = Comparison.objects.filter(project=judged_project).claimable_by(
        newcomer, now=timezone.now()
    )
    assert held_out.filter(batch=f"human-eval:{candidate}-vs-{base}").count() == 3
    # at the front: in the newest round's queue tier, the default priority within it
    sent_pairs = held_out.filter(batch=f"human-eval:{candidate}-vs-{base}")
    assert set(sent_pairs.values_list("priority", flat=True)) == {1 * QUEUE_TIER + 100}
    again = admin_api.post(f"/api/v1/checkpoints/{candidate}/human-eval/", {}, format="json")
    assert again.status_code == 201 and again.json()["created"] == 0  # no pair twice
    assert Checkpoint.objects.get(pk=candidate).metrics["human_eval"][0]["pairs"] == 3

    # Bad requests say why and change nothing.
    reward = Checkpoint.objects.get(kind=CheckpointKind.REWARD, project=judged_project)
    for url, body, field in (
        (f"/api/v1/checkpoints/{base}/human-eval/", {}, "opponent"),  # the champion itself
        (f"/api/v1/checkpoints/{candidate}/human-eval/", {"opponent": 999999}, "opponent"),
        (f"/api/v1/checkpoints/{candidate}/human-eval/", {"opponent": reward.pk}, "opponent"),
        (f"/api/v1/checkpoints/{reward.pk}/human-eval/", {}, "checkpoint"),
        (f"/api/v1/checkpoints/{candidate}/human-eval/", {"priority": QUEUE_TIER}, "priority"),
    ):
        refused = admin_api.post(url, body, format="json")
        assert refused.status_code == 400, (url, refused.json())
        assert refused.json()["field"] == field
    assert Comparison.objects.count() == before + 3


@pytest.mark.django_db
def test_human_evaluation_needs_responses_of_both_sides(
    admin_api: APIClient, judged_project: Any, fake_engine: Path
) -> None:
    base = services.checkpoint_base(project=judged_project)
    other = Checkpoint.objects.create(
        project=judged_project, model_spec=base.model_spec, parent=base, adapter_dir="x"
    )
    refused = admin_api.post(f"/api/v1/checkpoints/{other.pk}/human-eval/", {}, format="json")
    assert refused.status_code == 400
    assert "no held-out prompt has responses of both" in refused.json()["error"]
    assert "eval-only" in refused.json()["error"]


@pytest.mark.django_db
def test_the_checkpoints_page_sends_to_human_evaluation(
    judged_project: Any, fake_engine: Path, django_capture_on_commit_callbacks: Any
) -> None:
    client = Client()
    client.force_login(UserFactory.create(username="boss", role="admin"))
    with django_capture_on_commit_callbacks(execute=True):
        round_ = services.round_launch(project=judged_project, method="dpo")
    round_.refresh_from_db()
    page = client.get(f"/projects/{judged_project.pk}/checkpoints/").content.decode()
    base = round_.parent_checkpoint_id
    assert f"Human evaluation vs #{base}" in page
    sent = client.post(f"/checkpoints/{round_.checkpoint_id}/human-eval/", follow=True)
    text = sent.content.decode()
    assert f"vs #{base}: 3 new comparisons at the front of the queue" in text
    assert f'data-human-eval="{base}"' in text


def _judge(project: Any, batch: str, winner_ref: str, *, times: int) -> None:
    """``times`` judges prefer ``winner_ref``'s response in every comparison of ``batch``."""
    for n in range(times):
        judge = UserFactory.create(username=f"judge-{batch}-{n}")
        for comparison in Comparison.objects.filter(project=project, batch=batch):
            won = Choice.A if comparison.response_a.checkpoint_ref == winner_ref else Choice.B
            Judgment.objects.create(
                annotator=judge, comparison=comparison, choice=won, shown_left=Side.A
            )


@pytest.mark.django_db
def test_promoting_another_checkpoint_keeps_each_win_rate_and_its_named_opponent(
    admin_api: APIClient, judged_project: Any, fake_engine: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    config = {"generate": {"human_eval": True}}
    detail = _launch(admin_api, judged_project, django_capture_on_commit_callbacks, config)
    candidate, base = detail["checkpoint"], detail["parent_checkpoint"]
    _judge(judged_project, "round-1:human-eval", str(candidate), times=2)
    url = f"/api/v1/projects/{judged_project.pk}/checkpoints/"

    def figures() -> dict[str, Any]:
        return next(c for c in admin_api.get(url).json() if c["id"] == candidate)

    before = figures()
    assert before["human_win_rate"]["opponent"] == base
    assert (before["human_win_rate"]["wins"], before["human_win_rate"]["judged"]) == (6, 6)
    assert before["human_win_rate_vs_champion"]["opponent"] == base  # the base is champion
    assert before["human_evaluations"][0]["opponent"] == base

    rival = Checkpoint.objects.create(
        project=judged_project, model_spec=Checkpoint.objects.get(pk=base).model_spec,
        parent_id=base, adapter_dir="checkpoints/rival",
    )  # fmt: skip
    services.checkpoint_promote(checkpoint=rival, force=True)
    after = figures()
    # The figure against its parent and the human evaluation keep their opponent and counts ...
    assert after["human_win_rate"] == before["human_win_rate"]
    assert after["human_evaluations"] == before["human_evaluations"]
    # ... and the champion's figure names the new champion (never met: nothing judged).
    assert after["human_win_rate_vs_champion"]["opponent"] == rival.pk
    assert after["human_win_rate_vs_champion"]["judged"] == 0
    client = Client()
    client.force_login(UserFactory.create(username="viewer", role="admin"))
    page = client.get(f"/projects/{judged_project.pk}/checkpoints/").content.decode()
    assert f"human win-rate vs #{base} (its parent" in page
    assert f"human win-rate vs #{rival.pk} (the current champion)" in page
    assert f"Human evaluation vs #{base}" in page


def run(*args: Any) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_evaluation_only_generation_by_command_enqueues_nothing(
    admin_api: APIClient, demo_project: Any, fake_engine: Path
) -> None:
    before = Comparison.objects.count()
    out = run("generate", demo_project.name, "--eval-only", "--samples", "2")
    base = services.checkpoint_champion(project=demo_project)
    assert f"checkpoint #{base.pk}: 3 prompts (test), 6 responses, 0 new comparisons" in out
    assert "(evaluation only)" in out
    assert Comparison.objects.count() == before
    samples = admin_api.get(f"/api/v1/checkpoints/{base.pk}/samples/").json()
    assert samples["count"] == 6
    first = samples["results"][0]
    assert first["split"] == "test" and first["text"].startswith("fake answer")
    assert first["generation_params"] == {"t": 1} and first["seed"] in (0, 1)
    assert first["messages"] and first["prompt"]
    # The queue mode keeps held-out pairs apart too: only the training prompts' pairs enter.
    out = run("generate", demo_project.name, "--split", "all", "--prompts", "11", "--seed", "1")
    assert "8 new comparisons, 3 held-out prompts kept out of the queue" in out
    new = Comparison.objects.filter(batch=f"generate:ckpt-{base.pk}")
    assert new.count() == 8 and not new.filter(prompt__split=Split.TEST).exists()
    with pytest.raises(CommandError, match="--checkpoint"):
        run("generate", demo_project.name, "--checkpoint", "999999")
    with pytest.raises(CommandError, match="--samples"):
        run("generate", demo_project.name, "--samples", "0")


@pytest.mark.django_db
def test_evaluation_only_generation_by_api_and_the_samples_endpoint(
    admin_api: APIClient, demo_project: Any, fake_engine: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    base = services.checkpoint_base(project=demo_project)
    before = Comparison.objects.count()
    url = f"/api/v1/checkpoints/{base.pk}/generate/"
    with django_capture_on_commit_callbacks(execute=True):
        queued = admin_api.post(url, {"samples": 3, "temperature": 0.7}, format="json")
    assert queued.status_code == 202, queued.json()
    assert queued.json()["eval_only"] is True and queued.json()["split"] == "test"
    assert queued.json()["job"] is None  # the immediate backend keeps no results
    assert Comparison.objects.count() == before  # evaluation only: nothing in the queue
    samples_url = f"/api/v1/checkpoints/{base.pk}/samples/"
    assert admin_api.get(samples_url).json()["count"] == 3 * 3
    page = admin_api.get(samples_url, {"split": "test", "limit": "4"}).json()
    assert page["count"] == 9 and len(page["results"]) == 4 and page["next"]
    assert admin_api.get(samples_url, {"split": "train"}).json()["count"] == 0
    assert {r["split"] for r in page["results"]} == {"test"}
    stored = Response.objects.filter(checkpoint_ref=str(base.pk))
    assert stored.count() == 9 and {r.prompt.split for r in stored} == {Split.TEST}

    # Bad input: 400 naming the field, nothing enqueued or stored.
    for body, field in (
        ({"split": "nope"}, "split"),
        ({"samples": 0}, "samples"),
        ({"temperature": 0, "samples": 2}, "samples"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"prompts": "many"}, "prompts"),
    ):
        with django_capture_on_commit_callbacks(execute=True):
            refused = admin_api.post(url, body, format="json")
        assert refused.status_code == 400, body
        assert refused.json()["field"] == field, refused.json()
    assert Response.objects.filter(checkpoint_ref=str(base.pk)).count() == 9
    assert admin_api.get(samples_url, {"split": "held"}).status_code == 400
    assert admin_api.get("/api/v1/checkpoints/999999/samples/").status_code == 404


DB_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}


@pytest.mark.django_db
def test_the_generate_api_names_its_job_and_the_job_endpoint_follows_it(
    admin_api: APIClient, demo_project: Any, fake_engine: Path, settings: Any
) -> None:
    settings.TASKS = DB_TASKS
    base = services.checkpoint_base(project=demo_project)
    queued = admin_api.post(
        f"/api/v1/checkpoints/{base.pk}/generate/", {"samples": 2}, format="json"
    )
    assert queued.status_code == 202, queued.json()
    job = queued.json()["job"]
    assert job and queued["Location"] == f"/api/v1/jobs/{job}/"
    waiting = admin_api.get(queued["Location"]).json()
    assert waiting["status"] == "READY" and waiting["task"] == "checkpoint_generate"
    assert waiting["result"] is None and waiting["started_at"] is None
    call_command("db_worker", "--batch", "--queue-name", "*", "--no-startup-delay", verbosity=0)
    done = admin_api.get(queued["Location"]).json()
    assert done["status"] == "SUCCESSFUL", done
    assert done["result"] == {"prompts": 3, "responses": 6, "comparisons": 0, "held_out_prompts": 3}
    assert done["finished_at"] and done["errors"] == []
    assert Response.objects.filter(checkpoint_ref=str(base.pk)).count() == 6
    # A refused request enqueues no job; unknown or malformed ids are 404; annotators get 403.
    from django_tasks_db.models import DBTaskResult

    jobs = DBTaskResult.objects.count()
    refused = admin_api.post(
        f"/api/v1/checkpoints/{base.pk}/generate/", {"samples": 0}, format="json"
    )
    assert refused.status_code == 400 and DBTaskResult.objects.count() == jobs
    assert admin_api.get("/api/v1/jobs/4a1c63f0-0000-4000-8000-000000000000/").status_code == 404
    assert admin_api.get("/api/v1/jobs/not-a-uuid/").status_code == 404
    annotator = APIClient()
    annotator.force_authenticate(UserFactory.create(username="ann-jobs", role="annotator"))
    assert annotator.get(queued["Location"]).status_code == 403


@pytest.mark.django_db
def test_the_round_shows_sampled_reward_model_figures_vs_base_and_champion(
    admin_api: APIClient, judged_project: Any, fake_engine: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    config = {"evaluate": {"sampled_per_prompt": 2, "sample_temperature": 0.8}}
    detail = _launch(admin_api, judged_project, django_capture_on_commit_callbacks, config)
    base = detail["parent_checkpoint"]
    evaluate_run = detail["runs"][2]
    spec_opponents = {"base": "", "champion": ""}  # round 1: the champion is the base itself
    assert evaluate_run["result"]["sampled"]["base"]["checkpoint"] == base
    reward = detail["signals"]["reward_model"]
    assert [s["opponent"] for s in reward["sampled"]] == list(spec_opponents)
    assert [s["checkpoint"] for s in reward["sampled"]] == [base, base]
    first = reward["sampled"][0]
    assert (first["samples_per_prompt"], first["temperature"], first["pairs"]) == (2, 0.8, 6)
    assert first["lower"] < first["win_rate"] < first["upper"]
    assert reward["sampled_says"].startswith(
        "Reward model says (2 samples a prompt at temperature 0.8): new policy wins 67% vs "
        f"base #{base} (6 pairs on 3 prompts, 95% interval 21"
    )
    client = Client()
    client.force_login(UserFactory.create(username="viewer", role="admin"))
    page = client.get(f"/rounds/{detail['id']}/").content.decode()
    assert 'data-testid="signal-reward-model-sampled"' in page
    assert f"vs champion #{base}" in page


@pytest.mark.django_db
def test_the_evaluate_step_names_the_base_and_the_champion_of_its_time(
    judged_project: Any, fake_engine: Path, django_capture_on_commit_callbacks: Any
) -> None:
    base = services.checkpoint_base(project=judged_project)
    champion = Checkpoint.objects.create(
        project=judged_project, model_spec=base.model_spec, parent=base,
        adapter_dir=str(fake_engine / "champion-adapter"),
    )  # fmt: skip
    Path(fake_engine / "champion-adapter").mkdir()
    services.checkpoint_promote(checkpoint=champion, force=True)
    with django_capture_on_commit_callbacks(execute=True):
        round_ = services.round_launch(project=judged_project, method="dpo")
    round_.refresh_from_db()
    assert round_.checkpoint is not None
    evaluate_spec = round_.runs.get(step="evaluate").spec["evaluate"]
    assert evaluate_spec["opponents"] == {"base": "", "champion": champion.adapter_path}
    sampled = round_.checkpoint.metrics["evaluate"]["sampled"]
    assert {label: f["checkpoint"] for label, f in sampled.items()} == {
        "base": base.pk, "champion": champion.pk,
    }  # fmt: skip


def test_sampled_win_rate_counts_prompts_as_trials() -> None:
    # Two prompts, two samples each: prompt 1 won both, prompt 2 one tie and one loss.
    figures = sampled_win_rate([[1.0, 2.0], [0.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]])
    assert (figures["wins"], figures["losses"], figures["ties"], figures["pairs"]) == (2, 1, 1, 4)
    assert figures["win_rate"] == pytest.approx(2.5 / 4)
    # The interval is Wilson's over the 2 prompts (1.0 and 0.25 won), not over the 4 pairs.
    assert (figures["lower"], figures["upper"]) == pytest.approx(wilson_interval(1.25, 2))
    assert figures["upper"] - figures["lower"] > (
        wilson_interval(2.5, 4)[1] - wilson_interval(2.5, 4)[0]
    )
    empty = sampled_win_rate([], [])
    assert empty["win_rate"] is None and empty["pairs"] == 0
