"""Fixtures of the review tests: the interchange tests' ``judge`` (judge comparisons directly)."""

from tests.labeling.interchange.conftest import judge

__all__ = ["judge"]
