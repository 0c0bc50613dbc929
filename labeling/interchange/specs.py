"""What an export is asked for and what it found: the spec (format, container, aggregation,
policies, filters, split) parsed from query parameters or command options, with a 400 naming the
allowed values for anything unknown, and the statistics the dataset card is written from."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from labeling import preferences, reliability
from labeling.interchange.formats import EXPORT_FORMATS
from labeling.models import Flag, Source
from labeling.services import LabelingError

AGGREGATIONS = ("majority", "unanimous", "all")
TIE_POLICIES = preferences.TIE_POLICIES
BOTH_BAD_POLICIES = (*preferences.BOTH_BAD_POLICIES, "separate", "only")
SPLITS = ("all", "train", "test")
STREAM_CONTAINERS = ("jsonl", "csv", "parquet")
FILE_CONTAINERS = (*STREAM_CONTAINERS, "hf")
SOURCES = ("all", *Source.values)
ANNOTATOR_WEIGHTS = reliability.WEIGHTINGS
ADJUDICATED = preferences.ADJUDICATED  # ignore | prefer


@dataclass(frozen=True)
class ExportSpec:
    """What to export and how: format, container, aggregation, policies, filters, split."""

    dataset_format: str = "trl"
    container: str = "jsonl"
    aggregation: str = "majority"
    ties: str = "drop"
    both_bad: str = "drop"
    margin: bool = False
    weight: bool = False
    rounds: tuple[int, ...] = ()
    batch: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    annotators: tuple[str, ...] = ()
    min_agreement: float | None = None
    exclude_flags: tuple[str, ...] = ()
    source: str = "all"
    split: str = "all"
    test_size: float = 0.1
    seed: int = 0
    annotator_weights: str = "none"  # labeling.reliability.WEIGHTINGS
    drop_below: float = 0.0  # with annotator_weights: drop the votes of annotators scoring less
    adjudicated: str = "ignore"  # prefer: a reviewer's adjudication stands for the votes

    def filters(self) -> dict[str, Any]:
        """The filters in force, for the dataset card."""
        values = {
            "round": ",".join(map(str, self.rounds)) or None,
            "batch": self.batch,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "annotators": list(self.annotators) or None,
            "min_agreement": self.min_agreement,
            "exclude_flags": list(self.exclude_flags) or None,
            "source": None if self.source == "all" else self.source,
            "split": None if self.split == "all" else self.split,
            "adjudicated": None if self.adjudicated == "ignore" else self.adjudicated,
        }
        return {key: value for key, value in values.items() if value is not None}


PARAMETERS = {
    "format": "dataset format: " + ", ".join(EXPORT_FORMATS),
    "container": "file type: " + ", ".join(FILE_CONTAINERS),
    "aggregation": ", ".join(AGGREGATIONS),
    "ties": ", ".join(TIE_POLICIES) + " (split: a tie becomes both orders at half weight)",
    "both_bad": ", ".join(BOTH_BAD_POLICIES)
    + " (split: both orders at half weight; KTO formats: both responses undesirable)",
    "margin": "1 to add a margin column: mean strength of the winning votes on [0, 1] "
    "(1 negligibly better = 0 ... 4 much better = 1)",
    "weight": "1 to add a weight column (share of votes for the winner)",
    "annotator_weights": ", ".join(ANNOTATOR_WEIGHTS)
    + " (votes count by their annotator's reliability, estimated on the exported judgments: "
    "Dawid-Skene chance-corrected accuracy or MACE competence, on [0, 1])",
    "drop_below": "0-1, with annotator_weights: drop the votes of annotators whose reliability is "
    "below this",
    "adjudicated": ", ".join(ADJUDICATED)
    + " (prefer: an adjudicated comparison yields what its reviewer decided, as one decisive "
    "vote, in place of its annotators' votes; ignore: votes only, as if none were adjudicated)",
    "round": "round numbers, comma-separated: comparisons whose batch is round-N or starts with "
    "round-N:; 0 means comparisons no round made",
    "batch": "exact comparison batch tag",
    "since": "judgments made on or after this ISO date/time",
    "until": "judgments made on or before this ISO date (whole day) or before this time",
    "annotators": "comma-separated usernames",
    "min_agreement": "0-1: drop comparisons whose winner has a smaller share of the votes",
    "exclude_flags": "comma-separated flags: " + ", ".join(Flag.values),
    "source": ", ".join(SOURCES),
    "split": ", ".join(SPLITS),
    "test_size": "0-1: share of prompts held out as test (by hash)",
    "seed": "integer seed of the split hash",
}


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise LabelingError(f"unknown {name} {value!r}; allowed: {', '.join(allowed)}", field=name)
    return value


def _flag(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("", "0", "false", "no", "off"):
        return False
    raise LabelingError(f"{name} must be 1 or 0; got {value!r}", field=name)


def _number(name: str, value: str, *, low: float = 0.0, high: float = 1.0) -> float:
    try:
        number = float(value)
    except ValueError:
        raise LabelingError(f"{name} must be a number from {low} to {high}", field=name) from None
    if not low <= number <= high:
        raise LabelingError(f"{name} must be a number from {low} to {high}", field=name)
    return number


def _moment(name: str, value: str, *, end: bool) -> datetime:
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime.combine(day + timedelta(days=1) if end else day, time(), tzinfo=UTC)
            return moment - timedelta(microseconds=1) if end else moment
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise LabelingError(
            f"{name} must be an ISO date (2026-01-31) or date-time; got {value!r}", field=name
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def export_spec_parse(
    params: Mapping[str, Any],
    *,
    containers: tuple[str, ...] = STREAM_CONTAINERS,
    ignore: tuple[str, ...] = (),
) -> ExportSpec:
    """An ExportSpec from query parameters / options; unknown names or values raise 400s."""
    unknown = sorted(set(params) - set(PARAMETERS) - set(ignore))
    if unknown:
        raise LabelingError(
            f"unknown parameter {unknown[0]!r}; allowed: {', '.join(PARAMETERS)}", field=unknown[0]
        )
    raw = {key: str(value).strip() for key, value in params.items() if value is not None}
    fields: dict[str, Any] = {}
    dataset_format = raw.get("format", "trl") or "trl"
    if dataset_format in FILE_CONTAINERS and "container" not in raw:
        raw["container"] = dataset_format
        dataset_format = "trl"
    fields["dataset_format"] = _choice("format", dataset_format, EXPORT_FORMATS)
    fields["container"] = _choice("container", raw.get("container") or "jsonl", containers)
    fields["aggregation"] = _choice(
        "aggregation", raw.get("aggregation") or "majority", AGGREGATIONS
    )
    fields["ties"] = _choice("ties", raw.get("ties") or "drop", TIE_POLICIES)
    fields["both_bad"] = _choice("both_bad", raw.get("both_bad") or "drop", BOTH_BAD_POLICIES)
    if fields["both_bad"] == "separate" and "hf" not in containers:
        raise LabelingError(
            "both_bad=separate writes a side file: use it from the command, or both_bad=only",
            field="both_bad",
        )
    if fields["both_bad"] == "only" and fields["container"] != "jsonl":
        raise LabelingError("both_bad=only is written as jsonl", field="container")
    fields["margin"] = _flag("margin", raw.get("margin", ""))
    fields["weight"] = _flag("weight", raw.get("weight", ""))
    fields["annotator_weights"] = _choice(
        "annotator_weights", raw.get("annotator_weights") or "none", ANNOTATOR_WEIGHTS
    )
    if fields["annotator_weights"] != "none" and fields["dataset_format"] == "raw":
        raise LabelingError(
            "annotator_weights weighs preference rows; format=raw has one row per judgment and "
            "no weight",
            field="annotator_weights",
        )
    if raw.get("drop_below"):
        fields["drop_below"] = _number("drop_below", raw["drop_below"])
        if fields["annotator_weights"] == "none":
            raise LabelingError(
                "drop_below needs annotator_weights=dawid_skene or mace (the reliability to "
                "compare with)",
                field="drop_below",
            )
    fields["adjudicated"] = _choice("adjudicated", raw.get("adjudicated") or "ignore", ADJUDICATED)
    if fields["adjudicated"] != "ignore" and fields["dataset_format"] == "raw":
        raise LabelingError(
            "adjudicated=prefer replaces votes by a decision; format=raw lists the judgments "
            "themselves (each comparison's adjudication is on the review API)",
            field="adjudicated",
        )
    if raw.get("round"):
        values = [part.strip().removeprefix("round-") for part in str(raw["round"]).split(",")]
        if not all(value.isdigit() and len(value) <= 9 for value in values):
            raise LabelingError(
                "round must be round numbers, e.g. 3 or 0,3 (0: comparisons no round made)",
                field="round",
            )
        fields["rounds"] = tuple(sorted({int(value) for value in values}))
    if raw.get("batch"):
        fields["batch"] = raw["batch"]
    if raw.get("since"):
        fields["since"] = _moment("since", raw["since"], end=False)
    if raw.get("until"):
        fields["until"] = _moment("until", raw["until"], end=True)
    if raw.get("annotators"):
        fields["annotators"] = tuple(
            sorted({name.strip() for name in raw["annotators"].split(",") if name.strip()})
        )
    if raw.get("min_agreement"):
        fields["min_agreement"] = _number("min_agreement", raw["min_agreement"])
    if raw.get("exclude_flags"):
        flags = tuple(sorted({f.strip() for f in raw["exclude_flags"].split(",") if f.strip()}))
        for flag in flags:
            _choice("exclude_flags", flag, tuple(Flag.values))
        fields["exclude_flags"] = flags
    fields["source"] = _choice("source", raw.get("source") or "all", SOURCES)
    fields["split"] = _choice("split", raw.get("split") or "all", SPLITS)
    if raw.get("test_size"):
        fields["test_size"] = _number("test_size", raw["test_size"])
    if raw.get("seed"):
        try:
            fields["seed"] = int(raw["seed"])
        except ValueError:
            raise LabelingError("seed must be an integer", field="seed") from None
    return ExportSpec(**fields)


# --- statistics --------------------------------------------------------------------------------


@dataclass
class ExportStats:
    """Counts gathered while exporting; the dataset card is written from them."""

    judgments: int = 0
    comparisons: int = 0
    comparisons_exported: int = 0
    rows: int = 0
    rows_by_split: Counter[str] = field(default_factory=Counter)
    prompts_by_split: dict[str, set[int]] = field(
        default_factory=lambda: {"train": set(), "test": set()}
    )
    dropped: Counter[str] = field(default_factory=Counter)
    both_bad_rows: int = 0
    annotators: set[str] = field(default_factory=set)
    models: Counter[tuple[str, str]] = field(default_factory=Counter)
    multi_judged: int = 0
    unanimous_multi: int = 0
    agreement_sum: float = 0.0
    pair_agree: int = 0
    pair_total: int = 0
    reliability: dict[str, float] = field(default_factory=dict)  # annotator → vote weight
    votes_dropped_unreliable: int = 0  # votes of annotators under drop_below
    adjudicated: int = 0  # comparisons decided by their adjudication (adjudicated=prefer)
    content_hash: str = ""
    preference_hash: str = ""  # labeling.preferences.PreferenceHash: the same in every format
    files: list[str] = field(default_factory=list)

    @property
    def mean_agreement(self) -> float | None:
        return self.agreement_sum / self.multi_judged if self.multi_judged else None

    @property
    def pairwise_agreement(self) -> float | None:
        return self.pair_agree / self.pair_total if self.pair_total else None
