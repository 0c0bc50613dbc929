"""How far the labels can be trusted: agreement between annotators and a bias audit.

(A little over 500 lines: both halves read the same rows and report through the same figure and
flag types; split, each would half-define them.)

Pure functions over judgment rows (no queries here: ``labeling.selectors.project_stats`` reads the
rows once and passes them in). numpy, ``krippendorff`` and crowd-kit (``labeling.reliability``):
the web process stays free of torch.

**Agreement** over the comparisons judged by two or more annotators ("units"), in the vocabulary
of ``labeling.preferences`` (choices ``a`` / ``b`` / ``tie`` / ``both_bad``):

- percent agreement: the share of pairs of judgments on the same comparison with the same choice;
- Krippendorff's alpha (the ``krippendorff`` package), *nominal* on the choice and *ordinal* on
  the signed strength scale (``a`` with strength s → +s, ``b`` → -s, ``tie`` → 0; ``both_bad``
  and side choices without a strength are left out of the ordinal one);
- Fleiss' kappa, generalised to a varying number of raters per comparison: the observed agreement
  is the mean over units of ``Σ n_ij (n_ij - 1) / (n_i (n_i - 1))``, the chance agreement
  ``Σ p_j²`` with ``p_j`` the share of all unit judgments in choice j (equal to Fleiss 1971 when
  every comparison has the same number of raters);
- Cohen's kappa for each pair of annotators sharing at least ``MIN_SHARED_FOR_KAPPA`` comparisons.

Per round (batch ``round-N`` or ``round-N:<kind>``; round 0 = comparisons no round made, as
``labeling.preferences.rounds_q``) and per annotator: their pairs with the others for percent
agreement; alpha and kappa over the comparisons they share with others.
A figure that is undefined (too few units, no variation) is ``None`` with a reason.

**Reliability** per annotator (``labeling.reliability``): Dawid-Skene chance-corrected accuracy
and MACE competence, on ``[0, 1]`` (0: no better than chance), fitted on the comparisons judged
by two or more; the figures ``annotator_weights`` gives votes in exports and round snapshots.
Flag ``unreliable``: either score under ``UNRELIABLE_BELOW`` with ``MIN_JUDGMENTS`` or more such
judgments.

**Bias audit** per annotator and per project, among side choices (``a`` / ``b``): the rate of
choosing the side shown on the left, the rate of choosing the longer response (pairs of unequal
length), tie and both-bad rates, median time. Flags in plain words: a left-side rate outside the
binomial 95% interval around 0.5 (at least ``MIN_JUDGMENTS`` choices); a rate outside the binomial
95% interval around the median of the *other* annotators' rates (robust to one biased annotator
among few) and at least ``MIN_RATE_GAP`` from it; a median time under a quarter of the others'.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Literal

import krippendorff
import numpy as np

from labeling.models import Choice
from labeling.preferences import ROUND_TAG, SIDES, Votes, decide
from labeling.reliability import Reliability, annotator_reliability

CHOICES: tuple[str, ...] = tuple(Choice.values)  # a, b, tie, both_bad
STRENGTH_SCALE: tuple[int, ...] = tuple(range(-4, 5))  # signed strength: -4 … +4
MIN_SHARED_FOR_KAPPA = 10
MIN_JUDGMENTS = 20
MIN_RATE_GAP = 0.2
UNRELIABLE_BELOW = 0.4  # a reliability score under this (0 = chance, 1 = the consensus) is flagged
NO_RELIABILITY = Reliability(units=0, dawid_skene=None, mace=None)
SLOW_FACTOR = 4  # the others' median time over this annotator's before it is flagged
LEVEL = 0.95
DECIMALS = 4

_ROUND = re.compile(rf"^{re.escape(ROUND_TAG)}([1-9][0-9]*)(?::|$)")


def round_of(batch: str) -> int | None:
    """The round that made a comparison (``round-N`` / ``round-N:<kind>``), 0 for none, None for a
    batch that looks like a round's but names none (no ``rounds_q`` filter selects it)."""
    match = _ROUND.match(batch)
    if match:
        return int(match.group(1))
    return None if batch.startswith(ROUND_TAG) else 0


