"""The suite as pytest-xdist sees it: every test reachable by a node id of its own."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_every_collected_test_has_a_node_id_of_its_own(request: pytest.FixtureRequest) -> None:
    """A repeated id is run once by ``--dist loadfile``, which keys tests by id (tests/conftest)."""
    counts = Counter(item.nodeid for item in request.session.items)
    assert not [nodeid for nodeid, count in counts.items() if count > 1]


def test_the_schema_tests_are_one_id_per_api_operation() -> None:
    """Schemathesis's items, one per operation, all had the function's id under pytest 9."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-p", "no:xdist",
         "tests/test_api_conformance.py"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    ids = [line for line in done.stdout.splitlines() if "::" in line]
    assert len(ids) > 20 and len(set(ids)) == len(ids)
    assert (
        "tests/test_api_conformance.py::test_api_conforms_to_its_schema[GET /api/v1/projects/]"
        in ids
    )
