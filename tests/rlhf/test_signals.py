"""A round's signals: each figure by its source, plain-word flags, and the snapshot-size gate."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from labeling.errors import LabelingError
from labeling.models import Choice, Judgment, Side
from rlhf import selectors, services
from rlhf.models import Round
from rlhf.signals import online_refused, reward_pairs_withheld
from tests.factories import (
    ComparisonFactory,
    ProjectFactory,
    PromptFactory,
    ResponseFactory,
    UserFactory,
)
from tests.rlhf.test_api import token_client

HX = {"HX-Request": "true"}


@pytest.fixture
def admin_client(db: Any) -> Client:
    client = Client()
    client.force_login(UserFactory.create(username="boss", role="admin"))
    return client


@pytest.fixture
def admin_api(db: Any) -> APIClient:
    return token_client(UserFactory.create(username="boss-api", role="admin"))


@pytest.fixture
def clean_round(round_history: Any, settings: Any) -> Round:
    """A finished round whose figures raise no flag: an accurate reward model on many held-out
    pairs, a small KL, a big snapshot, humans agreeing (one judged pair, the new policy won)."""
    settings.PAIRWISE_MIN_SNAPSHOT = 50
    settings.PAIRWISE_KL_WARN = 1.0
    (round_,) = round_history(ProjectFactory.create(), 1)
    _set(round_, accuracy=0.8, pairs=200, win_rate=0.6, kl=0.05, snapshot=120)
    return round_


def _set(
    round_: Round,
    *,
    accuracy: float | None = None,
    pairs: int | None = None,
    win_rate: float | None = None,
    kl: float | None = None,
    snapshot: int | None = None,
    **evaluate_figures: float,
) -> None:
    reward, policy = round_.reward_checkpoint, round_.checkpoint
    assert reward is not None and policy is not None
    if accuracy is not None:
        reward.metrics = {**reward.metrics, "eval_accuracy": accuracy, "num_eval": pairs}
        reward.save(update_fields=["metrics"])
    evaluate = dict(policy.metrics.get("evaluate", {}))
    if win_rate is not None:
        evaluate["win_rate"] = win_rate
    if kl is not None:
        evaluate["kl"] = kl
    evaluate.update(evaluate_figures)
    policy.metrics = {**policy.metrics, "evaluate": evaluate}
    policy.save(update_fields=["metrics"])
    if snapshot is not None:
        Round.objects.filter(pk=round_.pk).update(snapshot_size=snapshot)


def _judge(round_: Round, choice: str, *, new_on_a: bool, times: int = 1) -> None:
    """Judge ``times`` pairs of the round's new checkpoint vs its parent."""
    new, parent = str(round_.checkpoint_id), str(round_.parent_checkpoint_id)
    a_ref, b_ref = (new, parent) if new_on_a else (parent, new)
    for _ in range(times):
        prompt = PromptFactory.create(project=round_.project)
        comparison = ComparisonFactory.create(
            project=round_.project,
            prompt=prompt,
            response_a=ResponseFactory.create(prompt=prompt, checkpoint_ref=a_ref),
            response_b=ResponseFactory.create(prompt=prompt, checkpoint_ref=b_ref),
            batch=f"round-{round_.number}:vs-champion",
        )
        Judgment.objects.create(
            annotator=UserFactory.create(), comparison=comparison, choice=choice, shown_left=Side.A
        )


def _signals(round_: Round) -> dict[str, Any]:
    """The signals of the round alone; those of the round within its project's list must agree."""
    rounds = list(Round.objects.select_related("checkpoint", "reward_checkpoint"))
    listed = selectors.round_human_tallies(rounds).get(round_.pk)
    alone = selectors.round_signals(next(r for r in rounds if r.pk == round_.pk))
    in_list = selectors.round_signals(next(r for r in rounds if r.pk == round_.pk), listed)
    assert alone.as_dict() == in_list.as_dict()
    return alone.as_dict()


def _codes(signals: dict[str, Any]) -> list[str]:
    return [flag["code"] for flag in signals["flags"]]


@pytest.mark.django_db
def test_a_clean_round_raises_no_flag(clean_round: Round) -> None:
    signals = _signals(clean_round)
    assert signals["flags"] == []
    reward = signals["reward_model"]
    assert reward["says"].startswith("Reward model says: new policy wins 60% vs parent")
    assert "held-out accuracy 80% on 200 pairs, 95% interval 74%\N{EN DASH}85%" in reward["says"]
    assert signals["humans"]["judged"] == 1 and signals["humans"]["rate"] == 1.0
    assert signals["humans"]["says"].startswith("Humans say: 100% of 1 judged new-vs-parent")


