"""Torch's thread pool is sized to the idle cores, or pinned by the environment."""

from __future__ import annotations

import os

import pytest
import torch

from rlhf.training import devices


def test_threads_pinned_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    monkeypatch.setenv(devices.THREADS_ENV, "1")
    try:
        assert devices.configure_threads() == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_threads_follow_the_idle_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    monkeypatch.delenv(devices.THREADS_ENV, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(devices, "usable_cores", lambda: 4)
    try:
        for idle, expected in ((0.1, 1), (1.6, 2), (3.9, 4), (7.5, 4), (None, 4)):
            monkeypatch.setattr(devices, "idle_cores", lambda idle=idle: idle)
            assert devices.configure_threads() == expected
    finally:
        torch.set_num_threads(before)
    sampled = devices.idle_cores(0.05)
    assert sampled is None or 0.0 <= sampled <= (os.cpu_count() or 1) + 1e-6
