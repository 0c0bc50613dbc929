"""Gold items: comparisons with a known answer, mixed silently into every annotator's queue.

Pure functions only (no queries): the serving schedule, the known-worse variants that generated
gold is made of, and the accuracy figures. The writes (mark, clear, generate) are
``labeling.services.comparison_gold_set`` / ``comparison_gold_clear`` / ``gold_generate``; the
claim that serves gold is ``labeling.queue``.

**What gold is.** ``Comparison.gold_answer`` is ``a`` or ``b`` (empty: not gold). Only a side can
be gold: whether two answers tie, or are both bad, is a judgment call, not a checkable fact. A gold
comparison is served to every annotator once (no k slots: it never takes or blocks a slot of a
normal comparison) and stays open (never complete). Its judgments never become preferences: the
round snapshots (``labeling.preferences.snapshot_rows``) and every preference export, the raw
one included, leave gold comparisons out, and the agreement and bias figures of
``labeling.selectors.project_stats`` are computed without them (generated gold is easy, and its
truncated side is shorter: it would inflate agreement and the "chose the longer" rate). They are
reported in the stats' ``gold`` block instead.

**Schedule.** With ``Project.gold_rate`` r > 0 the period is m = round(1 / r). The next gold is
due once an annotator has made ``gap - 1`` (human) judgments since their last gold one, where
``gap`` is drawn uniformly from 1 … 2m - 1 (mean m) by a keyed hash of (project, annotator, that
last gold comparison) (``SECRET_KEY``: annotators cannot compute it): about one served item in m
is gold, at no fixed position. Gold comparisons are served in queue order; when gold is due and
none is left for the annotator, normal items are served; when the normal queue is empty, the gold
that is due (if any) is still served. The claim reads only the annotator's latest 2m - 1
judgments (an index walk), so its cost does not grow with their history. Deterministic, so tests
can replay it, and the labeling page's "remaining" counts the gold still to come (``gold_ahead``)
so that it drops by one with every item, gold or not (a figure that stalled would give gold away).

**Generated gold.** A real response paired with a known-worse variant of itself: ``truncated`` (a
strict prefix, cut at a word boundary near the middle), ``shuffled`` (its sentences in another
order) or ``swapped`` (another prompt's response). The original is the answer, on a random side.

**Accuracy** per annotator: the share of their gold judgments that chose the answer (a tie or
both-bad counts as wrong), with the Wilson 95% interval. An annotator is flagged when the interval's
upper bound is under ``settings.PAIRWISE_GOLD_MIN_ACCURACY``: their accuracy is below it beyond
reasonable doubt, however few gold items they judged.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from django.conf import settings

VARIANTS = ("truncated", "shuffled", "swapped")
MODEL_PREFIX = "gold:"
BATCH = "gold"
Z95 = 1.959963984540054
DECIMALS = 4


# --- schedule ------------------------------------------------------------------------------------


def period(rate: float) -> int:
    """m: one served item in m is gold (0 when gold is off)."""
    if rate <= 0:
        return 0
    return max(1, round(1 / rate))


def window(rate: float) -> int:
    """How many of an annotator's latest judgments the claim reads: the longest gap, 2m - 1."""
    return max(1, 2 * period(rate) - 1)


def gap(*, project_id: int, annotator_id: int, after: int, rate: float) -> int:
    """Served items from one gold to the next (the gold included), after the annotator's gold
    comparison ``after`` (0: none yet): uniform on 1 … 2m - 1, by a keyed hash."""
    m = period(rate)
    if m <= 1:
        return 1
    key = settings.SECRET_KEY.encode()
    digest = hmac.new(key, f"gold:{project_id}:{annotator_id}:{after}".encode(), hashlib.sha256)
    return 1 + int.from_bytes(digest.digest()[:8], "big") % (2 * m - 1)


def gold_due(*, since: int, after: int, project_id: int, annotator_id: int, rate: float) -> bool:
    """Whether the annotator's next item is gold: ``since`` human judgments after their last gold
    one, on comparison ``after`` (0 and all their judgments if none; counted up to
    ``window(rate)``, enough to decide: a longer gap does not exist)."""
    if rate <= 0:
        return False
    wanted = gap(project_id=project_id, annotator_id=annotator_id, after=after, rate=rate)
    return since >= wanted - 1


