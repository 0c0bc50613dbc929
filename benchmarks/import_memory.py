"""Peak memory of ``manage.py import_preferences`` against file size: the command streams.

For each size (default 10 MB and 100 MB) it writes a TRL preference file (JSON Lines, ~1 KB a
row, two rows per prompt), imports it into a fresh SQLite database in a temporary data directory
in a process of its own, and prints the rows, the time, the process's peak resident memory
(``ru_maxrss``) and that peak over a bare ``manage.py`` process's (Django loaded, nothing done).
The last line is the ratio of the largest file's figures to the smallest's: flat memory means a
ratio near 1 for the peak while the size ratio is 10.

    .venv/bin/python benchmarks/import_memory.py                 # 10 MB vs 100 MB
    .venv/bin/python benchmarks/import_memory.py --sizes 5,50

``PAIRWISE_MAX_UPLOAD_MB`` is left at its default (50): the 100 MB file is over it, which only
the web upload obeys.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MEASURE = """
import resource, time
from django.core.management import call_command
from labeling.services import project_create
project = project_create(name="bench")
started = time.monotonic()
call_command("import_preferences", str(project.pk), {path!r}, "--format", "trl", stdout=open("/dev/null", "w"))
print(time.monotonic() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

BARE = "import resource; print(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"


def write_file(path: Path, megabytes: int) -> int:
    target = megabytes * 1024 * 1024
    padding = "lorem ipsum dolor sit amet " * 36  # ~1 KB a row
    written = rows = 0
    with path.open("w") as handle:
        while written < target:
            prompt = rows // 2
            line = json.dumps(
                {
                    "id": f"q{prompt}",
                    "prompt": f"Question {prompt}: what is {prompt} times two?",
                    "chosen": f"It is {prompt * 2}. {padding} ({rows})",
                    "rejected": f"Perhaps {prompt + 1}? ({rows})",
                }
            )
            handle.write(line + "\n")
            written += len(line) + 1
            rows += 1
    return rows


def run(env: dict[str, str], script: str) -> tuple[float, float]:
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    seconds, peak_kb = done.stdout.split()[-2:]
    return float(seconds), int(peak_kb) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100", help="file sizes in MB, comma-separated")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    results = []
    with tempfile.TemporaryDirectory(prefix="pairwise-import-memory-") as tmp:
        print(f"{'file MB':>8} {'rows':>8} {'seconds':>8} {'peak MB':>8} {'over bare':>9}")
        for size in sizes:
            data = Path(tmp) / f"data-{size}"
            data.mkdir()
            env = {
                **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
                "PAIRWISE_DATA_DIR": str(data),
                "DJANGO_SETTINGS_MODULE": "config.settings",
            }
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True
            )
            path = Path(tmp) / f"prefs-{size}.jsonl"
            rows = write_file(path, size)
            _, bare = run(env, BARE)
            seconds, peak = run(env, MEASURE.format(path=str(path)))
            results.append((size, rows, seconds, peak, peak - bare))
            print(f"{size:>8} {rows:>8} {seconds:>8.1f} {peak:>8.0f} {peak - bare:>9.0f}")
            path.unlink()
    (small, *_), (large, *_) = results[0], results[-1]
    print(
        f"ratio {large}/{small} MB: size x{large / small:.0f}, peak memory "
        f"x{results[-1][3] / results[0][3]:.2f}, over bare x{results[-1][4] / max(results[0][4], 1):.2f}, "
        f"time x{results[-1][2] / results[0][2]:.1f}"
    )


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"({time.monotonic() - started:.0f} s in all)")
