"""A project with planted annotators, for the reliability tests of exports, stats and snapshots.

60 comparisons judged by five consistent annotators (the truth, 10% of the time a random choice
instead), one who answers at random and one who always picks the side shown on the left; plus
two probes checkable by hand:

- ``outvoted``: ``good0`` chose ``a`` (strength 3), the two planted annotators ``b``: the plain
  majority is ``b``; weighted by reliability, or with the planted votes dropped, it is ``a``;
- ``lonely``: only the random annotator judged it (``b``): weighted, its row weighs the random
  annotator's reliability; with the planted votes dropped it yields nothing.
"""

from __future__ import annotations

import random
from typing import Any

from labeling.models import Comparison, Judgment, Project
from tests.factories import ComparisonFactory, PromptFactory, ResponseFactory, UserFactory

CHOICES = ("a", "b", "tie", "both_bad")
CONSISTENT = tuple(f"good{i}" for i in range(5))
RANDOM, LEFT = "random", "always-left"
PLANTED = (RANDOM, LEFT)
MAIN_COMPARISONS = 60


def comparison_add(project: Project, name: str) -> Comparison:
    prompt = PromptFactory.create(
        project=project, external_id=name, messages=[{"role": "user", "content": name}]
    )
    comparison: Any = ComparisonFactory.create(
        project=project,
        prompt=prompt,
        response_a=ResponseFactory.create(prompt=prompt, text=f"A for {name}"),
        response_b=ResponseFactory.create(prompt=prompt, text=f"B for {name}"),
    )
    return comparison


def planted_project(*, seed: int = 0, name: str = "planted") -> Project:
    rng = random.Random(seed)
    project = Project.objects.create(name=name, judgments_per_comparison=7)
    users = {
        username: UserFactory.create(username=username) for username in (*CONSISTENT, *PLANTED)
    }
    judgments = []

    def vote(comparison: Comparison, username: str, choice: str, shown_left: str) -> None:
        strength = rng.randint(1, 4) if choice in ("a", "b") else None
        judgments.append(
            Judgment(
                annotator=users[username],
                comparison=comparison,
                choice=choice,
                strength=strength,
                shown_left=shown_left,
            )
        )

    for index in range(MAIN_COMPARISONS):
        comparison = comparison_add(project, f"q{index}")
        truth = rng.choices(CHOICES, weights=(45, 45, 5, 5))[0]
        for username in CONSISTENT:
            choice = rng.choice(CHOICES) if rng.random() < 0.1 else truth
            vote(comparison, username, choice, rng.choice("ab"))
        vote(comparison, RANDOM, rng.choice(CHOICES), rng.choice("ab"))
        left = rng.choice("ab")
        vote(comparison, LEFT, left, left)
    outvoted = comparison_add(project, "outvoted")
    judgments.append(
        Judgment(
            annotator=users["good0"], comparison=outvoted, choice="a", strength=3, shown_left="a"
        )
    )
    vote(outvoted, RANDOM, "b", "a")
    vote(outvoted, LEFT, "b", "b")
    vote(comparison_add(project, "lonely"), RANDOM, "b", "a")
    Judgment.objects.bulk_create(judgments)
    return project
