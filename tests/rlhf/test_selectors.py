"""Snapshots (which judgments, how they become preference rows) and human win-rates."""

from __future__ import annotations

from typing import Any

import pytest

from labeling.models import Choice, Judgment, Split
from labeling.services import assignment_claim_next, judgment_submit
from rlhf import selectors, services
from rlhf.methods import SNAPSHOT_DEFAULTS
from rlhf.models import Checkpoint, CheckpointKind, Round, RoundStatus
from tests.factories import ComparisonFactory, PromptFactory, ResponseFactory, UserFactory


def judge(comparison: Any, *choices: str) -> None:
    """Each choice by a new annotator (k is raised to fit)."""
    project = comparison.project
    project.judgments_per_comparison = max(project.judgments_per_comparison, len(choices))
    project.save()
    for index, choice in enumerate(choices):
        user = UserFactory.create(username=f"j{comparison.pk}-{index}")
        project.annotators.add(user)
        lease = assignment_claim_next(annotator=user, project=project)
        assert lease is not None and lease.comparison_id == comparison.pk
        strength = 4 if choice in (Choice.A, Choice.B) else None
        judgment_submit(annotator=user, comparison=comparison, choice=choice, strength=strength)


def snapshot(**overrides: Any) -> dict[str, Any]:
    return {**SNAPSHOT_DEFAULTS, **overrides}


@pytest.mark.django_db
def test_majority_rows_with_margin_and_weight(project: Any) -> None:
    comparison = ComparisonFactory.create(project=project)
    judge(comparison, "a", "a", "b")
    ids = selectors.snapshot_judgment_ids(project, snapshot())
    assert len(ids) == 3
    (row,) = selectors.preference_rows(ids, snapshot())
    assert row["chosen"] == comparison.response_a.text
    assert row["rejected"] == comparison.response_b.text
    assert row["weight"] == pytest.approx(2 / 3, abs=1e-3)
    assert row["margin"] == 1.0
    assert row["prompt"] == comparison.prompt.messages
    assert selectors.preference_rows(ids, snapshot(min_agreement=0.7)) == []


@pytest.mark.django_db
def test_tie_and_both_bad_policies(project: Any) -> None:
    tie = ComparisonFactory.create(project=project)
    judge(tie, "tie")
    both_bad = ComparisonFactory.create(project=project)
    judge(both_bad, "both_bad")
    split_votes = ComparisonFactory.create(project=project)
    judge(split_votes, "a", "b")
    ids = selectors.snapshot_judgment_ids(project, snapshot())
    assert selectors.preference_rows(ids, snapshot()) == []
    rows = selectors.preference_rows(ids, snapshot(ties="split"))
    assert len(rows) == 2 and {r["weight"] for r in rows} == {0.5}
    assert {r["chosen"] for r in rows} == {tie.response_a.text, tie.response_b.text}
    assert len(selectors.preference_rows(ids, snapshot(ties="split", both_bad="split"))) == 4


@pytest.mark.django_db
def test_held_out_and_round_filters(project: Any) -> None:
    imported = ComparisonFactory.create(project=project, batch="import")
    from_round = ComparisonFactory.create(project=project, batch="round-2:on-policy")
    held_out_prompt = PromptFactory.create(project=project, split=Split.TEST)
    held_out = ComparisonFactory.create(project=project, prompt=held_out_prompt)
    for comparison in (imported, from_round, held_out):
        judge(comparison, "a")
    by_comparison = dict(Judgment.objects.values_list("comparison_id", "pk"))

    def chosen(**overrides: Any) -> set[int]:
        ids = set(selectors.snapshot_judgment_ids(project, snapshot(**overrides)))
        return {c for c, j in by_comparison.items() if j in ids}

    assert chosen() == {imported.pk, from_round.pk}
    assert chosen(include_held_out=True) == {imported.pk, from_round.pk, held_out.pk}
    assert chosen(rounds=[0]) == {imported.pk}
    assert chosen(rounds=[2]) == {from_round.pk}
    assert chosen(rounds="latest") == {imported.pk}  # no round has succeeded yet
    assert chosen(rounds="newest") == {imported.pk}
    Round.objects.create(
        project=project, number=2, status=RoundStatus.SUCCEEDED, snapshot_hash="x",
        parent_checkpoint=services.checkpoint_base(project=project),
    )  # fmt: skip
    assert chosen(rounds="latest") == {imported.pk, from_round.pk}
    assert chosen(rounds="newest") == {from_round.pk}  # only what round 2 put into the queue
    ids = selectors.snapshot_judgment_ids(project, snapshot())
    rows = selectors.preference_rows(ids, snapshot())
    fewer = selectors.preference_rows(ids[:1], snapshot())
    assert selectors.snapshot_hash(rows) != selectors.snapshot_hash(fewer)


