"""A round's training data IS the export of its snapshot: same rows, same preference hash.

Judgments become preferences in one place (``labeling.preferences``). Here three noisy annotators
make ties, both-bad votes, 1-1 splits and mixed strengths; rounds run on the fake engine
(round 1 on the whole history with split policies, round 2 iterative on round 1's batch, with
judgments made after its launch that it must not see, round 3 KTO, round 4 with votes weighed by
Dawid-Skene reliability and a planted random annotator's votes dropped). Exporting each round's
snapshot through the public API, with the filters the round page links to, gives exactly the rows
its steps trained on and the hash the round shows; its test split at the reward step's
``eval_fraction`` and seed 0, exactly the pairs the reward model was scored on.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils.html import escape
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling import reliability
from labeling.errors import LabelingError
from labeling.models import Judgment, Project, Split
from labeling.roles import ADMIN_GROUP
from rlhf import selectors, services
from rlhf.models import Round, RoundStatus, Step
from rlhf.simulate import annotators_ensure, judge_in_process
from rlhf.training import data
from rlhf.training.specs import RewardSpec
from tests.factories import UserFactory

User = get_user_model()


def _admin_api() -> APIClient:
    admin = UserFactory.create(username="exporter", role=ADMIN_GROUP)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=admin).key}")
    return client


def _trained_rows(round_: Round, data_dir: Path, step: str = Step.POLICY) -> list[dict[str, Any]]:
    """The rows the round's policy (or reward) step was given."""
    files = {
        run.step: Path(data_dir, run.run_dir, name).read_text(encoding="utf-8")
        for run in selectors.round_runs(round_)
        for name in ("preferences.jsonl", "kto.jsonl")
        if run.step in (Step.REWARD, Step.POLICY) and Path(data_dir, run.run_dir, name).exists()
    }
    assert set(files) == {Step.REWARD, Step.POLICY}  # KTO: reward on pairs, policy on kto.jsonl
    return [json.loads(line) for line in files[step].splitlines()]


def _exported(
    api: APIClient, round_: Round, link: str = "snapshot_export"
) -> tuple[list[dict[str, Any]], str]:
    """The export of the round's snapshot (rows, in the engine's row shape) and its card;
    ``link="reward_snapshot_export"``: of its reward model's snapshot."""
    path = api.get(f"/api/v1/rounds/{round_.pk}/").json()[link]
    url = (
        selectors.round_export_url
        if link == "snapshot_export"
        else selectors.round_reward_export_url
    )
    assert path == url(round_)
    card = api.get(path + "&card=1")
    assert card.status_code == 200
    return _export_rows(api, path), card.content.decode()


def _shared(row: dict[str, Any]) -> dict[str, Any]:
    """A row the engine was given, without what only the engine reads (the prompt's primary key,
    its place for the held-out split)."""
    return {k: v for k, v in row.items() if k not in ("prompt_id", "split_position")}


def _export_rows(api: APIClient, path: str, **params: str) -> list[dict[str, Any]]:
    """The rows of the export at ``path`` (with ``params`` in place of its own), in the engine's
    row shape."""
    if params:
        url, query = path.split("?", 1)
        path = f"{url}?{urlencode({**dict(parse_qsl(query)), **params})}"
    response = api.get(path)
    assert response.status_code == 200
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    return [
        {
            "prompt": row["prompt"],
            "completion": row["completion"][0]["content"],
            "label": row["label"],
            "weight": row["weight"],
        }
        if "completion" in row
        else {
            "prompt": row["prompt"],
            "chosen": row["chosen"][0]["content"],
            "rejected": row["rejected"][0]["content"],
            "margin": row["margin"],
            "weight": row["weight"],
        }
        for row in map(json.loads, body.splitlines())
    ]


def _planted_random(project: Project) -> Any:
    """An annotator who judged every judged comparison of ``project`` at random."""
    rng = random.Random(5)
    user = UserFactory.create(username="planted-random")
    judged = Judgment.objects.filter(comparison__project=project)
    Judgment.objects.bulk_create(
        Judgment(
            annotator=user,
            comparison_id=comparison_id,
            choice=rng.choice(["a", "b", "tie", "both_bad"]),
            shown_left=rng.choice("ab"),
        )
        for comparison_id in sorted(set(judged.values_list("comparison_id", flat=True)))
    )
    return user


