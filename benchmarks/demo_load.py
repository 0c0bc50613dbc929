"""A classroom against ``make demo``'s server: 50 annotators judging through the API for a minute.

Starts the demo's server as ``make demo`` does (``manage.py serve``, DEBUG=1, SQLite in a
temporary data directory, one job worker), seeds a project every annotator may judge (k=50) and
the annotator accounts, then runs ``--annotators`` threads for ``--seconds``, each a loop of
``queue/next`` then ``judgments/``, a new connection per request (as ``simulate_annotators``).
Every second it counts the open files of the server's process tree. Prints the request rate, the
errors (any status but 200/201/204, any refused or reset connection) and the open files at the
start, their maximum and at the end.

    .venv/bin/python benchmarks/demo_load.py                        # 50 annotators, 60 s
    .venv/bin/python benchmarks/demo_load.py --server runserver     # Django's runserver instead

Before the fix, runserver (CONN_MAX_AGE 60) kept every request's SQLite connection: 4 files a
request, "Too many open files" within a minute at ulimit 1024, then every connection refused.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.serving import (  # noqa: E402 - the repository root first
    annotate,
    annotators_setup,
    free_port,
    manage,
    open_files,
    server_env,
    stop,
    tree,
    wait_http,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--comparisons", type=int, default=400)
    parser.add_argument("--server", choices=["serve", "runserver"], default="serve")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pairwise-demo-load-") as tmp:
        env = server_env(Path(tmp), DEBUG="1")
        manage(env, "migrate", "--noinput", "-v", "0")
        seed = annotators_setup(env, annotators=args.annotators, comparisons=args.comparisons)
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        command = (
            ["manage.py", "serve", "--bind", f"127.0.0.1:{port}", "--no-collectstatic"]
            if args.server == "serve"
            else ["manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
        )
        server = subprocess.Popen(
            [sys.executable, *command],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_http(f"{base_url}/accounts/login/", server)
            time.sleep(2)  # workers booted
            fds = [open_files(tree(server.pid))]
            deadline = time.monotonic() + args.seconds
            requests = [0] * args.annotators
            errors: list[str] = []
            lock = threading.Lock()

            def annotator(index: int) -> None:
                token = seed["tokens"][index]
                while time.monotonic() < deadline:
                    seen = annotate(base_url, seed["project"], token, 1)
                    requests[index] += 2
                    if seen:
                        with lock:
                            errors.extend(seen)

            threads = [threading.Thread(target=annotator, args=(i,)) for i in range(len(requests))]
            started = time.monotonic()
            for thread in threads:
                thread.start()
            while any(thread.is_alive() for thread in threads):
                time.sleep(1)
                fds.append(open_files(tree(server.pid)))
            elapsed = time.monotonic() - started
        finally:
            stop(server)
    total = sum(requests)
    print(
        f"{args.server}: {args.annotators} annotators, {elapsed:.0f} s: {total} requests "
        f"({total / elapsed:.1f}/s, {total / 2 / elapsed:.1f} judgments/s), {len(errors)} errors"
    )
    print(f"open files of the server's processes: start {fds[0]}, max {max(fds)}, end {fds[-1]}")
    for error in errors[:5]:
        print("  ", error)


if __name__ == "__main__":
    main()
