"""Tests that need PostgreSQL or Chromium skip with one line saying how to enable them when the
machine lacks it, and fail instead under ``CI=true``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

POSTGRES_TEST = (
    "tests/stores/test_open.py::test_a_postgres_store_opened_without_create_must_have_its_tables"
)
BROWSER_TEST = "tests/cli/test_report.py::test_halted_run_shows_cancelled_and_skipped_tasks"


#: Each test that needs a service, the environment that takes the service away, and the start
#: of the line that says so.
NEEDS = [
    (
        POSTGRES_TEST,
        {"PLAIT_TEST_POSTGRES_URL": "postgresql://postgres@127.0.0.1:1/test"},
        "PostgreSQL is not reachable at postgresql://postgres@127.0.0.1:1/test (",
    ),
    (BROWSER_TEST, {"PLAIT_TEST_CHROMIUM": "/no/such/chromium"}, "no Chromium (looked for"),
]


def pytest_run(*tests: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``tests`` in a child pytest with ``env`` on top of ours (CI unset unless given)."""
    environment = {k: v for k, v in os.environ.items() if k != "CI"} | env
    # Without hypothesis's plugin, which the tests run here do not use: importing it is most
    # of a child pytest's start-up.
    plugins = ["-p", "no:cacheprovider", "-p", "no:hypothesispytest"]
    return subprocess.run(
        [sys.executable, "-m", "pytest", *plugins, "-q", "-rsfE", *tests],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def line_of(test: str, output: str, *starts: str) -> str:
    """The one line of ``output`` that starts with one of ``starts`` and names ``test``'s file."""
    (line,) = [
        line
        for line in output.splitlines()
        if line.startswith(starts) and test.split("::", maxsplit=1)[0] in line
    ]
    return line


def test_a_missing_service_skips_with_how_to_enable_it_and_fails_in_ci() -> None:
    # One child pytest runs every such test (a child's start-up is most of what this costs).
    tests = [test for test, _, _ in NEEDS]
    env = {name: value for _, missing, _ in NEEDS for name, value in missing.items()}
    skipped = pytest_run(*tests, **env)
    assert skipped.returncode == 0, skipped.stdout
    for test, _, reason in NEEDS:
        line = line_of(test, skipped.stdout, "SKIPPED")
        assert reason in line
        assert "to run" in line  # says how to enable them
    failed = pytest_run(*tests, CI="true", **env)
    assert failed.returncode == 1, failed.stdout
    for test, _, reason in NEEDS:
        line = line_of(test, failed.stdout, "FAILED", "ERROR")  # in the test, or its fixture
        assert reason in line
        assert "CI=true: failing instead of skipping" in line
