"""What gold costs a claim: submit-with-next latency at ``gold_rate`` 0 and 0.1.

With gold on, every claim runs one query more (``labeling.queue._GOLD_CANDIDATE_SQL``): the
annotator's place in the gold schedule (their human judgments in the project since their last gold
one, and their gold judgments) and the next gold comparison. The schedule part reads every
judgment of the annotator in the project, so this script measures it after ``--history``
judgments, on a throwaway SQLite database (or ``DATABASE_URL``).

    .venv/bin/python benchmarks/gold_claim.py --history 3000 --measure 400

Measured (SQLite, 2 shared cores, after 3 000 judgments): median 0.61 ms at rate 0, 1.35 ms at
0.1 (before the schedule read only the latest 2m - 1 judgments: 27 ms, growing with history).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=5000)
    parser.add_argument("--measure", type=int, default=500)
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="pairwise-gold-claim-")
    os.environ.update(PAIRWISE_DATA_DIR=data_dir, PAIRWISE_HTTPS="0")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from labeling import services
    from labeling.models import Comparison, Prompt, Response, text_hash

    call_command("migrate", verbosity=0)
    total = args.history + 2 * args.measure + 10
    for rate in (0.0, 0.1):
        annotator = get_user_model().objects.create(username=f"bench-{rate}")
        project = services.project_create(name=f"gold bench {rate}", gold_rate=rate)
        prompts = Prompt.objects.bulk_create(
            Prompt(project=project, messages=[{"role": "user", "content": f"Q{i}?"}])
            for i in range(total)
        )
        responses = Response.objects.bulk_create(
            Response(prompt=p, text=f"{side} {p.pk}", text_hash=text_hash(f"{side} {p.pk}"))
            for p in prompts
            for side in ("a", "b")
        )
        Comparison.objects.bulk_create(
            Comparison(
                project=project,
                prompt=prompts[i],
                response_a=responses[2 * i],
                response_b=responses[2 * i + 1],
                gold_answer="a" if rate and i % 10 == 0 else "",
            )
            for i in range(total)
        )
        lease = services.assignment_claim_next(annotator=annotator, project=project)
        timings = []
        for index in range(args.history + args.measure):
            assert lease is not None
            started = time.perf_counter()
            _, lease = services.judgment_submit_and_claim_next(
                annotator=annotator,
                comparison=lease.comparison,
                project=project,
                choice="a",
                strength=2,
            )
            if index >= args.history:
                timings.append((time.perf_counter() - started) * 1000)
        golds = Comparison.objects.filter(project=project, judgments__isnull=False).exclude(
            gold_answer=""
        )
        print(
            f"gold_rate {rate}: submit+next after {args.history} judgments: median "
            f"{statistics.median(timings):.2f} ms, p95 "
            f"{sorted(timings)[int(len(timings) * 0.95)]:.2f} ms; gold judged {golds.count()}"
        )


if __name__ == "__main__":
    main()
