"""The round launch form: the method picker with descriptions, the resolved defaults as fields
named by config path, the advanced JSON over them, errors on the field they name, the snapshot
size with a refusal that says how many more judgments are needed, and the preview."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.utils.html import escape

from rlhf.methods import METHOD_REGISTRY
from rlhf.models import Checkpoint, Round
from tests.factories import UserFactory

HX = {"HX-Request": "true"}


@pytest.fixture
def admin_client(db: Any) -> Client:
    client = Client()
    client.force_login(UserFactory.create(username="boss", role="admin"))
    return client


def _url(project: Any) -> str:
    return f"/projects/{project.pk}/rounds/"


@pytest.mark.django_db
def test_every_method_is_offered_with_its_one_line_description(
    admin_client: Client, judged_project: Any
) -> None:
    html = admin_client.get(_url(judged_project)).content.decode()
    for method in METHOD_REGISTRY.values():
        assert f'id="method-{method.name}"' in html
        assert f'<p class="help" id="method-{method.name}-help">' in html
        assert f'<label for="method-{method.name}">' in html
        assert escape(method.description) in html
    # The advanced JSON box stays, folded and empty: the fields carry the defaults.
    assert 'name="config"' in html and "Advanced: JSON overrides" in html


@pytest.mark.django_db
def test_the_fields_and_the_advanced_json_make_the_config(
    admin_client: Client, judged_project: Any, fake_engine: Any
) -> None:
    response = admin_client.post(
        _url(judged_project),
        {
            "method": "ipo",
            "policy.learning_rate": "0.002",
            "policy.max_steps": "12",
            "snapshot.rounds": "all",
            "generate.human_eval": "true",
            "reward.max_steps": "",  # empty: the default
            "config": '{"policy": {"max_steps": 9}, "seed": 3}',
        },
    )
    assert response.status_code == 302
    round_ = Round.objects.get(project=judged_project)
    assert round_.method == "ipo"
    policy = round_.config["policy"]
    assert policy["learning_rate"] == 0.002 and policy["loss_type"] == "ipo"
    assert policy["max_steps"] == 9  # the advanced JSON wins over the field
    assert round_.config["seed"] == 3
    assert round_.config["snapshot"]["rounds"] == "all"
    assert round_.config["generate"]["human_eval"] is True
    assert round_.config["reward"]["max_steps"] == 32


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("policy.beta", "0", "policy.beta must be &gt; 0"),
        ("policy.max_steps", "many", "Enter a whole number."),
        ("snapshot.rounds", "first", "round numbers like 1, 2"),
        ("generate.num_samples", "1", "generate.num_samples must be &gt;= 2"),
    ],
)
def test_an_error_names_its_field_and_launches_nothing(
    admin_client: Client, judged_project: Any, field: str, value: str, reason: str
) -> None:
    response = admin_client.post(_url(judged_project), {"method": "dpo", field: value}, headers=HX)
    assert response.status_code == 422
    html = response.content.decode()
    assert f'<a href="#id_{field}">{field}</a>: ' in html  # the summary links to the field
    assert f'id="id_{field}_error"' in html  # and the field carries its error
    assert reason in html
    assert f'value="{value}"' in html  # the input survives
    assert not Round.objects.exists()


@pytest.mark.django_db
def test_too_small_a_snapshot_is_refused_saying_how_many_more(
    admin_client: Client, judged_project: Any, settings: Any
) -> None:
    preview = admin_client.get(f"{_url(judged_project)}?method=dpo", headers=HX).content.decode()
    rows = int(preview.split("training rows")[0].rsplit("<b>", 1)[1].split("</b>")[0])
    settings.PAIRWISE_MIN_SNAPSHOT = rows + 7
    preview = admin_client.get(f"{_url(judged_project)}?method=dpo", headers=HX).content.decode()
    assert f"It trains on <b>{rows}</b> training rows" in preview
    assert "judge at least 7 more</b>" in preview and "would be refused" in preview
    refused = admin_client.post(_url(judged_project), {"method": "dpo"}, headers=HX)
    assert refused.status_code == 422
    assert "judge 7 more" in refused.content.decode()
    assert not Round.objects.exists()
    settings.PAIRWISE_MIN_SNAPSHOT = rows
    enough = admin_client.get(f"{_url(judged_project)}?method=dpo", headers=HX).content.decode()
    assert "would be refused" not in enough and f"at least {rows}." in enough


@pytest.mark.django_db
def test_the_preview_says_steps_data_and_reference(
    admin_client: Client, judged_project: Any
) -> None:
    url = _url(judged_project)
    dpo = admin_client.get(f"{url}?method=dpo", headers=HX).content.decode()
    assert "Reward model: 32 steps" in dpo
    base = Checkpoint.objects.get(project=judged_project)
    assert "from the comparisons no round made" in dpo
    assert f"48 steps from checkpoint #{base.pk}, the base model" in dpo
    assert "learning rate 0.005" in dpo
    assert "reference model: the base model (the parent is the base)" in dpo
    assert "up to 200 training prompts, 2 samples each" in dpo
    grpo = admin_client.get(f"{url}?method=grpo", headers=HX).content.decode()
    assert (
        f"40 steps from checkpoint #{base.pk}, the base model" in grpo
    )  # the engine's default budget
    # A changed field previews with the form's values kept (and launches nothing).
    changed = admin_client.get(
        url,
        {"preview": "1", "method": "dpo", "policy.max_steps": "7", "policy.reference": "base"},
        headers=HX,
    )
    html = changed.content.decode()
    assert changed.status_code == 200
    assert 'name="policy.max_steps" value="7"' in html and "7 steps from checkpoint" in html
    assert "reference model: the base model." in html
    assert not Round.objects.exists()


@pytest.mark.django_db
def test_after_a_promotion_the_reference_is_the_parent_checkpoint(
    admin_client: Client, judged_project: Any, round_history: Any
) -> None:
    (made,) = round_history(judged_project, 1)
    Checkpoint.objects.filter(project=judged_project).update(is_champion=False)
    Checkpoint.objects.filter(pk=made.checkpoint_id).update(is_champion=True)
    html = admin_client.get(f"{_url(judged_project)}?method=dpo", headers=HX).content.decode()
    assert f"from checkpoint #{made.checkpoint_id}, the champion" in html
    assert f"reference model: the parent, checkpoint #{made.checkpoint_id}." in html