@pytest.mark.django_db
def test_a_reward_model_near_a_coin_is_flagged(clean_round: Round) -> None:
    _set(clean_round, accuracy=0.6, pairs=20)
    signals = _signals(clean_round)
    assert _codes(signals) == ["reward_model_coin"]
    assert "barely better than a coin on 20 held-out pairs" in signals["flags"][0]["message"]
    assert "not evidence" in signals["flags"][0]["message"]
    # the same accuracy on many pairs is evidence
    _set(clean_round, accuracy=0.6, pairs=1000)
    assert _codes(_signals(clean_round)) == []


@pytest.mark.parametrize(
    ("metrics", "minimum", "withheld"),
    [
        ({"eval_accuracy": 0.5, "num_eval": 22}, 0.5, "was 50% on 22 pairs, not above 50%"),
        ({"eval_accuracy": 0.42, "num_eval": 40}, 0.5, "was 42% on 40 pairs"),
        ({"eval_accuracy": 0.55, "num_eval": 40}, 0.6, "was 55% on 40 pairs, not above 60%"),
        ({"eval_accuracy": 0.51, "num_eval": 22}, 0.5, None),
        ({"eval_accuracy": 0.5, "num_eval": 22}, 0.0, None),
        ({"eval_accuracy": 0.5, "num_eval": 0}, 0.5, None),  # nothing held out: no evidence
        ({}, 0.5, None),
        (None, 0.5, None),
    ],
)
def test_reward_pairs_are_withheld_from_a_reward_model_not_above_the_bar(
    metrics: dict[str, Any] | None, minimum: float, withheld: str | None
) -> None:
    reason = reward_pairs_withheld(metrics, minimum)
    if withheld is None:
        assert reason is None
    else:
        assert reason is not None and withheld in reason
        assert "did not train the new policy" in reason and "judgments alone" in reason


def test_online_rl_is_refused_a_reward_model_not_above_the_bar_and_told_how_to_go_on() -> None:
    reason = online_refused({"eval_accuracy": 0.45, "num_eval": 30}, 0.5)
    assert reason is not None
    assert (
        "would train on noise: its held-out accuracy was 45% on 30 pairs, not above 50%" in reason
    )
    assert "Judge more pairs" in reason and "policy.reward_min_accuracy to 0" in reason
    assert online_refused({"eval_accuracy": 0.45, "num_eval": 30}, 0.0) is None
    assert online_refused({"eval_accuracy": 0.7, "num_eval": 30}, 0.5) is None
    assert online_refused({"eval_accuracy": 0.45, "num_eval": 0}, 0.5) is None


@pytest.mark.django_db
@pytest.mark.parametrize(("kl", "code"), [(2.5, "kl_high"), (-0.2, "kl_negative"), (0.9, None)])
def test_kl_to_the_parent_is_flagged_when_high_or_impossible(
    clean_round: Round, kl: float, code: str | None
) -> None:
    _set(clean_round, kl=kl)
    signals = _signals(clean_round)
    assert _codes(signals) == ([code] if code else [])
    if code == "kl_negative":
        assert "negative" in signals["flags"][0]["message"]
        assert "cannot be below zero" in signals["flags"][0]["message"]


@pytest.mark.django_db
def test_a_kl_estimate_far_from_its_direct_computation_is_flagged(clean_round: Round) -> None:
    # GRPO's collapse: the estimate said 0.75 while the answers changed completely
    _set(clean_round, kl=0.75, kl_direct=6.0)
    signals = _signals(clean_round)
    assert _codes(signals) == ["kl_estimate_off", "kl_high"]
    assert "(0.750) disagrees with the direct computation" in signals["flags"][0]["message"]
    assert "KL 6.000 > 1" in signals["flags"][1]["message"]
    assert signals["reward_model"]["kl_to_parent_direct"] == 6.0
    # close enough: no flag
    _set(clean_round, kl=0.3, kl_direct=0.4)
    assert _codes(_signals(clean_round)) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("figures", "code"),
    [
        ({"perplexity_base_candidate": 45.0, "perplexity_base_parent": 9.0}, "fluency_collapse"),
        ({"perplexity_base_candidate": 12.0, "perplexity_base_parent": 9.0}, None),
        ({"mean_length_candidate": 2.0, "mean_length_parent": 11.0}, "length_collapse"),
        ({"mean_length_candidate": 8.0, "mean_length_parent": 11.0}, None),
    ],
)
def test_word_salad_and_one_token_answers_are_flagged(
    clean_round: Round, figures: dict[str, float], code: str | None
) -> None:
    _set(clean_round, **figures)  # type: ignore[arg-type]
    signals = _signals(clean_round)
    assert _codes(signals) == ([code] if code else [])
    if code == "fluency_collapse":
        assert "perplexity on them is 45.0 vs 9.0" in signals["flags"][0]["message"]


