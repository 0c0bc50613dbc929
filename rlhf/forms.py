"""Forms of the tuning pages: they check the shape of input only (the rules are in services)."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from rlhf.methods import METHOD_HELP, METHODS, default_config
from rlhf.models import Method


def method_choices() -> list[tuple[str, str]]:
    return [(value, label) for value, label in Method.choices if value in METHODS]


class RoundLaunchForm(forms.Form):
    method = forms.ChoiceField(
        choices=method_choices,
        initial="dpo",
        help_text="DPO is the default. GRPO and RLOO are the PPO-family online RL methods: TRL "
        "removed PPOTrainer (PR #7020); GRPO is PPO's clipped objective with a group baseline "
        "instead of a critic, RLOO its REINFORCE cousin.",
    )
    config = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "mono"}),
        help_text="The round config as JSON: the method's defaults, edit what you need. Training "
        "settings left out take the training engine's defaults; reward and policy accept "
        "learning_rate, num_epochs, max_steps, batch_size, max_length, lora_r, lora_alpha, … "
        "(online RL: num_generations, max_completion_length, temperature).",
    )

    def __init__(self, *args: Any, method: str = "dpo", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if method not in METHODS:
            method = "dpo"
        self.fields["method"].initial = method
        self.fields["config"].initial = json.dumps(default_config(method), indent=2)
        self.method_help = METHOD_HELP[method]

    def clean_config(self) -> dict[str, Any]:
        try:
            value = json.loads(self.cleaned_data["config"] or "{}")
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise forms.ValidationError("the config must be a JSON object")
        return value
