"""Forms of the htmx pages. They check the shape of input only; the rules live in services.

The judgment form speaks in *screen* terms (``left`` / ``right``): the view maps the shown side
to the canonical response (``a`` / ``b``) with the assignment's ``shown_left``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from labeling.models import Flag, QueueOrder, Strength
from labeling.roles import ANNOTATOR_GROUP
from labeling.safeinput import DB_ID_MAX

SHOWN_CHOICES = [
    ("left", "Left is better"),
    ("right", "Right is better"),
    ("tie", "Tie"),
    ("both_bad", "Both bad"),
]
STRENGTHLESS_SHOWN = {"tie", "both_bad"}
# The keys of static/js/label.js, shown next to each option.
CHOICE_KEYS = {"left": "1", "right": "2", "tie": "T", "both_bad": "B"}
STRENGTH_KEYS = {1: "7", 2: "8", 3: "9", 4: "0"}
STRENGTH_SHORT = {1: "Negligibly", 2: "Slightly", 3: "Clearly", 4: "Much"}


@dataclass(frozen=True)
class Option:
    """One radio or checkbox as the labeling template draws it."""

    value: str
    label: str
    key: str
    checked: bool


class JudgmentForm(forms.Form):
    assignment = forms.IntegerField(widget=forms.HiddenInput, min_value=1, max_value=DB_ID_MAX)
    choice = forms.ChoiceField(
        choices=SHOWN_CHOICES,
        widget=forms.RadioSelect,
        error_messages={"required": "Pick a side, Tie or Both bad."},
    )
    strength = forms.TypedChoiceField(
        choices=Strength.choices,
        coerce=int,
        required=False,
        empty_value=None,
        widget=forms.RadioSelect,
    )
    rationale = forms.CharField(required=False, max_length=5000, widget=forms.Textarea)
    flags = forms.MultipleChoiceField(
        choices=Flag.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    time_spent_ms = forms.IntegerField(
        required=False, min_value=0, max_value=2**31 - 1, widget=forms.HiddenInput
    )
    # rank: Project.ask_acceptable ("is the better response acceptable?"); the view requires it
    acceptable = forms.ChoiceField(
        choices=[("yes", "Acceptable"), ("no", "Not acceptable")],
        required=False,
        widget=forms.RadioSelect,
    )

    def acceptable_options(self) -> list[Option]:  # rank
        current = str(self["acceptable"].value() or "")
        return [
            Option("yes", "Yes, acceptable", "Y", current == "yes"),
            Option("no", "No, needs a rewrite", "N", current == "no"),
        ]

    def choice_options(self) -> list[Option]:
        current = str(self["choice"].value() or "")
        return [
            Option(value, label, CHOICE_KEYS[value], value == current)
            for value, label in SHOWN_CHOICES
        ]

    def strength_options(self) -> list[Option]:
        current = str(self["strength"].value() or "")
        return [
            Option(str(value), STRENGTH_SHORT[value], STRENGTH_KEYS[value], str(value) == current)
            for value in Strength.values
        ]

    def flag_options(self) -> list[Option]:
        current = {str(v) for v in (self["flags"].value() or [])}
        return [Option(value, label, "", value in current) for value, label in Flag.choices]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # A radio cannot be unchecked without JavaScript: a strength left over from before the
        # annotator switched to Tie / Both bad is dropped rather than refused.
        if cleaned.get("choice") in STRENGTHLESS_SHOWN:
            cleaned["strength"] = None
        return cleaned


class AssignmentForm(forms.Form):
    """Skip: which lease to pass on."""

    assignment = forms.IntegerField(widget=forms.HiddenInput, min_value=1, max_value=DB_ID_MAX)


class ProjectCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    guidelines = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="Markdown, shown to annotators above every comparison.",
    )
    judgments_per_comparison = forms.IntegerField(
        label="Judgments per comparison (k)", min_value=1, max_value=50, initial=1
    )
    lease_minutes = forms.IntegerField(
        label="Lease minutes",
        min_value=1,
        max_value=32767,
        initial=10,
        help_text="How long a comparison stays reserved for the annotator who opened it.",
    )
    max_pairs_per_prompt = forms.IntegerField(
        label="Max pairs per prompt",
        min_value=1,
        max_value=32767,
        required=False,
        help_text="Empty: every pair of a prompt's responses becomes a comparison.",
    )
    annotators = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        annotators: Any = self.fields["annotators"]
        annotators.queryset = (
            get_user_model().objects.filter(groups__name=ANNOTATOR_GROUP).order_by("username")
        )


# --- gold items (admins) -----------------------------------------------------------------------


class GoldRateForm(forms.Form):
    gold_rate = forms.FloatField(
        label="Gold rate",
        help_text="Share of each annotator's items that are gold: 0 (off) to 0.5.",
    )


class QueueOrderForm(forms.Form):
    queue_order = forms.ChoiceField(
        label="Queue order",
        choices=QueueOrder.choices,
        help_text="Uncertainty: the worker re-scores open pairs after each reward step and serves "
        "first the ones a label would teach the reward model most about (not the ones it calls a "
        "tie) or whose votes it disagrees with.",
    )


class GoldGenerateForm(forms.Form):
    count = forms.IntegerField(label="How many", initial=20)


class GoldMarkForm(forms.Form):
    answer = forms.CharField(required=False, help_text="a, b, or empty to clear.")


# --- rank: labeling-depth settings (labeling.depth_views) ---


class DepthSettingsForm(forms.Form):
    task_kind = forms.ChoiceField(
        label="Task",
        choices=[("pairwise", "Pairwise comparisons"), ("ranking", "Rank K responses (3-9)")],
    )
    ask_acceptable = forms.BooleanField(
        label="Ask whether the better response is acceptable",
        required=False,
        help_text="Unacceptable and both-bad comparisons go to the rewrite export, not to pairs.",
    )
    onboarding_required = forms.BooleanField(
        label="Onboarding before live work",
        required=False,
        help_text="Annotators acknowledge the guidelines and pass the qualification set.",
    )
    qualification_items = forms.IntegerField(
        label="Qualification items",
        min_value=0,
        max_value=100,
        help_text="The first N gold items (0: guidelines only).",
    )
    qualification_pass_mark = forms.FloatField(
        label="Pass mark", min_value=0, max_value=1, help_text="Share right to pass, 0-1."
    )


class RankingSetsForm(forms.Form):
    size = forms.IntegerField(
        label="Responses per set (K)",
        min_value=3,
        max_value=9,
        initial=4,
        help_text="One set per prompt with at least 3 responses.",
    )


# --- end rank ---
