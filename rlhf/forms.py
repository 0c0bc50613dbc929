"""Forms of the tuning pages: they check the shape of input only (the rules are in services)."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from labeling.safeinput import UnsafeInput, json_parse
from rlhf.methods import (
    DEFAULT_METHOD,
    FAMILIES,
    FAMILY_LABELS,
    METHOD_REGISTRY,
    default_config,
    method_choices,
    settings_of,
)


class RoundLaunchForm(forms.Form):
    method = forms.ChoiceField(
        choices=method_choices,
        initial=DEFAULT_METHOD,
        help_text="DPO is the default. GRPO and RLOO are the PPO-family online RL methods: TRL "
        "removed PPOTrainer (PR #7020); GRPO is PPO's clipped objective with a group baseline "
        "instead of a critic, RLOO its REINFORCE cousin.",
    )
    config = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "mono"}),
        help_text="The round config as JSON: the method's defaults, edit what you need. Training "
        "settings left out take the training engine's defaults.",
    )

    def __init__(self, *args: Any, method: str = DEFAULT_METHOD, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        entry = METHOD_REGISTRY.get(method) or METHOD_REGISTRY[DEFAULT_METHOD]
        self.fields["method"].initial = entry.name
        self.fields["config"].initial = json.dumps(default_config(entry.name), indent=2)
        self.method_help = f"{entry.description} Trains on {FAMILIES[entry.family]}."
        self.fields["config"].help_text += " policy accepts: " + ", ".join(
            settings_of(entry, "policy")
        )

    @property
    def method_groups(self) -> list[tuple[str, list[tuple[str, str, str]]]]:
        """The picker's options by family: (family label, [(name, label, description)])."""
        return [
            (
                label,
                [(m.name, m.label, m.description) for m in METHOD_REGISTRY.values()
                 if m.family == family],
            )
            for family, label in FAMILY_LABELS.items()
        ]  # fmt: skip

    def clean_config(self) -> dict[str, Any]:
        try:
            value = json_parse(self.cleaned_data["config"] or "{}")
        except UnsafeInput as exc:
            raise forms.ValidationError(str(exc)) from exc
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise forms.ValidationError("the config must be a JSON object")
        return value
