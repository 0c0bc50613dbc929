"""Queue order of the pairs rounds generate: the newest round's batch (what the next round trains
on) is served before older rounds' leftovers; ``uncertainty`` projects reorder by the reward model."""

from __future__ import annotations

import importlib
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from labeling import services as labeling_services
from labeling.models import Assignment, Comparison, Judgment, Project
from rlhf import runner, selectors, services
from rlhf.demo import demo_project_create
from rlhf.methods import QUEUE_TIER, REWARD_DEFAULTS
from rlhf.models import ModelSpec, Round, RoundStatus, resolve_data_path
from rlhf.prioritize import priorities, uncertainty_score
from rlhf.runner import read_jsonl
from rlhf.selectors import batch_priority
from rlhf.simulate import annotators_ensure, judge_in_process
from tests.factories import UserFactory
from tests.rlhf.test_api import token_client
from tests.rlhf.test_full_round import TINY, tiny_models  # noqa: F401 (a fixture)


def _round_through_api(client: APIClient, project: Project, capture: Any) -> int:
    with capture(execute=True):
        launched = client.post(
            f"/api/v1/projects/{project.pk}/rounds/",
            # every judged comparison counts (round 1's batch is still unjudged)
            {"method": "dpo", "config": {"snapshot": {"rounds": "all"}}},
            format="json",
        )
    assert launched.status_code == 201, launched.json()
    detail = client.get(f"/api/v1/rounds/{launched.json()['id']}/").json()
    assert detail["status"] == "succeeded"
    return int(detail["number"])


def _served_batches(client: APIClient, project: Project, count: int) -> list[str]:
    """The batches of the next ``count`` comparisons the queue serves (each one skipped)."""
    batches = []
    for _ in range(count):
        lease = client.post(f"/api/v1/projects/{project.pk}/queue/next/")
        assert lease.status_code == 200
        batches.append(Comparison.objects.get(pk=lease.json()["comparison"]).batch)
        skipped = client.post(f"/api/v1/projects/{project.pk}/queue/skip/")
        assert skipped.status_code == 200, skipped.content
    return batches


@pytest.mark.django_db
def test_after_round_2_generates_its_pairs_are_served_before_round_1_leftovers(
    judged_project: Project, fake_engine: Path, django_capture_on_commit_callbacks: Any
) -> None:
    admin = token_client(UserFactory.create(username="boss", role="admin"))
    assert _round_through_api(admin, judged_project, django_capture_on_commit_callbacks) == 1
    round_1 = Comparison.objects.filter(project=judged_project, batch__startswith="round-1:")
    assert round_1.open().count() == round_1.count() > 0  # round 1's batch is left unjudged
    assert _round_through_api(admin, judged_project, django_capture_on_commit_callbacks) == 2
    round_2 = Comparison.objects.filter(project=judged_project, batch__startswith="round-2:")
    assert round_2.count() > 0
    annotator = UserFactory.create(username="labeler")
    judged_project.annotators.add(annotator)
    served = _served_batches(token_client(annotator), judged_project, round_2.count() + 1)
    # round 2's batch first (its vs-champion pairs, then its on-policy ones), then round 1's
    expected = sorted(round_2.values_list("batch", flat=True), key=lambda b: b.endswith("policy"))
    assert served[:-1] == expected
    assert served[-1] == "round-1:vs-champion"
    assert not Assignment.objects.filter(annotator=annotator, status="active").exists()


def test_batch_priority_tiers_by_round() -> None:
    assert batch_priority(2, 0) > batch_priority(1, QUEUE_TIER - 1) > batch_priority(0, 100)


# --- uncertainty projects ------------------------------------------------------------------------


def test_uncertainty_score_is_highest_for_equal_rewards_and_for_disagreement_with_votes() -> None:
    assert uncertainty_score(1.0, 1.0) == 1.0
    assert uncertainty_score(0.5, 0.0) > uncertainty_score(3.0, 0.0) > uncertainty_score(9.0, 0.0)
    assert uncertainty_score(3.0, 0.0) == uncertainty_score(0.0, 3.0)
    # votes decided b, the model is sure of a: as early as an uncertain pair
    assert uncertainty_score(9.0, 0.0, decided="b") > 0.99
    # votes decided a and the model agrees: nothing to learn
    assert uncertainty_score(9.0, 0.0, decided="a") == uncertainty_score(9.0, 0.0)