def gold_ahead(
    *,
    normal_left: int,
    upcoming: Sequence[int],
    since: int,
    after: int,
    gap_of: Callable[[int], int],
) -> int:
    """How many gold items the schedule will serve while ``normal_left`` normal ones remain:
    ``upcoming`` are the gold comparisons the annotator would be served, in queue order, ``since``
    and ``after`` where the schedule stands, ``gap_of(after)`` the gap after gold ``after``."""
    ahead = 0
    for comparison_id in upcoming:
        before = max(0, gap_of(after) - 1 - since)  # normal items served before the next gold
        if before > normal_left:
            break
        normal_left -= before
        ahead += 1
        after, since = comparison_id, 0
    return ahead


# --- generated variants --------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def truncated(text: str) -> str | None:
    """A strict prefix of ``text`` cut at a word boundary near its middle (None: too short)."""
    stripped = text.rstrip()
    if len(stripped) < 2:
        return None
    middle = len(stripped) // 2
    cut = stripped.rfind(" ", 0, middle + 1)
    if cut <= 0:
        cut = middle
    prefix = stripped[:cut].rstrip()
    return prefix if prefix and len(prefix) < len(text) else None


def sentences(text: str) -> list[str]:
    return [part for part in _SENTENCE_END.split(text.strip()) if part]


def shuffled(text: str, rng: random.Random) -> str | None:
    """``text``'s sentences in another order (None: fewer than two distinct sentences)."""
    parts = sentences(text)
    if len(set(parts)) < 2:
        return None
    order = parts[:]
    while order == parts:
        rng.shuffle(order)
    return " ".join(order)


# --- accuracy ------------------------------------------------------------------------------------


def wilson_interval(correct: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (None without observations)."""
    if n == 0:
        return None
    p = correct / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return round(max(0.0, centre - half), DECIMALS), round(min(1.0, centre + half), DECIMALS)


@dataclass(frozen=True, slots=True)
class GoldAccuracy:
    annotator_id: int
    username: str
    n: int  # gold judgments
    correct: int
    accuracy: float
    interval: tuple[float, float]
    flagged: bool
    message: str = ""


@dataclass(frozen=True, slots=True)
class GoldFigures:
    items: int  # gold comparisons in the project
    judgments: int
    threshold: float
    annotators: list[GoldAccuracy] = field(default_factory=list)


def min_accuracy() -> float:
    return float(settings.PAIRWISE_GOLD_MIN_ACCURACY)


def gold_figures(
    rows: Iterable[tuple[int, str, str]],
    usernames: Mapping[int, str],
    *,
    items: int,
    threshold: float | None = None,
) -> GoldFigures:
    """Accuracy per annotator from ``(annotator_id, choice, gold_answer)`` rows of gold judgments."""
    threshold = min_accuracy() if threshold is None else threshold
    seen: dict[int, list[int]] = {}
    for annotator_id, choice, answer in rows:
        tally = seen.setdefault(annotator_id, [0, 0])
        tally[0] += 1
        tally[1] += choice == answer
    figures = []
    for annotator_id, (n, correct) in sorted(
        seen.items(), key=lambda item: usernames.get(item[0], str(item[0]))
    ):
        interval = wilson_interval(correct, n)
        assert interval is not None
        flagged = interval[1] < threshold
        message = (
            f"Gold accuracy {correct}/{n} ({correct / n:.0%}); even the 95% interval's top, "
            f"{interval[1]:.0%}, is under {threshold:.0%}."
            if flagged
            else ""
        )
        figures.append(
            GoldAccuracy(
                annotator_id=annotator_id,
                username=usernames.get(annotator_id, str(annotator_id)),
                n=n,
                correct=correct,
                accuracy=round(correct / n, DECIMALS),
                interval=interval,
                flagged=flagged,
                message=message,
            )
        )
    return GoldFigures(
        items=items,
        judgments=sum(f.n for f in figures),
        threshold=threshold,
        annotators=figures,
    )
