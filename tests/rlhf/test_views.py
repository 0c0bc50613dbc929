"""The tuning pages: launch form, live round page (htmx polling), checkpoints and promotion."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.test import Client

from rlhf import services
from rlhf.models import Checkpoint, Round, RoundStatus
from tests.factories import ProjectFactory, UserFactory

HX = {"HX-Request": "true"}


@pytest.fixture
def admin_client(db: Any) -> Client:
    client = Client()
    user: Any = UserFactory.create(username="boss", role="admin")
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_annotators_may_not_see_tuning_pages(judged_project: Any) -> None:
    client = Client()
    user: Any = UserFactory.create(username="worker")
    client.force_login(user)
    round_ = services.round_launch(project=judged_project, method="dpo")
    for url in (
        f"/projects/{judged_project.pk}/rounds/",
        f"/rounds/{round_.pk}/",
        f"/projects/{judged_project.pk}/checkpoints/",
    ):
        assert client.get(url).status_code == 403
    assert client.post(f"/rounds/{round_.pk}/cancel/").status_code == 403
    assert Client().get(f"/rounds/{round_.pk}/").status_code == 302  # to the login page


@pytest.mark.django_db
def test_launch_form_defaults_per_method(admin_client: Client, judged_project: Any) -> None:
    page = admin_client.get(f"/projects/{judged_project.pk}/rounds/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "PPO-family online RL" in html and "PR #7020" in html
    # The resolved defaults as fields, named by their config path.
    assert 'name="policy.learning_rate" value="0.005"' in html
    assert 'name="policy.loss_type"' not in html  # pinned: the method picker chooses it
    assert 'id="method-dpo" aria-describedby="method-dpo-help" checked' in html
    assert page["Vary"].count("HX-Request") == 1
    swapped = admin_client.get(f"/projects/{judged_project.pk}/rounds/?method=grpo", headers=HX)
    fragment = swapped.content.decode()
    assert fragment.lstrip().startswith('<form id="launch-form"')
    assert 'id="method-grpo" aria-describedby="method-grpo-help" checked' in fragment
    assert 'name="policy.beta" value="0.05"' in fragment
    assert "&quot;method&quot;: &quot;grpo&quot;" in fragment  # the resolved config, shown
    assert "<html" not in fragment


@pytest.mark.django_db
def test_launch_then_watch_the_round(
    admin_client: Client,
    judged_project: Any,
    fake_engine: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    url = f"/projects/{judged_project.pk}/rounds/"
    form = admin_client.get(url).context["form"]
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            url, {"method": "dpo", "config": form.fields["config"].initial}
        )
    round_ = Round.objects.get(project=judged_project)
    assert response.status_code == 302
    assert response["Location"] == f"/rounds/{round_.pk}/"
    live = admin_client.get(f"/rounds/{round_.pk}/", headers=HX).content.decode()
    assert live.lstrip().startswith('<section id="round-live"')
    assert 'hx-trigger="every 2s"' not in live  # done: polling stops
    assert live.count('role="progressbar"') == 4
    assert 'aria-valuenow="100"' in live
    assert "<svg" in live and "loss" in live
    assert "new comparisons" in live
    assert "Held-out accuracy</dt><dd>75%" in live
    assert (
        '<dt>Reward models averaged</dt><dd data-testid="reward-members">3 <span class="muted">'
        "(trained from 3 seeds on the same pairs; each alone: 70%, 70%, 70%)" in live
    )
    assert "Reward-model win-rate vs parent</dt><dd>60%" in live
    assert "8 vs champion, 8 on-policy" in live
    assert "3 held-out prompts sampled for evaluation (not queued)" in live
    page = admin_client.get(f"/rounds/{round_.pk}/")
    assert "Full config" in page.content.decode()


@pytest.mark.django_db
def test_active_round_polls_and_can_be_cancelled(
    admin_client: Client, judged_project: Any, fake_engine: Path
) -> None:
    round_ = services.round_launch(project=judged_project, method="rloo")
    live = admin_client.get(f"/rounds/{round_.pk}/", headers=HX).content.decode()
    assert 'hx-trigger="every 2s"' in live
    assert "Cancel round" in live
    assert "Waiting for a worker on queue" in live
    listing = admin_client.get(
        f"/projects/{judged_project.pk}/rounds/", headers=HX
    ).content.decode()
    assert 'hx-trigger="every 2s"' in listing
    response = admin_client.post(f"/rounds/{round_.pk}/cancel/")
    assert response.status_code == 302
    round_.refresh_from_db()
    assert round_.status == RoundStatus.CANCELLED
    page = admin_client.get(f"/rounds/{round_.pk}/").content.decode()
    assert "Retry" in page and "cancel" in page.lower()
    admin_client.post(f"/rounds/{round_.pk}/retry/")
    round_.refresh_from_db()
    assert round_.status == RoundStatus.QUEUED


@pytest.mark.django_db
def test_launch_errors_are_shown_on_the_form(admin_client: Client, demo_project: Any) -> None:
    response = admin_client.post(
        f"/projects/{demo_project.pk}/rounds/", {"method": "dpo", "config": "{}"}, headers=HX
    )
    assert response.status_code == 422
    assert "no usable preference" in response.content.decode()
    bad_json = admin_client.post(
        f"/projects/{demo_project.pk}/rounds/", {"method": "dpo", "config": "{oops"}
    )
    assert bad_json.status_code == 422
    assert "not valid JSON" in bad_json.content.decode()


@pytest.mark.django_db
def test_checkpoint_lineage_and_promote(
    admin_client: Client,
    judged_project: Any,
    fake_engine: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        round_ = services.round_launch(project=judged_project, method="dpo")
    round_.refresh_from_db()
    page = admin_client.get(f"/projects/{judged_project.pk}/checkpoints/").content.decode()
    assert "base model" in page and "champion" in page
    assert f'data-checkpoint="{round_.checkpoint_id}"' in page
    assert "no judged pairs yet" in page
    assert "Reward-model win-rate vs parent" in page and "60%" in page
    url = f"/checkpoints/{round_.checkpoint_id}/promote/"
    refused = admin_client.post(url, follow=True).content.decode()
    assert "not promoted: humans have judged no pair" in refused
    assert Checkpoint.objects.champion_of(judged_project) != round_.checkpoint
    forced = admin_client.post(url, {"force": "1"}, follow=True).content.decode()
    assert "forced past the promotion gate" in forced
    champion = Checkpoint.objects.champion_of(judged_project)
    assert champion is not None and champion.pk == round_.checkpoint_id
    assert champion.metrics["promotion"]["forced"] is True
    assert champion.metrics["promotion"]["by"] == "boss"
    assert "data-promotion" in forced and "<b>forced</b>" in forced


@pytest.mark.django_db
def test_choose_the_project_model_before_the_first_round(
    admin_client: Client, judged_project: Any, fake_engine: Path
) -> None:
    other = services.model_spec_save(name="qwen", base_model="Qwen/Qwen2.5-0.5B-Instruct")
    page = admin_client.get(f"/projects/{judged_project.pk}/checkpoints/").content.decode()
    assert 'name="model_spec"' in page and "Qwen/Qwen2.5-0.5B-Instruct" in page
    url = f"/projects/{judged_project.pk}/model/"
    response = admin_client.post(url, {"model_spec": str(other.pk)}, follow=True)
    assert "now tunes qwen" in response.content.decode()
    assert services.checkpoint_champion(project=judged_project).model_spec == other
    response = admin_client.post(url, {"model_spec": "nonsense"}, follow=True)
    assert "choose one of the model specs" in response.content.decode()
    services.project_model_set(project=judged_project, model_spec=services.model_spec_default())
    services.round_launch(project=judged_project, method="dpo")
    page = admin_client.get(f"/projects/{judged_project.pk}/checkpoints/").content.decode()
    assert "fixed once the project has rounds" in page and 'name="model_spec"' not in page
    response = admin_client.post(url, {"model_spec": str(other.pk)}, follow=True)
    assert "already has rounds" in response.content.decode()
    assert services.checkpoint_champion(project=judged_project).model_spec != other


@pytest.mark.django_db
def test_checkpoints_page_of_a_new_project_writes_nothing(admin_client: Client) -> None:
    project = ProjectFactory.create()
    page = admin_client.get(f"/projects/{project.pk}/checkpoints/").content.decode()
    assert "No checkpoints yet" in page and "will tune the built-in model" in page
    assert not Checkpoint.objects.filter(project=project).exists()


# --- the polling pages: query counts flat in the history, an expired session ----------------------


@pytest.mark.django_db
@pytest.mark.parametrize("rounds", [1, 4])
def test_polling_pages_query_counts_do_not_grow_with_the_history(
    admin_client: Client, round_history: Any, django_assert_num_queries: Any, rounds: int
) -> None:
    """session, user, admin group, then each page's own; with 1 round (1 attempt per step) or 4
    (4 attempts per step, 8 checkpoints) alike."""
    project = ProjectFactory.create()
    latest = round_history(project, rounds, attempts=rounds)[-1]
    # + round, its runs, 2 queue counts, the human judgments of its checkpoint vs its parent
    with django_assert_num_queries(8):
        page = admin_client.get(f"/rounds/{latest.pk}/")
    assert page.content.decode().count('role="progressbar"') == 4
    with django_assert_num_queries(8):
        live = admin_client.get(f"/rounds/{latest.pk}/", headers=HX).content.decode()
    assert live.lstrip().startswith('<section id="round-live"')
    with django_assert_num_queries(5):  # + project, its rounds
        listing = admin_client.get(f"/projects/{project.pk}/rounds/", headers=HX)
    assert listing.content.decode().count("<tr>") == rounds + 1
    with django_assert_num_queries(6):  # + the base model's path (the form's size-aware defaults)
        admin_client.get(f"/projects/{project.pk}/rounds/")
    # + project, checkpoints, rounds, all judgments between checkpoints, the rounds that made
    # them (the gate's flags), reward models, model specs, has-rounds, the project's model
    with django_assert_num_queries(11):
        checkpoints = admin_client.get(f"/projects/{project.pk}/checkpoints/").content.decode()
    # each candidate won its one pair against the base (its parent, or the current champion)
    assert checkpoints.count("<b>100%</b> of 1 ") == rounds
    assert checkpoints.count('data-gate="refuses"') == rounds  # one pair decides nothing
    assert checkpoints.count("data-leaderboard=") == rounds + 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["/rounds/{round}/", "/projects/{project}/rounds/", "/projects/{project}/checkpoints/"]
)
def test_an_expired_session_sends_the_browser_to_login_instead_of_swapping_it_in(
    judged_project: Any, url: str
) -> None:
    round_ = services.round_launch(project=judged_project, method="dpo")
    path = url.format(round=round_.pk, project=judged_project.pk)
    swap = Client().get(path, headers={**HX, "HX-Current-URL": f"http://testserver{path}"})
    assert swap.status_code == 200
    assert swap["HX-Redirect"] == f"/accounts/login/?next={quote(path, safe='')}"
    assert swap.content == b""  # no login form inside #round-live
    plain = Client().get(path)  # a full page load still gets the ordinary redirect
    assert plain.status_code == 302 and plain["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_the_launch_message_goes_with_the_next_poll(
    admin_client: Client, judged_project: Any, fake_engine: Path
) -> None:
    url = f"/projects/{judged_project.pk}/rounds/"
    form = admin_client.get(url).context["form"]
    response = admin_client.post(
        url, {"method": "dpo", "config": form.fields["config"].initial}, follow=True
    )
    page = response.content.decode()
    live = page[page.index('<section id="round-live"') :]
    assert "Round 1 launched from checkpoint #" in live  # shown inside the polled section
    polled = admin_client.get(response.redirect_chain[-1][0], headers=HX).content.decode()
    assert "launched" not in polled and "queued." not in polled


@pytest.mark.django_db
def test_checkpoints_page_numbers_the_base_model_as_it_is_shown(
    admin_client: Client, judged_project: Any
) -> None:
    services.round_launch(project=judged_project, method="dpo")
    page = admin_client.get(f"/projects/{judged_project.pk}/checkpoints/").content.decode()
    base = Checkpoint.objects.get(project=judged_project, parent__isnull=True)
    assert f"<b>#{base.pk}</b>" in page and "base model (" in page
    assert "checkpoint 0" not in page
