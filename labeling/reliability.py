"""How far each annotator can be trusted: Dawid-Skene and MACE reliability, and vote weights.

Two latent-truth models of `crowd-kit <https://github.com/Toloka/crowd-kit>`_ (1.4.2, pinned),
fitted on the judgments of the comparisons two or more annotators judged ("units"; a comparison
judged once says nothing about its annotator, and would only pull the models toward trusting
whoever judged alone). The items are comparisons, the labels the choices in the comparison's own
``a`` / ``b`` / ``tie`` / ``both_bad`` frame (not the side shown: an annotator who always picks the
left-shown response answers ``a`` or ``b`` at random in that frame, so both models see an annotator
whose answers do not follow the consensus, which is what they measure).

One score per annotator and model, on ``[0, 1]``, 0 meaning "no better than chance", 1 "always
the latent truth":

- **Dawid-Skene** (1979, ``crowdkit...DawidSkene``, EM over one confusion matrix per annotator):
  the chance-corrected accuracy ``(acc - chance) / (1 - chance)``, clipped to ``[0, 1]``, with
  ``acc = Σ_c p_c E[c, c]`` (the class priors ``p`` weighting the diagonal of the annotator's
  confusion matrix ``E[answer, truth]``) and ``chance = Σ_k p_k q_k``, ``q_k = Σ_c p_c E[k, c]``
  the annotator's own answer rates: how often a rater answering at those rates, whatever the item,
  would hit the truth (Cohen's kappa against the latent truth). A random or always-left annotator
  scores about 0 whatever their rates, a consistent one with 10% noise about 0.85.
- **MACE** (Hovy et al. 2013, ``crowdkit...MACE``, variational Bayes): the competence ``θ``, the
  probability that the annotator is not "spamming" (answering from their own distribution) on an
  item. Not chance-corrected: an annotator answering ``a`` or ``b`` at random on mostly a/b
  comparisons hits the truth half the time, and the symmetric Dirichlet prior on the spam
  distribution (crowd-kit: 10 per label) credits part of that to competence (0.29-0.43 for the
  always-left annotator of ``tests/labeling/test_reliability.py``, ~0.06 for a uniformly random
  one; Dawid-Skene: both 0-0.13; the consistent annotators 0.65-0.99 under either). One restart: crowd-kit seeds every restart with the same
  ``random_state``, so more would repeat the same fit.

**Vote weights** (``annotator_weights=dawid_skene|mace`` of exports and round snapshots,
``labeling.preferences.weighted_decision``): a judgment counts by its annotator's score; with
``drop_below=t`` the judgments of annotators scoring under ``t`` are removed first. An annotator
with no unit (never judged a comparison someone else judged) has no score of their own and gets
the median of the others' (1.0 when nobody has one): the models have no evidence either way.
Scores are rounded to 4 decimals, so a round's runner and its export (other processes) weigh alike.

Why the whole package is imported, lazily: ``crowdkit.aggregation``'s ``__init__`` also imports
its text and embedding aggregators (``nltk``, ``scikit-learn``; about 1 s on a cold start) but
neither torch nor transformers (``tests/test_architecture.py`` checks a web-side import and a fit
leave them out of ``sys.modules``). So it is imported on the first fit, not when the web process
starts; only the export and stats paths that ask for reliability pay for it.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

MODELS = ("dawid_skene", "mace")
WEIGHTINGS = ("none", *MODELS)  # the export parameter / snapshot option ``annotator_weights``
DECIMALS = 4
DS_ITERATIONS = 100
MACE_ITERATIONS = 50
SEED = 0

#: One judgment as the models take it: (comparison id, annotator key, choice).
Vote = tuple[Hashable, Hashable, str]


@dataclass(frozen=True, slots=True)
class Reliability:
    """One annotator's scores (None: no unit, or no variation to learn from) and their evidence."""

    units: int  # judgments on comparisons someone else judged too
    dawid_skene: float | None
    mace: float | None


