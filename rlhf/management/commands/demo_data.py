"""``manage.py demo_data``: the demo project (idempotent; new accounts' passwords are printed once)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from rlhf.demo import DEMO_PROJECT, demo_project_create
from rlhf.training.specs import MODEL_PRESETS


class Command(BaseCommand):
    help = (
        "Create the demo project: prompts from the built-in question families (split=test: half "
        "from families the built-in policy never saw, half unseen prompts of its own families), "
        "responses of varying quality, comparisons, an admin and two annotators."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", default=DEMO_PROJECT)
        parser.add_argument("--prompts", type=int, default=60, help="training prompts")
        parser.add_argument("--held-out", type=int, default=20, help="held-out prompts")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--model",
            choices=MODEL_PRESETS,
            default="toy",
            help="toy (templated questions, default) or smollm2 (real questions with known "
            "answers, tuning SmolLM2-135M-Instruct: run bootstrap_models --preset smollm2 first)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        result = demo_project_create(
            name=options["name"],
            train_prompts=options["prompts"],
            held_out_prompts=options["held_out"],
            seed=options["seed"],
            model=options["model"],
        )
        project = result.project
        self.stdout.write(
            f"project {project.name!r} (id {project.pk}): {result.prompts} prompts, "
            f"{result.comparisons_added} new comparisons"
        )
        for username, role, password in result.new_users:
            self.stdout.write(f"  {role:<9} {username:<12} password: {password}")
        if not result.new_users:
            self.stdout.write("  accounts already existed (passwords unchanged)")