def test_the_pairs_information_ranks_before_its_margin() -> None:
    import math

    # equal rewards but no information (a likely tie): last, not first
    assert uncertainty_score(1.0, 1.0, information=0.0) == 0.0
    assert uncertainty_score(5.0, 0.0, information=math.log(2)) == pytest.approx(1.0)
    assert uncertainty_score(5.0, 0.0, information=0.2) == pytest.approx(0.2 / math.log(2))
    assert uncertainty_score(1.0, 1.0, information=0.2) < uncertainty_score(
        5.0, 0.0, information=0.3
    )
    # disagreement with the votes still counts
    assert uncertainty_score(9.0, 0.0, decided="b", information=0.0) > 0.99


@pytest.mark.django_db
def test_priorities_keep_the_round_tier_and_rank_disagreement_with_votes(
    demo_project: Project,
) -> None:
    demo_project.judgments_per_comparison = 3
    demo_project.save(update_fields=["judgments_per_comparison"])
    first, second, third = Comparison.objects.filter(project=demo_project).order_by("id")[:3]
    Comparison.objects.filter(pk=third.pk).update(
        batch="round-2:on-policy", priority=batch_priority(2, 90)
    )
    voter = UserFactory.create()
    Judgment.objects.create(
        annotator=voter, comparison=second, choice="b", strength=3, shown_left="a"
    )
    scores = [
        {"id": str(first.pk), "reward_a": 2.0, "reward_b": 0.0},  # fairly sure, no votes
        {"id": str(second.pk), "reward_a": 2.0, "reward_b": 0.0},  # as sure, against the vote
        {"id": str(third.pk), "reward_a": 9.0, "reward_b": 0.0},  # sure, but the newest batch
    ]
    ranked = priorities(demo_project, scores)
    assert ranked[third.pk] // QUEUE_TIER == 2 and ranked[first.pk] // QUEUE_TIER == 0
    assert ranked[third.pk] > ranked[second.pk] > ranked[first.pk]
    assert ranked[second.pk] == round(uncertainty_score(2.0, 0.0, "b") * (QUEUE_TIER - 1))


@pytest.fixture
def half_judged(demo_project: Project) -> Project:
    """The demo project with half of its comparisons judged: the rest are open leftovers."""
    users = [user for user, _ in annotators_ensure(demo_project, 2)]
    total = Comparison.objects.filter(project=demo_project).count()
    judge_in_process(
        project=demo_project, annotators=users, rule="correct_polite", noise=0.0, limit=total // 2
    )
    return demo_project


def _launch_and_run(project: Project, capture: Any) -> Round:
    with capture(execute=True):
        round_ = services.round_launch(
            project=project, method="dpo", config={"snapshot": {"rounds": "all"}}
        )
    round_.refresh_from_db()
    assert round_.status == RoundStatus.SUCCEEDED, round_.error
    return round_


@pytest.mark.django_db
def test_uncertainty_project_is_reordered_after_the_reward_and_generate_steps(
    half_judged: Project, fake_engine: Path, django_capture_on_commit_callbacks: Any
) -> None:
    judged_project = half_judged
    labeling_services.project_queue_order_set(project=judged_project, queue_order="uncertainty")
    leftovers = list(Comparison.objects.filter(project=judged_project).open().order_by("id"))
    assert leftovers
    round_ = _launch_and_run(judged_project, django_capture_on_commit_callbacks)
    reward_run, *_, generate_run = selectors.round_runs(round_)
    # after the reward step: every open comparison then scored (fake reward: word count)
    assert reward_run.result["queue_rescore"] == {
        "scored": len(leftovers),
        "changed": len(leftovers),
    }
    reward_scores = read_jsonl(Path(resolve_data_path(reward_run.run_dir), "queue-scores.jsonl"))
    assert {int(r["id"]) for r in reward_scores} == {c.pk for c in leftovers}
    assert (
        generate_run.result["queue_rescore"]["scored"]
        == Comparison.objects.open().filter(project=judged_project).count()
    )
    workdir = Path(resolve_data_path(generate_run.run_dir))
    rewards = {
        int(r["id"]): (r["reward_a"], r["reward_b"])
        for r in read_jsonl(workdir / "queue-scores.jsonl")
    }
    open_now = Comparison.objects.open().filter(project=judged_project)
    for comparison in open_now:
        within = round(uncertainty_score(*rewards[comparison.pk]) * (QUEUE_TIER - 1))
        tier = 1 if comparison.batch.startswith("round-1:") else 0
        assert comparison.priority == batch_priority(tier, within)
    # served first: the newest batch's pair with the closest rewards
    newest = [c for c in open_now if c.batch.startswith("round-1:")]
    closest = min(newest, key=lambda c: (abs(rewards[c.pk][0] - rewards[c.pk][1]), c.pk))
    annotator = UserFactory.create(username="labeler")
    judged_project.annotators.add(annotator)
    lease = token_client(annotator).post(f"/api/v1/projects/{judged_project.pk}/queue/next/")
    assert lease.json()["comparison"] == closest.pk


