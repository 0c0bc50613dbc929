"""Training curves as inline SVG, drawn on the server (no JavaScript, no chart library).

``curves_for_run`` picks the interesting series of a run's metrics history (loss, accuracies,
rewards, margins, KL) and ``line_chart`` draws one of them as a small, labelled SVG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

INTERESTING = ("loss", "accurac", "reward", "margin", "kl")
MAX_CURVES = 4


@dataclass(frozen=True)
class Curve:
    name: str
    points: list[tuple[float, float]]

    @property
    def last(self) -> float:
        return self.points[-1][1]

    @property
    def svg(self) -> SafeString:
        return line_chart(self.points, title=self.name)


def curves_for_run(history: Sequence[dict[str, Any]]) -> list[Curve]:
    """The run's curves worth drawing: loss first, then accuracy / reward / margin / KL series."""
    series: dict[str, list[tuple[float, float]]] = {}
    for x, point in zip(_steps_along(history), history, strict=True):
        for key, value in point.items():
            if key in ("step", "phase") or not isinstance(value, int | float):
                continue
            if isinstance(value, bool) or not math.isfinite(value):
                continue
            if not any(word in key.lower() for word in INTERESTING):
                continue
            series.setdefault(key, []).append((x, float(value)))
    names = sorted(series, key=lambda k: (k != "loss", "accurac" not in k, k))
    return [Curve(name, series[name]) for name in names if len(series[name]) >= 2][:MAX_CURVES]


def _steps_along(history: Sequence[dict[str, Any]]) -> list[float]:
    """The x of each point: its reported step, so the axis ends where the run's header does
    (a thinned history has gaps in its indexes, not in its steps). Phases (e.g. the two generate
    calls) are laid end to end: a phase's steps start after the previous phase's last one. A
    point without a step comes one after the point before it."""
    xs: list[float] = []
    offset, last, phase = 0.0, 0.0, None
    for point in history:
        if xs and point.get("phase") != phase:
            offset = last
        phase = point.get("phase")
        step = point.get("step")
        if isinstance(step, int | float) and not isinstance(step, bool):
            x = offset + float(step)
        else:
            x = last + 1
        xs.append(x)
        last = x
    return xs


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100 or abs(value) < 0.01:
        return f"{value:.2g}"
    return f"{value:.3f}".rstrip("0").rstrip(".")


def line_chart(
    points: Sequence[tuple[float, float]],
    *,
    title: str,
    width: int = 320,
    height: int = 140,
) -> SafeString:
    """A polyline chart with its y range and last value labelled; accessible by its title."""
    pad_left, pad_right, pad_top, pad_bottom = 44, 10, 22, 18
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    inner_w = width - pad_left - pad_right
    inner_h = height - pad_top - pad_bottom

    def sx(x: float) -> float:
        return pad_left + (x - x0) / (x1 - x0) * inner_w

    def sy(y: float) -> float:
        return pad_top + (1 - (y - y0) / (y1 - y0)) * inner_h

    path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
    label = escape(title)
    last = _fmt(ys[-1])
    svg = (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{label}: last value {last}">'
        f"<title>{label}</title>"
        f'<text x="{pad_left}" y="14" class="chart-title">{label} · {last}</text>'
        f'<line x1="{pad_left}" y1="{pad_top}" x2="{pad_left}" y2="{height - pad_bottom}" '
        f'class="chart-axis"/>'
        f'<line x1="{pad_left}" y1="{height - pad_bottom}" x2="{width - pad_right}" '
        f'y2="{height - pad_bottom}" class="chart-axis"/>'
        f'<text x="{pad_left - 4}" y="{pad_top + 4}" text-anchor="end" class="chart-tick">'
        f"{_fmt(y1)}</text>"
        f'<text x="{pad_left - 4}" y="{height - pad_bottom}" text-anchor="end" '
        f'class="chart-tick">{_fmt(y0)}</text>'
        f'<text x="{width - pad_right}" y="{height - 4}" text-anchor="end" class="chart-tick">'
        f"step {_fmt(x1)}</text>"
        f'<polyline points="{path}" class="chart-line" fill="none"/>'
        "</svg>"
    )
    return mark_safe(svg)  # built from numbers and an escaped title only
