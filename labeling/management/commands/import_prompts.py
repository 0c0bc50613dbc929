"""``import_prompts PROJECT FILE``: prompts from JSON Lines or CSV (see labeling.interchange)."""

from __future__ import annotations

from typing import Any

from labeling.interchange.commands import ImportCommand
from labeling.interchange.imports import prompts_import


class Command(ImportCommand):
    help = (
        "Import prompts: one per line, a string or {id, prompt (string or [{role, content}]), "
        "metadata, split}. Duplicate ids are skipped and reported; a bad line imports nothing."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        self.run_import(options, prompts_import)
