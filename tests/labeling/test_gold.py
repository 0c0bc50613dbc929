"""Gold items (``labeling.gold``): marked by admins, served silently at the project's rate to every
annotator once, scored per annotator, generated from real responses, and never a preference."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from labeling import gold, selectors, services
from labeling.api.serializers import lease_payload
from labeling.interchange.exports import export_stream
from labeling.interchange.specs import ExportStats, export_spec_parse
from labeling.models import (
    Assignment,
    AssignmentStatus,
    Comparison,
    ComparisonStatus,
    Judgment,
    Project,
    Response,
)
from labeling.preferences import snapshot_rows
from labeling.roles import ADMIN_GROUP
from tests.factories import (
    ComparisonFactory,
    ProjectFactory,
    PromptFactory,
    ResponseFactory,
    UserFactory,
)
from tests.labeling.api.conftest import token_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(annotator: Any) -> APIClient:
    return token_client(annotator)


@pytest.fixture
def admin_api(admin_user: Any) -> APIClient:
    return token_client(admin_user)


def _serve(annotator: Any, project: Project, *, choice: str = "a") -> list[tuple[int, bool]]:
    """Claim and judge until the queue is empty: (comparison id, gold?) in serving order."""
    served = []
    while (
        lease := services.assignment_claim_next(annotator=annotator, project=project)
    ) is not None:
        comparison = lease.comparison
        served.append((comparison.pk, bool(comparison.gold_answer)))
        services.judgment_submit(
            annotator=annotator,
            comparison=comparison,
            choice=choice,
            strength=2 if choice in ("a", "b") else None,
        )
    return served


def _queue(project: Project, *, normal: int, golds: int) -> None:
    for _ in range(normal):
        ComparisonFactory.create(project=project)
    for index in range(golds):
        ComparisonFactory.create(project=project, gold_answer="ab"[index % 2])


# --- marking gold ----------------------------------------------------------------------------------


def test_admin_marks_and_clears_gold_through_the_api(
    admin_api: APIClient, project: Project, queue: list[Comparison]
) -> None:
    url = f"/api/v1/comparisons/{queue[0].pk}/gold/"
    response = admin_api.post(url, {"answer": "b"}, format="json")
    assert response.status_code == 200
    assert response.json() == {"comparison": queue[0].pk, "gold_answer": "b"}
    assert Comparison.objects.get(pk=queue[0].pk).gold_answer == "b"
    assert list(Comparison.objects.gold()) == [queue[0]]

    cleared = admin_api.delete(url)
    assert cleared.status_code == 200 and cleared.json()["gold_answer"] is None
    assert not Comparison.objects.gold().exists()


@pytest.mark.parametrize("body", [{"answer": "tie"}, {"answer": "both_bad"}, {"answer": "x"}, {}])
def test_a_bad_answer_is_400_and_changes_nothing(
    admin_api: APIClient, queue: list[Comparison], body: dict[str, str]
) -> None:
    response = admin_api.post(f"/api/v1/comparisons/{queue[0].pk}/gold/", body, format="json")
    assert response.status_code == 400
    assert "answer" in json.dumps(response.json())
    assert not Comparison.objects.gold().exists()


def test_annotators_may_not_mark_gold(
    api: APIClient, admin_api: APIClient, queue: list[Comparison]
) -> None:
    url = f"/api/v1/comparisons/{queue[0].pk}/gold/"
    assert api.post(url, {"answer": "a"}, format="json").status_code == 403
    admin_api.post(url, {"answer": "a"}, format="json")
    assert api.delete(url).status_code == 403
    assert Comparison.objects.get(pk=queue[0].pk).gold_answer == "a"


def test_a_closed_comparison_keeps_what_it_was(
    admin_api: APIClient, queue: list[Comparison]
) -> None:
    services.comparisons_close(comparison_ids=[queue[0].pk])
    response = admin_api.post(f"/api/v1/comparisons/{queue[0].pk}/gold/", {"answer": "a"})
    assert response.status_code == 409
    assert Comparison.objects.get(pk=queue[0].pk).gold_answer == ""


def test_gold_never_completes_and_clearing_gives_back_the_k_rule(
    project: Project, annotator: Any, other_annotator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gold, "gap", lambda **_: 1)  # gold whenever there is some
    project.judgments_per_comparison = 1
    project.save()
    comparison = ComparisonFactory.create(project=project)
    assert _serve(annotator, project) == [(comparison.pk, False)]
    assert Comparison.objects.get(pk=comparison.pk).status == ComparisonStatus.COMPLETE

    services.comparison_gold_set(comparison=comparison, answer="a")
    assert Comparison.objects.get(pk=comparison.pk).status == ComparisonStatus.OPEN
    services.project_gold_rate_set(project=project, gold_rate=0.5)
    lease = services.assignment_claim_next(annotator=other_annotator, project=project)
    assert lease is not None and lease.comparison_id == comparison.pk  # a 2nd judge, k = 1

    services.comparison_gold_clear(comparison=comparison)
    stored = Comparison.objects.get(pk=comparison.pk)
    assert stored.status == ComparisonStatus.COMPLETE  # 1 judgment, k = 1
    assert Assignment.objects.get(pk=lease.pk).status == AssignmentStatus.RELEASED


# --- serving gold ----------------------------------------------------------------------------------


def test_gold_is_mixed_in_at_the_rate(
    project: Project, annotator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every gap fixed at 4 (rate 0.25): three normal items, then a gold one, and so on;
    once gold runs out, normal items only; once normal items run out, the gold due is served."""
    monkeypatch.setattr(gold, "gap", lambda **_: 4)
    services.project_gold_rate_set(project=project, gold_rate=0.25)
    _queue(project, normal=10, golds=2)
    pattern = [gold_ for _, gold_ in _serve(annotator, project)]
    assert pattern == [False] * 3 + [True] + [False] * 3 + [True] + [False] * 4


