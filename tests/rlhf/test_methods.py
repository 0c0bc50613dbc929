"""The method registry: everything derives from it, and a launch checks the whole config against
the engine's specs, refusing a bad value by its field's name at every entry point."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.services import LabelingError
from rlhf import methods, runner, services
from rlhf.forms import RoundLaunchForm
from rlhf.methods import METHOD_REGISTRY, ConfigError, resolve_config, settings_of
from rlhf.models import Round
from rlhf.training.specs import ONLINE_ALGORITHMS, SPEC_TYPES, STEPS, DPOSpec, KTOSpec
from tests.factories import UserFactory

# Values only the engine's spec classes refuse (the round's own rules let them through).
ENGINE_ONLY = [
    ("robust", {"policy": {"label_smoothing": 0.7}}, "policy.label_smoothing"),
    ("grpo", {"policy": {"batch_size": 6}}, "policy.batch_size"),
    ("kto", {"policy": {"undesirable_weight": 0.0}}, "policy.undesirable_weight"),
    ("kto", {"policy": {"batch_size": 1}}, "policy.batch_size"),
    ("kto", {"policy": {"anchor_kl": -0.1}}, "policy.anchor_kl"),
    ("dpo", {"policy": {"gradient_accumulation_steps": "2"}}, "policy.gradient_accumulation_steps"),
    ("dpo", {"reward": {"lora_dropout": 1.5}}, "reward.lora_dropout"),
    ("dpo", {"evaluate": {"rules": ["nice"]}}, "evaluate.rules"),
    ("dpo", {"generate": {"temperature": -1.0}}, "generate.temperature"),
]


def test_every_method_maps_onto_the_engine() -> None:
    assert set(METHOD_REGISTRY) >= {"dpo", "ipo", "robust", "kto", "grpo", "rloo"}
    for method in METHOD_REGISTRY.values():
        assert method.engine_step in STEPS and method.spec is SPEC_TYPES[method.engine_step]
        assert method.engine_step in runner.TRAINING_STEPS
        assert method.family in methods.FAMILIES and method.family in methods.FAMILY_LABELS
        allowed = settings_of(method, "policy")
        assert set(method.policy_defaults) <= set(allowed)
        assert set(method.pinned) <= set(method.policy_defaults)
        if method.family == "online":
            assert method.policy_defaults["method"] in ONLINE_ALGORITHMS
        resolve_config(method.name)  # the defaults pass the engine's own checks
    assert Round._meta.get_field("method").choices == [
        (m.name, m.label) for m in METHOD_REGISTRY.values()
    ]


def test_settings_are_the_engine_spec_fields_less_what_the_runner_fills() -> None:
    kto = settings_of(METHOD_REGISTRY["kto"], "policy")
    fields = {f.name for f in dataclasses.fields(KTOSpec)}
    assert set(kto) == fields - methods.RUNNER_FIELDS
    assert {"desirable_weight", "undesirable_weight", "beta", "anchor_kl"} <= set(kto)
    assert resolve_config("kto", {"policy": {"anchor_kl": 0.2}})["policy"]["anchor_kl"] == 0.2
    assert resolve_config("dpo")["policy"]["anchor_kl"] == methods.DPO_ANCHOR_KL > 0
    assert "desirable_weight" not in settings_of(METHOD_REGISTRY["dpo"], "policy")
    assert not {"output_dir", "data", "base_model", "seed"} & set(kto)
    with pytest.raises(ConfigError) as unknown:
        resolve_config("dpo", {"policy": {"desirable_weight": 2.0}})
    assert unknown.value.field == "policy.desirable_weight"


@pytest.mark.parametrize(("method", "config", "field"), ENGINE_ONLY)
def test_resolve_checks_the_whole_config_against_the_engine(
    method: str, config: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError) as error:
        resolve_config(method, config)
    assert error.value.field == field
    assert str(error.value).startswith(field)


def test_a_method_keeps_the_settings_that_define_it() -> None:
    with pytest.raises(ConfigError) as loss:
        resolve_config("dpo", {"policy": {"loss_type": "ipo"}})
    assert loss.value.field == "policy.loss_type"
    with pytest.raises(ConfigError) as online:
        resolve_config("grpo", {"policy": {"method": "rloo"}})
    assert online.value.field == "policy.method"
    with pytest.raises(ConfigError) as unknown:
        methods.method_get("ppo")
    assert unknown.value.field == "method" and "PR #7020" in str(unknown.value)


# --- the three entry points -----------------------------------------------------------------------


@pytest.fixture
def admin_api(db: Any) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=UserFactory.create(username="boss", role="admin"))
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def admin_client(db: Any) -> Client:
    client = Client()
    client.force_login(UserFactory.create(username="chief", role="admin"))
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "config", "field"),
    [("nope", {}, "method"), ENGINE_ONLY[0], ENGINE_ONLY[2], ("dpo", {"policy": {"beta": -1}}, "policy.beta")],
)  # fmt: skip
def test_api_refuses_with_the_field(
    admin_api: APIClient, judged_project: Any, method: str, config: dict[str, Any], field: str
) -> None:
    url = f"/api/v1/projects/{judged_project.pk}/rounds/"
    response = admin_api.post(url, {"method": method, "config": config}, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert Round.objects.count() == 0


@pytest.mark.django_db
def test_launch_form_refuses_with_the_field(admin_client: Client, judged_project: Any) -> None:
    url = f"/projects/{judged_project.pk}/rounds/"
    unknown = admin_client.post(url, {"method": "nope", "config": "{}"})
    assert unknown.status_code == 422
    assert "nope is not one of the available choices" in unknown.content.decode()
    config = json.dumps({"policy": {"label_smoothing": 0.7}})
    bad = admin_client.post(url, {"method": "robust", "config": config})
    assert bad.status_code == 422
    html = bad.content.decode()
    assert (
        '<a href="#id_policy.label_smoothing">policy.label_smoothing</a>: must be in [0, 0.5)'
        in html
    )
    field = bad.context["form"]["policy.label_smoothing"]
    assert field.errors == ["must be in [0, 0.5)"]
    assert Round.objects.count() == 0


@pytest.mark.django_db
def test_launch_form_offers_every_method_with_its_defaults(
    admin_client: Client, judged_project: Any
) -> None:
    page = admin_client.get(f"/projects/{judged_project.pk}/rounds/").content.decode()
    for method in METHOD_REGISTRY.values():
        assert f'<input type="radio" name="method" value="{method.name}"' in page
    assert '<p class="method-family-label">Offline, unpaired answers</p>' in page
    form = RoundLaunchForm(method="kto")
    policy = {
        path: form.fields[path].initial for path in form.setting_paths["policy"]
    }  # the method's defaults, then the engine's for the common settings
    assert {k: policy[f"policy.{k}"] for k in ("beta", "max_steps", "reference")} == {
        "beta": "0.1",
        "max_steps": str(methods.DPO_MAX_STEPS),
        "reference": "parent",
    }
    assert "desirable_weight" in str(form.fields["config"].help_text)
    assert "desirable" in form.method_help


@pytest.mark.django_db
def test_launch_round_command_refuses_with_the_field(judged_project: Any) -> None:
    def launch(*args: str) -> None:
        call_command("launch_round", str(judged_project.pk), *args, stdout=io.StringIO())

    with pytest.raises(CommandError, match=r"^method: unknown method 'nope'"):
        launch("--method", "nope")
    with pytest.raises(CommandError, match=r"^policy\.label_smoothing: "):
        launch("--method", "robust", "--config", '{"policy": {"label_smoothing": 0.7}}')
    with pytest.raises(CommandError, match=r"^evaluate\.rules: "):
        launch("--config", '{"evaluate": {"rules": ["nice"]}}')
    assert Round.objects.count() == 0


@pytest.mark.django_db
def test_service_refuses_before_anything_is_written(judged_project: Any, data_dir: Path) -> None:
    with pytest.raises(LabelingError) as error:
        services.round_launch(
            project=judged_project, method="kto", config={"policy": {"batch_size": 1}}
        )
    assert error.value.field == "policy.batch_size"
    assert Round.objects.count() == 0
    assert list(data_dir.iterdir()) == []


def test_vllm_generation_is_launch_config_checked_by_field_name() -> None:
    """docs/deploy.md's vLLM launch configs: accepted as written, refused by field name."""
    from rlhf import methods

    config = methods.resolve_config(
        "grpo",
        {
            "policy": {
                "use_vllm": True,
                "vllm_mode": "server",
                "vllm_server_base_url": "http://g:8000",
            }
        },
    )
    assert config["policy"]["use_vllm"] is True
    with pytest.raises(methods.ConfigError, match=r"policy\.vllm_server_base_url"):
        methods.resolve_config("grpo", {"policy": {"use_vllm": True, "vllm_mode": "server"}})


