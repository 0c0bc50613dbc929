"""How long a queue claim waits behind a long import on the embedded SQLite database.

An import is atomic (a bad row changes nothing), so it writes in one transaction and holds the
SQLite write lock for its whole write phase (the rows are read and checked before it). A claim
that comes meanwhile waits for the lock: at most the database ``timeout`` (20 s), then it gets
"database is locked" (the API's 503). This script migrates a throwaway SQLite database, imports
``--prompts`` prompts, then imports ``--per-prompt`` responses to each (every pair becomes a
comparison) through the import service while another thread claims every ``--every-ms``, and
prints the import's phases and the claims' latencies (max = the wait behind the import).

    .venv/bin/python benchmarks/import_vs_claim.py --prompts 2000 --per-prompt 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--per-prompt", type=int, default=4)
    parser.add_argument("--every-ms", type=int, default=20)
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="pairwise-import-vs-claim-")
    os.environ.update(PAIRWISE_DATA_DIR=data_dir, PAIRWISE_HTTPS="0")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import OperationalError, connection

    from labeling import services
    from labeling.interchange.imports import prompts_import, responses_import

    call_command("migrate", verbosity=0)
    annotator = get_user_model().objects.create(username="claimer")
    project = services.project_create(name="bench", judgments_per_comparison=1)
    prompts = [(i, {"id": f"p{i}", "prompt": f"Question {i}?"}) for i in range(args.prompts)]
    started = time.perf_counter()
    prompts_import(project=project, rows=prompts)
    prompts_s = time.perf_counter() - started
    # A small queue to claim from while the import runs.
    warm = [(0, {"prompt_id": "p0", "responses": ["first", "second"]})]
    responses_import(project=project, rows=warm)
    rows = [
        (
            i,
            {
                "prompt_id": f"p{i}",
                "responses": [f"Answer {j} to {i}." for j in range(args.per_prompt)],
            },
        )
        for i in range(1, args.prompts)
    ]

    latencies: list[float] = []
    errors: list[str] = []
    importing = threading.Event()
    done = threading.Event()

    def claimer() -> None:
        try:
            while not done.is_set():
                began = time.perf_counter()
                try:
                    services.assignment_claim_next(annotator=annotator, project=project)
                except OperationalError as error:
                    errors.append(str(error))
                if importing.is_set():
                    latencies.append(time.perf_counter() - began)
                time.sleep(args.every_ms / 1000)
        finally:
            connection.close()

    thread = threading.Thread(target=claimer)
    thread.start()
    time.sleep(0.2)
    importing.set()
    started = time.perf_counter()
    result = responses_import(project=project, rows=rows)
    import_s = time.perf_counter() - started
    time.sleep(0.2)
    done.set()
    thread.join()

    print(
        f"prompts import: {args.prompts} prompts in {prompts_s:.2f} s; "
        f"responses import: {result.responses_created} responses, "
        f"{result.comparisons_created} comparisons in {import_s:.2f} s"
    )
    print(
        f"claims during the import: {len(latencies)}, max {max(latencies):.2f} s, "
        f"median {statistics.median(latencies) * 1000:.1f} ms, errors {len(errors)}"
    )
    for error in errors[:3]:
        print(f"  {error}")


if __name__ == "__main__":
    main()