def _launch(project: Project, method: str, config: dict[str, Any], capture: Any) -> Round:
    with capture(execute=True):
        round_ = services.round_launch(project=project, method=method, config=config)
    round_.refresh_from_db()
    assert round_.status == RoundStatus.SUCCEEDED, round_.error
    return round_


@pytest.mark.django_db
def test_a_rounds_training_rows_are_the_export_of_its_snapshot(
    demo_project: Project, fake_engine: Path, django_capture_on_commit_callbacks: Any
) -> None:
    demo_project.judgments_per_comparison = 3
    demo_project.save()
    users = [user for user, _ in annotators_ensure(demo_project, 3)]
    judge_in_process(project=demo_project, annotators=users, rule="correct_polite", noise=0.45)
    outcomes = set(Judgment.objects.values_list("choice", flat=True))
    assert outcomes >= {"a", "b", "tie"}, outcomes  # the data exercises the rules
    api = _admin_api()

    capture = django_capture_on_commit_callbacks
    first = _launch(
        demo_project,
        "dpo",
        {"snapshot": {"rounds": "all", "ties": "split", "both_bad": "split"}},
        capture,
    )
    # Judge round 1's batch, launch round 2 on it (iterative DPO: rounds "newest"), then judge
    # more: round 2's snapshot was frozen at launch.
    judge_in_process(
        project=demo_project, annotators=users, rule="correct_polite", noise=0.3, limit=30, seed=7
    )
    # (the fake engine writes the same text for both sides: round 1's batch is judged a tie)
    # Round 1's checkpoint is promoted, so round 2 takes its batch alone (a candidate the gate
    # holds back keeps the batches before it: test_runner's newest-batch tests).
    assert first.checkpoint is not None
    services.checkpoint_promote(checkpoint=first.checkpoint, force=True)
    second = _launch(demo_project, "dpo", {"snapshot": {"ties": "split"}}, capture)
    judge_in_process(
        project=demo_project, annotators=users, rule="correct_polite", noise=0.3, limit=10, seed=9
    )
    # KTO on the whole history: completions, both-bad answers undesirable (its default)
    third = _launch(demo_project, "kto", {"snapshot": {"rounds": "all"}}, capture)
    # A planted annotator answering at random on every judged comparison; round 4 weighs votes
    # by Dawid-Skene reliability and drops the annotators under the planted one's score.
    planted = _planted_random(demo_project)
    ids = selectors.snapshot_judgment_ids(demo_project, {"rounds": "all"})
    scores = reliability.annotator_weights(
        Judgment.objects.filter(pk__in=ids)
        .order_by("comparison_id", "id")
        .values_list("comparison_id", "annotator__username", "choice"),
        "dawid_skene",
    )
    assert min(scores, key=scores.__getitem__) == planted.username
    drop_below = round(scores[planted.username] + 0.0001, 4)
    fourth = _launch(
        demo_project,
        "dpo",
        {
            "snapshot": {
                "rounds": "all",
                "annotator_weights": "dawid_skene",
                "drop_below": drop_below,
            }
        },
        capture,
    )

    for round_ in (first, second, third, fourth):
        trained = _trained_rows(round_, fake_engine)
        assert len(trained) == round_.snapshot_size > 0
        exported, card = _exported(api, round_)
        assert exported == [_shared(row) for row in trained]
        assert selectors.snapshot_hash(trained) == round_.snapshot_hash
        assert f"`{round_.snapshot_hash}`" in card
        page = Client()
        page.force_login(User.objects.get(username="exporter"))
        html = page.get(f"/rounds/{round_.pk}/").content.decode()
        assert round_.snapshot_hash[:14] in html
        assert escape(selectors.round_export_url(round_)) in html
        # The reward model's rows: the whole history (snapshot.reward_rounds "all"), up to launch.
        reward_rows = _trained_rows(round_, fake_engine, Step.REWARD)
        assert len(reward_rows) == round_.reward_snapshot_size > 0
        exported, card = _exported(api, round_, "reward_snapshot_export")
        assert exported == [_shared(row) for row in reward_rows]
        assert selectors.snapshot_hash(reward_rows) == round_.reward_snapshot_hash
        assert f"`{round_.reward_snapshot_hash}`" in card
        assert escape(selectors.round_reward_export_url(round_)) in html
        # What the reward model trained on is the train split of the same export at test_size =
        # reward.eval_fraction and seed 0 (with the rows above: it was scored on the rest). An
        # export estimates reliability weights on the split it writes, so under them the weights
        # differ, not the pairs.
        fraction = round_.config["reward"].get("eval_fraction", RewardSpec.eval_fraction)
        train, held_out = data.split(reward_rows, fraction)
        assert train and held_out
        reward_export = selectors.round_reward_export_url(round_)
        reweighed = "annotator_weights=" in reward_export
        assert [
            {k: v for k, v in row.items() if not (reweighed and k == "weight")}
            for row in _export_rows(
                api, reward_export, split="train", test_size=str(fraction), seed="0"
            )
        ] == [{k: v for k, v in _shared(row).items() if not (reweighed and k == "weight")}
              for row in train]  # fmt: skip
        if round_ == first:  # no held-out prompt (split: test) judged yet: the test split is all
            assert not Judgment.objects.filter(
                comparison__prompt__split=Split.TEST, pk__lte=max(round_.reward_judgment_ids)
            ).exists()
            assert _export_rows(
                api, reward_export, split="test", test_size=str(fraction), seed="0"
            ) == [_shared(row) for row in held_out]
    assert fourth.snapshot_export["annotator_weights"] == "dawid_skene"
    assert fourth.snapshot_export["drop_below"] == str(drop_below)
    unweighted = selectors.preference_rows(fourth.snapshot_judgment_ids, {"rounds": "all"})
    weighted = _trained_rows(fourth, fake_engine)
    assert [row["weight"] for row in weighted] != [row["weight"] for row in unweighted]
    assert third.snapshot_export["format"] == "kto_conversational"
    assert {row["label"] for row in _trained_rows(third, fake_engine)} == {True, False}
    # round 2's policy saw only round 1's batch, its reward model everything judged before it
    assert second.snapshot_export["round"] == "1"
    assert "round" not in second.reward_snapshot_export
    assert second.reward_snapshot_size > second.snapshot_size
    assert set(second.snapshot_judgment_ids) < set(second.reward_judgment_ids)
    # round 1 split its ties (both orders at half weight)
    pairs = {
        (json.dumps(r["prompt"]), r["chosen"], r["rejected"])
        for r in _trained_rows(first, fake_engine)
    }
    assert any((p, rejected, chosen) in pairs for p, chosen, rejected in pairs)  # both orders