def _units(votes: Iterable[Vote]) -> list[Vote]:
    by_comparison: dict[Hashable, list[Vote]] = defaultdict(list)
    for vote in votes:
        by_comparison[vote[0]].append(vote)
    return [vote for group in by_comparison.values() if len(group) >= 2 for vote in group]


def _frame(units: list[Vote]) -> Any:
    import pandas as pd  # crowd-kit's own dependency: loaded with it, only when fitting

    return pd.DataFrame(units, columns=["task", "worker", "label"])


def dawid_skene(units: list[Vote]) -> dict[Hashable, float]:
    """Chance-corrected Dawid-Skene accuracy per annotator (see the module docstring)."""
    from crowdkit.aggregation import DawidSkene

    frame = _frame(units)
    model = DawidSkene(n_iter=DS_ITERATIONS).fit(frame)
    assert model.priors_ is not None and model.errors_ is not None
    labels = list(model.priors_.index)
    priors = model.priors_.to_numpy(dtype=float)
    scores: dict[Hashable, float] = {}
    for worker in dict.fromkeys(frame["worker"]):
        errors = model.errors_.loc[worker].reindex(index=labels, columns=labels).fillna(0.0)
        matrix = errors.to_numpy(dtype=float)  # [answer, truth]
        accuracy = float(np.diag(matrix) @ priors)
        chance = float((matrix @ priors) @ priors)
        skill = (accuracy - chance) / (1 - chance) if chance < 1 else 1.0
        scores[worker] = round(min(1.0, max(0.0, skill)), DECIMALS)
    return scores


def mace(units: list[Vote]) -> dict[Hashable, float]:
    """MACE competence (probability of not spamming) per annotator."""
    import pandas as pd
    from crowdkit.aggregation import MACE

    frame = _frame(units)
    model = MACE(n_restarts=1, n_iter=MACE_ITERATIONS, random_state=SEED).fit(frame)
    _, workers = pd.factorize(frame["worker"])  # the model's worker order
    return {
        worker: round(min(1.0, max(0.0, float(model.spamming_[i, 1]))), DECIMALS)
        for i, worker in enumerate(workers)
    }


FITS = {"dawid_skene": dawid_skene, "mace": mace}


def scores(votes: Iterable[Vote], model: str) -> dict[Hashable, float]:
    """``model``'s score of every annotator with a unit; {} when there is nothing to learn
    (no unit); 1.0 for everyone when every unit judgment made the same choice."""
    units = _units(votes)
    if not units:
        return {}
    if len({vote[2] for vote in units}) < 2:
        return dict.fromkeys((vote[1] for vote in units), 1.0)
    return FITS[model](units)


def annotator_weights(votes: Iterable[Vote], model: str) -> dict[Hashable, float]:
    """The vote weight of every annotator of ``votes`` under ``model``: their score, or for one
    without a unit the median of the others' scores (1.0 when none has one)."""
    votes = list(votes)
    found = scores(votes, model)
    fallback = round(float(statistics.median(found.values())), DECIMALS) if found else 1.0
    return {annotator: found.get(annotator, fallback) for annotator in {v[1] for v in votes}}


def annotator_reliability(votes: Iterable[Vote]) -> dict[Hashable, Reliability]:
    """Both models' scores for every annotator of ``votes`` (the stats page's table)."""
    units = _units(votes)
    counts = Counter(vote[1] for vote in units)
    fitted: dict[str, Mapping[Hashable, float]] = {}
    if units and len({vote[2] for vote in units}) >= 2:
        fitted = {name: fit(units) for name, fit in FITS.items()}
    elif units:
        fitted = {name: dict.fromkeys(counts, 1.0) for name in FITS}
    return {
        annotator: Reliability(
            units=count,
            dawid_skene=fitted.get("dawid_skene", {}).get(annotator),
            mace=fitted.get("mace", {}).get(annotator),
        )
        for annotator, count in counts.items()
    }