@pytest.mark.parametrize("model_params", [None, 134_515_008])  # the toy, SmolLM2-135M
@pytest.mark.parametrize("reward_pairs", [None, 0])  # the dpo default (8), off
def test_a_first_round_outside_the_runner_builds_the_dpo_spec(
    tmp_path: Path, model_params: int | None, reward_pairs: int | None
) -> None:
    """The benchmarks (round_budget.py, gpu_round.py) run a round's policy step without the
    runner: with the default reward-model pairs the spec needs the prompts and the reward model
    the runner would hand over (without them DPOSpec refuses), and lists become tuples."""
    overrides = {} if reward_pairs is None else {"policy": {"reward_pairs": reward_pairs}}
    config = resolve_config("dpo", overrides, model_params=model_params, snapshot_size=200)
    spec = DPOSpec
    paths = spec.placeholder_paths(tmp_path)
    fields = methods.first_round_policy_fields(
        config["policy"], prompts=paths["prompts"], reward_model=paths["reward_model"]
    )
    built = spec.from_json(
        {k: v for k, v in paths.items() if k not in {"prompts", "reward_model"}} | fields
    )
    assert built.reference == "base"
    if reward_pairs is None:
        assert built.reward_pairs == methods.DPO_REWARD_PAIRS > 0
        assert (built.prompts, built.reward_model) == (paths["prompts"], paths["reward_model"])
    else:
        assert built.reward_pairs == 0 and built.prompts is None and built.reward_model is None
    if model_params is not None:  # the size-aware defaults name the LoRA targets, as a list
        assert isinstance(config["policy"]["lora_target_modules"], list)
        assert built.lora_target_modules == tuple(config["policy"]["lora_target_modules"])
    # what the scripts did before: the policy section alone is refused once reward pairs are on
    if reward_pairs is None:
        with pytest.raises(Exception, match="reward_pairs"):
            spec.from_json({**paths, "prompts": None, "reward_model": None, **config["policy"]})
