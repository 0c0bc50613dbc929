"""Reliability-weighted export time: the API export with ``annotator_weights`` none, dawid_skene and
mace, on the synthetic project of ``benchmarks/export.py`` (two judgments per comparison, 20
annotators), the reliability fit alone, and the stats figures cold and with the fit cached.

Each export runs in its own child process (a cold crowd-kit import included, as a fresh web
worker would pay it) and prints wall and CPU seconds and peak RSS; the fit alone is timed on the
judgments the export reads. Reliability is estimated once per export, before the rows stream.

    .venv/bin/python benchmarks/reliability.py [--judgments 50000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import export as base


def child(project_id: int, weights: str) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    started, cpu_started = time.perf_counter(), time.process_time()
    client = Client()
    client.force_login(get_user_model().objects.get(username="annotator0"))
    response = client.get(
        f"/api/v1/projects/{project_id}/export/",
        {"format": "trl", "weight": "1", "annotator_weights": weights},
    )
    assert response.status_code == 200, response.status_code
    rows = sum(chunk.count(b"\n") for chunk in response.streaming_content)  # type: ignore[attr-defined]
    print(
        json.dumps(
            {
                "rows": rows,
                "seconds": time.perf_counter() - started,
                "cpu_seconds": time.process_time() - cpu_started,
                "peak_rss_mb": base._peak_rss_mb(),
            }
        )
    )


def fit_only(project_id: int) -> None:
    from labeling import reliability
    from labeling.models import Judgment

    votes = list(
        Judgment.objects.filter(comparison__project_id=project_id)
        .order_by("comparison_id", "id")
        .values_list("comparison_id", "annotator__username", "choice")
    )
    reliability.scores(votes[:100], "dawid_skene")  # the import, out of the timing
    for model in reliability.MODELS:
        started, cpu_started = time.perf_counter(), time.process_time()
        reliability.annotator_weights(votes, model)
        print(
            f"fit {model:12} {len(votes):>9,} judgments  wall {time.perf_counter() - started:6.2f} s"
            f"  cpu {time.process_time() - cpu_started:6.2f} s"
        )


def stats_page(project_id: int) -> None:
    """The stats API's figures, cold (reliability fitted) and warm (the fit from the cache)."""
    from django.core.cache import cache

    from labeling import selectors
    from labeling.models import Project

    project = Project.objects.get(pk=project_id)
    cache.clear()
    timings = []
    for _ in range(2):
        started = time.perf_counter()
        selectors.project_stats(project=project)
        timings.append(time.perf_counter() - started)
    print(
        f"stats cold {timings[0]:6.2f} s  warm (fit cached) {timings[1]:6.2f} s  "
        f"warm/cold {timings[1] / timings[0]:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judgments", type=int, default=50_000)
    parser.add_argument("--keep", help="use (and keep) this data directory")
    parser.add_argument("--child", nargs=2, metavar=("PROJECT", "WEIGHTS"), help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        base._django(args.data_dir)
        child(int(args.child[0]), args.child[1])
        return
    data_dir = args.keep or tempfile.mkdtemp(prefix="pairwise-bench-reliability-")
    try:
        base._django(data_dir)
        marker = Path(data_dir) / "bench-project"
        if marker.exists():
            project_id = int(marker.read_text())
        else:
            project_id = base.generate(args.judgments)
            marker.write_text(str(project_id))
        fit_only(project_id)
        stats_page(project_id)
        from django.db import connections

        connections.close_all()
        for weights in ("none", "dawid_skene", "mace"):
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--data-dir",
                    data_dir,
                    "--child",
                    str(project_id),
                    weights,
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode:
                print(done.stdout, done.stderr, file=sys.stderr)
                raise SystemExit(f"export with annotator_weights={weights} failed")
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            print(
                f"export annotator_weights={weights:12} {figures['rows']:>8,} rows  "
                f"wall {figures['seconds']:6.2f} s  cpu {figures['cpu_seconds']:6.2f} s  "
                f"peak RSS {figures['peak_rss_mb']:6.1f} MB"
            )
    finally:
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
