"""The CLI, in child processes: JSON lines only on stdout, exit codes, SIGTERM cancellation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.rlhf.training.conftest import REPO_ROOT


def _cli(step: str, spec: dict[str, Any], tmp: Path, name: str) -> subprocess.Popen[str]:
    spec_path = tmp / f"{name}.json"
    spec_path.write_text(json.dumps(spec))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "rlhf.training", step, "--spec", str(spec_path), "--result", str(tmp / f"{name}.out")],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip


def _events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]  # every line must be JSON


def test_generate_cli_emits_json_lines_only(
    policy_dir: str, prompts_file: Path, tmp_path: Path
) -> None:
    spec = {"base_model": policy_dir, "prompts": str(prompts_file), "output": str(tmp_path / "out.jsonl"),
            "num_samples": 2, "seed": 7, "max_new_tokens": 8, "batch_size": 8}  # fmt: skip
    proc = _cli("generate", spec, tmp_path, "gen")
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    events = _events(stdout)
    assert {e["event"] for e in events} <= {"progress", "log", "result"}
    assert events[-1]["event"] == "result"
    assert events[-1]["result"]["num_samples"] == 32
    assert json.loads((tmp_path / "gen.out").read_text()) == events[-1]["result"]
    progress = [e for e in events if e["event"] == "progress"]
    assert [e["step"] for e in progress] == [8, 16]
    assert set(progress[0]) == {"event", "step", "total", "loss", "metrics", "eta_s"}
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(rows) == 32
    assert set(rows[0]) == {"prompt_id", "sample_index", "text", "seed", "params"}
    assert rows[0]["seed"] == 7 and rows[0]["params"]["temperature"] == 1.0


def test_spec_error_exits_2_with_a_clear_message(tmp_path: Path, policy_dir: str) -> None:
    spec = {
        "base_model": policy_dir,
        "data": str(tmp_path / "missing.jsonl"),
        "output_dir": str(tmp_path / "o"),
    }
    proc = _cli("dpo", spec, tmp_path, "bad")
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2
    (event,) = _events(stdout)
    assert (
        event["event"] == "error"
        and "'data'" in event["message"]
        and "missing.jsonl" in event["message"]
    )


def test_sigterm_stops_cleanly_and_leaves_no_checkpoint(
    policy_dir: str, preferences_file: Path, tmp_path: Path
) -> None:
    output_dir = tmp_path / "ckpt"
    spec = {"base_model": policy_dir, "data": str(preferences_file), "output_dir": str(output_dir),
            "max_steps": 500, "batch_size": 4, "eval_fraction": 0.0}  # fmt: skip
    proc = _cli("dpo", spec, tmp_path, "cancel")
    assert proc.stdout is not None
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        seen.append(json.loads(line))
        if seen[-1]["event"] == "progress" and seen[-1]["step"] >= 1:
            proc.send_signal(signal.SIGTERM)
            break
        assert time.monotonic() < deadline
    rest, _ = proc.communicate(timeout=60)
    events = seen + _events(rest)
    assert proc.returncode == 143
    assert events[-1] == {"event": "cancelled"}
    assert max(e["step"] for e in events if e["event"] == "progress") < 500
    assert not output_dir.exists()
    assert [
        p.name for p in tmp_path.iterdir() if p.is_dir()
    ] == []  # no temp checkpoint left behind