def _sampled(candidate: float, base: float, champion: float = 6.8) -> dict[str, Any]:
    figures = {"win_rate": 0.8, "lower": 0.7, "upper": 0.9, "pairs": 40, "prompts": 10,
               "samples_per_prompt": 4, "temperature": 1.0}  # fmt: skip
    return {
        "base": {
            **figures,
            "perplexity_base_candidate": candidate,
            "perplexity_base_opponent": base,
        },
        "champion": {
            **figures,
            "perplexity_base_candidate": candidate,
            "perplexity_base_opponent": champion,
        },
    }


@pytest.mark.django_db
def test_sampled_word_salad_is_flagged_though_the_greedy_answers_read_well(
    clean_round: Round,
) -> None:
    """Measured: polite's round 3 greedy answers had the base model's perplexity at 2.8 (parent
    2.6) while its samples, which annotators are served, had 15.5 against the base's own 2.8.
    Over 3.5x is the same fluency flag, and it blocks promotion."""
    _set(clean_round, perplexity_base_candidate=2.8, perplexity_base_parent=2.6,
         sampled=_sampled(15.5, 2.8))  # type: ignore[arg-type]  # fmt: skip
    signals = _signals(clean_round)
    assert _codes(signals) == ["fluency_collapse"]
    message = signals["flags"][0]["message"]
    assert "sampled answers" in message and "15.5 vs 2.8" in message
    base = next(one for one in signals["reward_model"]["sampled"] if one["opponent"] == "base")
    assert (base["perplexity_under_base"], base["opponent_perplexity_under_base"]) == (15.5, 2.8)
    assert clean_round.checkpoint is not None
    assert [flag.code for flag in selectors.promotion_blockers(clean_round.checkpoint)] == [
        "fluency_collapse"
    ]
    # measured candidates that read as their parents did: correct_polite's round 1 at 5.8
    # (2.1x the base's own samples) and formatted's round 3 at 8.3 (3.0x)
    for fluent in (5.8, 8.3):
        _set(clean_round, sampled=_sampled(fluent, 2.8))  # type: ignore[arg-type]
        assert _codes(_signals(clean_round)) == []
    # greedy and sampled both collapsed: one flag, the greedy figures (against the base model's
    # own samples, 2.8, which read worse than the parent's greedy answers, 2.6)
    _set(clean_round, perplexity_base_candidate=9.0, sampled=_sampled(15.5, 2.8))  # type: ignore[arg-type]
    signals = _signals(clean_round)
    assert _codes(signals) == ["fluency_collapse"]
    assert "9.0 vs 2.8" in signals["flags"][0]["message"]


@pytest.mark.django_db
def test_greedy_answers_are_not_held_to_the_base_models_mode(clean_round: Round) -> None:
    """Measured: concise's one-shot candidate (parent: the base) wrote greedy answers the base
    model read at 4.50 against 2.07 on its own greedy answers, its mode (2.2x), while its samples
    read 3.72 against the base's own 2.77. The yardstick is the worse-reading of the parent's
    greedy answers and the base model's own samples."""
    _set(clean_round, perplexity_base_candidate=4.5, perplexity_base_parent=2.07,
         sampled=_sampled(3.72, 2.77))  # type: ignore[arg-type]  # fmt: skip
    assert _codes(_signals(clean_round)) == []
    assert clean_round.checkpoint is not None
    assert selectors.promotion_blockers(clean_round.checkpoint) == []
    # without the sampled figures only the parent's greedy answers are there to compare with
    _set(clean_round, sampled={})  # type: ignore[arg-type]
    message = _signals(clean_round)["flags"][0]["message"]
    assert "less fluent than its parent's" in message and "4.5 vs 2.1 (over 2x)" in message
    # greedy answers over twice the base model's own samples are still word salad
    _set(clean_round, perplexity_base_candidate=6.0, sampled=_sampled(3.72, 2.77))  # type: ignore[arg-type]
    message = _signals(clean_round)["flags"][0]["message"]
    assert "than the base model's own samples'" in message and "6.0 vs 2.8 (over 2x)" in message
    # a parent that reads worse than the base's samples stays the yardstick
    _set(clean_round, perplexity_base_candidate=7.0, perplexity_base_parent=4.0)
    assert _codes(_signals(clean_round)) == []
    _set(clean_round, perplexity_base_candidate=8.5)
    assert "than its parent's" in _signals(clean_round)["flags"][0]["message"]


