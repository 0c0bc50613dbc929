"""The labeling service rlhf added for its demo data: ``prompts_add``."""

from __future__ import annotations

from typing import Any

from labeling.models import Prompt, Split
from labeling.services import prompts_add


def test_prompts_add_is_idempotent_by_external_id(project: Any) -> None:
    rows = [
        {"external_id": "q1", "messages": [{"role": "user", "content": "Hi?"}]},
        {"external_id": "q2", "messages": [{"role": "user", "content": "Ho?"}], "split": "test"},
    ]
    first = prompts_add(project=project, rows=rows)
    again = prompts_add(project=project, rows=rows)
    assert [p.pk for p in first] == [p.pk for p in again]
    assert Prompt.objects.filter(project=project).count() == 2
    assert first[1].split == Split.TEST
