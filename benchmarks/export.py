"""Export throughput and memory: 1,000,000 judgments exported to TRL JSONL and Parquet.

Builds a throwaway SQLite database in a temporary PAIRWISE_DATA_DIR, bulk-inserts 100k prompts,
400k responses, 500k comparisons and 1M judgments (two per comparison) straight into the tables,
then exports through the ``export_preferences`` command and through the API (Django test
client, the streamed body consumed chunk by chunk). Each export runs in its own child process,
so the peak RSS printed is that of the exporting process alone. Target: ≥ 100k judgments/s read
and exported, peak RSS < 300 MB.

Figures: wall time and judgments (and output rows) per second, CPU time of the exporting process
and judgments per CPU-second, and the 1-minute load average: on a shared machine other work
slows the wall clock, so the CPU figure is the one to compare between runs. Majority aggregation
(the default) writes one row per comparison (about half the judgments here, less ties and
both-bad); ``all`` writes a row per decisive judgment.

    .venv/bin/python benchmarks/export.py [--judgments 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_ROWS_PER_S = 100_000
TARGET_RSS_MB = 300


def _django(data_dir: str) -> None:
    os.environ["PAIRWISE_DATA_DIR"] = data_dir
    os.environ.pop("DATABASE_URL", None)
    os.environ["PAIRWISE_HTTPS"] = "0"
    os.environ["ALLOWED_HOSTS"] = "testserver,127.0.0.1,localhost"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def generate(judgments: int) -> int:
    """Fill the database: returns the project id."""
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from labeling.models import Project, text_hash

    call_command("migrate", verbosity=0)
    comparisons = judgments // 2
    prompts = comparisons // 5
    rng = random.Random(0)
    now = timezone.now()
    stamp = now.isoformat(sep=" ").replace("+00:00", "")
    with transaction.atomic():
        project = Project.objects.create(name="Benchmark export", judgments_per_comparison=2)
        with connection.cursor() as cursor:
            users = [f"annotator{i}" for i in range(20)]
            password = make_password(None)
            cursor.executemany(
                "INSERT INTO auth_user (username, password, is_superuser, is_staff, is_active, "
                "first_name, last_name, email, date_joined) VALUES (%s, %s, %s, 1, 1, '', '', '', %s)",
                [(name, password, name == "annotator0", stamp) for name in users],
            )
            cursor.execute("SELECT id FROM auth_user WHERE username LIKE 'annotator%%' ORDER BY id")
            user_ids = [row[0] for row in cursor.fetchall()]
            cursor.executemany(
                "INSERT INTO labeling_prompt (id, project_id, external_id, messages, metadata, split, "
                "source, created_at) VALUES (%s, %s, %s, %s, '{}', 'train', 'human', %s)",
                (  # type: ignore[arg-type]
                    (
                        p,
                        project.pk,
                        f"bench-{p}",
                        json.dumps(
                            [
                                {
                                    "role": "user",
                                    "content": f"Benchmark question number {p}: "
                                    "explain the idea in two sentences.",
                                }
                            ]
                        ),
                        stamp,
                    )
                    for p in range(1, prompts + 1)
                ),
            )
            models = [
                ("policy-a", "ckpt-1"),
                ("policy-b", "ckpt-2"),
                ("base", ""),
                ("policy-c", "ckpt-3"),
            ]

            def responses():
                for p in range(1, prompts + 1):
                    for r in range(4):
                        text = f"Answer {r} to question {p}. " + "Some filler words here. " * 6
                        model, checkpoint = models[r]
                        yield (
                            (p - 1) * 4 + r + 1,
                            p,
                            text,
                            text_hash(text),
                            model,
                            checkpoint,
                            stamp,
                        )

            cursor.executemany(
                "INSERT INTO labeling_response (id, prompt_id, text, text_hash, model_name, "
                "checkpoint_ref, generation_params, seed, external_id, created_at) VALUES "
                "(%s, %s, %s, %s, %s, %s, '{}', NULL, '', %s)",
                responses(),  # type: ignore[arg-type]
            )
            pairs = [(0, 1), (0, 2), (0, 3), (1, 2), (2, 3)]

            def comparisons_rows():
                c = 0
                for p in range(1, prompts + 1):
                    for first, second in pairs:
                        c += 1
                        yield (
                            c,
                            project.pk,
                            p,
                            (p - 1) * 4 + first + 1,
                            (p - 1) * 4 + second + 1,
                            f"round-{1 + c % 3}",
                            stamp,
                        )

            cursor.executemany(
                "INSERT INTO labeling_comparison (id, project_id, prompt_id, response_a_id, "
                "response_b_id, priority, judgment_count, status, batch, gold_answer, created_at) "
                "VALUES (%s, %s, %s, %s, %s, 0, 2, 'complete', %s, '', %s)",
                comparisons_rows(),
            )
            choices = ["a"] * 6 + ["b"] * 3 + ["tie", "both_bad"]

            def judgment_rows():
                j = 0
                for c in range(1, prompts * len(pairs) + 1):
                    first = rng.randrange(len(user_ids))
                    for offset in (0, 7):
                        j += 1
                        choice = rng.choice(choices)
                        strength = rng.randint(1, 4) if choice in ("a", "b") else None
                        yield (
                            j,
                            user_ids[(first + offset) % len(user_ids)],
                            c,
                            choice,
                            strength,
                            rng.choice("ab"),
                            rng.randint(800, 30000),
                            stamp,
                        )

            cursor.executemany(
                "INSERT INTO labeling_judgment (id, annotator_id, comparison_id, choice, strength, "
                "rationale, flags, shown_left, time_spent_ms, source, origin, created_at) VALUES "
                "(%s, %s, %s, %s, %s, '', '[]', %s, %s, 'human', '', %s)",
                judgment_rows(),
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return project.pk


def _peak_rss_mb() -> float:
    """This process's peak resident set size. Linux: VmHWM, since ru_maxrss carries the parent's
    high-water mark across fork and exec."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(mode: str, project_id: int, output: str, aggregation: str) -> None:
    """One export in this process; prints a JSON line with rows, seconds and peak RSS."""
    from django.core.management import call_command

    started = time.perf_counter()
    cpu_started = time.process_time()
    container = "parquet" if output.endswith(".parquet") else "jsonl"
    size = 0
    if mode == "command":
        call_command(
            "export_preferences",
            str(project_id),
            "--format",
            "trl",
            "--output",
            output,
            "--aggregation",
            aggregation,
            "--margin",
            stdout=open(os.devnull, "w"),  # noqa: SIM115
        )
        size = os.path.getsize(output)
        card = Path(f"{output}.card.md").read_text()
        rows = int(card.split("- Rows: ")[1].split(" ")[0])
    else:
        from django.contrib.auth import get_user_model
        from django.test import Client

        client = Client()
        client.force_login(get_user_model().objects.get(username="annotator0"))
        response = client.get(
            f"/api/v1/projects/{project_id}/export/",
            {"format": "trl", "container": container, "aggregation": aggregation, "margin": "1"},
        )
        assert response.status_code == 200, response.status_code
        assert response.streaming
        with open(output, "wb") as handle:
            for chunk in response.streaming_content:  # type: ignore[attr-defined]
                size += len(chunk)
                handle.write(chunk)
        if container == "jsonl":
            with open(output, "rb") as handle:
                rows = sum(1 for _ in handle)
        else:
            import pyarrow.parquet as pq

            rows = pq.ParquetFile(output).metadata.num_rows
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    peak_mb = _peak_rss_mb()
    print(
        json.dumps(
            {
                "rows": rows,
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "peak_rss_mb": peak_mb,
                "bytes": size,
                "load": os.getloadavg()[0],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judgments", type=int, default=1_000_000)
    parser.add_argument("--keep", help="use (and keep) this data directory")
    parser.add_argument(
        "--child",
        nargs=4,
        metavar=("MODE", "PROJECT", "OUTPUT", "AGGREGATION"),
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _django(args.data_dir)
        mode, project_id, output, aggregation = args.child
        child(mode, int(project_id), output, aggregation)
        return

    data_dir = args.keep or tempfile.mkdtemp(prefix="pairwise-bench-export-")
    try:
        _django(data_dir)
        marker = Path(data_dir) / "bench-project"
        started = time.perf_counter()
        if marker.exists():
            project_id = int(marker.read_text())
            print(f"reusing the database in {data_dir}")
        else:
            project_id = generate(args.judgments)
            marker.write_text(str(project_id))
            print(
                f"generated {args.judgments:,} judgments in {time.perf_counter() - started:.1f} s"
            )
        from django.db import connections

        connections.close_all()
        results: list[str] = []
        for aggregation in ("majority", "all"):
            for mode in ("command", "api"):
                for container in ("jsonl", "parquet"):
                    output = str(Path(data_dir) / f"out-{mode}-{aggregation}.{container}")
                    done = subprocess.run(
                        [
                            sys.executable,
                            __file__,
                            "--data-dir",
                            data_dir,
                            "--child",
                            mode,
                            str(project_id),
                            output,
                            aggregation,
                        ],
                        capture_output=True,
                        text=True,
                        check=False,
                    )
                    if done.returncode:
                        print(done.stdout, done.stderr, file=sys.stderr)
                        raise SystemExit(f"{mode} {container} failed")
                    figures = json.loads(done.stdout.strip().splitlines()[-1])
                    judgments_per_s = args.judgments / figures["seconds"]
                    rows_per_s = figures["rows"] / figures["seconds"]
                    per_cpu_s = args.judgments / figures["cpu_seconds"]
                    memory_ok = figures["peak_rss_mb"] < TARGET_RSS_MB
                    if judgments_per_s >= TARGET_ROWS_PER_S and memory_ok:
                        verdict = "ok"
                    elif per_cpu_s >= TARGET_ROWS_PER_S and memory_ok:
                        verdict = "ok on CPU time (wall slowed by other load)"
                    else:
                        verdict = "MISSED"
                    results.append(verdict)
                    print(
                        f"{mode:8} {container:8} {aggregation:9} {figures['rows']:>9,} rows  "
                        f"wall {figures['seconds']:5.1f} s  cpu {figures['cpu_seconds']:5.1f} s  "
                        f"{judgments_per_s:>9,.0f} judgments/s  {rows_per_s:>9,.0f} rows/s  "
                        f"({per_cpu_s:>9,.0f} judgments/cpu-s)  "
                        f"peak RSS {figures['peak_rss_mb']:6.1f} MB  "
                        f"{figures['bytes'] / 1e6:7.1f} MB  load {figures['load']:4.1f}  {verdict}"
                    )
        print(
            f"targets: ≥ {TARGET_ROWS_PER_S:,} judgments/s, peak RSS < {TARGET_RSS_MB} MB "
            f"(majority, the default, is the headline; 'all' writes a row per judgment): "
            f"{sum(v == 'ok' for v in results)} ok, "
            f"{sum(v.startswith('ok on') for v in results)} ok on CPU time, "
            f"{results.count('MISSED')} missed"
        )
    finally:
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
