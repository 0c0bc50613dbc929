"""``manage.py generate PROJECT``: sample responses from a checkpoint, into the labeling queue or
for evaluation only.

Runs the engine's ``generate`` step on the project's prompts with the champion (or
``--checkpoint``) and stores the samples as responses (``checkpoint_ref``, generation params,
seeds). By default every pair of a training prompt's samples becomes a comparison; held-out
prompts' samples never enter the queue. ``--eval-only`` samples the held-out prompts (or
``--split``) and enqueues nothing: ``GET /api/v1/checkpoints/{id}/samples/`` reads them back.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling.models import Project
from rlhf import runner, selectors, services, supervision
from rlhf.models import Checkpoint
from rlhf.terminal import StepBar


class Command(BaseCommand):
    help = (
        "Generate responses from a checkpoint (default: the champion) into the queue, or with "
        "--eval-only for evaluation (nothing enqueued)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="project id or name")
        parser.add_argument("--checkpoint", type=int, default=None)
        parser.add_argument(
            "--eval-only",
            action="store_true",
            help="store the samples for evaluation; create no comparison",
        )
        parser.add_argument(
            "--split",
            choices=selectors.SAMPLE_SPLITS,
            default=None,
            help="which prompts to sample (default: test with --eval-only, else train)",
        )
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
            try:
                checkpoint = Checkpoint.objects.get(pk=options["checkpoint"], project=project)
            except Checkpoint.DoesNotExist as exc:
                raise CommandError(
                    f"--checkpoint: no checkpoint #{options['checkpoint']} in this project"
                ) from exc
        else:
            checkpoint = services.checkpoint_champion(project=project)
        eval_only = options["eval_only"]
        split = options["split"] or ("test" if eval_only else "train")
        for name in ("prompts", "samples", "max_new_tokens"):
            if options[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be >= 1")
        if not selectors.split_prompts(project, split, 1):
            raise CommandError(f"--split: the project has no prompts in split {split!r}")
        progress = StepBar(self.stdout, "generate")
        try:
            with supervision.sigterm_stops_children():
                prompts, added = runner.checkpoint_generate(
                    checkpoint=checkpoint.pk,
                    eval_only=eval_only,
                    split=split,
                    prompts=options["prompts"],
                    samples=options["samples"],
                    temperature=options["temperature"],
                    max_new_tokens=options["max_new_tokens"],
                    seed=options["seed"],
                    priority=options["priority"],
                    on_event=progress.event,
                )
        except RuntimeError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            progress.close()
        kept = (
            f", {added.held_out_prompts} held-out prompts kept out of the queue"
            if added.held_out_prompts and not eval_only
            else ""
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"checkpoint #{checkpoint.pk}: {prompts} prompts ({split}), {added.responses} "
                f"responses, {added.comparisons} new comparisons"
                + (" (evaluation only)" if eval_only else kept)
            )
        )
