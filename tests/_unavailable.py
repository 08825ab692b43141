"""What a test does when it needs something this machine lacks (a PostgreSQL server, Chromium).

It is skipped, with one line that says how to enable it -- so that ``make test`` passes on a
fresh machine with only python3 -- unless ``CI=true``: CI provides everything (``.ci/run``), so
there a missing piece fails the test instead of hiding it.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

__all__ = ["in_ci", "unavailable"]


def in_ci() -> bool:
    """Whether the tests run in CI (``CI=true``, as GitHub Actions and most CI services set)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def unavailable(reason: str) -> NoReturn:
    """Skip the current test because of ``reason`` (one line: what is missing and how to enable
    it); fail it instead under ``CI=true``."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: failing instead of skipping)", pytrace=False)
    pytest.skip(reason)