@pytest.mark.django_db
def test_the_fluency_thresholds_are_settings(clean_round: Round, settings: Any) -> None:
    """Both thresholds were measured on the toy policy; a deployment sets its own."""
    _set(clean_round, perplexity_base_candidate=2.8, perplexity_base_parent=2.6,
         sampled=_sampled(15.5, 2.8))  # type: ignore[arg-type]  # fmt: skip
    assert clean_round.checkpoint is not None
    # the defaults: 3.5x for the samples, 2x for the greedy answers (2.8 vs 2.6 passes)
    assert "15.5 vs 2.8 (over 3.5x)" in _signals(clean_round)["flags"][0]["message"]
    settings.PAIRWISE_FLUENCY_SAMPLED_RATIO = 6.0  # 15.5 / 2.8 = 5.5x: under it
    assert _codes(_signals(clean_round)) == []
    assert selectors.promotion_blockers(clean_round.checkpoint) == []
    settings.PAIRWISE_FLUENCY_SAMPLED_RATIO = 5.0
    message = _signals(clean_round)["flags"][0]["message"]
    assert "15.5 vs 2.8 (over 5x)" in message
    # the greedy threshold: 3.0 vs the base model's own samples' 2.8 is 1.07x
    settings.PAIRWISE_FLUENCY_SAMPLED_RATIO = 6.0
    settings.PAIRWISE_FLUENCY_RATIO = 1.05
    _set(clean_round, perplexity_base_candidate=3.0)
    message = _signals(clean_round)["flags"][0]["message"]
    assert "3.0 vs 2.8 (over 1.05x)" in message
    assert [flag.code for flag in selectors.promotion_blockers(clean_round.checkpoint)] == [
        "fluency_collapse"
    ]


def _matched(sampled: dict[str, Any], candidate: float, opponent: float = 1.0) -> dict[str, Any]:
    """``sampled`` with the length-matched ratios the evaluate step adds (base as opponent)."""
    return {
        label: {**one, "fluency_candidate": candidate, "fluency_opponent": opponent}
        for label, one in sampled.items()
    }


