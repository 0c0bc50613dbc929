"""``manage.py bootstrap_models``: build the built-in tiny policy and reward backbone, offline.

Runs the training engine's ``bootstrap`` step as a child process (a no-op when the models on disk
match the recipe) with a progress bar, then registers the built-in model spec.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rlhf import runner, services, supervision
from rlhf.terminal import StepBar


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
        parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
        parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))

    def handle(self, *args: Any, **options: Any) -> None:
        data_dir = Path(settings.PAIRWISE_DATA_DIR)
        spec: dict[str, Any] = {
            "data_dir": str(data_dir),
            "reward_backbone": options["reward_backbone"],
            "force": options["force"],
            "device": options["device"],
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
        services.model_spec_default()
        state = "built" if result.get("rebuilt") else "up to date"
        self.stdout.write(
            self.style.SUCCESS(
                f"built-in models {state}: {result['policy_dir']} "
                f"({result.get('num_parameters', '?')} parameters), {result['reward_backbone_dir']}"
            )
        )