def test_no_gold_at_rate_zero(
    project: Project, annotator: Any, django_assert_max_num_queries: Any
) -> None:
    _queue(project, normal=3, golds=3)
    # The claim's queries as without gold: the open lease, the next comparison, the insert, the
    # content; a savepoint pair.
    with django_assert_max_num_queries(6):
        assert services.assignment_claim_next(annotator=annotator, project=project) is not None
    served = _serve(annotator, project)
    assert len(served) == 3 and not any(is_gold for _, is_gold in served)


def test_gold_costs_the_claim_one_query(
    project: Project, annotator: Any, django_assert_max_num_queries: Any
) -> None:
    services.project_gold_rate_set(project=project, gold_rate=0.1)
    _queue(project, normal=3, golds=3)
    with django_assert_max_num_queries(7):
        assert services.assignment_claim_next(annotator=annotator, project=project) is not None


def test_gold_is_served_to_every_annotator_once_whatever_k(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gold, "gap", lambda **_: 1)  # gold whenever there is some
    services.project_gold_rate_set(project=project, gold_rate=0.5)
    assert project.judgments_per_comparison == 1
    gold_item = ComparisonFactory.create(project=project, gold_answer="a")
    normal = ComparisonFactory.create(project=project)
    users = [UserFactory.create(username=f"g{i}") for i in range(4)]
    project.annotators.add(*users)

    # Four live leases on the gold item at once: it has no slots to take.
    leases = [services.assignment_claim_next(annotator=user, project=project) for user in users]
    assert [lease.comparison_id for lease in leases if lease] == [gold_item.pk] * 4
    for user in users:
        services.judgment_submit(annotator=user, comparison=gold_item, choice="a", strength=3)
    stored = Comparison.objects.get(pk=gold_item.pk)
    assert stored.judgment_count == 4 and stored.status == ComparisonStatus.OPEN
    # The normal comparison's one slot was never taken by gold: the first asker gets it.
    assert _serve(users[0], project) == [(normal.pk, False)]
    assert _serve(users[1], project) == []