@pytest.mark.django_db
def test_newest_reaches_back_when_the_latest_batch_is_too_small(
    demo_project: Project,
    fake_engine: Path,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:
    """Iterative DPO takes the latest round's batch; when that holds fewer rows than a round
    needs (a rule-like taste on a policy that answers alike gives mostly ties), the batches before
    it join, newest first, instead of stopping the loop; the export still gives the trained rows."""
    users = [user for user, _ in annotators_ensure(demo_project, 3)]
    judge_in_process(project=demo_project, annotators=users, rule="correct_polite", noise=0.2)
    capture = django_capture_on_commit_callbacks
    first = _launch(demo_project, "dpo", {}, capture)
    judge_in_process(
        project=demo_project, annotators=users, rule="correct_polite", noise=0.2, limit=4, seed=3
    )
    latest_only = len(
        selectors.training_rows(
            "dpo",
            selectors.snapshot_judgment_ids(demo_project, first.config["snapshot"], [1]),
            first.config["snapshot"],
        )
    )
    settings.PAIRWISE_MIN_SNAPSHOT = latest_only + 1
    assert first.snapshot_size >= settings.PAIRWISE_MIN_SNAPSHOT  # round 0's batch is enough
    second = _launch(demo_project, "dpo", {}, capture)
    assert second.config["snapshot"]["rounds"] == "newest"
    assert second.snapshot_export["round"] == "1,0"
    assert second.snapshot_size > latest_only
    assert set(first.snapshot_judgment_ids) < set(second.snapshot_judgment_ids)
    exported, _ = _exported(_admin_api(), second)
    trained = _trained_rows(second, fake_engine)
    assert exported == [_shared(row) for row in trained]
    # a batch nobody judged yet is not passed over: the launch says to judge it
    settings.PAIRWISE_MIN_SNAPSHOT = 10_000
    with pytest.raises(LabelingError, match="latest round queued: judge them first"):
        services.round_launch(project=demo_project, method="dpo")
    # judged, but even the whole history is too small: it says how many more are needed
    judge_in_process(
        project=demo_project, annotators=users, rule="correct_polite", noise=0.2, seed=5
    )
    with pytest.raises(LabelingError, match=r"judge \d+ more decided comparisons"):
        services.round_launch(project=demo_project, method="dpo")