def _spec(run_dir: str, name: str) -> dict[str, Any]:
    return json.loads(Path(resolve_data_path(run_dir), f"{name}.spec.json").read_text())


@pytest.mark.django_db
def test_an_uncertainty_projects_reward_step_keeps_its_members_and_the_queue_is_scored_by_them(
    half_judged: Project, fake_engine: Path, django_capture_on_commit_callbacks: Any
) -> None:
    labeling_services.project_queue_order_set(project=half_judged, queue_order="uncertainty")
    round_ = _launch_and_run(half_judged, django_capture_on_commit_callbacks)
    reward_run, *_, generate_run = selectors.round_runs(round_)
    reward_spec = _spec(reward_run.run_dir, "reward")
    assert reward_spec["members"] == REWARD_DEFAULTS["members"] == 3
    assert reward_spec["keep_members"] is True
    assert round_.reward_checkpoint is not None
    stored = round_.reward_checkpoint.metrics["member_dirs"]
    assert len(stored) == 3 and not any(Path(d).is_absolute() for d in stored)  # data-relative
    members = [resolve_data_path(d) for d in stored]
    assert all(Path(m).is_dir() for m in members)
    for run in (reward_run, generate_run):  # both rescorings hand the score step the members
        assert _spec(run.run_dir, "queue-score")["members"] == members


@pytest.mark.django_db
def test_fifo_projects_keep_no_members_and_a_configured_count_wins(
    half_judged: Project, fake_engine: Path, django_capture_on_commit_callbacks: Any
) -> None:
    fifo = _launch_and_run(half_judged, django_capture_on_commit_callbacks)
    fifo_spec = _spec(selectors.round_runs(fifo)[0].run_dir, "reward")
    assert fifo_spec["members"] == 3 and fifo_spec["keep_members"] is False  # averaged, not kept
    assert not fifo.reward_checkpoint.metrics["member_dirs"]  # type: ignore[union-attr]
    labeling_services.project_queue_order_set(project=half_judged, queue_order="uncertainty")
    with django_capture_on_commit_callbacks(execute=True):
        single = services.round_launch(
            project=half_judged,
            method="dpo",
            config={"snapshot": {"rounds": "all"}, "reward": {"members": 1}},
        )
    single.refresh_from_db()
    assert single.status == RoundStatus.SUCCEEDED, single.error
    reward_run = selectors.round_runs(single)[0]
    # one member: nothing to keep; the score step falls back to the head's dropout ensemble
    assert _spec(reward_run.run_dir, "reward")["keep_members"] is False
    assert _spec(reward_run.run_dir, "queue-score")["members"] == []


@pytest.mark.django_db
def test_a_member_count_out_of_range_is_refused_at_launch_by_its_field(
    half_judged: Project, fake_engine: Path
) -> None:
    admin = token_client(UserFactory.create(username="boss", role="admin"))
    rounds = Round.objects.count()
    for value in (0, 9, "two"):
        response = admin.post(
            f"/api/v1/projects/{half_judged.pk}/rounds/",
            {"method": "dpo", "config": {"reward": {"members": value}}},
            format="json",
        )
        assert response.status_code == 400, response.content
        assert "reward.members" in response.content.decode()
    assert Round.objects.count() == rounds


@pytest.mark.django_db
def test_fifo_project_priorities_are_untouched_and_nothing_is_scored(
    half_judged: Project, fake_engine: Path, django_capture_on_commit_callbacks: Any
) -> None:
    judged_project = half_judged
    before = dict(Comparison.objects.filter(project=judged_project).values_list("pk", "priority"))
    round_ = _launch_and_run(judged_project, django_capture_on_commit_callbacks)
    after = dict(
        Comparison.objects.filter(project=judged_project, pk__in=before).values_list(
            "pk", "priority"
        )
    )
    assert after == before
    for run in selectors.round_runs(round_):
        assert "queue_rescore" not in run.result
        assert not Path(resolve_data_path(run.run_dir), "queue-pairs.jsonl").exists()
    new = Comparison.objects.filter(project=judged_project).exclude(pk__in=before)
    assert {c.priority for c in new} == {QUEUE_TIER + 100, QUEUE_TIER + 90}


