"""Forms of the tuning pages: they check the shape of input only (the rules are in services).

The launch form shows a method's resolved defaults as one field per setting, named by its
config path (``policy.learning_rate``), so that an error of the config names the field it sits
on; the raw JSON stays as an advanced box whose overrides apply over the fields.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from django import forms

from labeling.reliability import WEIGHTINGS as ANNOTATOR_WEIGHTS
from labeling.safeinput import UnsafeInput, json_parse
from rlhf.methods import (
    ADJUDICATED,
    DEFAULT_METHOD,
    FAMILIES,
    FAMILY_LABELS,
    METHOD_REGISTRY,
    SECTIONS,
    method_choices,
    resolve_config,
    settings_of,
)
from rlhf.training.specs import RewardSpec

# The settings whose values are one of a few words: a select instead of a text box.
SETTING_CHOICES: dict[str, tuple[str, ...]] = {
    "snapshot.ties": ("drop", "split"),
    "snapshot.both_bad": ("drop", "split"),
    "snapshot.annotator_weights": tuple(ANNOTATOR_WEIGHTS),
    "snapshot.adjudicated": tuple(ADJUDICATED),
    "policy.reference": ("parent", "base"),
}
ROUNDS_SETTINGS = ("snapshot.rounds", "snapshot.reward_rounds")
SECTION_LABELS = {
    "policy": "Policy",
    "reward": "Reward model",
    "snapshot": "Training data (snapshot)",
    "evaluate": "Evaluation",
    "generate": "Fresh responses into the queue",
}
# Engine settings shown as fields even where the method's defaults leave them to the engine
# (its default is then the field's initial value).
ENGINE_SHOWN = ("learning_rate", "max_steps", "batch_size", "lora_r")
# The sections shown open; the others are folded (the defaults rarely need a change there).
OPEN_SECTIONS = ("policy",)


@dataclass(frozen=True)
class SettingGroup:
    section: str
    label: str
    fields: list[forms.BoundField]
    open: bool


def _words(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _rounds(value: str) -> str | list[int]:
    """``all`` / ``latest`` / ``newest``, or round numbers written ``1, 2`` (or ``[1, 2]``)."""
    text = value.strip().strip("[]").strip()
    if text in ("all", "latest", "newest"):
        return text
    try:
        return [int(part) for part in text.replace(",", " ").split()]
    except ValueError as exc:
        raise forms.ValidationError("'all', 'latest', 'newest' or round numbers like 1, 2") from exc


def _setting_field(path: str, default: Any) -> forms.Field | None:
    """The form field of one config setting, or None for values the fields do not edit."""
    common: dict[str, Any] = {"required": False, "label": path, "initial": _words(default)}
    if path in SETTING_CHOICES:
        return forms.ChoiceField(choices=[(v, v) for v in SETTING_CHOICES[path]], **common)
    if path in ROUNDS_SETTINGS:
        return forms.CharField(
            help_text="all, latest, newest, or round numbers (0: comparisons no round made)",
            **common,
        )
    if isinstance(default, bool):
        return forms.TypedChoiceField(
            choices=[("true", "yes"), ("false", "no")], coerce=lambda v: v == "true", **common
        )
    if isinstance(default, int):
        return forms.IntegerField(**common)
    if isinstance(default, float):
        return forms.FloatField(widget=forms.NumberInput(attrs={"step": "any"}), **common)
    if isinstance(default, str):
        return forms.CharField(**common)
    return None


class RoundLaunchForm(forms.Form):
    method = forms.ChoiceField(choices=method_choices, initial=DEFAULT_METHOD)
    promote_pending = forms.BooleanField(
        required=False,
        initial=True,
        label="First promote the latest round's candidate if the promotion gate passes it",
        help_text="Then this round starts from it. The gate needs humans to prefer it to the "
        "champion (the 95% lower bound of their win-rate above the bar) and its answers to stay "
        "fluent; otherwise the round starts from the champion, and the round records why.",
    )
    config = forms.CharField(
        required=False,
        initial="",
        label="Advanced: more overrides as JSON",
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "class": "mono"}),
        help_text='Applied over the fields above, e.g. {"policy": {"lora_r": 16}}.',
    )

    def __init__(
        self,
        *args: Any,
        method: str = DEFAULT_METHOD,
        defaults: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """``defaults``: the method's resolved config to show (``selectors.launch_defaults``,
        size-aware for a real base model); the toy's defaults when absent."""
        super().__init__(*args, **kwargs)
        entry = METHOD_REGISTRY.get(method) or METHOD_REGISTRY[DEFAULT_METHOD]
        self.entry = entry
        self.fields["method"].initial = entry.name
        self.method_help = f"{entry.description} Trains on {FAMILIES[entry.family]}."
        self.fields["config"].help_text += " policy accepts: " + ", ".join(
            settings_of(entry, "policy")
        )
        if defaults is None:
            defaults = resolve_config(entry.name)
        self.setting_paths: dict[str, list[str]] = {}
        seed = _setting_field("seed", defaults["seed"])
        assert seed is not None
        self.fields["seed"] = seed
        engine_specs = {"policy": entry.spec, "reward": RewardSpec}
        self.setting_defaults: dict[str, Any] = {"seed": defaults["seed"]}
        for section in SECTIONS:
            shown = dict(defaults[section])
            if section in engine_specs:
                engine = {f.name: f.default for f in dataclasses.fields(engine_specs[section])}
                for key in ENGINE_SHOWN:
                    if key in engine and key not in shown:
                        shown[key] = engine[key]
            for key, default in shown.items():
                if key in entry.pinned and section == "policy":
                    continue  # what makes the method what it is: the picker chooses it
                path = f"{section}.{key}"
                field = _setting_field(path, default)
                if field is not None:
                    if key not in defaults[section]:
                        field.help_text = "the training engine's default"
                    self.fields[path] = field
                    self.setting_defaults[path] = default
                    self.setting_paths.setdefault(section, []).append(path)

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

    @property
    def setting_groups(self) -> list[SettingGroup]:
        groups = [SettingGroup("seed", "Seed", [self["seed"]], False)]
        return [
            SettingGroup(
                section,
                SECTION_LABELS[section],
                [self[path] for path in self.setting_paths.get(section, [])],
                section in OPEN_SECTIONS,
            )
            for section in sorted(SECTIONS, key=lambda name: name not in OPEN_SECTIONS)
        ] + groups

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

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for path in ROUNDS_SETTINGS:
            if cleaned.get(path):
                try:
                    cleaned[path] = _rounds(cleaned[path])
                except forms.ValidationError as exc:
                    self.add_error(path, exc)
        return cleaned

    @property
    def wants_promotion(self) -> bool:
        """Whether the launch puts the pending candidate through the gate first (the box's
        value; checked on a fresh form). Call after ``is_valid()`` on a bound form."""
        if not self.is_bound:
            return bool(self.fields["promote_pending"].initial)
        return bool(self.cleaned_data.get("promote_pending"))

    def overrides(self) -> dict[str, Any]:
        """The config the launch asks for: the fields given (an empty one keeps its default),
        then the advanced JSON over them. Call after ``is_valid()``."""
        data = self.cleaned_data
        result: dict[str, Any] = {}
        if self._changed("seed"):
            result["seed"] = data["seed"]
        for section, paths in self.setting_paths.items():
            for path in paths:
                if self._changed(path):
                    result.setdefault(section, {})[path.split(".", 1)[1]] = data[path]
        for key, value in (data.get("config") or {}).items():
            if isinstance(value, dict) and isinstance(result.get(key), dict):
                result[key] = {**result[key], **value}
            else:
                result[key] = value
        return result

    def _changed(self, path: str) -> bool:
        """Given, and not its default: only changes go into the round's config."""
        value = self.cleaned_data.get(path)
        if path not in self.data or value is None or value == "":
            return False
        return bool(value != self.setting_defaults[path])

    def add_config_error(self, field: str | None, message: str) -> None:
        """A refusal of the config, on the field it names (``policy.beta``) when it has one."""
        # ``config`` is the whole config to the services (e.g. too small a snapshot), not the
        # advanced box.
        if field and field in self.fields and field != "config":
            self.add_error(field, message.removeprefix(f"{field}: "))
        else:
            named = field and field != "config" and not message.startswith(field)
            self.add_error(None, f"{field}: {message}" if named else message)