def test_gold_looks_like_any_comparison(
    project: Project, annotator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gold, "gap", lambda **_: 2)
    services.project_gold_rate_set(project=project, gold_rate=0.5)
    _queue(project, normal=2, golds=1)
    payloads = []
    for _ in range(2):
        lease = services.assignment_claim_next(annotator=annotator, project=project)
        assert lease is not None
        payloads.append((bool(lease.comparison.gold_answer), lease_payload(lease)))
        services.judgment_submit(
            annotator=annotator, comparison=lease.comparison, choice="tie", strength=None
        )
    (first_gold, normal), (second_gold, gold_payload) = payloads
    assert (first_gold, second_gold) == (False, True)

    def shape(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: shape(item) for key, item in value.items()}
        if isinstance(value, list):
            return [shape(item) for item in value]
        return type(value).__name__

    assert shape(gold_payload) == shape(normal)
    assert "gold" not in json.dumps(gold_payload, default=str)
    # The labeling page of a gold item: nothing says gold.
    page = Client()
    page.force_login(annotator)
    held = services.judgment_undo(annotator=annotator, project=project)  # the gold one, again
    assert held.comparison.gold_answer
    html = page.get(f"/projects/{project.pk}/label/").content.decode()
    assert f'data-assignment="{held.pk}"' in html and "gold" not in html.lower()


def test_the_schedules_gaps_average_the_period() -> None:
    gaps = [gold.gap(project_id=1, annotator_id=2, after=c, rate=0.1) for c in range(6000)]
    assert min(gaps) == 1 and max(gaps) == 19
    assert 9.7 <= sum(gaps) / len(gaps) <= 10.3
    assert gold.period(0.3) == 3 and gold.period(0) == 0
    assert not gold.gold_due(since=100, after=0, project_id=1, annotator_id=2, rate=0)
    assert gold.window(0.1) == 19


def test_remaining_drops_by_one_per_item_with_gold_mixed_in(
    project: Project, annotator: Any
) -> None:
    """The claim follows the schedule (a gold item after gap(g) - 1 normal ones), and the
    labeling page's "remaining" counts the gold still to come, so it never stalls on a gold item
    (which would give it away)."""
    services.project_gold_rate_set(project=project, gold_rate=0.2)
    _queue(project, normal=40, golds=20)
    shown, served = [], []
    while (
        lease := services.assignment_claim_next(annotator=annotator, project=project)
    ) is not None:
        progress = selectors.labeling_progress(
            annotator=annotator, project=project, current_comparison_id=lease.comparison_id
        )
        shown.append(progress.remaining)
        served.append((lease.comparison_id, bool(lease.comparison.gold_answer)))
        services.judgment_submit(
            annotator=annotator, comparison=lease.comparison, choice="a", strength=1
        )
    assert shown == list(range(len(served), 0, -1))
    golds = [pk for pk, is_gold in served if is_gold]
    assert len(served) - len(golds) == 40 and len(golds) >= 2
    assert golds == sorted(golds)  # in queue order

    def gap(after: int) -> int:
        return gold.gap(project_id=project.pk, annotator_id=annotator.pk, after=after, rate=0.2)

    runs = "".join("G" if is_gold else "n" for _, is_gold in served).split("G")
    for after, run in zip([0, *golds], runs, strict=True):
        if after == golds[-1]:
            assert len(run) < gap(after) - 1  # the queue ended before the next was due
        else:
            assert len(run) == gap(after) - 1, served
    assert selectors.labeling_progress(annotator=annotator, project=project).remaining == 0


# --- accuracy --------------------------------------------------------------------------------------


def _judge(user: Any, comparison: Comparison, choice: str) -> None:
    Judgment.objects.create(
        annotator=user,
        comparison=comparison,
        choice=choice,
        strength=2 if choice in ("a", "b") else None,
        shown_left="a",
    )


