"""``manage.py model_spec NAME --base-model PATH_OR_HUB_ID [--project P] …``.

Creates or updates a model spec: the causal LM a project tunes (a local directory or a Hugging
Face hub id; ``builtin:policy`` is the built-in tiny model), the reward model's backbone, an
optional chat template (for a tokenizer without one), the dtype and the device. ``--project``
makes it the model of a project that has no rounds yet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling.models import Project
from labeling.services import LabelingError
from rlhf import selectors, services
from rlhf.models import MODEL_DEVICES, MODEL_DTYPES


class Command(BaseCommand):
    help = "Create or update a model spec (the base model a project tunes), optionally use it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--base-model", required=True, help="local directory or hub id")
        parser.add_argument("--reward-backbone", default="builtin:reward-backbone")
        parser.add_argument("--chat-template-file", help="a Jinja chat template for the policy")
        parser.add_argument("--dtype", default="auto", choices=MODEL_DTYPES)
        parser.add_argument("--device", default="auto", choices=MODEL_DEVICES)
        parser.add_argument("--project", help="use it for this project (before its first round)")

    def handle(self, *args: Any, **options: Any) -> None:
        template = ""
        if options["chat_template_file"]:
            try:
                template = Path(options["chat_template_file"]).read_text(encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"--chat-template-file: {exc}") from exc
        try:
            spec = services.model_spec_save(
                name=options["name"],
                base_model=options["base_model"],
                reward_backbone=options["reward_backbone"],
                chat_template=template,
                dtype=options["dtype"],
                device=options["device"],
            )
            self.stdout.write(f"model spec {spec.name!r}: {spec.base_model} ({spec.dtype})")
            if options["project"]:
                project = selectors.project_by_ref(options["project"])
                base = services.project_model_set(project=project, model_spec=spec)
                self.stdout.write(f"project {project.name!r} tunes it (checkpoint #{base.pk})")
        except Project.DoesNotExist as exc:
            raise CommandError(f"no project {options['project']!r}") from exc
        except LabelingError as exc:
            raise CommandError(f"{exc.field}: {exc.message}" if exc.field else exc.message) from exc