@pytest.mark.django_db
def test_a_failed_rescore_is_recorded_and_the_round_goes_on(
    half_judged: Project,
    fake_engine: Path,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    judged_project = half_judged
    monkeypatch.setenv("FAKE_FAIL", "score")
    labeling_services.project_queue_order_set(project=judged_project, queue_order="uncertainty")
    before = dict(Comparison.objects.filter(project=judged_project).values_list("pk", "priority"))
    round_ = _launch_and_run(judged_project, django_capture_on_commit_callbacks)
    for run in (selectors.round_runs(round_)[0], selectors.round_runs(round_)[-1]):
        assert "score exploded" in run.result["queue_rescore"]["error"]
    after = dict(
        Comparison.objects.filter(project=judged_project, pk__in=before).values_list(
            "pk", "priority"
        )
    )
    assert after == before


@pytest.mark.training
@pytest.mark.django_db
def test_after_a_real_reward_step_the_most_informative_pair_is_served_first(
    tiny_models: Path,  # noqa: F811 (the fixture imported above)
    data_dir: Path,
    settings: Any,
) -> None:
    """The tiny built-in models, the real engine in a child process: a few seconds."""
    settings.PAIRWISE_HEARTBEAT_S = 1
    spec = ModelSpec.objects.create(
        name="tiny",
        base_model=str(tiny_models / "policy"),
        reward_backbone=str(tiny_models / "reward-backbone"),
        device="cpu",
    )
    project = demo_project_create(
        name="uncertain", train_prompts=6, held_out_prompts=0, annotators=()
    ).project
    project.checkpoints.all().delete()
    services.checkpoint_base(project=project, model_spec=spec)
    users = [user for user, _ in annotators_ensure(project, 2)]
    total = Comparison.objects.filter(project=project).count()
    judge_in_process(
        project=project, annotators=users, rule="correct_polite", noise=0.0, limit=total // 2
    )
    labeling_services.project_queue_order_set(project=project, queue_order="uncertainty")
    before = dict(Comparison.objects.open().filter(project=project).values_list("pk", "priority"))
    assert before and set(before.values()) == {0}
    round_ = services.round_launch(project=project, method="dpo", config=TINY)
    reward_run = selectors.round_runs(round_)[0]
    assert runner.training_run_execute(reward_run.pk) == "succeeded"  # the reward step only
    reward_run.refresh_from_db()
    assert reward_run.result["queue_rescore"] == {"scored": len(before), "changed": len(before)}
    scores = read_jsonl(Path(resolve_data_path(reward_run.run_dir), "queue-scores.jsonl"))
    information = {int(r["id"]): r["information"] for r in scores}
    assert set(information) == set(before) and len(set(information.values())) > 1
    after = dict(Comparison.objects.filter(pk__in=before).values_list("pk", "priority"))
    assert after != before
    # a pair with more information never ranks below one with less (open pairs have no votes)
    ranked = sorted(before, key=lambda pk: (-after[pk], pk))
    # (the priority keeps 6 digits of information / ln 2)
    assert all(
        information[first] >= information[second] - 2e-6
        for first, second in itertools.pairwise(ranked)
    )
    annotator = UserFactory.create(username="labeler")
    project.annotators.add(annotator)
    lease = token_client(annotator).post(f"/api/v1/projects/{project.pk}/queue/next/")
    assert information[lease.json()["comparison"]] >= max(information.values()) - 2e-6


@pytest.mark.django_db
def test_the_migration_moves_queued_round_batches_into_their_tier_once(
    demo_project: Project,
) -> None:
    from django.apps import apps

    migration = importlib.import_module("rlhf.migrations.0007_round_batches_tiered")
    old, new, imported = Comparison.objects.filter(project=demo_project).order_by("id")[:3]
    Comparison.objects.filter(pk=old.pk).update(batch="round-1:on-policy", priority=90)
    Comparison.objects.filter(pk=new.pk).update(batch="round-2:vs-champion", priority=100)
    Comparison.objects.filter(pk=imported.pk).update(batch="import", priority=5)
    for _ in range(2):  # a second run changes nothing
        migration.tiered(apps, None)
        tiers = dict(Comparison.objects.values_list("pk", "priority"))
        assert tiers[old.pk] == QUEUE_TIER + 90 and tiers[new.pk] == 2 * QUEUE_TIER + 100
        assert tiers[imported.pk] == 5
