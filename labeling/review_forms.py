"""Forms of the review, history-edit and people pages (shape of input only; rules in services).

Kept apart from ``labeling.forms`` (the labeling page's) so that each screen's forms stay on one
screen. The review filter form also parses the review API's query parameters.
"""

from __future__ import annotations

from typing import Any

from django import forms

from labeling.forms import SHOWN_CHOICES
from labeling.models import Choice, ComparisonStatus, Flag, ProjectRole, Strength
from labeling.selectors import ReviewFilters

YES_NO = [("", "Any"), ("yes", "Yes"), ("no", "No")]


class ReviewFilterForm(forms.Form):
    """The review list's filters (GET). Unknown values are a 400 naming the field."""

    q = forms.CharField(
        label="Text", required=False, max_length=200, help_text="In the prompt or a response."
    )
    round = forms.IntegerField(
        required=False, min_value=0, help_text="Round number (0: comparisons no round made)."
    )
    annotator = forms.CharField(required=False, max_length=150, help_text="Judged by (username).")
    disagreement = forms.BooleanField(
        required=False, label="Disagreement only", help_text="Votes that differ."
    )
    flag = forms.ChoiceField(
        required=False,
        label="Flagged",
        choices=[("", "Any"), ("any", "Any flag"), *Flag.choices],
    )
    gold = forms.ChoiceField(required=False, choices=YES_NO)
    adjudicated = forms.ChoiceField(required=False, choices=YES_NO)
    status = forms.ChoiceField(required=False, choices=[("", "Any"), *ComparisonStatus.choices])

    def filters(self) -> ReviewFilters:
        data: dict[str, Any] = self.cleaned_data
        return ReviewFilters(
            round=data.get("round"),
            annotator=(data.get("annotator") or "").strip(),
            disagreement=bool(data.get("disagreement")),
            flag=data.get("flag") or "",
            gold=data.get("gold") or "",
            adjudicated=data.get("adjudicated") or "",
            status=data.get("status") or "",
            q=(data.get("q") or "").strip(),
        )


class CommentForm(forms.Form):
    text = forms.CharField(label="Comment", max_length=5000, widget=forms.Textarea({"rows": 3}))


class AdjudicationForm(forms.Form):
    """A reviewer's decision, in the comparison's own terms (response A / B as stored)."""

    choice = forms.ChoiceField(
        choices=Choice.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Pick A, B, Tie or Both bad."},
    )
    strength = forms.TypedChoiceField(
        choices=[("", "—"), *Strength.choices],
        coerce=int,
        required=False,
        empty_value=None,
        help_text="Required when A or B wins.",
    )
    note = forms.CharField(required=False, max_length=5000, widget=forms.Textarea({"rows": 2}))


class JudgmentEditForm(forms.Form):
    """An annotator's edit of their own judgment, in screen terms as on the labeling page."""

    choice = forms.ChoiceField(
        choices=SHOWN_CHOICES,
        widget=forms.RadioSelect,
        error_messages={"required": "Pick a side, Tie or Both bad."},
    )
    strength = forms.TypedChoiceField(
        choices=[("", "—"), *Strength.choices],
        coerce=int,
        required=False,
        empty_value=None,
        help_text="Required when a side wins.",
    )
    rationale = forms.CharField(required=False, max_length=5000, widget=forms.Textarea({"rows": 3}))
    flags = forms.MultipleChoiceField(
        choices=Flag.choices, required=False, widget=forms.CheckboxSelectMultiple
    )


class MemberAddForm(forms.Form):
    """On the people page beside the invite form: its own element ids (``add_role``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "add_%s")
        super().__init__(*args, **kwargs)

    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=ProjectRole.choices)


class MemberRemoveForm(forms.Form):
    user = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    role = forms.ChoiceField(choices=ProjectRole.choices, widget=forms.HiddenInput)


class InviteForm(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "invite_%s")
        super().__init__(*args, **kwargs)

    role = forms.ChoiceField(choices=ProjectRole.choices)
    note = forms.CharField(required=False, max_length=200, help_text="Who it is for.")
    valid_days = forms.IntegerField(label="Valid for (days)", initial=7, min_value=1, max_value=90)


class InviteAcceptForm(forms.Form):
    username = forms.CharField(max_length=150)
    password = forms.CharField(widget=forms.PasswordInput, max_length=128)
    password_again = forms.CharField(
        label="Password again", widget=forms.PasswordInput, max_length=128
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password") and data.get("password") != data.get("password_again"):
            self.add_error("password_again", "The two passwords differ.")
        return data
