"""Dataset cards: the README.md (HF directory) or ``<file>.card.md`` sidecar of every export.

A card says what the dataset is and where it came from: project, format, counts per split,
filters, aggregation and its policies, agreement figures, annotator count, the models and
checkpoints whose responses are inside, and the sha256 content hash of the rows (each row as
compact JSON plus a newline, in export order, whatever the container).
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from labeling.interchange.specs import ExportSpec, ExportStats
from labeling.models import Project

FORMAT_NOTES = {
    "trl": "TRL preference, standard: `prompt`, `chosen`, `rejected` strings.",
    "trl_conversational": "TRL preference, conversational: `prompt` messages, `chosen`/`rejected` "
    "assistant messages.",
    "kto": "TRL KTO unpaired, standard: `prompt`, `completion`, `label` (true = desirable).",
    "kto_conversational": "TRL KTO unpaired, conversational: message lists with `label`.",
    "hh": "Anthropic HH: `chosen`/`rejected` transcripts of `\\n\\nHuman:`/`\\n\\nAssistant:` turns.",
    "raw": "Raw per-annotator judgments: one row per judgment with every field.",
}


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _yaml_scalar(value: Any) -> str:
    text = str(value).replace('"', "'")
    return f'"{text}"'


def dataset_card_render(*, project: Project, spec: ExportSpec, stats: ExportStats) -> str:
    """The card as Markdown with a small YAML header (Hugging Face dataset-card style)."""
    filters = spec.filters()
    models = sorted(stats.models.items(), key=lambda item: (-item[1], item[0]))
    lines = [
        "---",
        f"pretty_name: {_yaml_scalar(project.name + ' preferences')}",
        "tags:",
        "- pairwise",
        "- preference",
        f"- {spec.dataset_format}",
        "---",
        "",
        f"# {project.name}: preference dataset",
        "",
        f"Exported by Pairwise on {timezone.now().strftime('%Y-%m-%d %H:%M UTC')}.",
        "",
        "## Contents",
        "",
        f"- Project: {project.name} (id {project.pk})",
        f"- Format: `{spec.dataset_format}` — {FORMAT_NOTES[spec.dataset_format]}",
        f"- Container: `{spec.container}`",
        f"- Rows: {stats.rows} (train {stats.rows_by_split.get('train', 0)}, "
        f"test {stats.rows_by_split.get('test', 0)})",
        f"- Prompts: train {len(stats.prompts_by_split['train'])}, "
        f"test {len(stats.prompts_by_split['test'])}",
        f"- Comparisons: {stats.comparisons_exported} exported of {stats.comparisons} judged",
        f"- Judgments read: {stats.judgments}",
        f"- Annotators: {len(stats.annotators)}",
        f"- Both-bad rows set aside: {stats.both_bad_rows}",
        f"- Content hash (sha256 of the rows): `{stats.content_hash}`",
    ]
    if stats.preference_hash:
        lines.append(
            f"- Preference hash (the same data in any format; a round shows its snapshot's): "
            f"`{stats.preference_hash}`"
        )
    if stats.files:
        lines.append(f"- Files: {', '.join(stats.files)}")
    lines += [
        "",
        "## Aggregation",
        "",
        f"- Method: `{spec.aggregation}` "
        + {
            "majority": "(the choice with more votes than any other; a shared top is undecided "
            "and dropped)",
            "unanimous": "(only comparisons where every judgment agrees)",
            "all": "(every judgment is its own row; weight = 1 / judgments on the comparison)",
        }[spec.aggregation],
        f"- Ties: {spec.ties}",
        f"- Both bad: {spec.both_bad}",
        "- Margin column: "
        + (
            "yes (mean strength of the winning votes on [0, 1]: 1 negligibly better = 0, "
            "2 = 0.33, 3 = 0.67, 4 much better = 1)"
            if spec.margin
            else "no"
        ),
        f"- Weight column: {'yes (share of votes for the winner)' if spec.weight else 'no'}",
        "- Annotator weights: "
        + (
            "none (every vote counts alike)"
            if spec.annotator_weights == "none"
            else f"`{spec.annotator_weights}` (each vote counts by its annotator's reliability "
            "on [0, 1]; weight = reliability-weighted share of the winner times the mean "
            "reliability of the winning votes)"
            + (
                f"; votes of annotators under {spec.drop_below} dropped: "
                f"{stats.votes_dropped_unreliable}"
                if spec.drop_below
                else ""
            )
        ),
        "",
        "Dropped comparisons:",
        "",
    ]
    if stats.dropped:
        lines += [
            f"- {reason.replace('_', ' ')}: {count}"
            for reason, count in sorted(stats.dropped.items())
        ]
    else:
        lines.append("- none")
    if stats.reliability:
        lines += ["", "Annotator reliability (vote weight):", ""]
        lines += [
            f"- {name}: {weight}"
            for name, weight in sorted(stats.reliability.items(), key=lambda item: item[1])
        ]
    lines += [
        "",
        "## Agreement",
        "",
        f"- Comparisons with two or more judgments: {stats.multi_judged}",
        f"- Unanimous among them: {stats.unanimous_multi} ({_percent(stats.unanimous_multi / stats.multi_judged if stats.multi_judged else None)})",
        f"- Mean majority share: {_percent(stats.mean_agreement)}",
        f"- Pairwise agreement (annotator pairs choosing alike): {_percent(stats.pairwise_agreement)}",
        "",
        "## Filters",
        "",
    ]
    lines += [f"- {key}: {value}" for key, value in filters.items()] or ["- none"]
    lines += [
        "",
        "## Split",
        "",
        f"By prompt: a prompt is in test when it is marked held out or when "
        f"sha256(prompt id + ':' + {spec.seed}) falls in the first {spec.test_size:.0%} of the "
        "hash range; a prompt is never in both splits.",
        "",
        "## Models and checkpoints",
        "",
        "| model | checkpoint | responses in exported comparisons |",
        "|---|---|---|",
    ]
    lines += [
        f"| {model or '(unknown)'} | {checkpoint or '-'} | {count} |"
        for (model, checkpoint), count in models
    ]
    if not models:
        lines.append("| (none) | - | 0 |")
    lines.append("")
    return "\n".join(lines)
