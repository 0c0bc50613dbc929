"""``manage.py generate PROJECT``: sample responses from a checkpoint into the labeling queue.

Runs the engine's ``generate`` step for the project's prompts (held-out first) with the champion
(or ``--checkpoint``), then adds the samples as responses and their pairs as comparisons.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling.models import Project
from rlhf import runner, selectors, services, supervision
from rlhf.models import Checkpoint
from rlhf.terminal import StepBar


class Command(BaseCommand):
    help = "Generate responses from a checkpoint (default: the champion) into the queue."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="project id or name")
        parser.add_argument("--checkpoint", type=int, default=None)
        parser.add_argument("--prompts", type=int, default=200)
        parser.add_argument("--samples", type=int, default=2)
        parser.add_argument("--temperature", type=float, default=1.0)
        parser.add_argument("--max-new-tokens", type=int, default=32)
        parser.add_argument("--priority", type=int, default=50)
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            project = selectors.project_by_ref(options["project"])
        except Project.DoesNotExist as exc:
            raise CommandError(f"no project {options['project']!r}") from exc
        if options["checkpoint"]:
            checkpoint = Checkpoint.objects.get(pk=options["checkpoint"], project=project)
        else:
            checkpoint = services.checkpoint_champion(project=project)
        prompts = selectors.generation_prompts(project, options["prompts"])
        if not prompts:
            raise CommandError("the project has no prompts")
        workdir = Path(settings.PAIRWISE_DATA_DIR) / "runs" / f"generate-{checkpoint.pk}"
        workdir.mkdir(parents=True, exist_ok=True)
        runner.write_jsonl(workdir / "prompts.jsonl", selectors.prompt_rows(prompts))
        output = workdir / "samples.jsonl"
        output.unlink(missing_ok=True)
        spec = {
            "base_model": checkpoint.model_spec.base_model_path,
            "adapter": checkpoint.adapter_path,
            "prompts": str(workdir / "prompts.jsonl"),
            "output": str(output),
            "num_samples": options["samples"],
            "temperature": options["temperature"],
            "max_new_tokens": options["max_new_tokens"],
            "seed": options["seed"],
            **checkpoint.model_spec.engine_fields(),
        }
        progress = StepBar(self.stdout, "generate")
        try:
            with supervision.sigterm_stops_children():
                runner.engine_call("generate", spec, workdir=workdir, on_event=progress.event)
        except RuntimeError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            progress.close()
        created = services.checkpoint_samples_add(
            checkpoint=checkpoint,
            samples=runner.read_samples(output),
            batch=f"generate:ckpt-{checkpoint.pk}",
            priority=options["priority"],
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"checkpoint #{checkpoint.pk}: {len(prompts)} prompts, {created} new comparisons"
            )
        )