@pytest.mark.django_db
def test_human_win_rate_counts_from_the_candidate_side(project: Any) -> None:
    base = services.checkpoint_base(project=project)
    candidate = Checkpoint.objects.create(
        project=project, model_spec=base.model_spec, kind=CheckpointKind.POLICY, parent=base,
        adapter_dir="checkpoints/run-1",
    )  # fmt: skip
    prompt = PromptFactory.create(project=project)

    def pair(a_ref: Any, b_ref: Any) -> Any:
        a = ResponseFactory.create(prompt=prompt, checkpoint_ref=str(a_ref.pk))
        b = ResponseFactory.create(prompt=prompt, checkpoint_ref=str(b_ref.pk))
        return ComparisonFactory.create(
            project=project, prompt=prompt, response_a=a, response_b=b,
            batch="round-1:vs-champion",
        )  # fmt: skip

    judge(pair(candidate, base), "a")  # candidate shown as a, wins
    judge(pair(base, candidate), "a")  # champion shown as a, wins
    judge(pair(base, candidate), "b")  # candidate shown as b, wins
    judge(pair(candidate, base), "tie")
    imported = pair(candidate, base)
    imported.batch = "import-1"
    imported.save()
    judge(imported, "both_bad")  # any batch counts: every judged pair of their responses
    same = pair(candidate, candidate)
    same.batch = "round-1:on-policy"
    same.save()
    judge(same, "a")  # both sides the candidate's: no head-to-head
    outside = ComparisonFactory.create(
        project=project, prompt=prompt, batch="round-1:vs-champion",
        response_a=ResponseFactory.create(prompt=prompt, checkpoint_ref=str(candidate.pk)),
        response_b=ResponseFactory.create(prompt=prompt, checkpoint_ref="gpt-4"),
    )  # fmt: skip
    judge(outside, "a")  # not a checkpoint of the project: ignored
    rate = selectors.human_win_rate(candidate, base)
    assert (rate.wins, rate.losses, rate.ties) == (2, 1, 2)
    assert rate.rate == pytest.approx(3 / 5)
    assert selectors.human_win_rate(base, candidate).rate == pytest.approx(2 / 5)
    assert selectors.human_win_rate(candidate, candidate).rate is None
    nodes = selectors.checkpoint_lineage(project).nodes
    assert [(n.checkpoint.pk, n.depth) for n in nodes] == [(base.pk, 0), (candidate.pk, 1)]
    assert nodes[1].standing.opponent_id == base.pk
    assert nodes[1].win_rate.rate == pytest.approx(3 / 5)
    assert nodes[0].standing.opponent_id is None


@pytest.mark.django_db
def test_human_win_rates_of_many_checkpoints_in_one_query(
    project: Any, django_assert_num_queries: Any
) -> None:
    base = services.checkpoint_base(project=project)
    prompt = PromptFactory.create(project=project)
    candidates = [
        Checkpoint.objects.create(
            project=project, model_spec=base.model_spec, parent=base, adapter_dir=f"c{n}"
        )
        for n in range(3)
    ]

    def vs_base(candidate: Checkpoint, choice: str, *, candidate_is_a: bool) -> None:
        mine = ResponseFactory.create(prompt=prompt, checkpoint_ref=str(candidate.pk))
        theirs = ResponseFactory.create(prompt=prompt, checkpoint_ref=str(base.pk))
        a, b = (mine, theirs) if candidate_is_a else (theirs, mine)
        comparison = ComparisonFactory.create(
            project=project, prompt=prompt, response_a=a, response_b=b, batch="round-1:vs-champion"
        )
        judge(comparison, choice)

    vs_base(candidates[0], "a", candidate_is_a=True)
    vs_base(candidates[0], "a", candidate_is_a=False)
    vs_base(candidates[1], "b", candidate_is_a=False)
    vs_base(candidates[1], "both_bad", candidate_is_a=True)
    with django_assert_num_queries(1):
        rates = selectors.human_win_rates([base, *candidates], base)
    assert rates == {c.pk: selectors.human_win_rate(c, base) for c in [base, *candidates]}
    assert (rates[candidates[0].pk].wins, rates[candidates[0].pk].losses) == (1, 1)
    assert (rates[candidates[1].pk].wins, rates[candidates[1].pk].ties) == (1, 1)
    assert rates[candidates[2].pk].rate is None and rates[base.pk].rate is None
    with django_assert_num_queries(0):
        assert selectors.human_win_rates(candidates, None)[candidates[0].pk].judged == 0