@dataclass(frozen=True, slots=True)
class Row:
    """One judgment as the figures need it."""

    annotator_id: int
    comparison_id: int
    choice: str
    strength: int | None = None
    shown_left: str = "a"
    time_spent_ms: int | None = None
    batch: str = ""
    length_a: int = 0
    length_b: int = 0

    @property
    def signed_strength(self) -> int | None:
        """+s for ``a``, -s for ``b``, 0 for ``tie``; None for both-bad or a missing strength."""
        if self.choice == Choice.TIE:
            return 0
        if self.choice in SIDES and self.strength is not None:
            return self.strength if self.choice == Choice.A else -self.strength
        return None


@dataclass(frozen=True, slots=True)
class Figure:
    """A number, or None and why not."""

    value: float | None
    reason: str = ""

    @classmethod
    def of(cls, value: float) -> Figure:
        if not math.isfinite(value):
            return cls(None, "undefined (no variation to compare against)")
        return cls(round(float(value), DECIMALS))


@dataclass(frozen=True, slots=True)
class AgreementFigures:
    comparisons: int  # units: comparisons with two or more judgments
    judgments: int  # judgments on those comparisons
    percent_agreement: Figure
    alpha_nominal: Figure
    alpha_ordinal: Figure
    fleiss_kappa: Figure


@dataclass(frozen=True, slots=True)
class RoundAgreement:
    round: int
    agreement: AgreementFigures


@dataclass(frozen=True, slots=True)
class PairKappa:
    annotator_ids: tuple[int, int]
    usernames: tuple[str, str]
    shared: int
    cohen_kappa: Figure


@dataclass(frozen=True, slots=True)
class Flag:
    code: str  # unreliable | left_side | longer | tie | both_bad | fast
    message: str


@dataclass(frozen=True, slots=True)
class Bias:
    judgments: int
    side_choices: int
    left_choices: int
    left_rate: float | None
    length_pairs: int  # side choices between responses of unequal length
    longer_choices: int
    longer_rate: float | None
    ties: int
    tie_rate: float | None
    both_bad: int
    both_bad_rate: float | None
    median_time_ms: float | None


@dataclass(frozen=True, slots=True)
class AnnotatorQuality:
    annotator_id: int
    username: str
    agreement: AgreementFigures  # percent: pairs with others; alpha/kappa: shared comparisons
    bias: Bias
    flags: list[Flag] = field(default_factory=list)
    reliability: Reliability = NO_RELIABILITY  # no comparison shared with another annotator


@dataclass(frozen=True, slots=True)
class Quality:
    agreement: AgreementFigures
    rounds: list[RoundAgreement]
    pairs: list[PairKappa]
    bias: Bias
    flags: list[Flag]
    annotators: list[AnnotatorQuality]


# --- agreement -----------------------------------------------------------------------------------


def _units(rows: Iterable[Row]) -> dict[int, list[Row]]:
    by_comparison: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        by_comparison[row.comparison_id].append(row)
    return {cid: votes for cid, votes in by_comparison.items() if len(votes) >= 2}


def _alpha(
    counts: np.ndarray, *, level: Literal["nominal", "ordinal"], domain: Sequence[int] | None = None
) -> Figure:
    """Krippendorff's alpha from a units x values count matrix (units with < 2 values dropped)."""
    counts = counts[counts.sum(axis=1) >= 2] if counts.size else counts
    if counts.shape[0] == 0:
        return Figure(None, "no comparison has two judgments to compare")
    if np.count_nonzero(counts.sum(axis=0)) < 2:
        return Figure(None, "no variation: every judgment has the same value")
    return Figure.of(
        krippendorff.alpha(value_counts=counts, value_domain=domain, level_of_measurement=level)
    )


def _fleiss(counts: np.ndarray) -> Figure:
    """Fleiss' kappa, generalised to a varying number of raters per unit (see the module doc)."""
    if counts.shape[0] == 0:
        return Figure(None, "no comparison has two judgments to compare")
    raters = counts.sum(axis=1)
    observed = float(np.mean((counts * (counts - 1)).sum(axis=1) / (raters * (raters - 1))))
    shares = counts.sum(axis=0) / raters.sum()
    chance = float((shares**2).sum())
    if chance >= 1:
        return Figure(None, "no variation: every judgment made the same choice")
    return Figure.of((observed - chance) / (1 - chance))


