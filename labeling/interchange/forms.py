"""Forms of the interchange pages: the upload form (shape only; the import services check rows)
and the export form, whose field names are the export API's query parameters."""

from __future__ import annotations

from typing import Any

from django import forms

from labeling.interchange.formats import CONTAINERS, EXPORT_FORMATS, IMPORT_FORMATS
from labeling.interchange.specs import (
    AGGREGATIONS,
    ANNOTATOR_WEIGHTS,
    BOTH_BAD_POLICIES,
    PARAMETERS,
    SOURCES,
    SPLITS,
    STREAM_CONTAINERS,
)
from labeling.models import Flag

KINDS = (
    ("prompts", "Prompts"),
    ("responses", "Responses (pairs become comparisons)"),
    ("preferences", "Existing preference dataset"),
)


def _choices(values: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(value, value) for value in values]


class UploadForm(forms.Form):
    kind = forms.ChoiceField(choices=KINDS, initial="prompts")
    file = forms.FileField(
        help_text="JSON Lines (.jsonl), a JSON list (.json), CSV (.csv) or Parquet (.parquet)."
    )
    container = forms.ChoiceField(
        label="File format",
        choices=[("", "detect"), *_choices(CONTAINERS)],
        required=False,
    )
    dataset_format = forms.ChoiceField(
        label="Dataset format",
        choices=_choices(IMPORT_FORMATS),
        required=False,
        help_text="For preference datasets only.",
    )
    max_pairs = forms.IntegerField(
        label="Max pairs per prompt",
        min_value=1,
        required=False,
        help_text="For responses: sample at most this many pairs per prompt (empty: the "
        "project's setting, else all pairs).",
    )


FORMAT_LABELS = {
    "trl": "TRL preference, standard (prompt, chosen, rejected)",
    "trl_conversational": "TRL preference, conversational (message lists)",
    "kto": "KTO unpaired (prompt, completion, label)",
    "kto_conversational": "KTO unpaired, conversational",
    "hh": "Anthropic HH (chosen/rejected transcripts)",
    "raw": "Raw judgments (one row per annotator judgment, every field)",
}
AGGREGATION_LABELS = {
    "majority": "Majority (count ties broken by summed strength)",
    "unanimous": "Unanimous only",
    "all": "All judgments as separate rows",
}


class ExportForm(forms.Form):
    format = forms.ChoiceField(
        choices=[(value, FORMAT_LABELS[value]) for value in EXPORT_FORMATS], initial="trl"
    )
    container = forms.ChoiceField(
        label="File type", choices=_choices(STREAM_CONTAINERS), initial="jsonl"
    )
    aggregation = forms.ChoiceField(
        choices=[(value, AGGREGATION_LABELS[value]) for value in AGGREGATIONS],
        initial="majority",
        help_text="How several judgments of one comparison become rows (raw: always all). "
        "Ties are dropped.",
    )
    both_bad = forms.ChoiceField(
        label="Both bad",
        choices=[(v, v) for v in BOTH_BAD_POLICIES if v != "separate"],
        initial="drop",
        help_text="drop, or only: download the both-bad pairs (JSON Lines) for rewrite/SFT work.",
    )
    margin = forms.BooleanField(
        required=False, help_text="Add a margin column: mean strength (1-4) of the winning votes."
    )
    weight = forms.BooleanField(
        required=False, help_text="Add a weight column: the winner's share of the votes."
    )
    annotator_weights = forms.ChoiceField(
        label="Annotator weights",
        choices=_choices(ANNOTATOR_WEIGHTS),
        initial="none",
        help_text=PARAMETERS["annotator_weights"],
    )
    drop_below = forms.FloatField(
        label="Drop annotators below",
        required=False,
        min_value=0,
        max_value=1,
        help_text=PARAMETERS["drop_below"],
    )
    adjudicated = forms.ChoiceField(
        label="Adjudications",
        choices=[("ignore", "ignore: votes only"), ("prefer", "prefer: the reviewer's decision")],
        initial="ignore",
        help_text=PARAMETERS["adjudicated"],
    )
    round = forms.IntegerField(required=False, min_value=0, help_text=PARAMETERS["round"])
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    annotators = forms.CharField(required=False, help_text=PARAMETERS["annotators"])
    min_agreement = forms.FloatField(
        required=False, min_value=0, max_value=1, help_text=PARAMETERS["min_agreement"]
    )
    exclude_flags = forms.MultipleChoiceField(
        required=False, choices=Flag.choices, widget=forms.CheckboxSelectMultiple
    )
    source = forms.ChoiceField(choices=_choices(SOURCES), initial="all")
    split = forms.ChoiceField(
        choices=_choices(SPLITS), initial="all", help_text="Split by prompt: never in both."
    )
    test_size = forms.FloatField(
        initial=0.1, min_value=0, max_value=1, required=False, help_text=PARAMETERS["test_size"]
    )
    seed = forms.IntegerField(initial=0, required=False, help_text=PARAMETERS["seed"])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["margin"].widget.attrs["value"] = "1"
        self.fields["weight"].widget.attrs["value"] = "1"
