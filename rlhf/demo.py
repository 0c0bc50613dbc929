"""The demo project: prompts from the built-in question families, responses of varying quality,
comparisons, an admin and two annotators. Idempotent: running it again adds nothing twice.

Used by ``manage.py demo_data``, ``run_loop`` and the tests. Imports only the plain-Python corpus
of the training engine (no torch), never from the web process.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from labeling.models import Project, Split
from labeling.services import (
    admin_group_ensure,
    comparisons_create,
    pairs_all,
    project_create,
    prompts_add,
    responses_add,
    user_create,
)
from rlhf import services
from rlhf.training import corpus, questions

DEMO_PROJECT = "Demo: helpful answers"
DEMO_PROJECT_SMOLLM2 = "Demo: SmolLM2 real questions"
DEMO_GUIDELINES_SMOLLM2 = (
    "Prefer the **correct** answer (some questions are arithmetic: check it). When both are "
    "equally correct, prefer the **brief** one. Use *tie* when you cannot tell them apart and "
    "*both bad* when neither answers the question."
)
DEMO_GUIDELINES = (
    "Prefer the **correct** answer. When both are equally correct, prefer the **polite** one. "
    "Use *tie* when you cannot tell them apart and *both bad* when neither answers the question."
)


@dataclass
class DemoResult:
    project: Project
    new_users: list[tuple[str, str, str]] = field(default_factory=list)  # username, role, password
    prompts: int = 0
    comparisons_added: int = 0


def _demo_project_and_people(
    *,
    name: str,
    admin: str,
    annotators: tuple[str, ...],
    description: str,
    guidelines: str,
    judgments_per_comparison: int,
) -> tuple[Project, list[tuple[str, str, str]]]:
    """The demo's admin and annotators (created with their passwords listed, when new) and its
    project (created when absent), the annotators joined to it."""
    created: list[tuple[str, str, str]] = []
    admin_user = _ensure_user(admin, "admin", created) if admin else None
    admin_group_ensure()  # an older demo's admin group gets the Django-admin permissions too
    annotator_users = [_ensure_user(u, "annotator", created) for u in annotators]
    project = Project.objects.filter(name=name).first()
    if project is None:
        project = project_create(
            name=name,
            created_by=admin_user,
            description=description,
            guidelines=guidelines,
            judgments_per_comparison=judgments_per_comparison,
        )
    project.annotators.add(*annotator_users)
    return project, created


def _ensure_user(username: str, role: str, created: list[tuple[str, str, str]]) -> Any:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        user, password = user_create(username=username, role=role)
        created.append((username, role, password))
    return user


def demo_project_create(
    *,
    name: str = DEMO_PROJECT,
    train_prompts: int = 60,
    held_out_prompts: int = 20,
    responses_per_prompt: int = 3,
    seed: int = 0,
    admin: str = "admin",
    annotators: tuple[str, ...] = ("annotator1", "annotator2"),
    judgments_per_comparison: int = 1,
    model: str = "toy",
) -> DemoResult:
    """Create (or complete) the demo project; returns it with any accounts made on this call.

    ``model="smollm2"``: the project tunes the SmolLM2-135M-Instruct preset and its prompts are
    real questions with known answers (``questions.py``, a fifth of them arithmetic).
    """
    if model == "smollm2":
        return _demo_smollm2_create(
            name=name if name != DEMO_PROJECT else DEMO_PROJECT_SMOLLM2,
            train_prompts=train_prompts,
            held_out_prompts=held_out_prompts,
            responses_per_prompt=responses_per_prompt,
            seed=seed,
            admin=admin,
            annotators=annotators,
            judgments_per_comparison=judgments_per_comparison,
        )
    if model != "toy":
        raise ValueError(f"unknown demo model {model!r}; use toy or smollm2")
    project, created = _demo_project_and_people(
        name=name,
        admin=admin,
        annotators=annotators,
        description="Templated questions with one right answer; answers vary in correctness, "
        "politeness, length and format.",
        guidelines=DEMO_GUIDELINES,
        judgments_per_comparison=judgments_per_comparison,
    )
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    questions: list[corpus.Question] = []
    unseen = (held_out_prompts + 1) // 2
    for split, count, families, prefix in (
        (Split.TRAIN, train_prompts, corpus.TRAIN_FAMILIES, "train"),
        # Held out = never trained on: half from families the built-in policy never saw,
        # half from its own families (where a round can measurably improve it).
        (Split.TEST, unseen, corpus.HELD_OUT_FAMILIES, "test"),
        (Split.TEST, held_out_prompts - unseen, corpus.TRAIN_FAMILIES, "test-seen"),
    ):
        for index in range(count):
            question = corpus.sample_question(rng, families)
            questions.append(question)
            rows.append(
                {
                    "external_id": f"demo-{prefix}-{seed}-{index}",
                    "messages": corpus.prompt_messages(question, with_system=True),
                    "split": split,
                    "metadata": {"family": question.family},
                }
            )
    added = 0
    with transaction.atomic():
        prompts = prompts_add(project=project, rows=rows)
        for prompt, question in zip(prompts, questions, strict=True):
            # Quality varies by design: annotators get real differences to judge.
            texts = [
                corpus.sample_response(question, rng, p_correct=p).text
                for p in (0.85, 0.5, 0.2)[:responses_per_prompt]
            ]
            responses = responses_add(prompt=prompt, texts=texts, model_name="corpus")
            added += len(
                comparisons_create(project=project, pairs=pairs_all(responses), batch="demo")
            )
        services.checkpoint_base(project=project)
    return DemoResult(
        project=project, new_users=created, prompts=len(prompts), comparisons_added=added
    )


def _demo_smollm2_create(
    *,
    name: str,
    train_prompts: int,
    held_out_prompts: int,
    responses_per_prompt: int,
    seed: int,
    admin: str,
    annotators: tuple[str, ...],
    judgments_per_comparison: int,
) -> DemoResult:
    project, created = _demo_project_and_people(
        name=name,
        admin=admin,
        annotators=annotators,
        description="Real questions with known answers (facts and arithmetic) for the "
        "SmolLM2-135M-Instruct preset.",
        guidelines=DEMO_GUIDELINES_SMOLLM2,
        judgments_per_comparison=judgments_per_comparison,
    )
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    asked: list[questions.RealQuestion] = []
    for split, count, held_out, prefix in (
        (Split.TRAIN, train_prompts, False, "train"),
        (Split.TEST, held_out_prompts, True, "test"),
    ):
        for index, question in enumerate(
            questions.sample_questions(count, seed, held_out=held_out)
        ):
            asked.append(question)
            rows.append(
                {
                    "external_id": f"smollm2-{prefix}-{seed}-{index}",
                    "messages": questions.prompt_messages(question),
                    "split": split,
                    "metadata": {"family": question.topic, "answer": question.answer},
                }
            )
    added = 0
    with transaction.atomic():
        services.project_model_set(
            project=project, model_spec=services.model_spec_preset("smollm2")
        )
        prompts = prompts_add(project=project, rows=rows)
        for prompt, question in zip(prompts, asked, strict=True):
            texts = list(
                dict.fromkeys(
                    questions.sample_answer(question, rng, p_correct=p)
                    for p in (0.85, 0.5, 0.2)[:responses_per_prompt]
                )
            )
            if len(texts) < 2:
                continue
            responses = responses_add(prompt=prompt, texts=texts, model_name="questions")
            added += len(
                comparisons_create(project=project, pairs=pairs_all(responses), batch="demo")
            )
    return DemoResult(
        project=project, new_users=created, prompts=len(prompts), comparisons_added=added
    )