@pytest.mark.django_db
def test_brevity_is_not_read_as_word_salad(clean_round: Round, settings: Any) -> None:
    """A short answer's perplexity is higher (its first words are the uncertain ones): the
    built-in policy's own answers of at most 3 words read 4.55x its perplexity over all, and
    1.33x its own answers of the same lengths (benchmarks/fluency.py). Concise seed 2's round
    3, with a third of its answers word salad, read 9.6 vs 2.6 sampled (3.7x) and 2.8-2.9x
    length-matched."""
    # brief answers the base model writes itself: the plain ratio alone flags them ...
    _set(clean_round, perplexity_base_candidate=2.7, perplexity_base_parent=2.6,
         sampled=_sampled(9.5, 2.6))  # type: ignore[arg-type]  # fmt: skip
    assert _codes(_signals(clean_round)) == ["fluency_collapse"]
    # ... the length-matched ratio tells they read like the base's own of their length
    _set(clean_round, sampled=_matched(_sampled(9.5, 2.6), 1.1), fluency_candidate=1.0)  # type: ignore[arg-type]
    signals = _signals(clean_round)
    assert _codes(signals) == []
    base = next(one for one in signals["reward_model"]["sampled"] if one["opponent"] == "base")
    assert (base["fluency_ratio"], base["opponent_fluency_ratio"]) == (1.1, 1.0)
    assert clean_round.checkpoint is not None
    assert selectors.promotion_blockers(clean_round.checkpoint) == []
    # concise seed 2's round 3: salad that is also brief stays flagged, and blocks promotion
    _set(clean_round, sampled=_matched(_sampled(9.6, 2.6), 2.8))  # type: ignore[arg-type]
    signals = _signals(clean_round)
    assert _codes(signals) == ["fluency_collapse"]
    message = signals["flags"][0]["message"]
    assert "9.6 vs 2.6 (over 3.5x)" in message
    assert "2.8x the base model's own answers of the same lengths" in message
    assert [flag.code for flag in selectors.promotion_blockers(clean_round.checkpoint)] == [
        "fluency_collapse"
    ]
    # the brevity threshold is a setting
    settings.PAIRWISE_FLUENCY_BREVITY_RATIO = 3.0
    assert _codes(_signals(clean_round)) == []
    settings.PAIRWISE_FLUENCY_BREVITY_RATIO = 2.0
    # salad hidden by longer answers: a plain ratio under the threshold, length-matched over it
    _set(clean_round, sampled=_matched(_sampled(8.0, 2.6), 4.0))  # type: ignore[arg-type]
    message = _signals(clean_round)["flags"][0]["message"]
    assert "sampled answers" in message and "4.0x the base model's own answers" in message
    # greedy answers: brief ones pass, over 2x length-matched is a collapse whatever the length
    _set(clean_round, sampled=_matched(_sampled(3.0, 2.6), 1.2), perplexity_base_candidate=6.0)  # type: ignore[arg-type]
    assert _codes(_signals(clean_round)) == []
    _set(clean_round, perplexity_base_candidate=4.0, fluency_candidate=2.5)
    message = _signals(clean_round)["flags"][0]["message"]
    assert (
        "answers read as far less fluent than the base model's own of the same lengths" in message
    )
    assert "2.5x the base model's own answers of the same lengths, over 2x" in message


@pytest.mark.django_db
def test_each_fluency_collapse_says_which_answers_and_against_what(clean_round: Round) -> None:
    """The four reasons, word for word: greedy or sampled answers, by their perplexity against a
    yardstick or by their length-matched ratio."""
    tail = " Read some samples before trusting any win-rate."
    # greedy, against the parent (no sampled evaluation)
    _set(clean_round, perplexity_base_candidate=9.0, perplexity_base_parent=2.0)
    assert _signals(clean_round)["flags"][0]["message"] == (
        "The new policy's answers read as far less fluent than its parent's: the base model's "
        "perplexity on them is 9.0 vs 2.0 (over 2x)." + tail
    )
    # greedy, against the base model's own samples where those read worse than the parent
    _set(clean_round, sampled=_sampled(2.9, 3.0))  # type: ignore[arg-type]
    assert _signals(clean_round)["flags"][0]["message"] == (
        "The new policy's answers read as far less fluent than the base model's own samples': "
        "the base model's perplexity on them is 9.0 vs 3.0 (over 2x)." + tail
    )
    # greedy, length-matched
    _set(clean_round, perplexity_base_candidate=4.0, fluency_candidate=2.5,
         sampled=_matched(_sampled(3.0, 2.6), 1.2))  # type: ignore[arg-type]  # fmt: skip
    assert _signals(clean_round)["flags"][0]["message"] == (
        "The new policy's answers read as far less fluent than the base model's own of the same "
        "lengths; 2.5x the base model's own answers of the same lengths, over 2x." + tail
    )
    # sampled, by perplexity (greedy fine), then length-matched
    _set(clean_round, perplexity_base_candidate=2.1, fluency_candidate=1.0,
         sampled=_matched(_sampled(9.6, 2.6), 2.8))  # type: ignore[arg-type]  # fmt: skip
    assert _signals(clean_round)["flags"][0]["message"] == (
        "The new policy's sampled answers read as far less fluent than the base model's own: "
        "its perplexity on them is 9.6 vs 2.6 (over 3.5x); 2.8x the base model's own answers "
        "of the same lengths, though its greedy answers may read well." + tail
    )
    _set(clean_round, sampled=_matched(_sampled(8.0, 2.6), 4.0))  # type: ignore[arg-type]
    assert _signals(clean_round)["flags"][0]["message"] == (
        "The new policy's sampled answers read as far less fluent than the base model's own of "
        "the same lengths; 4.0x the base model's own answers of the same lengths, over 3.5x, "
        "though its greedy answers may read well." + tail
    )


