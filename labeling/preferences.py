"""What the votes on one comparison mean: the ONE definition of a preference.

Every preference export (TRL, KTO, HH, any container) and every tuning round's snapshot turns
judgments into preferences here, so an exported dataset is exactly the data a round trains on.

**Decision.** The votes of a comparison (``a``, ``b``, ``tie``, ``both_bad``) decide by strict
plurality: the choice with more votes than any other wins. A shared top (one ``a`` and one ``b``,
or one ``a`` and one ``tie``) is *undecided*: no annotator majority, no preference.

**Share.** The winner's votes over all votes (1.0 for a single judgment, 0.67 for 2 of 3).

**Margin**, on one scale, ``[0, 1]``: each winning vote's strength maps linearly,
1 "negligibly better" → 0, 2 "slightly" → 1/3, 3 "clearly" → 2/3, 4 "much better" → 1; the margin
is the mean over the winning votes that carry a strength (0 when none does). Ties and both-bad
have margin 0. TRL's reward trainer subtracts it inside the loss
(``-logsigmoid(r_chosen - r_rejected - margin)``), so a "much better" pair must be won by more.

**Weight** of a pair: the share, or under ``aggregation=all`` 1/n per judgment. A tie or both-bad
decision under the ``split`` policy becomes both orders at half the weight, margin 0; under
``drop`` it yields no pair. For unpaired (KTO) data a decided pair yields its chosen response as
desirable and its rejected one as undesirable, a both-bad decision both responses as undesirable,
a tie nothing.

**Reliability weights** (opt-in: ``annotator_weights=dawid_skene|mace`` on an export, the same
option in a round's snapshot; off by default, and then nothing above changes): each vote counts
by its annotator's reliability on ``[0, 1]`` (``labeling.reliability``, estimated once over the
judgments being turned into rows), and ``drop_below`` removes the votes of annotators under it.
The weighted votes decide by plurality of their sums, the share is the winner's sum over all,
the margin the weighted mean of the winners' strength margins, and the weight of a pair the share
times the mean reliability of the winning votes (:func:`weighted_decision`).

**Adjudications** (``Adjudication``: a reviewer's decision, stored beside the votes) change
nothing by default (``adjudicated=ignore``). Under ``adjudicated=prefer`` (an export option and a
``snapshot_rows`` argument) a comparison that has one and at least one selected judgment yields
what the adjudication says, decided as one vote (:func:`adjudicated_decision`: share and weight
1.0, the margin of its strength) whatever the aggregation, reliability weights or
``min_agreement``; a comparison without one is decided by its votes as always.

**Gold** comparisons (``labeling.gold``) are never preferences: their judgments measure annotators
and are left out here (``snapshot_rows``) and by every export (``Comparison.objects.not_gold``).

**Held out.** Every preference export's test split and every tuning round's held-out rows are cut
on one place per prompt, :func:`split_position` of its :func:`split_key`: an export holds a
prompt out when its place under the export's ``seed`` is below ``test_size``, a round's training
steps when its place under seed 0 is below ``reward.eval_fraction``. So the export with
``test_size`` = the round's ``eval_fraction`` and ``seed=0`` has in its test split the prompts
the round's reward model was scored on, beside the project's own held-out prompts (``split:
test``), which a round's snapshot leaves out (and a snapshot whose hash holds out none holds out
its lowest-placed prompt, ``rlhf.training.data.split``; the export then has none).

Margins and weights are rounded to 4 decimals here, so every consumer sees the same numbers.
:class:`PreferenceHash` is the content hash of a sequence of preference pairs (prompt messages,
chosen text, rejected text, margin, weight), whatever file format carries them: the dataset card
and the round page both show it.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Count, F, Q, QuerySet
from django.db.models.expressions import RawSQL

from labeling import reliability
from labeling.models import Adjudication, Choice, Judgment

UNDECIDED = "undecided"
SIDES = (Choice.A.value, Choice.B.value)
TIE_POLICIES = ("drop", "split")
ANNOTATOR_WEIGHTS = reliability.WEIGHTINGS  # none | dawid_skene | mace
BOTH_BAD_POLICIES = ("drop", "split")
ADJUDICATED = ("ignore", "prefer")
DECIMALS = 4


def strength_margin(strength: int | None) -> float | None:
    """One vote's strength (1-4) on the margin scale [0, 1]; None when the vote has none."""
    if strength is None:
        return None
    if not 1 <= strength <= 4:
        raise ValueError(f"strength must be 1-4, got {strength}")
    return (strength - 1) / 3


