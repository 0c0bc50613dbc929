"""Fixtures of the interchange tests: a judged project, a helper to judge comparisons."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from labeling.models import Comparison, Judgment, Project
from tests.factories import ComparisonFactory, PromptFactory, ResponseFactory, UserFactory

Judge = Callable[..., Judgment]


@pytest.fixture
def judge() -> Judge:
    def make(
        comparison: Comparison,
        username: str,
        choice: str,
        strength: int | None = None,
        **extra: Any,
    ) -> Judgment:
        if strength is None and choice in ("a", "b"):
            strength = 2
        user: Any = UserFactory.create(username=username)
        judgment = Judgment.objects.create(
            annotator=user,
            comparison=comparison,
            choice=choice,
            strength=strength,
            shown_left=extra.pop("shown_left", "a"),
            **extra,
        )
        Comparison.objects.filter(pk=comparison.pk).update(
            judgment_count=comparison.judgments.count()
        )
        return judgment

    return make


@pytest.fixture
def judged_project(db: Any, judge: Judge) -> Project:
    """Twelve prompts, one comparison each, judged by one or two annotators."""
    project = Project.objects.create(name="Helpful chat / v1", judgments_per_comparison=2)
    for index in range(12):
        prompt = PromptFactory.create(
            project=project,
            external_id=f"q{index}",
            messages=(
                [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": f"Q{index}?"},
                ]
                if index % 3 == 0
                else [{"role": "user", "content": f"Question {index}?"}]
            ),
        )
        a = ResponseFactory.create(
            prompt=prompt, text=f"good answer {index}", model_name="policy", checkpoint_ref="ckpt-7"
        )
        b = ResponseFactory.create(prompt=prompt, text=f"bad answer {index}", model_name="base")
        comparison = ComparisonFactory.create(
            project=project,
            prompt=prompt,
            response_a=a,
            response_b=b,
            batch="round-1" if index < 6 else "round-2:vs-champion",
        )
        judge(comparison, "alice", "a", 3, time_spent_ms=1500 + index, rationale=f"why {index}")
        if index % 2 == 0:
            judge(
                comparison,
                "bob",
                "a" if index % 4 == 0 else "b",
                1,
                flags=["other"] if index == 4 else [],
            )
    return project
