"""``manage.py launch_round PROJECT [--method NAME] [--config JSON] [--wait | --inline]``.

Launches a tuning round (the same service as the page and the API, which refuses an unknown
method or a bad config value by name). The methods are ``rlhf.methods.METHODS``. ``--wait`` follows it with
a progress bar while a worker (``db_worker``) runs it; ``--inline`` runs its steps in this process
(no worker needed). GRPO and RLOO are the PPO-family online RL methods: TRL removed PPOTrainer.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling.models import Project
from labeling.safeinput import UnsafeInput, json_parse
from labeling.services import LabelingError
from rlhf import runner, selectors, services, supervision
from rlhf.methods import DEFAULT_METHOD, METHODS, PPO_NOTE
from rlhf.models import Round, RoundStatus
from rlhf.terminal import RoundWatcher, StepBar


def follow(stdout: Any, round_id: int, *, inline: bool, poll_s: float = 0.5) -> Round:
    """Draw the round's progress until it finishes; with ``inline`` run its steps here."""
    watcher = RoundWatcher(stdout, round_id)
    if inline:
        bars: dict[str, StepBar] = {}

        def listener(phase: str, event: dict[str, Any]) -> None:
            bars.setdefault(phase, StepBar(stdout, phase)).event(event)

        round_ = runner.round_drive(round_id, listener=listener)
        for bar in bars.values():
            bar.close()
        watcher.tick()
        return round_
    while True:
        watcher.tick()
        round_ = Round.objects.get(pk=round_id)
        if not round_.is_active:
            watcher.tick()
            return round_
        time.sleep(poll_s)


class Command(BaseCommand):
    help = "Launch a tuning round. " + PPO_NOTE

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="project id or name")
        parser.add_argument(
            "--method",
            default=DEFAULT_METHOD,
            help=f"one of {', '.join(METHODS)} (default {DEFAULT_METHOD})",
        )
        parser.add_argument(
            "--config", default="", help="JSON overrides of the method's defaults, or @file.json"
        )
        parser.add_argument(
            "--promote-pending",
            action="store_true",
            help="first put the latest round's candidate through the promotion gate (the round "
            "starts from it if the gate passes it)",
        )
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--wait", action="store_true", help="follow the round run by a worker")
        mode.add_argument("--inline", action="store_true", help="run the round in this process")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            project = selectors.project_by_ref(options["project"])
        except Project.DoesNotExist as exc:
            raise CommandError(f"no project {options['project']!r}") from exc
        raw = options["config"]
        if raw.startswith("@"):
            raw = Path(raw[1:]).read_text(encoding="utf-8")
        try:
            config = json_parse(raw) if raw else {}
        except UnsafeInput as exc:
            raise CommandError(f"--config {exc}") from exc
        except json.JSONDecodeError as exc:
            raise CommandError(f"--config is not valid JSON: {exc}") from exc
        try:
            round_ = services.round_launch(
                project=project,
                method=options["method"],
                config=config,
                promote_pending=options["promote_pending"],
            )
        except LabelingError as exc:
            raise CommandError(f"{exc.field}: {exc.message}" if exc.field else exc.message) from exc
        if round_.launch_decision:
            self.stdout.write(selectors.launch_decision_line(round_.launch_decision))
        self.stdout.write(
            f"round {round_.number} (id {round_.pk}) of {project.name!r}: {round_.method}, "
            f"{round_.snapshot_size} preferences, from checkpoint #{round_.parent_checkpoint_id}"
        )
        if not (options["wait"] or options["inline"]):
            self.stdout.write("queued: a worker (manage.py db_worker) runs it")
            return
        with supervision.sigterm_stops_children():
            round_ = follow(self.stdout, round_.pk, inline=options["inline"])
        if round_.status != RoundStatus.SUCCEEDED:
            raise CommandError(f"round {round_.number} {round_.status}: {round_.error}")
        self.stdout.write(
            self.style.SUCCESS(
                f"round {round_.number} succeeded: checkpoint #{round_.checkpoint_id}; "
                f"{selectors.round_queue_figures(round_)['comparisons']} new comparisons queued"
            )
        )
