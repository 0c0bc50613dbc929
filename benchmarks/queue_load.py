"""Queue load benchmark: C simulated annotators judging through the REST API under gunicorn.

For each database (the embedded SQLite default in a temporary PAIRWISE_DATA_DIR, and PostgreSQL
in a throwaway database this script creates and drops) it migrates, seeds one project per
concurrency level (k=2, thousands of comparisons, C annotator accounts with tokens), starts
gunicorn on loopback, and lets C threads (keep-alive http.client connections) lease and judge for
a bounded time: one ``queue/next`` to start, then every judgment is one ``POST …/judgments/``
with ``"next": true`` whose answer carries the next lease. Afterwards it checks the database: comparisons over k, duplicate
judgments, ``judgment_count`` out of step, and judgments the server stored but the clients did not
see (or the reverse).

    .venv/bin/python benchmarks/queue_load.py                      # both databases, C = 1, 10, 50
    .venv/bin/python benchmarks/queue_load.py --db postgres --concurrency 50 --seconds 15

Latency is per HTTP call as the client sees it; ``srv cpu`` / ``cli cpu`` are the CPU
milliseconds per call spent in gunicorn's workers / in this driver, ``db cpu`` the same for
PostgreSQL's server processes (0 on SQLite, which runs inside the workers), and ``load`` the 1-minute load
average when the level started (other work on the machine slows every figure).

Same-run baseline: before each level the same C clients hammer a trivial authenticated endpoint
(``GET /api/v1/projects/{id}/``: token auth, the membership and admin checks, a small JSON
body) for ``--baseline-seconds``; ``base/s`` is its requests per second, ``base cpu`` its server
CPU ms per call, and ``ratio`` = judgments/s ÷ base/s,
the share of a trivial request's throughput the hot path keeps. Compare ratios (and CPU per call)
between runs, not raw rates: the machine may be busy with other work.

``--think-ms`` takes a list (default ``0,150``). With zero think time the clients form a closed
loop, so queueing sets the latency: mean latency = C / throughput (Little's law; 50 clients at
250/s wait 200 ms on average). Latency targets are only meaningful with think time, a pause
between judgments like a person reading: quote p95 from the think-time rows.

Why over 500 lines: one self-contained script (seeding, server, load generator, database
checks, report) that runs from a plain checkout; its parts share the run's settings and are no
use apart.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_ADMIN_URL = os.environ.get("PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
K = 2


# --- the child modes: seed and check run inside Django, with the server's environment ----------


def _django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def seed(keys: list[str], comparisons: int) -> dict[str, Any]:
    """One project per run key (``C@think``), each with its own C annotators; ids and tokens."""
    _django()
    from django.contrib.auth.models import Group, User
    from django.db import transaction
    from rest_framework.authtoken.models import Token

    from labeling.models import Comparison, Project, Prompt, Response, text_hash
    from labeling.roles import ANNOTATOR_GROUP

    per_prompt = 5  # 5 responses: 10 pairs per prompt
    pairs = [(i, j) for i in range(per_prompt) for j in range(i + 1, per_prompt)]
    result: dict[str, Any] = {"levels": {}}
    group, _ = Group.objects.get_or_create(name=ANNOTATOR_GROUP)
    for key in keys:
        level = int(key.split("@")[0])
        with transaction.atomic():
            project = Project.objects.create(name=f"load {key}", judgments_per_comparison=K)
            users = User.objects.bulk_create(
                [User(username=f"load{key}-{i}", password="!") for i in range(level)]
            )
            group.user_set.add(*users)
            project.annotators.add(*users)
            tokens = Token.objects.bulk_create(
                [Token(user=u, key=Token.generate_key()) for u in users]
            )
            n_prompts = -(-comparisons // len(pairs))
            prompts = Prompt.objects.bulk_create(
                [
                    Prompt(
                        project=project,
                        external_id=f"q{p}",
                        messages=[{"role": "user", "content": f"Question {p}: explain item {p}."}],
                    )
                    for p in range(n_prompts)
                ]
            )
            texts = [
                (prompt, f"Answer {r} to {prompt.external_id}. " + "Some words. " * 20)
                for prompt in prompts
                for r in range(per_prompt)
            ]
            responses = Response.objects.bulk_create(
                [
                    Response(prompt=prompt, text=text, text_hash=text_hash(text), model_name="m")
                    for prompt, text in texts
                ]
            )
            made = []
            for p, prompt in enumerate(prompts):
                own = responses[p * per_prompt : (p + 1) * per_prompt]
                for i, j in pairs:
                    made.append(
                        Comparison(
                            project=project, prompt=prompt, response_a=own[i], response_b=own[j]
                        )
                    )
            Comparison.objects.bulk_create(made[:comparisons], batch_size=2000)
        result["levels"][key] = {
            "project": project.pk,
            "tokens": [t.key for t in tokens],
        }
    # Fresh tables have no planner statistics yet (autovacuum would gather them in a while).
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return result


def check(project_id: int) -> dict[str, int]:
    """What the database says after a run."""
    _django()
    from django.db.models import Count, F

    from labeling.models import Comparison, Judgment

    comparisons = Comparison.objects.filter(project_id=project_id).annotate(
        actual=Count("judgments")
    )
    duplicates = (
        Judgment.objects.filter(comparison__project_id=project_id)
        .values("annotator_id", "comparison_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .count()
    )
    return {
        "judgments_db": Judgment.objects.filter(comparison__project_id=project_id).count(),
        "over_k": comparisons.filter(actual__gt=K).count(),
        "count_mismatch": comparisons.exclude(judgment_count=F("actual")).count(),
        "duplicates": duplicates,
    }


# --- the driver --------------------------------------------------------------------------------


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    judgments: int = 0
    errors: int = 0
    exhausted: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Api:
    """One annotator's keep-alive HTTP/1.1 connection (the standard library's http.client).

    The load generator shares the machine's cores with the server it measures, so it should cost
    little: httpx spent about 1 ms of CPU per call here, this about a third of that.
    """

    def __init__(self, base_url: str, token: str) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self.address = (host, int(port))
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        self.conn: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, decoded JSON or None); raises OSError / http.client errors on failure."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection(*self.address, timeout=30)
            self.conn.connect()
            # The request goes out in one send; without Nagle it is not held back either.
            assert self.conn.sock is not None
            self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        payload = json.dumps(body).encode() if body is not None else None
        try:
            self.conn.request(method, path, body=payload, headers=self.headers)
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        return response.status, (json.loads(raw) if raw else None)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def annotator_loop(
    base_url: str, token: str, project_id: int, deadline: float, think_s: float, tally: Tally
) -> None:
    rng = random.Random(token)
    latencies: list[float] = []
    judgments = errors = 0
    api = Api(base_url, token)

    def call(method: str, url: str, body: Any = None) -> tuple[int, Any] | None:
        nonlocal errors
        started = time.perf_counter()
        try:
            status, data = api.call(method, url, body)
        except (OSError, http.client.HTTPException, ValueError):
            errors += 1
            return None
        latencies.append((time.perf_counter() - started) * 1000)
        if status >= 400:
            errors += 1
        return status, data

    def lease_from(answer: tuple[int, Any] | None) -> Any:
        return answer[1] if answer is not None and answer[0] == 200 else None

    lease = lease_from(call("POST", f"/api/v1/projects/{project_id}/queue/next/"))
    while lease is not None and time.perf_counter() < deadline:
        if think_s:
            time.sleep(think_s)
        choice = rng.choice(["a", "a", "b", "b", "tie", "both_bad"])
        body = {
            "choice": choice,
            "strength": rng.randint(1, 4) if choice in ("a", "b") else None,
            "time_spent_ms": rng.randint(2000, 20000),
            "next": True,
        }
        answer = call("POST", f"/api/v1/comparisons/{lease['comparison']}/judgments/", body)
        if answer is None or answer[0] not in (200, 201):
            # Start over from the queue (e.g. after a network error).
            lease = lease_from(call("POST", f"/api/v1/projects/{project_id}/queue/next/"))
            continue
        judgments += answer[0] == 201
        lease = answer[1].get("next")
    api.close()
    with tally.lock:
        tally.latencies_ms.extend(latencies)
        tally.judgments += judgments
        tally.errors += errors
        tally.exhausted += lease is None


def baseline_loop(
    base_url: str, token: str, project_id: int, deadline: float, tally: Tally
) -> None:
    """The same client, but calling a trivial authenticated endpoint back to back."""
    latencies: list[float] = []
    errors = 0
    api = Api(base_url, token)
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            status, _ = api.call("GET", f"/api/v1/projects/{project_id}/")
        except (OSError, http.client.HTTPException, ValueError):
            errors += 1
            continue
        latencies.append((time.perf_counter() - started) * 1000)
        errors += status != 200
    api.close()
    with tally.lock:
        tally.latencies_ms.extend(latencies)
        tally.errors += errors


def drive_baseline(base_url: str, level: dict[str, Any], seconds: float) -> dict[str, Any]:
    tally = Tally()
    started = time.perf_counter()
    deadline = started + seconds
    threads = [
        threading.Thread(
            target=baseline_loop, args=(base_url, token, level["project"], deadline, tally)
        )
        for token in level["tokens"]
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {
        "base_calls": len(tally.latencies_ms),
        "base_rate": len(tally.latencies_ms) / elapsed,
        "base_p50": percentile(tally.latencies_ms, 50),
        "base_errors": tally.errors,
    }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def drive(base_url: str, level: dict[str, Any], seconds: float, think_ms: float) -> dict[str, Any]:
    tally = Tally()
    started = time.perf_counter()
    deadline = started + seconds
    threads = [
        threading.Thread(
            target=annotator_loop,
            args=(base_url, token, level["project"], deadline, think_ms / 1000, tally),
        )
        for token in level["tokens"]
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {
        "judgments": tally.judgments,
        "elapsed": elapsed,
        "rate": tally.judgments / elapsed,
        "calls": len(tally.latencies_ms),
        "p50": percentile(tally.latencies_ms, 50),
        "p95": percentile(tally.latencies_ms, 95),
        "p99": percentile(tally.latencies_ms, 99),
        "mean": statistics.fmean(tally.latencies_ms) if tally.latencies_ms else float("nan"),
        "errors": tally.errors,
        "exhausted": tally.exhausted,
    }


# --- orchestration -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child(env: dict[str, str], *args: str) -> Any:
    out = subprocess.run(
        [PYTHON, __file__, *args], env=env, cwd=ROOT, check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def process_cpu_s(pid: int) -> float:
    """CPU seconds used so far by a process and its live children (gunicorn and its workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def postgres_cpu_s() -> dict[str, float]:
    """CPU seconds used so far by each PostgreSQL server process on this machine, by pid."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[str, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        if head.split("(", 1)[1].startswith("postgres"):
            fields = tail.split()
            found[stat.parent.name] = (int(fields[11]) + int(fields[12])) / tick
    return found


def postgres_cpu_since(before: dict[str, float]) -> float:
    """CPU seconds PostgreSQL used since ``before`` (backends that exited meanwhile are lost)."""
    return sum(now - before.get(pid, 0.0) for pid, now in postgres_cpu_s().items())


def pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def wait_until_up(base_url: str, server: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("gunicorn exited at start-up")
        try:
            if httpx.get(f"{base_url}/api/v1/projects/", timeout=2).status_code == 401:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not come up")


def run_backend(db: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    data_dir = tempfile.mkdtemp(prefix=f"pairwise-bench-{db}-")
    env = {
        **os.environ,
        "PAIRWISE_DATA_DIR": data_dir,
        "PAIRWISE_HTTPS": "0",
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECRET_KEY": "queue-load-benchmark-" + "x" * 40,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "ERROR",
    }
    env.pop("DATABASE_URL", None)
    database = f"pairwise_bench_{os.getpid()}"
    if db == "postgres":
        pg_admin(f'DROP DATABASE IF EXISTS "{database}"')
        pg_admin(f'CREATE DATABASE "{database}"')
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        env["DATABASE_URL"] = f"{base}/{database}"
        env["CONN_MAX_AGE"] = str(args.conn_max_age)
    Path(data_dir, "staticfiles").mkdir()
    server: subprocess.Popen[bytes] | None = None
    rows: list[dict[str, Any]] = []
    try:
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True
        )
        levels = [int(c) for c in args.concurrency.split(",")]
        thinks = [float(t) for t in args.think_ms.split(",")]
        keys = [f"{level}@{think:g}" for level in levels for think in thinks]
        seeded = child(env, "--seed", ",".join(keys), "--comparisons", str(args.comparisons))
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        command = [
            str(Path(PYTHON).with_name("gunicorn")),
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--worker-class",
            args.worker_class,
            "--threads",
            str(args.threads),
            "--backlog",
            "2048",
            "--log-level",
            "warning",
        ]
        server = subprocess.Popen(command, env=env, cwd=ROOT)
        wait_until_up(base_url, server)
        for level in levels:
            # The baseline runs on the first run's project (its annotators are members).
            server_cpu = process_cpu_s(server.pid)
            baseline = drive_baseline(
                base_url,
                seeded["levels"][keys[levels.index(level) * len(thinks)]],
                args.baseline_seconds,
            )
            baseline["base_cpu_ms"] = (
                (process_cpu_s(server.pid) - server_cpu) * 1000 / max(baseline.pop("base_calls"), 1)
            )
            for think in thinks:
                key = f"{level}@{think:g}"
                load = os.getloadavg()[0]
                server_cpu, client_cpu = process_cpu_s(server.pid), time.process_time()
                db_cpu = postgres_cpu_s() if db == "postgres" else {}
                figures = drive(base_url, seeded["levels"][key], args.seconds, think)
                calls = max(figures["calls"], 1)
                figures["server_cpu_ms"] = (process_cpu_s(server.pid) - server_cpu) * 1000 / calls
                figures["db_cpu_ms"] = (
                    postgres_cpu_since(db_cpu) * 1000 / calls if db == "postgres" else 0.0
                )
                figures["client_cpu_ms"] = (time.process_time() - client_cpu) * 1000 / calls
                figures["load"] = load
                figures["ratio"] = figures["rate"] / max(baseline["base_rate"], 1e-9)
                db_figures = child(env, "--check", str(seeded["levels"][key]["project"]))
                rows.append(
                    {"db": db, "c": level, "think": think, **baseline, **figures, **db_figures}
                )
                print(format_row(rows[-1]), flush=True)
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        if db == "postgres":
            pg_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        shutil.rmtree(data_dir, ignore_errors=True)
    return rows


HEADER = (
    f"{'db':<9}{'C':>4}{'think':>6}{'secs':>6}{'judged':>8}{'judg/s':>8}{'base/s':>8}"
    f"{'ratio':>7}{'calls':>7}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'errors':>7}{'over k':>7}"
    f"{'dups':>6}{'count≠':>7}{'lost':>6}{'srv cpu':>8}{'base cpu':>9}{'db cpu':>7}{'cli cpu':>8}{'load':>6}"
)


def format_row(row: dict[str, Any]) -> str:
    lost = row["judgments"] - row["judgments_db"] if "judgments_db" in row else 0
    return (
        f"{row['db']:<9}{row['c']:>4}{row['think']:>6g}{row['elapsed']:>6.1f}{row['judgments']:>8}"
        f"{row['rate']:>8.1f}{row['base_rate']:>8.1f}{row['ratio']:>7.2f}{row['calls']:>7}"
        f"{row['p50']:>8.1f}{row['p95']:>8.1f}{row['p99']:>8.1f}{row['errors']:>7}"
        f"{row['over_k']:>7}{row['duplicates']:>6}{row['count_mismatch']:>7}{lost:>6}"
        f"{row['server_cpu_ms']:>8.1f}{row['base_cpu_ms']:>9.1f}{row['db_cpu_ms']:>7.1f}{row['client_cpu_ms']:>8.1f}"
        f"{row['load']:>6.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--concurrency", default="1,10,50", help="comma-separated C levels")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument(
        "--think-ms",
        default="0,150",
        help="comma-separated pauses between judgments; each C level runs once per value",
    )
    parser.add_argument(
        "--baseline-seconds", type=float, default=5, help="trivial-endpoint run before each level"
    )
    parser.add_argument("--json", help="also write every row to this JSON file")
    parser.add_argument("--comparisons", type=int, default=8000, help="per level (k=2)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default="gthread")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--conn-max-age", type=int, default=60)
    parser.add_argument("--seed", help=argparse.SUPPRESS)
    parser.add_argument("--check", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.seed:
        print(json.dumps(seed(args.seed.split(","), args.comparisons)))
        return
    if args.check:
        print(json.dumps(check(args.check)))
        return

    print(
        f"gunicorn {args.workers} x {args.worker_class} (threads={args.threads}), "
        f"k={K}, {args.seconds:g} s per run (baseline {args.baseline_seconds:g} s), "
        f"think {args.think_ms} ms, {os.cpu_count()} CPUs"
    )
    print(
        "base/s: a trivial authenticated GET under the same C, same run; "
        "ratio = judg/s / base/s; think>0: p95 as a person would see it"
    )
    print(HEADER, flush=True)
    databases = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    rows: list[dict[str, Any]] = []
    for db in databases:
        rows += run_backend(db, args)
    print("\nsummary (one line per run, in order):")
    print(HEADER)
    for row in rows:
        print(format_row(row))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