@pytest.mark.django_db
def test_a_small_snapshot_is_flagged(clean_round: Round, settings: Any) -> None:
    _set(clean_round, snapshot=12)
    signals = _signals(clean_round)
    assert _codes(signals) == ["small_snapshot"]
    assert "only 12 rows (fewer than 50)" in signals["flags"][0]["message"]
    settings.PAIRWISE_MIN_SNAPSHOT = 10
    assert _codes(_signals(clean_round)) == []


@pytest.mark.django_db
def test_humans_disagreeing_with_the_reward_model_is_flagged(clean_round: Round) -> None:
    # the parent wins 12 pairs, on either side of the pair; one both-bad counts half
    _judge(clean_round, Choice.B, new_on_a=True, times=6)
    _judge(clean_round, Choice.A, new_on_a=False, times=6)
    _judge(clean_round, Choice.BOTH_BAD, new_on_a=True)
    signals = _signals(clean_round)
    humans = signals["humans"]
    assert (humans["wins"], humans["losses"], humans["ties"]) == (1, 12, 1)
    assert humans["upper"] < 0.5
    assert _codes(signals) == ["humans_disagree"]
    assert "Humans and the reward model disagree" in signals["flags"][0]["message"]
    # a reward model that also says the parent is better agrees with them
    _set(clean_round, win_rate=0.4)
    assert _codes(_signals(clean_round)) == []


@pytest.mark.django_db
def test_the_round_page_and_live_partial_label_each_figure(
    admin_client: Client, clean_round: Round
) -> None:
    _set(clean_round, kl=3.0)
    page = admin_client.get(f"/rounds/{clean_round.pk}/").content.decode()
    live = admin_client.get(f"/rounds/{clean_round.pk}/", headers=HX).content.decode()
    for html in (page, live):
        assert "Reward model says: new policy wins 60% vs parent" in html
        assert "Humans say: 100% of 1 judged new-vs-parent pairs" in html
        assert 'data-flag="kl_high"' in html
    Judgment.objects.all().delete()
    page = admin_client.get(f"/rounds/{clean_round.pk}/").content.decode()
    assert "Humans say: not judged yet." in page


@pytest.mark.django_db
def test_the_api_carries_the_signals(admin_api: APIClient, clean_round: Round) -> None:
    _set(clean_round, accuracy=0.55, pairs=40)
    detail = admin_api.get(f"/api/v1/rounds/{clean_round.pk}/").json()
    assert detail["signals"]["reward_model"]["held_out_pairs"] == 40
    assert detail["signals"]["reward_model"]["win_rate_vs_parent"] == 0.6
    assert detail["signals"]["humans"]["judged"] == 1
    assert [f["code"] for f in detail["signals"]["flags"]] == ["reward_model_coin"]
    listed = admin_api.get(f"/api/v1/projects/{clean_round.project_id}/rounds/").json()
    assert listed[0]["signals"] == detail["signals"]


@pytest.mark.django_db
def test_launch_refuses_a_small_snapshot_and_says_how_many_more(
    judged_project: Any, settings: Any, admin_client: Client, admin_api: APIClient
) -> None:
    settings.PAIRWISE_MIN_SNAPSHOT = 50  # the default
    rows = selectors.snapshot_preview(judged_project, "dpo", None)
    assert rows is not None and 0 < rows < 50
    with pytest.raises(LabelingError) as refused:
        services.round_launch(project=judged_project, method="dpo")
    assert refused.value.field == "config"
    assert f"judge {50 - rows} more decided comparisons" in refused.value.message
    response = admin_api.post(
        f"/api/v1/projects/{judged_project.pk}/rounds/", {"method": "dpo"}, format="json"
    )
    assert response.status_code == 400
    assert f"judge {50 - rows} more" in str(response.json())
    form = admin_client.get(f"/projects/{judged_project.pk}/rounds/?method=dpo", headers=HX)
    assert f"It trains on <b>{rows}</b> training rows" in form.content.decode()
    assert f"judge at least {50 - rows} more</b>" in form.content.decode()
    assert "would be refused" in form.content.decode()
    assert not Round.objects.filter(project=judged_project).exists()
    settings.PAIRWISE_MIN_SNAPSHOT = rows
    assert services.round_launch(project=judged_project, method="dpo").snapshot_size == rows
