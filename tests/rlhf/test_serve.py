"""``manage.py serve``, the documented start, with the production settings (DEBUG=0, SQLite in a
temporary directory, a free port): it collects the static files and migrates, then gunicorn
serves the pages (200s, hashed static files) and a job worker runs; SIGTERM stops them all.

Real processes, as an operator would run them.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.serving import (
    ROOT,
    SETUP,
    alive,
    children,
    free_port,
    login,
    manage,
    server_env,
    stop,
    tree,
    wait_http,
)

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def _serve(env: dict[str, str], port: int, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "serve",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "2",
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_serve_with_debug_off_serves_the_pages_and_stops_cleanly(tmp_path: Path) -> None:
    env = server_env(tmp_path)
    manage(env, "migrate", "--noinput", "-v", "0")
    project_id = int(manage(env, "shell", "-c", SETUP).split()[-1])
    assert not (tmp_path / "staticfiles").exists()  # nothing collected yet: serve must do it

    port = free_port()
    server = _serve(env, port)
    try:
        wait_http(f"http://127.0.0.1:{port}/accounts/login/", server)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            login_page = client.get("/accounts/login/")
            assert login_page.status_code == 200
            # DEBUG=0: the manifest storage names hashed, collected files, served by whitenoise.
            stylesheet = re.search(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', login_page.text)
            assert stylesheet, login_page.text[:2000]
            assert client.get(stylesheet[1]).status_code == 200
            login(client, "boss", "serve-test-password-1")
            for path in (
                "/projects/",
                f"/projects/{project_id}/",
                f"/projects/{project_id}/label/",
                f"/projects/{project_id}/rounds/",
                f"/api/v1/projects/{project_id}/",
            ):
                page = client.get(path)
                assert page.status_code == 200, (path, page.text[:1000])
        web_and_workers = children(server.pid)
        assert len(web_and_workers) == 2  # gunicorn's master and one job worker
        assert any(
            b"db_worker" in Path(f"/proc/{pid}/cmdline").read_bytes() for pid in web_and_workers
        )
        processes = [pid for pid in tree(server.pid) if pid != server.pid]
        assert len(processes) >= 4  # gunicorn master + 2 workers + the job worker
    finally:
        status = stop(server)
    output = server.stdout.read().decode() if server.stdout else ""
    assert status == 0, output[-3000:]
    assert "gunicorn 2 workers x 2 threads" in output
    time.sleep(0.5)
    assert not [pid for pid in processes if alive(pid)], "children outlived serve"


def test_serve_exits_with_its_parent_and_takes_its_children(tmp_path: Path) -> None:
    """``make demo`` killed by its PID: serve --exit-with-parent stops everything it started."""
    env = server_env(tmp_path, DEBUG="1")
    port = free_port()
    parent = subprocess.Popen(
        [
            "bash",
            "-c",
            f"{sys.executable} manage.py serve --bind 127.0.0.1:{port} --workers 1 --threads 2 "
            "--exit-with-parent --no-collectstatic & wait",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            serve = children(parent.pid)
            if serve and len(tree(serve[0])) >= 4:
                break
            time.sleep(0.2)
        wait_http(f"http://127.0.0.1:{port}/accounts/login/", parent)
        processes = tree(serve[0])
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(alive(pid) for pid in processes):
        time.sleep(0.2)
    assert not [pid for pid in processes if alive(pid)], "serve or its children outlived the parent"