def cohen_kappa(first: Sequence[str], second: Sequence[str]) -> Figure:
    """Cohen's kappa of two annotators' choices on the same items (in the same order)."""
    n = len(first)
    if n < MIN_SHARED_FOR_KAPPA:
        return Figure(None, f"fewer than {MIN_SHARED_FOR_KAPPA} shared comparisons ({n})")
    observed = sum(x == y for x, y in zip(first, second, strict=True)) / n
    left, right = Counter(first), Counter(second)
    chance = sum(left[c] * right[c] for c in CHOICES) / (n * n)
    if chance >= 1:
        return Figure(None, "no variation: both made the same single choice throughout")
    return Figure.of((observed - chance) / (1 - chance))


def agreement(units: Sequence[Sequence[Row]], *, pairs_of: int | None = None) -> AgreementFigures:
    """Agreement over units (comparisons with two or more judgments).

    ``pairs_of``: count only the pairs of judgments involving this annotator for the percent
    agreement (an annotator's agreement with the others).
    """
    nominal = np.zeros((len(units), len(CHOICES)))
    ordinal = np.zeros((len(units), len(STRENGTH_SCALE)))
    pairs = agreeing = 0
    for i, votes in enumerate(units):
        for row in votes:
            nominal[i, CHOICES.index(row.choice)] += 1
            if (signed := row.signed_strength) is not None:
                ordinal[i, signed + 4] += 1
        if pairs_of is None:
            counts = Counter(row.choice for row in votes)
            pairs += len(votes) * (len(votes) - 1) // 2
            agreeing += sum(c * (c - 1) // 2 for c in counts.values())
        else:
            own = [row.choice for row in votes if row.annotator_id == pairs_of]
            others = [row.choice for row in votes if row.annotator_id != pairs_of]
            pairs += len(own) * len(others)
            agreeing += sum(x == y for x in own for y in others)
    percent = (
        Figure(round(agreeing / pairs, DECIMALS))
        if pairs
        else Figure(None, "no comparison has two judgments to compare")
    )
    return AgreementFigures(
        comparisons=len(units),
        judgments=int(nominal.sum()),
        percent_agreement=percent,
        alpha_nominal=_alpha(nominal, level="nominal"),
        alpha_ordinal=_alpha(ordinal, level="ordinal", domain=STRENGTH_SCALE),
        fleiss_kappa=_fleiss(nominal),
    )


def pair_kappas(
    units: Iterable[Sequence[Row]], usernames: Mapping[int, str] | None = None
) -> list[PairKappa]:
    """Cohen's kappa for every pair of annotators who share at least ``MIN_SHARED_FOR_KAPPA``
    comparisons, most shared first."""
    shared: dict[tuple[int, int], tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for votes in units:
        by_annotator = {row.annotator_id: row.choice for row in votes}
        for first, second in combinations(sorted(by_annotator), 2):
            choices = shared[(first, second)]
            choices[0].append(by_annotator[first])
            choices[1].append(by_annotator[second])
    found = [
        PairKappa(key, _names(key, usernames), len(first), cohen_kappa(first, second))
        for key, (first, second) in shared.items()
        if len(first) >= MIN_SHARED_FOR_KAPPA
    ]
    return sorted(found, key=lambda pair: (-pair.shared, pair.annotator_ids))


def _names(ids: tuple[int, int], usernames: Mapping[int, str] | None) -> tuple[str, str]:
    names = usernames or {}
    return names.get(ids[0], str(ids[0])), names.get(ids[1], str(ids[1]))


# --- bias ----------------------------------------------------------------------------------------


def binomial_interval(n: int, p: float, level: float = LEVEL) -> tuple[int, int]:
    """The equal-tailed ``level`` acceptance interval of Binomial(n, p), in counts: a count
    outside it has probability under (1 - level) / 2 on its side."""
    if n == 0:
        return 0, 0
    if p <= 0 or p >= 1:
        return (0, 0) if p <= 0 else (n, n)
    tail = (1 - level) / 2
    log_p, log_q = math.log(p), math.log1p(-p)
    base = math.lgamma(n + 1)
    pmf = [
        math.exp(base - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p + (n - k) * log_q)
        for k in range(n + 1)
    ]
    low, cumulative = 0, 0.0
    while low < n and cumulative + pmf[low] <= tail:
        cumulative += pmf[low]
        low += 1
    high, cumulative = n, 0.0
    while high > 0 and cumulative + pmf[high] <= tail:
        cumulative += pmf[high]
        high -= 1
    return low, high


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, DECIMALS) if whole else None


def bias(rows: Sequence[Row]) -> Bias:
    sided = [row for row in rows if row.choice in SIDES]
    unequal = [row for row in sided if row.length_a != row.length_b]
    left = sum(row.choice == row.shown_left for row in sided)
    longer = sum((row.choice == Choice.A) == (row.length_a > row.length_b) for row in unequal)
    ties = sum(row.choice == Choice.TIE for row in rows)
    both_bad = sum(row.choice == Choice.BOTH_BAD for row in rows)
    times = [row.time_spent_ms for row in rows if row.time_spent_ms is not None]
    return Bias(
        judgments=len(rows),
        side_choices=len(sided),
        left_choices=left,
        left_rate=_rate(left, len(sided)),
        length_pairs=len(unequal),
        longer_choices=longer,
        longer_rate=_rate(longer, len(unequal)),
        ties=ties,
        tie_rate=_rate(ties, len(rows)),
        both_bad=both_bad,
        both_bad_rate=_rate(both_bad, len(rows)),
        median_time_ms=float(statistics.median(times)) if times else None,
    )


def _pct(value: float) -> str:
    return f"{value * 100:.0f}%"


def _against_half(
    code: str, what: str, hits: int, n: int, unit: str = "a/b choices"
) -> Flag | None:
    """A rate that should be near 0.5 but lies outside the binomial 95% interval around it."""
    if n < MIN_JUDGMENTS:
        return None
    low, high = binomial_interval(n, 0.5)
    if low <= hits <= high:
        return None
    return Flag(
        code,
        f"{what} in {_pct(hits / n)} of {n} {unit}; without a preference for it, "
        f"95% of such samples fall within {_pct(low / n)} to {_pct(high / n)}.",
    )


def _against_others(code: str, what: str, hits: int, n: int, others: float | None) -> Flag | None:
    """A rate far from the other annotators' (the median of their rates): outside the binomial
    95% interval around it and at least ``MIN_RATE_GAP`` away."""
    if n < MIN_JUDGMENTS or others is None:
        return None
    rate = hits / n
    low, high = binomial_interval(n, others)
    if low <= hits <= high or abs(rate - others) < MIN_RATE_GAP:
        return None
    return Flag(
        code,
        f"{what} {_pct(rate)} of the time ({n} judgments); the other annotators {_pct(others)} "
        "(median).",
    )


# (code, what, hits, whole) of the rates compared with the other annotators'
_RATES: tuple[tuple[str, str, str, str], ...] = (
    ("left_side", "Chose the side shown on the left", "left_choices", "side_choices"),
    ("longer", "Chose the longer response", "longer_choices", "length_pairs"),
    ("tie", "Answered tie", "ties", "judgments"),
    ("both_bad", "Answered both bad", "both_bad", "judgments"),
)


def _others_median(values: dict[int, float], annotator_id: int) -> float | None:
    others = [value for key, value in values.items() if key != annotator_id]
    return float(statistics.median(others)) if others else None


def _annotator_flags(annotator_id: int, figures: dict[int, Bias]) -> list[Flag]:
    """Flags of one annotator against 0.5 (left side) and against the median of the other
    annotators with ``MIN_JUDGMENTS`` or more (robust to one biased annotator among few)."""
    own = figures[annotator_id]
    flags = [
        _against_half(
            "left_side", "Chose the side shown on the left", own.left_choices, own.side_choices
        )
    ]
    for code, what, hits, whole in _RATES:
        if code == "left_side" and flags[0] is not None:
            continue
        rates = {
            key: getattr(bias, hits) / getattr(bias, whole)
            for key, bias in figures.items()
            if getattr(bias, whole) >= MIN_JUDGMENTS
        }
        flags.append(
            _against_others(
                code,
                what,
                getattr(own, hits),
                getattr(own, whole),
                _others_median(rates, annotator_id),
            )
        )
    times = {
        key: bias.median_time_ms
        for key, bias in figures.items()
        if bias.median_time_ms is not None and bias.judgments >= MIN_JUDGMENTS
    }
    others_time = _others_median(times, annotator_id)
    if (
        own.median_time_ms is not None
        and others_time is not None
        and own.judgments >= MIN_JUDGMENTS
        and own.median_time_ms * SLOW_FACTOR < others_time
    ):
        flags.append(
            Flag(
                "fast",
                f"Judges much faster than the others: median {own.median_time_ms / 1000:.1f} s "
                f"against {others_time / 1000:.1f} s.",
            )
        )
    return [flag for flag in flags if flag is not None]


def _project_flags(figures: Bias, rows: Sequence[Row]) -> list[Flag]:
    """Left side over the judgments (each judgment's sides are drawn on its own); the longer
    response over the *decided* comparisons (judgments of one comparison are not independent)."""
    by_comparison: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        by_comparison[row.comparison_id].append(row)
    decided = longer = 0
    for votes in by_comparison.values():
        first = votes[0]
        if first.length_a == first.length_b:
            continue
        outcome = decide(Votes.of((row.choice, row.strength) for row in votes)).outcome
        if outcome in SIDES:
            decided += 1
            longer += (outcome == Choice.A) == (first.length_a > first.length_b)
    flags = [
        _against_half(
            "left_side",
            "The side shown on the left was chosen",
            figures.left_choices,
            figures.side_choices,
            unit="a/b choices",
        ),
        _against_half(
            "longer", "The longer response won", longer, decided, unit="decided comparisons"
        ),
    ]
    return [flag for flag in flags if flag is not None]


# --- reliability ---------------------------------------------------------------------------------


def _reliability_flag(scores: Reliability) -> Flag | None:
    """``unreliable`` when Dawid-Skene or MACE puts the annotator under ``UNRELIABLE_BELOW``."""
    if scores.units < MIN_JUDGMENTS:
        return None
    low = [
        f"{name} {value:.2f}"
        for name, value in (("Dawid-Skene", scores.dawid_skene), ("MACE", scores.mace))
        if value is not None and value < UNRELIABLE_BELOW
    ]
    if not low:
        return None
    return Flag(
        "unreliable",
        f"Unreliable: {' and '.join(low)} (0 is chance, 1 always the consensus; under "
        f"{UNRELIABLE_BELOW} flagged) over {scores.units} judgments others also made. Their "
        "votes can be down-weighted or dropped: annotator_weights / drop_below.",
    )


# --- everything ----------------------------------------------------------------------------------


def reliability_votes(rows: Sequence[Row]) -> list[tuple[int, int, str]]:
    """The votes the reliability models are fitted on: (comparison, annotator, choice)."""
    return [(row.comparison_id, row.annotator_id, row.choice) for row in rows]


def quality(
    rows: Sequence[Row],
    usernames: Mapping[int, str] | None = None,
    *,
    scores: Mapping[Any, Reliability] | None = None,
) -> Quality:
    """Agreement (project, rounds, annotators, annotator pairs), reliability and the bias audit of
    a project's judgments; ``usernames`` names the annotators (default: their ids). ``scores``:
    reliability already fitted on ``reliability_votes(rows)`` (the stats page caches the fit,
    the slowest part); fitted here when absent."""
    units = _units(rows)
    by_round: dict[int, list[list[Row]]] = defaultdict(list)
    by_annotator_units: dict[int, list[list[Row]]] = defaultdict(list)
    for votes in units.values():
        number = round_of(votes[0].batch)
        if number is not None:
            by_round[number].append(votes)
        for annotator_id in {row.annotator_id for row in votes}:
            by_annotator_units[annotator_id].append(votes)
    by_annotator: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        by_annotator[row.annotator_id].append(row)
    project_bias = bias(rows)
    figures = {key: bias(own_rows) for key, own_rows in sorted(by_annotator.items())}
    if scores is None:
        scores = annotator_reliability(reliability_votes(rows))
    annotators = []
    for annotator_id, own in figures.items():
        own_scores = scores.get(annotator_id, NO_RELIABILITY)
        flags = _annotator_flags(annotator_id, figures)
        if (unreliable := _reliability_flag(own_scores)) is not None:
            flags.append(unreliable)
        annotators.append(
            AnnotatorQuality(
                annotator_id=annotator_id,
                username=(usernames or {}).get(annotator_id, str(annotator_id)),
                agreement=agreement(by_annotator_units[annotator_id], pairs_of=annotator_id),
                bias=own,
                flags=flags,
                reliability=own_scores,
            )
        )
    return Quality(
        agreement=agreement(list(units.values())),
        rounds=[
            RoundAgreement(number, agreement(round_units))
            for number, round_units in sorted(by_round.items())
        ],
        pairs=pair_kappas(units.values(), usernames),
        bias=project_bias,
        flags=_project_flags(project_bias, rows),
        annotators=annotators,
    )