@dataclass(frozen=True, slots=True)
class Votes:
    """The votes on one comparison: counts per choice and the winning sides' strengths."""

    a: int = 0
    b: int = 0
    tie: int = 0
    both_bad: int = 0
    a_strength_sum: int = 0  # sum of the strengths of the ``a`` votes that carry one
    a_strength_n: int = 0
    b_strength_sum: int = 0
    b_strength_n: int = 0

    @property
    def n(self) -> int:
        return self.a + self.b + self.tie + self.both_bad

    @classmethod
    def of(cls, votes: Iterable[tuple[str, int | None]]) -> Votes:
        """From ``(choice, strength)`` pairs."""
        counts = dict.fromkeys(Choice.values, 0)
        strength = {"a": [0, 0], "b": [0, 0]}
        for choice, value in votes:
            counts[choice] += 1
            if value is not None and choice in strength:
                strength[choice][0] += value
                strength[choice][1] += 1
        return cls(
            a=counts["a"],
            b=counts["b"],
            tie=counts["tie"],
            both_bad=counts["both_bad"],
            a_strength_sum=strength["a"][0],
            a_strength_n=strength["a"][1],
            b_strength_sum=strength["b"][0],
            b_strength_n=strength["b"][1],
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """What one comparison's votes decided (see the module docstring for the rules)."""

    outcome: str  # a | b | tie | both_bad | undecided
    share: float  # the winner's share of the votes (undecided: the shared top's share)
    margin: float  # [0, 1] for a decided side, else 0
    n: int
    agreeing_pairs: int  # pairs of judgments that made the same choice
    pairs: int  # all pairs of judgments: n (n - 1) / 2

    @property
    def unanimous(self) -> bool:
        return self.agreeing_pairs == self.pairs


@functools.lru_cache(maxsize=8192)
def decide(votes: Votes) -> Decision:
    """The decision of one comparison's votes. Few distinct vote counts occur: cached."""
    counts = {"a": votes.a, "b": votes.b, "tie": votes.tie, "both_bad": votes.both_bad}
    n = votes.n
    top = max(counts.values())
    leaders = [choice for choice, count in counts.items() if count == top]
    outcome = leaders[0] if len(leaders) == 1 and top else UNDECIDED
    margin = 0.0
    if outcome in SIDES:
        total, counted = (
            (votes.a_strength_sum, votes.a_strength_n)
            if outcome == "a"
            else (votes.b_strength_sum, votes.b_strength_n)
        )
        # mean strength s over the counted votes, mapped like strength_margin: (s - 1) / 3
        margin = round((total / counted - 1) / 3, DECIMALS) if counted else 0.0
    agreeing = sum(count * (count - 1) for count in counts.values()) // 2
    return Decision(
        outcome=outcome,
        share=round(top / n, DECIMALS) if n else 0.0,
        margin=margin,
        n=n,
        agreeing_pairs=agreeing,
        pairs=n * (n - 1) // 2,
    )


def vote_decision(choice: str, strength: int | None) -> Decision:
    """One judgment on its own (``aggregation=all``): its choice, its strength's margin."""
    return decide(Votes.of([(choice, strength)]))


def adjudicated_decision(choice: str, strength: int | None) -> Decision:
    """A reviewer's adjudication as a decision: one decisive vote."""
    return decide(Votes.of([(choice, strength)]))


def weighted_decision(
    votes: Iterable[tuple[str, int | None, float]], *, drop_below: float = 0.0
) -> tuple[Decision, float]:
    """The decision of votes that count by their annotator's reliability (``labeling.reliability``),
    and the weight of what it yields. ``votes``: ``(choice, strength, reliability)``.

    Votes whose reliability is under ``drop_below`` are removed first. The rest decide by strict
    plurality of their summed reliabilities (no reliability at all: undecided); the share is the
    winner's sum over all sums; the margin the reliability-weighted mean of the winning votes'
    strength margins; the weight of a pair the share times the mean reliability of the winning
    votes, so a comparison only weak annotators decided weighs little. A split between annotators
    of unequal reliability is decided for the more reliable side, at a share near 0.5 (raise
    ``min_agreement`` to keep such pairs out). With every reliability 1.0 this is :func:`decide`
    with the share as weight, as without weights.
    """
    kept = [vote for vote in votes if vote[2] >= drop_below]
    sums = dict.fromkeys(Choice.values, 0.0)
    counts: dict[str, int] = dict.fromkeys(Choice.values, 0)
    for choice, _, trust in kept:
        sums[choice] += trust
        counts[choice] += 1
    # equal sums stay equal whatever the order of float additions: 0.8 + 0.1 against 0.9
    sums = {choice: round(value, 2 * DECIMALS) for choice, value in sums.items()}
    total = sum(sums.values())
    top = max(sums.values())
    leaders = [choice for choice, value in sums.items() if value == top]
    outcome = leaders[0] if len(leaders) == 1 and top > 0 else UNDECIDED
    n = len(kept)
    margin = weight = 0.0
    if outcome != UNDECIDED:
        winners = [vote for vote in kept if vote[0] == outcome]
        if outcome in SIDES:
            strong = [((s - 1) / 3, r) for _, s, r in winners if s is not None]
            strength_weight = sum(r for _, r in strong)
            if strength_weight > 0:
                margin = round(sum(m * r for m, r in strong) / strength_weight, DECIMALS)
        weight = (top / total) * (top / len(winners))
    decision = Decision(
        outcome=outcome,
        share=round(top / total, DECIMALS) if total > 0 else 0.0,
        margin=margin,
        n=n,
        agreeing_pairs=sum(count * (count - 1) for count in counts.values()) // 2,
        pairs=n * (n - 1) // 2,
    )
    return decision, round(weight, DECIMALS)


@dataclass(frozen=True, slots=True)
class Pair:
    """One preference pair in comparison terms: ``chosen`` is ``a`` or ``b``."""

    chosen: str
    margin: float
    weight: float

    @property
    def rejected(self) -> str:
        return "b" if self.chosen == "a" else "a"


def pairs_of(
    decision: Decision, *, ties: str = "drop", both_bad: str = "drop", weight: float | None = None
) -> tuple[Pair, ...]:
    """The preference pairs a decision yields under the tie / both-bad policies.

    ``weight`` replaces the decision's share (``aggregation=all``: 1/n per judgment).
    """
    base = decision.share if weight is None else weight
    if decision.outcome in SIDES:
        return (Pair(decision.outcome, decision.margin, round(base, DECIMALS)),)
    policy = {"tie": ties, "both_bad": both_bad}.get(decision.outcome)
    if policy == "split":
        half = round(base / 2, DECIMALS)
        return (Pair("a", 0.0, half), Pair("b", 0.0, half))
    return ()


@dataclass(frozen=True, slots=True)
class Completion:
    """One unpaired (KTO) example in comparison terms: response ``side`` is desirable or not."""

    side: str
    desirable: bool
    weight: float


def completions_of(
    decision: Decision, *, both_bad: str = "drop", weight: float | None = None
) -> tuple[Completion, ...]:
    """Unpaired examples: a decided pair → chosen desirable + rejected undesirable; both-bad under
    the ``split`` policy → both undesirable; a tie or an undecided comparison → nothing."""
    base = round(decision.share if weight is None else weight, DECIMALS)
    if decision.outcome in SIDES:
        loser = "b" if decision.outcome == "a" else "a"
        return (Completion(decision.outcome, True, base), Completion(loser, False, base))
    if decision.outcome == "both_bad" and both_bad == "split":
        return (Completion("a", False, base), Completion("b", False, base))
    return ()


def split_key(external_id: str, prompt_pk: int) -> str:
    """A prompt's name in the held-out hash: its external id, or ``prompt-<pk>`` without one (what
    an export writes as its ``prompt_id``)."""
    return external_id or f"prompt-{prompt_pk}"


def split_position(key: str, seed: int = 0) -> float:
    """A prompt's place in [0, 1) for held-out splits (module docstring): the first 8 bytes of
    sha256 of ``"<key>:<seed>"``."""
    digest = hashlib.sha256(f"{key}:{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def messages_json(messages: Any) -> str:
    """The canonical JSON of a prompt's messages (as hashed)."""
    return json.dumps(messages, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


class PreferenceHash:
    """sha256 over preference pairs (or unpaired completions) in order: the same data gives the
    same hash in every file format.

    A pair adds ``P<len>:<messages><len>:<chosen><len>:<rejected><margin>:<weight>;`` (the
    canonical messages JSON, the texts length-prefixed so no text can fake a boundary, numbers as
    rounded here), a completion ``C<len>:<messages><len>:<completion><0|1>:<weight>;``."""

    def __init__(self) -> None:
        self._update = (digest := hashlib.sha256()).update
        self._digest = digest
        self.items = 0

    def add_pair(
        self, messages_json: str, chosen: str, rejected: str, margin: float, weight: float
    ) -> None:
        self._update(
            f"P{len(messages_json)}:{messages_json}{len(chosen)}:{chosen}{len(rejected)}:"
            f"{rejected}{float(margin)!r}:{float(weight)!r};".encode("utf-8", "surrogatepass")
        )
        self.items += 1

    def add_completion(
        self, messages_json: str, completion: str, label: bool, weight: float
    ) -> None:
        self._update(
            f"C{len(messages_json)}:{messages_json}{len(completion)}:{completion}"
            f"{int(label)}:{float(weight)!r};".encode("utf-8", "surrogatepass")
        )
        self.items += 1

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def rows_hash(rows: Iterable[dict[str, Any]]) -> str:
    """The :class:`PreferenceHash` of snapshot rows: pairs ``{prompt, chosen, rejected, margin,
    weight}`` or completions ``{prompt, completion, label, weight}`` (prompt: messages)."""
    digest = PreferenceHash()
    for row in rows:
        messages = messages_json(row["prompt"])
        if "completion" in row:
            digest.add_completion(messages, row["completion"], bool(row["label"]), row["weight"])
        else:
            digest.add_pair(messages, row["chosen"], row["rejected"], row["margin"], row["weight"])
    return digest.hexdigest()


# --- which comparisons ---------------------------------------------------------------------------

ROUND_TAG = "round-"


def rounds_q(rounds: Sequence[int], *, prefix: str = "") -> Q:
    """Comparisons put into the queue by these rounds (their batch is ``round-N`` or
    ``round-N:<kind>``); round 0 means comparisons no round made (imported, demo, generated).
    ``prefix`` is the lookup path to the comparison (``"comparison__"`` from a judgment)."""
    batch = f"{prefix}batch"
    condition = Q(pk__in=[])
    for number in rounds:
        if number == 0:
            condition |= ~Q(**{f"{batch}__startswith": ROUND_TAG})
        else:
            tag = f"{ROUND_TAG}{number}"
            condition |= Q(**{batch: tag}) | Q(**{f"{batch}__startswith": f"{tag}:"})
    return condition


# --- rank: the absolute check (Project.ask_acceptable) -------------------------------------------


def unacceptable_comparisons() -> QuerySet[Any]:
    """Ids of comparisons whose acceptability answers (``Judgment.acceptable``) say "not
    acceptable" more often than "acceptable": their better response is not good enough to be
    a chosen one, so they go to the rewrite export (``labeling.interchange.depth_exports``)
    instead of preference pairs, and no snapshot or preference export (raw excepted) holds them.
    Comparisons nobody was asked about are never in it. (A subquery: ``pk__in=``.)"""
    return (
        Judgment.objects.filter(acceptable__isnull=False)
        .order_by()
        .values("comparison_id")
        .annotate(
            no=Count("pk", filter=Q(acceptable=False)), yes=Count("pk", filter=Q(acceptable=True))
        )
        .filter(no__gt=F("yes"))
        .values("comparison_id")
    )


# --- end rank ---


def id_list(ids: Iterable[int]) -> Any:
    """``ids`` for an ``__in`` filter, however many. SQLite binds at most 32 766 parameters a
    statement (its default limit; some builds allow more) and a snapshot can hold more judgments
    than that: there the ids go as one JSON parameter (``json_each``). Elsewhere the list."""
    values = [int(pk) for pk in ids]
    if connection.vendor == "sqlite":
        return RawSQL("SELECT value FROM json_each(%s)", (json.dumps(values),))
    return values


# --- a snapshot of judgments as training rows ----------------------------------------------------


def adjudications_of(
    comparison_ids: Iterable[int] | QuerySet[Any],
) -> dict[int, tuple[str, int | None]]:
    """The stored adjudications of these comparisons (ids, or a query of them): comparison id ->
    (choice, strength). One query."""
    ids = comparison_ids if isinstance(comparison_ids, QuerySet) else list(comparison_ids)
    return {
        comparison_id: (choice, strength)
        for comparison_id, choice, strength in Adjudication.objects.filter(
            comparison_id__in=ids
        ).values_list("comparison_id", "choice", "strength")
    }


def snapshot_rows(
    judgment_ids: Iterable[int],
    *,
    ties: str = "drop",
    both_bad: str = "drop",
    min_agreement: float = 0.0,
    unpaired: bool = False,
    annotator_weights: str = "none",
    drop_below: float = 0.0,
    adjudicated: str = "ignore",
    adjudications: Mapping[int, tuple[str, int | None]] | None = None,
) -> list[dict[str, Any]]:
    """The training rows of a set of judgments, comparisons in id order (one query).

    Pairs: ``{prompt_id, prompt, chosen, rejected, margin, weight}``; ``unpaired`` (KTO):
    ``{prompt_id, prompt, completion, label, weight}``; each also ``split_position``, its prompt's
    place for the held-out split (module docstring). ``prompt_id`` is the prompt's primary key
    as a string, ``prompt`` its messages. An undecided comparison, or one whose winner's share is
    below ``min_agreement``, yields nothing. ``annotator_weights`` (``dawid_skene`` / ``mace``):
    votes count by their annotator's reliability, estimated on these judgments
    (``labeling.reliability``; :func:`weighted_decision`), those under ``drop_below`` not at all.
    An export with the same judgments and policies (``format=trl_conversational&margin=1&weight=1``,
    or a KTO format, and the same ``annotator_weights`` / ``drop_below``) holds the same rows.
    Judgments of gold comparisons yield nothing, nor do those of comparisons judged not
    acceptable (:func:`unacceptable_comparisons`). ``adjudicated=prefer``: an adjudicated
    comparison yields its adjudication's decision instead of its votes' (module docstring):
    the stored ones, or ``adjudications`` (comparison id -> choice, strength) where given (a
    round's, frozen at launch: :func:`adjudications_of`).
    """
    votes: dict[int, list[tuple[str, int | None, str]]] = {}
    texts: dict[int, tuple[int, str, Any, str, str]] = {}
    rows_read = (
        Judgment.objects.filter(pk__in=id_list(judgment_ids), comparison__gold_answer="")
        .exclude(comparison_id__in=unacceptable_comparisons())  # rank: to the rewrite export
        .order_by("comparison_id", "id")
        .values_list(
            "comparison_id",
            "choice",
            "strength",
            "annotator__username",
            "comparison__prompt_id",
            "comparison__prompt__external_id",
            "comparison__prompt__messages",
            "comparison__response_a__text",
            "comparison__response_b__text",
        )
    )
    for comparison_id, choice, strength, username, prompt_id, external_id, *rest in rows_read:
        votes.setdefault(comparison_id, []).append((choice, strength, username))
        texts.setdefault(comparison_id, (prompt_id, external_id, *rest))
    weights = None
    if annotator_weights != "none":
        weights = reliability.annotator_weights(
            (
                (comparison_id, username, choice)
                for comparison_id, group in votes.items()
                for choice, _, username in group
            ),
            annotator_weights,
        )
    if adjudicated != "prefer":
        adjudications = {}
    elif adjudications is None:
        adjudications = adjudications_of(votes)
    rows: list[dict[str, Any]] = []
    for comparison_id, comparison_votes in votes.items():
        weight = None
        if comparison_id in adjudications:
            decision = adjudicated_decision(*adjudications[comparison_id])
        elif weights is None:
            decision = decide(Votes.of((c, s) for c, s, _ in comparison_votes))
        else:
            decision, weight = weighted_decision(
                ((c, s, weights[user]) for c, s, user in comparison_votes), drop_below=drop_below
            )
        if decision.outcome == UNDECIDED or decision.share < min_agreement:
            continue
        prompt_id, external_id, messages, a_text, b_text = texts[comparison_id]
        if isinstance(messages, str):
            messages = json.loads(messages)
        base = {
            "prompt_id": str(prompt_id),
            "prompt": messages,
            "split_position": split_position(split_key(external_id, prompt_id)),
        }
        text_of = {"a": a_text, "b": b_text}
        if unpaired:
            rows.extend(
                {
                    **base,
                    "completion": text_of[example.side],
                    "label": example.desirable,
                    "weight": example.weight,
                }
                for example in completions_of(decision, both_bad=both_bad, weight=weight)
            )
            continue
        rows.extend(
            {
                **base,
                "chosen": text_of[pair.chosen],
                "rejected": text_of[pair.rejected],
                "margin": pair.margin,
                "weight": pair.weight,
            }
            for pair in pairs_of(decision, ties=ties, both_bad=both_bad, weight=weight)
        )
    return rows
