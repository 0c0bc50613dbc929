"""Helpers of the tests that start real servers (``manage.py serve``, ``runserver``): a free port,
a throwaway data directory, waiting for the port, logging in, counting a process tree's files."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The production settings on a SQLite database in ``data_dir`` (HTTPS off: plain HTTP)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "CONN_MAX_AGE")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        PAIRWISE_DATA_DIR=str(data_dir),
        SECRET_KEY="serve-test-" + "k" * 40,
        PAIRWISE_HTTPS="0",
        DEBUG="0",
        TASKS_BACKEND="django_tasks_db.DatabaseBackend",
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


SETUP = """
from labeling.services import user_create, project_create
from tests.factories import ComparisonFactory
admin, _ = user_create(username="boss", role="admin", password="serve-test-password-1")
project = project_create(name="served", created_by=admin, annotator_usernames=["boss"])
for _ in range(3):
    ComparisonFactory.create(project=project)
print(project.pk)
"""


def wait_http(url: str, process: subprocess.Popen[Any], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the server exited with {process.returncode}"
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def login(client: httpx.Client, username: str, password: str) -> None:
    page = client.get("/accounts/login/")
    assert page.status_code == 200, page.text[:500]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, "no CSRF token on the login page"
    done = client.post(
        "/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token[1]},
        headers={"Referer": str(client.base_url) + "/accounts/login/"},
    )
    assert done.status_code == 302, done.text[:500]


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    pids = [pid]
    for child in children(pid):
        pids += tree(child)
    return pids


def open_files(pids: list[int]) -> int:
    count = 0
    for pid in pids:
        try:
            count += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            continue
    return count


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split()[2] != "Z"
    except OSError:
        return False


def stop(process: subprocess.Popen[Any], timeout: float = 30) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.wait(timeout=timeout)


ANNOTATORS_SETUP = """
import json
from labeling.services import project_create
from rlhf.simulate import annotators_ensure
from tests.factories import ComparisonFactory
project = project_create(name="classroom", judgments_per_comparison=50)
for _ in range({comparisons}):
    ComparisonFactory.create(project=project)
tokens = [token for _, token in annotators_ensure(project, {annotators})]
print(json.dumps({{"project": project.pk, "tokens": tokens}}))
"""


def annotators_setup(env: dict[str, str], *, annotators: int, comparisons: int) -> Any:
    """A project whose comparisons every annotator may judge (k=50), and annotator tokens."""
    import json

    script = ANNOTATORS_SETUP.format(annotators=annotators, comparisons=comparisons)
    return json.loads(manage(env, "shell", "-c", script).strip().splitlines()[-1])


def annotate(base_url: str, project_id: int, token: str, judgments: int) -> list[str]:
    """One annotator over the API, a new connection per request (as ``simulate_annotators``):
    lease, judge, ``judgments`` times. Returns the errors seen (status and body)."""
    errors: list[str] = []
    headers = {"Authorization": f"Token {token}"}
    for _ in range(judgments):
        try:
            lease = httpx.post(
                f"{base_url}/api/v1/projects/{project_id}/queue/next/", headers=headers, timeout=60
            )
            if lease.status_code == 204:
                return errors
            if lease.status_code != 200:
                errors.append(f"queue/next {lease.status_code}: {lease.text[:200]}")
                continue
            comparison = lease.json()["comparison"]
            judged = httpx.post(
                f"{base_url}/api/v1/comparisons/{comparison}/judgments/",
                headers=headers,
                json={"choice": "a", "strength": 2},
                timeout=60,
            )
            if judged.status_code not in (200, 201):
                errors.append(f"judgments {judged.status_code}: {judged.text[:200]}")
        except httpx.HTTPError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    return errors