def test_gold_accuracy_per_annotator(admin_api: APIClient) -> None:
    project = ProjectFactory.create(judgments_per_comparison=2)
    good, careless = UserFactory.create(username="good"), UserFactory.create(username="careless")
    golds = [ComparisonFactory.create(project=project, gold_answer="ab"[i % 2]) for i in range(10)]
    for index, comparison in enumerate(golds[:3]):
        _judge(good, comparison, comparison.gold_answer if index < 2 else "tie")  # 2 of 3
    for comparison in golds:
        _judge(careless, comparison, "b" if comparison.gold_answer == "a" else "a")  # 0 of 10
    normal = ComparisonFactory.create(project=project)
    _judge(good, normal, "a")
    _judge(careless, normal, "a")

    body = admin_api.get(f"/api/v1/projects/{project.pk}/stats/").json()
    block = body["gold"]
    assert (block["items"], block["judgments"], block["threshold"]) == (10, 13, 0.7)
    by_name = {row["username"]: row for row in block["annotators"]}
    # Wilson 95% for 2/3: centre (p + z²/2n) / (1 + z²/n) = 0.5731, half-width 0.3654.
    assert by_name["good"]["n"] == 3 and by_name["good"]["correct"] == 2
    assert by_name["good"]["accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert by_name["good"]["interval"] == pytest.approx([0.2077, 0.9385], abs=1e-4)
    assert not by_name["good"]["flagged"]
    # 0/10: the interval's top is z²/n / (1 + z²/n) = 0.2775, under 0.7.
    assert by_name["careless"]["interval"] == pytest.approx([0.0, 0.2775], abs=1e-4)
    assert by_name["careless"]["flagged"] and "0/10" in by_name["careless"]["message"]
    # Agreement figures: only the normal comparison (both chose a); the gold ones are left out.
    assert body["agreement"]["comparisons_multiply_judged"] == 1
    assert body["agreement"]["pairwise_agreement"] == 1.0
    assert body["quality"]["agreement"]["comparisons"] == 1
    assert body["progress"]["judgments_total"] == 15  # work done counts gold

    page = Client()
    page.force_login(UserFactory.create(username="boss", role=ADMIN_GROUP))
    html = page.get(f"/projects/{project.pk}/").content.decode()
    assert 'id="gold-accuracy"' in html and "0/10" in html


# --- generated gold --------------------------------------------------------------------------------


@pytest.fixture
def answered(project: Project) -> Project:
    """Eight prompts, two multi-sentence answers each."""
    for index in range(8):
        prompt = PromptFactory.create(project=project, external_id=f"q{index}")
        for variant in range(2):
            ResponseFactory.create(
                prompt=prompt,
                text=f"First point {index}-{variant} is clear. Second point follows here. "
                f"A third remark ends it {index}.",
            )
    return project


def test_generated_gold_variants(answered: Project) -> None:
    created = services.gold_generate(project=answered, count=16, seed=3)
    assert len(created) == 16
    kinds, sides = set(), set()
    for comparison in Comparison.objects.filter(pk__in=[c.pk for c in created]).select_related(
        "response_a", "response_b"
    ):
        assert comparison.batch == gold.BATCH and comparison.gold_answer in ("a", "b")
        original, variant = (
            (comparison.response_a, comparison.response_b)
            if comparison.gold_answer == "a"
            else (comparison.response_b, comparison.response_a)
        )
        assert not original.model_name.startswith("gold:")
        kind = variant.model_name.removeprefix("gold:")
        kinds.add(kind)
        sides.add(comparison.gold_answer)
        assert variant.prompt_id == original.prompt_id == comparison.prompt_id
        if kind == "truncated":
            assert original.text.startswith(variant.text) and len(variant.text) < len(original.text)
            assert variant.text
        elif kind == "shuffled":
            assert variant.text != original.text
            assert sorted(gold.sentences(variant.text)) == sorted(gold.sentences(original.text))
        else:
            assert kind == "swapped"
            source = Response.objects.exclude(model_name__startswith="gold:").filter(
                text=variant.text
            )
            assert source.exists()
            assert all(r.prompt_id != original.prompt_id for r in source)
    assert kinds == set(gold.VARIANTS)
    assert sides == {"a", "b"}


def test_generate_through_api_and_command(
    answered: Project, admin_api: APIClient, api: APIClient
) -> None:
    url = f"/api/v1/projects/{answered.pk}/gold/generate/"
    response = admin_api.post(url, {"count": 3, "seed": 1}, format="json")
    assert response.status_code == 201 and response.json()["created"] == 3
    assert admin_api.post(url, {"count": 0}, format="json").status_code == 400
    assert (
        admin_api.post(url, {"count": 2, "variants": ["reversed"]}, format="json").status_code
        == 400
    )
    assert api.post(url, {"count": 2}, format="json").status_code == 403
    assert Comparison.objects.gold().count() == 3

    out = StringIO()
    call_command(
        "gold_generate", "--project", answered.name, "--count", "2", "--rate", "0.1", stdout=out
    )
    assert "2 gold comparisons generated" in out.getvalue()
    assert Project.objects.get(pk=answered.pk).gold_rate == 0.1
    with pytest.raises(CommandError, match="count"):
        call_command("gold_generate", "--project", answered.name, "--count", "0", "--rate", "0.3")
    assert Project.objects.get(pk=answered.pk).gold_rate == 0.1  # nothing changed
    assert Comparison.objects.gold().count() == 5


# --- never a preference ----------------------------------------------------------------------------


def _export(project: Project, **params: str) -> list[dict[str, Any]]:
    spec = export_spec_parse(params)
    data = b"".join(export_stream(project=project, spec=spec, stats=ExportStats()))
    return [json.loads(line) for line in data.decode().splitlines()]


def test_gold_is_in_no_export_and_no_snapshot(project: Project, annotator: Any) -> None:
    kept, marked = (
        ComparisonFactory.create(project=project),
        ComparisonFactory.create(project=project),
    )
    for comparison in (kept, marked):
        _judge(annotator, comparison, "a")
    ids = list(Judgment.objects.values_list("pk", flat=True))
    assert len(_export(project, format="trl")) == 2  # before: both are preferences
    assert len(snapshot_rows(ids)) == 2

    services.comparison_gold_set(comparison=marked, answer="a")
    rows = _export(project, format="trl")
    assert [row["chosen"] for row in rows] == [kept.response_a.text]
    raw = _export(project, format="raw")
    assert {row["response_a"] for row in raw} == {kept.response_a.text}
    assert [row["chosen"] for row in snapshot_rows(ids)] == [kept.response_a.text]
    assert len(snapshot_rows(ids, unpaired=True)) == 2  # kept's chosen and rejected only


# --- settings and the admin page -------------------------------------------------------------------


def test_gold_rate_is_for_admins(admin_api: APIClient, api: APIClient, project: Project) -> None:
    url = f"/api/v1/projects/{project.pk}/"
    response = admin_api.patch(url, {"gold_rate": 0.2}, format="json")
    assert response.status_code == 200 and response.json()["gold_rate"] == 0.2
    assert admin_api.patch(url, {"gold_rate": 0.9}, format="json").status_code == 400
    assert api.patch(url, {"gold_rate": 0.0}, format="json").status_code == 403
    assert Project.objects.get(pk=project.pk).gold_rate == 0.2
    assert "gold_rate" not in api.get(url).json()  # annotators are not told
    assert admin_api.get(url).json()["gold_rate"] == 0.2


def test_gold_page_marks_with_htmx(
    admin_user: Any, annotator: Any, project: Project, queue: list[Comparison]
) -> None:
    page = Client()
    page.force_login(admin_user)
    assert page.get(f"/projects/{project.pk}/gold/").status_code == 200
    url = f"/projects/{project.pk}/gold/{queue[1].pk}/"
    response = page.post(url, {"answer": "b"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.strip().startswith(f'<tr id="gold-row-{queue[1].pk}"')
    assert "<b>B</b>" in html
    assert Comparison.objects.get(pk=queue[1].pk).gold_answer == "b"
    bad = page.post(url, {"answer": "tie"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 422 and "only a side can be gold" in bad.content.decode()
    assert page.post(url, {"answer": ""}).status_code == 303  # plain form: back to the page
    assert Comparison.objects.get(pk=queue[1].pk).gold_answer == ""
    listed = page.get(f"/projects/{project.pk}/gold/?show=gold").content.decode()
    assert 'data-testid="gold-row"' not in listed

    annotator_page = Client()
    annotator_page.force_login(annotator)
    assert annotator_page.post(url, {"answer": "a"}).status_code == 403
    assert annotator_page.get(f"/projects/{project.pk}/gold/").status_code == 403
    rate = page.post(f"/projects/{project.pk}/gold/", {"action": "rate", "gold_rate": "0.1"})
    assert rate.status_code == 302 and Project.objects.get(pk=project.pk).gold_rate == 0.1
