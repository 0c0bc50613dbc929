"""Admin workflows of the model side: launching, cancelling and retrying rounds, promoting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from labeling.models import Choice, Judgment, Side
from labeling.services import Conflict, LabelingError
from rlhf import loop, runner, runs, selectors, services
from rlhf.models import Checkpoint, CheckpointKind, Round, RoundStatus, RunStatus
from tests.factories import ComparisonFactory, PromptFactory, ResponseFactory, UserFactory
from tests.rlhf.test_api import token_client


@pytest.mark.django_db
def test_cancel_of_a_queued_round_is_immediate(judged_project: Any, fake_engine: Path) -> None:
    round_ = services.round_launch(project=judged_project, method="dpo")  # never committed
    services.round_cancel(round=round_)
    round_.refresh_from_db()
    assert round_.status == RoundStatus.CANCELLED
    assert set(round_.runs.values_list("status", flat=True)) == {RunStatus.CANCELLED}


@pytest.mark.django_db
def test_one_active_round_per_project(judged_project: Any, fake_engine: Path) -> None:
    services.round_launch(project=judged_project, method="dpo")
    with pytest.raises(Conflict):
        services.round_launch(project=judged_project, method="dpo")


@pytest.mark.django_db
def test_launch_needs_judgments_and_checks_config(demo_project: Any, fake_engine: Path) -> None:
    with pytest.raises(LabelingError) as empty:
        services.round_launch(project=demo_project, method="dpo")
    assert empty.value.field == "config"
    with pytest.raises(LabelingError) as bad:
        services.round_launch(project=demo_project, method="dpo", config={"policy": {"betta": 1}})
    assert bad.value.field == "policy.betta"
    with pytest.raises(LabelingError) as method:
        services.round_launch(project=demo_project, method="ppo")
    assert method.value.field == "method"


@pytest.mark.django_db
def test_launch_enqueues_its_first_step_on_commit(
    judged_project: Any,
    fake_engine: Path,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    executed: list[int] = []
    monkeypatch.setattr(runner, "training_run_execute", lambda run_id: executed.append(run_id))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        round_ = services.round_launch(project=judged_project, method="dpo")
    assert executed == []  # nothing runs before the round's rows are committed
    reward, *later = selectors.round_runs(round_)
    assert [reward.status, *(run.status for run in later)] == [RunStatus.QUEUED] * 4
    assert round_.status == RoundStatus.QUEUED
    for callback in callbacks:
        callback()
    assert executed == [reward.pk]


@pytest.mark.django_db
def test_retry_refuses_a_round_that_is_not_failed_or_cancelled(
    judged_project: Any, fake_engine: Path
) -> None:
    round_ = services.round_launch(project=judged_project, method="dpo")
    with pytest.raises(Conflict, match="only a failed or cancelled round"):
        services.round_retry(round=round_)
    services.round_cancel(round=round_)
    with pytest.raises(Conflict, match="only an active round"):
        services.round_cancel(round=round_)


@pytest.mark.django_db
def test_cancel_of_a_running_round_only_flags_the_running_step(
    judged_project: Any, fake_engine: Path
) -> None:
    round_ = services.round_launch(project=judged_project, method="dpo")
    reward = runs.training_run_claim(run_id=selectors.round_runs(round_)[0].pk)
    assert reward is not None
    services.round_cancel(round=round_)
    round_.refresh_from_db()
    reward.refresh_from_db()
    assert round_.status == RoundStatus.RUNNING  # until the runner stops the child
    assert reward.status == RunStatus.RUNNING and reward.cancel_requested
    assert [r.status for r in selectors.round_runs(round_)[1:]] == [RunStatus.CANCELLED] * 3


@pytest.mark.django_db
def test_only_a_policy_checkpoint_can_be_promoted(judged_project: Any) -> None:
    base = services.checkpoint_champion(project=judged_project)
    reward = Checkpoint.objects.create(
        project=judged_project, model_spec=base.model_spec, kind=CheckpointKind.REWARD
    )
    with pytest.raises(LabelingError, match="only a policy checkpoint"):
        services.checkpoint_promote(checkpoint=reward)
    candidate = Checkpoint.objects.create(
        project=judged_project, model_spec=base.model_spec, parent=base, adapter_dir="x"
    )
    services.checkpoint_promote(checkpoint=candidate, force=True)
    assert Checkpoint.objects.champion_of(judged_project) == candidate
    assert list(Checkpoint.objects.filter(is_champion=True)) == [candidate]


# --- the promotion gate --------------------------------------------------------------------------


def judged_pairs(
    candidate: Checkpoint, champion: Checkpoint, *, wins: int, losses: int, ties: int = 0
) -> None:
    """That many judged comparisons between the two checkpoints' responses (one annotator each
    time; the candidate alternately shown as a and b)."""
    annotator = UserFactory.create()
    outcomes = ["win"] * wins + ["loss"] * losses + ["tie"] * ties
    judgments = []
    for index, outcome in enumerate(outcomes):
        prompt = PromptFactory.create(project=candidate.project)
        mine = ResponseFactory.create(prompt=prompt, checkpoint_ref=str(candidate.pk))
        theirs = ResponseFactory.create(prompt=prompt, checkpoint_ref=str(champion.pk))
        flipped = index % 2 == 1
        a, b = (theirs, mine) if flipped else (mine, theirs)
        comparison = ComparisonFactory.create(
            project=candidate.project, prompt=prompt, response_a=a, response_b=b,
            batch="round-1:vs-champion",
        )  # fmt: skip
        if outcome == "tie":
            choice = Choice.TIE
        else:
            choice = Choice.A if (outcome == "win") != flipped else Choice.B
        judgments.append(
            Judgment(annotator=annotator, comparison=comparison, choice=choice, shown_left=Side.A)
        )
    Judgment.objects.bulk_create(judgments)


@pytest.fixture
def candidate(demo_project: Any) -> Checkpoint:
    base = services.checkpoint_champion(project=demo_project)
    return Checkpoint.objects.create(
        project=demo_project, model_spec=base.model_spec, parent=base, adapter_dir="x"
    )


@pytest.mark.django_db
def test_a_clear_winner_is_promoted_and_the_evidence_recorded(candidate: Checkpoint) -> None:
    base = services.checkpoint_champion(project=candidate.project)
    judged_pairs(candidate, base, wins=38, losses=10, ties=4)
    services.checkpoint_promote(checkpoint=candidate, promoted_by="alice")
    candidate.refresh_from_db()
    assert candidate.is_champion
    record = candidate.metrics["promotion"]
    assert record["forced"] is False and record["by"] == "alice"
    assert (record["wins"], record["losses"], record["ties"]) == (38, 10, 4)
    assert record["previous_champion"] == base.pk and record["lower"] > 0.5
    assert "lies above 50%" in record["verdict"]
    services.checkpoint_promote(checkpoint=candidate)  # already champion: nothing to decide


@pytest.mark.django_db
def test_the_gate_is_shown_before_anyone_asks(candidate: Checkpoint) -> None:
    """The checkpoints page and API carry the verdict the promote button would get: the same
    words, the same count of pairs that would decide it."""
    admin = UserFactory.create(username="boss", role="admin")
    admin_client, admin_api = Client(), token_client(admin)
    admin_client.force_login(admin)
    base = services.checkpoint_champion(project=candidate.project)
    judged_pairs(candidate, base, wins=103, losses=88)
    standing = selectors.checkpoint_standings(candidate.project_id, [base, candidate])
    gate = standing.by_checkpoint[candidate.pk].gate
    assert standing.by_checkpoint[base.pk].gate is None  # the champion has nothing to pass
    with pytest.raises(services.PromotionRefused) as refused:
        services.checkpoint_promote(checkpoint=candidate)
    assert gate == refused.value.verdict and gate is not None and not gate.passed
    page = admin_client.get(f"/projects/{candidate.project_id}/checkpoints/").content.decode()
    assert 'data-gate="refuses"' in page and f"Promotion gate vs #{base.pk}" in page
    assert f"about {gate.more_pairs} more judged pairs would decide it" in page
    listed = admin_api.get(f"/api/v1/projects/{candidate.project_id}/checkpoints/").json()
    by_id = {c["id"]: c for c in listed}
    assert by_id[base.pk]["gate"] is None
    assert by_id[candidate.pk]["gate"] == {
        "champion": base.pk,
        "passed": False,
        "reason": gate.reason,
        "more_pairs": gate.more_pairs,
    }
    judged_pairs(candidate, base, wins=60, losses=10)  # now clearly better
    page = admin_client.get(f"/projects/{candidate.project_id}/checkpoints/").content.decode()
    assert 'data-gate="passes"' in page and "lies above 50%" in page


@pytest.mark.django_db
def test_a_54_percent_candidate_is_refused_with_the_reason(
    candidate: Checkpoint, caplog: Any
) -> None:
    base = services.checkpoint_champion(project=candidate.project)
    judged_pairs(candidate, base, wins=103, losses=88)
    with pytest.raises(services.PromotionRefused) as refused:
        services.checkpoint_promote(checkpoint=candidate)
    message = refused.value.message
    assert refused.value.status == 409
    assert f"humans preferred #{candidate.pk} over #{base.pk} in 54% of 191 judged pairs" in message
    assert "the 95% interval 47%\u201361% includes 50%" in message
    more = refused.value.verdict.more_pairs
    assert more is not None and 300 < more < 500
    assert f"about {more} more judged pairs would decide it" in message
    assert Checkpoint.objects.champion_of(candidate.project) == base
    candidate.refresh_from_db()
    assert "promotion" not in candidate.metrics  # a refusal changes nothing

    with caplog.at_level("WARNING", logger="rlhf.services"):
        services.checkpoint_promote(checkpoint=candidate, force=True, promoted_by="boss")
    assert Checkpoint.objects.champion_of(candidate.project) == candidate
    candidate.refresh_from_db()
    record = candidate.metrics["promotion"]
    assert record["forced"] is True and record["by"] == "boss"
    assert "includes 50%" in record["verdict"]
    assert any("FORCED" in r.getMessage() and "boss" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db
def test_the_bar_is_a_setting(candidate: Checkpoint, settings: Any) -> None:
    base = services.checkpoint_champion(project=candidate.project)
    judged_pairs(candidate, base, wins=38, losses=10)
    settings.PAIRWISE_PROMOTION_MIN_LOWER_BOUND = 0.7
    with pytest.raises(services.PromotionRefused, match="includes 70%"):
        services.checkpoint_promote(checkpoint=candidate)
    settings.PAIRWISE_PROMOTION_MIN_LOWER_BOUND = 0.6
    services.checkpoint_promote(checkpoint=candidate)
    assert Checkpoint.objects.champion_of(candidate.project) == candidate


@pytest.mark.django_db
def test_the_gate_reads_the_current_champion_not_the_parent(candidate: Checkpoint) -> None:
    """A checkpoint that beat its parent but never met the champion since promoted is refused."""
    base = services.checkpoint_champion(project=candidate.project)
    judged_pairs(candidate, base, wins=40, losses=5)
    rival = Checkpoint.objects.create(
        project=candidate.project, model_spec=base.model_spec, parent=base, adapter_dir="y"
    )
    services.checkpoint_promote(checkpoint=rival, force=True)
    with pytest.raises(services.PromotionRefused, match=f"judged no pair of #{candidate.pk}"):
        services.checkpoint_promote(checkpoint=candidate)
    policies = list(Checkpoint.objects.filter(project=candidate.project))
    standings = selectors.checkpoint_standings(candidate.project_id, policies)
    assert standings.champion_id == rival.pk
    standing = standings.by_checkpoint[candidate.pk]
    assert standing.opponent_id == base.pk and standing.vs_opponent.wins == 40
    assert standing.vs_champion.judged == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("evaluate", "blocked"),
    [
        ({"perplexity_base_candidate": 21.5, "perplexity_base_parent": 2.6}, "far less fluent"),
        ({"perplexity_base_candidate": 40.0, "perplexity_base_parent": 2.6,
          "mean_length_candidate": 1.0, "mean_length_parent": 12.0}, "far less fluent"),
        ({"perplexity_base_candidate": 4.8, "perplexity_base_parent": 2.6,
          "mean_length_candidate": 9.0, "mean_length_parent": 12.0}, None),
        # briefer by half under a preference for brief answers: a warning, not a block
        ({"perplexity_base_candidate": 12.5, "perplexity_base_parent": 10.6,
          "mean_length_candidate": 12.4, "mean_length_parent": 27.25}, None),
    ],
)  # fmt: skip
def test_a_collapsed_round_is_held_back_whatever_humans_say(
    candidate: Checkpoint, evaluate: dict[str, float], blocked: str | None
) -> None:
    """Humans (a rule that likes short answers) may prefer word salad: the round's fluency flag
    holds the checkpoint back, the reason says so, and force still promotes; a length flag
    alone only warns."""
    base = services.checkpoint_champion(project=candidate.project)
    candidate.metrics = {"evaluate": evaluate}
    candidate.save(update_fields=["metrics"])
    Round.objects.create(
        project=candidate.project, number=1, parent_checkpoint=base, checkpoint=candidate,
        status=RoundStatus.SUCCEEDED, snapshot_hash="0" * 64, snapshot_size=190,
    )  # fmt: skip
    judged_pairs(candidate, base, wins=38, losses=10)
    if blocked is None:
        round_ = Round.objects.get(checkpoint=candidate)
        codes = {flag.code for flag in selectors.round_signals(round_).flags}
        assert "fluency_collapse" not in codes
        assert ("length_collapse" in codes) is (
            evaluate["mean_length_candidate"] < 0.5 * evaluate["mean_length_parent"]
        )
        services.checkpoint_promote(checkpoint=candidate)
        assert Checkpoint.objects.champion_of(candidate.project) == candidate
        return
    with pytest.raises(services.PromotionRefused) as refused:
        services.checkpoint_promote(checkpoint=candidate)
    message = refused.value.message
    assert "lies above 50%; but its round raised a warning that holds it back" in message
    assert blocked in message and message.endswith("An admin can promote anyway with force.")
    assert ". ." not in message and ".." not in message
    assert Checkpoint.objects.champion_of(candidate.project) == base
    services.checkpoint_promote(checkpoint=candidate, force=True, promoted_by="boss")
    candidate.refresh_from_db()
    assert candidate.is_champion and candidate.metrics["promotion"]["forced"] is True
    assert blocked in candidate.metrics["promotion"]["verdict"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("wins", "losses", "promote", "promoted", "forced"),
    [
        (40, 10, "auto", True, False),
        (103, 88, "auto", False, False),  # 54% of 191: the interval includes 50%
        (103, 88, "always", True, True),
        (40, 10, "never", False, False),
    ],
)
def test_the_loop_promotes_through_the_gate(
    pending_candidate: Checkpoint,
    wins: int,
    losses: int,
    promote: str,
    promoted: bool,
    forced: bool,
) -> None:
    candidate, demo_project = pending_candidate, pending_candidate.project
    base = services.checkpoint_champion(project=demo_project)
    judged_pairs(candidate, base, wins=wins, losses=losses)
    rate, did = loop._decide_promotion(demo_project, promote)
    assert did is promoted and rate is not None and rate.judged == wins + losses
    champion = Checkpoint.objects.champion_of(demo_project)
    assert champion == (candidate if promoted else base)
    candidate.refresh_from_db()
    if promoted:
        assert candidate.metrics["promotion"]["forced"] is forced
        assert candidate.metrics["promotion"]["by"] == f"run_loop --promote {promote}"
    else:
        assert "promotion" not in candidate.metrics
