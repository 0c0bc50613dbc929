"""``manage.py run_loop PROJECT --rounds R``: the whole loop, unattended, with simulated annotators.

Per round: simulated annotators judge the queue (in-process, or over HTTP with ``--url``), the
previous round's checkpoint is promoted when it passes the promotion gate (``--promote auto``: the
95% lower bound of its human win-rate vs the champion above PAIRWISE_PROMOTION_MIN_LOWER_BOUND;
``always`` forces it, recorded on the checkpoint), a round runs in this process (reward → policy → evaluate → generate), and the new
policy is scored by the annotators' rule against the base model on held-out prompts. With
``--decide N`` the annotators then judge N comparisons of the last round's batch and the gate
decides its candidate too (else it stays undecided and the loop delivers an earlier one). Prints labels
used, reward-model held-out accuracy, win-rates and the wall time of every step. A missing
project is created as a demo project. Stale runs are reaped before each round.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling.models import Project
from labeling.safeinput import UnsafeInput, json_parse
from labeling.services import LabelingError
from rlhf import runs, selectors, supervision
from rlhf.demo import demo_project_create
from rlhf.loop import (
    TABLE_HEADER,
    LoopSettings,
    RoundFigures,
    champion_line,
    loop_run,
    table_row,
)
from rlhf.methods import METHODS
from rlhf.training.rules import RULES


class Command(BaseCommand):
    help = "Run R tuning rounds end to end with simulated annotators and print the figures."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="project id or name (created as a demo if missing)")
        parser.add_argument("--rounds", type=int, default=3)
        parser.add_argument("--method", choices=METHODS, default="dpo")
        parser.add_argument("--config", default="", help="JSON overrides of the round config")
        parser.add_argument("--annotators", type=int, default=3)
        parser.add_argument("--rule", choices=sorted(RULES), default="correct_polite")
        parser.add_argument("--noise", type=float, default=0.2)
        parser.add_argument("--limit", type=int, default=None, help="judgments per round")
        parser.add_argument("--url", default="", help="judge over the HTTP API at this URL")
        parser.add_argument(
            "--promote",
            choices=("auto", "always", "never"),
            default="auto",
            help="auto: the promotion gate decides; always: forced past it (recorded); never",
        )
        parser.add_argument("--eval-prompts", type=int, default=100)
        parser.add_argument(
            "--eval-samples",
            type=int,
            default=8,
            help="sampled answers per held-out prompt and side for the rule win-rate (1: greedy)",
        )
        parser.add_argument(
            "--decide",
            type=int,
            default=0,
            help="after the last round: this many judgments of its batch, then the promotion "
            "gate decides its candidate (0: it stays undecided)",
        )
        parser.add_argument("--prompts", type=int, default=60, help="demo: training prompts")
        parser.add_argument("--held-out", type=int, default=20, help="demo: held-out prompts")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["decide"] < 0:
            raise CommandError("--decide must be >= 0 (judgments after the last round)")
        try:
            project = selectors.project_by_ref(options["project"])
        except Project.DoesNotExist:
            project = demo_project_create(
                name=options["project"],
                train_prompts=options["prompts"],
                held_out_prompts=options["held_out"],
                seed=options["seed"],
                admin="",
                annotators=(),
            ).project
            self.stdout.write(f"created demo project {project.name!r} (id {project.pk})")
        try:
            config = json_parse(options["config"]) if options["config"] else {}
        except UnsafeInput as exc:
            raise CommandError(f"--config {exc}") from exc
        except json.JSONDecodeError as exc:
            raise CommandError(f"--config is not valid JSON: {exc}") from exc
        opts = LoopSettings(
            rounds=options["rounds"],
            method=options["method"],
            config=config,
            annotators=options["annotators"],
            rule=options["rule"],
            noise=options["noise"],
            limit=options["limit"],
            url=options["url"],
            promote=options["promote"],
            eval_prompts=options["eval_prompts"],
            eval_samples=options["eval_samples"],
            decide=options["decide"],
            seed=options["seed"],
        )
        runs.runs_reap()
        self.stdout.write(TABLE_HEADER)

        def report(row: RoundFigures) -> None:
            self.stdout.write(table_row(row))
            self.stdout.flush()

        try:
            with supervision.sigterm_stops_children():
                figures = loop_run(project, opts, on_round=report)
        except LabelingError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            "RM acc: reward model held-out accuracy · RM win: reward-model win-rate vs parent · "
            "rule win vs base: the rule's verdict, new policy vs base, held-out prompts · "
            "human prev: previous checkpoint vs champion (* promoted) · wall seconds per step; "
            "round = reward + policy + evaluate + generate, CPU = their CPU seconds"
        )
        self.stdout.write(champion_line(figures))
        if any(f.status != "succeeded" for f in figures):
            raise CommandError("a round did not succeed")
