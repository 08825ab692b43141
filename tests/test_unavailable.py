"""Tests that need PostgreSQL or Chromium skip with one line saying how to enable them when the
machine lacks it, and fail instead under ``CI=true``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

POSTGRES_TEST = (
    "tests/stores/test_open.py::test_a_postgres_store_opened_without_create_must_have_its_tables"
)
BROWSER_TEST = "tests/cli/test_report.py::test_halted_run_shows_cancelled_and_skipped_tasks"


def pytest_run(test: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run one test in a child pytest with ``env`` on top of ours (CI unset unless given)."""
    environment = {k: v for k, v in os.environ.items() if k != "CI"} | env
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rsf", test],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("test", "env", "reason"),
    [
        (
            POSTGRES_TEST,
            {"PLAIT_TEST_POSTGRES_URL": "postgresql://postgres@127.0.0.1:1/test"},
            "PostgreSQL is not reachable at postgresql://postgres@127.0.0.1:1/test (",
        ),
        (BROWSER_TEST, {"PLAIT_TEST_CHROMIUM": "/no/such/chromium"}, "no Chromium (looked for"),
    ],
    ids=["postgres", "chromium"],
)
def test_a_missing_service_skips_with_how_to_enable_it_and_fails_in_ci(
    test: str, env: dict[str, str], reason: str
) -> None:
    skipped = pytest_run(test, **env)
    assert skipped.returncode == 0, skipped.stdout
    (line,) = [line for line in skipped.stdout.splitlines() if line.startswith("SKIPPED")]
    assert reason in line
    assert "to run" in line  # says how to enable them
    failed = pytest_run(test, CI="true", **env)
    assert failed.returncode == 1, failed.stdout
    assert "CI=true: failing instead of skipping" in failed.stdout
